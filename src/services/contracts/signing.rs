//! Signing and sealing: each buyer signs the exact PDF they were shown, after the identity hook;
//! the developer's confirmer seals it with the organisation's seal, after their own identity
//! check, and the contract is submitted for filing. One helper makes every signature step: load
//! the stored PDF, sign or seal it, store the result, record the signature and move the status.

use super::{Party, StoredTerms, commit, decide, facts, hex, view_for, visible};
use crate::domain::lifecycle::contract::ContractTransition;
use crate::domain::lifecycle::{ContractAction, Who};
use crate::services::{Caller, Error, Services};
use crate::store::{Contract, ContractMove, ContractSignature};
use time::OffsetDateTime;

/// What a signature step produced.
pub(crate) struct Signed {
    pub pdf: Vec<u8>,
    /// The new document's SHA-256, taken in the signing's own pass over it.
    pub sha256: [u8; 32],
    /// `personal`, `organisation_seal` or `centre_seal`.
    pub kind: &'static str,
    pub field: String,
    pub certificate_serial: Option<String>,
    /// The evidence of intent (what the identity hook checked), as JSON.
    pub evidence: String,
}

/// The one signature step: the contract's stored PDF is signed or sealed by `sign` (given the
/// PDF and the digest it was read by), the result stored, and in one transaction the signature recorded and the status moved by `row` — only
/// if the contract still has that document and version (a concurrent step loses cleanly).
/// `set` adds the columns the step writes besides (a filing number).
pub(crate) async fn signature_step(
    s: &Services,
    caller: &Caller,
    c: &Contract,
    row: &ContractTransition,
    sign: impl AsyncFnOnce(&[u8], &str) -> Result<Signed, Error>,
    filing_no: Option<&str>,
    detail: serde_json::Value,
) -> Result<Contract, Error> {
    let before = c
        .document_sha256
        .clone()
        .ok_or_else(|| anyhow::anyhow!("contract {} has no document", c.id))?;
    let pdf = crate::services::materials::get(s, &before)
        .await?
        .ok_or_else(|| anyhow::anyhow!("material {before} missing"))?;
    crate::services::phases::mark("document_read");
    // Lent to the signer with the digest it was read by, and kept to store the new revision as
    // what it appends to this one.
    let signed = sign(&pdf, &before).await?;
    let now = OffsetDateTime::now_utc();
    let after = hex(&signed.sha256);
    crate::services::materials::put_revision(s, &after, &signed.pdf, &before, &pdf, now).await?;
    crate::services::phases::mark("document_stored");
    let sig = ContractSignature {
        id: uuid::Uuid::now_v7().to_string(),
        contract_id: c.id.clone(),
        contract_version: c.version,
        field: signed.field.clone(),
        kind: signed.kind.into(),
        signer_user_id: Some(caller.user_id.clone()),
        certificate_serial: signed.certificate_serial.clone(),
        signed_at: now,
        document_before: before.clone(),
        document_after: after.clone(),
        evidence: signed.evidence,
    };
    let mut m = ContractMove::new(&c.id, c.status, c.status, now);
    m.version = Some(c.version);
    m.document_before = Some(&before);
    m.set.document_sha256 = Some(Some(&after));
    m.set.filing_no = filing_no;
    m.signature = Some(&sig);
    let mut detail = detail;
    if let Some(o) = detail.as_object_mut() {
        o.insert("field".into(), signed.field.into());
        o.insert("document_sha256".into(), after.clone().into());
        o.insert("certificate".into(), signed.certificate_serial.into());
    }
    commit(s, Some(caller), c, row, m, detail).await
}

/// The serial as the certificate log keys it (hex of the magnitude, no leading zeros). Read with
/// x509-parser: OpenSSL 3.0 decodes the public key too, ~150 µs for a fresh event certificate.
pub(crate) fn serial_of(cert_der: &[u8]) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let raw = c.raw_serial();
    let first = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    Some(hex(&raw[first..]))
}

pub(crate) fn signing_error(e: crate::pdf::PdfError) -> Error {
    Error::Invalid {
        code: "signing_failed",
        message: format!("签章失败：{e}"),
        fields: vec![],
    }
}

