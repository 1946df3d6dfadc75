//! The OpenAPI document: a snapshot (so API changes are deliberate) and agreement with the
//! endpoint table (every route documented with its roles).

use crate::helpers::{Db, spawn_app};
use axum::http::StatusCode;
use serde_json::Value;
use virtual_window::http::{Access, endpoints};

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let r = app.get("/api/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut doc = r.body.clone();
    doc["info"]["version"] = Value::from("(version)");
    let rendered = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let path = "tests/snapshots/openapi.json";
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(path, &rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        expected == rendered,
        "the OpenAPI document changed; review it and run `UPDATE_SNAPSHOTS=1 cargo test openapi` to accept"
    );
}

/// Every `$ref` names a schema the document holds (a query parameter's enum once pointed at a
/// schema that was never collected, and outside validators refuse such a document).
#[tokio::test]
async fn every_schema_reference_resolves() {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let doc = app.get("/api/openapi.json", None).await.body;
    let mut found = vec![];
    refs(&doc, &mut found);
    assert!(found.len() > 50, "the document uses references");
    let missing: Vec<_> = found
        .iter()
        .filter(|r| {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
            doc["components"]["schemas"].get(name).is_none()
        })
        .collect();
    assert!(missing.is_empty(), "references to nothing: {missing:?}");
}

#[tokio::test]
async fn every_route_is_documented_with_its_roles() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let doc = app.get("/api/openapi.json", None).await.body;
    let mut documented = 0;
    for e in endpoints() {
        let op = &doc["paths"][e.path.as_str()][e.method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not in the OpenAPI document",
            e.method,
            e.path
        );
        let roles: Vec<&str> = op["x-roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(roles, e.access.describe(), "{} {}", e.method, e.path);
        if e.access != Access::Public {
            assert!(
                op["security"].is_array(),
                "{} {} needs a security requirement",
                e.method,
                e.path
            );
        }
        documented += 1;
    }
    let in_doc: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        in_doc, documented,
        "the document has no operation the router lacks"
    );
    let page = app.get("/docs", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("/api/openapi.json"));
}
