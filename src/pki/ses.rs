//! GB/T 38540-2020 electronic seals (电子印章, "V4"): the seal data a seal maker (制章者) signs,
//! and the seal signature (电子签章) a holder makes with it over a document.
//!
//! What is signed was checked against real seals (../shared/NOTES-GM.md §1.2, §2.4):
//! the seal maker signs DER(SES_SealInfo); the holder signs DER(TBS_Sign). Seals of GM/T
//! 0031-2014 ("V1"), V4 and GM/T 0031-2025 ("V5") are parsed; V4 is written. Signatures are
//! read as DER or raw r ‖ s. The reader never panics and bounds nothing by itself: callers hand
//! it bytes already bounded in size.

use super::der::{self, Reader, Tlv, tag};
use super::gm::GmAuthority;
use super::sm2::{self, OID_SM2_SM3};
use super::{PkiError, PkiResult};
use time::OffsetDateTime;

const IA5: u8 = 0x16;
const UTF8: u8 = tag::UTF8_STRING;
const UTC_TIME: u8 = 0x17;
const PRINTABLE: u8 = 0x13;

/// The seal's picture, drawn where the seal is stamped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealPicture {
    /// "PNG", "SVG", "ofd", …
    pub kind: String,
    pub data: Vec<u8>,
    pub width_mm: u32,
    pub height_mm: u32,
}

/// What a new seal says about itself.
#[derive(Clone, Debug)]
pub struct SealSpec {
    pub vendor: String,
    pub es_id: String,
    /// 印章类型 (business-defined; the samples use 3 for an organisation's special seal).
    pub seal_type: i64,
    pub name: String,
    /// The certificates allowed to use the seal (DER).
    pub signer_certs: Vec<Vec<u8>>,
    pub created: OffsetDateTime,
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    pub picture: SealPicture,
}

fn ia5(s: &str) -> Vec<u8> {
    der::tlv(IA5, s.as_bytes())
}

fn bits(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len() + 1);
    v.push(0);
    v.extend_from_slice(b);
    der::tlv(tag::BIT_STRING, &v)
}

/// DER(SES_SealInfo) of a V4 seal.
pub fn seal_info_der(spec: &SealSpec) -> Vec<u8> {
    let header = der::sequence(&[ia5("ES"), der::integer(4), ia5(&spec.vendor)]);
    let certs: Vec<Vec<u8>> = spec
        .signer_certs
        .iter()
        .map(|c| der::octet_string(c))
        .collect();
    let property = der::sequence(&[
        der::integer(spec.seal_type as u64),
        der::tlv(UTF8, spec.name.as_bytes()),
        der::integer(1),
        der::sequence(&certs),
        der::generalized_time(spec.created),
        der::generalized_time(spec.valid_from),
        der::generalized_time(spec.valid_to),
    ]);
    let picture = der::sequence(&[
        ia5(&spec.picture.kind),
        der::octet_string(&spec.picture.data),
        der::integer(spec.picture.width_mm as u64),
        der::integer(spec.picture.height_mm as u64),
    ]);
    der::sequence(&[header, ia5(&spec.es_id), property, picture])
}

/// A V4 SESeal: the seal data signed by the seal maker.
pub fn make_seal(spec: &SealSpec, maker: &GmAuthority) -> PkiResult<Vec<u8>> {
    if spec.valid_to <= spec.valid_from {
        return Err(PkiError::Build(
            "a seal's validity must not be empty".into(),
        ));
    }
    let info = seal_info_der(spec);
    let sig = maker.key.sign(&info)?;
    Ok(der::sequence(&[
        info,
        der::octet_string(&maker.cert_der),
        der::oid_lit(OID_SM2_SM3),
        bits(&sig),
    ]))
}

