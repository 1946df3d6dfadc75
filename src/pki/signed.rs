//! Checking a CMS SignedData from anyone (PAdES signatures, PKCS#7 signatures, time-stamp
//! tokens): the SignerInfo is taken apart by hand so the content digest can be computed by the
//! caller (streaming over a PDF's byte ranges) and the signature checked with one public-key
//! operation. Malformed input gives a reason, never a panic.

use super::cms::{ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_CERTIFICATE_V2};
use super::der::{self, Reader, Tlv, tag};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::x509::X509;

/// Why a SignedData does not verify, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmsFailure {
    /// Not DER SignedData with one SignerInfo as CMS defines it.
    Malformed(String),
    /// A digest or signature algorithm this verifier does not implement.
    UnsupportedAlgorithm(String),
    /// The signer's certificate is not in the SignedData.
    SignerCertificateMissing,
    /// The messageDigest attribute does not match the content.
    DigestMismatch,
    /// The signature value does not verify with the signer's key.
    BadSignature,
    /// The signing-certificate attribute names another certificate than the one that signed.
    SigningCertificateMismatch,
    /// The signed attributes are not DER (a SET OF out of order): what was signed is not what
    /// a DER-exact reader would hash, and validators disagree on such files.
    SignedAttributesNotDer,
}

impl CmsFailure {
    pub fn code(&self) -> &'static str {
        match self {
            CmsFailure::Malformed(_) => "cms_malformed",
            CmsFailure::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            CmsFailure::SignerCertificateMissing => "signer_certificate_missing",
            CmsFailure::DigestMismatch => "digest_mismatch",
            CmsFailure::BadSignature => "bad_signature_value",
            CmsFailure::SigningCertificateMismatch => "signing_certificate_mismatch",
            CmsFailure::SignedAttributesNotDer => "signed_attributes_not_der",
        }
    }
}

impl std::fmt::Display for CmsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CmsFailure::Malformed(s) => write!(f, "malformed CMS: {s}"),
            CmsFailure::UnsupportedAlgorithm(s) => write!(f, "unsupported algorithm {s}"),
            CmsFailure::SignerCertificateMissing => {
                f.write_str("the signer's certificate is missing")
            }
            CmsFailure::DigestMismatch => f.write_str("the signed digest does not match the data"),
            CmsFailure::BadSignature => f.write_str("the signature value does not verify"),
            CmsFailure::SigningCertificateMismatch => {
                f.write_str("the signing-certificate attribute names another certificate")
            }
            CmsFailure::SignedAttributesNotDer => {
                f.write_str("the signed attributes are not DER encoded")
            }
        }
    }
}

fn malformed(e: der::DerError) -> CmsFailure {
    CmsFailure::Malformed(e.0.to_string())
}

/// The signer's identifier.
#[derive(Debug, Clone)]
pub enum SignerId<'a> {
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    KeyId(&'a [u8]),
}

/// A SignedData with its single SignerInfo taken apart.
#[derive(Debug, Clone)]
pub struct SignedData<'a> {
    pub content_type: String,
    pub content: Option<&'a [u8]>,
    pub certificates: Vec<&'a [u8]>,
    pub crls: Vec<&'a [u8]>,
    pub sid: SignerId<'a>,
    pub digest_oid: String,
    /// The signed attributes as stored (tag [0]); `None` when the signature is over the digest.
    pub signed_attrs: Option<Tlv<'a>>,
    pub signature_oid: String,
    pub signature: &'a [u8],
    pub unsigned_attrs: Option<Tlv<'a>>,
}

/// (attribute type, values) pairs of an attribute set.
pub fn attributes<'a>(set: &Tlv<'a>) -> Result<Vec<(String, Vec<Tlv<'a>>)>, CmsFailure> {
    let mut out = Vec::new();
    let mut r = set.children();
    while !r.is_empty() {
        let attr = r.read_tag(tag::SEQUENCE).map_err(malformed)?;
        let mut a = attr.children();
        let oid = der::oid_to_string(a.read_tag(tag::OID).map_err(malformed)?.content)
            .unwrap_or_default();
        let mut values = Vec::new();
        let mut v = a.read_tag(tag::SET).map_err(malformed)?.children();
        while !v.is_empty() {
            values.push(v.read().map_err(malformed)?);
        }
        out.push((oid, values));
    }
    Ok(out)
}

