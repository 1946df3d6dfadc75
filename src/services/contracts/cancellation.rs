//! Cancelling a filed contract: one party asks (with a reason, optionally a court document of
//! their own in place of the other party's consent), the other party consents after an identity
//! check bound to the filed document, and a reviewer approves — only with the consent or the
//! court document, and only while no advance-notice registration of the contract is alive. The
//! unit is released.

use super::{commit, decide, facts, view_for, visible};
use crate::domain::lifecycle::ContractAction;
use crate::services::{Caller, Error, FieldError, Services};
use crate::store::ContractMove;
use time::OffsetDateTime;

/// One party asks to cancel a filed contract.
pub async fn request_cancellation(
    s: &Services,
    caller: &Caller,
    id: &str,
    reason: &str,
    court_document: Option<&str>,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let f = facts(s, Some(caller), &c, &p).await?;
    let row = decide(&c, ContractAction::RequestCancellation, &p.relations, &f)?;
    let side = p.side().expect("a party of the contract");
    if reason.trim().is_empty() {
        return Err(Error::invalid(vec![FieldError::new(
            "reason",
            "required",
            "请说明解除合同的原因。",
        )]));
    }
    if let Some(sha) = court_document {
        let ok = s
            .store
            .materials_of(&caller.user_id)
            .await?
            .iter()
            .any(|m| m.sha256 == sha && m.kind == "court_document");
        if !ok {
            return Err(Error::invalid(vec![FieldError::new(
                "court_document",
                "not_yours",
                "法院文书须为您本人上传、类型为 court_document 的材料。",
            )]));
        }
    }
    let now = OffsetDateTime::now_utc();
    let json = serde_json::json!({"requested_by": caller.user_id, "party": side, "reason": reason, "at": crate::audit::rfc3339(now), "consent": null, "court_document": court_document}).to_string();
    let mut m = ContractMove::new(&c.id, c.status, c.status, now);
    m.set.cancellation = Some(&json);
    let c2 = commit(
        s,
        Some(caller),
        &c,
        row,
        m,
        serde_json::json!({"party": side, "reason": reason}),
    )
    .await?;
    view_for(s, caller, &c2).await
}

/// The other party consents, after an identity check and a code bound to the filed document.
pub async fn consent_cancellation(
    s: &Services,
    caller: &Caller,
    id: &str,
    code_id: &str,
    code: &str,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let f = facts(s, Some(caller), &c, &p).await?;
    let row = decide(&c, ContractAction::ConsentCancellation, &p.relations, &f)?;
    let side = p.side().expect("a party of the contract");
    let mut request: serde_json::Value =
        serde_json::from_str(c.cancellation.as_deref().unwrap_or("{}")).unwrap_or_default();
    let purpose = if side == "buyer" {
        crate::identity::Purpose::SignContract
    } else {
        crate::identity::Purpose::SealContract
    };
    let document = c
        .document_sha256
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no document"))?;
    let auth =
        crate::services::identity::authorize_signing(s, caller, purpose, &document, code_id, code)
            .await?;
    let now = OffsetDateTime::now_utc();
    request["consent"] = serde_json::json!({"by": caller.user_id, "party": side, "at": crate::audit::rfc3339(now), "evidence": auth});
    let json = request.to_string();
    let mut m = ContractMove::new(&c.id, c.status, c.status, now);
    m.set.cancellation = Some(&json);
    let c2 = commit(
        s,
        Some(caller),
        &c,
        row,
        m,
        serde_json::json!({"party": side}),
    )
    .await?;
    view_for(s, caller, &c2).await
}

/// A reviewer approves the cancellation; the unit is released.
pub async fn approve_cancellation(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let f = facts(s, Some(caller), &c, &p).await?;
    let row = decide(&c, ContractAction::ApproveCancellation, &p.relations, &f)?;
    let request: serde_json::Value =
        serde_json::from_str(c.cancellation.as_deref().unwrap_or("{}")).unwrap_or_default();
    let mut m = ContractMove::new(&c.id, c.status, c.status, OffsetDateTime::now_utc());
    // The statement itself refuses while a registration is alive (the guard's fact could be
    // stale by the time it runs).
    m.unless_registration_alive = true;
    let c2 = commit(
        s,
        Some(caller),
        &c,
        row,
        m,
        serde_json::json!({"requested_by": request["party"], "consented_by": request["consent"]["party"], "court_document": request["court_document"]}),
    )
    .await?;
    view_for(s, caller, &c2).await
}
