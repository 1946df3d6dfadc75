//! The OpenAPI 3.1 document, generated from the handlers' annotations, with each operation's
//! access rule added from the endpoint table as `x-roles`; and the interactive page at `/docs`,
//! which is self-contained (no CDN) so it works on a closed government network.

use super::{Access, AppState};
use super::{contracts, error, identity, pki, registrations};
use crate::services::accounts as account_service;
use crate::services::inventory as inventory_service;
use axum::Json;
use axum::http::Method;
use axum::response::Html;
use utoipa::OpenApi;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Virtual Window (虚拟窗口) API",
        description = "Online pre-sale contract signing, filing and registration. Errors are `application/problem+json` with a stable `code`.",
    ),
    components(schemas(
        error::Problem,
        crate::services::FieldError,
        account_service::TokenPair,
        account_service::UserView,
        account_service::NewUserRequest,
        account_service::OrganisationView,
        inventory_service::ProjectSummary,
        inventory_service::PublicUnit,
        crate::services::pki::CertificateView,
        crate::services::pki::RevocationReason,
        identity::StartVerification,
        identity::CodeRequest,
        identity::IdentityRequest,
        identity::IdentityView,
        crate::services::identity::VerificationView,
        crate::services::identity::CodeIssued,
        crate::identity::Purpose,
        crate::services::contracts::NewContract,
        crate::services::contracts::BuyerTerms,
        crate::services::contracts::ContractView,
        crate::services::contracts::BuyerView,
        crate::services::contracts::SellerTerms,
        crate::services::contracts::PaymentTerms,
        crate::services::contracts::InstalmentTerms,
        crate::services::contracts::PropertyTerms,
        contracts::SignRequest,
        contracts::ReturnRequest,
        contracts::ReasonRequest,
        registrations::ApplyRequest,
        registrations::StepRequest,
        crate::services::registrations::RegistrationView,
        crate::services::registrations::PublicCertificate,
        crate::services::contracts::ReturnReason,
        pki::RevokeRequest,
        crate::domain::Role,
        crate::domain::Duty,
    )),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "auth", description = "Sign-in and tokens"),
        (name = "accounts", description = "Accounts and organisations"),
        (name = "inventory", description = "Projects, permits, buildings and units"),
        (name = "notifications", description = "The outbox of signed webhooks"),
        (name = "materials", description = "The reusable materials library"),
        (name = "pki", description = "CA certificates, CRLs and revocation"),
    )
)]
struct ApiDoc;

/// The HTTP methods a path item has operations for.
pub fn methods_of(item: &PathItem) -> Vec<Method> {
    [
        (Method::GET, item.get.is_some()),
        (Method::PUT, item.put.is_some()),
        (Method::POST, item.post.is_some()),
        (Method::DELETE, item.delete.is_some()),
        (Method::PATCH, item.patch.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| *present)
    .map(|(m, _)| m)
    .collect()
}

fn operation_mut<'a>(item: &'a mut PathItem, method: &Method) -> Option<&'a mut Operation> {
    match method.as_str() {
        "GET" => item.get.as_mut(),
        "POST" => item.post.as_mut(),
        "PUT" => item.put.as_mut(),
        "PATCH" => item.patch.as_mut(),
        "DELETE" => item.delete.as_mut(),
        _ => None,
    }
}

