//! Certificate validation for the verifier: RFC 5280 path building and validation at a given time
//! against configured trust anchors (OpenSSL's verifier, an implementation nobody here wrote),
//! then revocation from CRLs, with one clear reason for every failure.

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{CrlStatus, X509, X509Crl, X509PurposeId, X509StoreContext, X509VerifyResult};
use std::fmt;
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Signing documents (non-repudiation or digital signature key usage).
    DocumentSigning,
    /// RFC 3161 time stamping (critical EKU timeStamping).
    TimeStamping,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidationFailure {
    Expired,
    NotYetValid,
    Revoked {
        reason: Option<i32>,
        at: Option<String>,
    },
    UnknownIssuer,
    WrongKeyUsage,
    BadSignature,
    /// Revocation was required but no valid CRL from the issuer was available.
    RevocationUnknown,
    Other(String),
}

impl ValidationFailure {
    pub fn code(&self) -> &'static str {
        match self {
            ValidationFailure::Expired => "expired",
            ValidationFailure::NotYetValid => "not_yet_valid",
            ValidationFailure::Revoked { .. } => "revoked",
            ValidationFailure::UnknownIssuer => "unknown_issuer",
            ValidationFailure::WrongKeyUsage => "wrong_key_usage",
            ValidationFailure::BadSignature => "bad_signature",
            ValidationFailure::RevocationUnknown => "revocation_unknown",
            ValidationFailure::Other(_) => "invalid_chain",
        }
    }
}

impl fmt::Display for ValidationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationFailure::Expired => f.write_str("a certificate in the chain had expired"),
            ValidationFailure::NotYetValid => {
                f.write_str("a certificate in the chain was not yet valid")
            }
            ValidationFailure::Revoked { .. } => {
                f.write_str("a certificate in the chain is revoked")
            }
            ValidationFailure::UnknownIssuer => {
                f.write_str("the chain does not lead to a trusted root")
            }
            ValidationFailure::WrongKeyUsage => {
                f.write_str("the certificate may not be used for this purpose")
            }
            ValidationFailure::BadSignature => {
                f.write_str("a signature in the chain does not verify")
            }
            ValidationFailure::RevocationUnknown => {
                f.write_str("no revocation information from the issuer")
            }
            ValidationFailure::Other(s) => write!(f, "invalid chain: {s}"),
        }
    }
}

/// Trust anchors, intermediates and revocation data to validate against.
#[derive(Default)]
pub struct Validation {
    pub anchors: Vec<X509>,
    pub intermediates: Vec<X509>,
    pub crls: Vec<X509Crl>,
    /// Require a CRL from every issuer in the path.
    pub require_revocation: bool,
}

impl Validation {
    /// Validates `cert` at time `at`; on success returns the path from `cert` to the anchor.
    pub fn validate(
        &self,
        cert: &X509,
        at: OffsetDateTime,
        purpose: Purpose,
    ) -> Result<Vec<X509>, ValidationFailure> {
        let other = |e: openssl::error::ErrorStack| ValidationFailure::Other(e.to_string());
        let mut store = X509StoreBuilder::new().map_err(other)?;
        for a in &self.anchors {
            store.add_cert(a.clone()).map_err(other)?;
        }
        let mut param = openssl::x509::verify::X509VerifyParam::new().map_err(other)?;
        param.set_time(at.unix_timestamp() as _);
        param
            .set_flags(X509VerifyFlags::X509_STRICT | X509VerifyFlags::USE_CHECK_TIME)
            .map_err(other)?;
        param
            .set_purpose(match purpose {
                Purpose::DocumentSigning => X509PurposeId::ANY,
                Purpose::TimeStamping => X509PurposeId::TIMESTAMP_SIGN,
            })
            .map_err(other)?;
        store.set_param(&param).map_err(other)?;
        let store = store.build();
        let mut chain = Stack::new().map_err(other)?;
        for i in &self.intermediates {
            chain.push(i.clone()).map_err(other)?;
        }
        let mut ctx = X509StoreContext::new().map_err(other)?;
        let outcome = ctx
            .init(&store, cert, &chain, |c| {
                let ok = c.verify_cert()?;
                let path: Vec<X509> = c
                    .chain()
                    .map(|s| s.iter().map(|x| x.to_owned()).collect())
                    .unwrap_or_default();
                Ok((ok, c.error(), path))
            })
            .map_err(other)?;
        let (ok, error, path) = outcome;
        if !ok {
            return Err(map_error(error));
        }
        if purpose == Purpose::DocumentSigning && !signing_key_usage(cert) {
            return Err(ValidationFailure::WrongKeyUsage);
        }
        self.check_revocation(&path, at)?;
        Ok(path)
    }

    fn check_revocation(&self, path: &[X509], at: OffsetDateTime) -> Result<(), ValidationFailure> {
        // Every certificate but the anchor, checked against a CRL signed by its issuer.
        for pair in path.windows(2) {
            let (cert, issuer) = (&pair[0], &pair[1]);
            let issuer_key = issuer
                .public_key()
                .map_err(|e| ValidationFailure::Other(e.to_string()))?;
            let crl = self.crls.iter().find(|crl| {
                crl.issuer_name().to_der().ok() == issuer.subject_name().to_der().ok()
                    && crl.verify(&issuer_key).unwrap_or(false)
            });
            match crl {
                Some(crl) => match crl.get_by_serial(cert.serial_number()) {
                    CrlStatus::Revoked(entry) => {
                        let revoked_at = asn1_time_unix(entry.revocation_date());
                        if revoked_at.is_none_or(|t| t <= at.unix_timestamp()) {
                            return Err(ValidationFailure::Revoked {
                                reason: None,
                                at: Some(entry.revocation_date().to_string()),
                            });
                        }
                    }
                    CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => {}
                },
                None if self.require_revocation => {
                    return Err(ValidationFailure::RevocationUnknown);
                }
                None => {}
            }
        }
        Ok(())
    }
}

pub fn asn1_time_unix(t: &openssl::asn1::Asn1TimeRef) -> Option<i64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    Some(d.days as i64 * 86_400 + d.secs as i64)
}

fn signing_key_usage(cert: &X509) -> bool {
    use x509_parser::prelude::*;
    let Ok(der) = cert.to_der() else { return false };
    let Ok((_, parsed)) = X509Certificate::from_der(&der) else {
        return false;
    };
    match parsed.key_usage() {
        Ok(Some(ku)) => ku.value.digital_signature() || ku.value.non_repudiation(),
        Ok(None) => true,
        Err(_) => false,
    }
}

fn map_error(e: X509VerifyResult) -> ValidationFailure {
    use openssl_sys as ffi;
    match e.as_raw() {
        ffi::X509_V_ERR_CERT_HAS_EXPIRED => ValidationFailure::Expired,
        ffi::X509_V_ERR_CERT_NOT_YET_VALID => ValidationFailure::NotYetValid,
        ffi::X509_V_ERR_CERT_REVOKED => ValidationFailure::Revoked {
            reason: None,
            at: None,
        },
        ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | ffi::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | ffi::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        | ffi::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE => ValidationFailure::UnknownIssuer,
        ffi::X509_V_ERR_INVALID_PURPOSE | ffi::X509_V_ERR_KEYUSAGE_NO_CERTSIGN => {
            ValidationFailure::WrongKeyUsage
        }
        ffi::X509_V_ERR_CERT_SIGNATURE_FAILURE
        | ffi::X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE => ValidationFailure::BadSignature,
        _ => ValidationFailure::Other(e.error_string().to_owned()),
    }
}
