//! The evidence package of a contract: every version of its PDF, the verification report, the
//! signatures with their identity evidence and the audit entries, in a ZIP with a manifest of
//! digests signed by the registration centre.

use super::{hex, record, visible};
use crate::services::{Caller, Error, Services};
use time::OffsetDateTime;

/// An evidence package: every version of the contract's PDF the signatures produced, the
/// verification report of the current one, the signatures with what the identity hook checked,
/// the contract's (and its registrations') audit entries, and a manifest of SHA-256 digests
/// signed by the registration centre (a detached CMS, `manifest.json.p7s`). A ZIP of stored
/// entries (the PDFs are compressed already).
pub async fn evidence(s: &Services, caller: &Caller, id: &str) -> Result<Vec<u8>, Error> {
    use std::io::Write as _;
    let (c, _) = visible(s, caller, id).await?;
    let signatures = s.store.contract_signatures(&c.id).await?;
    let mut documents: Vec<String> = Vec::new();
    for sig in &signatures {
        for d in [&sig.document_before, &sig.document_after] {
            if !documents.contains(d) {
                documents.push(d.clone());
            }
        }
    }
    if let Some(d) = &c.document_sha256
        && !documents.contains(d)
    {
        documents.push(d.clone());
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, d) in documents.iter().enumerate() {
        let pdf = crate::services::materials::get(s, d)
            .await?
            .ok_or_else(|| anyhow::anyhow!("material {d} missing"))?;
        files.push((format!("documents/{:02}-{}.pdf", i + 1, &d[..16]), pdf));
    }
    if let Some(current) = &c.document_sha256 {
        let pdf = crate::services::materials::get(s, current)
            .await?
            .ok_or_else(|| anyhow::anyhow!("material missing"))?;
        let report = crate::services::verification::verify_pdf(s, bytes::Bytes::from(pdf)).await?;
        files.push((
            "verification.json".into(),
            serde_json::to_vec_pretty(&report).map_err(|e| anyhow::anyhow!("{e}"))?,
        ));
    }
    // The reviewer's checks as they stood at submission (the record of what was reviewed).
    if let Some(checks) = &c.filing_checks {
        files.push(("filing-checks.json".into(), checks.as_bytes().to_vec()));
    }
    let sigs: Vec<serde_json::Value> = signatures
        .iter()
        .map(|x| {
            serde_json::json!({
                "field": x.field, "kind": x.kind, "contract_version": x.contract_version,
                "signer_user_id": x.signer_user_id, "certificate_serial": x.certificate_serial,
                "signed_at": crate::audit::rfc3339(x.signed_at), "document_before": x.document_before,
                "document_after": x.document_after,
                "evidence": serde_json::from_str::<serde_json::Value>(&x.evidence).unwrap_or_default(),
            })
        })
        .collect();
    files.push((
        "signatures.json".into(),
        serde_json::to_vec_pretty(&sigs).map_err(|e| anyhow::anyhow!("{e}"))?,
    ));
    // The audit entries about this contract, and about registrations that name it.
    crate::audit::chain(s.store.as_ref()).await?;
    let all = s.store.audit_events(0, 1_000_000).await?;
    let registration_ids: Vec<String> = all
        .iter()
        .filter(|e| e.object_kind == "registration" && e.detail.contains(&c.id))
        .map(|e| e.object_id.clone())
        .collect();
    let entries: Vec<serde_json::Value> = all
        .iter()
        .filter(|e| e.object_id == c.id || registration_ids.contains(&e.object_id))
        .map(|e| {
            serde_json::json!({
                "seq": e.seq, "prev_hash": e.prev_hash, "hash": e.hash, "at": crate::audit::rfc3339(e.at),
                "actor_id": e.actor_id, "actor_role": e.actor_role, "action": e.action,
                "object_kind": e.object_kind, "object_id": e.object_id,
                "object_hash": e.object_hash,
                "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_default(),
            })
        })
        .collect();
    files.push((
        "audit.json".into(),
        serde_json::to_vec_pretty(&entries).map_err(|e| anyhow::anyhow!("{e}"))?,
    ));
    let now = OffsetDateTime::now_utc();
    let manifest = serde_json::json!({
        "contract_id": c.id,
        "contract_no": c.contract_no,
        "status": c.status,
        "filing_no": c.filing_no,
        "generated_at": crate::audit::rfc3339(now),
        "generated_for": caller.user_id,
        "files": files.iter().map(|(n, b)| serde_json::json!({"name": n, "sha256": hex(&openssl::sha::sha256(b)), "size": b.len()})).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec_pretty(&manifest).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Signed by the registration centre's seal: one detached CMS over the manifest.
    let (cert, key) = crate::services::pki::centre_seal(s)?;
    let orgs_ca = s
        .pki
        .hierarchy
        .authority("organisations-ca")
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .cert_der
        .clone();
    let signature = crate::pki::cms::sign(&crate::pki::cms::SignRequest {
        content_type: crate::pki::cms::ID_DATA,
        content: None,
        content_digest: openssl::sha::sha256(&manifest),
        signer_cert: &cert,
        key: key.as_ref(),
        certificates: vec![cert.clone(), orgs_ca],
        signing_time: Some(now),
        unsigned_attributes: vec![],
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), Error> {
        zip.start_file(name, options)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        zip.write_all(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    };
    put("manifest.json", &manifest)?;
    put("manifest.json.p7s", &signature)?;
    for (name, bytes) in &files {
        put(name, bytes)?;
    }
    let out = zip
        .finish()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_inner();
    record(
        s,
        caller,
        "contract.evidence_export",
        &c,
        serde_json::json!({"manifest_sha256": hex(&openssl::sha::sha256(&manifest))}),
    )
    .await?;
    Ok(out)
}