/// A V4 SES_Signature over a document whose digest is `data_hash` (for OFD: SM3 of
/// Signature.xml), made by `signer` with `seal` (a DER SESeal); with `tsa`, an SM2 time-stamp
/// token over SM3 of the signature value in `timeStamp [0]` (EXPLICIT, as ofdrw writes it).
pub fn sign(
    seal: &[u8],
    signer: &GmAuthority,
    at: OffsetDateTime,
    data_hash: &[u8],
    property_info: &str,
    tsa: Option<&GmAuthority>,
) -> PkiResult<Vec<u8>> {
    let tbs = der::sequence(&[
        der::integer(4),
        seal.to_vec(),
        der::generalized_time(at),
        bits(data_hash),
        ia5(property_info),
    ]);
    let sig = signer.key.sign(&tbs)?;
    let mut parts = vec![
        tbs,
        der::octet_string(&signer.cert_der),
        der::oid_lit(OID_SM2_SM3),
        bits(&sig),
    ];
    if let Some(tsa) = tsa {
        let token = super::gm_tsa::token(tsa, &sm2::sm3(&sig), at)?;
        parts.push(der::tlv(tag::ctx(0), &bits(&token)));
    }
    Ok(der::sequence(&parts))
}

/// How a seal names the certificates allowed to use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertList {
    Certificates(Vec<Vec<u8>>),
    /// (digest algorithm as written, digest)
    Digests(Vec<(String, Vec<u8>)>),
}

/// A parsed seal (SESeal) of any version.
#[derive(Clone, Debug)]
pub struct ParsedSeal {
    pub version: i64,
    pub vendor: String,
    pub es_id: String,
    pub seal_type: i64,
    pub name: String,
    pub cert_list: CertList,
    pub created: Option<OffsetDateTime>,
    pub valid_from: Option<OffsetDateTime>,
    pub valid_to: Option<OffsetDateTime>,
    pub picture: SealPicture,
    /// DER(SES_SealInfo): what the maker signed (V4/V5).
    pub signed_part: Vec<u8>,
    pub maker_cert: Vec<u8>,
    pub algorithm: String,
    pub signature: Vec<u8>,
}

/// A parsed seal signature (SES_Signature) of any version.
#[derive(Clone, Debug)]
pub struct ParsedSignature {
    pub version: i64,
    pub seal: ParsedSeal,
    pub time: Option<OffsetDateTime>,
    pub data_hash: Vec<u8>,
    pub property_info: String,
    /// DER(TBS_Sign): what the signer signed.
    pub signed_part: Vec<u8>,
    pub signer_cert: Vec<u8>,
    pub algorithm: String,
    pub signature: Vec<u8>,
    pub timestamp: Option<Vec<u8>>,
}

fn err(what: &'static str) -> PkiError {
    PkiError::Build(format!("seal data: {what}"))
}

fn int(t: Tlv<'_>) -> PkiResult<i64> {
    let t = t
        .expect(tag::INTEGER)
        .map_err(|_| err("expected an integer"))?;
    if t.content.is_empty() || t.content.len() > 8 {
        return Err(err("integer out of range"));
    }
    Ok(t.content
        .iter()
        .fold(if t.content[0] & 0x80 != 0 { -1i64 } else { 0 }, |a, b| {
            (a << 8) | *b as i64
        }))
}

fn text(t: Tlv<'_>) -> PkiResult<String> {
    match t.tag {
        IA5 | UTF8 | PRINTABLE => String::from_utf8(t.content.to_vec()).map_err(|_| err("text")),
        _ => Err(err("expected a string")),
    }
}

fn time_of(t: Tlv<'_>) -> Option<OffsetDateTime> {
    match t.tag {
        tag::GENERALIZED_TIME => super::signed::parse_generalized_time(t.content),
        UTC_TIME => {
            // YYMMDDHHMM[SS]Z
            let s = std::str::from_utf8(t.content).ok()?;
            let yy: i32 = s.get(0..2)?.parse().ok()?;
            let year = if yy < 50 { 2000 + yy } else { 1900 + yy };
            super::signed::parse_generalized_time(format!("{year}{}", s.get(2..)?).as_bytes())
        }
        _ => None,
    }
}

fn bit_content(t: Tlv<'_>) -> PkiResult<Vec<u8>> {
    let t = t
        .expect(tag::BIT_STRING)
        .map_err(|_| err("expected a bit string"))?;
    match t.content.split_first() {
        Some((0, rest)) => Ok(rest.to_vec()),
        _ => Err(err("bit string with unused bits")),
    }
}

