//! Identity checks through providers: real name + resident ID number against the authoritative
//! record, and face verification with liveness, done by an accredited provider. The service never
//! matches faces itself; it starts a verification through a provider hook, receives the result
//! (by polling or by a signed callback), and decides on it with `decide`. Providers: `sandbox`
//! (deterministic, for development and tests) and `http` (any provider speaking the signed JSON
//! protocol in docs/identity.md); `standin` is a small server speaking that protocol, for tests
//! and demos.

pub mod http;
pub mod sandbox;
pub mod signature;
pub mod sms;
pub mod standin;

use crate::domain::identity::IdNumber;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Why a verification is being made: each purpose is checked separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A buyer about to sign a contract.
    SignContract,
    /// A buyer applying for registration.
    ApplyRegistration,
    /// A developer's confirmer about to seal a contract.
    SealContract,
    /// A person proving who they are when they sign up (before any document).
    Register,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::SignContract => "sign_contract",
            Purpose::ApplyRegistration => "apply_registration",
            Purpose::SealContract => "seal_contract",
            Purpose::Register => "register",
        }
    }

    pub fn parse(s: &str) -> Option<Purpose> {
        [
            Purpose::SignContract,
            Purpose::ApplyRegistration,
            Purpose::SealContract,
            Purpose::Register,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// What the service asks a provider to verify.
#[derive(Clone, Debug)]
pub struct StartRequest {
    /// The service's id for this verification; providers use it to make `start` idempotent.
    pub reference: String,
    pub name: String,
    pub id_number: IdNumber,
    pub purpose: Purpose,
    /// Where the provider sends the person back after the face check.
    pub return_url: String,
    /// Where the provider posts the result.
    pub callback_url: String,
}

/// How the person continues at the provider.
#[derive(Clone, Debug, PartialEq)]
pub struct Started {
    pub provider_ref: String,
    /// A page to send the person to (H5 face check), or `None` when the provider's SDK takes a
    /// token instead.
    pub redirect_url: Option<String>,
    pub token: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    Pending,
    Passed,
    Failed,
}

/// A provider's answer. It reports facts; the service decides (`decide`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderResult {
    pub provider_ref: String,
    pub status: ProviderStatus,
    /// The name and ID number match the authoritative record.
    pub identity_matched: bool,
    pub liveness_passed: bool,
    /// Face similarity against the ID photo, 0–100.
    pub similarity: f64,
    /// SHA-256 (hex) of the provider's evidence package; the images stay with the provider.
    pub evidence_digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    #[error("the identity provider did not answer in time")]
    Timeout,
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    #[error("the identity provider refused the request: {0}")]
    Refused(String),
    #[error("the identity provider's answer is malformed: {0}")]
    Malformed(String),
    #[error("unknown verification at the provider")]
    NotFound,
}

/// A callback that failed its checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("missing or malformed signature headers")]
    MissingHeaders,
    #[error("unknown key id")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("timestamp outside the allowed window")]
    Stale,
    #[error("malformed body: {0}")]
    Malformed(String),
}

impl CallbackError {
    pub fn code(&self) -> &'static str {
        match self {
            CallbackError::MissingHeaders => "callback_unsigned",
            CallbackError::UnknownKey => "callback_unknown_key",
            CallbackError::BadSignature => "callback_bad_signature",
            CallbackError::Stale => "callback_stale",
            CallbackError::Malformed(_) => "callback_malformed",
        }
    }
}

/// A checked callback: the result and the nonce to record (replays are refused by the caller,
/// who keeps the nonces where every instance sees them).
#[derive(Clone, Debug)]
pub struct Callback {
    pub nonce: String,
    pub result: ProviderResult,
}

/// The hook every provider implements.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The name used in configuration, in the callback path and in the records.
    fn name(&self) -> &'static str;
    async fn start(&self, req: &StartRequest) -> Result<Started, ProviderError>;
    async fn result(&self, provider_ref: &str) -> Result<ProviderResult, ProviderError>;
    async fn cancel(&self, provider_ref: &str) -> Result<(), ProviderError>;
    /// Checks a callback's signature and freshness and reads it (`now` in Unix seconds).
    fn check_callback(
        &self,
        headers: &signature::Headers,
        path: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Callback, CallbackError>;
}

/// The service's decision on a provider's result.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Pending,
    Passed,
    /// Every reason, with a stable code and a message in Chinese.
    Failed(Vec<(&'static str, String)>),
}

/// Pass only when the record matched, liveness passed and the similarity reaches `threshold`.
pub fn decide(r: &ProviderResult, threshold: f64) -> Decision {
    if r.status == ProviderStatus::Pending {
        return Decision::Pending;
    }
    let mut reasons = Vec::new();
    if !r.identity_matched {
        reasons.push((
            "identity_mismatch",
            "姓名与身份证号码不一致，或与权威数据源记录不符。".to_string(),
        ));
    }
    if !r.liveness_passed {
        reasons.push((
            "liveness_failed",
            "活体检测未通过，请在光线充足处按提示重新进行人脸核验。".to_string(),
        ));
    }
    // NaN (a malformed score) never passes.
    if r.similarity
        .partial_cmp(&threshold)
        .is_none_or(|o| o.is_lt())
    {
        reasons.push((
            "similarity_below_threshold",
            format!(
                "人脸比对相似度 {:.2} 低于要求的 {:.2}。",
                r.similarity, threshold
            ),
        ));
    }
    if r.status == ProviderStatus::Failed && reasons.is_empty() {
        reasons.push(("provider_failed", "核验服务判定核验未通过。".to_string()));
    }
    if reasons.is_empty() {
        Decision::Passed
    } else {
        Decision::Failed(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(similarity: f64, liveness: bool, matched: bool) -> ProviderResult {
        ProviderResult {
            provider_ref: "r".into(),
            status: ProviderStatus::Passed,
            identity_matched: matched,
            liveness_passed: liveness,
            similarity,
            evidence_digest: "00".into(),
        }
    }

    #[test]
    fn the_service_decides_on_the_facts() {
        assert_eq!(decide(&result(80.0, true, true), 80.0), Decision::Passed);
        let Decision::Failed(r) = decide(&result(79.9, true, true), 80.0) else {
            panic!()
        };
        assert_eq!(r[0].0, "similarity_below_threshold");
        let Decision::Failed(r) = decide(&result(99.0, false, false), 80.0) else {
            panic!()
        };
        assert_eq!(
            r.iter().map(|x| x.0).collect::<Vec<_>>(),
            ["identity_mismatch", "liveness_failed"]
        );
        assert!(matches!(
            decide(&result(f64::NAN, true, true), 80.0),
            Decision::Failed(_)
        ));
    }
}
