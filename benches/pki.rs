//! PKI benchmarks: certificate issuance and time stamping, in process and over HTTP. Run with
//! `scripts/bench`, which also measures `openssl speed` for the same key types in the same run
//! (docs/BENCHMARKS.md).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use time::OffsetDateTime;
use virtual_window::pki::ca::{self, Subject};
use virtual_window::pki::{Hierarchy, KeyAlgorithm, Profiles, SigningKey, SoftwareKey, tsa};

fn issuance(c: &mut Criterion) {
    let mut g = c.benchmark_group("issue");
    g.throughput(Throughput::Elements(1));
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let profiles = Profiles::builtin();
        let now = OffsetDateTime::now_utc();
        let (h, _) = Hierarchy::create(&profiles, alg, now, "http://127.0.0.1/pki/crl").unwrap();
        let holder = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = Subject::Person {
            name: "张伟".into(),
            pseudonym: "PSN-0123456789ABCDEF".into(),
        };
        let people = h.authority("people-ca").unwrap().clone();
        g.bench_function(format!("event_certificate/{alg:?}"), |b| {
            b.iter(|| {
                ca::issue(
                    &profiles,
                    &people,
                    "event",
                    &subject,
                    &holder,
                    now,
                    "http://127.0.0.1/pki/crl",
                )
                .unwrap()
            })
        });
        let key = SoftwareKey::generate(alg).unwrap();
        g.bench_function(format!("raw_sign/{alg:?}"), |b| {
            b.iter(|| key.sign(black_box(b"message")).unwrap())
        });
    }
    g.finish();
}

fn timestamping(c: &mut Criterion) {
    let mut g = c.benchmark_group("timestamp");
    g.throughput(Throughput::Elements(1));
    let profiles = Profiles::builtin();
    let now = OffsetDateTime::now_utc();
    let (h, _) = Hierarchy::create(
        &profiles,
        KeyAlgorithm::EcdsaP256,
        now,
        "http://127.0.0.1/pki/crl",
    )
    .unwrap();
    let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let subject = Subject::Unit {
        common_name: "虚拟窗口时间戳服务".into(),
        organisation: ca::OPERATOR.into(),
    };
    let cert = ca::issue(
        &profiles,
        h.authority("timestamping-ca").unwrap(),
        "tsa",
        &subject,
        &key,
        now,
        "x",
    )
    .unwrap();
    let digest = openssl::sha::sha256(b"contract");
    let (req, _) = tsa::request(&digest, true).unwrap();
    let chain = vec![h.authority("timestamping-ca").unwrap().cert_der.clone()];
    let unit = tsa::TimeStampUnit {
        cert_der: &cert.der,
        chain: &chain,
        key: &key,
    };
    g.bench_function("parts/signing_certificate_v2", |b| {
        b.iter(|| virtual_window::pki::cms::signing_certificate_v2(black_box(&cert.der)).unwrap())
    });
    g.bench_function("parts/parse_request", |b| {
        b.iter(|| tsa::parse_request(black_box(&req)).unwrap())
    });
    g.bench_function("respond_in_process", |b| {
        b.iter(|| {
            let parsed = tsa::parse_request(black_box(&req)).unwrap();
            tsa::respond(&unit, &parsed, OffsetDateTime::now_utc()).unwrap()
        })
    });

    // The whole round trip through the service's HTTP endpoint on loopback, with the client's
    // checks (status, imprint, nonce, CMS signature).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (url, _guard) = rt.block_on(async {
        let cfg = virtual_window::config::Config {
            data_dir: dir.path().join("data"),
            auto_seed: false,
            ..Default::default()
        };
        let services = virtual_window::server::prepare(Arc::new(cfg))
            .await
            .unwrap();
        let router = virtual_window::app(virtual_window::AppState::new(services));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (format!("http://{addr}/tsa"), handle)
    });
    let client = tsa::TsaClient::new(url, std::time::Duration::from_secs(10)).unwrap();
    g.bench_function("http_round_trip", |b| {
        b.iter(|| rt.block_on(client.timestamp(&digest)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, issuance, timestamping);
criterion_main!(benches);
