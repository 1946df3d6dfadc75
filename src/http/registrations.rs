//! Registration on the web: the buyer applies, the centre accepts, reviews twice and records
//! (four different people), the certificate is issued; its QR code leads to a public status.

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::services::Caller;
use crate::services::registrations::{
    self, EntryCancellation, HandIn, Items, Note, RegistrationView,
};
use crate::store::RegistrationStep;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    pub contract_id: String,
    /// A one-time code for `apply_registration`, issued for the filed contract's SHA-256.
    pub code_id: String,
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/registrations", tag = "registrations", security(("bearer" = [])),
    request_body = ApplyRequest,
    responses((status = 201, body = RegistrationView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`contract_not_filed`, `registration_exists`", body = Problem, content_type = "application/problem+json")))]
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ApplyRequest>,
) -> ApiResult<(StatusCode, Json<RegistrationView>)> {
    let r = registrations::apply(
        &state.services,
        &caller,
        &req.contract_id,
        &req.code_id,
        &req.code,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(get, path = "/api/v1/registrations", tag = "registrations", security(("bearer" = [])),
    params(registrations::RegistrationListQuery),
    responses((status = 200, description = "A page of cases (a buyer: their own applications; reviewers and administrators: all, or with `step` one step's queue, oldest first, with who may take each)", body = registrations::RegistrationList),
              (status = 422, description = "`invalid_query`", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<registrations::RegistrationListQuery>,
) -> ApiResult<Json<registrations::RegistrationList>> {
    Ok(Json(
        registrations::list(&state.services, &caller, &q).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/registrations/{id}", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = RegistrationView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::get(&state.services, &caller, &id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    pub opinion: String,
}

async fn step(
    state: AppState,
    caller: Caller,
    id: String,
    step: RegistrationStep,
    req: StepRequest,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::step(&state.services, &caller, &id, step, &req.opinion).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/accept", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = StepRequest,
    responses((status = 200, description = "Accepted; an acceptance number issued", body = RegistrationView),
              (status = 403, description = "`four_eyes`", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`, `on_hold` (requisitioned or suspended), `already_decided`", body = Problem, content_type = "application/problem+json")))]
pub async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<StepRequest>,
) -> ApiResult<Json<RegistrationView>> {
    step(state, caller, id, RegistrationStep::Accept, req).await
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/first-review", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = StepRequest,
    responses((status = 200, body = RegistrationView),
              (status = 403, description = "`four_eyes` or a missing duty", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`, `on_hold` (requisitioned or suspended), `already_decided`", body = Problem, content_type = "application/problem+json")))]
pub async fn first_review(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<StepRequest>,
) -> ApiResult<Json<RegistrationView>> {
    step(state, caller, id, RegistrationStep::FirstReview, req).await
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/second-review", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = StepRequest,
    responses((status = 200, body = RegistrationView),
              (status = 403, description = "`four_eyes` or a missing duty", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`, `on_hold` (requisitioned or suspended), `already_decided`", body = Problem, content_type = "application/problem+json")))]
pub async fn second_review(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<StepRequest>,
) -> ApiResult<Json<RegistrationView>> {
    step(state, caller, id, RegistrationStep::SecondReview, req).await
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/record", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = StepRequest,
    responses((status = 200, description = "Recorded (登簿) and the certificate issued", body = RegistrationView),
              (status = 403, description = "`four_eyes` or a missing duty", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`, `on_hold` (requisitioned or suspended), `already_decided`", body = Problem, content_type = "application/problem+json")))]
pub async fn record(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<StepRequest>,
) -> ApiResult<Json<RegistrationView>> {
    step(state, caller, id, RegistrationStep::Record, req).await
}

/// Which form of the certificate.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CertificateFormat {
    /// PDF with the centre's PAdES seal (P-256).
    #[default]
    Pdf,
    /// OFD package with the centre's GB/T 38540 seal (SM2/SM3).
    Ofd,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CertificateParams {
    /// `pdf` (default) or `ofd`.
    #[serde(default)]
    // Inline: a parameter's schema is not collected into the document's components, so a
    // reference to it would point at nothing (openapi-spec-validator refuses that).
    #[param(inline)]
    pub format: CertificateFormat,
}

#[utoipa::path(get, path = "/api/v1/registrations/{id}/certificate", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path), CertificateParams),
    responses((status = 200, description = "The sealed electronic registration certificate: a PDF (PAdES seal) or, with `format=ofd`, an OFD package (GB/T 38540 seal, SM2)", content(
                  (Vec<u8> = "application/pdf"), (Vec<u8> = "application/ofd"))),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CertificateParams>,
) -> ApiResult<impl axum::response::IntoResponse> {
    let (bytes, kind, name) = match q.format {
        CertificateFormat::Pdf => (
            registrations::certificate_pdf(&state.services, &caller, &id).await?,
            "application/pdf",
            "certificate.pdf",
        ),
        CertificateFormat::Ofd => (
            registrations::certificate_ofd(&state.services, &caller, &id).await?,
            "application/ofd",
            "certificate.ofd",
        ),
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, kind.to_owned()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    ))
}

#[utoipa::path(get, path = "/c/{number}", tag = "registrations",
    params(("number" = String, Path, description = "The certificate number's digits (year and serial), as in the QR code")),
    responses((status = 200, description = "JSON for programs; a browser (`Accept: text/html` first) is sent (303) to the status page `/public/certificates/{number}`", body = registrations::PublicCertificate),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn public_status(
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    // A phone scanning the QR code asks for HTML; the page then asks for the JSON.
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| first.trim().starts_with("text/html"));
    if wants_html {
        let digits: String = number
            .chars()
            .filter(char::is_ascii_digit)
            .take(20)
            .collect();
        return Ok(
            axum::response::Redirect::to(&format!("/public/certificates/{digits}")).into_response(),
        );
    }
    Ok(Json(registrations::public_status(&state.services, &number).await?).into_response())
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/not-accept", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Items,
    responses((status = 200, description = "Not accepted, with everything missing listed at once", body = RegistrationView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`: only a submitted case", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn not_accept(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Items>,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::not_accept(&state.services, &caller, &id, req).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/reject", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Items,
    responses((status = 200, description = "Rejected with every reason (first or second reviewer)", body = RegistrationView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`, `on_hold` (requisitioned or suspended), `already_decided`", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Items>,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::reject(&state.services, &caller, &id, req).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/withdraw", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Note,
    responses((status = 200, description = "Withdrawn by the applicant before recording", body = RegistrationView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`, `on_hold` (requisitioned or suspended), `already_decided`", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Note>,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::withdraw(&state.services, &caller, &id, req).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/requisition", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Items,
    responses((status = 200, description = "Requisitioned (补正): waits at its step until the applicant hands in what is listed", body = RegistrationView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status` (not under review), `on_hold` (already on hold)", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn requisition(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Items>,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::requisition(&state.services, &caller, &id, req).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/suspend", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Note,
    responses((status = 200, description = "Suspended (court, objection)", body = RegistrationView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`, `on_hold` (requisitioned or suspended), `already_decided`", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Note>,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::suspend(&state.services, &caller, &id, req).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/resume", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Note,
    responses((status = 200, description = "Resumed at its step", body = RegistrationView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`not_on_hold`: not suspended", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Note>,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::resume(&state.services, &caller, &id, req).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/materials", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = HandIn,
    responses((status = 200, description = "The materials added to the case; an answered requisition puts it back at its step", body = RegistrationView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`: the case is decided; `on_hold`: suspended", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn hand_in(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<HandIn>,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::hand_in(&state.services, &caller, &id, req).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/registrations/{id}/entry/cancel", tag = "registrations", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = EntryCancellation,
    responses((status = 200, description = "The advance notice cancelled, the certificate revoked, the unit back to filed", body = RegistrationView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`no_valid_entry`", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_entry(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<EntryCancellation>,
) -> ApiResult<Json<RegistrationView>> {
    Ok(Json(
        registrations::cancel_entry(&state.services, &caller, &id, req).await?,
    ))
}
