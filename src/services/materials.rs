//! The reusable materials library (材料复用库): what a party hands in — an ID card scan, a
//! business licence, a court document, a written consent — is stored once by its SHA-256 and
//! remembered as that party's; later applications reference it instead of asking again. The
//! service's own documents (contracts, certificates) live in the same store.

use super::{Caller, Error, FieldError, Services};
use crate::audit;
use crate::domain::Role;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Stores a document once by its SHA-256, encrypted at rest (contracts and scans carry ID
/// numbers). Every document the service keeps goes through here.
pub async fn put(
    s: &Services,
    sha256: &str,
    media_type: &str,
    content: &[u8],
    at: OffsetDateTime,
) -> Result<(), Error> {
    let sealed = s.identity.personal.seal_document(sha256, content)?;
    s.store
        .put_material(sha256, media_type, content.len(), &sealed, None, at)
        .await?;
    if media_type == "application/pdf" {
        s.recent_documents.keep(sha256, content);
    }
    Ok(())
}

/// Stores a new revision of a stored PDF. A signature, a seal or the filing's validation data
/// append an incremental update to the revision before and leave its bytes as they were, so
/// only the appended bytes are stored, naming the revision they follow: a contract's five
/// revisions of 300–400 KB each took about 1.7 MB a flow, written to the database's log and
/// again to its file; now the first revision and four increments of about 27 KB each
/// (docs/BENCHMARKS.md).
/// A revision that does not begin with the one before is stored whole.
pub async fn put_revision(
    s: &Services,
    sha256: &str,
    content: &[u8],
    base_sha256: &str,
    base: &[u8],
    at: OffsetDateTime,
) -> Result<(), Error> {
    let Some(appended) = content.strip_prefix(base).filter(|rest| !rest.is_empty()) else {
        return put(s, sha256, "application/pdf", content, at).await;
    };
    let sealed = s.identity.personal.seal_document(sha256, appended)?;
    s.store
        .put_material(
            sha256,
            "application/pdf",
            content.len(),
            &sealed,
            Some(base_sha256),
            at,
        )
        .await?;
    s.recent_documents.keep(sha256, content);
    Ok(())
}

/// What a process keeps of the documents it stored or read last: every step of a contract
/// reads the PDF the step before it stored (a signature, then the filing checks of the same
/// request, then the reviewer's approval), and a stored document never changes under its
/// digest, so the copy kept here is the stored one — without the database round trip of a
/// third of a megabyte, its decryption and its digest. Bounded in bytes, oldest out first.
pub struct Recent {
    budget: usize,
    kept: std::sync::Mutex<std::collections::VecDeque<(String, std::sync::Arc<Vec<u8>>)>>,
}

/// About two dozen contract PDFs.
pub const RECENT_BYTES: usize = 8 << 20;

impl Recent {
    pub fn new(budget: usize) -> Recent {
        Recent {
            budget,
            kept: Default::default(),
        }
    }

    fn keep(&self, sha256: &str, content: &[u8]) {
        if content.len() > self.budget / 4 {
            return;
        }
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.iter().any(|(k, _)| k == sha256) {
            return;
        }
        kept.push_back((sha256.to_owned(), std::sync::Arc::new(content.to_vec())));
        let mut total: usize = kept.iter().map(|(_, c)| c.len()).sum();
        while total > self.budget
            && let Some((_, old)) = kept.pop_front()
        {
            total -= old.len();
        }
    }

    fn get(&self, sha256: &str) -> Option<Vec<u8>> {
        let kept = self.kept.lock().ok()?;
        kept.iter()
            .find(|(k, _)| k == sha256)
            .map(|(_, c)| c.as_ref().clone())
    }
}

/// A stored document in the clear, if there is one with this digest; a row that does not
/// decrypt or whose content is not what its digest says is an error, never returned.
pub async fn get(s: &Services, sha256: &str) -> Result<Option<Vec<u8>>, Error> {
    if let Some(kept) = s.recent_documents.get(sha256) {
        return Ok(Some(kept));
    }
    let mut rows = s.store.material(sha256).await?;
    // The rows come newest first; the last must be a whole document (a chain that ends in a
    // missing base or is longer than the store reads is refused, not returned in part).
    let Some(whole) = rows.pop() else {
        return Ok(None);
    };
    if whole.base_sha256.is_some() {
        return Err(anyhow::anyhow!(
            "stored document {sha256}: its revisions do not lead to a whole document"
        )
        .into());
    }
    let mut plain = s
        .identity
        .personal
        .open_document(&whole.sha256, whole.content)?;
    for row in rows.into_iter().rev() {
        let appended = s
            .identity
            .personal
            .open_document(&row.sha256, row.content)?;
        plain.extend_from_slice(&appended);
    }
    if audit::hex(&openssl::sha::sha256(&plain)) != sha256 {
        return Err(anyhow::anyhow!("stored document {sha256} does not match its digest").into());
    }
    if plain.starts_with(b"%PDF-") {
        s.recent_documents.keep(sha256, &plain);
    }
    Ok(Some(plain))
}

/// Largest material accepted (a scanned document).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

pub const KINDS: [&str; 5] = [
    "id_card",
    "business_licence",
    "court_document",
    "consent",
    "other",
];

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MaterialView {
    pub sha256: String,
    pub kind: String,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub uploaded_at: OffsetDateTime,
}

/// The media type the bytes really are (by their signature), if it is one we keep.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

pub async fn upload(
    s: &Services,
    caller: &Caller,
    declared: &str,
    kind: &str,
    name: &str,
    bytes: &[u8],
) -> Result<MaterialView, Error> {
    let mut errors = Vec::new();
    if !KINDS.contains(&kind) {
        errors.push(FieldError::new(
            "kind",
            "one_of",
            "材料类型须为 id_card、business_licence、court_document、consent 或 other。",
        ));
    }
    if name.trim().is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new(
            "name",
            "required",
            "请填写材料名称（100 字以内）。",
        ));
    }
    let sniffed = sniff(bytes);
    if bytes.is_empty() || bytes.len() > MAX_BYTES {
        errors.push(FieldError::new(
            "content",
            "size",
            "材料须为 1 字节至 10 MB。",
        ));
    } else if sniffed.is_none() || sniffed != Some(declared) {
        errors.push(FieldError::new(
            "content",
            "media_type",
            "只接受 PDF、JPEG 或 PNG 文件，且内容须与声明的类型一致。",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    let day_ago = OffsetDateTime::now_utc() - time::Duration::days(1);
    let recent = s
        .store
        .materials_of(&caller.user_id)
        .await?
        .iter()
        .filter(|m| m.uploaded_at > day_ago)
        .count();
    if recent >= s.config.workflow.uploads_per_day as usize {
        return Err(Error::RateLimited {
            code: "too_many_uploads",
            message: "24 小时内上传的材料已达上限，请明天再试或联系登记中心。".into(),
            retry_after_secs: 3600,
        });
    }
    let media = sniffed.unwrap_or("application/octet-stream");
    let sha = audit::hex(&openssl::sha::sha256(bytes));
    let now = OffsetDateTime::now_utc();
    let sealed = s.identity.personal.seal_document(&sha, bytes)?;
    s.store
        .put_owned_material(
            &sha,
            media,
            &sealed,
            &caller.user_id,
            kind,
            name.trim(),
            now,
        )
        .await?;
    // The name can hold personal data (a scan's file name): not in the audit detail.
    let detail = serde_json::json!({"kind": kind, "media_type": media, "size": bytes.len()});
    super::audit(
        s,
        Some(caller),
        "material.upload",
        ("material", &sha),
        Some(sha.clone()),
        detail,
    )
    .await?;
    Ok(MaterialView {
        sha256: sha,
        kind: kind.into(),
        name: name.trim().into(),
        media_type: media.into(),
        size: bytes.len() as i64,
        uploaded_at: now,
    })
}

/// The caller's own materials, newest first: what can be reused.
pub async fn mine(s: &Services, caller: &Caller) -> Result<Vec<MaterialView>, Error> {
    Ok(s.store
        .materials_of(&caller.user_id)
        .await?
        .into_iter()
        .map(|m| MaterialView {
            sha256: m.sha256,
            kind: m.kind,
            name: m.name,
            media_type: m.media_type,
            size: m.size,
            uploaded_at: m.uploaded_at,
        })
        .collect())
}

/// Whether the caller handed this material in.
pub async fn owns(s: &Services, caller: &Caller, sha: &str) -> Result<bool, Error> {
    Ok(s.store
        .materials_of(&caller.user_id)
        .await?
        .iter()
        .any(|m| m.sha256 == sha))
}

/// A material's bytes: for its owner, and for the centre's staff (who review the cases that
/// reference it). Every read by someone else than the owner is audited, as personal data.
pub async fn content(s: &Services, caller: &Caller, sha: &str) -> Result<(String, Vec<u8>), Error> {
    let own = owns(s, caller, sha).await?;
    if !(own || matches!(caller.role, Role::Reviewer | Role::Admin)) {
        return Err(Error::not_found("该材料"));
    }
    let bytes = get(s, sha)
        .await?
        .ok_or_else(|| Error::not_found("该材料"))?;
    if !own {
        let hash = Some(sha.to_owned());
        super::audit(
            s,
            Some(caller),
            "material.read",
            ("material", sha),
            hash,
            serde_json::json!({}),
        )
        .await?;
    }
    let media = sniff(&bytes)
        .unwrap_or("application/octet-stream")
        .to_owned();
    Ok((media, bytes))
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn recent_documents_are_bounded_and_the_oldest_go_first() {
        let r = Recent::new(1000);
        r.keep("a", &[1; 200]);
        r.keep("b", &[2; 200]);
        assert_eq!(r.get("a"), Some(vec![1; 200]));
        // Too large for the budget's quarter: not kept at all.
        r.keep("huge", &[9; 300]);
        assert_eq!(r.get("huge"), None);
        for k in ["c", "d", "e"] {
            r.keep(k, &[3; 200]);
        }
        assert!(r.get("a").is_some(), "five of 200 fit in 1000");
        r.keep("f", &[4; 200]);
        assert_eq!(r.get("a"), None, "the oldest went first");
        assert_eq!(r.get("f"), Some(vec![4; 200]));
        assert_eq!(r.get("nothing"), None);
    }
}
