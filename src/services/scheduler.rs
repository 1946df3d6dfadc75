//! Scheduled jobs, safe on any number of instances: each job finds candidates and moves each
//! with a conditional update in its own transaction, so whichever instance gets there first
//! does it, exactly once, and the others find nothing left to do (no leader, no lock table).

use super::{Error, Services};
use time::OffsetDateTime;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Run {
    pub expired_contracts: usize,
    pub purged_nonces: u64,
    pub lapsed_advance_notices: usize,
    pub purged_notifications: u64,
    pub purged_idempotency: u64,
    pub purged_login_attempts: u64,
    pub submitted_after_seal: usize,
}

/// Runs every job once.
pub async fn run_once(s: &Services, now: OffsetDateTime) -> Result<Run, Error> {
    Ok(Run {
        // Drafts nobody signed expire and release their unit (the contract table's `expire`
        // rows).
        expired_contracts: super::contracts::expire_due(s, now).await?,
        // A seal whose request was lost before its submission (and never retried) is
        // submitted a minute later, as the request would have done.
        submitted_after_seal: super::contracts::submit_left_sealed(
            s,
            now,
            time::Duration::minutes(1),
        )
        .await?,
        // Advance notices past their legal period lapse; the certificate's page says so.
        lapsed_advance_notices: super::registrations::lapse_due(s, now).await?,
        // Callback nonces only matter within the five-minute window; a day is plenty.
        purged_nonces: s.store.purge_nonces(now - time::Duration::days(1)).await?,
        // Delivered notifications are kept a month for inquiries (the audit log keeps the
        // changes).
        purged_notifications: s.store.purge_outbox(now - time::Duration::days(30)).await?,
        // Idempotency keys are kept a day (a client retries within minutes).
        purged_idempotency: s
            .store
            .purge_idempotency(now - time::Duration::days(1))
            .await?,
        // Sign-in attempts matter within the throttling window only.
        purged_login_attempts: s
            .store
            .purge_login_attempts(now - s.limiter.window())
            .await?,
    })
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
