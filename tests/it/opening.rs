//! Opening day's fixes (issue 15): sign-ins bounded by the hashing slots (503 with
//! `Retry-After` past a short wait), an idempotency claim left by a killed process expires and
//! the retry gets the committed result, CRL numbers grow across instances, and the sign-in limits
//! hold across instances.

use crate::helpers::{Db, TestApp, spawn_app_with};
use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;
use virtual_window::config::DEV_DEMO_PASSWORD;
use virtual_window::services::{Error, Services};

/// Another instance of the service on the same database (and PKI directory).
async fn second_instance(app: &TestApp) -> Services {
    let cfg = (*app.services.config).clone();
    virtual_window::server::prepare(Arc::new(cfg))
        .await
        .expect("a second instance")
}

/// Runs SQL against the test's database (to leave it as a killed process would).
async fn exec(app: &TestApp, sql: &str, at: time::OffsetDateTime) {
    let url = &app.db.url;
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
    }
}

async fn concurrent_sign_ins_are_bounded(db: Db) {
    let Some(app) = spawn_app_with(db, |c| {
        c.auth.hash_concurrency = 2;
        c.auth.hash_wait_ms = 150;
        c.auth.login_attempts_per_address = 10_000;
        c.auth.login_attempts_per_account = 10_000;
    })
    .await
    else {
        return;
    };
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..48 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let password = if i % 2 == 0 {
                DEV_DEMO_PASSWORD
            } else {
                "wrong"
            };
            app.post(
                "/api/v1/auth/login",
                None,
                json!({"username": "yj-drafter", "password": password}),
            )
            .await
        }));
    }
    let mut busy = 0;
    let mut answered = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(r.code(), "busy", "{}", r.text);
                assert!(
                    r.headers.contains_key("retry-after"),
                    "503 says when to retry"
                );
                busy += 1;
            }
            StatusCode::OK | StatusCode::UNAUTHORIZED => answered += 1,
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert!(
        app.services.hashing.peak() <= 2,
        "at most two hashes ran at once, saw {}",
        app.services.hashing.peak()
    );
    assert!(busy > 0, "a burst beyond the slots is told to come back");
    assert!(answered > 0, "those within the slots are answered");
    // After the burst the slots are free again.
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "yj-drafter", "password": DEV_DEMO_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn an_abandoned_claim_expires_and_the_retry_gets_the_committed_result(db: Db) {
    let Some(app) = spawn_app_with(db, |c| c.http.idempotency_lease_secs = 1).await else {
        return;
    };
    let unit = crate::contracts::units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized && !u.objection && !u.manual_hold)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let draft = crate::contracts::draft_for(&unit);
    let post = |key: &'static str, body: serde_json::Value| {
        let app = &app;
        let drafter = drafter.clone();
        async move {
            app.send(
                axum::http::Request::post("/api/v1/contracts")
                    .header("authorization", format!("Bearer {drafter}"))
                    .header("content-type", "application/json")
                    .header("idempotency-key", key)
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
        }
    };
    let first = post("draft-1", draft.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let id = first.body["id"].as_str().unwrap().to_owned();
    // The process dies after committing the draft and before recording the answer: the claim
    // stays, unanswered.
    exec(
        &app,
        "UPDATE idempotency_keys SET status = NULL, content_type = NULL, response = NULL, lease_until = $1 WHERE key = 'draft-1'",
        time::OffsetDateTime::now_utc() + time::Duration::seconds(30),
    )
    .await;
    let early = post("draft-1", draft.clone()).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.code(), "idempotency_in_progress");
    // Its lease runs out: the retry takes the key over, finds the committed draft, answers it.
    exec(
        &app,
        "UPDATE idempotency_keys SET lease_until = $1 WHERE key = 'draft-1'",
        time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
    )
    .await;
    let retry = post("draft-1", draft.clone()).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
    assert_eq!(
        retry.body["id"],
        id.as_str(),
        "the committed draft, not a second one"
    );
    assert_eq!(retry.headers["idempotent-replay"], "true");
    let again = post("draft-1", draft.clone()).await;
    assert_eq!(
        again.body["id"],
        id.as_str(),
        "and it is the key's answer now"
    );
    let live: Vec<_> = app
        .services
        .store
        .list_contracts(&virtual_window::store::ContractQuery {
            scope: virtual_window::store::Scope::All,
            statuses: vec![],
            filter: virtual_window::store::CaseFilter {
                unit_id: Some(unit.id.clone()),
                ..Default::default()
            },
            order: Default::default(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "one contract for the unit");

    // A move made under a key (the confirmation), then the same crash: the retry answers the
    // confirmed contract instead of refusing a second confirmation.
    let confirmer = app.token("yj-confirmer").await;
    let confirm = |key: &'static str| {
        let app = &app;
        let confirmer = confirmer.clone();
        let id = id.clone();
        async move {
            app.send(
                axum::http::Request::post(format!("/api/v1/contracts/{id}/confirm"))
                    .header("authorization", format!("Bearer {confirmer}"))
                    .header("content-type", "application/json")
                    .header("idempotency-key", key)
                    .body(axum::body::Body::from("{}"))
                    .unwrap(),
            )
            .await
        }
    };
    let ok = confirm("confirm-1").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    exec(
        &app,
        "UPDATE idempotency_keys SET status = NULL, content_type = NULL, response = NULL, lease_until = $1 WHERE key = 'confirm-1'",
        time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
    )
    .await;
    let retry = confirm("confirm-1").await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert_eq!(retry.body["status"], "awaiting_buyers");

    // A request whose process died before committing anything: the retry runs as the first.
    let other = crate::contracts::units(&app)
        .await
        .into_iter()
        .find(|u| {
            u.id != unit.id
                && u.status.as_str() == "available"
                && !u.seized
                && !u.objection
                && !u.manual_hold
        })
        .unwrap();
    let mut body = crate::contracts::draft_for(&other);
    body["delivery_date"] = json!("2000-01-01");
    let refused = post("draft-2", body.clone()).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    exec(
        &app,
        "UPDATE idempotency_keys SET status = NULL, content_type = NULL, response = NULL, lease_until = $1 WHERE key = 'draft-2'",
        time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
    )
    .await;
    let rerun = post("draft-2", body).await;
    assert_eq!(rerun.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        rerun.headers.get("idempotent-replay").is_none(),
        "run again, not replayed"
    );
}

