//! The PKI: every kind of certificate, checked by OpenSSL's command-line verifier and by
//! x509-parser; CRLs and revocation; validation failures with their reasons.

use openssl::x509::{X509, X509Crl};
use std::path::Path;
use std::process::Command;
use time::OffsetDateTime;
use virtual_window::pki::ca::{self, Revoked, Subject};
use virtual_window::pki::names::pseudonym;
use virtual_window::pki::{
    Hierarchy, KeyAlgorithm, Profiles, Purpose, SigningKey, SoftwareKey, Validation,
    ValidationFailure,
};

const CRL_BASE: &str = "http://127.0.0.1:8080/pki/crl";

struct Issued {
    hierarchy: Hierarchy,
    event: ca::IssuedCertificate,
    seal: ca::IssuedCertificate,
    centre: ca::IssuedCertificate,
    tsa: ca::IssuedCertificate,
}

fn issue_all(alg: KeyAlgorithm, now: OffsetDateTime) -> Issued {
    let profiles = Profiles::builtin();
    let (hierarchy, _) = Hierarchy::create(&profiles, alg, now, CRL_BASE).unwrap();
    let key = SoftwareKey::generate(alg).unwrap();
    let issue = |ca_name: &str, profile: &str, subject: Subject| {
        ca::issue(
            &profiles,
            hierarchy.authority(ca_name).unwrap(),
            profile,
            &subject,
            &key,
            now,
            CRL_BASE,
        )
        .unwrap()
    };
    let event = issue(
        "people-ca",
        "event",
        Subject::Person {
            name: "张伟".into(),
            pseudonym: pseudonym(b"pseudonym key", "44190019900101001X").unwrap(),
        },
    );
    let seal = issue(
        "organisations-ca",
        "organisation-seal",
        Subject::OrganisationSeal {
            organisation: "东莞市云境置业有限公司".into(),
            uscc: "91441900MA4W0L7N36".into(),
            seal_name: "合同专用章".into(),
            seal_image_sha256: Some(openssl::sha::sha256(b"seal image bytes")),
        },
    );
    let centre = issue(
        "organisations-ca",
        "centre-seal",
        Subject::OrganisationSeal {
            organisation: "东莞市不动产登记中心".into(),
            uscc: "12441900MB2C92110F".into(),
            seal_name: "不动产登记专用章".into(),
            seal_image_sha256: None,
        },
    );
    let tsa = issue(
        "timestamping-ca",
        "tsa",
        Subject::Unit {
            common_name: "虚拟窗口时间戳服务".into(),
            organisation: ca::OPERATOR.into(),
        },
    );
    Issued {
        hierarchy,
        event,
        seal,
        centre,
        tsa,
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p.display().to_string()
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_certificate_kind_verifies_with_openssl_for_its_purpose() {
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let now = OffsetDateTime::now_utc();
        let i = issue_all(alg, now);
        let dir = tempfile::tempdir().unwrap();
        let root = write(dir.path(), "root.pem", &i.hierarchy.root.cert_pem());
        for (leaf, ca_name, purpose) in [
            (&i.event, "people-ca", "smimesign"),
            (&i.seal, "organisations-ca", "smimesign"),
            (&i.centre, "organisations-ca", "smimesign"),
            (&i.tsa, "timestamping-ca", "timestampsign"),
        ] {
            let ca = write(
                dir.path(),
                "ca.pem",
                &i.hierarchy.authority(ca_name).unwrap().cert_pem(),
            );
            let leaf_path = write(dir.path(), "leaf.pem", &leaf.pem());
            let (ok, out) = openssl(&[
                "verify",
                "-x509_strict",
                "-CAfile",
                &root,
                "-untrusted",
                &ca,
                "-purpose",
                purpose,
                &leaf_path,
            ]);
            assert!(ok, "{alg:?} {} for {purpose}: {out}", leaf.profile);
        }
        // The TSA certificate is refused for S/MIME-style signing? No: it is refused by any
        // verifier asking for the timestamping purpose on a signing certificate.
        let ca = write(
            dir.path(),
            "ca.pem",
            &i.hierarchy.authority("people-ca").unwrap().cert_pem(),
        );
        let leaf_path = write(dir.path(), "leaf.pem", &i.event.pem());
        let (ok, _) = openssl(&[
            "verify",
            "-CAfile",
            &root,
            "-untrusted",
            &ca,
            "-purpose",
            "timestampsign",
            &leaf_path,
        ]);
        assert!(
            !ok,
            "an event certificate is not a time-stamping certificate"
        );
    }
}

#[test]
fn names_round_trip_in_x509_parser_and_openssl() {
    use x509_parser::prelude::*;
    let i = issue_all(KeyAlgorithm::EcdsaP256, OffsetDateTime::now_utc());
    let (_, cert) = X509Certificate::from_der(&i.event.der).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(
        cn.attr_value().tag(),
        x509_parser::der_parser::asn1_rs::Tag::Utf8String
    );
    assert_eq!(cn.as_str().unwrap(), "张伟");
    let subject = cert.subject().to_string();
    assert!(
        !subject.contains("44190019900101001X"),
        "never the raw ID number: {subject}"
    );
    assert!(subject.contains("PSN-"), "{subject}");
    // Short-lived, with the usages of a signing key.
    let validity = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(
        validity,
        31 * 60,
        "30 minutes plus one minute of back-dating"
    );
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.non_repudiation() && !ku.key_cert_sign());
    let (_, tsa) = X509Certificate::from_der(&i.tsa.der).unwrap();
    let eku = tsa.extended_key_usage().unwrap().unwrap();
    assert!(eku.critical && eku.value.time_stamping && !eku.value.any);
    let (_, seal) = X509Certificate::from_der(&i.seal.der).unwrap();
    assert_eq!(
        seal.subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "东莞市云境置业有限公司"
    );
    let policy = seal
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::CertificatePolicies(p) => Some(p[0].policy_id.as_bytes().to_vec()),
            _ => None,
        })
        .expect("certificate policies");
    // x509-parser prints 128-bit arcs in hex, so compare the encoding (OpenSSL prints it below).
    let expected =
        virtual_window::pki::der::oid("2.25.80410410568930354608029482457162160361.1.2").unwrap();
    assert_eq!(policy, expected[2..]);
    let crl_dp = seal
        .extensions()
        .iter()
        .any(|e| e.oid.to_id_string() == "2.5.29.31");
    assert!(crl_dp, "CRL distribution point");

    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "seal.pem", &i.seal.pem());
    let (ok, out) = openssl(&[
        "x509",
        "-in",
        &p,
        "-noout",
        "-subject",
        "-nameopt",
        "utf8,sep_comma_plus",
    ]);
    assert!(ok);
    assert!(
        out.contains("东莞市云境置业有限公司") && out.contains("合同专用章"),
        "{out}"
    );
    let (ok, out) = openssl(&["x509", "-in", &p, "-noout", "-text"]);
    assert!(
        ok && out.contains("Policy: 2.25.80410410568930354608029482457162160361.1.2"),
        "{out}"
    );
    assert!(
        out.contains("URI:http://127.0.0.1:8080/pki/crl/organisations-ca.crl"),
        "{out}"
    );
}