/// Re-encodes BER (indefinite lengths, constructed strings, long-form lengths) as DER, which
/// some signers emit for the outer layers of a SignedData. DER input comes back unchanged.
pub fn ber_to_der(input: &[u8]) -> Result<Vec<u8>, CmsFailure> {
    let (out, _) = ber_element(input, 0)?;
    Ok(out)
}

/// The length of the first (BER or DER) element of `input`: what follows it in a PDF's
/// /Contents is padding.
pub fn element_len(input: &[u8]) -> Option<usize> {
    ber_element(input, 0).ok().map(|(_, used)| used)
}

fn ber_element(input: &[u8], depth: usize) -> Result<(Vec<u8>, usize), CmsFailure> {
    let bad = |m: &str| CmsFailure::Malformed(m.to_string());
    if depth > 64 {
        return Err(bad("nested too deeply"));
    }
    let t = *input.first().ok_or_else(|| bad("truncated"))?;
    if t & 0x1f == 0x1f {
        return Err(bad("multi-byte tag"));
    }
    let first = *input.get(1).ok_or_else(|| bad("truncated"))?;
    let constructed = t & 0x20 != 0;
    let mut p = 2usize;
    let mut content = Vec::new();
    if first == 0x80 {
        if !constructed {
            return Err(bad("indefinite primitive"));
        }
        loop {
            match input.get(p..p + 2) {
                Some([0, 0]) => {
                    p += 2;
                    break;
                }
                Some(_) => {
                    let (child, used) = ber_element(&input[p..], depth + 1)?;
                    content.extend_from_slice(&child);
                    p += used;
                }
                None => return Err(bad("unterminated indefinite length")),
            }
        }
    } else {
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n > 8 {
                return Err(bad("length too long"));
            }
            let bytes = input.get(2..2 + n).ok_or_else(|| bad("truncated"))?;
            p += n;
            let v = bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
            usize::try_from(v).map_err(|_| bad("length too long"))?
        };
        let end = p.checked_add(len).ok_or_else(|| bad("length overflow"))?;
        let body = input
            .get(p..end)
            .ok_or_else(|| bad("length beyond input"))?;
        if constructed {
            let mut q = 0;
            while q < body.len() {
                let (child, used) = ber_element(&body[q..], depth + 1)?;
                content.extend_from_slice(&child);
                q += used;
            }
        } else {
            content.extend_from_slice(body);
        }
        p = end;
    }
    // A constructed OCTET STRING becomes one primitive string of its pieces.
    if t == 0x24 {
        let mut joined = Vec::new();
        let mut r = Reader::new(&content);
        while !r.is_empty() {
            joined.extend_from_slice(r.read_tag(tag::OCTET_STRING).map_err(malformed)?.content);
        }
        return Ok((der::tlv(tag::OCTET_STRING, &joined), p));
    }
    Ok((der::tlv(t, &content), p))
}

