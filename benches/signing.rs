//! Signing a signed 20-page contract: one PAdES B-B signature into the next empty field (parse
//! the cross-reference, update, hash, one private-key operation, write), P-256 and RSA-2048.
//! `cargo bench --bench signing`; `scripts/bench` prints `openssl speed` beside it.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use virtual_window::pdf::sign::sign;
use virtual_window::pki::KeyAlgorithm;

#[path = "support/fixtures.rs"]
mod common;

fn signing(c: &mut Criterion) {
    let f = common::Fixture::build();
    let contract = f.long_contract();
    let mut g = c.benchmark_group("signing");
    g.throughput(Throughput::Elements(1));
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let (cert, key) = f.person(alg);
        let signed_once = sign(&contract, &f.options("buyer-1", &cert, &key)).unwrap();
        let opts = f.options("buyer-2", &cert, &key);
        g.bench_function(format!("signed_20_page_contract_b_b/{alg:?}"), |b| {
            b.iter(|| sign(&signed_once, &opts).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
