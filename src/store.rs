//! Storage: one trait for everything the services keep, with an embedded SQLite implementation
//! (the default) and a PostgreSQL one for production and scale-out. Both run the same contract
//! test suite (tests/it/store.rs). The trait speaks in plain rows; the services give them meaning.

pub mod cases;
pub mod lend;
pub mod people;
pub mod postgres;
mod sql;
pub mod sqlite;
mod types;

pub use cases::{
    CaseFilter, CaseStore, ContractBuyer, ContractMove, ContractQuery, ContractSet, Cursor, Order,
    RegistrationMove, RegistrationQuery, Scope,
};
pub use people::{PeopleStore, PhoneChallenge, Reading};

use crate::domain::identity::VerificationStatus;
use crate::domain::lifecycle::{
    CertificateStatus, ContractStatus, EntryStatus, Hold, PermitStatus, RegistrationStatus,
    UnitStatus,
};
use async_trait::async_trait;
use std::sync::Arc;
use time::{Date, OffsetDateTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness or check constraint refused the write; `constraint` names it where the
    /// database says (PostgreSQL does, SQLite gives the columns).
    #[error("constraint violated: {constraint}")]
    Conflict { constraint: String },
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored value is not valid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The database could not be reached or is not taking writes for a moment (a lost
    /// connection, a full pool, a server shutting down or starting, a standby not yet
    /// promoted): the request may be retried, unlike a refused or failed statement.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                // PostgreSQL: 08 connection exception, 57P01–57P03 shutting down or not yet
                // accepting connections, 25006 read-only transaction (a standby).
                c.starts_with("08") || c.starts_with("57P") || c == "25006"
            }),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && (db.is_unique_violation()
                || db.is_check_violation()
                || db.is_foreign_key_violation())
        {
            return StoreError::Conflict {
                constraint: db
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| db.message().to_owned()),
            };
        }
        let e = StoreError::Database(e);
        if e.is_unavailable() {
            LAST_UNAVAILABLE_MS.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
        }
        e
    }
}

