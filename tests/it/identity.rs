//! Identity checks: every sandbox outcome, forged callbacks, the `http` provider against the
//! stand-in over real connections (hangs, 500s, the circuit breaker), the signing hook failing
//! closed, one-time codes, validation of ID numbers and USCCs with their rules, and personal data
//! never stored or logged in the clear.

use crate::helpers::{ChainedAudit, Db, TestApp, spawn_app, spawn_app_with};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use virtual_window::config::DEV_DEMO_PASSWORD;
use virtual_window::domain::identity::id_check_character;
use virtual_window::identity::Purpose;
use virtual_window::identity::sandbox::Sandbox;
use virtual_window::pdf::verify::{Options, Verdict};
use virtual_window::services::{Caller, identity, signing};

/// A valid ID number whose sequence code is `seq` (the sandbox's trigger).
pub fn id_with_sequence(seq: &str) -> String {
    let body = format!("44190019900101{seq}");
    format!("{body}{}", id_check_character(&body).unwrap())
}

/// A new buyer account with the given identity; returns its access token.
async fn buyer(app: &TestApp, username: &str, name: &str, id_number: &str) -> String {
    let admin = app.token("admin").await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": username, "display_name": name, "password": DEV_DEMO_PASSWORD, "role": "buyer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let token = app.token(username).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/me/identity",
            Some(&token),
            Some(json!({"real_name": name, "id_number": id_number})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    token
}

async fn start(app: &TestApp, token: &str) -> crate::helpers::Reply {
    app.post(
        "/api/v1/identity/verifications",
        Some(token),
        json!({"purpose": "sign_contract"}),
    )
    .await
}

fn callback_request(
    path: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> axum::http::Request<axum::body::Body> {
    let mut b = axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    b.body(axum::body::Body::from(body)).unwrap()
}

async fn every_sandbox_outcome(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let cases = [
        ("001", "passed", None),
        ("901", "failed", Some("similarity_below_threshold")),
        ("902", "failed", Some("liveness_failed")),
        ("905", "failed", Some("identity_mismatch")),
    ];
    for (seq, status, reason) in cases {
        let token = buyer(&app, &format!("sbx-{seq}"), "张伟", &id_with_sequence(seq)).await;
        let r = start(&app, &token).await;
        assert_eq!(r.status, StatusCode::CREATED, "{seq}: {}", r.text);
        assert_eq!(r.body["status"], "pending");
        assert!(
            r.body["redirect_url"]
                .as_str()
                .unwrap()
                .contains("sandbox_ref=sbx-")
        );
        assert_eq!(
            r.body["id_number_masked"],
            format!("4419**********{}", &id_with_sequence(seq)[14..])
        );
        let id = r.body["id"].as_str().unwrap().to_owned();
        // The result is fetched from the provider when the owner looks (polling fallback).
        let r = app
            .get(
                &format!("/api/v1/identity/verifications/{id}"),
                Some(&token),
            )
            .await;
        assert_eq!(r.body["status"], status, "{seq}: {}", r.text);
        if let Some(reason) = reason {
            let reasons: Vec<&str> = r.body["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["code"].as_str().unwrap())
                .collect();
            assert_eq!(reasons, [reason], "{seq}");
        }
        if seq == "901" {
            assert_eq!(r.body["similarity"], 79.9);
            assert_eq!(r.body["threshold"], 80.0);
        }
    }
    // Provider timeout and provider error: nothing can proceed, and the person is told so.
    for seq in ["903", "906"] {
        let token = buyer(&app, &format!("sbx-{seq}"), "李娜", &id_with_sequence(seq)).await;
        let r = start(&app, &token).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{seq}");
        assert_eq!(r.code(), "identity_provider_unavailable");
        let r = app
            .post(
                "/api/v1/identity/codes",
                Some(&token),
                json!({"purpose": "sign_contract", "document_sha256": "ab".repeat(32)}),
            )
            .await;
        assert_eq!(r.code(), "verification_required", "{seq}: fails closed");
    }
    // Pending, then the signed callback decides.
    let token = buyer(&app, "sbx-904", "王芳", &id_with_sequence("904")).await;
    let r = start(&app, &token).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .get(
            &format!("/api/v1/identity/verifications/{id}"),
            Some(&token),
        )
        .await;
    assert_eq!(r.body["status"], "pending");
    let v = app
        .services
        .store
        .identity_verification(&id)
        .await
        .unwrap()
        .unwrap();
    let sandbox = Sandbox::new(
        app.services
            .config
            .identity
            .sandbox_secret
            .expose()
            .as_bytes(),
    );
    let path = "/api/v1/identity/callbacks/sandbox";
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (h, body) = sandbox.callback(v.provider_ref.as_deref().unwrap(), path, now);
    let r = app.send(callback_request(path, &h.pairs(), body)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .get(
            &format!("/api/v1/identity/verifications/{id}"),
            Some(&token),
        )
        .await;
    assert_eq!(r.body["status"], "passed");
    // Somebody else's verification is not there for them.
    let other = app.token("buyer-li").await;
    let r = app
        .get(
            &format!("/api/v1/identity/verifications/{id}"),
            Some(&other),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn forged_callbacks_are_refused(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let token = buyer(&app, "cb-904", "王芳", &id_with_sequence("904")).await;
    let r = start(&app, &token).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let v = app
        .services
        .store
        .identity_verification(&id)
        .await
        .unwrap()
        .unwrap();
    let provider_ref = v.provider_ref.unwrap();
    let path = "/api/v1/identity/callbacks/sandbox";
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let genuine = Sandbox::new(
        app.services
            .config
            .identity
            .sandbox_secret
            .expose()
            .as_bytes(),
    );
    let forger = Sandbox::new(b"not the shared secret");

    let (h, body) = forger.callback(&provider_ref, path, now);
    let r = app.send(callback_request(path, &h.pairs(), body)).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "callback_bad_signature")
    );

    let (h, body) = genuine.callback(&provider_ref, path, now - 600);
    let r = app.send(callback_request(path, &h.pairs(), body)).await;
    assert_eq!(r.code(), "callback_stale");

    let (h, mut body) = genuine.callback(&provider_ref, path, now);
    body.extend_from_slice(b" ");
    let r = app.send(callback_request(path, &h.pairs(), body)).await;
    assert_eq!(r.code(), "callback_bad_signature", "the body is signed");

    let r = app.send(callback_request(path, &[], b"{}".to_vec())).await;
    assert_eq!(r.code(), "callback_unsigned");

    let (h, body) = genuine.callback(&provider_ref, "/api/v1/identity/callbacks/http", now);
    let r = app
        .send(callback_request(
            "/api/v1/identity/callbacks/http",
            &h.pairs(),
            body,
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a provider that is not configured"
    );

    let still = app
        .services
        .store
        .identity_verification(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        still.status.as_str(),
        "pending",
        "nothing forged was recorded"
    );

    let (h, body) = genuine.callback(&provider_ref, path, now);
    let r = app
        .send(callback_request(path, &h.pairs(), body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.send(callback_request(path, &h.pairs(), body)).await;
    assert_eq!(r.code(), "callback_replayed");
}

/// Staff identities are registered by an administrator (audited, the number never in the
/// audit); the person cannot change a registered identity themself.
async fn administrators_register_staff_identities(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let admin = app.token("admin").await;
    let drafter_id = app.user_id("yj-drafter").await;
    let number = id_with_sequence("123");
    let path = format!("/api/v1/users/{drafter_id}/identity");
    let body = json!({"real_name": "陈晓明", "id_number": number});
    let r = app
        .call(Method::PUT, &path, Some(&admin), Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/users/no-such-user/identity",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let bad = json!({"real_name": "陈晓明", "id_number": "441900199001010011"});
    let r = app.call(Method::PUT, &path, Some(&admin), Some(bad)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let drafter = app.token("yj-drafter").await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/me/identity",
            Some(&drafter),
            Some(body),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the self-service form is the buyers'"
    );
    let (name, id) = identity::identity_of(&app.services, &drafter_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((name.as_str(), id.as_str()), ("陈晓明", number.as_str()));
    let events = app
        .services
        .store
        .chained_audit_events(0, 100_000)
        .await
        .unwrap();
    let e = events
        .iter()
        .find(|e| e.action == "user.identity_set")
        .unwrap();
    assert_eq!(e.object_id, drafter_id);
    assert!(!e.detail.contains(&number));
}

crate::on_both_databases!(
    administrators_register_staff_identities,
    every_sandbox_outcome,
    forged_callbacks_are_refused,
    codes_and_the_signing_hook
);

fn caller_of(app: &TestApp, user_id: String) -> Caller {
    let _ = app;
    Caller {
        user_id,
        role: virtual_window::domain::Role::Buyer,
        duties: vec![],
        organisation_id: None,
        source: None,
        idempotency: None,
    }
}

async fn codes_and_the_signing_hook(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let font = crate::pdf::cjk_font();
    let s = &app.services;
    let contract = virtual_window::services::documents::render_contract(
        &font,
        virtual_window::services::documents::CONTRACT_TEMPLATE,
        &crate::pdf::contract::sample(),
        "https://window.example",
        "2026-11-28T10:00:00+08:00",
    )
    .unwrap()
    .pdf;
    let hash: String = openssl::sha::sha256(&contract)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let token = app.token("buyer-zhang").await;
    let zhang = caller_of(&app, app.user_id("buyer-zhang").await);

    // No verification yet: no code, and signing fails closed.
    let err = identity::request_code(s, &zhang, Purpose::SignContract, &hash)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "verification_required");
    let err = signing::sign_as_person(
        s,
        &zhang,
        &contract,
        &hash,
        "buyer-1",
        &signing::Intent {
            purpose: Purpose::SignContract,
            code_id: "nope",
            code: "000000",
        },
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), "code_invalid");

    let r = start(&app, &token).await;
    let vid = r.body["id"].as_str().unwrap().to_owned();
    app.get(
        &format!("/api/v1/identity/verifications/{vid}"),
        Some(&token),
    )
    .await;
    let r = app
        .post(
            "/api/v1/identity/codes",
            Some(&token),
            json!({"purpose": "sign_contract", "document_sha256": hash}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let code_id = r.body["code_id"].as_str().unwrap().to_owned();
    let code = r.body["dev_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));

    // A wrong code counts against the code; a code for another document is refused.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let err = signing::sign_as_person(
        s,
        &zhang,
        &contract,
        &hash,
        "buyer-1",
        &signing::Intent {
            purpose: Purpose::SignContract,
            code_id: &code_id,
            code: wrong,
        },
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), "code_wrong");
    let mut other_doc = contract.clone();
    other_doc.extend_from_slice(b"\n%changed\n");
    let other_hash: String = openssl::sha::sha256(&other_doc)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let err = signing::sign_as_person(
        s,
        &zhang,
        &other_doc,
        &other_hash,
        "buyer-1",
        &signing::Intent {
            purpose: Purpose::SignContract,
            code_id: &code_id,
            code: &code,
        },
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        err.code(),
        "code_other_document",
        "the code binds the exact bytes shown"
    );
    // Somebody else cannot use it.
    let li = caller_of(&app, app.user_id("buyer-li").await);
    let err = signing::sign_as_person(
        s,
        &li,
        &contract,
        &hash,
        "buyer-1",
        &signing::Intent {
            purpose: Purpose::SignContract,
            code_id: &code_id,
            code: &code,
        },
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), "code_invalid");

    // The real thing: signed, B-T, trusted by this installation's root.
    let signed = signing::sign_as_person(
        s,
        &zhang,
        &contract,
        &hash,
        "buyer-1",
        &signing::Intent {
            purpose: Purpose::SignContract,
            code_id: &code_id,
            code: &code,
        },
        None,
    )
    .await
    .unwrap();
    assert!(signed.pdf.starts_with(&contract));
    assert_eq!(signed.authorization.verification_id, vid);
    assert_eq!(signed.authorization.document_sha256, hash);
    assert_eq!(signed.authorization.similarity, Some(96.5));
    let opts = Options {
        trust: vec![openssl::x509::X509::from_der(&s.pki.hierarchy.root.cert_der).unwrap()],
        now: time::OffsetDateTime::now_utc(),
    };
    let report = virtual_window::pdf::verify::verify(&signed.pdf, &opts).unwrap();
    assert_eq!(report.verdict, Verdict::Valid, "{report:#?}");
    assert!(
        report.signatures[0]
            .signer
            .as_ref()
            .unwrap()
            .subject
            .contains("CN=张伟")
    );
    assert!(
        !report.signatures[0]
            .signer
            .as_ref()
            .unwrap()
            .subject
            .contains("4419"),
        "a pseudonym, not the ID number"
    );

    // Spent: the same code cannot sign again.
    let err = signing::sign_as_person(
        s,
        &zhang,
        &contract,
        &hash,
        "buyer-2",
        &signing::Intent {
            purpose: Purpose::SignContract,
            code_id: &code_id,
            code: &code,
        },
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), "code_used");

    // The verification went into that signature's certificate: no code for it any more, a
    // new signature checks the face again.
    let r = app
        .post(
            "/api/v1/identity/codes",
            Some(&token),
            json!({"purpose": "sign_contract", "document_sha256": hash}),
        )
        .await;
    assert_eq!(r.code(), "verification_used", "{}", r.text);
    let again = start(&app, &token).await;
    let again = again.body["id"].as_str().unwrap().to_owned();
    app.get(
        &format!("/api/v1/identity/verifications/{again}"),
        Some(&token),
    )
    .await;

    // Expired codes and stale verifications are refused.
    let r = app
        .post(
            "/api/v1/identity/codes",
            Some(&token),
            json!({"purpose": "sign_contract", "document_sha256": hash}),
        )
        .await;
    let (cid, c) = (
        r.body["code_id"].as_str().unwrap().to_owned(),
        r.body["dev_code"].as_str().unwrap().to_owned(),
    );
    let mut row = s.store.signing_code(&cid).await.unwrap().unwrap();
    row.id = uuid::Uuid::new_v4().to_string();
    row.expires_at = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    row.code_hash = s.identity.personal.code_hash(&row.id, &c);
    s.store.insert_signing_code(&row).await.unwrap();
    let err = identity::authorize_signing(s, &zhang, Purpose::SignContract, &hash, &row.id, &c)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "code_expired");

    let stale = spawn_app_with(Db::Sqlite, |c| c.identity.freshness_secs = 0)
        .await
        .unwrap();
    let t = stale.token("buyer-zhang").await;
    let r = start(&stale, &t).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    stale
        .get(&format!("/api/v1/identity/verifications/{id}"), Some(&t))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = stale
        .post(
            "/api/v1/identity/codes",
            Some(&t),
            json!({"purpose": "sign_contract", "document_sha256": hash}),
        )
        .await;
    assert_eq!(r.code(), "verification_stale");

    // Another purpose needs its own verification; the developer's confirmer verifies to seal.
    let r = app
        .post(
            "/api/v1/identity/codes",
            Some(&token),
            json!({"purpose": "apply_registration", "document_sha256": hash}),
        )
        .await;
    assert_eq!(r.code(), "verification_required");
    let confirmer = app.token("yj-confirmer").await;
    let r = app
        .post(
            "/api/v1/identity/verifications",
            Some(&confirmer),
            json!({"purpose": "seal_contract"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let drafter = app.token("yj-drafter").await;
    let r = app
        .post(
            "/api/v1/identity/verifications",
            Some(&drafter),
            json!({"purpose": "seal_contract"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only the confirmer seals");
    let r = app
        .post(
            "/api/v1/identity/verifications",
            Some(&confirmer),
            json!({"purpose": "sign_contract"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a developer does not sign as a buyer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_rate_limited() {
    let Some(app) = spawn_app_with(Db::Sqlite, |c| c.identity.codes_per_hour = 2).await else {
        return;
    };
    let token = app.token("buyer-zhang").await;
    let r = start(&app, &token).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    app.get(
        &format!("/api/v1/identity/verifications/{id}"),
        Some(&token),
    )
    .await;
    let ask = || {
        app.post(
            "/api/v1/identity/codes",
            Some(&token),
            json!({"purpose": "sign_contract", "document_sha256": "cd".repeat(32)}),
        )
    };
    assert_eq!(ask().await.status, StatusCode::CREATED);
    assert_eq!(ask().await.status, StatusCode::CREATED);
    let r = ask().await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_codes")
    );
    assert!(r.headers.get("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_id_numbers_and_usccs_are_rejected_with_their_rule() {
    let Some(app) = spawn_app(Db::Sqlite).await else {
        return;
    };
    let admin = app.token("admin").await;
    app.post(
        "/api/v1/users",
        Some(&admin),
        json!({"username": "newbie", "display_name": "新人", "password": DEV_DEMO_PASSWORD, "role": "buyer"}),
    )
    .await;
    let token = app.token("newbie").await;
    let body17 = |d: &str| format!("441900{d}001");
    let with_check = |b: String| {
        let c = id_check_character(&b).unwrap();
        format!("{b}{c}")
    };
    let cases = [
        ("441900199001010011".to_owned(), "checksum"),
        (with_check(body17("19900231")), "date"),
        (with_check(body17("20991201")), "future_date"),
        ("441900900101001".to_owned(), "old_form"),
        ("4419001990".to_owned(), "length"),
    ];
    let before = app.audit_len().await;
    for (id, rule) in cases {
        let r = app
            .call(
                Method::PUT,
                "/api/v1/me/identity",
                Some(&token),
                Some(json!({"real_name": "张伟", "id_number": id})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{id}");
        assert_eq!(r.body["errors"][0]["field"], "id_number");
        assert_eq!(r.body["errors"][0]["code"], rule, "{id}");
    }
    let r = app
        .call(
            Method::PUT,
            "/api/v1/me/identity",
            Some(&token),
            Some(json!({"real_name": "Zhang", "id_number": "44190019900101001X"})),
        )
        .await;
    assert_eq!(r.body["errors"][0]["field"], "real_name");
    assert_eq!(app.audit_len().await, before, "nothing written");
    assert!(
        virtual_window::services::identity::identity_of(
            &app.services,
            &app.user_id("newbie").await
        )
        .await
        .unwrap()
        .is_none()
    );

    // The USCC: the check character of GB 32100, in the contract data and in the domain type.
    let mut data = crate::pdf::contract::sample();
    data.seller.uscc = "91441900MA4W0L7N37".into();
    let issues = data.validate();
    assert!(
        issues
            .iter()
            .any(|i| i.field == "seller.uscc" && i.rule == "checksum"),
        "{issues:?}"
    );
    for (bad, rule) in [
        ("91441900MA4W0L7N37", "checksum"),
        ("91441900MA4W0L7NI6", "characters"),
        ("9144190", "length"),
    ] {
        assert_eq!(
            virtual_window::domain::identity::Uscc::parse(bad)
                .unwrap_err()
                .rule,
            rule
        );
    }
    let mut data = crate::pdf::contract::sample();
    data.buyers[0].id_number = "441900199001010011".into();
    assert!(
        data.validate()
            .iter()
            .any(|i| i.field == "buyers[0].id_number" && i.rule == "checksum")
    );

    // Registered once, the identity is locked against self-service changes.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/me/identity",
            Some(&token),
            Some(json!({"real_name": "张伟", "id_number": "44190019900101001X"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/me/identity",
            Some(&token),
            Some(json!({"real_name": "李娜", "id_number": "441900198506150021"})),
        )
        .await;
    assert_eq!(r.code(), "identity_locked");
    // The person reads their own full number; that access is logged. /me shows no number.
    let before = app.audit_len().await;
    let r = app.get("/api/v1/me/identity", Some(&token)).await;
    assert_eq!(r.body["id_number"], "44190019900101001X");
    assert_eq!(r.body["id_number_masked"], "4419**********001X");
    assert_eq!(app.audit_len().await, before + 1);
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert!(!me.text.contains("44190019900101001X"));
}

/// The `http` provider against the stand-in over real connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_http_provider_works_over_real_connections_and_fails_closed() {
    use virtual_window::identity::standin::{StandinConfig, router};
    let secret = "a shared secret of more than thirty-two characters".to_owned();
    let (standin, controls) = router(StandinConfig {
        key_id: "vw-test".into(),
        secret: secret.as_bytes().to_vec(),
        callback_delay: Duration::from_millis(200),
    });
    let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider_addr = provider_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(provider_listener, standin).await });

    let service_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service_addr = service_listener.local_addr().unwrap();
    let Some(app) = spawn_app_with(Db::Sqlite, |c| {
        c.public_url = Some(format!("http://{service_addr}"));
        c.identity.provider = virtual_window::config::IdentityProviderKind::Http;
        c.identity.http.base_url = Some(format!("http://{provider_addr}"));
        c.identity.http.key_id = "vw-test".into();
        c.identity.http.secret = Some(virtual_window::config::Secret::new(secret.clone()));
        c.identity.http.timeout_ms = 300;
        c.identity.http.retries = 1;
        c.identity.http.breaker_failures = 2;
        c.identity.http.breaker_open_secs = 60;
    })
    .await
    else {
        return;
    };
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(service_listener, router).await });

    let wait_for = |id: String, token: String| {
        let app = &app;
        async move {
            for _ in 0..50 {
                let r = app
                    .get(
                        &format!("/api/v1/identity/verifications/{id}"),
                        Some(&token),
                    )
                    .await;
                if r.body["status"] != "pending" {
                    return r.body;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Value::Null
        }
    };
    // Passed, through the provider's signed callback (and polling as a fallback).
    let token = app.token("buyer-zhang").await;
    let r = start(&app, &token).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["provider"], "http");
    assert!(
        r.body["redirect_url"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );
    let id = r.body["id"].as_str().unwrap().to_owned();
    let done = wait_for(id.clone(), token.clone()).await;
    assert_eq!(done["status"], "passed", "{done}");

    // Pending at the provider until its callback completes it.
    let t904 = buyer(&app, "http-904", "王芳", &id_with_sequence("904")).await;
    let r = start(&app, &t904).await;
    let id904 = r.body["id"].as_str().unwrap().to_owned();
    let done = wait_for(id904, t904).await;
    assert_eq!(done["status"], "passed", "{done}");
    let low = buyer(&app, "http-901", "李娜", &id_with_sequence("901")).await;
    let r = start(&app, &low).await;
    let done = wait_for(r.body["id"].as_str().unwrap().to_owned(), low).await;
    assert_eq!(done["status"], "failed");

    // A provider that hangs: the start fails closed within the timeout and retries.
    controls.hang_ms.store(5_000, Ordering::SeqCst);
    let began = std::time::Instant::now();
    let r = start(&app, &token).await;
    assert_eq!(
        (r.status, r.code()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "identity_provider_unavailable"
        )
    );
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    controls.hang_ms.store(0, Ordering::SeqCst);
    // A provider answering 500: refused again, and after two failures the breaker opens and
    // no further request reaches the provider.
    controls.fail.store(true, Ordering::SeqCst);
    let r = start(&app, &token).await;
    assert_eq!(r.code(), "identity_provider_unavailable");
    let seen = controls.requests.load(Ordering::SeqCst);
    let r = start(&app, &token).await;
    assert_eq!(r.code(), "identity_provider_unavailable");
    assert_eq!(
        controls.requests.load(Ordering::SeqCst),
        seen,
        "the circuit breaker is open"
    );
    // Nothing was signed: the failed verifications give no code.
    let r = app
        .post(
            "/api/v1/identity/codes",
            Some(&low_token(&app).await),
            json!({"purpose": "sign_contract", "document_sha256": "ab".repeat(32)}),
        )
        .await;
    assert_eq!(r.code(), "verification_required");
    let _ = Arc::new(());
}

async fn low_token(app: &TestApp) -> String {
    app.token("http-901").await
}
