//! The materials library on the web: a party uploads a document once (PDF, JPEG or PNG, the
//! bytes as the body), sees what is on file for reuse, and reads it back.

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiPath, ApiQuery};
use crate::services::Caller;
use crate::services::materials::{self, MaterialView};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// id_card, business_licence, court_document, consent or other.
    pub kind: String,
    /// What it is, as the party names it.
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/materials", tag = "materials", security(("bearer" = [])),
    params(UploadParams),
    request_body(content(
        (Vec<u8> = "application/pdf"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png")
    )),
    responses((status = 201, description = "Stored (once: the same bytes again are the same material)", body = MaterialView),
              (status = 413, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "the kind, the name, the size, or bytes that are not what the Content-Type says", body = Problem, content_type = "application/problem+json")))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UploadParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<MaterialView>)> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if body.len() > materials::MAX_BYTES {
        return Err(super::extract::payload_too_large());
    }
    let m = materials::upload(&state.services, &caller, &declared, &q.kind, &q.name, &body).await?;
    Ok((StatusCode::CREATED, Json(m)))
}

#[utoipa::path(get, path = "/api/v1/materials", tag = "materials", security(("bearer" = [])),
    responses((status = 200, description = "The caller's materials, newest first", body = [MaterialView])))]
pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<MaterialView>>> {
    Ok(Json(materials::mine(&state.services, &caller).await?))
}

#[utoipa::path(get, path = "/api/v1/materials/{id}", tag = "materials", security(("bearer" = [])),
    params(("id" = String, Path, description = "The material's SHA-256")),
    responses((status = 200, description = "The bytes, for their owner and the centre's staff"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn content(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::from(crate::services::Error::not_found("该材料")));
    }
    let (media, bytes) = materials::content(&state.services, &caller, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        bytes,
    ))
}
