//! The one error type at the HTTP boundary, rendered as `application/problem+json` (RFC 9457)
//! with a stable `code`, a message for people (Chinese) and field errors. Internal errors are
//! logged once, inside the request's span (which carries the request id), and never echoed.

use crate::services::{self, FieldError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
    pub retry_after: Option<u64>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:virtual-window:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short English summary of the status.
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code; clients branch on this, never on the message.
    pub code: String,
    /// What went wrong, for the person using the service.
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "请求的资源不存在。")
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "服务内部错误，请稍后再试；如持续出现，请联系运营单位并提供请求编号（X-Request-Id）。",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("urn:virtual-window:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: self.message.clone(),
            errors: self.fields.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<services::Error> for ApiError {
    fn from(e: services::Error) -> Self {
        use services::Error as E;
        match e {
            E::Invalid {
                code,
                message,
                fields,
            } => ApiError {
                fields,
                ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            },
            E::Unauthenticated { code, message } => ApiError::unauthorized(code, message),
            E::Forbidden { code, message } => ApiError::forbidden(code, message),
            E::NotFound { code, message } => ApiError::new(StatusCode::NOT_FOUND, code, message),
            E::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            E::RateLimited {
                code,
                message,
                retry_after_secs,
            } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
            },
            E::Unavailable { code, message } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
            }
            E::Busy {
                code,
                message,
                retry_after_secs,
            } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
            },
            E::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "internal error");
                ApiError::internal()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
