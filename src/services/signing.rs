//! Personal signatures in the flow: the identity hook (`identity::authorize_signing`: the
//! signer's own fresh verification and the one-time code issued for exactly these bytes), then a
//! one-use event certificate, then a PAdES B-T signature with a visible signature block. Any
//! failure before the signature leaves the document untouched: nothing is signed unverified.

use super::identity::{self, Authorization};
use super::{Caller, Error, Services};
use crate::identity::Purpose;
use crate::pdf::appearance::Visible;
use crate::pdf::sign::{SignOptions, sign_digested};
use anyhow::Context as _;
use time::OffsetDateTime;

/// The signer's confirmation of intent: the one-time code issued for this exact document.
pub struct Intent<'a> {
    pub purpose: Purpose,
    pub code_id: &'a str,
    pub code: &'a str,
}

/// A signed document and the evidence to keep with the signature.
pub struct Signed {
    pub pdf: Vec<u8>,
    /// The signed document's SHA-256, taken in the signing's own pass over it.
    pub sha256: [u8; 32],
    pub certificate_serial: String,
    pub authorization: Authorization,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Signs `pdf` in the empty field `field` as the caller, after the identity hook; `certify`
/// makes it the certification signature (the first one on a contract, DocMDP P=2).
/// `pdf_sha256` is the document's digest as stored (the caller read the document by it, and
/// the store checks what it returns against it): the one-time code must have been issued for
/// exactly that.
pub async fn sign_as_person(
    s: &Services,
    caller: &Caller,
    pdf: &[u8],
    pdf_sha256: &str,
    field: &str,
    intent: &Intent<'_>,
    certify: Option<u8>,
) -> Result<Signed, Error> {
    let font = s.font.as_ref().ok_or_else(|| Error::Unavailable {
        code: "documents_unavailable",
        message: "服务器缺少中文字体，暂时不能签署文件。".into(),
    })?;
    debug_assert_eq!(hex(&openssl::sha::sha256(pdf)), pdf_sha256);
    let authorization = identity::authorize_signing(
        s,
        caller,
        intent.purpose,
        pdf_sha256,
        intent.code_id,
        intent.code,
    )
    .await?;
    super::phases::mark("authorize");
    let (cert, key) =
        super::pki::issue_event_certificate_for(s, caller, &authorization.verification).await?;
    super::phases::mark("event_certificate");
    let tsa = super::pki::tsa_unit(s).context("the time-stamping unit")?;
    let people = s
        .pki
        .hierarchy
        .authority("people-ca")
        .context("people CA")?
        .cert_der
        .clone();
    let v = &authorization.verification;
    let now = OffsetDateTime::now_utc();
    let shown = now.to_offset(time::macros::offset!(+8));
    let timestamp = |digest: &[u8; 32]| super::pki::stamp_digest(tsa, digest);
    let signed = s.documents.run_here(|| {
        sign_digested(
            pdf,
            &SignOptions {
                field,
                signer_cert: &cert.der,
                chain: vec![people],
                key: &key,
                time: now,
                reason: Some("买受人签署"),
                reserve: 0,
                timestamper: Some(&timestamp),
                certify,
                visible: Some((
                    font,
                    Visible::Signature {
                        name: v.subject_name.clone(),
                        time: format!(
                            "{:04}-{:02}-{:02} {:02}:{:02}",
                            shown.year(),
                            u8::from(shown.month()),
                            shown.day(),
                            shown.hour(),
                            shown.minute()
                        ),
                    },
                )),
            },
        )
    });
    let (pdf, sha256) = signed.await?.map_err(|e| Error::Invalid {
        code: "signing_failed",
        message: format!("签名失败：{e}"),
        fields: vec![],
    })?;
    Ok(Signed {
        pdf,
        sha256,
        certificate_serial: cert.serial,
        authorization,
    })
}

/// An organisation's seal to apply: the developer's contract seal or the registration centre's.
pub struct Seal<'a> {
    pub field: &'a str,
    pub cert: &'a [u8],
    pub key: &'a dyn crate::pki::SigningKey,
    pub organisation: &'a str,
    pub purpose: &'a str,
    pub reason: &'a str,
    /// DocMDP P for a seal that certifies the document (a certificate sealed once).
    pub certify: Option<u8>,
}

/// Applies a red round seal (PAdES B-T, time-stamped by this installation's unit) in the
/// prepared field `seal.field`. Both seal certificates are issued by the organisations CA.
/// Returns the sealed document and its SHA-256 (taken in the sealing's own pass over it).
pub async fn seal_document(
    s: &Services,
    pdf: &[u8],
    seal: &Seal<'_>,
    now: OffsetDateTime,
) -> Result<(Vec<u8>, [u8; 32]), Error> {
    let font = s.font.as_ref().ok_or_else(|| Error::Unavailable {
        code: "documents_unavailable",
        message: "服务器缺少中文字体，暂时不能盖章。".into(),
    })?;
    let tsa = super::pki::tsa_unit(s).context("the time-stamping unit")?;
    let orgs_ca = s
        .pki
        .hierarchy
        .authority("organisations-ca")
        .context("organisations CA")?
        .cert_der
        .clone();
    let stamp = |d: &[u8; 32]| super::pki::stamp_digest(tsa, d);
    s.documents
        .run_here(|| {
            sign_digested(
                pdf,
                &SignOptions {
                    field: seal.field,
                    signer_cert: seal.cert,
                    chain: vec![orgs_ca],
                    key: seal.key,
                    time: now,
                    reason: Some(seal.reason),
                    reserve: 0,
                    timestamper: Some(&stamp),
                    certify: seal.certify,
                    visible: Some((
                        font,
                        Visible::Seal {
                            organisation: seal.organisation.into(),
                            purpose: seal.purpose.into(),
                        },
                    )),
                },
            )
        })
        .await?
        .map_err(|e| Error::Invalid {
            code: "signing_failed",
            message: format!("签章失败：{e}"),
            fields: vec![],
        })
}
