//! The PKI on the web: CA certificates and CRLs for anyone (their URLs are written into every
//! certificate), and the certificate log and revocation for administrators.

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};
use crate::services::Caller;
use crate::services::gm::{self, SealView};
use crate::services::pki::{self, CertificateView, RevocationReason};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::ToSchema;

fn strip<'a>(file: &'a str, ext: &str) -> Result<&'a str, ApiError> {
    file.strip_suffix(ext).ok_or_else(ApiError::not_found)
}

#[utoipa::path(get, path = "/pki/ca/{file}", tag = "pki",
    params(("file" = String, Path, description = "`root.pem`, `people-ca.pem`, `organisations-ca.pem` or `timestamping-ca.pem`; on the 国密 side `sm2-root.pem`, `sm2-people-ca.pem`, `sm2-organisations-ca.pem`, `sm2-centre-ca.pem`")),
    responses((status = 200, description = "The CA certificate, PEM", content_type = "application/x-pem-file"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn ca_certificate(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let pem = pki::ca_certificate(&state.services, strip(&file, ".pem")?)?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem))
}

#[utoipa::path(get, path = "/pki/crl/{file}", tag = "pki",
    params(("file" = String, Path, description = "`<ca>.crl`, e.g. `people-ca.crl`; `root.crl` lists revoked issuing CAs")),
    responses((status = 200, description = "The current CRL, DER", content_type = "application/pkix-crl"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn crl(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let der = pki::crl(&state.services, strip(&file, ".crl")?).await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der))
}

#[utoipa::path(get, path = "/api/v1/pki/certificates", tag = "pki", security(("bearer" = [])),
    responses((status = 200, body = [CertificateView]), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<CertificateView>>> {
    Ok(Json(pki::list(&state.services, &caller).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub reason: RevocationReason,
}

#[utoipa::path(post, path = "/api/v1/pki/certificates/{serial}/revoke", tag = "pki", security(("bearer" = [])),
    params(("serial" = String, Path, description = "Serial number, hex")),
    request_body = RevokeRequest,
    responses(
        (status = 200, body = CertificateView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_revoked`", body = Problem, content_type = "application/problem+json")))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(serial): ApiPath<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> ApiResult<Json<CertificateView>> {
    Ok(Json(
        pki::revoke(&state.services, Some(&caller), &serial, req.reason).await?,
    ))
}

#[utoipa::path(post, path = "/tsa", tag = "pki",
    request_body(content = Vec<u8>, content_type = "application/timestamp-query", description = "RFC 3161 TimeStampReq, DER"),
    responses(
        (status = 200, description = "RFC 3161 TimeStampResp, DER (a malformed request gets a rejection status inside it)", content_type = "application/timestamp-reply"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json")))]
pub async fn timestamp(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.eq_ignore_ascii_case("application/timestamp-query") {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "时间戳请求须为 application/timestamp-query。",
        ));
    }
    if body.len() > crate::pki::tsa::MAX_REQUEST {
        return Err(super::extract::payload_too_large());
    }
    let reply = pki::timestamp(&state.services, &body)?;
    Ok((
        [(header::CONTENT_TYPE, "application/timestamp-reply")],
        reply,
    ))
}

#[utoipa::path(get, path = "/api/v1/pki/seals", tag = "pki", security(("bearer" = [])),
    responses((status = 200, description = "The GB/T 38540 electronic seals (电子印章) kept by this installation, newest first", body = [SealView]),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn seals(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<SealView>>> {
    Ok(Json(gm::list_seals(&state.services, &caller).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealRevokeRequest {
    /// Why (kept in the audit trail), at most 200 characters.
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/pki/seals/{es_id}/revoke", tag = "pki", security(("bearer" = [])),
    params(("es_id" = String, Path, description = "The seal's esID")),
    request_body = SealRevokeRequest,
    responses(
        (status = 200, description = "Revoked: signatures made with it afterwards are invalid; its holder gets a new seal on next use", body = SealView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`seal_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_seal(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(es_id): ApiPath<String>,
    ApiJson(req): ApiJson<SealRevokeRequest>,
) -> ApiResult<Json<SealView>> {
    Ok(Json(
        gm::revoke_seal(&state.services, &caller, &es_id, &req.reason).await?,
    ))
}
