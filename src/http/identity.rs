//! Identity checks on the web: start, follow and cancel one's own verification, receive the
//! provider's signed callbacks, ask for a one-time signing code, and register or read one's own
//! real name and ID number (reading the full number is logged as access to personal data).

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};
use crate::identity::Purpose;
use crate::identity::signature::Headers;
use crate::services::identity::{self, CodeIssued, VerificationView};
use crate::services::{Caller, Error};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartVerification {
    pub purpose: Purpose,
    /// Where the provider sends the person back (defaults to the service's own page).
    pub return_url: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/identity/verifications", tag = "identity", security(("bearer" = [])),
    request_body = StartVerification,
    responses(
        (status = 201, body = VerificationView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`identity_missing`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`identity_provider_unavailable`: nothing can be signed until it answers", body = Problem, content_type = "application/problem+json")))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<StartVerification>,
) -> ApiResult<(StatusCode, Json<VerificationView>)> {
    let v = identity::start(&state.services, &caller, req.purpose, req.return_url).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(get, path = "/api/v1/identity/verifications/{id}", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = VerificationView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<VerificationView>> {
    Ok(Json(identity::get(&state.services, &caller, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/identity/verifications/{id}/cancel", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = VerificationView), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`verification_finished`", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<VerificationView>> {
    Ok(Json(identity::cancel(&state.services, &caller, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/identity/callbacks/{provider}", tag = "identity",
    params(("provider" = String, Path, description = "`sandbox` or `http`")),
    request_body(content = serde_json::Value, description = "The provider's result, signed in the X-VW-* headers (docs/identity.md)"),
    responses((status = 204, description = "Recorded"),
              (status = 401, description = "`callback_unsigned`, `callback_bad_signature`, `callback_stale`, `callback_replayed`, `callback_unknown_key`", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn callback(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let h = Headers::read(|k| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    })
    .map_err(|e| ApiError::unauthorized(e.code(), "回调缺少签名。"))?;
    identity::callback(&state.services, &provider, uri.path(), &h, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub purpose: Purpose,
    /// SHA-256 (hex) of the exact document the person was shown and is about to sign.
    pub document_sha256: String,
}

#[utoipa::path(post, path = "/api/v1/identity/codes", tag = "identity", security(("bearer" = [])),
    request_body = CodeRequest,
    responses((status = 201, body = CodeIssued),
              (status = 403, description = "`verification_required`, `verification_stale`", body = Problem, content_type = "application/problem+json"),
              (status = 429, description = "`too_many_codes`", body = Problem, content_type = "application/problem+json")))]
pub async fn code(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CodeRequest>,
) -> ApiResult<(StatusCode, Json<CodeIssued>)> {
    let c =
        identity::request_code(&state.services, &caller, req.purpose, &req.document_sha256).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityRequest {
    pub real_name: String,
    pub id_number: String,
}

#[derive(Serialize, ToSchema)]
pub struct IdentityView {
    pub real_name: String,
    /// The full number: only the person sees it here (and the access is logged).
    pub id_number: String,
    pub id_number_masked: String,
}

#[utoipa::path(put, path = "/api/v1/me/identity", tag = "identity", security(("bearer" = [])),
    request_body = IdentityRequest,
    responses((status = 204, description = "Registered"),
              (status = 409, description = "`identity_locked`: already registered; changes go through an administrator", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "field errors naming the rule (`checksum`, `date`, `future_date`, `old_form`, …)", body = Problem, content_type = "application/problem+json")))]
pub async fn set_identity(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<IdentityRequest>,
) -> ApiResult<StatusCode> {
    let s = &state.services;
    if identity::identity_of(s, &caller.user_id).await?.is_some() {
        return Err(Error::conflict(
            "identity_locked",
            "已登记的身份信息不能自行修改，请联系管理员。",
        )
        .into());
    }
    identity::register_identity(s, &caller, &caller.user_id, &req.real_name, &req.id_number)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/users/{id}/identity", tag = "identity", security(("bearer" = [])),
    params(("id" = String, Path, description = "The account")),
    request_body = IdentityRequest,
    responses((status = 204, description = "Registered or corrected by an administrator (staff onboarding, corrections); audited"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn set_user_identity(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<IdentityRequest>,
) -> ApiResult<StatusCode> {
    identity::register_identity(
        &state.services,
        &caller,
        &id,
        &req.real_name,
        &req.id_number,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me/identity", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = IdentityView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_identity(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<IdentityView>> {
    let s = &state.services;
    let (name, id) = identity::identity_of(s, &caller.user_id)
        .await?
        .ok_or_else(|| Error::not_found("已登记的身份信息"))?;
    identity::log_personal_access(s, &caller, &caller.user_id, "self").await?;
    Ok(Json(IdentityView {
        real_name: name,
        id_number_masked: id.masked(),
        id_number: id.as_str().to_owned(),
    }))
}
