//! 国密: sealing the registration certificate as an OFD package (GB/T 38540 seal, SM2) and
//! verifying it, beside the SM2 primitive itself (`openssl speed sm2` in scripts/bench is the
//! physical limit). `cargo bench --bench ofd`.

#[path = "support/gm.rs"]
mod gm;

use criterion::{Criterion, criterion_group, criterion_main};
use openssl::x509::X509;
use time::OffsetDateTime;
use virtual_window::ofd::write::{self, Stamp};
use virtual_window::pdf::verify::Verdict;

fn ofd(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let gm::CentreSeal {
        h,
        holder,
        seal,
        crls,
    } = gm::centre_seal(now, |_| vec![]);
    let content = gm::certificate_content();
    let stamp = Stamp {
        seal: &seal,
        signer: &holder,
        chain: vec![h.centre_ca.cert_der.clone()],
        crls: crls.clone(),
        tsa: Some(&h.tsa),
    };
    let make = || {
        let files = write::package_files(&content, "0123456789abcdef0123456789abcdef", now);
        write::seal_package(files, &stamp, now).unwrap()
    };
    let package = make();
    let bare_stamp = Stamp {
        tsa: None,
        chain: stamp.chain.clone(),
        crls: stamp.crls.clone(),
        ..stamp
    };
    let bare = {
        let files = write::package_files(&content, "0123456789abcdef0123456789abcdef", now);
        write::seal_package(files, &bare_stamp, now).unwrap()
    };
    let trust = vec![X509::from_der(&h.root.cert_der).unwrap()];
    assert_eq!(
        virtual_window::ofd::verify::verify(&package, &trust, now)
            .unwrap()
            .verdict,
        Verdict::Valid
    );
    eprintln!("certificate.ofd: {} bytes", package.len());
    let mut g = c.benchmark_group("ofd");
    g.bench_function(
        "seal certificate (write, SM3 references, SM2 seal signature, SM2 time stamp)",
        |b| b.iter(make),
    );
    g.bench_function(
        "verify certificate (references, signature, seal, time stamp, chains)",
        |b| b.iter(|| virtual_window::ofd::verify::verify(&package, &trust, now).unwrap()),
    );
    g.bench_function("seal certificate without the time stamp", |b| {
        b.iter(|| {
            let files = write::package_files(&content, "0123456789abcdef0123456789abcdef", now);
            write::seal_package(files, &bare_stamp, now).unwrap()
        })
    });
    g.bench_function("verify certificate without the time stamp", |b| {
        b.iter(|| virtual_window::ofd::verify::verify(&bare, &trust, now).unwrap())
    });
    g.finish();
    let key = virtual_window::pki::sm2::Sm2Key::generate().unwrap();
    let sig = key.sign(b"tbs").unwrap();
    let mut g = c.benchmark_group("sm2");
    g.bench_function("sign (SM3(Z||M) + OpenSSL SM2)", |b| {
        b.iter(|| key.sign(b"tbs").unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            assert!(virtual_window::pki::sm2::verify(
                key.public_key_der(),
                b"tbs",
                &sig
            ))
        })
    });
    g.bench_function("verify with OpenSSL's SM2 verify (no tables)", |b| {
        b.iter(|| {
            assert!(virtual_window::pki::sm2::verify_with_openssl(
                key.public_key_der(),
                b"tbs",
                &sig
            ))
        })
    });
    // A key's first sighting takes G's table and a ladder for P (no table is made for a key seen
    // once); each iteration gets a fresh key, made outside the timing.
    g.bench_function("verify, a key never seen before", |b| {
        b.iter_batched(
            || {
                let k = virtual_window::pki::sm2::Sm2Key::generate().unwrap();
                let s = k.sign(b"tbs").unwrap();
                (k, s)
            },
            |(k, s)| {
                assert!(virtual_window::pki::sm2::verify(
                    k.public_key_der(),
                    b"tbs",
                    &s
                ))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, ofd);
criterion_main!(benches);