/// Parses a ContentInfo holding SignedData. Bytes after the ContentInfo (the zero padding of a
/// PDF's /Contents) are ignored.
pub fn parse(content_info: &[u8]) -> Result<SignedData<'_>, CmsFailure> {
    let ci = Reader::new(content_info)
        .read_tag(tag::SEQUENCE)
        .map_err(malformed)?;
    let mut r = ci.children();
    let oid = r.read_tag(tag::OID).map_err(malformed)?;
    if der::oid_to_string(oid.content).as_deref() != Some(ID_SIGNED_DATA) {
        return Err(CmsFailure::Malformed("not SignedData".into()));
    }
    let sd = r
        .read_tag(tag::ctx(0))
        .map_err(malformed)?
        .children()
        .read_tag(tag::SEQUENCE)
        .map_err(malformed)?;
    let mut r = sd.children();
    r.read_tag(tag::INTEGER).map_err(malformed)?;
    r.read_tag(tag::SET).map_err(malformed)?;
    let encap = r.read_tag(tag::SEQUENCE).map_err(malformed)?;
    let mut e = encap.children();
    let ct = e.read_tag(tag::OID).map_err(malformed)?;
    let content = match e.optional(tag::ctx(0)).map_err(malformed)? {
        Some(explicit) => Some(
            explicit
                .children()
                .read_tag(tag::OCTET_STRING)
                .map_err(malformed)?
                .content,
        ),
        None => None,
    };
    let mut certificates = Vec::new();
    if let Some(certs) = r.optional(tag::ctx(0)).map_err(malformed)? {
        let mut c = certs.children();
        while !c.is_empty() {
            let t = c.read().map_err(malformed)?;
            // Only X.509 certificates (SEQUENCE); attribute certificates and others are skipped.
            if t.tag == tag::SEQUENCE {
                certificates.push(t.raw);
            }
        }
    }
    let mut crls = Vec::new();
    if let Some(set) = r.optional(tag::ctx(1)).map_err(malformed)? {
        let mut c = set.children();
        while !c.is_empty() {
            let t = c.read().map_err(malformed)?;
            if t.tag == tag::SEQUENCE {
                crls.push(t.raw);
            }
        }
    }
    let infos = r.read_tag(tag::SET).map_err(malformed)?;
    let mut infos_r = infos.children();
    let si = infos_r.read_tag(tag::SEQUENCE).map_err(malformed)?;
    if !infos_r.is_empty() {
        return Err(CmsFailure::Malformed("more than one SignerInfo".into()));
    }
    let mut s = si.children();
    s.read_tag(tag::INTEGER).map_err(malformed)?;
    let sid_t = s.read().map_err(malformed)?;
    let sid = match sid_t.tag {
        tag::SEQUENCE => {
            let mut i = sid_t.children();
            let issuer = i.read_tag(tag::SEQUENCE).map_err(malformed)?.raw;
            let serial = i.read_tag(tag::INTEGER).map_err(malformed)?.content;
            SignerId::IssuerSerial { issuer, serial }
        }
        t if t == tag::ctx_prim(0) => SignerId::KeyId(sid_t.content),
        _ => return Err(CmsFailure::Malformed("unknown signer identifier".into())),
    };
    let digest_oid = algorithm_oid(&s.read_tag(tag::SEQUENCE).map_err(malformed)?)?;
    let signed_attrs = s.optional(tag::ctx(0)).map_err(malformed)?;
    let signature_oid = algorithm_oid(&s.read_tag(tag::SEQUENCE).map_err(malformed)?)?;
    let signature = s.read_tag(tag::OCTET_STRING).map_err(malformed)?.content;
    let unsigned_attrs = s.optional(tag::ctx(1)).map_err(malformed)?;
    Ok(SignedData {
        content_type: der::oid_to_string(ct.content).unwrap_or_default(),
        content,
        certificates,
        crls,
        sid,
        digest_oid,
        signed_attrs,
        signature_oid,
        signature,
        unsigned_attrs,
    })
}

fn algorithm_oid(alg: &Tlv<'_>) -> Result<String, CmsFailure> {
    let mut a = alg.children();
    der::oid_to_string(a.read_tag(tag::OID).map_err(malformed)?.content)
        .ok_or_else(|| CmsFailure::Malformed("bad OID".into()))
}

/// The digest named by an OID; SHA-1 is read (old files use it) and reported weak by callers.
pub fn digest_by_oid(oid: &str) -> Option<MessageDigest> {
    Some(match oid {
        "1.3.14.3.2.26" => MessageDigest::sha1(),
        "2.16.840.1.101.3.4.2.1" => MessageDigest::sha256(),
        "2.16.840.1.101.3.4.2.2" => MessageDigest::sha384(),
        "2.16.840.1.101.3.4.2.3" => MessageDigest::sha512(),
        _ => return None,
    })
}

impl<'a> SignedData<'a> {
    /// The digest algorithm the content must be hashed with.
    pub fn digest(&self) -> Result<MessageDigest, CmsFailure> {
        digest_by_oid(&self.digest_oid)
            .ok_or_else(|| CmsFailure::UnsupportedAlgorithm(self.digest_oid.clone()))
    }

