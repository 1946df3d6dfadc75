//! `Idempotency-Key` on requests that change state (POST, PUT, PATCH, DELETE): the first
//! response for a key is recorded and a retry with the same key and the same request gets it
//! back without the handler running again; the same key with another request is refused. Keys
//! are scoped to the verified caller, so two callers never see each other's answers.
//! Shared through the database, so a retry may land on any instance.
//!
//! A claim is a lease (`http.idempotency_lease_secs`). A process killed between claiming a key
//! and recording its answer leaves an unanswered claim; once its lease ran out, a retry takes the
//! key over and first reads the key's effects — written by the services in the same transaction
//! as the change itself — so a change that was committed is answered (the object as it is now),
//! never made twice.

use super::AppState;
use super::error::ApiError;
use crate::store::{IdempotencyClaim, IdempotencyTag};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const HEADER: &str = "idempotency-key";
/// Responses larger than this are not recorded (the key is released instead).
const MAX_RECORDED: usize = 1 << 20;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let changes_state = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(key) = req
        .headers()
        .get(HEADER)
        .filter(|_| changes_state)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(req).await;
    };
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return ApiError::bad_request(
            "idempotency_key_invalid",
            "Idempotency-Key 须为 1 至 128 个可见 ASCII 字符。",
        )
        .into_response();
    }
    // The caller's scope: the verified user (so a retry after a token refresh still replays);
    // a missing or invalid token scopes by its own bytes (that request is refused anyway).
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .unwrap_or(b"anonymous");
    let verified = std::str::from_utf8(auth)
        .ok()
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| state.services.tokens.verify_access(t.trim()).ok());
    let scope = match &verified {
        Some(claims) => format!("user:{}", claims.sub),
        None => format!("credential:{}", hex(&openssl::sha::sha256(auth))),
    };
    let (parts, body) = req.into_parts();
    let limit = state.services.config.http.body_limit_bytes;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return super::extract::payload_too_large().into_response(),
    };
    let mut h = openssl::sha::Sha256::new();
    h.update(parts.method.as_str().as_bytes());
    h.update(parts.uri.path().as_bytes());
    h.update(&bytes);
    let request_hash = hex(&h.finish());
    let store = &state.services.store;
    let cfg = &state.services.config.http;
    let lease = match cfg.idempotency_lease_secs {
        0 => cfg.request_timeout_secs + 30,
        n => n,
    };
    let now = time::OffsetDateTime::now_utc();
    let claim = store
        .claim_idempotency_key(
            &scope,
            &key,
            &request_hash,
            now,
            now + time::Duration::seconds(lease as i64),
        )
        .await;
    crate::services::phases::mark("claim");
    match claim {
        Ok(IdempotencyClaim::New) => {}
        Ok(IdempotencyClaim::Abandoned) => {
            if let Some(res) = committed_answer(&state, &scope, &key, verified.as_ref()).await {
                return res;
            }
            // Nothing of the first attempt was committed: this request runs as the first.
        }
        Ok(IdempotencyClaim::Replay {
            status,
            content_type,
            body,
        }) => {
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
            if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                res.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            res.headers_mut()
                .insert("idempotent-replay", HeaderValue::from_static("true"));
            return res;
        }
        Ok(IdempotencyClaim::InFlight) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "使用同一 Idempotency-Key 的请求正在处理中，请稍后重试。",
            )
            .into_response();
        }
        Ok(IdempotencyClaim::Mismatch) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "该 Idempotency-Key 已用于另一请求。",
            )
            .into_response();
        }
        // A lost database is 503 with Retry-After (the client retries with this key); any
        // other failure is internal (and logged by the conversion).
        Err(e) => return ApiError::from(crate::services::Error::from(e)).into_response(),
    }
    let mut parts = parts;
    parts.extensions.insert(IdempotencyTag {
        scope: scope.clone(),
        key: key.clone(),
    });
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    crate::services::phases::mark("handler");
    let status = res.status();
    let (res_parts, res_body) = res.into_parts();
    let body = match axum::body::to_bytes(res_body, MAX_RECORDED).await {
        Ok(b) => b,
        Err(_) => {
            let _ = store.release_idempotency_key(&scope, &key).await;
            return ApiError::internal().into_response();
        }
    };
    if status.is_server_error() {
        // A failure on our side is not an answer: let a retry run again.
        let _ = store.release_idempotency_key(&scope, &key).await;
    } else {
        let ct = res_parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Err(e) = store
            .complete_idempotency_key(&scope, &key, status.as_u16() as i32, ct, &body)
            .await
        {
            tracing::error!(error = %e, "recording an idempotent response");
        }
    }
    crate::services::phases::mark("answer_recorded");
    Response::from_parts(res_parts, Body::from(body))
}

/// The answer to a retry of an abandoned request whose change was committed: the object it
/// created or moved, as it is now (201 when it was created), recorded as the key's answer.
async fn committed_answer(
    state: &AppState,
    scope: &str,
    key: &str,
    claims: Option<&crate::services::tokens::AccessClaims>,
) -> Option<Response> {
    let s = &state.services;
    let effects = match s.store.idempotency_effects(scope, key).await {
        Ok(e) => e,
        Err(e) => return Some(ApiError::from(crate::services::Error::from(e)).into_response()),
    };
    let effect = effects.last()?;
    let claims = claims?;
    let caller = crate::services::Caller {
        user_id: claims.sub.clone(),
        role: claims.role,
        duties: claims.duties.clone(),
        organisation_id: claims.org.clone(),
        source: None,
        idempotency: None,
    };
    let body = match effect.object_kind.as_str() {
        "contract" => crate::services::contracts::resume(s, &caller, &effect.object_id)
            .await
            .map(|v| serde_json::to_vec(&v)),
        "registration" => crate::services::registrations::get(s, &caller, &effect.object_id)
            .await
            .map(|v| serde_json::to_vec(&v)),
        _ => return None,
    };
    let body = match body {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "serialising a committed answer");
            return Some(ApiError::internal().into_response());
        }
        Err(e) => return Some(ApiError::from(e).into_response()),
    };
    let status = if effect.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if let Err(e) = s
        .store
        .complete_idempotency_key(
            scope,
            key,
            status.as_u16() as i32,
            Some("application/json"),
            &body,
        )
        .await
    {
        tracing::error!(error = %e, "recording an idempotent response");
    }
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut()
        .insert("idempotent-replay", HeaderValue::from_static("true"));
    Some(res)
}
