//! Verifying: a 20-page contract with one signature, a document with 51 signatures, and the
//! fixtures for the 100 MB memory check and the pyHanko comparison that `scripts/bench` runs
//! (written to target/bench/). `cargo bench --bench verify`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use openssl::x509::X509;
use std::io::Write as _;
use virtual_window::pdf::sign::sign;
use virtual_window::pdf::verify::{Options, Verdict, verify};
use virtual_window::pki::KeyAlgorithm;

#[path = "support/fixtures.rs"]
mod common;

fn verification(c: &mut Criterion) {
    let f = common::Fixture::build();
    let opts = Options {
        trust: vec![X509::from_der(&f.h.root.cert_der).unwrap()],
        now: time::OffsetDateTime::now_utc(),
    };
    let contract = f.long_contract();
    let (cert, key) = f.person(KeyAlgorithm::EcdsaP256);
    let one = sign(&contract, &f.options("buyer-1", &cert, &key)).unwrap();
    assert_eq!(verify(&one, &opts).unwrap().verdict, Verdict::Valid);
    let many = f.many_signatures(51);
    let r = verify(&many, &opts).unwrap();
    assert_eq!((r.verdict, r.signatures.len()), (Verdict::Valid, 51));
    eprintln!("51 signatures: {} bytes", many.len());

    // Fixtures for scripts/bench: the files, the root, and the signer's key for pyHanko.
    let dir = std::path::Path::new("target/bench");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("root.pem"), f.h.root.cert_pem()).unwrap();
    std::fs::write(dir.join("contract.pdf"), &contract).unwrap();
    std::fs::write(dir.join("one-signature.pdf"), &one).unwrap();
    std::fs::write(dir.join("51-signatures.pdf"), &many).unwrap();
    std::fs::write(
        dir.join("signer-key.pem"),
        key.pkey().private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("signer.pem"), cert.pem()).unwrap();
    std::fs::write(
        dir.join("chain.pem"),
        f.h.authority("people-ca").unwrap().cert_pem(),
    )
    .unwrap();
    // 100 MB: the contract with a large unreferenced stream appended as an incremental update
    // before the signature, so the signature covers all of it.
    let big = {
        let mut d = contract.clone();
        let start = d.len();
        let pdf = virtual_window::pdf::read::Pdf::parse(&contract).unwrap();
        let last = pdf.last_revision();
        let size = pdf
            .trailer_get(last, b"Size")
            .and_then(|s| s.as_int())
            .unwrap();
        let root = pdf
            .trailer_get(last, b"Root")
            .and_then(|r| r.as_ref())
            .unwrap();
        let prev = pdf.sections[pdf.revisions[last].sections[0]].offset;
        let payload = 100 * 1024 * 1024;
        write!(d, "{size} 0 obj\n<< /Length {payload} >>\nstream\n").unwrap();
        let mut x: u32 = 1;
        d.extend((0..payload).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        d.extend_from_slice(b"\nendstream\nendobj\n");
        let xref = d.len();
        write!(
            d,
            "xref\n{size} 1\n{start:010} 00000 n \ntrailer\n<< /Size {} /Root {root} 0 R /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n",
            size + 1
        )
        .unwrap();
        sign(&d, &f.options("buyer-1", &cert, &key)).unwrap()
    };
    let r = verify(&big, &opts).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");
    std::fs::write(dir.join("100mb.pdf"), &big).unwrap();
    drop(big);

    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_signature_20_pages", |b| {
        b.iter(|| verify(&one, &opts).unwrap())
    });
    // Nothing cached: every certificate decoded and every path validated again, as for a
    // document from a signer and CA never seen before.
    g.bench_function("one_signature_20_pages_cold_caches", |b| {
        b.iter(|| {
            virtual_window::pdf::verify::clear_caches();
            verify(&one, &opts).unwrap()
        })
    });
    g.sample_size(20);
    g.bench_function("51_signatures", |b| {
        b.iter(|| verify(&many, &opts).unwrap())
    });
    g.finish();
}

criterion_group!(benches, verification);
criterion_main!(benches);