    pub fn is_weak(&self) -> bool {
        self.digest_oid == "1.3.14.3.2.26"
            || matches!(
                self.signature_oid.as_str(),
                "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1"
            )
    }

    /// The signer's certificate, found by the SignerInfo's identifier among those included.
    pub fn signer_certificate(&self) -> Result<X509, CmsFailure> {
        for der in &self.certificates {
            let Some(cert) = super::cache::certificate(der) else {
                continue;
            };
            let matches = match &self.sid {
                SignerId::IssuerSerial { issuer, serial } => {
                    cert.issuer_name().to_der().ok().as_deref() == Some(*issuer)
                        && cert.serial_number().to_bn().ok().map(|b| b.to_vec())
                            == Some(strip_sign(serial).to_vec())
                }
                SignerId::KeyId(id) => cert.subject_key_id().is_some_and(|k| k.as_slice() == *id),
            };
            if matches {
                return Ok(cert);
            }
        }
        Err(CmsFailure::SignerCertificateMissing)
    }

    /// A signed attribute's single value.
    pub fn signed_attribute(&self, oid: &str) -> Result<Option<Tlv<'a>>, CmsFailure> {
        let Some(set) = &self.signed_attrs else {
            return Ok(None);
        };
        let attrs = attributes(set)?;
        let found: Vec<_> = attrs.iter().filter(|(o, _)| o == oid).collect();
        match found.as_slice() {
            [] => Ok(None),
            [(_, values)] if values.len() == 1 => Ok(Some(values[0])),
            _ => Err(CmsFailure::Malformed(format!(
                "attribute {oid} repeated or multi-valued"
            ))),
        }
    }

    /// Unsigned attribute values of one type (a signature time-stamp, for instance).
    pub fn unsigned_attribute(&self, oid: &str) -> Vec<Tlv<'a>> {
        let Some(set) = &self.unsigned_attrs else {
            return vec![];
        };
        attributes(set)
            .unwrap_or_default()
            .into_iter()
            .filter(|(o, _)| o == oid)
            .flat_map(|(_, v)| v)
            .collect()
    }

    pub fn has_signing_certificate_v2(&self) -> bool {
        matches!(
            self.signed_attribute(ID_SIGNING_CERTIFICATE_V2),
            Ok(Some(_))
        )
    }

    /// Checks the signature against `content_digest` (computed by the caller with `digest()`),
    /// returning the signer's certificate.
    pub fn verify(&self, content_digest: &[u8]) -> Result<X509, CmsFailure> {
        let md = self.digest()?;
        let cert = self.signer_certificate()?;
        let key = cert
            .public_key()
            .map_err(|_| CmsFailure::Malformed("unreadable public key".into()))?;
        let signed_digest = match &self.signed_attrs {
            Some(attrs) => {
                let md_attr = self
                    .signed_attribute(ID_MESSAGE_DIGEST)?
                    .ok_or_else(|| CmsFailure::Malformed("no messageDigest attribute".into()))?;
                if md_attr.tag != tag::OCTET_STRING {
                    return Err(CmsFailure::Malformed(
                        "messageDigest is not an OCTET STRING".into(),
                    ));
                }
                if md_attr.content != content_digest {
                    return Err(CmsFailure::DigestMismatch);
                }
                if let Some(ct) = self.signed_attribute(ID_CONTENT_TYPE)?
                    && der::oid_to_string(ct.content).as_deref() != Some(self.content_type.as_str())
                {
                    return Err(CmsFailure::Malformed(
                        "contentType attribute differs".into(),
                    ));
                }
                let mut r = attrs.children();
                let mut prev: Option<&[u8]> = None;
                while !r.is_empty() {
                    let item = r.read().map_err(malformed)?.raw;
                    if prev.is_some_and(|p| der_order(p, item) == std::cmp::Ordering::Greater) {
                        return Err(CmsFailure::SignedAttributesNotDer);
                    }
                    prev = Some(item);
                }
                // The signature is over the attributes with the universal SET tag.
                let mut set = attrs.raw.to_vec();
                set[0] = tag::SET;
                openssl::hash::hash(md, &set)
                    .map_err(|_| CmsFailure::UnsupportedAlgorithm(self.digest_oid.clone()))?
                    .to_vec()
            }
            None => content_digest.to_vec(),
        };
        self.check_signature_algorithm(&key)?;
        self.check_signing_certificate(&cert)?;
        let ok = (|| -> Result<bool, openssl::error::ErrorStack> {
            let mut ctx = PkeyCtx::new(&key)?;
            ctx.verify_init()?;
            if key.id() == Id::RSA
                && let Some(m) = openssl::md::Md::from_nid(md.type_())
            {
                ctx.set_signature_md(m)?;
            }
            ctx.verify(&signed_digest, self.signature)
        })()
        .unwrap_or(false);
        if ok {
            Ok(cert)
        } else {
            Err(CmsFailure::BadSignature)
        }
    }

    /// ESS signing-certificate(-v2): the first certificate hash must be the signer's.
    fn check_signing_certificate(&self, cert: &X509) -> Result<(), CmsFailure> {
        let der = cert
            .to_der()
            .map_err(|_| CmsFailure::Malformed("certificate".into()))?;
        let (value, v2) = match self.signed_attribute(ID_SIGNING_CERTIFICATE_V2)? {
            Some(v) => (v, true),
            None => match self.signed_attribute("1.2.840.113549.1.9.16.2.12")? {
                Some(v) => (v, false),
                None => return Ok(()),
            },
        };
        let certs = value
            .children()
            .read_tag(tag::SEQUENCE)
            .map_err(malformed)?;
        let first = certs
            .children()
            .read_tag(tag::SEQUENCE)
            .map_err(malformed)?;
        let mut r = first.children();
        let md = if v2 && r.peek_tag() == Some(tag::SEQUENCE) {
            let oid = algorithm_oid(&r.read_tag(tag::SEQUENCE).map_err(malformed)?)?;
            digest_by_oid(&oid).ok_or(CmsFailure::UnsupportedAlgorithm(oid))?
        } else if v2 {
            MessageDigest::sha256()
        } else {
            MessageDigest::sha1()
        };
        let hash = r.read_tag(tag::OCTET_STRING).map_err(malformed)?.content;
        let actual =
            openssl::hash::hash(md, &der).map_err(|_| CmsFailure::Malformed("hash".into()))?;
        if actual.as_ref() != hash {
            return Err(CmsFailure::SigningCertificateMismatch);
        }
        Ok(())
    }

    /// The signature algorithm must fit the key (and the digest, when it names one).
    fn check_signature_algorithm(&self, key: &PKey<Public>) -> Result<(), CmsFailure> {
        let unsupported = || CmsFailure::UnsupportedAlgorithm(self.signature_oid.clone());
        let (family, digest): (Id, Option<&str>) = match self.signature_oid.as_str() {
            "1.2.840.113549.1.1.1" => (Id::RSA, None),
            "1.2.840.113549.1.1.5" => (Id::RSA, Some("1.3.14.3.2.26")),
            "1.2.840.113549.1.1.11" => (Id::RSA, Some("2.16.840.1.101.3.4.2.1")),
            "1.2.840.113549.1.1.12" => (Id::RSA, Some("2.16.840.1.101.3.4.2.2")),
            "1.2.840.113549.1.1.13" => (Id::RSA, Some("2.16.840.1.101.3.4.2.3")),
            "1.2.840.10045.2.1" => (Id::EC, None),
            "1.2.840.10045.4.1" => (Id::EC, Some("1.3.14.3.2.26")),
            "1.2.840.10045.4.3.2" => (Id::EC, Some("2.16.840.1.101.3.4.2.1")),
            "1.2.840.10045.4.3.3" => (Id::EC, Some("2.16.840.1.101.3.4.2.2")),
            "1.2.840.10045.4.3.4" => (Id::EC, Some("2.16.840.1.101.3.4.2.3")),
            _ => return Err(unsupported()),
        };
        if key.id() != family {
            return Err(unsupported());
        }
        if let Some(d) = digest
            && d != self.digest_oid
        {
            return Err(unsupported());
        }
        Ok(())
    }
}

