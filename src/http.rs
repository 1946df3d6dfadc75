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
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

impl axum::extract::FromRef<AppState> for Arc<Services> {
    fn from_ref(state: &AppState) -> Arc<Services> {
        state.services.clone()
    }
}

#[derive(Clone)]
pub struct AppState {
    /// Behind one pointer: the state is cloned several times per request (each layer and
    /// extractor takes its own), and `Services` is a dozen shared pointers.
    pub services: Arc<Services>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState {
            services: Arc::new(services),
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

const ADMIN: &[Role] = &[Role::Admin];

/// Every endpoint, declared once: its access rule beside its handler, whose `#[utoipa::path]`
/// gives the method, the path and the documentation. The router, the OpenAPI document (with
/// `x-roles`) and the authorisation-matrix test are all built from this list.
fn declared() -> Vec<(Access, UtoipaMethodRouter<AppState>)> {
    use Access::*;
    vec![
        (Public, routes!(health::healthz)),
        (Public, routes!(health::readyz)),
        (Public, routes!(health::metrics)),
        (Public, routes!(openapi::document_json)),
        (Public, routes!(openapi::docs_page)),
        (Public, routes!(accounts::login)),
        (Public, routes!(accounts::refresh)),
        (Public, routes!(accounts::phone_code)),
        (Public, routes!(accounts::phone_login)),
        (Public, routes!(accounts::logout)),
        (Authenticated, routes!(accounts::me)),
        (Roles(ADMIN), routes!(accounts::list_users)),
        (Roles(ADMIN), routes!(accounts::create_user)),
        (Authenticated, routes!(accounts::get_user)),
        (
            Roles(&[Role::Admin, Role::Reviewer, Role::Developer]),
            routes!(accounts::get_organisation),
        ),
        (Public, routes!(inventory::list_projects)),
        (Public, routes!(inventory::project_units)),
        (
            Roles(&[Role::Developer]),
            routes!(inventory::create_project),
        ),
        (Roles(&[Role::Developer]), routes!(inventory::create_permit)),
        (
            Roles(&[Role::Developer]),
            routes!(inventory::import_building),
        ),
        (
            Roles(&[Role::Reviewer, Role::Admin]),
            routes!(inventory::set_permit_status),
        ),
        (
            Roles(&[Role::Reviewer, Role::Developer]),
            routes!(inventory::set_unit_flag),
        ),
        (Roles(ADMIN), routes!(notifications::list)),
        (Roles(ADMIN), routes!(notifications::requeue)),
        (Public, routes!(pki::ca_certificate)),
        (Public, routes!(pki::crl)),
        (Public, routes!(pki::timestamp)),
        (
            Roles(&[Role::Buyer, Role::Developer]),
            routes!(identity::start),
        ),
        (Authenticated, routes!(identity::get)),
        (Authenticated, routes!(identity::cancel)),
        (Public, routes!(identity::callback)),
        (
            Roles(&[Role::Buyer, Role::Developer]),
            routes!(identity::code),
        ),
        (Roles(&[Role::Buyer]), routes!(identity::set_identity)),
        (Roles(ADMIN), routes!(identity::set_user_identity)),
        (Authenticated, routes!(identity::get_identity)),
        (Roles(&[Role::Developer]), routes!(contracts::create)),
        (Authenticated, routes!(contracts::list)),
        (Authenticated, routes!(contracts::get)),
        (Authenticated, routes!(contracts::reading)),
        (Authenticated, routes!(contracts::chapter)),
        (Roles(&[Role::Developer]), routes!(contracts::submit_filing)),
        (Roles(&[Role::Developer]), routes!(contracts::withdraw)),
        (Roles(&[Role::Developer]), routes!(contracts::confirm)),
        (Authenticated, routes!(contracts::document)),
        (Authenticated, routes!(contracts::verification)),
        (Roles(&[Role::Buyer]), routes!(contracts::sign)),
        (Roles(&[Role::Developer]), routes!(contracts::seal)),
        (Roles(&[Role::Reviewer]), routes!(contracts::approve_filing)),
        (Roles(&[Role::Developer]), routes!(contracts::edit)),
        (Roles(&[Role::Reviewer]), routes!(contracts::return_filing)),
        (Roles(&[Role::Developer]), routes!(contracts::reopen)),
        (
            Roles(&[Role::Buyer, Role::Developer]),
            routes!(contracts::recall),
        ),
        (
            Roles(&[Role::Buyer, Role::Developer]),
            routes!(contracts::request_cancellation),
        ),
        (
            Roles(&[Role::Buyer, Role::Developer]),
            routes!(contracts::consent_cancellation),
        ),
        (
            Roles(&[Role::Reviewer]),
            routes!(contracts::approve_cancellation),
        ),
        (Authenticated, routes!(contracts::evidence)),
        (
            Roles(&[Role::Reviewer, Role::Developer, Role::Admin]),
            routes!(contracts::checks),
        ),
        (Roles(&[Role::Developer]), routes!(contracts::invitations)),
        (Roles(&[Role::Buyer]), routes!(contracts::accept_invitation)),
        (Roles(&[Role::Reviewer]), routes!(contracts::filing_queue)),
        (Roles(&[Role::Buyer]), routes!(registrations::apply)),
        (Authenticated, routes!(registrations::list)),
        (Authenticated, routes!(registrations::get)),
        (Roles(&[Role::Reviewer]), routes!(registrations::accept)),
        (
            Roles(&[Role::Reviewer]),
            routes!(registrations::first_review),
        ),
        (
            Roles(&[Role::Reviewer]),
            routes!(registrations::second_review),
        ),
        (Roles(&[Role::Reviewer]), routes!(registrations::record)),
        (Authenticated, routes!(registrations::certificate)),
        (Roles(&[Role::Reviewer]), routes!(registrations::not_accept)),
        (Roles(&[Role::Reviewer]), routes!(registrations::reject)),
        (Roles(&[Role::Buyer]), routes!(registrations::withdraw)),
        (
            Roles(&[Role::Reviewer]),
            routes!(registrations::requisition),
        ),
        (Roles(&[Role::Reviewer]), routes!(registrations::suspend)),
        (Roles(&[Role::Reviewer]), routes!(registrations::resume)),
        (Roles(&[Role::Buyer]), routes!(registrations::hand_in)),
        (
            Roles(&[Role::Reviewer]),
            routes!(registrations::cancel_entry),
        ),
        (Authenticated, routes!(materials::upload)),
        (Authenticated, routes!(materials::mine)),
        (Authenticated, routes!(materials::content)),
        (Public, routes!(registrations::public_status)),
        (Public, routes!(verify::verify)),
        (Roles(ADMIN), routes!(pki::list)),
        (Roles(ADMIN), routes!(pki::revoke)),
        (Roles(ADMIN), routes!(pki::seals)),
        (Roles(ADMIN), routes!(pki::revoke_seal)),
    ]
}

/// The endpoints with their method, path and access rule (for the authorisation matrix and
/// the OpenAPI document).
pub fn endpoints() -> Vec<Endpoint> {
    declared()
        .into_iter()
        .flat_map(|(access, (_, paths, _))| {
            paths.paths.into_iter().flat_map(move |(path, item)| {
                openapi::methods_of(&item)
                    .into_iter()
                    .map(move |method| Endpoint {
                        method,
                        path: path.clone(),
                        access,
                    })
            })
        })
        .collect()
}

/// The OpenAPI paths and schemas of every declared endpoint, with its access rule.
pub(crate) fn declared_docs() -> Vec<(Access, UtoipaMethodRouter<AppState>)> {
    declared()
}

/// Builds the application with the same middleware in tests and in production.
/// A page for an address that names nothing, for browsers (the web room's).
pub type PageNotFound = fn(&axum::http::HeaderMap) -> Response;

/// Builds the API alone (the pages are composed by `crate::app`).
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new(), None)
}