fn oid(t: Tlv<'_>) -> PkiResult<String> {
    let t = t.expect(tag::OID).map_err(|_| err("expected an OID"))?;
    der::oid_to_string(t.content).ok_or_else(|| err("bad OID"))
}

fn octets(t: Tlv<'_>) -> PkiResult<Vec<u8>> {
    Ok(t.expect(tag::OCTET_STRING)
        .map_err(|_| err("expected an octet string"))?
        .content
        .to_vec())
}

fn next<'a>(r: &mut Reader<'a>) -> PkiResult<Tlv<'a>> {
    r.read().map_err(|e| err(e.0))
}

fn parse_seal_info(info: Tlv<'_>, v1: bool) -> PkiResult<ParsedSeal> {
    let mut r = info.children();
    let header = next(&mut r)?
        .expect(tag::SEQUENCE)
        .map_err(|_| err("header"))?;
    let mut h = header.children();
    if text(next(&mut h)?)? != "ES" {
        return Err(err("header id is not ES"));
    }
    let version = int(next(&mut h)?)?;
    let vendor = text(next(&mut h)?)?;
    let es_id = text(next(&mut r)?)?;
    let property = next(&mut r)?
        .expect(tag::SEQUENCE)
        .map_err(|_| err("property"))?;
    let mut p = property.children();
    let seal_type = int(next(&mut p)?)?;
    let name = text(next(&mut p)?)?;
    let list_type = if v1 { 1 } else { int(next(&mut p)?)? };
    let list = next(&mut p)?
        .expect(tag::SEQUENCE)
        .map_err(|_| err("cert list"))?;
    let mut l = list.children();
    let cert_list = if list_type == 2 {
        let mut v = vec![];
        while !l.is_empty() {
            let item = next(&mut l)?;
            let mut c = item.children();
            v.push((text(next(&mut c)?)?, octets(next(&mut c)?)?));
        }
        CertList::Digests(v)
    } else {
        let mut v = vec![];
        while !l.is_empty() {
            v.push(octets(next(&mut l)?)?);
        }
        CertList::Certificates(v)
    };
    let created = time_of(next(&mut p)?);
    let valid_from = time_of(next(&mut p)?);
    let valid_to = time_of(next(&mut p)?);
    let pic = next(&mut r)?
        .expect(tag::SEQUENCE)
        .map_err(|_| err("picture"))?;
    let mut pr = pic.children();
    let picture = SealPicture {
        kind: text(next(&mut pr)?)?,
        data: octets(next(&mut pr)?)?,
        width_mm: int(next(&mut pr)?)?.clamp(0, 10_000) as u32,
        height_mm: int(next(&mut pr)?)?.clamp(0, 10_000) as u32,
    };
    Ok(ParsedSeal {
        version,
        vendor,
        es_id,
        seal_type,
        name,
        cert_list,
        created,
        valid_from,
        valid_to,
        picture,
        signed_part: info.raw.to_vec(),
        maker_cert: vec![],
        algorithm: String::new(),
        signature: vec![],
    })
}

/// Parses a SESeal: V4/V5 (4 or 5 fields) or V1 (SES_SealInfo + SES_SignInfo).
pub fn parse_seal(t: Tlv<'_>) -> PkiResult<ParsedSeal> {
    let t = t.expect(tag::SEQUENCE).map_err(|_| err("seal"))?;
    let fields: Vec<Tlv<'_>> = {
        let mut r = t.children();
        let mut v = vec![];
        while !r.is_empty() && v.len() < 8 {
            v.push(next(&mut r)?);
        }
        v
    };
    match fields.len() {
        2 => {
            let mut seal = parse_seal_info(fields[0], true)?;
            let mut s = fields[1].children();
            seal.maker_cert = octets(next(&mut s)?)?;
            seal.algorithm = oid(next(&mut s)?)?;
            seal.signature = bit_content(next(&mut s)?)?;
            // GM/T 0031-2014: the maker signed SEQUENCE { sealInfo, cert, algorithm }.
            seal.signed_part = der::sequence(&[
                fields[0].raw.to_vec(),
                der::octet_string(&seal.maker_cert),
                der::oid_lit(&seal.algorithm),
            ]);
            Ok(seal)
        }
        4 | 5 => {
            let mut seal = parse_seal_info(fields[0], false)?;
            seal.maker_cert = octets(fields[1])?;
            seal.algorithm = oid(fields[2])?;
            seal.signature = bit_content(fields[3])?;
            Ok(seal)
        }
        _ => Err(err("unknown seal layout")),
    }
}

