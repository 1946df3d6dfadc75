//! The sandbox provider: deterministic outcomes chosen by the three-digit sequence code of the
//! ID number (positions 15–17), so tests and demos reach every branch without a real provider.
//! Refused in production. Triggers (docs/identity.md):
//!
//! | sequence | outcome |
//! |---|---|
//! | `901` | similarity 79.90 (below the default threshold of 80) |
//! | `902` | liveness failed |
//! | `903` | provider timeout on start |
//! | `904` | pending; the result arrives by a signed callback |
//! | `905` | name and ID number do not match the record |
//! | `906` | provider error (HTTP 500) on start |
//! | anything else | passed, similarity 96.50 |

use super::signature::{self, Headers};
use super::{
    Callback, CallbackError, Provider, ProviderError, ProviderResult, ProviderStatus, StartRequest,
    Started,
};
use async_trait::async_trait;

pub const KEY_ID: &str = "sandbox";

pub struct Sandbox {
    secret: Vec<u8>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Sandbox {
    /// `secret` signs the sandbox's callbacks.
    pub fn new(secret: &[u8]) -> Sandbox {
        Sandbox {
            secret: secret.to_vec(),
        }
    }

    /// The outcome a reference stands for (the trigger is carried in the provider reference,
    /// so any instance answers the same).
    pub fn outcome(provider_ref: &str, completed: bool) -> Option<ProviderResult> {
        let trigger = provider_ref.strip_prefix("sbx-")?.get(..3)?;
        let digest = hex(&openssl::sha::sha256(
            format!("sandbox-evidence:{provider_ref}").as_bytes(),
        ));
        let mut r = ProviderResult {
            provider_ref: provider_ref.to_owned(),
            status: ProviderStatus::Passed,
            identity_matched: true,
            liveness_passed: true,
            similarity: 96.5,
            evidence_digest: digest,
        };
        match trigger {
            "901" => r.similarity = 79.9,
            "902" => {
                // A photo held up to the camera: the face matches, the liveness check does not.
                r.liveness_passed = false;
                r.status = ProviderStatus::Failed;
                r.similarity = 91.0;
            }
            "904" if !completed => {
                r.status = ProviderStatus::Pending;
                r.similarity = 0.0;
                r.liveness_passed = false;
            }
            "905" => {
                r.identity_matched = false;
                r.status = ProviderStatus::Failed;
            }
            _ => {}
        }
        Some(r)
    }

    /// A signed callback as the sandbox would send it for `provider_ref` (tests and the demo
    /// deliver it to `POST /api/v1/identity/callbacks/sandbox`).
    pub fn callback(&self, provider_ref: &str, path: &str, now: i64) -> (Headers, Vec<u8>) {
        let result = Self::outcome(provider_ref, true).unwrap_or(ProviderResult {
            provider_ref: provider_ref.to_owned(),
            status: ProviderStatus::Failed,
            identity_matched: false,
            liveness_passed: false,
            similarity: 0.0,
            evidence_digest: String::new(),
        });
        let body = serde_json::to_vec(&result).unwrap_or_default();
        (
            signature::make(KEY_ID, &self.secret, "POST", path, &body, now),
            body,
        )
    }
}

#[async_trait]
impl Provider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn start(&self, req: &StartRequest) -> Result<Started, ProviderError> {
        let seq = req.id_number.sequence();
        match seq {
            "903" => return Err(ProviderError::Timeout),
            "906" => return Err(ProviderError::Unavailable("HTTP 500".into())),
            _ => {}
        }
        let provider_ref = format!("sbx-{seq}-{}", req.reference);
        Ok(Started {
            redirect_url: Some(format!(
                "{}{}sandbox_ref={provider_ref}",
                req.return_url,
                if req.return_url.contains('?') {
                    '&'
                } else {
                    '?'
                }
            )),
            token: None,
            provider_ref,
        })
    }

    async fn result(&self, provider_ref: &str) -> Result<ProviderResult, ProviderError> {
        Self::outcome(provider_ref, false).ok_or(ProviderError::NotFound)
    }

    async fn cancel(&self, provider_ref: &str) -> Result<(), ProviderError> {
        Self::outcome(provider_ref, false)
            .map(|_| ())
            .ok_or(ProviderError::NotFound)
    }

    fn check_callback(
        &self,
        headers: &Headers,
        path: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Callback, CallbackError> {
        headers.check(KEY_ID, &self.secret, "POST", path, body, now)?;
        let result: ProviderResult =
            serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        Ok(Callback {
            nonce: headers.nonce.clone(),
            result,
        })
    }
}
