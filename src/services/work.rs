//! CPU-bound work (password hashes, PDF rendering, signing, verification) off the async
//! threads and bounded: at most `slots` jobs of a kind run at once, a caller waits a short while
//! for a slot and is otherwise told to come back (503 with `Retry-After`) — no unbounded queue,
//! and memory bounded by the slots (an Argon2id hash holds 19 MiB while it runs).

use super::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

pub struct Bounded {
    what: &'static str,
    slots: Arc<Semaphore>,
    wait: Duration,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Bounded {
    /// `slots` jobs at once (0: the number of cores); callers wait at most `wait`.
    pub fn new(what: &'static str, slots: usize, wait: Duration) -> Bounded {
        let slots = if slots == 0 { cores() } else { slots };
        Bounded {
            what,
            slots: Arc::new(Semaphore::new(slots)),
            wait,
            running: Arc::default(),
            peak: Arc::default(),
        }
    }

    /// The most jobs that ever ran at once (for tests and benchmarks).
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    async fn acquire(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(anyhow::anyhow!("{} slots closed", self.what).into()),
            Err(_) => Err(Error::Busy {
                code: "busy",
                message: "当前办理的人较多，请稍候几秒再试。".into(),
                retry_after_secs: 2,
            }),
        }
    }

    /// Runs `f` in place once a slot is free, telling the runtime this thread blocks (its other
    /// tasks move to other threads): for work on borrowed data (a PDF being signed).
    pub async fn run_here<T>(&self, f: impl FnOnce() -> T) -> Result<T, Error> {
        let _permit = self.acquire().await?;
        super::phases::mark(self.wait_phase());
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let out = if multi {
            tokio::task::block_in_place(f)
        } else {
            f()
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        super::phases::mark(self.work_phase());
        Ok(out)
    }

    /// The phase names of the wait for a slot and of the work in it (`documents_wait`, …).
    fn wait_phase(&self) -> &'static str {
        match self.what {
            "documents" => "documents_wait",
            "verification" => "verification_wait",
            "password hashing" => "hashing_wait",
            _ => "slot_wait",
        }
    }

    fn work_phase(&self) -> &'static str {
        match self.what {
            "documents" => "documents",
            "verification" => "verification",
            "password hashing" => "hashing",
            _ => "slot_work",
        }
    }

    /// Runs `f` on the blocking pool once a slot is free.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let permit = self.acquire().await?;
        super::phases::mark(self.wait_phase());
        let (running, peak) = (self.running.clone(), self.peak.clone());
        let (what, phase) = (self.what, self.work_phase());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let out = f();
            running.fetch_sub(1, Ordering::SeqCst);
            out
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("{what} task: {e}")))
        .inspect(|_| super::phases::mark(phase))
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
