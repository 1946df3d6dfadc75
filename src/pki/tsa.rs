//! RFC 3161 time stamping: the authority's side (parse a TimeStampReq, answer a TimeStampResp
//! whose token is signed by the time-stamping unit with one key operation) and the client's side
//! (build a request, check a reply: status, imprint, nonce, signature and certificate).

use super::cms::{self, ID_CT_TST_INFO, SignRequest};
use super::der::{self, Tlv, tag};
use super::keys::SigningKey;
use super::{PkiError, PkiResult};
use time::OffsetDateTime;

/// The service's time-stamping policy (under the service's UUID arc, see certs/profiles.toml).
pub const TSA_POLICY: &str = "2.25.80410410568930354608029482457162160361.2.1";

/// Hash algorithms accepted in a request, with their digest lengths.
const HASHES: &[(&str, usize)] = &[
    ("2.16.840.1.101.3.4.2.1", 32),
    ("2.16.840.1.101.3.4.2.2", 48),
    ("2.16.840.1.101.3.4.2.3", 64),
];

/// Largest request accepted (a request is a few dozen bytes).
pub const MAX_REQUEST: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampRequest {
    /// The AlgorithmIdentifier and hashedMessage, re-encoded as the MessageImprint.
    pub message_imprint: Vec<u8>,
    pub hash_oid: String,
    pub hashed_message: Vec<u8>,
    pub policy: Option<String>,
    /// The nonce INTEGER, whole encoding, echoed in the token.
    pub nonce: Option<Vec<u8>>,
    pub cert_req: bool,
}

/// Why a request was refused (PKIFailureInfo bit numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    BadAlg = 0,
    BadRequest = 2,
    BadDataFormat = 5,
    UnacceptedPolicy = 15,
}

pub fn parse_request(bytes: &[u8]) -> Result<TimeStampRequest, Failure> {
    if bytes.len() > MAX_REQUEST {
        return Err(Failure::BadRequest);
    }
    let bad = |_| Failure::BadDataFormat;
    let mut top = der::Reader::new(bytes);
    let req = top.read_tag(tag::SEQUENCE).map_err(bad)?;
    if !top.is_empty() {
        return Err(Failure::BadDataFormat);
    }
    let mut r = req.children();
    let version = r.read_tag(tag::INTEGER).map_err(bad)?;
    if version.content != [1] {
        return Err(Failure::BadRequest);
    }
    let imprint = r.read_tag(tag::SEQUENCE).map_err(bad)?;
    let mut i = imprint.children();
    let alg = i.read_tag(tag::SEQUENCE).map_err(bad)?;
    let hash_oid = der::oid_to_string(alg.children().read_tag(tag::OID).map_err(bad)?.content)
        .ok_or(Failure::BadDataFormat)?;
    let hashed = i.read_tag(tag::OCTET_STRING).map_err(bad)?;
    let expected = HASHES
        .iter()
        .find(|(o, _)| *o == hash_oid)
        .map(|(_, n)| *n)
        .ok_or(Failure::BadAlg)?;
    if hashed.content.len() != expected {
        return Err(Failure::BadDataFormat);
    }
    let mut policy = None;
    let mut nonce = None;
    let mut cert_req = false;
    if let Some(p) = r.optional(tag::OID).map_err(bad)? {
        policy = Some(der::oid_to_string(p.content).ok_or(Failure::BadDataFormat)?);
    }
    if let Some(n) = r.optional(tag::INTEGER).map_err(bad)? {
        if n.content.is_empty() || n.content.len() > 32 {
            return Err(Failure::BadDataFormat);
        }
        nonce = Some(n.raw.to_vec());
    }
    if let Some(b) = r.optional(tag::BOOLEAN).map_err(bad)? {
        cert_req = b.content.first().is_some_and(|v| *v != 0);
    }
    if r.optional(tag::ctx(0)).map_err(bad)?.is_some() {
        // Extensions are not supported; RFC 3161 says refuse what we do not understand.
        return Err(Failure::BadRequest);
    }
    if !r.is_empty() {
        return Err(Failure::BadDataFormat);
    }
    if policy.as_deref().is_some_and(|p| p != TSA_POLICY) {
        return Err(Failure::UnacceptedPolicy);
    }
    Ok(TimeStampRequest {
        message_imprint: imprint.raw.to_vec(),
        hash_oid,
        hashed_message: hashed.content.to_vec(),
        policy,
        nonce,
        cert_req,
    })
}

