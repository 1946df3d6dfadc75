//! The workflow room: everything the service does, behind plain async functions that the HTTP
//! handlers, the CLI and the tests all call. Authorisation on objects (whose data this is) is
//! decided here, not only in the router.

pub mod accounts;
pub mod checks;
pub mod contracts;
pub mod documents;
pub mod error;
pub mod gm;
pub mod identity;
pub mod inventory;
pub mod listing;
pub mod materials;
pub mod notifications;
pub mod personal;
pub mod phases;
pub mod pki;
pub mod ratelimit;
pub mod registrations;
pub mod scheduler;
pub mod seed;
pub mod signing;
pub mod tokens;
pub mod verification;
pub mod work;

pub use error::{Error, FieldError};

use crate::config::Config;
use crate::domain::{Duty, Role};
use crate::store::Store;
use std::sync::Arc;

/// Everything a request needs, shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub tokens: Arc<tokens::Keyring>,
    pub limiter: Arc<ratelimit::LoginLimiter>,
    pub pki: Arc<pki::PkiState>,
    /// The CJK font for documents (the bundled face unless one is configured); `None` when the
    /// configured file cannot be read (the service runs, says so in `/readyz`, and refuses to
    /// make documents).
    pub font: Option<crate::pdf::font::Font>,
    /// The identity provider and the keys protecting personal data.
    pub identity: Arc<identity::IdentityState>,
    /// Verifications of uploaded PDFs at once (CPU-bound, public).
    pub verifying: Arc<work::Bounded>,
    /// Renderings and signatures of documents at once (CPU-bound).
    pub documents: Arc<work::Bounded>,
    /// The webhook client of the notification outbox.
    pub notifier: Arc<notifications::Notifier>,
    /// Password hashes at once (each Argon2id hash holds 19 MiB while it runs).
    pub hashing: Arc<work::Bounded>,
    /// The documents this instance stored or read last, by digest (materials::Recent).
    pub recent_documents: Arc<materials::Recent>,
}

impl Services {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        tokens: tokens::Keyring,
        pki: pki::PkiState,
    ) -> anyhow::Result<Self> {
        let identity = identity::IdentityState::load(&config)?;
        let limiter = ratelimit::LoginLimiter::new(&config.auth, store.clone());
        let font = match crate::pdf::font::Font::find(config.documents.font_path.as_deref()) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(error = %e, "the configured CJK font cannot be read: documents cannot be generated");
                None
            }
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Services {
            notifier: Arc::new(notifications::Notifier::new(&config.notifications)?),
            identity: Arc::new(identity),
            verifying: Arc::new(work::Bounded::new(
                "verification",
                cores * verification::SLOTS_PER_CORE,
                std::time::Duration::from_millis(500),
            )),
            documents: Arc::new(work::Bounded::new(
                "documents",
                config.documents.concurrency,
                std::time::Duration::from_millis(config.documents.wait_ms),
            )),
            hashing: Arc::new(work::Bounded::new(
                "password hashing",
                config.auth.hash_concurrency,
                std::time::Duration::from_millis(config.auth.hash_wait_ms),
            )),
            recent_documents: Arc::new(materials::Recent::new(materials::RECENT_BYTES)),
            font,
            config,
            store,
            tokens: Arc::new(tokens),
            limiter: Arc::new(limiter),
            pki: Arc::new(pki),
        })
    }
}

/// The authenticated caller of a request, taken from a verified access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub role: Role,
    pub duties: Vec<Duty>,
    pub organisation_id: Option<String>,
    /// Where the request came from, for the audit trail.
    pub source: Option<String>,
    /// The request's idempotency key: written beside the change it makes (same transaction),
    /// so a retry after a crash learns whether it was made.
    pub idempotency: Option<crate::store::IdempotencyTag>,
}

impl Caller {
    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }
    pub fn has_duty(&self, duty: Duty) -> bool {
        self.duties.contains(&duty)
    }
}

/// Appends an action on one object (`kind`, `id`) to the audit chain, by the caller or, with
/// `None`, by the service itself.
pub(crate) async fn audit(
    s: &Services,
    caller: Option<&Caller>,
    action: &str,
    (kind, id): (&str, &str),
    object_hash: Option<String>,
    detail: serde_json::Value,
) -> Result<(), Error> {
    crate::audit::append(
        s.store.as_ref(),
        crate::store::NewAuditEvent {
            at: time::OffsetDateTime::now_utc(),
            actor_id: caller.map(|c| c.user_id.clone()),
            actor_role: caller.map(|c| c.role.as_str().to_owned()),
            action: action.into(),
            object_kind: kind.into(),
            object_id: id.into(),
            object_hash,
            source: caller.and_then(|c| c.source.clone()),
            detail: detail.to_string(),
        },
    )
    .await?;
    Ok(())
}