/// A buyer signs the contract's current PDF in their own field, after the identity hook (a
/// fresh verification and the one-time code issued for exactly this PDF's SHA-256). The first
/// buyer's signature certifies the contract (DocMDP P=2), so later signatures may only fill the
/// prepared fields. When every buyer has signed, the contract is `buyers_signed`.
pub async fn sign_as_buyer(
    s: &Services,
    caller: &Caller,
    id: &str,
    code_id: &str,
    code: &str,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    if !p.is(Who::Buyer) {
        return Err(Error::not_found("该合同"));
    }
    let (f, reads) = super::facts_and_reads(s, Some(caller), &c, &p).await?;
    let row = decide(&c, ContractAction::Sign, &p.relations, &f)?;
    crate::services::phases::mark("decide");
    let index = p.buyer_index.expect("a buyer has a place");
    let field = format!("buyer-{}", index + 1);
    let t = StoredTerms::of(&c)?;
    // The first signature of a version certifies the document.
    let certify = (f.buyers_left == t.buyers.len()).then_some(2);
    // What the buyer read before signing, as the facts found it.
    let reading = reads.reading;
    let c2 = signature_step(
        s,
        caller,
        &c,
        row,
        async |pdf: &[u8], pdf_sha256: &str| {
            let signed = crate::services::signing::sign_as_person(
                s,
                caller,
                pdf,
                pdf_sha256,
                &field,
                &crate::services::signing::Intent {
                    purpose: crate::identity::Purpose::SignContract,
                    code_id,
                    code,
                },
                certify,
            )
            .await?;
            // What the identity hook checked, and what the buyer read before signing.
            let mut evidence =
                serde_json::to_value(&signed.authorization).map_err(|e| anyhow::anyhow!("{e}"))?;
            evidence["reading"] = reading;
            Ok(Signed {
                pdf: signed.pdf,
                sha256: signed.sha256,
                kind: "personal",
                field: field.clone(),
                certificate_serial: Some(signed.certificate_serial.clone()),
                evidence: evidence.to_string(),
            })
        },
        None,
        serde_json::json!({}),
    )
    .await?;
    super::view_as(s, caller, &c2, &p).await
}

/// The developer's seal (certificate and key, under the configured custody): issued on first
/// use, shared by every instance through the database (services::pki::organisation_seal).
pub async fn organisation_seal(
    s: &Services,
    org: &crate::store::Organisation,
) -> Result<std::sync::Arc<crate::services::pki::Unit>, Error> {
    crate::services::pki::organisation_seal(s, org).await
}

/// The developer's confirmer seals the contract every buyer signed (after their own identity
/// check and a code for this exact PDF): `sealed`, the unit `signed`; and it is submitted for
/// filing at once (the service's own step, audited).
pub async fn seal(
    s: &Services,
    caller: &Caller,
    id: &str,
    code_id: &str,
    code: &str,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let row = allowed(s, caller, &c, &p, ContractAction::Seal).await?;
    crate::services::phases::mark("decide");
    let before = c
        .document_sha256
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no document"))?;
    let auth = crate::services::identity::authorize_signing(
        s,
        caller,
        crate::identity::Purpose::SealContract,
        &before,
        code_id,
        code,
    )
    .await?;
    crate::services::phases::mark("authorize");
    let org = s
        .store
        .organisation(&c.developer_id)
        .await?
        .ok_or_else(|| Error::not_found("开发企业"))?;
    let seal = organisation_seal(s, &org).await?;
    crate::services::phases::mark("seal_key");
    let (cert, key) = (seal.cert.clone(), seal.key.clone());
    let sealed = signature_step(
        s,
        caller,
        &c,
        row,
        async |pdf: &[u8], _| {
            let (sealed, sha256) = crate::services::signing::seal_document(
                s,
                pdf,
                &crate::services::signing::Seal {
                    field: "seller-seal",
                    cert: &cert,
                    key: key.as_ref(),
                    organisation: &org.name,
                    purpose: "合同专用章",
                    reason: "出卖人盖章",
                    certify: None,
                },
                OffsetDateTime::now_utc(),
            )
            .await?;
            Ok(Signed {
                pdf: sealed,
                sha256,
                kind: "organisation_seal",
                field: "seller-seal".into(),
                certificate_serial: serial_of(&cert),
                evidence: serde_json::to_string(&auth).map_err(|e| anyhow::anyhow!("{e}"))?,
            })
        },
        None,
        serde_json::json!({}),
    )
    .await?;
    // Submitted for filing at once (the service's own step from `sealed`), unless the operator
    // leaves submission to the developer.
    if !s.config.workflow.submit_on_seal {
        return view_for(s, caller, &sealed).await;
    }
    let submitted = super::filing::submit(s, Some(caller), &sealed, Who::System).await?;
    view_for(s, caller, &submitted).await
}

async fn allowed(
    s: &Services,
    caller: &Caller,
    c: &Contract,
    p: &Party,
    action: ContractAction,
) -> Result<&'static ContractTransition, Error> {
    let f = facts(s, Some(caller), c, p).await?;
    decide(c, action, &p.relations, &f)
}

pub(crate) use serial_of as certificate_serial;
