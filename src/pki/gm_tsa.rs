//! SM2 time-stamp tokens for GB/T 38540 seal signatures (the optional `timeStamp [0]`): an RFC
//! 3161 TSTInfo in a CMS SignedData whose digest is SM3 and whose signature is SM2-with-SM3 by
//! the 国密 time-stamping unit. OpenSSL 3.0 cannot sign (or verify) SM2 CMS, so both sides are
//! written here with `der`; the layout is RFC 5652's with the national algorithms' identifiers,
//! as BouncyCastle and Tongsuo write SM2 CMS. Whether a centre's verifier wants GB/T 35275's own
//! OIDs instead is an open question (docs/verification.md).

use super::cms::{
    ID_CONTENT_TYPE, ID_CT_TST_INFO, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, attribute,
    issuer_and_serial,
};
use super::der::{self, Reader, tag};
use super::gm::GmAuthority;
use super::sm2::{self, OID_SM2_SM3, OID_SM3};
use super::{PkiError, PkiResult};
use time::OffsetDateTime;

/// A token stamping the SM3 digest `digest` at `now`.
pub fn token(tsa: &GmAuthority, digest: &[u8; 32], now: OffsetDateTime) -> PkiResult<Vec<u8>> {
    let mut serial = [0u8; 16];
    openssl::rand::rand_bytes(&mut serial)?;
    serial[0] &= 0x7f;
    serial[0] |= 1;
    let tst_info = der::sequence(&[
        der::integer(1),
        der::oid_lit(super::tsa::TSA_POLICY),
        der::sequence(&[der::algorithm(OID_SM3, false), der::octet_string(digest)]),
        der::integer_unsigned(&serial),
        der::generalized_time(now),
        der::sequence(&[der::integer(1)]),
    ]);
    let attrs = der::set_of(&[
        attribute(ID_CONTENT_TYPE, der::oid_lit(ID_CT_TST_INFO)),
        attribute(ID_MESSAGE_DIGEST, der::octet_string(&sm2::sm3(&tst_info))),
    ]);
    let signature = tsa.key.sign(&attrs)?;
    let mut implicit = attrs;
    implicit[0] = tag::ctx(0);
    let (issuer, serial_no) = issuer_and_serial(&tsa.cert_der)?;
    let signer_info = der::sequence(&[
        der::integer(1),
        der::sequence(&[issuer, serial_no]),
        der::algorithm(OID_SM3, false),
        implicit,
        der::algorithm(OID_SM2_SM3, false),
        der::octet_string(&signature),
    ]);
    let signed_data = der::sequence(&[
        der::integer(3),
        der::set_of(&[der::algorithm(OID_SM3, false)]),
        der::sequence(&[
            der::oid_lit(ID_CT_TST_INFO),
            der::tlv(tag::ctx(0), &der::octet_string(&tst_info)),
        ]),
        der::tlv(tag::ctx(0), &tsa.cert_der),
        der::set_of(&[signer_info]),
    ]);
    Ok(der::sequence(&[
        der::oid_lit(ID_SIGNED_DATA),
        der::tlv(tag::ctx(0), &signed_data),
    ]))
}

/// A checked token: when, and the unit's certificate (its chain is the caller's to check).
#[derive(Debug, Clone)]
pub struct Checked {
    pub time: OffsetDateTime,
    pub tsa_cert: Vec<u8>,
}

fn bad(m: &str) -> PkiError {
    PkiError::Build(format!("SM2 time-stamp token: {m}"))
}

