//! A stand-in identity provider: a small HTTP server speaking the protocol of docs/identity.md
//! with the sandbox's outcomes (chosen by the ID number's sequence code), so the `http` provider
//! is tested over a real connection and demos run without a paid service. It checks the
//! service's request signatures, sends signed callbacks, and can be told to hang or to fail
//! (`Controls`) to exercise timeouts, retries and the circuit breaker.
//! Run it with `virtual-window identity-standin`.

use super::sandbox::Sandbox;
use super::signature::{self, Headers};
use super::{ProviderResult, ProviderStatus};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct StandinConfig {
    pub key_id: String,
    pub secret: Vec<u8>,
    /// How long after `start` the callback is sent.
    pub callback_delay: Duration,
}

/// Switches a test flips to make the provider misbehave, and counters it reads.
#[derive(Default)]
pub struct Controls {
    /// Every request waits this long before answering (0: no wait).
    pub hang_ms: AtomicU64,
    /// Every request is answered with HTTP 500.
    pub fail: AtomicBool,
    /// Requests received (including refused ones).
    pub requests: AtomicU64,
}

struct Entry {
    result: ProviderResult,
    completed: bool,
}

struct Inner {
    cfg: StandinConfig,
    controls: Arc<Controls>,
    by_ref: Mutex<HashMap<String, Entry>>,
    by_reference: Mutex<HashMap<String, String>>,
    nonces: Mutex<HashSet<String>>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct StartBody {
    reference: String,
    id_number: String,
    return_url: String,
    callback_url: String,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The stand-in's router and its controls.
pub fn router(cfg: StandinConfig) -> (Router, Arc<Controls>) {
    let controls = Arc::new(Controls::default());
    let inner = Arc::new(Inner {
        cfg,
        controls: controls.clone(),
        by_ref: Mutex::new(HashMap::new()),
        by_reference: Mutex::new(HashMap::new()),
        nonces: Mutex::new(HashSet::new()),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default(),
    });
    let r = Router::new()
        .route("/v1/verifications", post(start))
        .route("/v1/verifications/{r}", get(result))
        .route("/v1/verifications/{r}/cancel", post(cancel))
        .with_state(inner);
    (r, controls)
}

/// Serves the stand-in on `listener` until the task is dropped. `POST /control` with
/// `{"hang_ms": N, "fail": bool}` makes it slow or failing (the opening-day script's "slow
/// identity provider"): a stand-in for tests and demos, never a real provider.
pub async fn serve(listener: tokio::net::TcpListener, cfg: StandinConfig) -> std::io::Result<()> {
    let (r, controls) = router(cfg);
    let r = r.route(
        "/control",
        post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let controls = controls.clone();
            async move {
                if let Some(ms) = v["hang_ms"].as_u64() {
                    controls.hang_ms.store(ms, Ordering::SeqCst);
                }
                if let Some(fail) = v["fail"].as_bool() {
                    controls.fail.store(fail, Ordering::SeqCst);
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    axum::serve(listener, r).await
}

/// The request's signature, freshness and nonce; then the misbehaviour switches.
async fn admit(
    s: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Response> {
    s.controls.requests.fetch_add(1, Ordering::SeqCst);
    let hang = s.controls.hang_ms.load(Ordering::SeqCst);
    if hang > 0 {
        tokio::time::sleep(Duration::from_millis(hang)).await;
    }
    if s.controls.fail.load(Ordering::SeqCst) {
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "stand-in told to fail").into_response());
    }
    let h = Headers::read(|k| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    })
    .map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()).into_response())?;
    h.check(
        &s.cfg.key_id,
        &s.cfg.secret,
        method.as_str(),
        uri.path(),
        body,
        now(),
    )
    .map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()).into_response())?;
    if !s
        .nonces
        .lock()
        .map(|mut n| n.insert(h.nonce.clone()))
        .unwrap_or(false)
    {
        return Err((StatusCode::UNAUTHORIZED, "replayed nonce").into_response());
    }
    Ok(())
}

async fn start(
    State(s): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(&s, &method, &uri, &headers, &body).await {
        return r;
    }
    let Ok(req) = serde_json::from_slice::<StartBody>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed request").into_response();
    };
    let seq = req.id_number.get(14..17).unwrap_or("000").to_owned();
    match seq.as_str() {
        "903" => {
            // Never answers within any sane timeout.
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        "906" => return (StatusCode::INTERNAL_SERVER_ERROR, "provider error").into_response(),
        _ => {}
    }
    // Idempotent by the service's reference: a retried start gets the same verification.
    let existing = s
        .by_reference
        .lock()
        .ok()
        .and_then(|m| m.get(&req.reference).cloned());
    let provider_ref = match existing {
        Some(r) => r,
        None => {
            let r = format!("sbx-{seq}-{}", uuid::Uuid::new_v4().simple());
            let Some(result) = Sandbox::outcome(&r, false) else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            if let Ok(mut m) = s.by_ref.lock() {
                m.insert(
                    r.clone(),
                    Entry {
                        result,
                        completed: false,
                    },
                );
            }
            if let Ok(mut m) = s.by_reference.lock() {
                m.insert(req.reference.clone(), r.clone());
            }
            let s2 = s.clone();
            let (r2, url) = (r.clone(), req.callback_url.clone());
            tokio::spawn(async move {
                tokio::time::sleep(s2.cfg.callback_delay).await;
                send_callback(&s2, &r2, &url).await;
            });
            r
        }
    };
    let reply = serde_json::json!({
        "provider_ref": provider_ref,
        "redirect_url": format!(
            "{}{}provider_ref={provider_ref}",
            req.return_url,
            if req.return_url.contains('?') { '&' } else { '?' }
        ),
    });
    (StatusCode::CREATED, axum::Json(reply)).into_response()
}

/// Completes the verification and posts the signed result to the service.
async fn send_callback(s: &Inner, provider_ref: &str, url: &str) {
    let result = {
        let Ok(mut m) = s.by_ref.lock() else { return };
        let Some(e) = m.get_mut(provider_ref) else {
            return;
        };
        if e.result.status == ProviderStatus::Pending
            && !e.completed
            && let Some(done) = Sandbox::outcome(provider_ref, true)
        {
            e.result = done;
        }
        e.completed = true;
        e.result.clone()
    };
    let body = serde_json::to_vec(&result).unwrap_or_default();
    let path = reqwest::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let h = signature::make(&s.cfg.key_id, &s.cfg.secret, "POST", &path, &body, now());
    let mut req = s
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in h.pairs() {
        req = req.header(k, v);
    }
    if let Err(e) = req.send().await {
        tracing::warn!(error = %e.without_url(), "stand-in callback failed");
    }
}

async fn result(
    State(s): State<Arc<Inner>>,
    Path(r): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = admit(&s, &method, &uri, &headers, b"").await {
        return resp;
    }
    match s
        .by_ref
        .lock()
        .ok()
        .and_then(|m| m.get(&r).map(|e| e.result.clone()))
    {
        Some(result) => axum::Json(result).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn cancel(
    State(s): State<Arc<Inner>>,
    Path(r): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = admit(&s, &method, &uri, &headers, b"").await {
        return resp;
    }
    match s.by_ref.lock().ok().map(|mut m| m.remove(&r).is_some()) {
        Some(true) => StatusCode::NO_CONTENT.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