fn crl_number(der: &[u8]) -> u64 {
    use x509_parser::prelude::*;
    let (_, crl) = CertificateRevocationList::from_der(der).expect("a CRL");
    crl.crl_number()
        .and_then(|n| n.to_u64_digits().first().copied())
        .expect("a CRL number")
}

async fn crl_numbers_grow_across_instances(db: Db) {
    let Some(app) = spawn_app_with(db, |_| {}).await else {
        return;
    };
    let second = second_instance(&app).await;
    let mut numbers = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { &app.services } else { &second };
        let der = virtual_window::services::pki::crl(s, "people-ca")
            .await
            .unwrap();
        numbers.push(crl_number(&der));
    }
    assert!(
        numbers.windows(2).all(|w| w[1] > w[0]),
        "each new CRL has a larger number, whichever instance made it: {numbers:?}"
    );
    // At the same moment on both instances: still all different.
    let (a, b) = tokio::join!(
        virtual_window::services::pki::crl(&app.services, "people-ca"),
        virtual_window::services::pki::crl(&second, "people-ca")
    );
    assert_ne!(crl_number(&a.unwrap()), crl_number(&b.unwrap()));
}

async fn sign_in_limits_hold_across_instances(db: Db) {
    let Some(app) = spawn_app_with(db, |c| {
        c.auth.login_attempts_per_account = 3;
        c.auth.login_attempts_per_address = 8;
    })
    .await
    else {
        return;
    };
    let second = second_instance(&app).await;
    let login = |s: &Services, user: &str, password: &str, from: &str| {
        let (s, user, password, from) = (
            s.clone(),
            user.to_owned(),
            password.to_owned(),
            from.to_owned(),
        );
        async move { virtual_window::services::accounts::login(&s, &user, &password, &from).await }
    };
    // Three failures, spread over both instances, lock the account on both.
    for i in 0..3 {
        let s = if i % 2 == 0 { &app.services } else { &second };
        let e = login(s, "yj-drafter", "wrong", &format!("10.0.0.{i}"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_credentials");
    }
    for s in [&app.services, &second] {
        let e = login(s, "yj-drafter", DEV_DEMO_PASSWORD, "10.0.1.1")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    }
    // Another account is not affected; one address spraying accounts is stopped on both.
    assert!(
        login(&second, "yj-confirmer", DEV_DEMO_PASSWORD, "10.0.2.1")
            .await
            .is_ok()
    );
    let mut refused = 0;
    for i in 0..10 {
        let s = if i % 2 == 0 { &app.services } else { &second };
        if let Err(Error::RateLimited { .. }) =
            login(s, &format!("nobody-{i}"), "x", "10.9.9.9").await
        {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 2,
        "eight attempts from one address, then refusals on either instance"
    );
}

crate::on_both_databases!(
    concurrent_sign_ins_are_bounded,
    an_abandoned_claim_expires_and_the_retry_gets_the_committed_result,
    crl_numbers_grow_across_instances,
    sign_in_limits_hold_across_instances,
);
