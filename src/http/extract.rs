//! Request extractors that turn every kind of bad input into its own problem code: a wrong
//! content type, an oversized body, malformed JSON, an unknown field, a value of the wrong shape.

use super::error::ApiError;
use crate::services::{Caller, FieldError};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// A JSON body, strictly checked.
pub struct ApiJson<T>(pub T);

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "请求内容须为 JSON（Content-Type: application/json）。",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                payload_too_large()
            } else {
                ApiError::bad_request("unreadable_body", "请求内容无法读取。")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "请求内容超过允许的大小。",
    )
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first (into a generic value, which also rejects trailing data), then shape: serde
    // reports some shape errors (an enum given a number) as syntax errors when done in one pass.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::bad_request("malformed_json", "请求内容不是有效的 JSON。"))?;
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let msg = err.into_inner().to_string();
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or("");
            // The path already ends with the unknown key when it is nested.
            let field = if path == "." || path.is_empty() {
                name.to_owned()
            } else {
                path
            };
            ApiError {
                fields: vec![FieldError::new(
                    field.clone(),
                    "unknown_field",
                    format!("不认识的字段 {field}。"),
                )],
                ..ApiError::bad_request(
                    "unknown_field",
                    format!("请求中含有不认识的字段 {field}。"),
                )
            }
        } else {
            let missing = msg
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            let field = match (path.as_str(), missing) {
                (".", Some(name)) => name.to_owned(),
                (_, Some(name)) => format!("{path}.{name}"),
                _ => path,
            };
            let rule = if missing.is_some() {
                "required"
            } else {
                "type"
            };
            ApiError {
                fields: vec![FieldError::new(field, rule, "字段缺失或类型不正确。")],
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    "请求内容的字段缺失或类型不正确。",
                )
            }
        }
    })
}

/// Query parameters, strictly checked: a malformed or unknown parameter is `422 invalid_query`
/// as a problem, like every other refusal (axum's own rejection is plain text).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(ApiQuery)
            .map_err(|err| {
                let field = err.path().to_string();
                let msg = err.into_inner().to_string();
                let field = msg
                    .strip_prefix("unknown field `")
                    .or_else(|| msg.strip_prefix("missing field `"))
                    .and_then(|rest| rest.split('`').next())
                    .map(str::to_owned)
                    .unwrap_or(field);
                ApiError {
                    fields: vec![FieldError::new(
                        field,
                        "invalid_parameter",
                        "查询参数缺失、不认识或类型不正确。",
                    )],
                    ..ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_query",
                        "查询参数有误，请按字段提示修改。",
                    )
                }
            })
    }
}

/// A path parameter: one that cannot be read (bad percent-encoding) is `400 invalid_path`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|_| ApiError::bad_request("invalid_path", "请求路径中的参数无法读取。"))
    }
}

/// The authenticated caller, put into the request by the access guard.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("missing_token", "请先登录。"))
    }
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` entry when the service
/// is configured to trust its load balancer.
#[derive(Clone, Debug)]
pub struct ClientAddr(pub String);

pub fn client_addr(parts: &Parts, trust_forwarded_for: bool) -> ClientAddr {
    if trust_forwarded_for
        && let Some(first) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
        && let Ok(ip) = first.trim().parse::<std::net::IpAddr>()
    {
        return ClientAddr(ip.to_string());
    }
    match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => ClientAddr(addr.ip().to_string()),
        None => ClientAddr("unknown".into()),
    }
}

impl FromRequestParts<super::AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &super::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(client_addr(
            parts,
            state.services.config.http.trust_forwarded_for,
        ))
    }
}