#[test]
fn validation_gives_a_reason_for_every_failure() {
    let now = OffsetDateTime::now_utc();
    let i = issue_all(KeyAlgorithm::EcdsaP256, now);
    let x = |der: &[u8]| X509::from_der(der).unwrap();
    let v = Validation {
        anchors: vec![x(&i.hierarchy.root.cert_der)],
        intermediates: i.hierarchy.issuing.iter().map(|a| x(&a.cert_der)).collect(),
        crls: vec![],
        require_revocation: false,
    };
    let event = x(&i.event.der);
    let path = v
        .validate(&event, now, Purpose::DocumentSigning)
        .expect("valid now");
    assert_eq!(path.len(), 3);
    assert_eq!(
        v.validate(
            &event,
            now + time::Duration::minutes(45),
            Purpose::DocumentSigning
        )
        .unwrap_err(),
        ValidationFailure::Expired
    );
    assert_eq!(
        v.validate(
            &event,
            now - time::Duration::hours(1),
            Purpose::DocumentSigning
        )
        .unwrap_err(),
        ValidationFailure::NotYetValid
    );
    assert_eq!(
        v.validate(&event, now, Purpose::TimeStamping).unwrap_err(),
        ValidationFailure::WrongKeyUsage
    );
    v.validate(&x(&i.tsa.der), now, Purpose::TimeStamping)
        .expect("TSA certificate");

    // A root nobody trusts.
    let stranger = issue_all(KeyAlgorithm::EcdsaP256, now);
    assert_eq!(
        v.validate(&x(&stranger.seal.der), now, Purpose::DocumentSigning)
            .unwrap_err(),
        ValidationFailure::UnknownIssuer
    );
    // A flipped bit in the signature.
    let mut der = i.centre.der.clone();
    let n = der.len();
    der[n - 3] ^= 0x01;
    assert_eq!(
        v.validate(&x(&der), now, Purpose::DocumentSigning)
            .unwrap_err(),
        ValidationFailure::BadSignature
    );

    // Revocation: required but missing, then present and listing the seal.
    let strict = Validation {
        require_revocation: true,
        ..v
    };
    assert_eq!(
        strict
            .validate(&x(&i.seal.der), now, Purpose::DocumentSigning)
            .unwrap_err(),
        ValidationFailure::RevocationUnknown
    );
    let orgs = i.hierarchy.authority("organisations-ca").unwrap();
    let revoked = vec![Revoked {
        serial_hex: i.seal.serial.clone(),
        revoked_at: now,
        reason: Some(rcgen::RevocationReason::KeyCompromise),
    }];
    let org_crl = ca::crl(orgs, &revoked, 2, now, time::Duration::days(1)).unwrap();
    let root_crl = ca::crl(&i.hierarchy.root, &[], 1, now, time::Duration::days(30)).unwrap();
    let strict = Validation {
        crls: vec![
            X509Crl::from_der(&org_crl).unwrap(),
            X509Crl::from_der(&root_crl).unwrap(),
        ],
        ..strict
    };
    assert_eq!(
        strict
            .validate(
                &x(&i.seal.der),
                now + time::Duration::seconds(1),
                Purpose::DocumentSigning
            )
            .unwrap_err()
            .code(),
        "revoked"
    );
    strict
        .validate(&x(&i.centre.der), now, Purpose::DocumentSigning)
        .expect("the other seal of the same CA is not revoked");
    // Before the revocation time the signature was made with a good certificate.
    strict
        .validate(
            &x(&i.seal.der),
            now - time::Duration::seconds(30),
            Purpose::DocumentSigning,
        )
        .expect("valid before it was revoked");

    // OpenSSL's own CRL check agrees.
    let dir = tempfile::tempdir().unwrap();
    let root = write(dir.path(), "root.pem", &i.hierarchy.root.cert_pem());
    let ca = write(dir.path(), "ca.pem", &orgs.cert_pem());
    let crl = write(dir.path(), "org.crl.pem", &ca::pem("X509 CRL", &org_crl));
    let leaf = write(dir.path(), "seal.pem", &i.seal.pem());
    let (ok, out) = openssl(&["crl", "-in", &crl, "-CAfile", &ca, "-noout"]);
    assert!(ok && out.contains("verify OK"), "{out}");
    let (ok, out) = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        &root,
        "-untrusted",
        &ca,
        "-CRLfile",
        &crl,
        &leaf,
    ]);
    assert!(!ok && out.contains("revoked"), "{out}");
}