/// A TimeStampResp refusing the request.
pub fn rejection(failure: Failure) -> Vec<u8> {
    // PKIFailureInfo is a BIT STRING; bit n is (0x80 >> n%8) in byte n/8.
    let bit = failure as usize;
    let mut bits = vec![0u8; bit / 8 + 1];
    bits[bit / 8] = 0x80 >> (bit % 8);
    let unused = (7 - bit % 8) as u8;
    let mut content = vec![unused];
    content.extend_from_slice(&bits);
    let status = der::sequence(&[der::integer(2), der::tlv(tag::BIT_STRING, &content)]);
    der::sequence(&[status])
}

/// The time-stamping unit: its certificate, chain and key.
pub struct TimeStampUnit<'a> {
    pub cert_der: &'a [u8],
    /// Issuing CA first; included when the request asks for certificates.
    pub chain: &'a [Vec<u8>],
    pub key: &'a dyn SigningKey,
}

/// Answers a parsed request with a granted TimeStampResp.
pub fn respond(
    unit: &TimeStampUnit<'_>,
    req: &TimeStampRequest,
    now: OffsetDateTime,
) -> PkiResult<Vec<u8>> {
    let mut serial = [0u8; 16];
    openssl::rand::rand_bytes(&mut serial)?;
    serial[0] &= 0x7f;
    let mut tst = vec![
        der::integer(1),
        der::oid_lit(TSA_POLICY),
        req.message_imprint.clone(),
        der::integer_unsigned(&serial),
        der::generalized_time(now),
        // accuracy: one second
        der::sequence(&[der::integer(1)]),
    ];
    if let Some(n) = &req.nonce {
        tst.push(n.clone());
    }
    let tst_info = der::sequence(&tst);
    let mut certificates = vec![unit.cert_der.to_vec()];
    if req.cert_req {
        certificates.extend(unit.chain.iter().cloned());
    }
    let token = cms::sign(&SignRequest {
        content_type: ID_CT_TST_INFO,
        content: Some(&tst_info),
        content_digest: openssl::sha::sha256(&tst_info),
        signer_cert: unit.cert_der,
        key: unit.key,
        // The signer's certificate is always included so that relying parties (and `openssl ts
        // -verify`) can check the ESS signing-certificate binding.
        certificates,
        signing_time: Some(now),
        unsigned_attributes: vec![],
    })?;
    let status = der::sequence(&[der::integer(0)]);
    Ok(der::sequence(&[status, token]))
}

/// A request for the SHA-256 digest `digest`, with a random nonce; returns it with the nonce.
pub fn request(digest: &[u8; 32], cert_req: bool) -> PkiResult<(Vec<u8>, Vec<u8>)> {
    let mut nonce = [0u8; 8];
    openssl::rand::rand_bytes(&mut nonce)?;
    let nonce = der::integer_unsigned(&nonce);
    let imprint = der::sequence(&[
        der::algorithm(HASHES[0].0, false),
        der::octet_string(digest),
    ]);
    let mut parts = vec![der::integer(1), imprint, nonce.clone()];
    if cert_req {
        parts.push(der::tlv(tag::BOOLEAN, &[0xff]));
    }
    Ok((der::sequence(&parts), nonce))
}

/// The facts of a checked time-stamp token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub gen_time: String,
    pub serial: Vec<u8>,
    pub policy: String,
    pub hashed_message: Vec<u8>,
    pub nonce: Option<Vec<u8>>,
    pub signer_cert: Vec<u8>,
}

/// Parses a TimeStampResp, requires status granted, and returns the token (ContentInfo) DER.
pub fn token_from_response(resp: &[u8]) -> PkiResult<Vec<u8>> {
    let bad = |e: der::DerError| PkiError::Build(format!("time-stamp reply: {e}"));
    let top = der::Reader::new(resp)
        .read_tag(tag::SEQUENCE)
        .map_err(bad)?;
    let mut r = top.children();
    let status = r.read_tag(tag::SEQUENCE).map_err(bad)?;
    let code = status.children().read_tag(tag::INTEGER).map_err(bad)?;
    if code.content != [0] && code.content != [1] {
        return Err(PkiError::Build(format!(
            "time-stamp refused (status {:?})",
            code.content
        )));
    }
    let token: Tlv<'_> = r.read_tag(tag::SEQUENCE).map_err(bad)?;
    Ok(token.raw.to_vec())
}

