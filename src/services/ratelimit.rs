//! Login throttling: a sliding window of failed attempts per account (guessing one person's
//! password) and of all attempts per source address (spraying many accounts). Counted in the
//! database, so the limits hold however many instances share it (the keys are SHA-256 of the
//! account name and the address: no address is kept in clear); the scheduler forgets attempts
//! older than the window.

use crate::config::AuthConfig;
use crate::store::{Store, StoreResult};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

pub struct LoginLimiter {
    store: Arc<dyn Store>,
    per_account: i64,
    per_address: i64,
    window: Duration,
}

const ADDRESS: &str = "address";
const ACCOUNT: &str = "account";

fn key(kind: &str, value: &str) -> String {
    crate::audit::hex(&openssl::sha::sha256(format!("{kind}:{value}").as_bytes()))
}

impl LoginLimiter {
    pub fn new(cfg: &AuthConfig, store: Arc<dyn Store>) -> Self {
        LoginLimiter {
            store,
            per_account: cfg.login_attempts_per_account.max(1) as i64,
            per_address: cfg.login_attempts_per_address.max(1) as i64,
            window: Duration::seconds(cfg.login_window_secs.max(1) as i64),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long to wait when `n` attempts since the window's start reached `limit`.
    fn wait(
        &self,
        n: i64,
        oldest: Option<OffsetDateTime>,
        limit: i64,
        now: OffsetDateTime,
    ) -> Option<u64> {
        (n >= limit).then(|| {
            let oldest = oldest.unwrap_or(now);
            (self.window - (now - oldest)).whole_seconds().max(1) as u64
        })
    }

    /// Counts this attempt against the address and checks both limits. `Ok(Err(seconds))` when
    /// either is exhausted.
    pub async fn admit(&self, account: &str, address: &str) -> StoreResult<Result<(), u64>> {
        let now = OffsetDateTime::now_utc();
        let since = now - self.window;
        let address = key(ADDRESS, address);
        let (n, oldest) = self.store.login_attempts(ADDRESS, &address, since).await?;
        if let Some(wait) = self.wait(n, oldest, self.per_address, now) {
            return Ok(Err(wait));
        }
        self.store
            .record_login_attempt(ADDRESS, &address, now)
            .await?;
        let (n, oldest) = self
            .store
            .login_attempts(ACCOUNT, &key(ACCOUNT, account), since)
            .await?;
        Ok(match self.wait(n, oldest, self.per_account, now) {
            Some(wait) => Err(wait),
            None => Ok(()),
        })
    }

    pub async fn failed(&self, account: &str) -> StoreResult<()> {
        self.store
            .record_login_attempt(ACCOUNT, &key(ACCOUNT, account), OffsetDateTime::now_utc())
            .await
    }

    pub async fn succeeded(&self, account: &str) -> StoreResult<()> {
        self.store
            .clear_login_attempts(ACCOUNT, &key(ACCOUNT, account))
            .await
    }
}
