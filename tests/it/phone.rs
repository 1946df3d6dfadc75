//! Buyers sign up and sign in with their mobile number and a one-time code sent by SMS: the
//! sandbox shows the code in development, the HTTP gateway receives each message signed over a
//! real connection; numbers are kept only encrypted; codes are limited and single-use.

use crate::helpers::{ChainedAudit, Db, spawn_app_with};
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use std::sync::{Arc, Mutex};
use virtual_window::identity::signature;

async fn buyers_sign_up_and_in_with_their_phone(db: Db) {
    let Some(app) = spawn_app_with(db, |c| c.sms.codes_per_hour = 3).await else {
        return;
    };
    let before = app.audit_len().await;
    let r = app
        .post(
            "/api/v1/auth/phone/code",
            None,
            json!({"phone": "+86 139-0000-1234"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["phone_masked"], "139****1234");
    let code = r.body["dev_code"].as_str().unwrap().to_owned();
    let challenge = r.body["challenge_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/api/v1/auth/phone/login",
            None,
            json!({"challenge_id": challenge, "code": code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["role"], "buyer");
    let first_user = r.body["user"]["id"].as_str().unwrap().to_owned();
    // The code is spent.
    let r = app
        .post(
            "/api/v1/auth/phone/login",
            None,
            json!({"challenge_id": challenge, "code": code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The same number signs in to the same account.
    let r = app
        .post(
            "/api/v1/auth/phone/code",
            None,
            json!({"phone": "13900001234"}),
        )
        .await;
    let (challenge, code) = (
        r.body["challenge_id"].as_str().unwrap().to_owned(),
        r.body["dev_code"].as_str().unwrap().to_owned(),
    );
    // Wrong codes count; after the fifth the right one no longer works.
    for _ in 0..5 {
        let r = app
            .post(
                "/api/v1/auth/phone/login",
                None,
                json!({"challenge_id": challenge, "code": "000000"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["errors"][0]["code"], "code_wrong");
    }
    let r = app
        .post(
            "/api/v1/auth/phone/login",
            None,
            json!({"challenge_id": challenge, "code": code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/api/v1/auth/phone/code",
            None,
            json!({"phone": "13900001234"}),
        )
        .await;
    let r = app
        .post(
            "/api/v1/auth/phone/login",
            None,
            json!({"challenge_id": r.body["challenge_id"], "code": r.body["dev_code"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["id"], first_user.as_str());
    // A fourth code within the hour is refused.
    let r = app
        .post(
            "/api/v1/auth/phone/code",
            None,
            json!({"phone": "13900001234"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_codes")
    );
    // Not a mobile number.
    let r = app
        .post(
            "/api/v1/auth/phone/code",
            None,
            json!({"phone": "0769-22223333"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["errors"][0]["field"], "phone");
    // Audited, and the number is nowhere in the clear: not in the audit log, not in the rows.
    let events = app
        .services
        .store
        .chained_audit_events(0, 100_000)
        .await
        .unwrap();
    assert!(events.len() > before);
    assert!(events.iter().any(|e| e.action == "user.signup"));
    for e in &events {
        assert!(!format!("{e:?}").contains("13900001234"));
    }
    let stored = app
        .services
        .store
        .user_phone(&first_user)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.contains("13900001234"));
}

crate::on_both_databases!(buyers_sign_up_and_in_with_their_phone);

/// What the stand-in gateway received: headers and body of each request.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// The HTTP gateway: each message posted as signed JSON over a real connection; a gateway
/// refusing the message is `503 sms_unavailable` and no code is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_sms_gateway_receives_signed_messages() {
    let got: Received = Default::default();
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (g, f) = (got.clone(), refuse.clone());
    let router = axum::Router::new().route(
        "/sms/send",
        axum::routing::post(move |headers: HeaderMap, body: bytes::Bytes| {
            let (g, f) = (g.clone(), f.clone());
            async move {
                g.lock().unwrap().push((headers, body.to_vec()));
                if f.load(std::sync::atomic::Ordering::SeqCst) {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::ACCEPTED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let secret = "an-sms-gateway-secret-of-at-least-32-chars";
    let app = spawn_app_with(Db::Sqlite, |c| {
        c.sms.provider = virtual_window::config::SmsProviderKind::Http;
        c.sms.url = Some(format!("http://{addr}/sms/send"));
        c.sms.secret = Some(virtual_window::config::Secret::new(secret.to_owned()));
    })
    .await
    .unwrap();
    let r = app
        .post(
            "/api/v1/auth/phone/code",
            None,
            json!({"phone": "13800000009"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(
        r.body.get("dev_code").is_none(),
        "a real gateway's code is never shown"
    );
    let (headers, body) = got.lock().unwrap()[0].clone();
    let h = signature::Headers::read(|n| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
    .unwrap();
    h.check(
        "virtual-window",
        secret.as_bytes(),
        "POST",
        "/sms/send",
        &body,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .unwrap();
    let msg: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(msg["phone"], "13800000009");
    let text = msg["text"].as_str().unwrap();
    let code: String = text
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(6)
        .collect();
    assert_eq!(code.len(), 6, "{text}");
    // The code the gateway carried signs the person in.
    let r2 = app
        .post(
            "/api/v1/auth/phone/login",
            None,
            json!({"challenge_id": r.body["challenge_id"], "code": code}),
        )
        .await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.text);
    refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = app
        .post(
            "/api/v1/auth/phone/code",
            None,
            json!({"phone": "13800000009"}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "sms_unavailable")
    );
}
