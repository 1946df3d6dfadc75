//! Verification for everyone: `POST /api/v1/verify` takes a PDF as the body and answers with the
//! verifier's report (docs/verification.md); the page that does it in a browser is the web
//! room's `/verify`.

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::payload_too_large;
use crate::services::verification;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};

#[utoipa::path(post, path = "/api/v1/verify", tag = "verification",
    request_body(content = Vec<u8>, content_type = "application/pdf", description = "The PDF to verify"),
    responses(
        (status = 200, description = "The verification report (fields in docs/verification.md); `verdict` is `valid`, `invalid` or `indeterminate`", body = serde_json::Value),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`not_a_pdf`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`verifier_busy`", body = Problem, content_type = "application/problem+json")))]
pub async fn verify(
    State(state): State<AppState>,
    req: Request,
) -> ApiResult<Json<crate::pdf::verify::Report>> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.eq_ignore_ascii_case("application/pdf") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请上传 PDF 文件（Content-Type: application/pdf）。",
        ));
    }
    let bytes = Bytes::from_request(req, &state).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            payload_too_large()
        } else {
            ApiError::bad_request("unreadable_body", "请求内容无法读取。")
        }
    })?;
    Ok(Json(
        verification::verify_pdf(&state.services, bytes).await?,
    ))
}
