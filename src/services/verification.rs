//! Verifying uploaded PDFs for anyone (a bank, a court, a buyer): the verifier of the pdf room,
//! run off the async threads, with this installation's root as the trust anchor, and a bound on
//! how many run at once so a flood of uploads cannot starve the rest of the service.

use super::{Error, Services};
use crate::pdf::verify::{self, Options};
/// The verifier's report and its parts, for the pages that put it into words.
pub use crate::pdf::verify::{Changes, Integrity, Kind, Report, SignatureReport, Trust, Verdict};
use anyhow::Context as _;
use bytes::Bytes;

/// Verifications allowed at once per core; beyond that callers are asked to retry.
pub const SLOTS_PER_CORE: usize = 2;

/// Verifies an upload: an OFD package (GB/T 38540 seals, trusted to the SM2 root, seals checked
/// against the ones this installation revoked) or a PDF.
pub async fn verify_upload(s: &Services, bytes: Bytes) -> Result<Report, Error> {
    if !crate::ofd::is_zip(&bytes) {
        return verify_pdf(s, bytes).await;
    }
    let trust = vec![
        crate::pki::cache::certificate(&s.pki.gm.root.cert_der).context("SM2 root certificate")?,
        crate::pki::cache::certificate(&s.pki.hierarchy.root.cert_der)
            .context("root certificate")?,
    ];
    let outcome = s
        .verifying
        .run(move || {
            crate::ofd::verify::verify_with_seals(&bytes, &trust, time::OffsetDateTime::now_utc())
        })
        .await
        .map_err(busy)?;
    let (mut report, es_ids) = outcome.map_err(|e| Error::Invalid {
        code: "not_an_ofd",
        message: format!("上传的文件不是可读的 OFD：{}", e.0),
        fields: vec![],
    })?;
    // A seal or a certificate this installation revoked before the signing time makes that
    // signature invalid (the service's own revocation records; outside packages' certificates
    // are not found there).
    for (sig, facts) in report.signatures.iter_mut().zip(es_ids) {
        let signed_at = sig
            .signing_time
            .as_deref()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or_else(time::OffsetDateTime::now_utc);
        let mut revoked: Vec<verify::Problem> = vec![];
        if !facts.es_id.is_empty()
            && let Some(seal) = s.store.es_seal(&facts.es_id).await?
            && seal.revoked_at.is_some_and(|at| at <= signed_at)
        {
            revoked.push(verify::Problem {
                code: "seal_revoked",
                message: format!("电子印章 {} 在签章前已被撤销", facts.es_id),
            });
        }
        for cert in &facts.certificates {
            if super::gm::revoked_at(s, cert)
                .await?
                .is_some_and(|at| at <= signed_at)
            {
                revoked.push(verify::Problem {
                    code: "certificate_revoked",
                    message: "签章所用的证书在签章前已被吊销".into(),
                });
            }
        }
        if !revoked.is_empty() {
            sig.problems.extend(revoked);
            sig.trust = Trust::Revoked;
            sig.verdict = Verdict::Invalid;
            report.verdict = Verdict::Invalid;
        }
    }
    Ok(report)
}

fn busy(e: Error) -> Error {
    match e {
        Error::Busy {
            retry_after_secs, ..
        } => Error::Busy {
            code: "verifier_busy",
            message: "核验服务繁忙，请稍后再试。".into(),
            retry_after_secs,
        },
        other => other,
    }
}

pub async fn verify_pdf(s: &Services, bytes: Bytes) -> Result<Report, Error> {
    let trust = vec![
        crate::pki::cache::certificate(&s.pki.hierarchy.root.cert_der)
            .context("root certificate")?,
    ];
    let outcome = s
        .verifying
        .run(move || {
            verify::verify(
                &bytes,
                &Options {
                    trust,
                    now: time::OffsetDateTime::now_utc(),
                },
            )
        })
        .await
        .map_err(busy)?;
    outcome.map_err(|e| Error::Invalid {
        code: "not_a_pdf",
        message: format!("上传的文件不是可读的 PDF：{}", e.0),
        fields: vec![],
    })
}