/// Builds the application: the API's endpoints, `pages` beside them, and the same middleware
/// around both; an unknown address is a problem for programs and, when `page_not_found` is
/// given, a page for a browser asking for HTML outside `/api/`.
pub fn app_with(
    state: AppState,
    pages: Router<AppState>,
    page_not_found: Option<PageNotFound>,
) -> Router {
    let cfg = state.services.config.clone();
    let mut router = pages;
    for (access, (_, paths, method_router)) in declared() {
        let guarded = method_router.route_layer(middleware::from_fn_with_state(
            (state.clone(), access),
            access::guard,
        ));
        for path in paths.paths.keys() {
            router = router.route(path, guarded.clone());
        }
    }
    let request_id = HeaderName::from_static("x-request-id");
    let fallback = move |req: Request| async move {
        let wants_html = req
            .headers()
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        match page_not_found {
            Some(page) if wants_html && !req.uri().path().starts_with("/api/") => {
                page(req.headers())
            }
            _ => not_found().await.into_response(),
        }
    };
    router
        .fallback(fallback)
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
        .layer(middleware::from_fn(phases))
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

/// Logs where a request's time went when the services marked its phases (signing, sealing,
/// filing…): one line per such request, beside the request's own log line.
async fn phases(req: Request, next: Next) -> Response {
    let (res, phases) = crate::services::phases::measure(next.run(req)).await;
    if let Some(phases) = phases {
        tracing::info!(status = res.status().as_u16(), %phases, "phases");
    }
    res
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
