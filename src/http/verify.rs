//! Verification for everyone: `POST /api/v1/verify` takes a PDF or an OFD package as the body and answers with the
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
    request_body(description = "A PDF (PAdES signatures and time stamps) or an OFD package (GB/T 38540 seals, SM2/SM3)",
        content((Vec<u8> = "application/pdf"), (Vec<u8> = "application/ofd"))),
    responses(
        (status = 200, description = "The verification report (fields in docs/verification.md); `verdict` is `valid`, `invalid` or `indeterminate`", body = serde_json::Value),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`not_a_pdf`, `not_an_ofd`", body = Problem, content_type = "application/problem+json"),
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
    let ct = ct.split(';').next().unwrap_or("").trim();
    let ofd = ct.eq_ignore_ascii_case("application/ofd");
    if !ct.eq_ignore_ascii_case("application/pdf") && !ofd {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请上传 PDF 或 OFD 文件（Content-Type: application/pdf 或 application/ofd）。",
        ));
    }
    let bytes = Bytes::from_request(req, &state).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            payload_too_large()
        } else {
            ApiError::bad_request("unreadable_body", "请求内容无法读取。")
        }
    })?;
    // The declared type must match the bytes: an OFD is a ZIP, a PDF never is.
    if ofd != crate::ofd::is_zip(&bytes) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            if ofd { "not_an_ofd" } else { "not_a_pdf" },
            if ofd {
                "上传的文件不是 OFD 文件。"
            } else {
                "上传的文件不是 PDF 文件。"
            },
        ));
    }
    Ok(Json(
        verification::verify_upload(&state.services, bytes).await?,
    ))
}