#[test]
fn hierarchy_survives_save_and_load_and_needs_the_kek() {
    let now = OffsetDateTime::now_utc();
    let profiles = Profiles::builtin();
    let (h, keys) = Hierarchy::create(&profiles, KeyAlgorithm::EcdsaP256, now, CRL_BASE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    h.save(dir.path(), &keys, b"kek from configuration")
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("people-ca.key.pem")).unwrap();
    assert!(
        text.contains("ENCRYPTED PRIVATE KEY"),
        "keys are encrypted at rest"
    );
    assert!(Hierarchy::load(dir.path(), b"wrong", &profiles).is_err());
    let loaded = Hierarchy::load(dir.path(), b"kek from configuration", &profiles).unwrap();
    assert_eq!(loaded.root.cert_der, h.root.cert_der);
    // The loaded CA issues certificates that chain to the saved root.
    let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let subject = Subject::Person {
        name: "李娜".into(),
        pseudonym: "PSN-0011".into(),
    };
    let cert = ca::issue(
        &profiles,
        loaded.authority("people-ca").unwrap(),
        "event",
        &subject,
        &key,
        now,
        CRL_BASE,
    )
    .unwrap();
    let v = Validation {
        anchors: vec![X509::from_der(&h.root.cert_der).unwrap()],
        intermediates: vec![X509::from_der(&h.authority("people-ca").unwrap().cert_der).unwrap()],
        ..Validation::default()
    };
    v.validate(
        &X509::from_der(&cert.der).unwrap(),
        now,
        Purpose::DocumentSigning,
    )
    .unwrap();
    assert_eq!(
        key.public_key_der(),
        X509::from_der(&cert.der)
            .unwrap()
            .public_key()
            .unwrap()
            .public_key_to_der()
            .unwrap()
            .as_slice()
    );
    // A profile may only be issued by its own CA.
    assert!(
        ca::issue(
            &profiles,
            loaded.authority("organisations-ca").unwrap(),
            "event",
            &subject,
            &key,
            now,
            CRL_BASE
        )
        .is_err()
    );
}

mod service {
    use crate::helpers::{Db, spawn_app};
    use axum::http::StatusCode;
    use openssl::x509::{X509, X509Crl};
    use serde_json::json;
    use time::OffsetDateTime;
    use virtual_window::pki::{Purpose, Validation};
    use virtual_window::services::pki as svc;

    crate::on_both_databases!(revocation_reaches_the_published_crl);

    async fn revocation_reaches_the_published_crl(db: Db) {
        let app = spawn_app(db).await.unwrap();
        // Published CA certificates match the hierarchy.
        let r = app.get("/pki/ca/root.pem", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let root = X509::from_pem(r.text.as_bytes()).unwrap();
        assert_eq!(
            svc::fingerprint(&root.to_der().unwrap()),
            svc::root_fingerprint(&app.services)
        );
        assert_eq!(
            app.get("/pki/ca/nothing.pem", None).await.status,
            StatusCode::NOT_FOUND
        );

        // The certificate log: the four CAs, the time-stamping unit and the centre's seal.
        let admin = app.token("admin").await;
        let list = app.get("/api/v1/pki/certificates", Some(&admin)).await;
        assert_eq!(list.status, StatusCode::OK);
        let profiles: Vec<&str> = list
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["profile"].as_str().unwrap())
            .collect();
        for p in [
            "root",
            "people-ca",
            "organisations-ca",
            "timestamping-ca",
            "tsa",
            "centre-seal",
        ] {
            assert!(profiles.contains(&p), "{p} in {profiles:?}");
        }
        let buyer = app.token("buyer-zhang").await;
        assert_eq!(
            app.get("/api/v1/pki/certificates", Some(&buyer))
                .await
                .status,
            StatusCode::FORBIDDEN
        );

        let (seal, _key) = svc::issue_seal(
            &app.services,
            None,
            "东莞市云境置业有限公司",
            "91441900MA4W0L7N36",
            "合同专用章",
            None,
        )
        .await
        .unwrap();
        let intermediates: Vec<X509> = app
            .services
            .pki
            .hierarchy
            .issuing
            .iter()
            .map(|a| X509::from_der(&a.cert_der).unwrap())
            .collect();
        let fetch_crls = |bodies: Vec<Vec<u8>>| {
            bodies
                .into_iter()
                .map(|b| X509Crl::from_der(&b).unwrap())
                .collect::<Vec<_>>()
        };
        let raw_crl = |ca: &'static str| {
            let services = app.services.clone();
            async move { svc::crl(&services, ca).await.unwrap() }
        };
        let v = Validation {
            anchors: vec![root.clone()],
            intermediates: intermediates.clone(),
            crls: fetch_crls(vec![
                raw_crl("root").await,
                raw_crl("organisations-ca").await,
            ]),
            require_revocation: true,
        };
        let seal_x = X509::from_der(&seal.der).unwrap();
        v.validate(&seal_x, OffsetDateTime::now_utc(), Purpose::DocumentSigning)
            .expect("valid before revocation");

