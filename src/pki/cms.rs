//! CMS SignedData (RFC 5652), built directly so that each signature costs exactly one private-key
//! operation (OpenSSL's CMS API would add attributes PAdES forbids and could not use an HSM key).
//! Used for RFC 3161 time-stamp tokens and, by the pdf room, for CAdES signatures.

use super::der::{self, tag};
use super::keys::{KeyAlgorithm, SigningKey};
use super::{PkiError, PkiResult};
use time::OffsetDateTime;

pub const ID_DATA: &str = "1.2.840.113549.1.7.1";
pub const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
pub const ID_CT_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
pub const ID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
pub const ID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
pub const ID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
pub const ID_SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
pub const ID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
pub const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";

/// An Attribute: `SEQUENCE { type OID, values SET OF value }`.
pub fn attribute(oid: &str, value: Vec<u8>) -> Vec<u8> {
    der::sequence(&[der::oid_lit(oid), der::set_of(&[value])])
}

/// The issuer Name and serial INTEGER of a certificate, DER, read straight from the encoding
/// (OpenSSL 3 takes ~70 µs to decode a certificate; this takes well under one).
pub fn issuer_and_serial(cert_der: &[u8]) -> PkiResult<(Vec<u8>, Vec<u8>)> {
    let bad = |e: der::DerError| PkiError::Build(format!("certificate: {e}"));
    let cert = der::Reader::new(cert_der)
        .read_tag(tag::SEQUENCE)
        .map_err(bad)?;
    let tbs = cert.children().read_tag(tag::SEQUENCE).map_err(bad)?;
    let mut r = tbs.children();
    r.optional(tag::ctx(0)).map_err(bad)?; // version
    let serial = r.read_tag(tag::INTEGER).map_err(bad)?;
    r.read_tag(tag::SEQUENCE).map_err(bad)?; // signature algorithm
    let issuer = r.read_tag(tag::SEQUENCE).map_err(bad)?;
    Ok((issuer.raw.to_vec(), serial.raw.to_vec()))
}

/// signing-certificate-v2 (RFC 5035) naming the signer's certificate by its SHA-256, with the
/// issuer and serial so that a validator can match it without guessing.
pub fn signing_certificate_v2(cert_der: &[u8]) -> PkiResult<Vec<u8>> {
    let (issuer, serial) = issuer_and_serial(cert_der)?;
    let hash = openssl::sha::sha256(cert_der);
    // GeneralNames ::= SEQUENCE OF GeneralName; directoryName is [4] EXPLICIT Name.
    let general_names = der::sequence(&[der::tlv(tag::ctx(4), &issuer)]);
    let issuer_serial = der::sequence(&[general_names, serial]);
    // hashAlgorithm is omitted: SHA-256 is the DEFAULT.
    let ess_cert_id = der::sequence(&[der::octet_string(&hash), issuer_serial]);
    let value = der::sequence(&[der::sequence(&[ess_cert_id])]);
    Ok(attribute(ID_SIGNING_CERTIFICATE_V2, value))
}

fn signature_algorithm(alg: KeyAlgorithm) -> Vec<u8> {
    match alg {
        KeyAlgorithm::EcdsaP256 => der::algorithm(ECDSA_WITH_SHA256, false),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => der::algorithm(SHA256_WITH_RSA, true),
    }
}

/// What to sign and how.
pub struct SignRequest<'a> {
    /// `id-data` for a detached document signature, `id-ct-TSTInfo` for a time-stamp token.
    pub content_type: &'a str,
    /// Encapsulated content; `None` for a detached signature.
    pub content: Option<&'a [u8]>,
    /// SHA-256 of the content (of the signed byte ranges, for a PDF).
    pub content_digest: [u8; 32],
    pub signer_cert: &'a [u8],
    pub key: &'a dyn SigningKey,
    /// Certificates to include: the signer's first, then its chain.
    pub certificates: Vec<Vec<u8>>,
    /// A signingTime attribute (time-stamp tokens may carry one; PAdES forbids it).
    pub signing_time: Option<OffsetDateTime>,
    /// Unsigned attributes of the SignerInfo.
    pub unsigned_attributes: Vec<Vec<u8>>,
}

/// id-aa-signatureTimeStampToken (RFC 3161 appendix A): a time-stamp token over the signature
/// value, as an unsigned attribute (PAdES B-T).
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: &str = "1.2.840.113549.1.9.16.2.14";

/// Obtains a time-stamp token (ContentInfo DER) for a SHA-256 digest.
pub type Timestamper<'a> = dyn Fn(&[u8; 32]) -> PkiResult<Vec<u8>> + 'a;

/// Builds a ContentInfo holding SignedData with one SignerInfo; one call to `key.sign`.
pub fn sign(req: &SignRequest<'_>) -> PkiResult<Vec<u8>> {
    sign_with_timestamp(req, None)
}