/// Parses a SES_Signature of any version.
pub fn parse_signature(bytes: &[u8]) -> PkiResult<ParsedSignature> {
    let mut outer = Reader::new(bytes);
    let top = next(&mut outer)?
        .expect(tag::SEQUENCE)
        .map_err(|_| err("signature"))?;
    if !outer.is_empty() {
        return Err(err("bytes after the signature"));
    }
    let mut r = top.children();
    let tbs = next(&mut r)?
        .expect(tag::SEQUENCE)
        .map_err(|_| err("TBS_Sign"))?;
    let mut t = tbs.children();
    let version = int(next(&mut t)?)?;
    let seal = parse_seal(next(&mut t)?)?;
    let time_field = next(&mut t)?;
    let time = match time_field.tag {
        // V1: a BIT STRING holding a time stamp or a UTCTime text.
        tag::BIT_STRING => None,
        _ => time_of(time_field),
    };
    let data_hash = bit_content(next(&mut t)?)?;
    let property_info = text(next(&mut t)?)?;
    let (signer_cert, algorithm) = if version < 4 && !t.is_empty() {
        // V1 keeps the signer's certificate and algorithm inside TBS_Sign.
        (octets(next(&mut t)?)?, oid(next(&mut t)?)?)
    } else {
        (octets(next(&mut r)?)?, oid(next(&mut r)?)?)
    };
    let signature = bit_content(next(&mut r)?)?;
    let timestamp = match r.read() {
        Ok(ts) if ts.tag == tag::ctx(0) => {
            // ofdrw writes [0] EXPLICIT BIT STRING; accept IMPLICIT too.
            let mut inner = ts.children();
            match inner.read() {
                Ok(b) if b.tag == tag::BIT_STRING => Some(bit_content(b)?),
                _ => Some(ts.content.to_vec()),
            }
        }
        Ok(ts) if ts.tag == tag::ctx_prim(0) => Some(ts.content.get(1..).unwrap_or(&[]).to_vec()),
        _ => None,
    };
    Ok(ParsedSignature {
        version,
        seal,
        time,
        data_hash,
        property_info,
        signed_part: tbs.raw.to_vec(),
        signer_cert,
        algorithm,
        signature,
        timestamp,
    })
}

/// Whether an SM2 signature by the key of the certificate `cert_der` over `message` is valid.
pub fn cert_signed(cert_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    // The SPKI's bytes as they stand in the certificate (a pure-Rust parse; OpenSSL's X.509
    // decoding is the slower part of a verification).
    match x509_parser::parse_x509_certificate(cert_der) {
        Ok((_, c)) => sm2::verify(c.public_key().raw, message, signature),
        Err(_) => false,
    }
}

/// Whether the seal maker's signature on a seal is valid. Remembered by SHA-256 of the seal
/// data, signature and maker certificate: every document sealed with one seal carries the same
/// seal data, so this SM2 verification is made once per seal, not once per document.
pub fn seal_signed(seal: &ParsedSeal) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<[u8; 32], bool>>> = OnceLock::new();
    let mut h = openssl::sha::Sha256::new();
    for part in [&seal.signed_part, &seal.signature, &seal.maker_cert] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(seal.algorithm.as_bytes());
    let k = h.finish();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(v) = seen.lock().ok().and_then(|m| m.get(&k).copied()) {
        return v;
    }
    let v = seal.algorithm == OID_SM2_SM3
        && cert_signed(&seal.maker_cert, &seal.signed_part, &seal.signature);
    if let Ok(mut m) = seen.lock() {
        if m.len() >= 4096 {
            m.clear();
        }
        m.insert(k, v);
    }
    v
}