        let audit_before = app.audit_len().await;
        let r = app
            .post(
                &format!("/api/v1/pki/certificates/{}/revoke", seal.serial),
                Some(&admin),
                json!({"reason": "key_compromise"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], "revoked");
        assert_eq!(app.audit_len().await, audit_before + 1);
        let again = app
            .post(
                &format!("/api/v1/pki/certificates/{}/revoke", seal.serial),
                Some(&admin),
                json!({"reason": "superseded"}),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert_eq!(again.code(), "already_revoked");
        let unknown = app
            .post(
                "/api/v1/pki/certificates/abcdef/revoke",
                Some(&admin),
                json!({"reason": "superseded"}),
            )
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        let as_buyer = app
            .post(
                &format!("/api/v1/pki/certificates/{}/revoke", seal.serial),
                Some(&buyer),
                json!({"reason": "superseded"}),
            )
            .await;
        assert_eq!(as_buyer.status, StatusCode::FORBIDDEN);

        // The published CRL (over HTTP) now lists it, and validation says "revoked".
        let mut published = Vec::new();
        for ca in ["root", "organisations-ca"] {
            let res = tower::ServiceExt::oneshot(
                app.router.clone(),
                axum::http::Request::get(format!("/pki/crl/{ca}.crl"))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(
                res.headers().get("content-type").unwrap(),
                "application/pkix-crl"
            );
            let bytes = http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap()
                .to_bytes();
            published.push(bytes.to_vec());
        }
        let v = Validation {
            crls: fetch_crls(published),
            ..v
        };
        let failure = v
            .validate(
                &seal_x,
                OffsetDateTime::now_utc() + time::Duration::seconds(1),
                Purpose::DocumentSigning,
            )
            .unwrap_err();
        assert_eq!(failure.code(), "revoked");
    }
}

mod tsa {
    use crate::helpers::{Db, spawn_app};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use openssl::x509::X509;
    use std::process::Command;
    use tower::ServiceExt;
    use virtual_window::pki::tsa::{self, TsaClient};
    use virtual_window::pki::{Purpose, Validation};

    async fn post_tsa(
        app: &crate::helpers::TestApp,
        body: Vec<u8>,
        ct: &str,
    ) -> (StatusCode, Vec<u8>) {
        let res = app
            .router
            .clone()
            .oneshot(
                Request::post("/tsa")
                    .header("content-type", ct)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = res.status();
        (
            status,
            res.into_body().collect().await.unwrap().to_bytes().to_vec(),
        )
    }

    #[tokio::test]
    async fn openssl_ts_verifies_our_time_stamps() {
        let app = spawn_app(Db::Sqlite).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("contract.bin");
        std::fs::write(&data, "商品房买卖合同（预售）".repeat(100)).unwrap();
        let query = dir.path().join("q.tsq");
        let st = Command::new("openssl")
            .args(["ts", "-query", "-sha256", "-cert", "-data"])
            .arg(&data)
            .arg("-out")
            .arg(&query)
            .status()
            .unwrap();
        assert!(st.success());
        let (status, reply) = post_tsa(
            &app,
            std::fs::read(&query).unwrap(),
            "application/timestamp-query",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let reply_path = dir.path().join("r.tsr");
        std::fs::write(&reply_path, &reply).unwrap();
        let pki = &app.services.pki;
        let root = dir.path().join("root.pem");
        std::fs::write(&root, pki.hierarchy.root.cert_pem()).unwrap();
        let chain = dir.path().join("chain.pem");
        std::fs::write(
            &chain,
            pki.hierarchy
                .authority("timestamping-ca")
                .unwrap()
                .cert_pem(),
        )
        .unwrap();
        let out = Command::new("openssl")
            .args(["ts", "-verify", "-data"])
            .arg(&data)
            .arg("-in")
            .arg(&reply_path)
            .arg("-CAfile")
            .arg(&root)
            .arg("-untrusted")
            .arg(&chain)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("Verification: OK"),
            "{text}"
        );
        // Against another document it fails.
        let other = dir.path().join("other.bin");
        std::fs::write(&other, "tampered").unwrap();
        let out = Command::new("openssl")
            .args(["ts", "-verify", "-data"])
            .arg(&other)
            .arg("-in")
            .arg(&reply_path)
            .arg("-CAfile")
            .arg(&root)
            .arg("-untrusted")
            .arg(&chain)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let out = Command::new("openssl")
            .args(["ts", "-reply", "-text", "-in"])
            .arg(&reply_path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Status: Granted"), "{text}");
        assert!(text.contains(tsa::TSA_POLICY), "{text}");
    }

    #[tokio::test]
    async fn malformed_requests_get_rejection_replies() {
        let app = spawn_app(Db::Sqlite).await.unwrap();
        let (status, body) =
            post_tsa(&app, b"not DER".to_vec(), "application/timestamp-query").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            tsa::token_from_response(&body).is_err(),
            "a rejection carries no token"
        );
        let (status, _) = post_tsa(&app, vec![0x30, 0x00], "application/json").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (status, _) = post_tsa(&app, vec![0x30; 5000], "application/timestamp-query").await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        // SHA-1 is refused with badAlg.
        let sha1_req = {
            use virtual_window::pki::der;
            let imprint = der::sequence(&[
                der::algorithm("1.3.14.3.2.26", true),
                der::octet_string(&[0u8; 20]),
            ]);
            der::sequence(&[der::integer(1), imprint])
        };
        assert_eq!(
            tsa::parse_request(&sha1_req).unwrap_err(),
            tsa::Failure::BadAlg
        );
        // A digest of the wrong length.
        let short = {
            use virtual_window::pki::der;
            let imprint = der::sequence(&[
                der::algorithm("2.16.840.1.101.3.4.2.1", false),
                der::octet_string(&[0u8; 20]),
            ]);
            der::sequence(&[der::integer(1), imprint])
        };
        assert_eq!(
            tsa::parse_request(&short).unwrap_err(),
            tsa::Failure::BadDataFormat
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_client_time_stamps_over_a_real_connection() {
        let app = spawn_app(Db::Sqlite).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app.router.clone();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let client = TsaClient::new(
            format!("http://{addr}/tsa"),
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        let digest = openssl::sha::sha256(b"the contract bytes");
        let (token, info) = client.timestamp(&digest).await.unwrap();
        assert_eq!(info.hashed_message, digest);
        assert!(info.gen_time.ends_with('Z'));
        // The unit's certificate validates for time stamping.
        let pki = &app.services.pki;
        let v = Validation {
            anchors: vec![X509::from_der(&pki.hierarchy.root.cert_der).unwrap()],
            intermediates: vec![
                X509::from_der(&pki.hierarchy.authority("timestamping-ca").unwrap().cert_der)
                    .unwrap(),
            ],
            ..Validation::default()
        };
        v.validate(
            &X509::from_der(&info.signer_cert).unwrap(),
            time::OffsetDateTime::now_utc(),
            Purpose::TimeStamping,
        )
        .unwrap();
        // A token for one digest does not check against another, and a flipped byte breaks it.
        assert!(tsa::check_token(&token, &openssl::sha::sha256(b"other"), None).is_err());
        let mut bad = token.clone();
        let n = bad.len();
        bad[n - 5] ^= 0x40;
        assert!(tsa::check_token(&bad, &digest, None).is_err());
        // An unreachable authority is an error, not a hang.
        let dead =
            TsaClient::new("http://127.0.0.1:9/tsa", std::time::Duration::from_secs(2)).unwrap();
        assert!(dead.timestamp(&digest).await.is_err());
    }
}

pub(crate) mod hsm {
    //! The same signing test on a software key and on a non-extractable key inside SoftHSM2.
    use openssl::x509::X509;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::{Arc, OnceLock};
    use time::OffsetDateTime;
    use virtual_window::pki::ca::{self, Authority, Subject};
    use virtual_window::pki::pkcs11::{Pkcs11Key, TokenRef};
    use virtual_window::pki::tsa;
    use virtual_window::pki::{
        Hierarchy, KeyAlgorithm, Profiles, Purpose, SigningKey, SoftwareKey, Validation,
    };

    /// A fresh SoftHSM2 token for this test process. scripts/test sets VW_REQUIRE_HSM=1, and then
    /// a missing SoftHSM2 fails the test instead of skipping it.
    pub(crate) fn token() -> Option<TokenRef> {
        static TOKEN: OnceLock<Option<TokenRef>> = OnceLock::new();
        TOKEN
            .get_or_init(|| {
                let module = [
                    "/usr/lib/softhsm/libsofthsm2.so",
                    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                ]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.exists());
                let Some(module) = module else {
                    assert!(
                        std::env::var("VW_REQUIRE_HSM").as_deref() != Ok("1"),
                        "SoftHSM2 is required but not installed"
                    );
                    return None;
                };
                let label = format!("vw-test-{}", std::process::id());
                let out = Command::new("softhsm2-util")
                    .args([
                        "--init-token",
                        "--free",
                        "--label",
                        &label,
                        "--pin",
                        "123456",
                        "--so-pin",
                        "12345678",
                    ])
                    .output()
                    .expect("softhsm2-util runs");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Some(TokenRef {
                    module,
                    token_label: label,
                    pin: "123456".into(),
                })
            })
            .clone()
    }

    fn signing_contract(name: &str, key: Arc<dyn SigningKey>) {
        let now = OffsetDateTime::now_utc();
        // 1. A raw signature verifies with the public key alone.
        let msg = "商品房买卖合同 第十条".as_bytes();
        let sig = key.sign(msg).unwrap();
        let public = openssl::pkey::PKey::public_key_from_der(key.public_key_der()).unwrap();
        let mut v =
            openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap();
        v.update(msg).unwrap();
        assert!(v.verify(&sig).unwrap(), "{name}: signature verifies");

        // 2. The key as an issuing CA: certified by a software root, it issues an event
        //    certificate that chains and verifies.
        let profiles = Profiles::builtin();
        let (h, _) = Hierarchy::create(
            &profiles,
            KeyAlgorithm::EcdsaP256,
            now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        let ca_subject = Subject::Unit {
            common_name: profiles
                .get("people-ca")
                .unwrap()
                .subject_cn
                .clone()
                .unwrap(),
            organisation: ca::OPERATOR.into(),
        };
        let ca_cert = ca::issue(
            &profiles,
            &h.root,
            "people-ca",
            &ca_subject,
            key.as_ref(),
            now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        let ca = Authority {
            name: "people-ca".into(),
            cert_der: ca_cert.der.clone(),
            key: key.clone(),
            subject: ca_subject,
        };
        let holder = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let person = Subject::Person {
            name: "王芳".into(),
            pseudonym: "PSN-00AA".into(),
        };
        let leaf = ca::issue(
            &profiles,
            &ca,
            "event",
            &person,
            &holder,
            now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        let validation = Validation {
            anchors: vec![X509::from_der(&h.root.cert_der).unwrap()],
            intermediates: vec![X509::from_der(&ca_cert.der).unwrap()],
            ..Validation::default()
        };
        validation
            .validate(
                &X509::from_der(&leaf.der).unwrap(),
                now,
                Purpose::DocumentSigning,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let crl = ca::crl(&ca, &[], 1, now, time::Duration::hours(1)).unwrap();
        assert!(
            openssl::x509::X509Crl::from_der(&crl)
                .unwrap()
                .verify(&public)
                .unwrap(),
            "{name}: CRL signature"
        );

        // 3. The key as a time-stamping unit: its token checks.
        let tsa_subject = Subject::Unit {
            common_name: "HSM 时间戳".into(),
            organisation: ca::OPERATOR.into(),
        };
        let tsa_cert = ca::issue(
            &profiles,
            h.authority("timestamping-ca").unwrap(),
            "tsa",
            &tsa_subject,
            key.as_ref(),
            now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        let digest = openssl::sha::sha256(b"document");
        let (req, nonce) = tsa::request(&digest, true).unwrap();
        let parsed = tsa::parse_request(&req).unwrap();
        let unit = tsa::TimeStampUnit {
            cert_der: &tsa_cert.der,
            chain: &[],
            key: key.as_ref(),
        };
        let reply = tsa::respond(&unit, &parsed, now).unwrap();
        let token = tsa::token_from_response(&reply).unwrap();
        tsa::check_token(&token, &digest, Some(&nonce)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    #[test]
    fn the_same_keys_work_in_software_and_in_softhsm2() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
            signing_contract(
                &format!("software {alg:?}"),
                Arc::new(SoftwareKey::generate(alg).unwrap()),
            );
            let Some(token) = token() else {
                eprintln!("SoftHSM2 not installed; the PKCS#11 half did not run");
                continue;
            };
            let label = format!("ca-{alg:?}");
            let key = Pkcs11Key::generate(&token, &label, alg).unwrap();
            assert!(
                key.is_protected().unwrap(),
                "sensitive and non-extractable on the token"
            );
            let spki = key.public_key_der().to_vec();
            signing_contract(&format!("PKCS#11 {alg:?}"), Arc::new(key));
            // Found again by label, with the same public key.
            let reopened = Pkcs11Key::open(&token, &label).unwrap();
            assert_eq!(reopened.public_key_der(), spki.as_slice());
            assert_eq!(reopened.algorithm(), alg);
        }
        if let Some(token) = token() {
            let _ = Command::new("softhsm2-util")
                .args(["--delete-token", "--token", &token.token_label])
                .output();
        }
    }
}

mod event {
    use crate::helpers::{Db, spawn_app};
    use time::OffsetDateTime;
    use virtual_window::domain::Role;
    use virtual_window::services::{Caller, Error, pki as svc};
    use virtual_window::store::IdentityVerification;

    crate::on_both_databases!(
        event_certificates_need_a_passed_fresh_unused_verification,
        sm2_event_certificates_follow_the_same_rules_and_chain_to_the_sm2_root
    );

    fn verification(
        user_id: &str,
        status: &str,
        similarity: i32,
        liveness: bool,
        age_secs: i64,
    ) -> IdentityVerification {
        let now = OffsetDateTime::now_utc();
        IdentityVerification {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.into(),
            purpose: "sign_contract".into(),
            provider: "sandbox".into(),
            provider_ref: Some("ref-1".into()),
            subject_name: "张伟".into(),
            id_pseudonym: virtual_window::pki::names::pseudonym(b"k", "44190019900101001X")
                .unwrap(),
            status: status.parse().unwrap(),
            liveness_passed: liveness,
            similarity: Some(similarity),
            threshold: 8000,
            evidence_digest: Some("ab".repeat(32)),
            created_at: now - time::Duration::seconds(age_secs + 5),
            completed_at: Some(now - time::Duration::seconds(age_secs)),
            event_cert_serial: None,
            identity_matched: true,
            failure: None,
        }
    }

    fn code(e: Error) -> &'static str {
        e.code()
    }

    fn caller(id: &str) -> Caller {
        Caller {
            user_id: id.into(),
            role: Role::Buyer,
            duties: vec![],
            organisation_id: None,
            source: None,
            idempotency: None,
        }
    }

    async fn event_certificates_need_a_passed_fresh_unused_verification(db: Db) {
        let app = spawn_app(db).await.unwrap();
        let s = &app.services;
        let zhang = app.user_id("buyer-zhang").await;
        let li = app.user_id("buyer-li").await;

        // No verification at all.
        assert_eq!(
            code(
                svc::issue_event_certificate(s, &caller(&zhang), "missing")
                    .await
                    .unwrap_err()
            ),
            "not_found"
        );
        for (what, v, expected) in refused_cases(&zhang) {
            s.store.insert_identity_verification(&v).await.unwrap();
            let err = svc::issue_event_certificate(s, &caller(&zhang), &v.id)
                .await
                .unwrap_err();
            assert_eq!(code(err), expected, "{what}");
        }
        // Someone else's verification does not exist for this caller.
        let theirs = verification(&li, "passed", 9500, true, 10);
        s.store.insert_identity_verification(&theirs).await.unwrap();
        assert_eq!(
            code(
                svc::issue_event_certificate(s, &caller(&zhang), &theirs.id)
                    .await
                    .unwrap_err()
            ),
            "not_found"
        );

        // A passed, fresh verification: one certificate, logged with the verification's id.
        let good = verification(&zhang, "passed", 8000, true, 30);
        s.store.insert_identity_verification(&good).await.unwrap();
        let before = s.store.certificates(1000).await.unwrap().len();
        let (cert, key) = svc::issue_event_certificate(s, &caller(&zhang), &good.id)
            .await
            .unwrap();
        let x = openssl::x509::X509::from_der(&cert.der).unwrap();
        assert_eq!(
            x.public_key().unwrap().public_key_to_der().unwrap(),
            virtual_window::pki::SigningKey::public_key_der(&key)
        );
        let logged = s.store.certificate(&cert.serial).await.unwrap().unwrap();
        assert_eq!(logged.verification_id.as_deref(), Some(good.id.as_str()));
        assert_eq!(logged.profile, "event");
        assert!(
            logged.subject.contains("张伟") || logged.subject.contains("CN="),
            "{}",
            logged.subject
        );
        assert_eq!(s.store.certificates(1000).await.unwrap().len(), before + 1);
        // The same verification cannot be used twice.
        let again = svc::issue_event_certificate(s, &caller(&zhang), &good.id)
            .await
            .unwrap_err();
        assert_eq!(code(again), "verification_already_used");
        assert_eq!(s.store.certificates(1000).await.unwrap().len(), before + 1);
    }

    /// The refusals a verification gets before any event certificate, in either algorithm.
    fn refused_cases(user: &str) -> Vec<(&'static str, IdentityVerification, &'static str)> {
        vec![
            (
                "failed",
                verification(user, "failed", 9500, true, 10),
                "verification_not_passed",
            ),
            (
                "79.90 similarity",
                verification(user, "passed", 7990, true, 10),
                "verification_not_passed",
            ),
            (
                "liveness failed",
                verification(user, "passed", 9500, false, 10),
                "verification_not_passed",
            ),
            (
                "pending",
                verification(user, "pending", 9500, true, 10),
                "verification_not_passed",
            ),
            (
                "stale",
                verification(user, "passed", 9500, true, 11 * 60),
                "verification_stale",
            ),
        ]
    }

    async fn sm2_event_certificates_follow_the_same_rules_and_chain_to_the_sm2_root(db: Db) {
        let app = spawn_app(db).await.unwrap();
        let s = &app.services;
        let zhang = app.user_id("buyer-zhang").await;
        let li = app.user_id("buyer-li").await;
        for (what, v, expected) in refused_cases(&zhang) {
            s.store.insert_identity_verification(&v).await.unwrap();
            let err = svc::issue_sm2_event_certificate(s, &caller(&zhang), &v.id)
                .await
                .unwrap_err();
            assert_eq!(code(err), expected, "{what}");
        }
        let theirs = verification(&li, "passed", 9500, true, 10);
        s.store.insert_identity_verification(&theirs).await.unwrap();
        let err = svc::issue_sm2_event_certificate(s, &caller(&zhang), &theirs.id)
            .await
            .unwrap_err();
        assert_eq!(code(err), "not_found");

        let good = verification(&zhang, "passed", 8000, true, 30);
        s.store.insert_identity_verification(&good).await.unwrap();
        let (rec, key) = svc::issue_sm2_event_certificate(s, &caller(&zhang), &good.id)
            .await
            .unwrap();
        // Logged with the verification and the SM2 people's CA as issuer.
        let logged = s.store.certificate(&rec.serial).await.unwrap().unwrap();
        assert_eq!(logged.profile, "sm2-event");
        assert_eq!(logged.issuer, "sm2-people-ca");
        assert_eq!(logged.verification_id.as_deref(), Some(good.id.as_str()));
        assert_eq!(logged.der, rec.der);
        // The person's name and ID pseudonym (never the number), the key made for it, 30
        // minutes, the CRL point, signed by the SM2 people's CA with the fixed ID.
        let (_, c) = x509_parser::parse_x509_certificate(&rec.der).unwrap();
        let subject = c.subject().to_string();
        assert!(subject.contains("CN=张伟"), "{subject}");
        assert!(subject.contains(&good.id_pseudonym), "{subject}");
        assert!(!subject.contains("44190019900101001X"));
        assert_eq!(c.public_key().raw, key.public_key_der());
        let lasts = c.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp();
        assert!((29 * 60..=30 * 60).contains(&lasts), "{lasts} s");
        let people_ca = &s.pki.gm.people_ca;
        assert!(virtual_window::pki::gm::signed_by(
            &rec.der,
            people_ca.key.public_key_der()
        ));
        let text = String::from_utf8_lossy(&rec.der).into_owned();
        assert!(text.contains("/pki/crl/sm2-people-ca.crl"));
        // It signs: an SM2 signature by its key verifies under its certificate's key.
        let sig = key.sign(b"tbs").unwrap();
        assert!(virtual_window::pki::sm2::verify(
            c.public_key().raw,
            b"tbs",
            &sig
        ));
        // OpenSSL verifies it link by link up to the SM2 root, with the ID.
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, der: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, virtual_window::pki::ca::pem("CERTIFICATE", der)).unwrap();
            p
        };
        let root = w("root.pem", &s.pki.gm.root.cert_der);
        let ca = w("ca.pem", &people_ca.cert_der);
        let leaf = w("leaf.pem", &rec.der);
        // One link at a time, as docs/pki.md says: a whole-chain call with `-vfyopt` failed at
        // the CA link (error 7, depth 1) when tried.
        for (anchor, cert, partial) in [(&root, &ca, false), (&ca, &leaf, true)] {
            let mut cmd = std::process::Command::new("openssl");
            cmd.args(["verify", "-vfyopt", "distid:1234567812345678"]);
            if partial {
                cmd.arg("-partial_chain");
            }
            let out = cmd.arg("-CAfile").arg(anchor).arg(cert).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Audited like the P-256 one, with the algorithm named.
        let audited = {
            use crate::helpers::ChainedAudit;
            s.store.chained_audit_events(0, 10_000).await.unwrap()
        };
        let entry = audited
            .iter()
            .find(|e| e.action == "certificate.issue_event" && e.object_id == rec.serial)
            .expect("the SM2 event certificate is audited");
        assert!(
            entry.detail.contains("\"algorithm\":\"sm2\""),
            "{}",
            entry.detail
        );
        assert!(entry.detail.contains(&good.id));
        // One certificate per verification, whichever the algorithm.
        let again = svc::issue_sm2_event_certificate(s, &caller(&zhang), &good.id)
            .await
            .unwrap_err();
        assert_eq!(code(again), "verification_already_used");
        let other = verification(&zhang, "passed", 9000, true, 20);
        s.store.insert_identity_verification(&other).await.unwrap();
        svc::issue_event_certificate(s, &caller(&zhang), &other.id)
            .await
            .unwrap();
        let err = svc::issue_sm2_event_certificate(s, &caller(&zhang), &other.id)
            .await
            .unwrap_err();
        assert_eq!(code(err), "verification_already_used");
        // Revoked like any other: on the SM2 people's CA's next CRL.
        svc::revoke(s, None, &rec.serial, svc::RevocationReason::KeyCompromise)
            .await
            .unwrap();
        let crl = virtual_window::services::gm::crl(s, "sm2-people-ca")
            .await
            .unwrap();
        let (_, parsed) = x509_parser::parse_x509_crl(&crl).unwrap();
        let serials: Vec<String> = parsed
            .iter_revoked_certificates()
            .map(|r| {
                r.raw_serial()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            })
            .collect();
        assert!(serials.contains(&rec.serial), "{serials:?}");
    }
}

/// The Python of the virtual environment with pyHanko (scripts/test installs it). With
/// VW_REQUIRE_PYHANKO=1 a missing one fails the test instead of skipping it.
pub fn pyhanko_python() -> Option<String> {
    let from_env = std::env::var("VW_PYTHON").ok().filter(|p| !p.is_empty());
    let candidate = from_env.unwrap_or_else(|| "target/venv/bin/python".into());
    let ok = Command::new(&candidate)
        .args(["-c", "import pyhanko_certvalidator"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(candidate);
    }
    assert!(
        std::env::var("VW_REQUIRE_PYHANKO").as_deref() != Ok("1"),
        "pyHanko is required (VW_REQUIRE_PYHANKO=1) but `{candidate}` cannot import it"
    );
    None
}

#[test]
fn pyhanko_certificate_validator_accepts_every_kind_and_shows_chinese_names() {
    let Some(python) = pyhanko_python() else {
        eprintln!("pyHanko not installed; run scripts/test");
        return;
    };
    let i = issue_all(KeyAlgorithm::EcdsaP256, OffsetDateTime::now_utc());
    let dir = tempfile::tempdir().unwrap();
    let root = write(dir.path(), "root.pem", &i.hierarchy.root.cert_pem());
    let run = |leaf: &ca::IssuedCertificate, ca_name: &str, usage: &str, root: &str| {
        let ca = write(
            dir.path(),
            &format!("{ca_name}.pem"),
            &i.hierarchy.authority(ca_name).unwrap().cert_pem(),
        );
        let leaf_path = write(dir.path(), &format!("{}.pem", leaf.profile), &leaf.pem());
        let out = Command::new(&python)
            .args([
                "tests/tools/certvalidate.py",
                root,
                &leaf_path,
                &ca,
                "--usage",
                usage,
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run(&i.event, "people-ca", "non_repudiation", &root);
    assert!(ok && out.contains("VALID") && out.contains("张伟"), "{out}");
    let (ok, out) = run(&i.seal, "organisations-ca", "non_repudiation", &root);
    assert!(
        ok && out.contains("东莞市云境置业有限公司") && out.contains("合同专用章"),
        "{out}"
    );
    let (ok, out) = run(&i.centre, "organisations-ca", "digital_signature", &root);
    assert!(ok && out.contains("不动产登记专用章"), "{out}");
    let (ok, out) = run(&i.tsa, "timestamping-ca", "time_stamping", &root);
    assert!(ok, "{out}");
    // Against a root it does not trust, pyHanko refuses.
    let stranger = issue_all(KeyAlgorithm::EcdsaP256, OffsetDateTime::now_utc());
    let other_root = write(
        dir.path(),
        "other-root.pem",
        &stranger.hierarchy.root.cert_pem(),
    );
    let (ok, out) = run(&i.event, "people-ca", "non_repudiation", &other_root);
    assert!(!ok && out.contains("INVALID"), "{out}");
}