/// DER's order for SET OF: encodings compared as octet strings, the shorter padded with zeros.
fn der_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            (
                a.get(i).copied().unwrap_or(0),
                b.get(i).copied().unwrap_or(0),
            )
        })
        .find(|(x, y)| x != y)
        .map(|(x, y)| x.cmp(&y))
        .unwrap_or(std::cmp::Ordering::Equal)
}

fn strip_sign(serial: &[u8]) -> &[u8] {
    let mut s = serial;
    while s.len() > 1 && s[0] == 0 {
        s = &s[1..];
    }
    s
}

/// A time-stamp token checked for integrity: the TSTInfo's signature and the stamped digest.
#[derive(Debug, Clone)]
pub struct CheckedToken {
    pub gen_time: time::OffsetDateTime,
    pub signer: X509,
    pub certificates: Vec<Vec<u8>>,
}

/// Checks a time-stamp token stamps `data_digest` (hashed with the token's own imprint
/// algorithm: `hash_data` computes it) and that its signature verifies.
pub fn check_timestamp(
    token: &[u8],
    hash_data: &dyn Fn(MessageDigest) -> Vec<u8>,
) -> Result<CheckedToken, CmsFailure> {
    let normalised;
    let token = match parse(token) {
        Ok(_) => token,
        Err(_) => {
            normalised = ber_to_der(token)?;
            &normalised[..]
        }
    };
    let sd = parse(token)?;
    if sd.content_type != super::cms::ID_CT_TST_INFO {
        return Err(CmsFailure::Malformed("not a time-stamp token".into()));
    }
    let content = sd
        .content
        .ok_or_else(|| CmsFailure::Malformed("token without TSTInfo".into()))?;
    let tst = Reader::new(content)
        .read_tag(tag::SEQUENCE)
        .map_err(malformed)?;
    let mut r = tst.children();
    r.read_tag(tag::INTEGER).map_err(malformed)?;
    r.read_tag(tag::OID).map_err(malformed)?;
    let imprint = r.read_tag(tag::SEQUENCE).map_err(malformed)?;
    let mut i = imprint.children();
    let alg = algorithm_oid(&i.read_tag(tag::SEQUENCE).map_err(malformed)?)?;
    let hashed = i.read_tag(tag::OCTET_STRING).map_err(malformed)?.content;
    r.read_tag(tag::INTEGER).map_err(malformed)?;
    let gen_time = r
        .read_tag(tag::GENERALIZED_TIME)
        .map_err(malformed)?
        .content;
    let imprint_md = digest_by_oid(&alg).ok_or(CmsFailure::UnsupportedAlgorithm(alg))?;
    if hash_data(imprint_md) != hashed {
        return Err(CmsFailure::DigestMismatch);
    }
    let content_digest = openssl::hash::hash(sd.digest()?, content)
        .map_err(|_| CmsFailure::UnsupportedAlgorithm(sd.digest_oid.clone()))?;
    let signer = sd.verify(&content_digest)?;
    Ok(CheckedToken {
        gen_time: parse_generalized_time(gen_time)
            .ok_or_else(|| CmsFailure::Malformed("bad genTime".into()))?,
        signer,
        certificates: sd.certificates.iter().map(|c| c.to_vec()).collect(),
    })
}

/// "YYYYMMDDHHMMSS[.fff]Z".
pub fn parse_generalized_time(b: &[u8]) -> Option<time::OffsetDateTime> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.strip_suffix('Z')?;
    let (main, _frac) = s.split_once('.').unwrap_or((s, ""));
    if main.len() != 14 || !main.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| main[r].parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        n(0..4)? as i32,
        time::Month::try_from(n(4..6)? as u8).ok()?,
        n(6..8)? as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(n(8..10)? as u8, n(10..12)? as u8, n(12..14)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x80\x00\x00",
            b"\x30\x03\x06\x01\x00",
            &[0u8; 64],
        ] {
            assert!(parse(bytes).is_err());
        }
    }

    #[test]
    fn generalized_time() {
        let t = parse_generalized_time(b"20261128093000.5Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1795858200);
        assert!(parse_generalized_time(b"2026112809300Z").is_none());
    }
}
