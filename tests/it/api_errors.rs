//! Every kind of bad input gets its own 4xx and problem code, and nothing is written.

use crate::helpers::{Db, TestApp, spawn_app};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

crate::on_both_databases!(bad_input_gets_its_own_code_and_writes_nothing);

async fn counts(app: &TestApp) -> (i64, usize) {
    (
        app.services.store.count_users().await.unwrap(),
        app.audit_len().await,
    )
}

fn raw(
    method: Method,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(body.into()).unwrap()
}

async fn bad_input_gets_its_own_code_and_writes_nothing(db: Db) {
    let app = spawn_app(db).await.unwrap();
    let admin = app.token("admin").await;
    let before = counts(&app).await;
    let good = json!({
        "username": "new-drafter", "display_name": "新员工", "password": "a long enough password",
        "role": "buyer"
    });

    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        ("malformed JSON", raw(Method::POST, "/api/v1/users", &admin, Some("application/json"), "{\"username\": "), StatusCode::BAD_REQUEST, "malformed_json"),
        ("trailing garbage", raw(Method::POST, "/api/v1/users", &admin, Some("application/json"), format!("{good} x")), StatusCode::BAD_REQUEST, "malformed_json"),
        ("wrong content type", raw(Method::POST, "/api/v1/users", &admin, Some("text/plain"), good.to_string()), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("no content type", raw(Method::POST, "/api/v1/users", &admin, None, good.to_string()), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("unknown field", raw(Method::POST, "/api/v1/users", &admin, Some("application/json"), {
            let mut v = good.clone(); v["is_admin"] = json!(true); v.to_string()
        }), StatusCode::BAD_REQUEST, "unknown_field"),
        ("missing field", raw(Method::POST, "/api/v1/users", &admin, Some("application/json"), json!({"username": "x"}).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("wrong type", raw(Method::POST, "/api/v1/users", &admin, Some("application/json"), {
            let mut v = good.clone(); v["role"] = json!(7); v.to_string()
        }), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("unknown role", raw(Method::POST, "/api/v1/users", &admin, Some("application/json"), {
            let mut v = good.clone(); v["role"] = json!("superuser"); v.to_string()
        }), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("validation rules", raw(Method::POST, "/api/v1/users", &admin, Some("application/json"), json!({
            "username": "X", "display_name": "", "password": "short", "role": "developer", "duties": ["recorder"]
        }).to_string()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("oversized body", raw(Method::POST, "/api/v1/users", &admin, Some("application/json"), vec![b' '; 33 * 1024 * 1024]), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ("bad token", raw(Method::POST, "/api/v1/users", "not-a-jwt", Some("application/json"), good.to_string()), StatusCode::UNAUTHORIZED, "invalid_token"),
        ("no token", Request::builder().method(Method::POST).uri("/api/v1/users").header("content-type", "application/json").body(Body::from(good.to_string())).unwrap(), StatusCode::UNAUTHORIZED, "missing_token"),
        ("unknown endpoint", raw(Method::GET, "/api/v1/nothing-here", &admin, None, ""), StatusCode::NOT_FOUND, "no_such_endpoint"),
        ("wrong method", raw(Method::DELETE, "/api/v1/users", &admin, None, ""), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    for (what, req, status, code) in cases {
        let r = app.send(req).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
        assert_eq!(r.code(), code, "{what}: {}", r.text);
        assert_eq!(
            r.headers.get("content-type").unwrap(),
            "application/problem+json",
            "{what}"
        );
        assert_eq!(r.body["status"], status.as_u16(), "{what}");
        assert!(
            !r.body["detail"].as_str().unwrap_or("").is_empty(),
            "{what}: a message for people"
        );
        assert_eq!(counts(&app).await, before, "{what}: nothing is written");
    }

    // Field errors name the field and the rule.
    let r = app
        .post("/api/v1/users", Some(&admin), json!({
            "username": "X", "display_name": "", "password": "short", "role": "developer", "duties": ["recorder"]
        }))
        .await;
    let fields: Vec<(String, String)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("username", "format"),
        ("display_name", "length"),
        ("password", "too_short"),
        ("duties[0]", "not_allowed_for_role"),
        ("organisation_id", "required"),
    ] {
        assert!(
            fields.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {fields:?}"
        );
    }
    let r = app
        .post("/api/v1/users", Some(&admin), {
            let mut v = good.clone();
            v["is_admin"] = json!(true);
            v
        })
        .await;
    assert_eq!(r.body["errors"][0]["field"], "is_admin");

    // A forbidden role: a buyer may not create accounts.
    let buyer = app.token("buyer-zhang").await;
    let before = counts(&app).await;
    let r = app.post("/api/v1/users", Some(&buyer), good.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.code(), "forbidden_role");
    assert_eq!(counts(&app).await, before);

    // And the good request does write: the account and its audit entry.
    let r = app.post("/api/v1/users", Some(&admin), good.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let after = counts(&app).await;
    assert_eq!(after.0, before.0 + 1);
    assert_eq!(after.1, before.1 + 1);
    let r = app.post("/api/v1/users", Some(&admin), good).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.code(), "username_taken");
}

#[tokio::test]
async fn request_ids_are_set_and_propagated() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let r = app.get("/healthz", None).await;
    let id = r
        .headers
        .get("x-request-id")
        .expect("a request id is assigned");
    assert!(!id.is_empty());
    let req = Request::builder()
        .uri("/healthz")
        .header("x-request-id", "trace-me-123")
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.headers.get("x-request-id").unwrap(), "trace-me-123");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let admin = app.token("admin").await;
    let me = app.user_id("admin").await;
    assert_eq!(
        app.get(&format!("/api/v1/users/{me}"), Some(&admin))
            .await
            .status,
        StatusCode::OK
    );
    let r = app.get("/metrics", None).await;
    assert!(
        r.text.contains(
            r#"http_requests_total{method="GET",route="/api/v1/users/{id}",status="200"} 1"#
        ),
        "{}",
        r.text
    );
    assert!(r.text.contains("http_request_duration_seconds_bucket"));
    assert!(!r.text.contains(&me), "ids never become labels");
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let r = app.get("/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "ready");
}

#[tokio::test]
async fn without_a_cjk_font_the_service_runs_but_is_not_ready() {
    let app = crate::helpers::spawn_app_with(Db::Sqlite, |c| {
        c.documents.font_path = Some("/nonexistent/font.ttc".into());
    })
    .await
    .unwrap();
    assert!(app.services.font.is_none());
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let font = r.body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cjk_font")
        .unwrap()
        .clone();
    assert_eq!(font["ok"], false);
    assert!(
        font["detail"]
            .as_str()
            .unwrap()
            .contains("documents.font_path")
    );
}
