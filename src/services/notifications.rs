//! Notifications (issue 7): the outbox's dispatcher. Every status change of a contract or a
//! registration case has an outbox row written by a database trigger in the same transaction as
//! the change (migrations/*/0011), so a change is never without its event and a rolled-back
//! change never has one. Each instance claims due rows under a lease, posts each as a JSON
//! webhook signed like the identity provider's requests (HMAC-SHA256 over timestamp, nonce,
//! method, path and body digest), and records the outcome only while its lease holds. Failures
//! are retried with exponential backoff until `max_attempts`, then kept as dead letters. The
//! event id is stable across retries and sent as `Idempotency-Key`: delivery is at least once,
//! receivers deduplicate. The payload names accounts, organisations and roles, never a person's
//! name, ID number or phone (docs/notifications.md).

use super::{Error, Services};
use crate::domain::lifecycle::{ContractStatus, DeliveryState, Hold, RegistrationStatus};
use crate::identity::signature;
use crate::store::{Contract, OutboxEvent, OutboxOutcome, Registration};
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The key id in the webhook's signature headers.
pub const KEY_ID: &str = "vw-notify";

/// The HTTP client and settings, built once per instance.
pub struct Notifier {
    client: reqwest::Client,
}

impl Notifier {
    pub fn new(cfg: &crate::config::NotificationsConfig) -> anyhow::Result<Self> {
        Ok(Notifier {
            client: reqwest::Client::builder()
                .timeout(Duration::from_millis(cfg.timeout_ms.max(100)))
                .connect_timeout(Duration::from_millis(cfg.timeout_ms.clamp(100, 5_000)))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recipient {
    /// buyer, developer or reviewer.
    pub role: &'static str,
    /// The account to tell (buyers with an account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The developer's organisation (its staff on the case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ObjectRef {
    pub kind: String,
    pub id: String,
    /// The contract no., or the registration's acceptance no. once it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// For a registration: the contract it registers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<String>,
}

/// What a webhook receiver gets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Notification {
    /// Stable across retries; also the `Idempotency-Key` header.
    pub id: String,
    /// Increasing in the order the changes were committed (per database): order events of one
    /// object by it, since a retried event can arrive after a later one.
    pub seq: i64,
    /// `contract.<status>` or `registration.<status>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub object: ObjectRef,
    /// Who must act, or should know.
    pub notify: Vec<Recipient>,
    /// What the first recipients are asked to do, in Chinese; none for information only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
}

/// Who a contract's status concerns and what they should do.
fn contract_audience(status: &str) -> (&'static [&'static str], Option<&'static str>) {
    use ContractStatus as S;
    match status.parse::<ContractStatus>() {
        Ok(S::Draft) => (&["developer"], Some("合同草稿待确认人员核对确认。")),
        Ok(S::AwaitingBuyers | S::BuyersSigning) => (
            &["buyer", "developer"],
            Some("请买受人核验身份后签署合同。"),
        ),
        Ok(S::BuyersSigned) => (&["developer", "buyer"], Some("请开发企业加盖电子印章。")),
        Ok(S::Sealed) => (&["developer", "buyer"], Some("合同已盖章，待提交备案。")),
        Ok(S::FilingReview) => (
            &["reviewer", "developer", "buyer"],
            Some("请审核合同备案。"),
        ),
        Ok(S::Returned) => (
            &["developer", "buyer"],
            Some("备案被退回，请按全部退回原因修改后重新提交。"),
        ),
        Ok(S::CancelRequested) => (
            &["buyer", "developer", "reviewer"],
            Some("有一方申请注销备案，请另一方确认是否同意。"),
        ),
        _ => (&["buyer", "developer"], None),
    }
}

/// Who a registration case's status (or hold) concerns and what they should do.
fn registration_audience(status: &str) -> (&'static [&'static str], Option<&'static str>) {
    use RegistrationStatus as S;
    if let Ok(h) = status.parse::<Hold>() {
        return match h {
            Hold::Requisitioned => (
                &["buyer", "developer"],
                Some("请按告知的全部事项补正材料。"),
            ),
            Hold::Suspended => (&["buyer", "developer"], None),
        };
    }
    match status.parse::<RegistrationStatus>() {
        Ok(S::Submitted) => (&["reviewer", "buyer"], Some("请受理预告登记申请。")),
        Ok(S::Accepted | S::FirstReviewed | S::SecondReviewed) => {
            (&["reviewer", "buyer"], Some("请进行下一步审核。"))
        }
        Ok(S::Recorded) => (
            &["reviewer", "buyer", "developer"],
            Some("已登簿，请核发登记证明。"),
        ),
        Ok(S::NotAccepted) => (
            &["buyer", "developer"],
            Some("请按告知的全部事项补正材料后重新申请。"),
        ),
        _ => (&["buyer", "developer"], None),
    }
}

async fn recipients(
    s: &Services,
    roles: &[&str],
    c: &Contract,
    applicant: Option<&str>,
) -> Result<Vec<Recipient>, Error> {
    let mut out = Vec::new();
    for role in roles {
        match *role {
            "buyer" => {
                if let Some(a) = applicant {
                    out.push(Recipient {
                        role: "buyer",
                        user_id: Some(a.to_owned()),
                        organisation_id: None,
                    });
                }
                for hash in super::contracts::buyer_hashes(c)? {
                    for u in s.store.users_by_id_hash(&hash).await? {
                        if Some(u.id.as_str()) != applicant {
                            out.push(Recipient {
                                role: "buyer",
                                user_id: Some(u.id),
                                organisation_id: None,
                            });
                        }
                    }
                }
            }
            "developer" => out.push(Recipient {
                role: "developer",
                user_id: None,
                organisation_id: Some(c.developer_id.clone()),
            }),
            _ => out.push(Recipient {
                role: "reviewer",
                user_id: None,
                organisation_id: None,
            }),
        }
    }
    Ok(out)
}

/// The notification for an outbox row, from the object's current record.
pub async fn notification(s: &Services, e: &OutboxEvent) -> Result<Notification, Error> {
    let missing = || Error::not_found("通知对象");
    let (object, notify, action) = match e.object_kind.as_str() {
        "contract" => {
            let c = s.store.contract(&e.object_id).await?.ok_or_else(missing)?;
            let (roles, action) = contract_audience(&e.status);
            (
                ObjectRef {
                    kind: "contract".into(),
                    id: c.id.clone(),
                    number: Some(c.contract_no.clone()),
                    contract_id: None,
                },
                recipients(s, roles, &c, None).await?,
                action,
            )
        }
        _ => {
            let r: Registration = s
                .store
                .registration(&e.object_id)
                .await?
                .ok_or_else(missing)?;
            let c = s
                .store
                .contract(&r.contract_id)
                .await?
                .ok_or_else(missing)?;
            let (roles, action) = registration_audience(&e.status);
            (
                ObjectRef {
                    kind: "registration".into(),
                    id: r.id.clone(),
                    number: r.acceptance_no.clone(),
                    contract_id: Some(c.id.clone()),
                },
                recipients(s, roles, &c, Some(&r.applicant_id)).await?,
                action,
            )
        }
    };
    Ok(Notification {
        id: e.event_id.clone(),
        seq: e.seq,
        kind: format!("{}.{}", e.object_kind, e.status),
        status: e.status.clone(),
        occurred_at: e.occurred_at,
        object,
        notify,
        action,
    })
}

/// What one dispatch run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// The wait before attempt `attempts + 1`: base × 2^(attempts − 1), capped.
pub fn backoff(cfg: &crate::config::NotificationsConfig, attempts: i32) -> time::Duration {
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let ms = cfg
        .backoff_base_ms
        .saturating_mul(1u64 << exp.min(20))
        .min(cfg.backoff_max_secs.saturating_mul(1000));
    time::Duration::milliseconds(ms as i64)
}

/// Claims the due events and delivers each once. Without a webhook URL nothing is claimed:
/// events wait in the outbox until one is configured.
pub async fn dispatch_once(s: &Services, now: OffsetDateTime) -> Result<Dispatch, Error> {
    let cfg = &s.config.notifications;
    let mut run = Dispatch::default();
    let Some(url) = cfg.webhook_url.as_deref() else {
        return Ok(run);
    };
    let url: reqwest::Url = url
        .parse()
        .map_err(|e| anyhow::anyhow!("notifications.webhook_url: {e}"))?;
    let secret = cfg
        .webhook_secret
        .as_ref()
        .map(|k| k.expose().as_bytes().to_vec())
        .unwrap_or_default();
    let lease = now + time::Duration::seconds(cfg.lease_secs.max(1) as i64);
    for e in s.store.claim_outbox(now, lease, cfg.batch.max(1)).await? {
        let outcome = match notification(s, &e).await {
            Ok(n) => deliver(s, &url, &secret, &n).await,
            Err(err) => Err(format!("payload: {err}")),
        };
        let outcome = match outcome {
            Ok(()) => {
                run.delivered += 1;
                OutboxOutcome::Delivered
            }
            Err(error) if e.attempts >= cfg.max_attempts as i32 => {
                run.dead += 1;
                tracing::warn!(event = %e.event_id, attempts = e.attempts, %error, "notification given up (dead letter)");
                OutboxOutcome::Failed {
                    error,
                    retry_at: None,
                }
            }
            Err(error) => {
                run.retrying += 1;
                OutboxOutcome::Failed {
                    retry_at: Some(OffsetDateTime::now_utc().max(now) + backoff(cfg, e.attempts)),
                    error,
                }
            }
        };
        s.store
            .finish_outbox(e.seq, lease, &outcome, OffsetDateTime::now_utc())
            .await?;
    }
    Ok(run)
}

async fn deliver(
    s: &Services,
    url: &reqwest::Url,
    secret: &[u8],
    n: &Notification,
) -> Result<(), String> {
    let body = serde_json::to_vec(n).map_err(|e| e.to_string())?;
    let headers = signature::make(
        KEY_ID,
        secret,
        "POST",
        url.path(),
        &body,
        OffsetDateTime::now_utc().unix_timestamp(),
    );
    let mut req = s
        .notifier
        .client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("idempotency-key", &n.id)
        .body(body);
    for (name, value) in headers.pairs() {
        req = req.header(name, value);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        // The error's text can carry the URL; the kind is enough to act on.
        Err(e) if e.is_timeout() => Err("timeout".into()),
        Err(e) if e.is_connect() => Err("connection refused or unreachable".into()),
        Err(_) => Err("transport error".into()),
    }
}

/// The loop each instance runs in the background.
pub async fn run_forever(s: Services) {
    let every = s.config.notifications.poll_interval_ms;
    if every == 0 || s.config.notifications.webhook_url.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match dispatch_once(&s, OffsetDateTime::now_utc()).await {
            Ok(run) if run != Dispatch::default() => tracing::debug!(?run, "notifications"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "notification dispatch failed; retried next time"),
        }
    }
}