/// When this process last found the database unreachable (ms since the epoch; 0: never). The
/// PostgreSQL store lends a recently used connection without a ping (store::lend), except for a
/// while after such trouble: then connections that broke while idle are found by the ping and
/// replaced before a request gets one.
static LAST_UNAVAILABLE_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// How long after trouble every lent connection is pinged.
const TROUBLE_PINGS_MS: i64 = 30_000;

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The database was unreachable within the last half minute (this process saw it).
pub(crate) fn recent_trouble() -> bool {
    let last = LAST_UNAVAILABLE_MS.load(std::sync::atomic::Ordering::Relaxed);
    last != 0 && now_ms() - last < TROUBLE_PINGS_MS
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Organisation {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub uscc: Option<String>,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub duties: String,
    pub organisation_id: Option<String>,
    pub password_hash: String,
    pub demo: bool,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub token_hash: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefreshToken {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub token_hash: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// What happened when a refresh token was presented.
#[derive(Clone, Debug)]
pub enum RefreshOutcome {
    /// The token was live: it is now used and `new` replaces it in the same family.
    Rotated {
        user_id: String,
    },
    /// The token had been used before: someone replayed it, so the whole family is now revoked.
    Reused,
    Expired,
    Revoked,
    Unknown,
}

#[derive(Clone, Debug)]
pub struct NewAuditEvent {
    pub at: OffsetDateTime,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub object_hash: Option<String>,
    pub source: Option<String>,
    pub detail: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditEvent {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub at: OffsetDateTime,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub object_hash: Option<String>,
    pub source: Option<String>,
    pub detail: String,
}

/// Computes an audit entry's hash from its sequence number, the previous entry's hash and the
/// entry itself. The audit room owns the formula; the store only calls it inside its lock.
pub type AuditSealer = fn(i64, &str, &NewAuditEvent) -> String;

/// One append waiting for the store's audit writer.
pub(crate) struct AuditJob {
    event: NewAuditEvent,
    sealer: AuditSealer,
    reply: tokio::sync::oneshot::Sender<StoreResult<()>>,
}

/// What one pass of chaining did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChainPass {
    /// This many pending entries were chained; none were left when the pass looked.
    Done(usize),
    /// A full batch was chained and more may be pending.
    More,
    /// Another instance holds the chain's head: it chains (or will chain) what is pending.
    Skipped,
}

/// The audit trail is written in two steps.
///
/// 1. An appender's entry is inserted into `audit_pending` and committed; the request waits only
///    for that (one short insert, no lock shared with other instances), and the entry is durable
///    from then on. One writer task per store batches the inserts of concurrent requests.
/// 2. A chainer task moves pending entries into the hash chain in batches: one transaction takes
///    the chain's head, gives each entry its sequence number and hash, inserts them into
///    `audit_events`, deletes them from `audit_pending` and moves the head. Instances that find
///    the head taken skip and look again shortly; a periodic sweep chains entries that another
///    (perhaps killed) instance left pending.
///
/// Before the chain is read, whatever is pending is chained (`Store::chain_audit`), so a reader
/// sees every entry committed before it asked. Under the old scheme every request held its
/// place in line for the head's row lock through a commit; three instances took turns on it
/// and each signing request waited for three or four of those turns (docs/BENCHMARKS.md).
pub(crate) struct AuditQueue {
    tx: tokio::sync::mpsc::UnboundedSender<AuditJob>,
}

/// Most entries inserted or chained in one transaction.
pub(crate) const AUDIT_BATCH: usize = 128;

/// How often the chainer looks for pending entries when nothing told it to.
const AUDIT_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);
/// How soon it looks again after another instance held the head.
const AUDIT_RETRY: std::time::Duration = std::time::Duration::from_millis(25);
/// How long the chainer lets entries gather after an insert woke it. A pass costs six
/// statements and a commit whether it chains one entry or a hundred; without the pause a quiet
/// service (one request at a time) chained every entry alone, about a third of all its
/// statements (docs/BENCHMARKS.md). Nothing waits for the chain: a reader chains what is
/// pending itself, and the entries are durable from their insert.
const AUDIT_GATHER: std::time::Duration = std::time::Duration::from_millis(100);

impl AuditQueue {
    /// Starts the writer and the chainer. `insert` commits a batch of entries as pending;
    /// `chain` runs one chaining pass without waiting for the head (`ChainPass::Skipped` when
    /// another instance holds it).
    pub(crate) fn start<I, IF, C, CF>(insert: I, chain: C) -> AuditQueue
    where
        I: Fn(Vec<NewAuditEvent>) -> IF + Send + 'static,
        IF: std::future::Future<Output = StoreResult<()>> + Send,
        C: Fn(AuditSealer) -> CF + Send + 'static,
        CF: std::future::Future<Output = StoreResult<ChainPass>> + Send,
    {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<AuditJob>();
        let (wake, mut woken) = tokio::sync::watch::channel::<Option<AuditSealer>>(None);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < AUDIT_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let events: Vec<NewAuditEvent> = jobs.iter().map(|j| j.event.clone()).collect();
                let started = std::time::Instant::now();
                let result = insert(events).await;
                tracing::debug!(
                    entries = jobs.len(),
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                    "audit batch"
                );
                let sealer = jobs[0].sealer;
                match result {
                    Ok(()) => {
                        for j in jobs {
                            let _ = j.reply.send(Ok(()));
                        }
                    }
                    // The batch failed as a whole: each entry alone, so each appender gets
                    // the error of its own insert (or success, when only another failed).
                    Err(_) => {
                        for j in jobs {
                            let r = insert(vec![j.event.clone()]).await;
                            let _ = j.reply.send(r);
                        }
                    }
                }
                wake.send_replace(Some(sealer));
            }
        });
        tokio::spawn(async move {
            let mut sealer: Option<AuditSealer> = None;
            loop {
                // Woken by an insert, or the sweep's time is up; ends with the writer.
                match tokio::time::timeout(AUDIT_SWEEP, woken.changed()).await {
                    Ok(Err(_)) => break,
                    Ok(Ok(())) => {
                        tokio::time::sleep(AUDIT_GATHER).await;
                        sealer = *woken.borrow_and_update();
                    }
                    Err(_) => {}
                }
                let Some(sealer) = sealer else { continue };
                loop {
                    let started = std::time::Instant::now();
                    match chain(sealer).await {
                        Ok(ChainPass::Done(n)) => {
                            if n > 0 {
                                tracing::debug!(
                                    entries = n,
                                    ms = started.elapsed().as_secs_f64() * 1000.0,
                                    "audit chained"
                                );
                            }
                            break;
                        }
                        Ok(ChainPass::More) => {}
                        Ok(ChainPass::Skipped) => tokio::time::sleep(AUDIT_RETRY).await,
                        Err(e) => {
                            // The entries stay pending; the next wake or sweep tries again.
                            tracing::warn!(error = %e, "audit chaining failed");
                            break;
                        }
                    }
                }
            }
        });
        AuditQueue { tx }
    }

    /// Queues an entry and waits until it is committed as pending. `None` when the writer is
    /// gone (the runtime that started it has ended): the caller inserts it by itself.
    pub(crate) async fn append(
        &self,
        event: &NewAuditEvent,
        sealer: AuditSealer,
    ) -> Option<StoreResult<()>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(AuditJob {
                event: event.clone(),
                sealer,
                reply,
            })
            .ok()?;
        answer.await.ok()
    }
}

