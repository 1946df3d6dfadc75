//! Identity checks in the workflow: the person behind an account (real name, ID number
//! encrypted), verifications started through the configured provider and decided here, signed
//! callbacks (fresh, unreplayed), one-time codes confirming the intent to sign one exact
//! document, and `authorize_signing`, the hook every signing step calls. Nobody signs without a
//! passed, fresh verification of their own: a provider outage fails closed.

use super::personal::PersonalData;
use super::{Caller, Error, FieldError, Services};
use crate::config::{Config, IdentityProviderKind, Mode};
use crate::domain::identity::{IdNumber, PersonName, VerificationStatus};
use crate::domain::{Duty, Role};
use crate::identity::http::{HttpProvider, HttpProviderConfig};
use crate::identity::sandbox::Sandbox;
use crate::identity::signature::Headers;
use crate::identity::{
    Decision, Provider, ProviderError, ProviderResult, Purpose, StartRequest, decide,
};
use crate::store::{IdentityVerification, SigningCode};

/// Why a person checks their face (the pages name it without reaching into `identity`).
pub use crate::identity::Purpose as CheckPurpose;
use anyhow::Context as _;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// The provider and the keys for personal data, built once from the configuration.
pub struct IdentityState {
    pub provider: Arc<dyn Provider>,
    pub personal: PersonalData,
    /// Sends the one-time codes of signing up and signing in.
    pub sms: Arc<dyn crate::identity::sms::SmsGateway>,
}

