//! The HTTP room: the axum router, the access rule of every endpoint, and the middleware every
//! request passes (request id, tracing, metrics, timeout, body limit, panic guard). Handlers are
//! thin: they parse, call a service, and render.

pub mod access;
pub mod accounts;
pub mod contracts;
pub mod error;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod identity;
pub mod inventory;
pub mod materials;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod pki;
pub mod registrations;
pub mod verify;

pub use access::{Access, Endpoint};
pub use error::{ApiError, ApiResult};

use crate::domain::Role;
use crate::services::Services;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState {
            services,
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

const ADMIN: &[Role] = &[Role::Admin];

/// Every endpoint with its access rule, in one place. The router, the OpenAPI document (`x-roles`)
/// and the authorisation matrix test are all built from this table.
pub fn endpoints() -> Vec<(Endpoint, MethodRouter<AppState>)> {
    use Access::*;
    vec![
        (
            Endpoint::new(Method::GET, "/healthz", Public),
            get(health::healthz),
        ),
        (
            Endpoint::new(Method::GET, "/readyz", Public),
            get(health::readyz),
        ),
        (
            Endpoint::new(Method::GET, "/metrics", Public),
            get(health::metrics),
        ),
        (
            Endpoint::new(Method::GET, "/api/openapi.json", Public),
            get(openapi::document_json),
        ),
        (
            Endpoint::new(Method::GET, "/docs", Public),
            get(openapi::docs_page),
        ),
        (
            Endpoint::new(Method::POST, "/api/v1/auth/login", Public),
            post(accounts::login),
        ),
        (
            Endpoint::new(Method::POST, "/api/v1/auth/refresh", Public),
            post(accounts::refresh),
        ),
        (
            Endpoint::new(Method::POST, "/api/v1/auth/logout", Public),
            post(accounts::logout),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/me", Authenticated),
            get(accounts::me),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/users", Roles(ADMIN)),
            get(accounts::list_users),
        ),
        (
            Endpoint::new(Method::POST, "/api/v1/users", Roles(ADMIN)),
            post(accounts::create_user),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/users/{id}", Authenticated),
            get(accounts::get_user),
        ),
        (
            Endpoint::new(
                Method::GET,
                "/api/v1/organisations/{id}",
                Roles(&[Role::Admin, Role::Reviewer, Role::Developer]),
            ),
            get(accounts::get_organisation),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/projects", Public),
            get(inventory::list_projects),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/projects/{id}/units", Public),
            get(inventory::project_units),
        ),
        (
            Endpoint::new(Method::POST, "/api/v1/projects", Roles(&[Role::Developer])),
            post(inventory::create_project),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/projects/{id}/permits",
                Roles(&[Role::Developer]),
            ),
            post(inventory::create_permit),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/projects/{id}/buildings",
                Roles(&[Role::Developer]),
            ),
            post(inventory::import_building),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/permits/{id}/status",
                Roles(&[Role::Reviewer, Role::Admin]),
            ),
            post(inventory::set_permit_status),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/units/{id}/flags",
                Roles(&[Role::Reviewer, Role::Developer]),
            ),
            post(inventory::set_unit_flag),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/notifications", Roles(ADMIN)),
            get(notifications::list),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/notifications/{id}/requeue",
                Roles(ADMIN),
            ),
            post(notifications::requeue),
        ),
        (
            Endpoint::new(Method::GET, "/pki/ca/{file}", Public),
            get(pki::ca_certificate),
        ),
        (
            Endpoint::new(Method::GET, "/pki/crl/{file}", Public),
            get(pki::crl),
        ),
        (
            Endpoint::new(Method::POST, "/tsa", Public),
            post(pki::timestamp),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/identity/verifications",
                Roles(&[Role::Buyer, Role::Developer]),
            ),
            post(identity::start),
        ),
        (
            Endpoint::new(
                Method::GET,
                "/api/v1/identity/verifications/{id}",
                Authenticated,
            ),
            get(identity::get),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/identity/verifications/{id}/cancel",
                Authenticated,
            ),
            post(identity::cancel),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/identity/callbacks/{provider}",
                Public,
            ),
            post(identity::callback),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/identity/codes",
                Roles(&[Role::Buyer, Role::Developer]),
            ),
            post(identity::code),
        ),
        (
            Endpoint::new(Method::PUT, "/api/v1/me/identity", Roles(&[Role::Buyer])),
            put(identity::set_identity),
        ),
        (
            Endpoint::new(Method::PUT, "/api/v1/users/{id}/identity", Roles(ADMIN)),
            put(identity::set_user_identity),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/me/identity", Authenticated),
            get(identity::get_identity),
        ),
        (
            Endpoint::new(Method::POST, "/api/v1/contracts", Roles(&[Role::Developer])),
            post(contracts::create),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/contracts", Authenticated),
            get(contracts::list),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/contracts/{id}", Authenticated),
            get(contracts::get),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/submit",
                Roles(&[Role::Developer]),
            ),
            post(contracts::submit_filing),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/withdraw",
                Roles(&[Role::Developer]),
            ),
            post(contracts::withdraw),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/confirm",
                Roles(&[Role::Developer]),
            ),
            post(contracts::confirm),
        ),
        (
            Endpoint::new(
                Method::GET,
                "/api/v1/contracts/{id}/document",
                Authenticated,
            ),
            get(contracts::document),
        ),
        (
            Endpoint::new(
                Method::GET,
                "/api/v1/contracts/{id}/verification",
                Authenticated,
            ),
            get(contracts::verification),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/sign",
                Roles(&[Role::Buyer]),
            ),
            post(contracts::sign),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/seal",
                Roles(&[Role::Developer]),
            ),
            post(contracts::seal),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/filing/approve",
                Roles(&[Role::Reviewer]),
            ),
            post(contracts::approve_filing),
        ),
        (
            Endpoint::new(
                Method::PUT,
                "/api/v1/contracts/{id}",
                Roles(&[Role::Developer]),
            ),
            put(contracts::edit),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/filing/return",
                Roles(&[Role::Reviewer]),
            ),
            post(contracts::return_filing),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/reopen",
                Roles(&[Role::Developer]),
            ),
            post(contracts::reopen),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/recall",
                Roles(&[Role::Buyer, Role::Developer]),
            ),
            post(contracts::recall),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/cancellation",
                Roles(&[Role::Buyer, Role::Developer]),
            ),
            post(contracts::request_cancellation),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/cancellation/consent",
                Roles(&[Role::Buyer, Role::Developer]),
            ),
            post(contracts::consent_cancellation),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/cancellation/approve",
                Roles(&[Role::Reviewer]),
            ),
            post(contracts::approve_cancellation),
        ),
        (
            Endpoint::new(
                Method::GET,
                "/api/v1/contracts/{id}/evidence",
                Authenticated,
            ),
            get(contracts::evidence),
        ),
        (
            Endpoint::new(
                Method::GET,
                "/api/v1/contracts/{id}/checks",
                Roles(&[Role::Reviewer, Role::Developer, Role::Admin]),
            ),
            get(contracts::checks),
        ),
        (
            Endpoint::new(
                Method::GET,
                "/api/v1/contracts/{id}/invitations",
                Roles(&[Role::Developer]),
            ),
            get(contracts::invitations),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/contracts/{id}/invitation",
                Roles(&[Role::Buyer]),
            ),
            post(contracts::accept_invitation),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/filings", Roles(&[Role::Reviewer])),
            get(contracts::filing_queue),
        ),
        (
            Endpoint::new(Method::POST, "/api/v1/registrations", Roles(&[Role::Buyer])),
            post(registrations::apply),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/registrations", Authenticated),
            get(registrations::list),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/registrations/{id}", Authenticated),
            get(registrations::get),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/accept",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::accept),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/first-review",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::first_review),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/second-review",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::second_review),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/record",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::record),
        ),
        (
            Endpoint::new(
                Method::GET,
                "/api/v1/registrations/{id}/certificate",
                Authenticated,
            ),
            get(registrations::certificate),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/not-accept",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::not_accept),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/reject",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::reject),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/withdraw",
                Roles(&[Role::Buyer]),
            ),
            post(registrations::withdraw),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/requisition",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::requisition),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/suspend",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::suspend),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/resume",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::resume),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/materials",
                Roles(&[Role::Buyer]),
            ),
            post(registrations::hand_in),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/registrations/{id}/entry/cancel",
                Roles(&[Role::Reviewer]),
            ),
            post(registrations::cancel_entry),
        ),
        (
            Endpoint::new(Method::POST, "/api/v1/materials", Authenticated),
            post(materials::upload),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/materials", Authenticated),
            get(materials::mine),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/materials/{id}", Authenticated),
            get(materials::content),
        ),
        (
            Endpoint::new(Method::GET, "/c/{number}", Public),
            get(registrations::public_status),
        ),
        (
            Endpoint::new(Method::POST, "/api/v1/verify", Public),
            post(verify::verify),
        ),
        (
            Endpoint::new(Method::GET, "/verify", Public),
            get(verify::page),
        ),
        (
            Endpoint::new(Method::GET, "/api/v1/pki/certificates", Roles(ADMIN)),
            get(pki::list),
        ),
        (
            Endpoint::new(
                Method::POST,
                "/api/v1/pki/certificates/{serial}/revoke",
                Roles(ADMIN),
            ),
            post(pki::revoke),
        ),
    ]
}

/// Builds the application with the same middleware in tests and in production.
pub fn app(state: AppState) -> Router {
    let cfg = state.services.config.clone();
    let mut router = Router::new();
    for (endpoint, method_router) in endpoints() {
        let guarded = method_router.route_layer(middleware::from_fn_with_state(
            (state.clone(), endpoint.access),
            access::guard,
        ));
        router = router.route(endpoint.path, guarded);
    }
    let request_id = HeaderName::from_static("x-request-id");
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(DefaultBodyLimit::max(cfg.http.body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            Duration::from_secs(cfg.http.request_timeout_secs.max(1)),
            timeout,
        ))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::internal().into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    // The path only: query strings may carry personal data.
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "请求处理超时，请稍后再试。",
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_such_endpoint",
        "没有这个接口。",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "该接口不支持此请求方法。",
    )
}