/// One stored row of a document: the whole (no base), or the bytes appended to its base.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredMaterial {
    pub sha256: String,
    pub base_sha256: Option<String>,
    pub content: Vec<u8>,
}

/// Most rows one document is put together from (a contract has five revisions).
pub const MATERIAL_CHAIN: usize = 32;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Project {
    pub id: String,
    pub developer_id: String,
    pub name: String,
    pub town: String,
    pub parcel_code: String,
    pub land_certificate_no: String,
    pub land_use: String,
    pub land_term_end: Date,
    pub planning_permit_no: String,
    pub construction_permit_no: String,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Permit {
    pub id: String,
    pub project_id: String,
    pub number: String,
    pub authority: String,
    pub issued_on: Date,
    pub escrow_bank: String,
    pub escrow_account_name: String,
    pub escrow_account_no: String,
    pub status: PermitStatus,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Building {
    pub id: String,
    pub project_id: String,
    pub number: i32,
    pub name: String,
    pub floors_above: i32,
    pub floors_below: i32,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Unit {
    pub id: String,
    pub project_id: String,
    pub building_id: String,
    pub permit_id: Option<String>,
    pub room_no: String,
    pub floor: i32,
    pub unit_number: String,
    pub use_type: String,
    pub gross_area: i64,
    pub internal_area: i64,
    pub shared_area: i64,
    pub storey_height_mm: i32,
    pub filed_price_fen: i64,
    pub status: UnitStatus,
    pub seized: bool,
    pub mortgaged: bool,
    pub objection: bool,
    pub manual_hold: bool,
    pub version: i64,
    pub updated_at: OffsetDateTime,
}

/// A certificate issued by one of the service's CAs.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CertificateRecord {
    pub serial: String,
    pub issuer: String,
    pub profile: String,
    pub subject: String,
    pub organisation_id: Option<String>,
    /// The identity verification an event certificate was issued against.
    pub verification_id: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub der: Vec<u8>,
    pub revoked_at: Option<OffsetDateTime>,
    pub revocation_reason: Option<String>,
    pub created_at: OffsetDateTime,
}

/// An identity verification (see migrations/*/0003).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct IdentityVerification {
    pub id: String,
    pub user_id: String,
    pub purpose: String,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub subject_name: String,
    pub id_pseudonym: String,
    pub status: VerificationStatus,
    pub liveness_passed: bool,
    /// Hundredths: 7990 is a similarity of 79.90.
    pub similarity: Option<i32>,
    pub threshold: i32,
    pub evidence_digest: Option<String>,
    pub created_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
    pub event_cert_serial: Option<String>,
    /// The provider found the name and ID number in the authoritative record.
    pub identity_matched: bool,
    /// Why it failed: reason codes joined by commas.
    pub failure: Option<String>,
}

/// A contract row. `terms` is the drafter's JSON (ID numbers encrypted); `live` is true while
/// the contract holds its unit.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Contract {
    pub id: String,
    pub contract_no: String,
    pub unit_id: String,
    pub developer_id: String,
    pub status: ContractStatus,
    pub live: bool,
    pub version: i32,
    pub terms: String,
    pub drafter_id: String,
    pub confirmer_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The current PDF (a material), from confirmation on.
    pub document_sha256: Option<String>,
    pub filing_no: Option<String>,
    /// The reviewer's reasons (JSON list) while the contract is `returned`.
    pub returned_reasons: Option<String>,
    /// A cancellation request (JSON: who asked, why, consent) while one is pending.
    pub cancellation: Option<String>,
    /// What the current version's PDF was made from (JSON, the data encrypted), from
    /// confirmation on.
    pub snapshot: Option<String>,
    /// The reviewer's automated checks as they stood at submission (JSON).
    pub filing_checks: Option<String>,
}