/// Whether `cert_der` is among those the seal lets use it (by certificate or by digest).
pub fn allows(seal: &ParsedSeal, cert_der: &[u8]) -> bool {
    match &seal.cert_list {
        CertList::Certificates(v) => v.iter().any(|c| c == cert_der),
        CertList::Digests(v) => v.iter().any(|(alg, d)| {
            let a = alg.to_ascii_uppercase();
            let got = match a.as_str() {
                "SM3" | "1.2.156.10197.1.401" => sm2::sm3(cert_der).to_vec(),
                "SHA1" | "SHA-1" => openssl::sha::sha1(cert_der).to_vec(),
                "SHA256" | "SHA-256" => openssl::sha::sha256(cert_der).to_vec(),
                _ => return false,
            };
            &got == d
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::gm::{GmAuthority, GmHierarchy};

    /// An SM2 hierarchy and a seal holder's certificate from it (the centre's or a developer's).
    fn hierarchy_and_holder(
        now: OffsetDateTime,
        centre: bool,
        organisation: &str,
        seal_name: &str,
    ) -> (GmHierarchy, GmAuthority) {
        let h = GmHierarchy::create(now, "http://127.0.0.1/pki/crl").unwrap();
        let holder = h
            .issue_signer(
                centre,
                organisation,
                seal_name,
                now,
                2,
                "http://127.0.0.1/pki/crl",
            )
            .unwrap();
        (h, holder)
    }

    #[test]
    fn seal_and_signature_round_trip() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let (h, holder) =
            hierarchy_and_holder(now, true, "东莞市不动产登记中心", "不动产登记专用章");
        let spec = SealSpec {
            vendor: "VIRTUALWINDOW".into(),
            es_id: "44190000000001".into(),
            seal_type: 3,
            name: "东莞市不动产登记中心不动产登记专用章".into(),
            signer_certs: vec![holder.cert_der.clone()],
            created: now,
            valid_from: now,
            valid_to: now + time::Duration::days(365),
            picture: SealPicture {
                kind: "SVG".into(),
                data: b"<svg/>".to_vec(),
                width_mm: 40,
                height_mm: 40,
            },
        };
        let seal = make_seal(&spec, &h.seal_maker).unwrap();
        let hash = sm2::sm3(b"Signature.xml");
        let sig = sign(
            &seal,
            &holder,
            now,
            &hash,
            "/Doc_0/Signs/Sign_0/Signature.xml",
            Some(&h.tsa),
        )
        .unwrap();
        let p = parse_signature(&sig).unwrap();
        assert_eq!(p.version, 4);
        assert_eq!(p.seal.name, spec.name);
        assert_eq!(p.seal.es_id, spec.es_id);
        assert_eq!(p.time, Some(now));
        assert_eq!(p.seal.valid_to, Some(spec.valid_to));
        assert_eq!(p.data_hash, hash);
        assert!(allows(&p.seal, &holder.cert_der));
        assert!(!allows(&p.seal, &h.seal_maker.cert_der));
        assert!(cert_signed(&p.signer_cert, &p.signed_part, &p.signature));
        assert!(cert_signed(
            &p.seal.maker_cert,
            &p.seal.signed_part,
            &p.seal.signature
        ));
        assert!(!cert_signed(
            &p.signer_cert,
            &p.seal.signed_part,
            &p.signature
        ));
    }

    /// UTCTime, as V1 seals write their times (before 2050).
    fn utc(t: OffsetDateTime) -> Vec<u8> {
        let d = crate::pki::gm::time_der(t);
        assert_eq!(d[0], UTC_TIME);
        d
    }

    /// GM/T 0031-2014 ("V1"): the maker signs SEQUENCE { sealInfo, cert, algorithm }, the
    /// signer's certificate and algorithm sit inside TBS_Sign, times are UTCTime.
    #[test]
    fn version_1_seals_parse_and_verify() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let (h, holder) = hierarchy_and_holder(now, false, "东莞市云境置业有限公司", "合同专用章");
        let info = der::sequence(&[
            der::sequence(&[ia5("ES"), der::integer(1), ia5("OLDVENDOR")]),
            ia5("V1-0001"),
            der::sequence(&[
                der::integer(1),
                der::tlv(UTF8, "合同专用章".as_bytes()),
                der::sequence(&[der::octet_string(&holder.cert_der)]),
                utc(now),
                utc(now),
                utc(now + time::Duration::days(30)),
            ]),
            der::sequence(&[
                ia5("PNG"),
                der::octet_string(b"png"),
                der::integer(40),
                der::integer(40),
            ]),
        ]);
        let maker_alg = der::oid_lit(OID_SM2_SM3);
        let to_sign = der::sequence(&[
            info.clone(),
            der::octet_string(&h.seal_maker.cert_der),
            maker_alg.clone(),
        ]);
        let seal = der::sequence(&[
            info,
            der::sequence(&[
                der::octet_string(&h.seal_maker.cert_der),
                maker_alg.clone(),
                bits(&h.seal_maker.key.sign(&to_sign).unwrap()),
            ]),
        ]);
        let tbs = der::sequence(&[
            der::integer(1),
            seal,
            bits(&utc(now)),
            bits(&sm2::sm3(b"doc")),
            ia5("/Doc_0/Signs/Sign_0/Signature.xml"),
            der::octet_string(&holder.cert_der),
            maker_alg,
        ]);
        let sig = der::sequence(&[tbs.clone(), bits(&holder.key.sign(&tbs).unwrap())]);
        let p = parse_signature(&sig).unwrap();
        assert_eq!((p.version, p.seal.version), (1, 1));
        assert_eq!(p.seal.name, "合同专用章");
        assert_eq!(p.seal.valid_to, Some(now + time::Duration::days(30)));
        assert_eq!(p.signer_cert, holder.cert_der);
        assert!(allows(&p.seal, &holder.cert_der));
        assert!(cert_signed(&p.signer_cert, &p.signed_part, &p.signature));
        assert!(seal_signed(&p.seal));
    }

    /// GM/T 0031-2025 ("V5"): header version 5 and an optional time stamp after the seal's
    /// signature; a certificate list by digest.
    #[test]
    fn version_5_seals_and_digest_lists_parse() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let (h, holder) =
            hierarchy_and_holder(now, true, "东莞市不动产登记中心", "不动产登记专用章");
        let info = der::sequence(&[
            der::sequence(&[ia5("ES"), der::integer(5), ia5("V5VENDOR")]),
            ia5("V5-0001"),
            der::sequence(&[
                der::integer(3),
                der::tlv(UTF8, "不动产登记专用章".as_bytes()),
                der::integer(2),
                der::sequence(&[der::sequence(&[
                    der::tlv(PRINTABLE, b"SM3"),
                    der::octet_string(&sm2::sm3(&holder.cert_der)),
                ])]),
                der::generalized_time(now),
                der::generalized_time(now),
                der::generalized_time(now + time::Duration::days(30)),
            ]),
            der::sequence(&[
                ia5("SVG"),
                der::octet_string(b"<svg/>"),
                der::integer(40),
                der::integer(40),
            ]),
        ]);
        let seal_sig = h.seal_maker.key.sign(&info).unwrap();
        let token = super::super::gm_tsa::token(&h.tsa, &sm2::sm3(&seal_sig), now).unwrap();
        let seal = der::sequence(&[
            info,
            der::octet_string(&h.seal_maker.cert_der),
            der::oid_lit(OID_SM2_SM3),
            bits(&seal_sig),
            der::tlv(tag::ctx(0), &bits(&token)),
        ]);
        let sig = sign(
            &seal,
            &holder,
            now,
            &sm2::sm3(b"doc"),
            "/Doc_0/Signs/Sign_0/Signature.xml",
            None,
        )
        .unwrap();
        let p = parse_signature(&sig).unwrap();
        assert_eq!(p.seal.version, 5);
        assert!(matches!(p.seal.cert_list, CertList::Digests(_)));
        assert!(allows(&p.seal, &holder.cert_der));
        assert!(!allows(&p.seal, &h.tsa.cert_der));
        assert!(seal_signed(&p.seal));
        assert!(cert_signed(&p.signer_cert, &p.signed_part, &p.signature));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x02\x01\x04",
            b"\x30\x80\x00\x00",
            &[0x30; 40],
        ] {
            assert!(parse_signature(junk).is_err());
        }
    }
}
