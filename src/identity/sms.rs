//! Text messages to a person's mobile phone: the one-time codes of signing up and signing in.
//! A gateway is a provider like the identity hook: `sandbox` sends nothing and lets the page show
//! the code (development only), `http` posts each message to an SMS gateway as signed JSON
//! (the request-signing scheme of `signature`), retrying a failed attempt once.

use super::signature;
use async_trait::async_trait;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmsError {
    #[error("the SMS gateway is unavailable: {0}")]
    Unavailable(String),
    #[error("the SMS gateway refused the message ({0})")]
    Refused(u16),
}

/// Sends text messages.
#[async_trait]
pub trait SmsGateway: Send + Sync {
    /// Sends `text` to a mainland mobile number.
    async fn send(&self, phone: &str, text: &str) -> Result<(), SmsError>;
    /// Whether codes may be shown on screen instead (the development sandbox).
    fn shows_codes(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str;
}

/// Development: nothing leaves the machine; the page shows the code.
pub struct SandboxSms;

#[async_trait]
impl SmsGateway for SandboxSms {
    async fn send(&self, _phone: &str, _text: &str) -> Result<(), SmsError> {
        Ok(())
    }
    fn shows_codes(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "sandbox"
    }
}

/// An SMS gateway speaking signed JSON: `POST {url}` with `{"phone": "…", "text": "…"}` and the
/// `x-vw-*` signature headers; any 2xx is delivery accepted.
pub struct HttpSms {
    url: reqwest::Url,
    key_id: String,
    secret: Vec<u8>,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct Message<'a> {
    phone: &'a str,
    text: &'a str,
}

impl HttpSms {
    pub fn new(
        url: &str,
        key_id: &str,
        secret: &[u8],
        timeout: Duration,
    ) -> Result<HttpSms, SmsError> {
        let url = reqwest::Url::parse(url).map_err(|e| SmsError::Unavailable(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| SmsError::Unavailable(e.to_string()))?;
        Ok(HttpSms {
            url,
            key_id: key_id.to_owned(),
            secret: secret.to_vec(),
            client,
        })
    }
}

#[async_trait]
impl SmsGateway for HttpSms {
    async fn send(&self, phone: &str, text: &str) -> Result<(), SmsError> {
        let body = serde_json::to_vec(&Message { phone, text })
            .map_err(|e| SmsError::Unavailable(e.to_string()))?;
        let mut last = SmsError::Unavailable("not attempted".into());
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let h = signature::make(
                &self.key_id,
                &self.secret,
                "POST",
                self.url.path(),
                &body,
                now,
            );
            let mut req = self
                .client
                .post(self.url.clone())
                .header("content-type", "application/json")
                .body(body.clone());
            for (k, v) in h.pairs() {
                req = req.header(k, v);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() => {
                    return Err(SmsError::Refused(r.status().as_u16()));
                }
                Ok(r) => last = SmsError::Unavailable(format!("status {}", r.status())),
                Err(e) => last = SmsError::Unavailable(e.to_string()),
            }
        }
        Err(last)
    }
    fn name(&self) -> &'static str {
        "http"
    }
}