impl IdentityState {
    pub fn load(cfg: &Config) -> anyhow::Result<IdentityState> {
        let provider: Arc<dyn Provider> = match cfg.identity.provider {
            IdentityProviderKind::Sandbox => Arc::new(Sandbox::new(
                cfg.identity.sandbox_secret.expose().as_bytes(),
            )),
            IdentityProviderKind::Http => {
                let h = &cfg.identity.http;
                Arc::new(
                    HttpProvider::new(HttpProviderConfig {
                        base_url: h.base_url.clone().context("identity.http.base_url")?,
                        key_id: h.key_id.clone(),
                        secret: h
                            .secret
                            .as_ref()
                            .context("identity.http.secret")?
                            .expose()
                            .as_bytes()
                            .to_vec(),
                        timeout: Duration::from_millis(h.timeout_ms.max(1)),
                        retries: h.retries,
                        breaker_failures: h.breaker_failures,
                        breaker_open: Duration::from_secs(h.breaker_open_secs),
                    })
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                )
            }
        };
        let sms: Arc<dyn crate::identity::sms::SmsGateway> = match cfg.sms.provider {
            crate::config::SmsProviderKind::Sandbox => Arc::new(crate::identity::sms::SandboxSms),
            crate::config::SmsProviderKind::Http => Arc::new(
                crate::identity::sms::HttpSms::new(
                    cfg.sms.url.as_deref().context("sms.url")?,
                    &cfg.sms.key_id,
                    cfg.sms
                        .secret
                        .as_ref()
                        .context("sms.secret")?
                        .expose()
                        .as_bytes(),
                    Duration::from_millis(cfg.sms.timeout_ms.max(1)),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
        };
        Ok(IdentityState {
            provider,
            personal: PersonalData::load(cfg)?,
            sms,
        })
    }
}

fn today() -> time::Date {
    // Birth dates are calendar dates in China.
    OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

/// Records the real name and ID number of an account, validated, the number encrypted.
pub async fn set_identity(
    s: &Services,
    user_id: &str,
    real_name: &str,
    id_number: &str,
) -> Result<(), Error> {
    let mut errors = Vec::new();
    let name = PersonName::parse(real_name)
        .map_err(|r| errors.push(FieldError::new("real_name", r.rule, r.message)))
        .ok();
    let id = IdNumber::parse(id_number, today())
        .map_err(|r| errors.push(FieldError::new("id_number", r.rule, r.message)))
        .ok();
    let (Some(name), Some(id)) = (name, id) else {
        return Err(Error::invalid(errors));
    };
    let p = &s.identity.personal;
    s.store
        .set_user_identity(
            user_id,
            name.as_str(),
            &p.encrypt(user_id, id.as_str())?,
            &p.lookup_hash(id.as_str()),
        )
        .await?;
    Ok(())
}

/// Registers (or, for an administrator, corrects) an account's real name and ID number, and
/// audits it (the number itself never goes into the audit detail). Staff identities — a
/// confirmer's, needed for the seal's identity check — are registered this way by the operator.
pub async fn register_identity(
    s: &Services,
    caller: &Caller,
    user_id: &str,
    real_name: &str,
    id_number: &str,
) -> Result<(), Error> {
    if caller.user_id != user_id && !caller.is(Role::Admin) {
        return Err(Error::forbidden("只有管理员可以登记他人的实名信息。"));
    }
    if s.store.user(user_id).await?.is_none() {
        return Err(Error::not_found("该账号"));
    }
    set_identity(s, user_id, real_name, id_number).await?;
    let by = if caller.user_id == user_id {
        "self"
    } else {
        "admin"
    };
    super::audit(
        s,
        Some(caller),
        "user.identity_set",
        ("user", user_id),
        None,
        serde_json::json!({ "by": by }),
    )
    .await
}

/// The account's real name and ID number, decrypted (for the provider and for the person).
pub async fn identity_of(s: &Services, user_id: &str) -> Result<Option<(String, IdNumber)>, Error> {
    let Some(row) = s.store.user_identity(user_id).await? else {
        return Ok(None);
    };
    let (Some(name), Some(enc)) = (row.real_name, row.id_number_enc) else {
        return Ok(None);
    };
    let plain = s.identity.personal.decrypt(user_id, &enc)?;
    let id = IdNumber::parse(&plain, today())
        .map_err(|r| anyhow::anyhow!("stored ID number: {}", r.rule))?;
    Ok(Some((name, id)))
}

/// A verification as its owner sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerificationView {
    pub id: String,
    pub purpose: Purpose,
    pub status: VerificationStatus,
    pub provider: String,
    /// Where to send the person for the face check (while pending).
    pub redirect_url: Option<String>,
    /// For providers whose app SDK takes a token instead of a redirect.
    pub token: Option<String>,
    pub subject_name: String,
    pub id_number_masked: String,
    pub liveness_passed: bool,
    pub identity_matched: bool,
    pub similarity: Option<f64>,
    pub threshold: f64,
    /// Why it failed (codes and messages).
    pub reasons: Vec<FieldError>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
}

fn view(
    v: &IdentityVerification,
    masked: String,
    redirect: Option<String>,
    token: Option<String>,
) -> VerificationView {
    let reasons = v
        .failure
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| FieldError::new("", c, reason_message(c)))
        .collect();
    VerificationView {
        id: v.id.clone(),
        purpose: Purpose::parse(&v.purpose).unwrap_or(Purpose::SignContract),
        status: v.status,
        provider: v.provider.clone(),
        redirect_url: redirect,
        token,
        subject_name: v.subject_name.clone(),
        id_number_masked: masked,
        liveness_passed: v.liveness_passed,
        identity_matched: v.identity_matched,
        similarity: v.similarity.map(|x| x as f64 / 100.0),
        threshold: v.threshold as f64 / 100.0,
        reasons,
        created_at: v.created_at,
        completed_at: v.completed_at,
    }
}

fn reason_message(code: &str) -> String {
    match code {
        "identity_mismatch" => "姓名与身份证号码不一致，或与权威数据源记录不符。",
        "liveness_failed" => "活体检测未通过，请在光线充足处按提示重新进行人脸核验。",
        "similarity_below_threshold" => "人脸比对相似度低于要求。",
        "provider_unavailable" => "身份核验服务暂时不可用。",
        "cancelled" => "核验已取消。",
        _ => "核验未通过。",
    }
    .into()
}

/// Who may verify for what: buyers to sign and to apply; a developer's confirmer to seal.
fn may_verify(caller: &Caller, purpose: Purpose) -> bool {
    match purpose {
        Purpose::SignContract | Purpose::ApplyRegistration => caller.is(Role::Buyer),
        Purpose::SealContract => caller.is(Role::Developer) && caller.has_duty(Duty::Confirmer),
        // A buyer proving who they are when signing up, before any document.
        Purpose::Register => caller.is(Role::Buyer),
    }
}

async fn audit_event(
    s: &Services,
    caller: Option<&Caller>,
    action: &str,
    id: &str,
    detail: serde_json::Value,
) -> Result<(), Error> {
    super::audit(
        s,
        caller,
        action,
        ("identity_verification", id),
        None,
        detail,
    )
    .await
}

fn provider_down(e: &ProviderError) -> Error {
    tracing::warn!(error = %e, "identity provider call failed");
    Error::Unavailable {
        code: "identity_provider_unavailable",
        message: "身份核验服务暂时不可用，请稍后再试。为保障安全，完成核验前不能签署或提交申请。"
            .into(),
    }
}

/// Starts a verification of the caller for `purpose` through the configured provider.
pub async fn start(
    s: &Services,
    caller: &Caller,
    purpose: Purpose,
    return_url: Option<String>,
) -> Result<VerificationView, Error> {
    if !may_verify(caller, purpose) {
        return Err(Error::forbidden("您的账户不能为此事项进行身份核验。"));
    }
    let Some((name, id)) = identity_of(s, &caller.user_id).await? else {
        return Err(Error::Invalid {
            code: "identity_missing",
            message: "请先登记本人的真实姓名和身份证号码。".into(),
            fields: vec![FieldError::new(
                "id_number",
                "required",
                "未登记身份证号码。",
            )],
        });
    };
    let now = OffsetDateTime::now_utc();
    let threshold = (s.config.identity.threshold * 100.0).round() as i32;
    let mut v = IdentityVerification {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: caller.user_id.clone(),
        purpose: purpose.as_str().into(),
        provider: s.identity.provider.name().into(),
        provider_ref: None,
        subject_name: name.clone(),
        id_pseudonym: s.identity.personal.pseudonym(id.as_str()),
        status: VerificationStatus::Pending,
        liveness_passed: false,
        similarity: None,
        threshold,
        evidence_digest: None,
        created_at: now,
        completed_at: None,
        event_cert_serial: None,
        identity_matched: false,
        failure: None,
    };
    s.store.insert_identity_verification(&v).await?;
    let base = s
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", s.config.listen));
    let req = StartRequest {
        reference: v.id.clone(),
        name,
        id_number: id.clone(),
        purpose,
        return_url: return_url.unwrap_or_else(|| format!("{base}/identity/return")),
        callback_url: format!(
            "{base}/api/v1/identity/callbacks/{}",
            s.identity.provider.name()
        ),
    };
    let started = match s.identity.provider.start(&req).await {
        Ok(st) => st,
        Err(e) => {
            v.status = VerificationStatus::Failed;
            v.completed_at = Some(OffsetDateTime::now_utc());
            v.failure = Some("provider_unavailable".into());
            s.store.complete_identity_verification(&v).await?;
            audit_event(
                s,
                Some(caller),
                "identity.verification.provider_unavailable",
                &v.id,
                serde_json::json!({"purpose": purpose.as_str()}),
            )
            .await?;
            return Err(provider_down(&e));
        }
    };
    s.store
        .set_provider_ref(&v.id, &started.provider_ref)
        .await?;
    v.provider_ref = Some(started.provider_ref.clone());
    audit_event(
        s,
        Some(caller),
        "identity.verification.start",
        &v.id,
        serde_json::json!({"purpose": purpose.as_str(), "provider": v.provider}),
    )
    .await?;
    Ok(view(&v, id.masked(), started.redirect_url, started.token))
}

/// The service's decision on a result, recorded once (later or repeated results change nothing).
async fn apply_result(
    s: &Services,
    v: &IdentityVerification,
    r: &ProviderResult,
) -> Result<IdentityVerification, Error> {
    let decision = decide(r, v.threshold as f64 / 100.0);
    let mut done = v.clone();
    match &decision {
        Decision::Pending => return Ok(done),
        Decision::Passed => {
            done.status = VerificationStatus::Passed;
            done.failure = None;
        }
        Decision::Failed(reasons) => {
            done.status = VerificationStatus::Failed;
            done.failure = Some(
                reasons
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    done.liveness_passed = r.liveness_passed;
    done.identity_matched = r.identity_matched;
    done.similarity = Some((r.similarity.clamp(0.0, 100.0) * 100.0).round() as i32);
    done.evidence_digest = Some(
        r.evidence_digest
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .take(128)
            .collect(),
    );
    done.completed_at = Some(OffsetDateTime::now_utc());
    if s.store.complete_identity_verification(&done).await? {
        audit_event(
            s,
            None,
            if done.status == VerificationStatus::Passed {
                "identity.verification.passed"
            } else {
                "identity.verification.failed"
            },
            &done.id,
            serde_json::json!({
                "similarity": done.similarity,
                "threshold": done.threshold,
                "liveness": done.liveness_passed,
                "identity_matched": done.identity_matched,
                "evidence_digest": done.evidence_digest,
                "failure": done.failure,
            }),
        )
        .await?;
        Ok(done)
    } else {
        Ok(s.store.identity_verification(&v.id).await?.unwrap_or(done))
    }
}

async fn own_verification(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<IdentityVerification, Error> {
    s.store
        .identity_verification(id)
        .await?
        .filter(|v| v.user_id == caller.user_id)
        .ok_or_else(|| Error::not_found("该身份核验记录"))
}

async fn masked_of(s: &Services, user_id: &str) -> String {
    match identity_of(s, user_id).await {
        Ok(Some((_, id))) => id.masked(),
        _ => "****".into(),
    }
}

/// The caller's verification; a pending one is refreshed from the provider (polling is the
/// fallback when a callback is late).
pub async fn get(s: &Services, caller: &Caller, id: &str) -> Result<VerificationView, Error> {
    let mut v = own_verification(s, caller, id).await?;
    if v.status == VerificationStatus::Pending
        && v.provider == s.identity.provider.name()
        && let Some(r) = &v.provider_ref
        && let Ok(result) = s.identity.provider.result(r).await
        && result.provider_ref == *r
    {
        v = apply_result(s, &v, &result).await?;
    }
    Ok(view(&v, masked_of(s, &caller.user_id).await, None, None))
}

pub async fn cancel(s: &Services, caller: &Caller, id: &str) -> Result<VerificationView, Error> {
    let mut v = own_verification(s, caller, id).await?;
    if v.status != VerificationStatus::Pending {
        return Err(Error::conflict(
            "verification_finished",
            "该核验已结束，不能取消。",
        ));
    }
    if let Some(r) = &v.provider_ref {
        // The record is cancelled even if the provider cannot be told: it can never pass now.
        if let Err(e) = s.identity.provider.cancel(r).await {
            tracing::warn!(error = %e, "cancelling at the provider failed");
        }
    }
    v.status = VerificationStatus::Cancelled;
    v.failure = Some("cancelled".into());
    v.completed_at = Some(OffsetDateTime::now_utc());
    s.store.complete_identity_verification(&v).await?;
    audit_event(
        s,
        Some(caller),
        "identity.verification.cancel",
        &v.id,
        serde_json::json!({}),
    )
    .await?;
    Ok(view(&v, masked_of(s, &caller.user_id).await, None, None))
}

/// A provider's callback: signature, freshness and nonce checked before anything is read.
pub async fn callback(
    s: &Services,
    provider: &str,
    path: &str,
    headers: &Headers,
    body: &[u8],
) -> Result<(), Error> {
    let p = &s.identity.provider;
    if provider != p.name() {
        return Err(Error::not_found("该核验服务"));
    }
    let now = OffsetDateTime::now_utc();
    let cb = p
        .check_callback(headers, path, body, now.unix_timestamp())
        .map_err(|e| {
            tracing::warn!(reason = %e, "identity callback refused");
            Error::Unauthenticated {
                code: e.code(),
                message: "回调签名校验失败。".into(),
            }
        })?;
    if !s.store.remember_nonce(provider, &cb.nonce, now).await? {
        tracing::warn!("identity callback replayed");
        return Err(Error::Unauthenticated {
            code: "callback_replayed",
            message: "重复的回调请求。".into(),
        });
    }
    let v = s
        .store
        .identity_verification_by_ref(provider, &cb.result.provider_ref)
        .await?
        .ok_or_else(|| Error::not_found("该身份核验记录"))?;
    apply_result(s, &v, &cb.result).await?;
    Ok(())
}

/// The caller's latest verification for `purpose` (a pending one refreshed from the provider),
/// for pages that show where the person stands.
pub async fn latest(
    s: &Services,
    caller: &Caller,
    purpose: Purpose,
) -> Result<Option<VerificationView>, Error> {
    let recent = s
        .store
        .identity_verifications_of(&caller.user_id, 20)
        .await?;
    match recent
        .into_iter()
        .filter(|v| v.purpose == purpose.as_str())
        .max_by_key(|v| v.created_at)
    {
        Some(v) => get(s, caller, &v.id).await.map(Some),
        None => Ok(None),
    }
}

/// Whether the caller may sign for `purpose` now without a new face check.
pub async fn is_fresh(s: &Services, caller: &Caller, purpose: Purpose) -> Result<bool, Error> {
    match fresh_verification(s, caller, purpose).await {
        Ok(_) => Ok(true),
        Err(Error::Forbidden { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The caller's most recent passed verification for `purpose`, if it is still fresh.
pub async fn fresh_verification(
    s: &Services,
    caller: &Caller,
    purpose: Purpose,
) -> Result<IdentityVerification, Error> {
    // One row, found by the database: the caller's own history may be long (a buyer who signs
    // several contracts checks their face for each), and a passed check must not be missed
    // because other checks came after it.
    let Some(v) = s
        .store
        .latest_passed_verification(&caller.user_id, purpose.as_str())
        .await?
    else {
        return Err(Error::Forbidden {
            code: "verification_required",
            message: "请先完成本人实名和人脸核验。".into(),
        });
    };
    // A signature's certificate is issued against one verification once: a buyer signing
    // again (a new version of the contract) checks their face again.
    if purpose == Purpose::SignContract && v.event_cert_serial.is_some() {
        return Err(Error::Forbidden {
            code: "verification_used",
            message: "上次人脸核验已用于签名，请重新进行人脸核验。".into(),
        });
    }
    let window = time::Duration::seconds(s.config.identity.freshness_secs as i64);
    if v.completed_at
        .is_none_or(|t| OffsetDateTime::now_utc() - t > window)
    {
        return Err(Error::Forbidden {
            code: "verification_stale",
            message: "身份核验已超过有效时间，请重新进行人脸核验。".into(),
        });
    }
    Ok(v)
}

/// A code issued: its id and expiry; the code itself goes to the person's phone (in
/// development it is returned here, `dev_code`, as there is no SMS gateway).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CodeIssued {
    pub code_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub document_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_code: Option<String>,
}

fn valid_sha256(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Issues a six-digit one-time code binding the caller's fresh verification to one document.
pub async fn request_code(
    s: &Services,
    caller: &Caller,
    purpose: Purpose,
    document_sha256: &str,
) -> Result<CodeIssued, Error> {
    if !valid_sha256(document_sha256) {
        return Err(Error::invalid(vec![FieldError::new(
            "document_sha256",
            "sha256",
            "须为文档的 SHA-256（64 位十六进制）。",
        )]));
    }
    let v = fresh_verification(s, caller, purpose).await?;
    let now = OffsetDateTime::now_utc();
    let last_hour = s
        .store
        .signing_codes_since(&caller.user_id, now - time::Duration::hours(1))
        .await?;
    if last_hour >= s.config.identity.codes_per_hour {
        return Err(Error::RateLimited {
            code: "too_many_codes",
            message: "获取验证码过于频繁，请一小时后再试。".into(),
            retry_after_secs: 3600,
        });
    }
    let code = loop {
        // Uniform over 000000–999999: reject the top of the u32 range.
        let mut b = [0u8; 4];
        openssl::rand::rand_bytes(&mut b).context("random")?;
        let n = u32::from_be_bytes(b);
        if n < 4_294_000_000 {
            break format!("{:06}", n % 1_000_000);
        }
    };
    let id = uuid::Uuid::now_v7().to_string();
    let expires_at = now + time::Duration::seconds(s.config.identity.code_ttl_secs as i64);
    s.store
        .insert_signing_code(&SigningCode {
            id: id.clone(),
            user_id: caller.user_id.clone(),
            verification_id: v.id.clone(),
            purpose: purpose.as_str().into(),
            document_sha256: document_sha256.to_ascii_lowercase(),
            code_hash: s.identity.personal.code_hash(&id, &code),
            attempts: 0,
            created_at: now,
            expires_at,
            used_at: None,
        })
        .await?;
    // The code goes to the person's own phone when they have one on record (a buyer who signed
    // up with it); the development sandbox shows it on screen instead.
    if let Some(enc) = s.store.user_phone(&caller.user_id).await? {
        let phone = s.identity.personal.decrypt(&caller.user_id, &enc)?;
        let short = &document_sha256[..8.min(document_sha256.len())];
        s.identity
            .sms
            .send(
                &phone,
                &format!("【虚拟窗口】您的签署验证码为 {code}，用于确认摘要值以 {short} 开头的文件，5 分钟内有效。"),
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "signing code SMS not sent");
                Error::Unavailable {
                    code: "sms_unavailable",
                    message: "短信发送失败，请稍后再试。".into(),
                }
            })?;
    }
    audit_event(
        s,
        Some(caller),
        "signing.code.issue",
        &v.id,
        serde_json::json!({"code_id": id, "document_sha256": document_sha256}),
    )
    .await?;
    Ok(CodeIssued {
        code_id: id,
        expires_at,
        document_sha256: document_sha256.to_ascii_lowercase(),
        dev_code: (s.config.mode == Mode::Development).then_some(code),
    })
}

/// What the hook checked, stored with the signature.
#[derive(Debug, Clone, Serialize)]
pub struct Authorization {
    pub verification_id: String,
    pub code_id: String,
    pub purpose: Purpose,
    pub document_sha256: String,
    pub similarity: Option<f64>,
    pub threshold: f64,
    pub liveness_passed: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
    pub evidence_digest: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub authorized_at: OffsetDateTime,
    /// The verification as it was read for this check (not part of the stored evidence: it
    /// holds the person's name), so the signing step does not read it again.
    #[serde(skip)]
    pub verification: crate::store::IdentityVerification,
}

fn code_error(code: &'static str, message: &str) -> Error {
    Error::Forbidden {
        code,
        message: message.into(),
    }
}

/// The hook before any signature or application: the caller's own passed, fresh verification
/// for `purpose`, and the one-time code issued for exactly this document, spent once.
pub async fn authorize_signing(
    s: &Services,
    caller: &Caller,
    purpose: Purpose,
    document_sha256: &str,
    code_id: &str,
    code: &str,
) -> Result<Authorization, Error> {
    let c = s
        .store
        .signing_code(code_id)
        .await?
        .filter(|c| c.user_id == caller.user_id)
        .ok_or_else(|| code_error("code_invalid", "验证码无效，请重新获取。"))?;
    let now = OffsetDateTime::now_utc();
    if c.used_at.is_some() {
        return Err(code_error("code_used", "验证码已使用，请重新获取。"));
    }
    if now > c.expires_at {
        return Err(code_error("code_expired", "验证码已过期，请重新获取。"));
    }
    if c.attempts >= s.config.identity.code_max_attempts {
        return Err(code_error(
            "code_exhausted",
            "验证码错误次数过多，请重新获取。",
        ));
    }
    if c.purpose != purpose.as_str() || !c.document_sha256.eq_ignore_ascii_case(document_sha256) {
        return Err(code_error(
            "code_other_document",
            "验证码不是为此文档签发的，请核对文档后重新获取。",
        ));
    }
    let expected = s.identity.personal.code_hash(&c.id, code.trim());
    if !openssl::memcmp::eq(expected.as_bytes(), c.code_hash.as_bytes()) {
        let n = s.store.count_code_attempt(&c.id).await?;
        let left = s.config.identity.code_max_attempts - n;
        return Err(code_error(
            "code_wrong",
            &format!("验证码不正确，还可尝试 {} 次。", left.max(0)),
        ));
    }
    // The verification must still be the caller's latest passed one and fresh at this moment.
    let v = fresh_verification(s, caller, purpose).await?;
    if v.id != c.verification_id {
        return Err(code_error(
            "code_invalid",
            "验证码对应的核验已被新的核验取代，请重新获取。",
        ));
    }
    if !s.store.use_signing_code(&c.id, now).await? {
        return Err(code_error("code_used", "验证码已使用，请重新获取。"));
    }
    let auth = Authorization {
        verification_id: v.id.clone(),
        code_id: c.id.clone(),
        purpose,
        document_sha256: c.document_sha256.clone(),
        similarity: v.similarity.map(|x| x as f64 / 100.0),
        threshold: v.threshold as f64 / 100.0,
        liveness_passed: v.liveness_passed,
        verified_at: v.completed_at,
        evidence_digest: v.evidence_digest.clone(),
        authorized_at: now,
        verification: v.clone(),
    };
    audit_event(
        s,
        Some(caller),
        "signing.authorize",
        &v.id,
        serde_json::to_value(&auth).unwrap_or_default(),
    )
    .await?;
    Ok(auth)
}

/// Logs that `caller` read the full ID number of `user_id` (PIPL: access to sensitive personal
/// information is accountable).
pub async fn log_personal_access(
    s: &Services,
    caller: &Caller,
    user_id: &str,
    why: &str,
) -> Result<(), Error> {
    super::audit(
        s,
        Some(caller),
        "personal_data.read",
        ("user", user_id),
        None,
        serde_json::json!({ "field": "id_number", "why": why }),
    )
    .await
}
