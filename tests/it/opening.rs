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

/// `n` contracts on free units of the sample project, drafted, confirmed and signed by both
/// buyers: ready for the developer's seal.
async fn signed_by_buyers(app: &TestApp, n: usize) -> Vec<String> {
    let drafter = app.token("yj-drafter").await;
    let free: Vec<_> = crate::contracts::units(app)
        .await
        .into_iter()
        .filter(|u| u.status.as_str() == "available" && !u.seized && !u.objection && !u.manual_hold)
        .take(n)
        .collect();
    let mut ids = Vec::new();
    for u in &free {
        let r = app
            .post(
                "/api/v1/contracts",
                Some(&drafter),
                crate::contracts::draft_for(u),
            )
            .await;
        let id = r.body["id"].as_str().unwrap().to_owned();
        crate::contracts::to_buyers_signed(app, &id).await;
        ids.push(id);
    }
    ids
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
    // Every request makes a new CRL here (no reuse), to see the numbers.
    let Some(app) = spawn_app_with(db, |c| c.pki.crl_reuse_secs = 0).await else {
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

/// With reuse on (the default), an instance serves the CRL it made until a revocation changes
/// the list: the next one is new, with a larger number, and lists the revoked certificate.
async fn a_crl_is_reused_until_a_revocation(db: Db) {
    let Some(app) = spawn_app_with(db, |_| {}).await else {
        return;
    };
    let s = &app.services;
    let (seal, _key) = virtual_window::services::pki::issue_seal(
        s,
        None,
        "东莞市云境置业有限公司",
        "91441900MA4W0L7N36",
        "合同专用章",
        None,
    )
    .await
    .unwrap();
    let ca = "organisations-ca";
    let first = virtual_window::services::pki::crl(s, ca).await.unwrap();
    let again = virtual_window::services::pki::crl(s, ca).await.unwrap();
    assert_eq!(first, again, "the same CRL while nothing was revoked");
    let admin = app.token("admin").await;
    let r = app
        .post(
            &format!("/api/v1/pki/certificates/{}/revoke", seal.serial),
            Some(&admin),
            json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let after = virtual_window::services::pki::crl(s, ca).await.unwrap();
    assert_ne!(after, first);
    assert!(crl_number(&after) > crl_number(&first));
    let x = openssl::x509::X509Crl::from_der(&after).unwrap();
    assert_eq!(x.get_revoked().map_or(0, |r| r.len()), 1);
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

/// Key custody on a PKCS#11 token: the whole hierarchy, the units and the seals are keys on
/// the token (the database holds their labels); two instances share the token and the database
/// and both seal, with the one organisation seal issued on first use.
async fn two_instances_share_one_token_and_both_seal(db: Db) {
    let Some(token) = crate::pki::hsm::token() else {
        return;
    };
    let pkcs11 = virtual_window::config::Pkcs11Config {
        module: token.module.clone(),
        token_label: token.token_label.clone(),
        pin: virtual_window::config::Secret::new(token.pin.clone()),
    };
    let Some(app) = spawn_app_with(db, |c| {
        c.pki.custody = virtual_window::config::KeyCustody::Pkcs11;
        c.pki.pkcs11 = Some(pkcs11.clone());
    })
    .await
    else {
        return;
    };
    for name in [
        "root",
        "people-ca",
        "organisations-ca",
        "timestamping-ca",
        "tsa",
        "centre-seal",
    ] {
        let o = app.services.store.pki_object(name).await.unwrap().unwrap();
        assert_eq!(o.key_kind, "pkcs11", "{name} is on the token");
        assert!(o.key_pem.is_none() && o.key_label.is_some());
    }
    let second = second_instance(&app).await;
    let router2 = virtual_window::app(virtual_window::AppState::new(second.clone()));
    let ids = signed_by_buyers(&app, 2).await;
    // One seal through each instance.
    for (i, id) in ids.iter().enumerate() {
        let (token, body) =
            crate::contracts::intent_for(&app, "yj-confirmer", id, "seal_contract").await;
        let router = if i == 0 {
            app.router.clone()
        } else {
            router2.clone()
        };
        use tower::ServiceExt as _;
        let res = router
            .oneshot(
                axum::http::Request::post(format!("/api/v1/contracts/{id}/seal"))
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {token}"))
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "instance {} sealed", i + 1);
    }
    let org = app
        .services
        .store
        .organisation_by_uscc("91441900MA4W0L7N36")
        .await
        .unwrap()
        .unwrap();
    let seal = app
        .services
        .store
        .pki_object(&format!("seal-{}", org.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        seal.key_kind, "pkcs11",
        "the organisation's seal key is on the token"
    );
    let mut serials = Vec::new();
    for id in &ids {
        let sigs = app.services.store.contract_signatures(id).await.unwrap();
        serials.push(
            sigs.iter()
                .find(|x| x.kind == "organisation_seal")
                .unwrap()
                .certificate_serial
                .clone(),
        );
        // Whatever instance sealed it, the reviewer's checks (every signature verified against
        // the root on the token) pass.
        let r = app
            .get(
                &format!("/api/v1/contracts/{id}/checks"),
                Some(&app.token("rc-first").await),
            )
            .await;
        assert_eq!(r.body["current"]["passed"], true, "{}", r.text);
    }
    assert_eq!(serials[0], serials[1], "one seal for the organisation");
}

/// An installation whose PKI was kept as files (before custody in the database) moves it into
/// the database on its first start, and keeps using the same root and units.
async fn pki_files_move_into_the_database(db: Db) {
    use virtual_window::pki::ca::{self, Subject};
    use virtual_window::pki::{Hierarchy, KeyAlgorithm, Profiles, SoftwareKey};
    let Some(t) = crate::helpers::test_db(db).await else {
        return;
    };
    let mut cfg = crate::helpers::test_config(&t);
    let kek = "a key-encryption key of at least thirty-two characters";
    cfg.pki.key_encryption_key = Some(virtual_window::config::Secret::new(kek));
    let dir = cfg.pki_dir();
    let profiles = Profiles::builtin();
    let now = time::OffsetDateTime::now_utc();
    let (h, keys) = Hierarchy::create(
        &profiles,
        KeyAlgorithm::EcdsaP256,
        now,
        "http://127.0.0.1/pki/crl",
    )
    .unwrap();
    h.save(&dir, &keys, kek.as_bytes()).unwrap();
    for (unit, ca_name) in virtual_window::services::pki::UNITS {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = Subject::Unit {
            common_name: format!("legacy {unit}"),
            organisation: ca::OPERATOR.into(),
        };
        let subject = if unit == "tsa" {
            subject
        } else {
            Subject::OrganisationSeal {
                organisation: "东莞市不动产登记中心".into(),
                uscc: "12441900MB2C92110F".into(),
                seal_name: "不动产登记专用章".into(),
                seal_image_sha256: None,
            }
        };
        let issued = ca::issue(
            &profiles,
            h.authority(ca_name).unwrap(),
            unit,
            &subject,
            &key,
            now,
            "http://127.0.0.1/pki/crl",
        )
        .unwrap();
        key.save(&dir.join(format!("{unit}.key.pem")), kek.as_bytes())
            .unwrap();
        std::fs::write(dir.join(format!("{unit}.pem")), issued.pem()).unwrap();
    }
    let s = virtual_window::server::prepare(Arc::new(cfg))
        .await
        .unwrap();
    assert_eq!(
        s.pki.hierarchy.root.cert_der, h.root.cert_der,
        "the same root"
    );
    for name in ["root", "people-ca", "tsa", "centre-seal"] {
        let o = s.store.pki_object(name).await.unwrap().unwrap();
        assert_eq!(o.key_kind, "software");
    }
    // The units work: a time stamp from the moved unit.
    let (req, _) = virtual_window::pki::tsa::request(&[7u8; 32], true).unwrap();
    let reply = virtual_window::services::pki::timestamp(&s, &req).unwrap();
    assert!(virtual_window::pki::tsa::token_from_response(&reply).is_ok());
}

/// A TCP forwarder to the database that can be cut (every connection dropped, new ones closed on
/// arrival) and restored: the database as the instances see it during a failover.
struct Cable {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cable {
    async fn to(target: String) -> Cable {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let (u, l) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                l.lock().unwrap().push(link);
            }
        });
        Cable { port, up, links }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// While the database is away (its connections broken, new ones closed), requests are answered
/// 503 `database_unavailable` with `Retry-After`, not 500; a change sent then and retried with
/// the same Idempotency-Key once the database is back is made once.
async fn a_lost_database_is_503_with_retry_after(db: Db) {
    if db != Db::Postgres {
        return; // SQLite is a file in the process: it cannot go away like a server.
    }
    let Some(t) = crate::helpers::test_db(db).await else {
        return;
    };
    let mut url = url::Url::parse(&t.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let cable = Cable::to(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(cable.port)).unwrap();
    let mut cfg = crate::helpers::test_config(&t);
    cfg.database_url = Some(virtual_window::config::Secret::new(url.to_string()));
    let services = virtual_window::server::prepare(Arc::new(cfg))
        .await
        .expect("prepare");
    virtual_window::services::seed::load(&services)
        .await
        .expect("seed");
    let app = TestApp {
        router: virtual_window::app(virtual_window::AppState::new(services.clone())),
        services,
        db: t,
        tokens: Default::default(),
    };
    let drafter = app.token("yj-drafter").await;
    assert_eq!(
        app.get("/api/v1/contracts", Some(&drafter)).await.status,
        StatusCode::OK
    );

    let unit = crate::contracts::units(&app)
        .await
        .into_iter()
        .find(|u| {
            u.status == virtual_window::domain::lifecycle::UnitStatus::Available
                && !u.seized
                && !u.manual_hold
        })
        .expect("an available unit");
    let draft = crate::contracts::draft_for(&unit);

    cable.cut();
    let r = app.get("/api/v1/contracts", Some(&drafter)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.code(), "database_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert!(r.body["detail"].as_str().unwrap().contains("数据库"));
    // A change sent while it is away: refused the same way, nothing half done.
    let send = |key: &'static str| {
        let body = draft.clone();
        let token = drafter.clone();
        let app = &app;
        async move {
            app.send(
                axum::http::Request::builder()
                    .method("POST")
                    .uri("/api/v1/contracts")
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .header("idempotency-key", key)
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
        }
    };
    let r = send("lost-db-1").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.code(), "database_unavailable");

    cable.restore();
    let first = send("lost-db-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = send("lost-db-1").await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], first.body["id"]);
    let list = app.get("/api/v1/contracts", Some(&drafter)).await;
    assert_eq!(list.status, StatusCode::OK);
}

/// A claim whose request failed on the server's side is ended, not forgotten: the retry takes it
/// over as abandoned (and so first looks for what the failed attempt committed); a different
/// request under the same key is still refused.
async fn a_failed_request_leaves_its_claim_to_the_retry(db: Db) {
    use virtual_window::store::IdempotencyClaim;
    let Some(app) = spawn_app_with(db, |_| {}).await else {
        return;
    };
    let store = &app.services.store;
    let now = time::OffsetDateTime::now_utc();
    let lease = now + time::Duration::seconds(60);
    let first = store
        .claim_idempotency_key("u1", "k1", "h1", now, lease)
        .await
        .unwrap();
    assert!(matches!(first, IdempotencyClaim::New));
    store.release_idempotency_key("u1", "k1").await.unwrap();
    let retry = store
        .claim_idempotency_key("u1", "k1", "h1", now, lease)
        .await
        .unwrap();
    assert!(matches!(retry, IdempotencyClaim::Abandoned));
    let other = store
        .claim_idempotency_key("u1", "k1", "h2", now, lease)
        .await
        .unwrap();
    assert!(matches!(other, IdempotencyClaim::Mismatch));
}

/// A seal commits the seal and then submits the filing; a process (or database) lost between the
/// two leaves the contract `sealed` with the seal's claim unanswered. The retry under the same
/// key answers the committed seal and takes the step the first attempt did not: the contract is
/// submitted and a reviewer can approve it (in the opening-day run, such a retry once left the
/// reviewer with `409 wrong_status`). Never retried, the scheduler submits it a minute later.
async fn a_seal_whose_submission_was_lost_is_submitted_by_the_retry(db: Db) {
    let Some(app) = spawn_app_with(db, |_| {}).await else {
        return;
    };
    // The first attempts run where nothing follows the seal (as if they died right after it).
    let mut cfg = (*app.services.config).clone();
    cfg.workflow.submit_on_seal = false;
    let cut_short = virtual_window::server::prepare(Arc::new(cfg))
        .await
        .unwrap();
    let router2 = virtual_window::app(virtual_window::AppState::new(cut_short));
    let confirmer = app.token("yj-confirmer").await;
    let ids = signed_by_buyers(&app, 2).await;
    let send = |router: axum::Router, id: &str, token: &str, body: &serde_json::Value| {
        let key = format!("seal-then-lost-{id}");
        let request = axum::http::Request::post(format!("/api/v1/contracts/{id}/seal"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .header("idempotency-key", key)
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        async move {
            use tower::ServiceExt as _;
            let res = router.oneshot(request).await.unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            )
        }
    };
    let id = &ids[0];
    let (token, body) =
        crate::contracts::intent_for(&app, "yj-confirmer", id, "seal_contract").await;
    let (status, first) = send(router2.clone(), id, &token, &body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "sealed");
    // Its answer was never recorded and its lease has run out.
    exec(
        &app,
        "UPDATE idempotency_keys SET status = NULL, content_type = NULL, response = NULL, lease_until = $1 WHERE key LIKE 'seal-then-lost-%'",
        time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
    )
    .await;
    let (status, retry) = send(app.router.clone(), id, &token, &body).await;
    assert_eq!(status, StatusCode::OK, "{retry}");
    assert_eq!(
        retry["status"], "filing_review",
        "submitted by the retry: {retry}"
    );
    assert_eq!(
        retry["document_sha256"], first["document_sha256"],
        "sealed once"
    );
    let reviewer = app.token("rc-first").await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/filing/approve"),
            Some(&reviewer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "filed");

    // The second is sealed the same way and never retried: the scheduler submits it once it has
    // waited a minute, not before.
    let id = &ids[1];
    let (token, body) =
        crate::contracts::intent_for(&app, "yj-confirmer", id, "seal_contract").await;
    let (status, sealed) = send(router2, id, &token, &body).await;
    assert_eq!(status, StatusCode::OK, "{sealed}");
    assert_eq!(sealed["status"], "sealed");
    let now = time::OffsetDateTime::now_utc();
    let soon = virtual_window::services::scheduler::run_once(
        &app.services,
        now + time::Duration::seconds(20),
    )
    .await
    .unwrap();
    assert_eq!(soon.submitted_after_seal, 0);
    let later = virtual_window::services::scheduler::run_once(
        &app.services,
        now + time::Duration::minutes(2),
    )
    .await
    .unwrap();
    assert_eq!(later.submitted_after_seal, 1);
    let r = app
        .get(&format!("/api/v1/contracts/{id}"), Some(&confirmer))
        .await;
    assert_eq!(r.body["status"], "filing_review");
}

/// Password hashes made with Argon2's working memory kept between hashes are ordinary PHC
/// strings: the argon2 crate's own verifier accepts ours, and a hash it made signs in here.
async fn password_hashes_with_kept_memory_are_standard(db: Db) {
    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    let Some(app) = spawn_app_with(db, |_| {}).await else {
        return;
    };
    let ours = virtual_window::services::accounts::hash_password(&app.services, "开盘-2026".into())
        .await
        .unwrap();
    let parsed = PasswordHash::new(&ours).unwrap();
    assert!(
        argon2::Argon2::default()
            .verify_password("开盘-2026".as_bytes(), &parsed)
            .is_ok()
    );
    assert!(
        argon2::Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err()
    );
    // The demo accounts' hash replaced by one the argon2 crate made: the password still works.
    let theirs = argon2::Argon2::default()
        .hash_password(
            DEV_DEMO_PASSWORD.as_bytes(),
            &SaltString::encode_b64(&[7u8; 16]).unwrap(),
        )
        .unwrap()
        .to_string();
    exec(
        &app,
        &format!("UPDATE users SET password_hash = '{theirs}' WHERE username = 'rc-first' AND $1 IS NOT NULL"),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let ok = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "rc-first", "password": DEV_DEMO_PASSWORD}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let bad = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "rc-first", "password": "not it"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
}

crate::on_both_databases!(
    password_hashes_with_kept_memory_are_standard,
    a_failed_request_leaves_its_claim_to_the_retry,
    a_seal_whose_submission_was_lost_is_submitted_by_the_retry,
    a_lost_database_is_503_with_retry_after,
    pki_files_move_into_the_database,
    two_instances_share_one_token_and_both_seal,
    concurrent_sign_ins_are_bounded,
    an_abandoned_claim_expires_and_the_retry_gets_the_committed_result,
    crl_numbers_grow_across_instances,
    a_crl_is_reused_until_a_revocation,
    sign_in_limits_hold_across_instances,
);
