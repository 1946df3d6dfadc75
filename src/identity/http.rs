//! The `http` provider: any verification service speaking the signed JSON protocol of
//! docs/identity.md over HTTPS. Start → redirect (or SDK token) → asynchronous callback, with
//! polling as a fallback. Every request is signed (signature.rs); each call has a timeout, is
//! retried with exponential backoff on timeouts, connection errors and 5xx, and a circuit
//! breaker stops calling a provider that keeps failing, so an outage fails fast and closed.

use super::signature::{self, Headers};
use super::{
    Callback, CallbackError, Provider, ProviderError, ProviderResult, StartRequest, Started,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct HttpProviderConfig {
    /// e.g. `https://idv.example.com` (a path prefix is allowed).
    pub base_url: String,
    pub key_id: String,
    pub secret: Vec<u8>,
    pub timeout: Duration,
    /// Attempts after the first, for timeouts, connection errors and 5xx.
    pub retries: u32,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
}

#[derive(Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

pub struct HttpProvider {
    cfg: HttpProviderConfig,
    client: reqwest::Client,
    breaker: Mutex<Breaker>,
}

#[derive(Serialize)]
struct StartBody<'a> {
    reference: &'a str,
    name: &'a str,
    id_number: &'a str,
    purpose: &'a str,
    return_url: &'a str,
    callback_url: &'a str,
}

#[derive(Deserialize)]
struct StartReply {
    provider_ref: String,
    redirect_url: Option<String>,
    token: Option<String>,
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl HttpProvider {
    pub fn new(cfg: HttpProviderConfig) -> Result<HttpProvider, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Ok(HttpProvider {
            cfg,
            client,
            breaker: Mutex::new(Breaker::default()),
        })
    }

    fn breaker_open(&self) -> bool {
        let Ok(mut b) = self.breaker.lock() else {
            return false;
        };
        match b.open_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                // Half-open: let one call through; its outcome closes or reopens the breaker.
                b.open_until = None;
                false
            }
            None => false,
        }
    }

    fn record(&self, ok: bool) {
        if let Ok(mut b) = self.breaker.lock() {
            if ok {
                b.consecutive_failures = 0;
            } else {
                b.consecutive_failures += 1;
                if b.consecutive_failures >= self.cfg.breaker_failures.max(1) {
                    b.open_until = Some(Instant::now() + self.cfg.breaker_open);
                }
            }
        }
    }

    /// One signed call with retries; returns the status and body of a 2xx or 4xx answer.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ProviderError> {
        if self.breaker_open() {
            return Err(ProviderError::Unavailable(
                "the provider failed repeatedly; calls are paused".into(),
            ));
        }
        let url = format!("{}{path}", self.cfg.base_url.trim_end_matches('/'));
        let signed_path = reqwest::Url::parse(&url)
            .map(|u| u.path().to_owned())
            .map_err(|e| ProviderError::Unavailable(format!("bad provider URL: {e}")))?;
        let mut last = ProviderError::Unavailable("not attempted".into());
        for attempt in 0..=self.cfg.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << (attempt - 1).min(6))).await;
            }
            let h = signature::make(
                &self.cfg.key_id,
                &self.cfg.secret,
                method.as_str(),
                &signed_path,
                &body,
                unix_now(),
            );
            let mut req = self
                .client
                .request(method.clone(), &url)
                .header("content-type", "application/json")
                .body(body.clone());
            for (k, v) in h.pairs() {
                req = req.header(k, v);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status >= 500 {
                        last = ProviderError::Unavailable(format!("HTTP {status}"));
                        continue;
                    }
                    match resp.bytes().await {
                        Ok(b) => {
                            self.record(true);
                            return Ok((status, b.to_vec()));
                        }
                        Err(e) if e.is_timeout() => last = ProviderError::Timeout,
                        Err(e) => last = ProviderError::Unavailable(e.to_string()),
                    }
                }
                Err(e) if e.is_timeout() => last = ProviderError::Timeout,
                Err(e) => last = ProviderError::Unavailable(e.without_url().to_string()),
            }
        }
        self.record(false);
        Err(last)
    }

    fn refused(status: u16, body: &[u8]) -> ProviderError {
        if status == 404 {
            return ProviderError::NotFound;
        }
        ProviderError::Refused(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    }
}

#[async_trait]
impl Provider for HttpProvider {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn start(&self, req: &StartRequest) -> Result<Started, ProviderError> {
        let body = serde_json::to_vec(&StartBody {
            reference: &req.reference,
            name: &req.name,
            id_number: req.id_number.as_str(),
            purpose: req.purpose.as_str(),
            return_url: &req.return_url,
            callback_url: &req.callback_url,
        })
        .map_err(|e| ProviderError::Malformed(e.to_string()))?;
        let (status, reply) = self
            .call(reqwest::Method::POST, "/v1/verifications", body)
            .await?;
        if !(200..300).contains(&status) {
            return Err(Self::refused(status, &reply));
        }
        let r: StartReply =
            serde_json::from_slice(&reply).map_err(|e| ProviderError::Malformed(e.to_string()))?;
        Ok(Started {
            provider_ref: r.provider_ref,
            redirect_url: r.redirect_url,
            token: r.token,
        })
    }

    async fn result(&self, provider_ref: &str) -> Result<ProviderResult, ProviderError> {
        let path = format!("/v1/verifications/{}", urlencode(provider_ref));
        let (status, reply) = self.call(reqwest::Method::GET, &path, vec![]).await?;
        if !(200..300).contains(&status) {
            return Err(Self::refused(status, &reply));
        }
        let r: ProviderResult =
            serde_json::from_slice(&reply).map_err(|e| ProviderError::Malformed(e.to_string()))?;
        if r.provider_ref != provider_ref {
            return Err(ProviderError::Malformed(
                "the answer is about another verification".into(),
            ));
        }
        Ok(r)
    }

    async fn cancel(&self, provider_ref: &str) -> Result<(), ProviderError> {
        let path = format!("/v1/verifications/{}/cancel", urlencode(provider_ref));
        let (status, reply) = self.call(reqwest::Method::POST, &path, vec![]).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(Self::refused(status, &reply))
        }
    }

    fn check_callback(
        &self,
        headers: &Headers,
        path: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Callback, CallbackError> {
        headers.check(&self.cfg.key_id, &self.cfg.secret, "POST", path, body, now)?;
        let result: ProviderResult =
            serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        Ok(Callback {
            nonce: headers.nonce.clone(),
            result,
        })
    }
}

/// Provider references go into a path segment: anything but unreserved characters is escaped.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
