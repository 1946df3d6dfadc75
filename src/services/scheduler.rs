//! Scheduled jobs, safe on any number of instances: each job finds candidates and moves each
//! with a conditional update in its own transaction, so whichever instance gets there first
//! does it, exactly once, and the others find nothing left to do (no leader, no lock table).

use super::{Error, Services};
use crate::audit;
use crate::store::NewAuditEvent;
use time::OffsetDateTime;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Run {
    pub expired_contracts: usize,
    pub purged_nonces: u64,
    pub lapsed_advance_notices: usize,
    pub purged_notifications: u64,
}

const UNSIGNED: [&str; 2] = ["draft", "awaiting_buyers"];

/// Runs every job once.
pub async fn run_once(s: &Services, now: OffsetDateTime) -> Result<Run, Error> {
    let mut run = Run::default();
    // Drafts nobody signed expire and release their unit.
    let ttl = time::Duration::seconds(s.config.workflow.draft_expiry_secs as i64);
    for c in s.store.stale_contracts(&UNSIGNED, now - ttl, 500).await? {
        if s.store
            .end_unsigned_contract(&c.id, &UNSIGNED, "expired", now)
            .await?
        {
            run.expired_contracts += 1;
            audit::append(
                s.store.as_ref(),
                NewAuditEvent {
                    at: now,
                    actor_id: None,
                    actor_role: Some("scheduler".into()),
                    action: "contract.expire".into(),
                    object_kind: "contract".into(),
                    object_id: c.id.clone(),
                    object_hash: None,
                    source: None,
                    detail: serde_json::json!({"unit_id": c.unit_id, "from": c.status}).to_string(),
                },
            )
            .await?;
        }
    }
    // Advance notices past their legal period lapse; the certificate's page says so.
    run.lapsed_advance_notices = super::registrations::lapse_due(s, now).await?;
    // Callback nonces only matter within the five-minute window; a day is plenty.
    run.purged_nonces = s.store.purge_nonces(now - time::Duration::days(1)).await?;
    // Delivered notifications are kept a month for inquiries (the audit log keeps the changes).
    run.purged_notifications = s.store.purge_outbox(now - time::Duration::days(30)).await?;
    Ok(run)
}

/// The loop each instance runs in the background.
pub async fn run_forever(s: Services) {
    let every = s.config.workflow.scheduler_interval_secs;
    if every == 0 {
        return;
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
    loop {
        tick.tick().await;
        match run_once(&s, OffsetDateTime::now_utc()).await {
            Ok(run) if run != Run::default() => tracing::info!(?run, "scheduled jobs"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "scheduled jobs failed; retried next time"),
        }
    }
}