/// A signature on a contract: who, which field, the document before and after, and the
/// evidence of intent (what the identity hook checked).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ContractSignature {
    pub id: String,
    pub contract_id: String,
    pub contract_version: i32,
    pub field: String,
    pub kind: String,
    pub signer_user_id: Option<String>,
    pub certificate_serial: Option<String>,
    pub signed_at: OffsetDateTime,
    pub document_before: String,
    pub document_after: String,
    pub evidence: String,
}

/// A registration application and, once issued, its certificate.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Registration {
    pub id: String,
    pub contract_id: String,
    pub applicant_id: String,
    pub status: RegistrationStatus,
    pub acceptance_no: Option<String>,
    pub acceptor_id: Option<String>,
    pub first_reviewer_id: Option<String>,
    pub second_reviewer_id: Option<String>,
    pub recorder_id: Option<String>,
    pub certificate_no: Option<String>,
    pub certificate_sha256: Option<String>,
    /// The same certificate as a sealed OFD package (国密 seal).
    pub certificate_ofd_sha256: Option<String>,
    pub certificate_status: Option<CertificateStatus>,
    /// JSON list of the material hashes the application relies on.
    pub materials: String,
    /// JSON list of review opinions (step, person, opinion, time).
    pub opinions: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Requisitioned or suspended while the case waits at its step.
    pub hold: Option<Hold>,
    /// What the applicant must hand in, or why the case is suspended (JSON list).
    pub hold_reasons: Option<String>,
    /// The register entry once recorded: valid, converted, lapsed or cancelled.
    pub entry_status: Option<EntryStatus>,
    /// When a valid advance notice lapses.
    pub lapses_on: Option<Date>,
}

impl Registration {
    /// The case's whole state (step, hold, entry) as the registration table reads it.
    pub fn state(&self) -> crate::domain::lifecycle::RegistrationState {
        crate::domain::lifecycle::RegistrationState {
            status: self.status,
            hold: self.hold,
            entry: self.entry_status,
        }
    }
}

/// A material a party handed in (the content is stored once, by its digest).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OwnedMaterial {
    pub sha256: String,
    pub user_id: String,
    pub kind: String,
    pub name: String,
    pub uploaded_at: OffsetDateTime,
    pub media_type: String,
    pub size: i64,
}

/// The steps of a registration case and the column that records who took each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationStep {
    Accept,
    FirstReview,
    SecondReview,
    Record,
}

impl RegistrationStep {
    pub fn column(self) -> &'static str {
        match self {
            RegistrationStep::Accept => "acceptor_id",
            RegistrationStep::FirstReview => "first_reviewer_id",
            RegistrationStep::SecondReview => "second_reviewer_id",
            RegistrationStep::Record => "recorder_id",
        }
    }
}