/// As `sign`, and when a time-stamper is given, adds a signature time-stamp over the signature
/// value as an unsigned attribute (still one private-key operation).
pub fn sign_with_timestamp(
    req: &SignRequest<'_>,
    timestamper: Option<&Timestamper<'_>>,
) -> PkiResult<Vec<u8>> {
    let mut signed_attrs = vec![
        attribute(ID_CONTENT_TYPE, der::oid_lit(req.content_type)),
        attribute(ID_MESSAGE_DIGEST, der::octet_string(&req.content_digest)),
        signing_certificate_v2(req.signer_cert)?,
    ];
    if let Some(t) = req.signing_time {
        signed_attrs.push(attribute(ID_SIGNING_TIME, der::generalized_time(t)));
    }
    // The signature covers the attributes encoded as a SET OF (tag 0x31); they are stored with
    // the [0] IMPLICIT tag in the same order.
    let set = der::set_of(&signed_attrs);
    let signature = req.key.sign(&set)?;
    let mut implicit = set.clone();
    implicit[0] = tag::ctx(0);

    let (issuer, serial) = issuer_and_serial(req.signer_cert)?;
    let mut signer_info = vec![
        der::integer(1),
        der::sequence(&[issuer, serial]),
        der::algorithm(ID_SHA256, false),
        implicit,
        signature_algorithm(req.key.algorithm()),
        der::octet_string(&signature),
    ];
    let mut unsigned_attributes = req.unsigned_attributes.clone();
    if let Some(ts) = timestamper {
        let token = ts(&openssl::sha::sha256(&signature))?;
        unsigned_attributes.push(attribute(ID_AA_SIGNATURE_TIME_STAMP_TOKEN, token));
    }
    if !unsigned_attributes.is_empty() {
        let mut unsigned = der::set_of(&unsigned_attributes);
        unsigned[0] = tag::ctx(1);
        signer_info.push(unsigned);
    }
    let encap = match req.content {
        Some(c) => der::sequence(&[
            der::oid_lit(req.content_type),
            der::tlv(tag::ctx(0), &der::octet_string(c)),
        ]),
        None => der::sequence(&[der::oid_lit(req.content_type)]),
    };
    let version = if req.content_type == ID_DATA { 1 } else { 3 };
    let certs: Vec<u8> = req.certificates.concat();
    let signed_data = der::sequence(&[
        der::integer(version),
        der::set_of(&[der::algorithm(ID_SHA256, false)]),
        encap,
        der::tlv(tag::ctx(0), &certs),
        der::set_of(&[der::sequence(&signer_info)]),
    ]);
    Ok(der::sequence(&[
        der::oid_lit(ID_SIGNED_DATA),
        der::tlv(tag::ctx(0), &signed_data),
    ]))
}

/// The parts of a SignedData a verifier needs, located without trusting anything.
pub struct ParsedSignedData<'a> {
    pub content_type: String,
    pub content: Option<&'a [u8]>,
    pub certificates: Vec<&'a [u8]>,
}

pub fn parse_signed_data(content_info: &[u8]) -> PkiResult<ParsedSignedData<'_>> {
    let bad = |e: der::DerError| PkiError::Build(format!("CMS: {e}"));
    let ci = der::Reader::new(content_info)
        .read_tag(tag::SEQUENCE)
        .map_err(bad)?;
    let mut r = ci.children();
    let oid = r.read_tag(tag::OID).map_err(bad)?;
    if der::oid_to_string(oid.content).as_deref() != Some(ID_SIGNED_DATA) {
        return Err(PkiError::Build("CMS: not SignedData".into()));
    }
    let sd = r
        .read_tag(tag::ctx(0))
        .map_err(bad)?
        .children()
        .read_tag(tag::SEQUENCE)
        .map_err(bad)?;
    let mut r = sd.children();
    r.read_tag(tag::INTEGER).map_err(bad)?;
    r.read_tag(tag::SET).map_err(bad)?;
    let encap = r.read_tag(tag::SEQUENCE).map_err(bad)?;
    let mut e = encap.children();
    let ct = e.read_tag(tag::OID).map_err(bad)?;
    let content = match e.optional(tag::ctx(0)).map_err(bad)? {
        Some(explicit) => Some(
            explicit
                .children()
                .read_tag(tag::OCTET_STRING)
                .map_err(bad)?
                .content,
        ),
        None => None,
    };
    let mut certificates = Vec::new();
    if let Some(certs) = r.optional(tag::ctx(0)).map_err(bad)? {
        let mut c = certs.children();
        while !c.is_empty() {
            certificates.push(c.read().map_err(bad)?.raw);
        }
    }
    Ok(ParsedSignedData {
        content_type: der::oid_to_string(ct.content).unwrap_or_default(),
        content,
        certificates,
    })
}
