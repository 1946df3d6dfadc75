//! The OpenAPI 3.1 document, generated from the handlers' annotations, with each operation's
//! access rule added from the endpoint table as `x-roles`; and the interactive page at `/docs`,
//! which is self-contained (no CDN) so it works on a closed government network.

use super::AppState;
use super::{
    accounts, contracts, error, health, identity, inventory, materials, notifications, pki,
    registrations, verify,
};
use crate::services::accounts as account_service;
use crate::services::inventory as inventory_service;
use axum::Json;
use axum::response::Html;
use utoipa::OpenApi;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Virtual Window (虚拟窗口) API",
        description = "Online pre-sale contract signing, filing and registration. Errors are `application/problem+json` with a stable `code`.",
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        accounts::login,
        accounts::refresh,
        accounts::logout,
        accounts::me,
        accounts::list_users,
        accounts::create_user,
        accounts::get_user,
        accounts::get_organisation,
        inventory::list_projects,
        inventory::project_units,
        inventory::create_project,
        inventory::create_permit,
        inventory::import_building,
        inventory::set_permit_status,
        inventory::set_unit_flag,
        notifications::list,
        notifications::requeue,
        registrations::not_accept,
        registrations::reject,
        registrations::withdraw,
        registrations::requisition,
        registrations::suspend,
        registrations::resume,
        registrations::hand_in,
        registrations::cancel_entry,
        materials::upload,
        materials::mine,
        materials::content,
        pki::ca_certificate,
        pki::crl,
        pki::list,
        pki::revoke,
        pki::timestamp,
        verify::verify,
        verify::page,
        identity::start,
        identity::get,
        identity::cancel,
        identity::callback,
        identity::code,
        identity::set_identity,
        identity::get_identity,
        identity::set_user_identity,
        contracts::create,
        contracts::list,
        contracts::submit_filing,
        contracts::get,
        contracts::withdraw,
        contracts::confirm,
        contracts::document,
        contracts::verification,
        contracts::sign,
        contracts::seal,
        contracts::approve_filing,
        contracts::edit,
        contracts::return_filing,
        contracts::reopen,
        contracts::recall,
        contracts::evidence,
        contracts::checks,
        contracts::filing_queue,
        contracts::invitations,
        contracts::accept_invitation,
        contracts::request_cancellation,
        contracts::consent_cancellation,
        contracts::approve_cancellation,
        registrations::apply,
        registrations::list,
        registrations::get,
        registrations::accept,
        registrations::first_review,
        registrations::second_review,
        registrations::record,
        registrations::certificate,
        registrations::public_status,
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

/// The document served at `/api/openapi.json`.
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
    for (endpoint, _) in super::endpoints() {
        let Some(item) = doc.paths.paths.get_mut(endpoint.path) else {
            continue;
        };
        let op = match endpoint.method.as_str() {
            "GET" => item.get.as_mut(),
            "POST" => item.post.as_mut(),
            "PUT" => item.put.as_mut(),
            "PATCH" => item.patch.as_mut(),
            "DELETE" => item.delete.as_mut(),
            _ => None,
        };
        if let Some(op) = op {
            let ext: Extensions = [(
                "x-roles".to_owned(),
                serde_json::json!(endpoint.access.describe()),
            )]
            .into_iter()
            .collect();
            op.extensions
                .get_or_insert_with(Default::default)
                .merge(ext);
        }
    }
    doc
}

pub async fn document_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

const DOCS_PAGE: &str = include_str!("../../templates/docs.html");

pub async fn docs_page(
    axum::extract::State(_): axum::extract::State<AppState>,
) -> Html<&'static str> {
    Html(DOCS_PAGE)
}
