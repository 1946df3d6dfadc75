//! The audit trail: an append-only, hash-chained log of every change and every access to personal
//! data. Each entry's hash covers its sequence number, the previous entry's hash and its own
//! fields, so removing, reordering or editing an entry breaks the chain at that point.

use crate::store::{AuditEvent, NewAuditEvent, Store, StoreResult};
use openssl::sha::Sha256;
use time::OffsetDateTime;

/// Genesis value of the chain (the head row is created with it by the first migration).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Both databases keep microseconds; hashing the same precision keeps stored entries verifiable.
pub fn audit_time(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.microsecond() * 1000)
        .expect("microseconds are a valid nanosecond value")
}

pub fn entry_hash(seq: i64, prev_hash: &str, e: &NewAuditEvent) -> String {
    let at = audit_time(e.at).unix_timestamp_nanos();
    // A JSON array is an unambiguous encoding of the fields (no separator can be forged).
    let canonical = serde_json::json!([
        seq,
        prev_hash,
        at.to_string(),
        e.actor_id,
        e.actor_role,
        e.action,
        e.object_kind,
        e.object_id,
        e.object_hash,
        e.source,
        e.detail,
    ]);
    let mut h = Sha256::new();
    h.update(canonical.to_string().as_bytes());
    hex(&h.finish())
}

/// A time as RFC 3339 text, as every JSON the service writes shows times (the `time` crate's own
/// serde form is a tuple of numbers).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Commits an entry for the chain. It is durable when this returns and chained (numbered and
/// hashed) shortly after, or at the latest when the chain is next read (`chain`).
pub async fn append(store: &dyn Store, mut event: NewAuditEvent) -> StoreResult<()> {
    event.at = audit_time(event.at);
    let started = std::time::Instant::now();
    let r = store.append_audit(&event, entry_hash).await;
    // How long a change waits for its entry (a batch's commit).
    tracing::debug!(
        action = %event.action,
        waited_ms = started.elapsed().as_secs_f64() * 1000.0,
        "audit entry committed"
    );
    r
}

/// The result of checking the chain from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    Intact { entries: i64, head: String },
    Broken { seq: i64, reason: String },
}

/// Chains every entry committed so far: readers of the chain call this first, so they see
/// every entry whose append returned before they asked.
pub async fn chain(store: &dyn Store) -> StoreResult<()> {
    store.chain_audit(entry_hash).await
}

pub async fn verify_chain(store: &dyn Store) -> StoreResult<ChainCheck> {
    chain(store).await?;
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 1;
    loop {
        let batch = store.audit_events(expected_seq - 1, 1000).await?;
        if batch.is_empty() {
            return Ok(ChainCheck::Intact {
                entries: expected_seq - 1,
                head: prev,
            });
        }
        for e in batch {
            if e.seq != expected_seq {
                return Ok(ChainCheck::Broken {
                    seq: expected_seq,
                    reason: format!("entry {expected_seq} is missing"),
                });
            }
            if e.prev_hash != prev {
                return Ok(ChainCheck::Broken {
                    seq: e.seq,
                    reason: "previous hash does not match".into(),
                });
            }
            let recomputed = entry_hash(e.seq, &e.prev_hash, &as_new(&e));
            if recomputed != e.hash {
                return Ok(ChainCheck::Broken {
                    seq: e.seq,
                    reason: "entry content does not match its hash".into(),
                });
            }
            prev = e.hash;
            expected_seq += 1;
        }
    }
}

fn as_new(e: &AuditEvent) -> NewAuditEvent {
    NewAuditEvent {
        at: e.at,
        actor_id: e.actor_id.clone(),
        actor_role: e.actor_role.clone(),
        action: e.action.clone(),
        object_kind: e.object_kind.clone(),
        object_id: e.object_id.clone(),
        object_hash: e.object_hash.clone(),
        source: e.source.clone(),
        detail: e.detail.clone(),
    }
}
