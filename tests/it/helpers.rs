//! Shared test helpers: a fresh database of either kind, the in-process app, and request helpers
//! that drive the same router production uses.

#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;
use virtual_window::config::{Config, DEV_DEMO_PASSWORD, Secret};
use virtual_window::services::Services;
use virtual_window::store::Store;
use virtual_window::{AppState, app};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A database for one test; the directory (and SQLite file) lives as long as this value.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
}

/// The PostgreSQL server's URL, or `None` when this run has none. scripts/test sets
/// `VW_REQUIRE_POSTGRES=1`, and then a missing server fails the test instead of skipping it.
pub fn postgres_url() -> Option<String> {
    match std::env::var("VW_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("VW_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("VW_REQUIRE_POSTGRES=1 but VW_TEST_POSTGRES_URL is not set");
            }
            None
        }
    }
}

pub async fn test_db(db: Db) -> Option<TestDb> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("vw.db").display()),
        Db::Postgres => {
            let admin = postgres_url()?;
            let name = format!("vw_t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .expect("connect to the test PostgreSQL server");
            sqlx::Executor::execute(
                &mut conn,
                sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
            )
            .await
            .expect("create test database");
            let base = admin.rsplit_once('/').expect("URL has a database").0;
            format!("{base}/{name}")
        }
    };
    Some(TestDb { url, dir })
}

pub async fn open_store(t: &TestDb) -> Arc<dyn Store> {
    let store = virtual_window::store::open(&t.url, 4)
        .await
        .expect("open store");
    store.migrate().await.expect("migrate");
    store
}

pub struct TestApp {
    pub db: TestDb,
    pub services: Services,
    pub router: Router,
    pub tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

pub fn test_config(t: &TestDb) -> Config {
    Config {
        data_dir: t.dir.path().join("data"),
        database_url: Some(Secret::new(t.url.clone())),
        database_max_connections: 4,
        auto_seed: false,
        // Tests read every chapter but do not wait; one test checks the waiting.
        web: virtual_window::config::WebConfig {
            min_reading_secs: 0,
            ..Default::default()
        },
        ..Config::default()
    }
}

/// The app on a fresh database with the development seed loaded.
pub async fn spawn_app(db: Db) -> Option<TestApp> {
    spawn_app_with(db, |_| {}).await
}

pub async fn spawn_app_with(db: Db, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let t = test_db(db).await?;
    let mut cfg = test_config(&t);
    tweak(&mut cfg);
    let services = virtual_window::server::prepare(Arc::new(cfg))
        .await
        .expect("prepare");
    virtual_window::services::seed::load(&services)
        .await
        .expect("seed");
    let router = app(AppState::new(services.clone()));
    Some(TestApp {
        db: t,
        services,
        router,
        tokens: Default::default(),
    })
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router answers");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
            bytes: bytes.to_vec(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Signs in a demo account and returns the whole token reply.
    pub async fn login_reply(&self, username: &str) -> Value {
        let r = self
            .post(
                "/api/v1/auth/login",
                None,
                serde_json::json!({"username": username, "password": DEV_DEMO_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login {username}: {}", r.text);
        r.body
    }

    /// An access token for a demo account, signed in once per test app (the login limiter
    /// would refuse a test that signs in the same account many times).
    pub async fn token(&self, username: &str) -> String {
        if let Some(t) = self.tokens.lock().unwrap().get(username) {
            return t.clone();
        }
        let t = self.login_reply(username).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        self.tokens
            .lock()
            .unwrap()
            .insert(username.to_owned(), t.clone());
        t
    }

    pub async fn user_id(&self, username: &str) -> String {
        self.services
            .store
            .user_by_username(username)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    pub async fn audit_len(&self) -> usize {
        self.services
            .store
            .chained_audit_events(0, 100_000)
            .await
            .unwrap()
            .len()
    }
}

/// Declares async tests that take a `Db` and runs each on both databases, in modules named
/// `sqlite` and `postgres` so the test output says which database ran.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::postgres_url().is_none() {
                        eprintln!("PostgreSQL not configured (VW_TEST_POSTGRES_URL); not run");
                        return;
                    }
                    super::$name($crate::helpers::Db::Postgres).await
                }
            )*
        }
    };
}

/// Reads the audit chain as a reader in the service does: what is committed but still pending
/// is chained first.
pub trait ChainedAudit {
    async fn chained_audit_events(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> virtual_window::store::StoreResult<Vec<virtual_window::store::AuditEvent>>;
}

impl ChainedAudit for dyn Store {
    async fn chained_audit_events(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> virtual_window::store::StoreResult<Vec<virtual_window::store::AuditEvent>> {
        virtual_window::audit::chain(self).await?;
        self.audit_events(after_seq, limit).await
    }
}