/// A status change waiting to be (or already) told to the parties (migrations/*/0011).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OutboxEvent {
    pub seq: i64,
    pub event_id: String,
    pub object_kind: String,
    pub object_id: String,
    pub status: String,
    pub occurred_at: OffsetDateTime,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub lease_until: Option<OffsetDateTime>,
    pub delivered_at: Option<OffsetDateTime>,
    pub dead_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// What became of one delivery attempt.
#[derive(Clone, Debug)]
pub enum OutboxOutcome {
    Delivered,
    /// Try again at `retry_at`, or give up (`retry_at: None`: a dead letter).
    Failed {
        error: String,
        retry_at: Option<OffsetDateTime>,
    },
}

/// The encumbrance flags of a unit (DOMAIN.md): seizure, objection and manual hold freeze it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UnitFlag {
    Seized,
    Mortgaged,
    Objection,
    ManualHold,
}

impl UnitFlag {
    /// The column; a closed set, so it is safe to put into SQL text.
    pub fn column(self) -> &'static str {
        match self {
            UnitFlag::Seized => "seized",
            UnitFlag::Mortgaged => "mortgaged",
            UnitFlag::Objection => "objection",
            UnitFlag::ManualHold => "manual_hold",
        }
    }
}

/// What a new use of an idempotency key finds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use: go ahead, then record the response.
    New,
    /// Already answered: the recorded response.
    Replay {
        status: i32,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// The first request with this key is still being handled.
    InFlight,
    /// The key was first used for a different request.
    Mismatch,
    /// The first request's lease ran out without an answer (its process died): this request
    /// takes the key over, and must first learn whether that request's change was committed.
    Abandoned,
}

/// The idempotency key a request carries, scoped to its caller: services write it beside the
/// change the request makes, in the same transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyTag {
    pub scope: String,
    pub key: String,
}

/// A certificate of this installation's PKI with the reference to its private key.
/// A GB/T 38540 electronic seal (电子印章) kept by its esID.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EsSeal {
    pub es_id: String,
    pub name: String,
    pub seal_type: i32,
    /// The pki_objects name of the certificate and SM2 key allowed to use it.
    pub holder: String,
    pub organisation_id: Option<String>,
    /// DER SESeal, signed by the seal maker.
    pub seal_der: Vec<u8>,
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub revocation_reason: Option<String>,
}

#[derive(Clone, sqlx::FromRow)]
pub struct PkiObject {
    /// `root`, an issuing CA's name, `tsa`, `centre-seal` or `seal-<organisation id>`.
    pub name: String,
    pub cert_der: Vec<u8>,
    /// `software` (the key encrypted in `key_pem`) or `pkcs11` (the token's key `key_label`).
    pub key_kind: String,
    pub key_label: Option<String>,
    pub key_pem: Option<Vec<u8>>,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for PkiObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkiObject")
            .field("name", &self.name)
            .field("key_kind", &self.key_kind)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

/// A change committed under an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyEffect {
    /// `contract` or `registration`.
    pub object_kind: String,
    pub object_id: String,
    /// The request created the object (a retry answers 201, not 200).
    pub created: bool,
}

/// Why a unit could not be taken by a new contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DraftRefusal {
    /// The unit is not `available` (sold, locked, frozen, unknown).
    UnitNotAvailable,
    /// Another live contract already holds the unit (the unique index said so).
    UnitHasLiveContract,
}

/// The person behind an account: the real name and the ID number, encrypted (docs/privacy.md).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserIdentity {
    pub real_name: Option<String>,
    pub id_number_enc: Option<String>,
    pub id_number_hash: Option<String>,
}

/// A one-time code confirming the intent to sign one exact document.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SigningCode {
    pub id: String,
    pub user_id: String,
    pub verification_id: String,
    pub purpose: String,
    pub document_sha256: String,
    /// HMAC of the code: the code itself is never stored.
    pub code_hash: String,
    pub attempts: i32,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// A whole development (project, permit, buildings, units) written in one transaction, so a seed
