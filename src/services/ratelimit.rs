//! Login throttling: a sliding window of failed attempts per account (guessing one person's
//! password) and of all attempts per source address (spraying many accounts). Kept in memory per
//! instance: behind a load balancer the effective limit is the per-instance limit times the number
//! of instances, which still stops online guessing (docs/operations.md).

use crate::config::AuthConfig;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries above this are pruned, so a flood of distinct keys cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

pub struct LoginLimiter {
    per_account: u32,
    per_address: u32,
    window: Duration,
    accounts: Mutex<HashMap<String, VecDeque<Instant>>>,
    addresses: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(cfg: &AuthConfig) -> Self {
        LoginLimiter {
            per_account: cfg.login_attempts_per_account.max(1),
            per_address: cfg.login_attempts_per_address.max(1),
            window: Duration::from_secs(cfg.login_window_secs.max(1)),
            accounts: Mutex::default(),
            addresses: Mutex::default(),
        }
    }

    /// Counts this attempt against the address and checks both limits. Returns the seconds to
    /// wait when either is exhausted.
    pub fn admit(&self, account: &str, address: &str) -> Result<(), u64> {
        let now = Instant::now();
        {
            let mut map = self.addresses.lock().expect("limiter lock");
            let wait = Self::hit(&mut map, address, now, self.window, self.per_address, true);
            if let Some(wait) = wait {
                return Err(wait);
            }
        }
        let mut map = self.accounts.lock().expect("limiter lock");
        match Self::hit(&mut map, account, now, self.window, self.per_account, false) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn failed(&self, account: &str) {
        let mut map = self.accounts.lock().expect("limiter lock");
        prune(&mut map, Instant::now(), self.window);
        map.entry(account.to_owned())
            .or_default()
            .push_back(Instant::now());
    }

    pub fn succeeded(&self, account: &str) {
        self.accounts.lock().expect("limiter lock").remove(account);
    }

    fn hit(
        map: &mut HashMap<String, VecDeque<Instant>>,
        key: &str,
        now: Instant,
        window: Duration,
        limit: u32,
        record: bool,
    ) -> Option<u64> {
        if map.len() > MAX_KEYS {
            prune(map, now, window);
        }
        let q = map.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            let oldest = *q.front().expect("non-empty");
            let wait = window.saturating_sub(now.duration_since(oldest));
            return Some(wait.as_secs().max(1));
        }
        if record {
            q.push_back(now);
        }
        None
    }
}

fn prune(map: &mut HashMap<String, VecDeque<Instant>>, now: Instant, window: Duration) {
    map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_locks_after_failures_and_unlocks_on_success() {
        let cfg = AuthConfig {
            login_attempts_per_account: 2,
            login_attempts_per_address: 100,
            ..AuthConfig::default()
        };
        let l = LoginLimiter::new(&cfg);
        assert!(l.admit("a", "ip").is_ok());
        l.failed("a");
        l.failed("a");
        assert!(l.admit("a", "ip").is_err());
        assert!(
            l.admit("b", "ip").is_ok(),
            "other accounts are not affected"
        );
        l.succeeded("a");
        assert!(l.admit("a", "ip").is_ok());
    }

    #[test]
    fn address_limit_counts_every_attempt() {
        let cfg = AuthConfig {
            login_attempts_per_account: 100,
            login_attempts_per_address: 3,
            ..AuthConfig::default()
        };
        let l = LoginLimiter::new(&cfg);
        for i in 0..3 {
            assert!(l.admit(&format!("u{i}"), "ip").is_ok());
        }
        assert!(l.admit("u9", "ip").is_err());
        assert!(l.admit("u9", "other-ip").is_ok());
    }
}