/// The refusals every operation can answer besides those its own annotation names, as
/// `application/problem+json` with a stable `code`: what the middleware, the extractors and the
/// access guard answer before any handler runs, and what the services refuse. An operation's
/// own description of a status (naming its codes) is kept.
fn standard_problems(access: Access, has_body: bool) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        (
            "400",
            "`malformed_json`, `unknown_field`, `unreadable_body` or `invalid_path`: the request cannot be read",
        ),
        (
            "404",
            "`not_found` (also what a caller who may not see the object gets) or `no_such_endpoint`",
        ),
        (
            "409",
            "The object is not in a state that allows this (`wrong_status`, `already_decided`, …)",
        ),
        (
            "422",
            "`validation_failed`, `invalid_body` or `invalid_query`, with every field error",
        ),
        (
            "429",
            "Too many requests (`rate_limited`, `too_many_uploads`, …); see `Retry-After`",
        ),
        ("503", "`timeout` or a dependency unavailable; retry later"),
    ];
    if access != Access::Public {
        out.push(("401", "`missing_token` or `invalid_token`: sign in first"));
        out.push((
            "403",
            "`forbidden_role`, `not_your_step`, `four_eyes` or another refusal of this person",
        ));
    }
    if has_body {
        out.push(("413", "`payload_too_large`: the body exceeds the limit"));
        out.push((
            "415",
            "`unsupported_media_type`: the body is not of the documented type",
        ));
    }
    out
}

fn success_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No content",
        "303" => "See the `Location`",
        "401" => "`missing_token` or `invalid_token`: sign in first",
        "403" => "Refused for this person",
        _ => "See `code` in the problem",
    }
}

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// The document served at `/api/openapi.json`: the declared endpoints' paths and schemas, each
/// operation's access rule as `x-roles`, and the standard refusals added where an annotation
/// does not name them.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    for (access, (schemas, paths, _)) in super::declared_docs() {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, schema) in schemas {
            components.schemas.entry(name).or_insert(schema);
        }
        for (path, mut item) in paths.paths {
            for method in methods_of(&item) {
                let Some(op) = operation_mut(&mut item, &method) else {
                    continue;
                };
                let ext: Extensions =
                    [("x-roles".to_owned(), serde_json::json!(access.describe()))]
                        .into_iter()
                        .collect();
                op.extensions
                    .get_or_insert_with(Default::default)
                    .merge(ext);
                // Handlers of different groups share names (`get`, `list`): the operation id
                // carries the group, so that each is unique (generated clients name methods so).
                if let (Some(id), Some(tag)) = (
                    op.operation_id.clone(),
                    op.tags.as_ref().and_then(|t| t.first()).cloned(),
                ) && !id.starts_with(&tag)
                {
                    op.operation_id = Some(format!("{tag}_{id}"));
                }
                let has_body = op.request_body.is_some();
                let standard = standard_problems(access, has_body);
                // Every response needs a description (OpenAPI requires one): an annotation that
                // gives none gets the standard one for its status.
                for (status, response) in op.responses.responses.iter_mut() {
                    if let RefOr::T(r) = response
                        && r.description.trim().is_empty()
                    {
                        r.description = standard
                            .iter()
                            .find(|(s, _)| s == status)
                            .map(|(_, d)| (*d).to_owned())
                            .unwrap_or_else(|| success_description(status).to_owned());
                    }
                }
                for (status, description) in standard {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(problem_response(description)));
                }
            }
            // Two declarations of one path (GET and POST) share its path item.
            match doc.paths.paths.get_mut(&path) {
                Some(existing) => {
                    for method in methods_of(&item) {
                        let op = operation_mut(&mut item, &method).map(std::mem::take);
                        match method.as_str() {
                            "GET" => existing.get = op,
                            "POST" => existing.post = op,
                            "PUT" => existing.put = op,
                            "PATCH" => existing.patch = op,
                            "DELETE" => existing.delete = op,
                            _ => {}
                        }
                    }
                }
                None => {
                    doc.paths.paths.insert(path, item);
                }
            }
        }
    }
    doc
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json", body = serde_json::Value)))]
pub async fn document_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

const DOCS_PAGE: &str = include_str!("../../templates/docs.html");

#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "A page to read this document and try every call (self-contained, no CDN)", content_type = "text/html")))]
pub async fn docs_page(
    axum::extract::State(_): axum::extract::State<AppState>,
) -> Html<&'static str> {
    Html(DOCS_PAGE)
}
