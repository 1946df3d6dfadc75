//! Signing the sample contract: one PAdES B-B signature into an existing field (parse, update,
//! hash, one ECDSA P-256 operation, serialise). `cargo bench --bench signing`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use time::OffsetDateTime;
use virtual_window::domain::contract::ContractData;
use virtual_window::pdf::font::Font;
use virtual_window::pdf::sign::{SignOptions, sign};
use virtual_window::pki::ca::{self, Subject};
use virtual_window::pki::{Hierarchy, KeyAlgorithm, Profiles, SoftwareKey};
use virtual_window::services::documents::{CONTRACT_TEMPLATE, render_contract};

fn signing(c: &mut Criterion) {
    let font = Font::find(None).expect("a CJK font (fonts-noto-cjk)");
    let data: ContractData =
        toml::from_str(&std::fs::read_to_string("fixtures/sample-contract.toml").unwrap()).unwrap();
    let pdf = render_contract(
        &font,
        CONTRACT_TEMPLATE,
        &data,
        "https://window.example",
        "2026-11-28T10:00:00+08:00",
    )
    .unwrap()
    .pdf;
    let now = OffsetDateTime::now_utc();
    let profiles = Profiles::builtin();
    let mut g = c.benchmark_group("signing");
    g.throughput(Throughput::Elements(1));
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let (h, _) = Hierarchy::create(
            &profiles,
            KeyAlgorithm::EcdsaP256,
            now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        let people = h.authority("people-ca").unwrap();
        let key = SoftwareKey::generate(alg).unwrap();
        let cert = ca::issue(
            &profiles,
            people,
            "event",
            &Subject::Person {
                name: "张伟".into(),
                pseudonym: "PSN-01".into(),
            },
            &key,
            now,
            "x",
        )
        .unwrap();
        let opts = SignOptions {
            field: "buyer-1",
            signer_cert: &cert.der,
            chain: vec![people.cert_der.clone()],
            key: &key,
            time: now,
            reason: None,
            reserve: 8192,
            timestamper: None,
            certify: None,
            visible: None,
        };
        g.bench_function(format!("sample_contract_b_b/{alg:?}"), |b| {
            b.iter(|| sign(&pdf, &opts).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
