//! The notification outbox (issue 7): status changes become events in the same transaction (a
//! refused change makes none), delivered as signed webhooks to a real HTTP receiver, retried
//! with backoff after failures with the same id and body, given up as dead letters after the
//! configured attempts; two instances dispatching at once deliver each event once.

use crate::contracts::{draft_for, units};
use crate::helpers::{Db, TestApp, spawn_app_with};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use virtual_window::identity::signature;
use virtual_window::services::notifications::{self, Dispatch};

const SECRET: &str = "webhook-secret-for-tests-0123456789abcdef";

/// Each request the receiver got: its headers and body.
type Received = Vec<(HeaderMap, Vec<u8>)>;

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Received>>,
    /// Answer 500 to the first attempt of each event.
    fail_first: Arc<AtomicBool>,
    /// Answer 500 to everything.
    fail_all: Arc<AtomicBool>,
}

impl Receiver {
    async fn start(&self) -> String {
        let me = self.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: bytes::Bytes| {
                let me = me.clone();
                async move {
                    let id = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let mut got = me.got.lock().unwrap();
                    let seen = got.iter().any(|(h, _)| {
                        h.get("idempotency-key").and_then(|v| v.to_str().ok()) == Some(&id)
                    });
                    got.push((headers, body.to_vec()));
                    if me.fail_all.load(Ordering::SeqCst)
                        || (me.fail_first.load(Ordering::SeqCst) && !seen)
                    {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}/hook")
    }

    fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }
}

async fn app_with_hook(db: Db, url: &str, max_attempts: u32) -> Option<TestApp> {
    let url = url.to_owned();
    spawn_app_with(db, move |c| {
        c.notifications.webhook_url = Some(url);
        c.notifications.webhook_secret = Some(virtual_window::config::Secret::new(SECRET));
        c.notifications.max_attempts = max_attempts;
        c.notifications.backoff_base_ms = 5_000;
        c.notifications.poll_interval_ms = 0;
    })
    .await
}

async fn events_of(app: &TestApp, object: &str) -> Vec<String> {
    app.services
        .store
        .outbox_events(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.object_id == object)
        .map(|e| format!("{}.{}", e.object_kind, e.status))
        .collect()
}

async fn status_changes_are_told_signed_and_retried(db: Db) {
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let Some(app) = app_with_hook(db, &url, 3).await else {
        return;
    };
    let drafter = app.token("yj-drafter").await;
    let confirmer = app.token("yj-confirmer").await;
    let unit = units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // A refused change (the unit is taken) writes no event.
    let before = app
        .services
        .store
        .outbox_events(0, 10_000)
        .await
        .unwrap()
        .len();
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        app.services
            .store
            .outbox_events(0, 10_000)
            .await
            .unwrap()
            .len(),
        before
    );
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        events_of(&app, &id).await,
        ["contract.draft", "contract.awaiting_buyers"]
    );

    // The receiver fails every first attempt: both are retried later, not sooner.
    receiver.fail_first.store(true, Ordering::SeqCst);
    let now = OffsetDateTime::now_utc();
    let run = notifications::dispatch_once(&app.services, now)
        .await
        .unwrap();
    assert_eq!(
        run,
        Dispatch {
            delivered: 0,
            retrying: 2,
            dead: 0
        }
    );
    let run = notifications::dispatch_once(&app.services, now)
        .await
        .unwrap();
    assert_eq!(
        run,
        Dispatch::default(),
        "nothing is due during the backoff"
    );
    let later = now + time::Duration::seconds(60);
    let run = notifications::dispatch_once(&app.services, later)
        .await
        .unwrap();
    assert_eq!(
        run,
        Dispatch {
            delivered: 2,
            retrying: 0,
            dead: 0
        }
    );
    assert_eq!(
        notifications::dispatch_once(&app.services, later)
            .await
            .unwrap(),
        Dispatch::default(),
        "a delivered event is not sent again"
    );

    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    let mut by_id: std::collections::HashMap<String, Vec<Vec<u8>>> = Default::default();
    for (headers, body) in &got {
        // Signed like the identity provider's requests, with the event id as idempotency key.
        let h = signature::Headers::read(|n| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap();
        h.check(
            notifications::KEY_ID,
            SECRET.as_bytes(),
            "POST",
            "/hook",
            body,
            OffsetDateTime::now_utc().unix_timestamp(),
        )
        .unwrap();
        assert!(
            h.check(
                notifications::KEY_ID,
                b"another secret",
                "POST",
                "/hook",
                body,
                OffsetDateTime::now_utc().unix_timestamp()
            )
            .is_err()
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        let key = headers["idempotency-key"].to_str().unwrap();
        assert_eq!(v["id"], key);
        by_id.entry(key.to_owned()).or_default().push(body.clone());
    }
    assert_eq!(by_id.len(), 2);
    assert!(
        by_id.values().all(|b| b.len() == 2 && b[0] == b[1]),
        "a retry resends the same body"
    );

    // The buyers are told to sign, by account; nobody's name, ID number or phone is in it.
    let awaiting = receiver
        .bodies()
        .into_iter()
        .find(|b| b["type"] == "contract.awaiting_buyers")
        .unwrap();
    assert_eq!(awaiting["object"]["id"], id.as_str());
    let users: Vec<&str> = awaiting["notify"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["role"] == "buyer")
        .map(|r| r["user_id"].as_str().unwrap())
        .collect();
    let mut expected = vec![
        app.user_id("buyer-zhang").await,
        app.user_id("buyer-li").await,
    ];
    expected.sort();
    let mut users: Vec<String> = users.into_iter().map(str::to_owned).collect();
    users.sort();
    assert_eq!(users, expected);
    assert!(awaiting["action"].as_str().unwrap().contains("签署"));
    let text = String::from_utf8(got.iter().flat_map(|(_, b)| b.clone()).collect()).unwrap();
    for secret in [
        "张伟",
        "李娜",
        "44190019900101001X",
        "441900198506150021",
        "13800000001",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into a webhook");
    }

    // A receiver that keeps failing: retried up to max_attempts, then a dead letter.
    receiver.fail_all.store(true, Ordering::SeqCst);
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/withdraw"),
            Some(&drafter),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut at = later;
    let mut runs = Vec::new();
    for _ in 0..3 {
        at += time::Duration::hours(2);
        runs.push(
            notifications::dispatch_once(&app.services, at)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        runs,
        [
            Dispatch {
                delivered: 0,
                retrying: 1,
                dead: 0
            },
            Dispatch {
                delivered: 0,
                retrying: 1,
                dead: 0
            },
            Dispatch {
                delivered: 0,
                retrying: 0,
                dead: 1
            },
        ]
    );
    at += time::Duration::days(1);
    assert_eq!(
        notifications::dispatch_once(&app.services, at)
            .await
            .unwrap(),
        Dispatch::default()
    );

    // Administrators see what was delivered and what was given up, and why.
    let admin = app.token("admin").await;
    let r = app.get("/api/v1/notifications", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.body.as_array().unwrap();
    let withdrawn = list
        .iter()
        .find(|e| e["type"] == "contract.withdrawn")
        .unwrap();
    assert_eq!(withdrawn["state"], "dead");
    assert_eq!(withdrawn["attempts"], 3);
    assert_eq!(withdrawn["last_error"], "HTTP 500");
    assert!(list.iter().filter(|e| e["state"] == "delivered").count() >= 2);
    assert_eq!(
        app.get("/api/v1/notifications", Some(&drafter))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The receiver fixed, an administrator sends the dead letter again: delivered once.
    let dead = withdrawn["id"].as_str().unwrap().to_owned();
    let requeue = format!("/api/v1/notifications/{dead}/requeue");
    assert_eq!(
        app.post(&requeue, Some(&drafter), json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    receiver.fail_all.store(false, Ordering::SeqCst);
    let r = app.post(&requeue, Some(&admin), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.post(&requeue, Some(&admin), json!({})).await.code(),
        "not_dead_letter"
    );
    let run = notifications::dispatch_once(
        &app.services,
        OffsetDateTime::now_utc() + time::Duration::seconds(1),
    )
    .await
    .unwrap();
    assert_eq!(run.delivered, 1);
    let seen = receiver
        .bodies()
        .iter()
        .filter(|b| b["id"] == dead.as_str())
        .count();
    assert_eq!(seen, 4, "three failed attempts and the requeued delivery");

    // A month on, the scheduler forgets delivered events.
    let month = OffsetDateTime::now_utc() + time::Duration::days(31);
    let run = virtual_window::services::scheduler::run_once(&app.services, month)
        .await
        .unwrap();
    assert_eq!(run.purged_notifications, 3);
    assert!(
        app.services
            .store
            .outbox_events(0, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Two instances dispatching the same outbox at the same moment deliver each event once.
async fn two_instances_deliver_each_event_once(db: Db) {
    if db != Db::Postgres {
        return;
    }
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let Some(app) = app_with_hook(db, &url, 3).await else {
        return;
    };
    let mut cfg = crate::helpers::test_config(&app.db);
    cfg.notifications = app.services.config.notifications.clone();
    let second = virtual_window::server::prepare(Arc::new(cfg))
        .await
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let free: Vec<_> = units(&app)
        .await
        .into_iter()
        .filter(|u| u.status.as_str() == "available" && !u.seized)
        .take(24)
        .collect();
    for u in &free {
        let r = app
            .post("/api/v1/contracts", Some(&drafter), draft_for(u))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let now = OffsetDateTime::now_utc();
    let mut delivered = 0;
    for _ in 0..4 {
        let (a, b) = tokio::join!(
            notifications::dispatch_once(&app.services, now),
            notifications::dispatch_once(&second, now)
        );
        delivered += a.unwrap().delivered + b.unwrap().delivered;
    }
    assert_eq!(delivered, 24);
    let got = receiver.got.lock().unwrap();
    let ids: std::collections::HashSet<_> = got
        .iter()
        .map(|(h, _)| h["idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!((got.len(), ids.len()), (24, 24));
}

crate::on_both_databases!(
    status_changes_are_told_signed_and_retried,
    two_instances_deliver_each_event_once
);
