//! The authorisation matrix: every endpoint, called as every role and anonymously, is allowed or
//! refused exactly as the endpoint table says.

use crate::helpers::{Db, spawn_app};
use axum::http::{Method, StatusCode};
use serde_json::json;
use virtual_window::domain::Role;
use virtual_window::http::endpoints;

#[tokio::test]
async fn every_endpoint_allows_exactly_its_roles() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let callers: Vec<(Option<Role>, Option<String>)> = vec![
        (None, None),
        (Some(Role::Buyer), Some(app.token("buyer-zhang").await)),
        (Some(Role::Developer), Some(app.token("yj-drafter").await)),
        (Some(Role::Reviewer), Some(app.token("rc-first").await)),
        (Some(Role::Admin), Some(app.token("admin").await)),
    ];
    let mut checked = 0;
    for endpoint in endpoints() {
        let path = endpoint
            .path
            .replace("{id}", "00000000-0000-0000-0000-000000000000");
        for (role, token) in &callers {
            let body = (endpoint.method == Method::POST).then(|| json!({}));
            let r = app
                .call(endpoint.method.clone(), &path, token.as_deref(), body)
                .await;
            let allowed = endpoint.access.allows(*role);
            let refused = matches!(
                r.code(),
                "missing_token" | "invalid_token" | "forbidden_role"
            );
            if allowed {
                assert!(
                    !refused,
                    "{} {} as {role:?} should pass the guard: {} {}",
                    endpoint.method, endpoint.path, r.status, r.text
                );
            } else {
                let expected = if role.is_none() {
                    (StatusCode::UNAUTHORIZED, "missing_token")
                } else {
                    (StatusCode::FORBIDDEN, "forbidden_role")
                };
                assert_eq!(
                    (r.status, r.code()),
                    expected,
                    "{} {} as {role:?}",
                    endpoint.method,
                    endpoint.path
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= endpoints().len() * 5);
}
