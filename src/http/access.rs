//! Access rules. Every endpoint declares who may call it; the guard checks the bearer token and
//! the role before the handler runs and hands the handler a verified `Caller`. Whose object a
//! caller may touch is decided again in the services.

use super::AppState;
use super::error::ApiError;
use super::extract::client_addr;
use crate::domain::Role;
use crate::services::Caller;
use crate::services::tokens::TokenError;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Any signed-in account.
    Authenticated,
    /// Signed-in accounts of these roles.
    Roles(&'static [Role]),
}

impl Access {
    pub fn allows(self, role: Option<Role>) -> bool {
        match (self, role) {
            (Access::Public, _) => true,
            (Access::Authenticated, Some(_)) => true,
            (Access::Roles(roles), Some(r)) => roles.contains(&r),
            (_, None) => false,
        }
    }

    /// The roles for the OpenAPI `x-roles` extension.
    pub fn describe(self) -> Vec<&'static str> {
        match self {
            Access::Public => vec!["public"],
            Access::Authenticated => Role::ALL.iter().map(|r| r.as_str()).collect(),
            Access::Roles(roles) => roles.iter().map(|r| r.as_str()).collect(),
        }
    }
}

/// One endpoint: method, path (as the router and the OpenAPI document write it) and access.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub method: Method,
    pub path: String,
    pub access: Access,
}

pub async fn guard(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let source = client_addr(&parts, state.services.config.http.trust_forwarded_for);
    let bearer = parts.headers.get(header::AUTHORIZATION).map(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.strip_prefix("Bearer "))
            .map(str::trim)
    });
    let verified = match bearer {
        None => Err(ApiError::unauthorized(
            "missing_token",
            "请先登录（缺少访问令牌）。",
        )),
        Some(None) => Err(ApiError::unauthorized(
            "invalid_token",
            "访问令牌格式不正确。",
        )),
        Some(Some(token)) => match state.services.tokens.verify_access(token) {
            Ok(claims) => Ok(Caller {
                user_id: claims.sub,
                role: claims.role,
                duties: claims.duties,
                organisation_id: claims.org,
                source: Some(source.0.clone()),
                idempotency: parts
                    .extensions
                    .get::<crate::store::IdempotencyTag>()
                    .cloned(),
            }),
            Err(TokenError::Expired) => Err(ApiError::unauthorized(
                "token_expired",
                "登录已过期，请重新登录。",
            )),
            Err(TokenError::Invalid) => {
                Err(ApiError::unauthorized("invalid_token", "访问令牌无效。"))
            }
        },
    };
    match (access, verified) {
        // A public endpoint works without a token; a stale one sent along does not block it.
        (Access::Public, Ok(caller)) => {
            parts.extensions.insert(caller);
        }
        (Access::Public, Err(_)) => {}
        (_, Err(e)) => return e.into_response(),
        (_, Ok(caller)) => {
            if !access.allows(Some(caller.role)) {
                return ApiError::forbidden("forbidden_role", "您的角色无权使用该功能。")
                    .into_response();
            }
            parts.extensions.insert(caller);
        }
    }
    parts.extensions.insert(source);
    next.run(Request::from_parts(parts, body)).await
}