/// Reads the TSTInfo of a token. The token's signature is checked separately (by the verifier
/// that also validates the unit's certificate).
pub fn token_info(token: &[u8]) -> PkiResult<TokenInfo> {
    let bad = |e: der::DerError| PkiError::Build(format!("time-stamp token: {e}"));
    let sd = cms::parse_signed_data(token)?;
    if sd.content_type != ID_CT_TST_INFO {
        return Err(PkiError::Build("not a time-stamp token".into()));
    }
    let content = sd
        .content
        .ok_or_else(|| PkiError::Build("token without TSTInfo".into()))?;
    let tst = der::Reader::new(content)
        .read_tag(tag::SEQUENCE)
        .map_err(bad)?;
    let mut r = tst.children();
    r.read_tag(tag::INTEGER).map_err(bad)?;
    let policy = der::oid_to_string(r.read_tag(tag::OID).map_err(bad)?.content).unwrap_or_default();
    let imprint = r.read_tag(tag::SEQUENCE).map_err(bad)?;
    let mut i = imprint.children();
    i.read_tag(tag::SEQUENCE).map_err(bad)?;
    let hashed_message = i.read_tag(tag::OCTET_STRING).map_err(bad)?.content.to_vec();
    let serial = r.read_tag(tag::INTEGER).map_err(bad)?.content.to_vec();
    let gen_time = String::from_utf8_lossy(r.read_tag(tag::GENERALIZED_TIME).map_err(bad)?.content)
        .into_owned();
    r.optional(tag::SEQUENCE).map_err(bad)?; // accuracy
    r.optional(tag::BOOLEAN).map_err(bad)?; // ordering
    let nonce = r
        .optional(tag::INTEGER)
        .map_err(bad)?
        .map(|n| n.raw.to_vec());
    let signer_cert = sd
        .certificates
        .first()
        .map(|c| c.to_vec())
        .ok_or_else(|| PkiError::Build("token without the unit's certificate".into()))?;
    Ok(TokenInfo {
        gen_time,
        serial,
        policy,
        hashed_message,
        nonce,
        signer_cert,
    })
}

/// Checks a token's CMS signature against its embedded certificate and that it stamps `digest`
/// (and carries `nonce`, when given). Trust in the unit's certificate is the caller's decision.
pub fn check_token(token: &[u8], digest: &[u8], nonce: Option<&[u8]>) -> PkiResult<TokenInfo> {
    use openssl::cms::{CMSOptions, CmsContentInfo};
    let info = token_info(token)?;
    if info.hashed_message != digest {
        return Err(PkiError::Build("the token stamps another digest".into()));
    }
    if let Some(n) = nonce
        && info.nonce.as_deref() != Some(n)
    {
        return Err(PkiError::Build(
            "the token does not echo the request's nonce".into(),
        ));
    }
    let mut cms = CmsContentInfo::from_der(token)?;
    let store = openssl::x509::store::X509StoreBuilder::new()?.build();
    let mut out = Vec::new();
    // NO_SIGNER_CERT_VERIFY: the signature is checked here; the chain by the caller's policy.
    cms.verify(
        None,
        Some(&store),
        None,
        Some(&mut out),
        CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY,
    )?;
    Ok(info)
}

/// A client for any RFC 3161 time-stamping authority reachable over HTTP(S).
#[derive(Clone, Debug)]
pub struct TsaClient {
    url: String,
    http: reqwest::Client,
}

impl TsaClient {
    pub fn new(url: impl Into<String>, timeout: std::time::Duration) -> PkiResult<TsaClient> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| PkiError::Build(format!("HTTP client: {e}")))?;
        Ok(TsaClient {
            url: url.into(),
            http,
        })
    }

    /// Time-stamps `digest` (SHA-256) and returns the checked token.
    pub async fn timestamp(&self, digest: &[u8; 32]) -> PkiResult<(Vec<u8>, TokenInfo)> {
        let (req, nonce) = request(digest, true)?;
        let resp = self
            .http
            .post(&self.url)
            .header("content-type", "application/timestamp-query")
            .body(req)
            .send()
            .await
            .map_err(|e| PkiError::Build(format!("time-stamping authority unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(PkiError::Build(format!(
                "time-stamping authority answered {}",
                resp.status()
            )));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| PkiError::Build(format!("time-stamp reply: {e}")))?;
        // A reply is a few kilobytes; anything far larger is not a reply.
        if body.len() > 256 * 1024 {
            return Err(PkiError::Build("time-stamp reply too large".into()));
        }
        let token = token_from_response(&body)?;
        let info = check_token(&token, digest, Some(&nonce))?;
        Ok((token, info))
    }
}