/// or an import either lands completely or not at all.
#[derive(Clone, Debug)]
pub struct Development {
    pub project: Project,
    pub permits: Vec<Permit>,
    pub buildings: Vec<Building>,
    pub units: Vec<Unit>,
}

#[async_trait]
pub trait Store: CaseStore + PeopleStore + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies every pending migration.
    async fn migrate(&self) -> StoreResult<()>;
    /// The database answers and every migration this build knows is applied.
    async fn ready(&self) -> StoreResult<MigrationStatus>;

    async fn insert_organisation(&self, org: &Organisation) -> StoreResult<()>;
    async fn organisation(&self, id: &str) -> StoreResult<Option<Organisation>>;
    async fn organisation_by_uscc(&self, uscc: &str) -> StoreResult<Option<Organisation>>;

    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn count_active_demo_users(&self) -> StoreResult<i64>;

    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> StoreResult<()>;
    /// Atomically marks the token with `token_hash` used and stores `next` in its family.
    /// A second use of the same token revokes the family instead.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        next: &NewRefreshToken,
        now: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome>;
    /// Revokes the family of the token with this hash; returns the user it belonged to.
    async fn revoke_refresh_family(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>>;

    /// Commits an entry for the hash chain; it is chained shortly after (see `AuditQueue`), its
    /// hash computed by the sealer under the chain's lock.
    async fn append_audit(&self, event: &NewAuditEvent, sealer: AuditSealer) -> StoreResult<()>;
    /// Chains every entry committed so far (waiting for another instance that holds the
    /// chain's head); readers of the chain call it first.
    async fn chain_audit(&self, sealer: AuditSealer) -> StoreResult<()>;
    /// Entries committed but not chained yet.
    async fn audit_pending(&self) -> StoreResult<i64>;
    async fn audit_events(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditEvent>>;
    /// The entries about these objects, oldest first (a case's timeline).
    async fn audit_events_of(&self, object_ids: &[String]) -> StoreResult<Vec<AuditEvent>>;

    async fn insert_certificate(&self, cert: &CertificateRecord) -> StoreResult<()>;
    async fn certificate(&self, serial: &str) -> StoreResult<Option<CertificateRecord>>;
    /// Newest first.
    async fn certificates(&self, limit: i64) -> StoreResult<Vec<CertificateRecord>>;
    /// Marks the certificate revoked; false when it was unknown or already revoked.
    async fn revoke_certificate(
        &self,
        serial: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> StoreResult<bool>;
    async fn revoked_certificates(&self, issuer: &str) -> StoreResult<Vec<CertificateRecord>>;

    async fn insert_identity_verification(&self, v: &IdentityVerification) -> StoreResult<()>;
    async fn identity_verification(&self, id: &str) -> StoreResult<Option<IdentityVerification>>;
    async fn identity_verification_by_ref(
        &self,
        provider: &str,
        provider_ref: &str,
    ) -> StoreResult<Option<IdentityVerification>>;
    /// A user's most recent verifications, newest first.
    async fn identity_verifications_of(
        &self,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<IdentityVerification>>;
    /// A user's passed verification for `purpose` completed last, however many others (of
    /// other purposes, pending or failed) came after it.
    async fn latest_passed_verification(
        &self,
        user_id: &str,
        purpose: &str,
    ) -> StoreResult<Option<IdentityVerification>>;
    /// Records the outcome of a pending verification; false when it was no longer pending (a
    /// late or repeated callback changes nothing).
    async fn complete_identity_verification(&self, v: &IdentityVerification) -> StoreResult<bool>;
    /// Sets the provider's reference of a verification just started.
    async fn set_provider_ref(&self, id: &str, provider_ref: &str) -> StoreResult<()>;
    /// Remembers a callback nonce; false when it was seen before (a replay).
    async fn remember_nonce(
        &self,
        provider: &str,
        nonce: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;

    async fn unit(&self, id: &str) -> StoreResult<Option<Unit>>;
    /// Forgets callback nonces seen before `before` (their timestamps are long stale).
    async fn purge_nonces(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Claims a key until `lease_until` (the request's answer is recorded before then, or the
    /// claim is abandoned and another request may take it over).
    async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        at: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<IdempotencyClaim>;
    /// What requests under this key changed (written with the changes themselves).
    async fn idempotency_effects(
        &self,
        scope: &str,
        key: &str,
    ) -> StoreResult<Vec<IdempotencyEffect>>;
    /// Forgets answered keys and effects older than `before`.
    async fn purge_idempotency(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Counts one sign-in attempt (`kind` `address` or `account`, the key hashed by the caller).
    async fn record_login_attempt(
        &self,
        kind: &str,
        key: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Attempts since `since`: how many, and when the oldest was.
    async fn login_attempts(
        &self,
        kind: &str,
        key: &str,
        since: OffsetDateTime,
    ) -> StoreResult<(i64, Option<OffsetDateTime>)>;
    async fn clear_login_attempts(&self, kind: &str, key: &str) -> StoreResult<()>;
    async fn purge_login_attempts(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// The next CRL number of a CA (at least `floor`), unique across instances.
    async fn next_crl_number(&self, ca: &str, floor: i64) -> StoreResult<i64>;
    async fn pki_object(&self, name: &str) -> StoreResult<Option<PkiObject>>;
    /// Stores a PKI object unless one of that name exists (false: another instance's is kept).
    async fn insert_pki_object(&self, o: &PkiObject) -> StoreResult<bool>;
    /// Stores all of them or none (false: one of the names exists already).
    async fn insert_pki_objects(&self, objects: &[PkiObject]) -> StoreResult<bool>;
    /// Stores a GB/T 38540 seal unless its holder has a live one already (false: the other
    /// instance's is kept).
    async fn insert_es_seal(&self, seal: &EsSeal) -> StoreResult<bool>;
    /// The holder's live (not revoked) seal.
    async fn live_es_seal(&self, holder: &str) -> StoreResult<Option<EsSeal>>;
    async fn es_seal(&self, es_id: &str) -> StoreResult<Option<EsSeal>>;
    /// Newest first.
    async fn es_seals(&self, limit: i64) -> StoreResult<Vec<EsSeal>>;
    /// Revokes a live seal; false when there is none by that esID or it is revoked already.
    async fn revoke_es_seal(
        &self,
        es_id: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> StoreResult<bool>;
    async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        status: i32,
        content_type: Option<&str>,
        body: &[u8],
    ) -> StoreResult<()>;
    /// Ends the claim of a key whose request failed on the server's side: a retry takes it over
    /// (as abandoned: what the failed attempt committed, if anything, is its answer).
    async fn release_idempotency_key(&self, scope: &str, key: &str) -> StoreResult<()>;
    /// Stores a party's material once by digest and remembers the owner.
    #[allow(clippy::too_many_arguments)]
    async fn put_owned_material(
        &self,
        sha256: &str,
        media_type: &str,
        content: &[u8],
        user_id: &str,
        kind: &str,
        name: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// A party's materials, newest first.
    async fn materials_of(&self, user_id: &str) -> StoreResult<Vec<OwnedMaterial>>;
    /// Stores a document once by its SHA-256 (a second store of the same bytes is a no-op).
    /// With `base`, `content` holds only what follows the stored document `base` (an
    /// incremental update); `size` is always the whole document's.
    async fn put_material(
        &self,
        sha256: &str,
        media_type: &str,
        size: usize,
        content: &[u8],
        base: Option<&str>,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// The stored rows a document is put together from, itself first and then each base it
    /// names (at most `MATERIAL_CHAIN` of them); empty when there is no such document.
    async fn material(&self, sha256: &str) -> StoreResult<Vec<StoredMaterial>>;

    async fn set_user_identity(
        &self,
        user_id: &str,
        real_name: &str,
        id_number_enc: &str,
        id_number_hash: &str,
    ) -> StoreResult<()>;
    async fn user_identity(&self, user_id: &str) -> StoreResult<Option<UserIdentity>>;

    async fn insert_signing_code(&self, c: &SigningCode) -> StoreResult<()>;
    async fn signing_code(&self, id: &str) -> StoreResult<Option<SigningCode>>;
    /// How many codes a user was issued since `since` (for the hourly limit; counted by the
    /// database on its `(user_id, created_at)` index, not read row by row).
    async fn signing_codes_since(&self, user_id: &str, since: OffsetDateTime) -> StoreResult<i64>;
    /// Counts a wrong try; returns the new count.
    async fn count_code_attempt(&self, id: &str) -> StoreResult<i32>;
    /// Spends the code; false when it was already spent.
    async fn use_signing_code(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool>;
    /// In one transaction: marks the verification as used by the event certificate and logs the
    /// certificate. False (and nothing written) when the verification was already used.
    async fn record_event_certificate(
        &self,
        verification_id: &str,
        cert: &CertificateRecord,
    ) -> StoreResult<bool>;

    async fn insert_development(&self, dev: &Development) -> StoreResult<()>;
    /// Claims up to `limit` due events (undelivered, not dead, not leased) until `lease_until`,
    /// counting the attempt. Concurrent claimers never get the same event while its lease lasts.
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEvent>>;
    /// Records an attempt's outcome, only while the claimer's lease (`lease_until`) still holds
    /// the event; false when another dispatcher took it over.
    async fn finish_outbox(
        &self,
        seq: i64,
        lease_until: OffsetDateTime,
        outcome: &OutboxOutcome,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// A dead letter due again at `at` with a fresh count of attempts; false unless it was dead.
    async fn requeue_outbox(&self, event_id: &str, at: OffsetDateTime) -> StoreResult<bool>;
    /// Forgets events delivered before `before` (dead letters stay until an operator acts).
    async fn purge_outbox(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// Events after `after_seq`, oldest first.
    async fn outbox_events(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<OutboxEvent>>;
    /// Accounts whose identity has this lookup hash (the buyers named in a contract).
    async fn users_by_id_hash(&self, id_number_hash: &str) -> StoreResult<Vec<User>>;
    async fn insert_project(&self, p: &Project) -> StoreResult<()>;
    /// A building and all its units in one transaction: the whole 楼盘表 of the building lands,
    /// or nothing does.
    async fn insert_building(&self, b: &Building, units: &[Unit]) -> StoreResult<()>;
    /// A permit and, in the same transaction, the release of the not yet released units of the
    /// buildings it covers (`unreleased` → `available`, linked to the permit). Returns how many
    /// units were released.
    async fn insert_permit(
        &self,
        m: &Permit,
        cover_buildings: &[String],
        at: OffsetDateTime,
    ) -> StoreResult<u64>;
    async fn permit(&self, id: &str) -> StoreResult<Option<Permit>>;
    /// A permit becomes valid, suspended or revoked; false when it was already so.
    async fn set_permit_status(&self, id: &str, status: PermitStatus) -> StoreResult<bool>;
    /// Sets or clears one encumbrance flag of a unit; false when it already had that value.
    async fn set_unit_flag(
        &self,
        id: &str,
        flag: UnitFlag,
        value: bool,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
    async fn projects(&self) -> StoreResult<Vec<Project>>;
    async fn project(&self, id: &str) -> StoreResult<Option<Project>>;
    async fn permits(&self, project_id: &str) -> StoreResult<Vec<Permit>>;
    async fn buildings(&self, project_id: &str) -> StoreResult<Vec<Building>>;
    async fn units(&self, project_id: &str) -> StoreResult<Vec<Unit>>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationStatus {
    pub known: usize,
    pub applied: usize,
}

impl MigrationStatus {
    pub fn complete(&self) -> bool {
        self.applied >= self.known
    }
}

/// Opens the database named by the URL: `sqlite:` for the embedded store, `postgres:` or
/// `postgresql:` for PostgreSQL.
pub async fn open(url: &str, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            sqlite::SqliteStore::open(url, max_connections).await?,
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(
            postgres::PgStore::open(url, max_connections).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}
