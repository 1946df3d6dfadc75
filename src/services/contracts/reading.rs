//! Reading the contract before signing it: the exact version's text chapter by chapter (the same
//! words as its PDF, filled from the data it was rendered from), each opening by a buyer
//! recorded. A buyer signs only when every chapter was opened and `web.min_reading_secs` have
//! passed since the first; the record goes with the signature's evidence.

use super::{Party, visible};
use crate::domain::lifecycle::Who;
use crate::services::documents::{CONTRACT_TEMPLATE, Chapter, contract_chapters};
use crate::services::{Caller, Error, Services};
use crate::store::Contract;
use serde::Serialize;
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The chapters of a contract's current version, and how far the caller has read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadingView {
    pub contract_id: String,
    pub version: i32,
    pub chapters: Vec<ChapterEntry>,
    /// How many chapters the caller has opened.
    pub opened: usize,
    /// Every chapter opened and the minimum time passed: the buyer may sign.
    pub complete: bool,
    /// Seconds still to wait when every chapter is opened but the time has not passed.
    pub seconds_left: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChapterEntry {
    pub number: usize,
    pub title: String,
    pub opened: bool,
}

/// The whole text of the current version (no document yet: nothing to read).
fn chapters_of(s: &Services, c: &Contract) -> Result<Arc<Vec<Chapter>>, Error> {
    // A buyer opens every chapter and each view counts them: the chapters of one sealed
    // snapshot never change, so this process fills the template once per snapshot (the key is
    // the snapshot's text, which names the contract and holds the encrypted data).
    type Cache = std::sync::Mutex<std::collections::HashMap<[u8; 32], Arc<Vec<Chapter>>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let key = c.snapshot.as_deref().map(|t| {
        let mut h = openssl::sha::Sha256::new();
        h.update(c.id.as_bytes());
        h.update(&[0]);
        h.update(t.as_bytes());
        h.finish()
    });
    let cache = CACHE.get_or_init(Default::default);
    if let Some(k) = key
        && let Some(hit) = cache.lock().ok().and_then(|m| m.get(&k).cloned())
    {
        return Ok(hit);
    }
    let (snap, data) = crate::services::checks::Snapshot::open(s, c)
        .ok_or_else(|| Error::not_found("该合同的文本（尚未确认）"))?;
    let chapters = Arc::new(contract_chapters(
        CONTRACT_TEMPLATE,
        &data,
        &snap.public_url,
    )?);
    if let Some(k) = key
        && let Ok(mut m) = cache.lock()
    {
        if m.len() >= 1024 {
            m.clear();
        }
        m.insert(k, chapters.clone());
    }
    Ok(chapters)
}

/// What a buyer has read of the current version: (chapters opened, total, seconds left).
pub(crate) async fn progress(
    s: &Services,
    c: &Contract,
    user_id: &str,
    total: usize,
) -> Result<(usize, u64, serde_json::Value), Error> {
    let readings = s.store.readings(&c.id, c.version, user_id).await?;
    Ok(progress_of(s, c, &readings, total))
}

fn progress_of(
    s: &Services,
    c: &Contract,
    readings: &[crate::store::Reading],
    total: usize,
) -> (usize, u64, serde_json::Value) {
    let opened = readings
        .iter()
        .filter(|r| (r.chapter as usize) < total)
        .count();
    let first = readings.iter().map(|r| r.opened_at).min();
    let min = s.config.web.min_reading_secs;
    let waited = first.map_or(0, |f| {
        (OffsetDateTime::now_utc() - f).whole_seconds().max(0) as u64
    });
    let record = serde_json::json!({
        "version": c.version,
        "chapters": total,
        "opened": readings.iter().map(|r| serde_json::json!({"chapter": r.chapter, "at": crate::audit::rfc3339(r.opened_at)})).collect::<Vec<_>>(),
        "min_reading_secs": min,
    });
    (opened, min.saturating_sub(waited), record)
}

/// How far a buyer has read the current version: (chapters not opened, seconds still to wait,
/// the reading record for the signature's evidence).
pub(crate) async fn reading_state(
    s: &Services,
    c: &Contract,
    user_id: &str,
) -> Result<(usize, u64, serde_json::Value), Error> {
    let total = match chapters_of(s, c) {
        Ok(ch) => ch.len(),
        Err(_) => return Ok((usize::MAX, 0, serde_json::Value::Null)),
    };
    let (opened, left, record) = progress(s, c, user_id, total).await?;
    Ok((total - opened, left, record))
}

pub async fn reading(s: &Services, caller: &Caller, id: &str) -> Result<ReadingView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let chapters = chapters_of(s, &c)?;
    let readings = if p.is(Who::Buyer) {
        s.store.readings(&c.id, c.version, &caller.user_id).await?
    } else {
        vec![]
    };
    let (opened, left, _) = progress_of(s, &c, &readings, chapters.len());
    Ok(ReadingView {
        contract_id: c.id.clone(),
        version: c.version,
        opened,
        complete: p.is(Who::Buyer) && opened == chapters.len() && left == 0,
        seconds_left: if opened == chapters.len() {
            left
        } else {
            s.config.web.min_reading_secs.max(left)
        },
        chapters: chapters
            .iter()
            .map(|ch| ChapterEntry {
                opened: readings.iter().any(|r| r.chapter as usize == ch.number),
                number: ch.number,
                title: ch.title.clone(),
            })
            .collect(),
    })
}

/// One chapter's text; a buyer's opening of it is recorded.
pub async fn chapter(s: &Services, caller: &Caller, id: &str, n: usize) -> Result<Chapter, Error> {
    let (c, p): (Contract, Party) = visible(s, caller, id).await?;
    let chapter = chapters_of(s, &c)?
        .get(n)
        .cloned()
        .ok_or_else(|| Error::not_found("该章节"))?;
    if p.is(Who::Buyer) {
        s.store
            .record_reading(
                &c.id,
                c.version,
                &caller.user_id,
                n as i32,
                OffsetDateTime::now_utc(),
            )
            .await?;
    }
    Ok(chapter)
}