/// An event as an administrator sees it (delivery state, no payload).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxView {
    pub seq: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub object_id: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_error: Option<String>,
}

pub async fn list(
    s: &Services,
    caller: &super::Caller,
    after: i64,
) -> Result<Vec<OutboxView>, Error> {
    if !caller.is(crate::domain::Role::Admin) {
        return Err(Error::forbidden("只有系统管理员可以查看通知投递情况。"));
    }
    Ok(s.store
        .outbox_events(after, 200)
        .await?
        .into_iter()
        .map(|e| OutboxView {
            state: if e.delivered_at.is_some() {
                DeliveryState::Delivered
            } else if e.dead_at.is_some() {
                DeliveryState::Dead
            } else {
                DeliveryState::Pending
            },
            seq: e.seq,
            id: e.event_id,
            kind: format!("{}.{}", e.object_kind, e.status),
            object_id: e.object_id,
            attempts: e.attempts,
            last_error: e.last_error,
        })
        .collect())
}

/// An administrator sends a dead letter again (after fixing the receiver), audited.
pub async fn requeue(s: &Services, caller: &super::Caller, event_id: &str) -> Result<(), Error> {
    if !caller.is(crate::domain::Role::Admin) {
        return Err(Error::forbidden("只有系统管理员可以重新投递通知。"));
    }
    let now = OffsetDateTime::now_utc();
    if !s.store.requeue_outbox(event_id, now).await? {
        return Err(Error::conflict(
            "not_dead_letter",
            "该通知不存在或并非投递失败的通知。",
        ));
    }
    super::audit(
        s,
        Some(caller),
        "notification.requeue",
        ("notification", event_id),
        None,
        serde_json::json!({}),
    )
    .await
}
