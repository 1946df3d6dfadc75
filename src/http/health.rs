//! Liveness, readiness and metrics for load balancers and monitoring.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the process serves requests.
    pub status: &'static str,
    pub version: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub checks: Vec<ReadinessCheck>,
}

#[derive(Serialize, ToSchema)]
pub struct ReadinessCheck {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "A dependency is missing", body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = &state.services.store;
    let mut checks = Vec::new();
    match store.ready().await {
        Ok(m) => checks.push(ReadinessCheck {
            name: "database",
            ok: m.complete(),
            detail: format!(
                "{}: {} of {} migrations applied",
                store.backend().as_str(),
                m.applied,
                m.known
            ),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            checks.push(ReadinessCheck {
                name: "database",
                ok: false,
                detail: format!("{}: unreachable", store.backend().as_str()),
            })
        }
    }
    checks.push(match &state.services.font {
        Some(f) => ReadinessCheck {
            name: "cjk_font",
            ok: true,
            detail: format!("{} ({})", f.family(), f.path().display()),
        },
        None => ReadinessCheck {
            name: "cjk_font",
            ok: false,
            detail: "the configured CJK font (documents.font_path) cannot be read: documents cannot be generated (fix the path or remove it to use the bundled font)".into(),
        },
    });
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "not_ready" },
            checks,
        }),
    )
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
