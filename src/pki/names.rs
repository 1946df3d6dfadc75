//! Subject names. Chinese names are UTF8String (RFC 5280 §4.1.2.4), so they survive every
//! toolkit; the country and the serial number are PrintableString as the standard requires. A
//! person's certificate never carries the raw ID number, only a keyed one-way pseudonym of it.

use super::{PkiError, PkiResult};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use rcgen::{DistinguishedName, DnType, DnValue};

/// id-at-serialNumber
const SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
/// id-at-organizationIdentifier (ETSI EN 319 412-1 semantics: `NTRCN-` + the USCC)
const ORGANIZATION_IDENTIFIER: &[u64] = &[2, 5, 4, 97];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A natural person: the name from the identity check and a pseudonym of the ID number.
    Person { name: String, pseudonym: String },
    /// An organisation's seal: the company, its USCC and the seal's name (合同专用章). When an
    /// image of the seal is given, the certificate binds it by its SHA-256 in the subject's
    /// `description` attribute (`seal-image-sha256:<hex>`), so the image cannot be swapped under
    /// the same certificate.
    OrganisationSeal {
        organisation: String,
        uscc: String,
        seal_name: String,
        seal_image_sha256: Option<[u8; 32]>,
    },
    /// A service unit (a CA, the time-stamping unit) of the operator.
    Unit {
        common_name: String,
        organisation: String,
    },
}

fn printable(s: &str) -> PkiResult<DnValue> {
    Ok(DnValue::PrintableString(
        rcgen::string::PrintableString::try_from(s.to_owned())
            .map_err(|_| PkiError::Subject(format!("`{s}` is not printable")))?,
    ))
}

fn check(field: &str, v: &str, max: usize) -> PkiResult<()> {
    if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(PkiError::Subject(format!(
            "{field} must be 1–{max} characters"
        )));
    }
    Ok(())
}

impl Subject {
    pub fn distinguished_name(&self) -> PkiResult<DistinguishedName> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, printable("CN")?);
        match self {
            Subject::Person { name, pseudonym } => {
                check("name", name, 64)?;
                dn.push(DnType::CommonName, DnValue::Utf8String(name.clone()));
                dn.push(
                    DnType::CustomDnType(SERIAL_NUMBER.to_vec()),
                    printable(pseudonym)?,
                );
            }
            Subject::OrganisationSeal {
                organisation,
                uscc,
                seal_name,
                seal_image_sha256,
            } => {
                check("organisation", organisation, 64)?;
                check("seal_name", seal_name, 32)?;
                dn.push(
                    DnType::OrganizationName,
                    DnValue::Utf8String(organisation.clone()),
                );
                dn.push(
                    DnType::CustomDnType(ORGANIZATION_IDENTIFIER.to_vec()),
                    printable(&format!("NTRCN-{uscc}"))?,
                );
                dn.push(
                    DnType::OrganizationalUnitName,
                    DnValue::Utf8String(seal_name.clone()),
                );
                let cn: String = format!("{organisation}{seal_name}")
                    .chars()
                    .take(64)
                    .collect();
                dn.push(DnType::CommonName, DnValue::Utf8String(cn));
                if let Some(hash) = seal_image_sha256 {
                    dn.push(
                        DnType::CustomDnType(DESCRIPTION.to_vec()),
                        DnValue::Utf8String(format!("{SEAL_IMAGE_PREFIX}{}", hex(hash))),
                    );
                }
            }
            Subject::Unit {
                common_name,
                organisation,
            } => {
                check("common_name", common_name, 64)?;
                dn.push(
                    DnType::OrganizationName,
                    DnValue::Utf8String(organisation.clone()),
                );
                dn.push(DnType::CommonName, DnValue::Utf8String(common_name.clone()));
            }
        }
        Ok(dn)
    }
}

/// id-at-description, carrying the seal image's hash.
const DESCRIPTION: &[u64] = &[2, 5, 4, 13];
pub const SEAL_IMAGE_PREFIX: &str = "seal-image-sha256:";

/// A keyed one-way pseudonym of an ID number: HMAC-SHA256 under a secret of the service, so the
/// ID number cannot be recovered by trying every plausible number (there are only ~10⁹ of them).
pub fn pseudonym(key: &[u8], id_number: &str) -> PkiResult<String> {
    let k = PKey::hmac(key)?;
    let mut s = Signer::new(MessageDigest::sha256(), &k)?;
    s.update(id_number.as_bytes())?;
    let mac = s.sign_to_vec()?;
    Ok(format!("PSN-{}", hex(&mac[..16]).to_uppercase()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
