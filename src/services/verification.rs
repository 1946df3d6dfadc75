//! Verifying uploaded PDFs for anyone (a bank, a court, a buyer): the verifier of the pdf room,
//! run off the async threads, with this installation's root as the trust anchor, and a bound on
//! how many run at once so a flood of uploads cannot starve the rest of the service.

use super::{Error, Services};
use crate::pdf::verify::{self, Options};
/// The verifier's report and its parts, for the pages that put it into words.
pub use crate::pdf::verify::{Changes, Integrity, Kind, Report, SignatureReport, Trust, Verdict};
use anyhow::Context as _;
use bytes::Bytes;
use openssl::x509::X509;

/// Verifications allowed at once per core; beyond that callers are asked to retry.
pub const SLOTS_PER_CORE: usize = 2;

pub async fn verify_pdf(s: &Services, bytes: Bytes) -> Result<Report, Error> {
    let trust = vec![X509::from_der(&s.pki.hierarchy.root.cert_der).context("root certificate")?];
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
        .map_err(|e| match e {
            Error::Busy {
                retry_after_secs, ..
            } => Error::Busy {
                code: "verifier_busy",
                message: "核验服务繁忙，请稍后再试。".into(),
                retry_after_secs,
            },
            other => other,
        })?;
    outcome.map_err(|e| Error::Invalid {
        code: "not_a_pdf",
        message: format!("上传的文件不是可读的 PDF：{}", e.0),
        fields: vec![],
    })
}