/// Checks a token: that it stamps `digest` (SM3), that its message digest matches its TSTInfo,
/// that the unit's SM2 signature over the signed attributes is valid, and that the unit's
/// certificate is for time stamping.
pub fn check(token: &[u8], digest: &[u8]) -> PkiResult<Checked> {
    let e = |x: der::DerError| bad(x.0);
    let mut top = Reader::new(token);
    let ci = top.read_tag(tag::SEQUENCE).map_err(e)?;
    let mut ci = ci.children();
    if der::oid_to_string(ci.read_tag(tag::OID).map_err(e)?.content).as_deref()
        != Some(ID_SIGNED_DATA)
    {
        return Err(bad("not SignedData"));
    }
    let sd = ci.read_tag(tag::ctx(0)).map_err(e)?;
    let sd = sd.children().read_tag(tag::SEQUENCE).map_err(e)?;
    let mut r = sd.children();
    r.read_tag(tag::INTEGER).map_err(e)?;
    r.read_tag(tag::SET).map_err(e)?;
    let encap = r.read_tag(tag::SEQUENCE).map_err(e)?;
    let mut en = encap.children();
    if der::oid_to_string(en.read_tag(tag::OID).map_err(e)?.content).as_deref()
        != Some(ID_CT_TST_INFO)
    {
        return Err(bad("not a TSTInfo"));
    }
    let wrapped = en.read_tag(tag::ctx(0)).map_err(e)?;
    let tst = wrapped
        .children()
        .read_tag(tag::OCTET_STRING)
        .map_err(e)?
        .content;
    let certs = r
        .optional(tag::ctx(0))
        .map_err(e)?
        .ok_or_else(|| bad("no certificate"))?;
    let tsa_cert = certs
        .children()
        .read_tag(tag::SEQUENCE)
        .map_err(e)?
        .raw
        .to_vec();
    r.optional(tag::ctx(1)).map_err(e)?;
    let infos = r.read_tag(tag::SET).map_err(e)?;
    let info = infos.children().read_tag(tag::SEQUENCE).map_err(e)?;
    let mut si = info.children();
    si.read_tag(tag::INTEGER).map_err(e)?;
    si.read_tag(tag::SEQUENCE).map_err(e)?;
    si.read_tag(tag::SEQUENCE).map_err(e)?;
    let attrs = si.read_tag(tag::ctx(0)).map_err(e)?;
    let alg = si.read_tag(tag::SEQUENCE).map_err(e)?;
    let alg = der::oid_to_string(alg.children().read_tag(tag::OID).map_err(e)?.content);
    if alg.as_deref() != Some(OID_SM2_SM3) && alg.as_deref() != Some(sm2::OID_SM2) {
        return Err(bad("not an SM2 signature"));
    }
    let signature = si.read_tag(tag::OCTET_STRING).map_err(e)?.content;
    // The message digest attribute must be SM3 of the TSTInfo.
    let mut found = false;
    let mut a = attrs.children();
    while !a.is_empty() {
        let attr = a.read_tag(tag::SEQUENCE).map_err(e)?;
        let mut ar = attr.children();
        let oid = der::oid_to_string(ar.read_tag(tag::OID).map_err(e)?.content);
        if oid.as_deref() == Some(ID_MESSAGE_DIGEST) {
            let set = ar.read_tag(tag::SET).map_err(e)?;
            let v = set.children().read_tag(tag::OCTET_STRING).map_err(e)?;
            if v.content != sm2::sm3(tst) {
                return Err(bad("message digest does not match the TSTInfo"));
            }
            found = true;
        }
    }
    if !found {
        return Err(bad("no message digest"));
    }
    let mut signed = attrs.raw.to_vec();
    signed[0] = tag::SET;
    if !super::ses::cert_signed(&tsa_cert, &signed, signature) {
        return Err(bad("the unit's signature is not valid"));
    }
    let (_, c) = x509_parser::parse_x509_certificate(&tsa_cert).map_err(|_| bad("certificate"))?;
    let eku_ok = c
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|x| x.value.time_stamping);
    if !eku_ok {
        return Err(bad("the certificate is not for time stamping"));
    }
    // TSTInfo: version, policy, imprint, serial, genTime.
    let tst = Reader::new(tst).read_tag(tag::SEQUENCE).map_err(e)?;
    let mut t = tst.children();
    t.read_tag(tag::INTEGER).map_err(e)?;
    t.read_tag(tag::OID).map_err(e)?;
    let imprint = t.read_tag(tag::SEQUENCE).map_err(e)?;
    let mut im = imprint.children();
    let halg = im.read_tag(tag::SEQUENCE).map_err(e)?;
    if der::oid_to_string(halg.children().read_tag(tag::OID).map_err(e)?.content).as_deref()
        != Some(OID_SM3)
    {
        return Err(bad("the imprint is not SM3"));
    }
    if im.read_tag(tag::OCTET_STRING).map_err(e)?.content != digest {
        return Err(bad("the token stamps another digest"));
    }
    t.read_tag(tag::INTEGER).map_err(e)?;
    let time = super::signed::parse_generalized_time(
        t.read_tag(tag::GENERALIZED_TIME).map_err(e)?.content,
    )
    .ok_or_else(|| bad("time"))?;
    Ok(Checked { time, tsa_cert })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_checks_and_a_changed_one_does_not() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let h = super::super::gm::GmHierarchy::create(now, "http://127.0.0.1/pki/crl").unwrap();
        let d = sm2::sm3(b"signature value");
        let t = token(&h.tsa, &d, now).unwrap();
        let c = check(&t, &d).unwrap();
        assert_eq!(c.time, now);
        assert_eq!(c.tsa_cert, h.tsa.cert_der);
        assert!(check(&t, &sm2::sm3(b"other")).is_err());
        let mut bad = t.clone();
        let i = bad.len() - 3;
        bad[i] ^= 1;
        assert!(check(&bad, &d).is_err());
        // Signed by a unit that is not a time-stamping unit.
        let t = token(&h.seal_maker, &d, now).unwrap();
        assert!(check(&t, &d).is_err());
        assert!(check(b"\x30\x00", &d).is_err());
    }
}
