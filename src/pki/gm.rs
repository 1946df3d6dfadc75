//! The 国密 hierarchy beside the P-256/RSA one: SM2 keys, SM2-with-SM3 certificates and CRLs.
//!
//! Certificates and CRLs are encoded here (rcgen and OpenSSL 3.0 would sign them with an empty
//! SM2 ID): the TBS part is written with `der`, signed by `sm2::Sm2Key` with the fixed ID, and
//! checked the same way. OpenSSL reads them (`openssl x509 -text`) and verifies them link by
//! link with `openssl verify -vfyopt distid:1234567812345678`.
//!
//! The hierarchy: a root; issuing CAs for people, organisations and the centre; the seal maker
//! (制章者) and the time-stamping unit under the centre CA. Seal holders' certificates (a
//! developer's 合同专用章, the centre's 不动产登记专用章) come from the organisations' and the
//! centre's CA.

use super::der::{self, Reader, tag};
use super::sm2::{self, OID_SM2_SM3, Sm2Key};
use super::{PkiError, PkiResult};
use openssl::x509::{X509, X509NameBuilder};
use time::OffsetDateTime;

/// What a certificate is for (its extensions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GmRole {
    Ca,
    /// Signs seal data (制章者) and seals documents: digitalSignature + nonRepudiation.
    Signer,
    TimeStamping,
}

/// A subject (C=CN): an organisation's unit or seal (O and CN), or a person (CN and the
/// serialNumber pseudonym of their ID number, as in the P-256 event certificates).
#[derive(Clone, Debug)]
pub struct GmName {
    pub organisation: Option<String>,
    pub common_name: String,
    pub serial_number: Option<String>,
}

impl GmName {
    pub fn new(organisation: &str, common_name: &str) -> GmName {
        GmName {
            organisation: Some(organisation.into()),
            common_name: common_name.into(),
            serial_number: None,
        }
    }

    pub fn person(name: &str, pseudonym: &str) -> GmName {
        GmName {
            organisation: None,
            common_name: name.into(),
            serial_number: Some(pseudonym.into()),
        }
    }

    fn der(&self) -> PkiResult<Vec<u8>> {
        let mut b = X509NameBuilder::new()?;
        b.append_entry_by_text("C", "CN")?;
        if let Some(o) = &self.organisation {
            b.append_entry_by_text("O", o)?;
        }
        b.append_entry_by_text("CN", &self.common_name)?;
        if let Some(sn) = &self.serial_number {
            b.append_entry_by_text("serialNumber", sn)?;
        }
        Ok(b.build().to_der()?)
    }
}

/// One authority or signer: its certificate and key.
pub struct GmAuthority {
    pub name: String,
    pub cert_der: Vec<u8>,
    pub key: Sm2Key,
}

impl std::fmt::Debug for GmAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GmAuthority({})", self.name)
    }
}

impl GmAuthority {
    pub fn cert_pem(&self) -> String {
        super::ca::pem("CERTIFICATE", &self.cert_der)
    }
}

pub(crate) fn time_der(t: OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    // RFC 5280: UTCTime until 2049, GeneralizedTime from 2050.
    if t.year() < 2050 {
        let s = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            t.year() % 100,
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        der::tlv(0x17, s.as_bytes())
    } else {
        der::generalized_time(t)
    }
}

fn extension(oid: &str, critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut items = vec![der::oid_lit(oid)];
    if critical {
        items.push(der::tlv(tag::BOOLEAN, &[0xff]));
    }
    items.push(der::octet_string(&value));
    der::sequence(&items)
}

fn key_id(spki: &[u8]) -> Vec<u8> {
    // The SM3 of the whole SubjectPublicKeyInfo, cut to 20 bytes (RFC 7093 style).
    sm2::sm3(spki)[..20].to_vec()
}

/// Signs a TBS structure and wraps it: SEQUENCE { tbs, SM2-with-SM3, BIT STRING signature }.
fn signed(tbs: Vec<u8>, key: &Sm2Key) -> PkiResult<Vec<u8>> {
    let sig = key.sign(&tbs)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&sig);
    Ok(der::sequence(&[
        tbs,
        der::algorithm(OID_SM2_SM3, false),
        der::tlv(tag::BIT_STRING, &bits),
    ]))
}

/// The CRL distribution points extension's value: one point with one URI (RFC 5280 4.2.1.13).
fn crl_distribution_points(url: &str) -> Vec<u8> {
    // distributionPoint [0] (explicit: a CHOICE) holding fullName [0] GeneralNames, one
    // uniformResourceIdentifier [6].
    let uri = der::tlv(tag::ctx_prim(6), url.as_bytes());
    let full_name = der::tlv(tag::ctx(0), &uri);
    der::sequence(&[der::sequence(&[der::tlv(tag::ctx(0), &full_name)])])
}

/// Where `issuer` publishes its CRL: `{crl_base}/{issuer name}.crl`, as for the P-256 CAs (the
/// service serves `/pki/crl/sm2-*.crl`).
fn crl_url(crl_base: &str, issuer: &GmAuthority) -> String {
    format!("{}/{}.crl", crl_base.trim_end_matches('/'), issuer.name)
}

/// Issues a certificate for `subject_spki`; `issuer` is None for a self-signed root (then
/// `subject_key` signs). `crl_url` names where the issuer's CRL is published (none for a root).
#[allow(clippy::too_many_arguments)]
pub fn issue(
    issuer: Option<&GmAuthority>,
    subject_key: Option<&Sm2Key>,
    subject_spki: &[u8],
    subject: &GmName,
    role: GmRole,
    serial: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    crl_url: Option<&str>,
) -> PkiResult<Vec<u8>> {
    if sm2::spki_point(subject_spki).is_none() {
        return Err(PkiError::Build("the subject key is not an SM2 key".into()));
    }
    let subject_der = subject.der()?;
    let (issuer_name, signer, issuer_spki) = match issuer {
        Some(a) => {
            let cert = X509::from_der(&a.cert_der)?;
            (
                cert.subject_name().to_der()?,
                &a.key,
                a.key.public_key_der().to_vec(),
            )
        }
        None => {
            let k = subject_key
                .ok_or_else(|| PkiError::Build("a root needs its own key to sign".into()))?;
            (subject_der.clone(), k, subject_spki.to_vec())
        }
    };
    let mut exts = vec![];
    match role {
        GmRole::Ca => {
            exts.push(extension(
                "2.5.29.19",
                true,
                der::sequence(&[der::tlv(tag::BOOLEAN, &[0xff])]),
            ));
            // keyCertSign (5), cRLSign (6).
            exts.push(extension(
                "2.5.29.15",
                true,
                der::tlv(tag::BIT_STRING, &[1, 0x06]),
            ));
        }
        GmRole::Signer | GmRole::TimeStamping => {
            exts.push(extension("2.5.29.19", true, der::sequence(&[])));
            if role == GmRole::Signer {
                // digitalSignature (0), nonRepudiation (1).
                exts.push(extension(
                    "2.5.29.15",
                    true,
                    der::tlv(tag::BIT_STRING, &[6, 0xc0]),
                ));
            } else {
                exts.push(extension(
                    "2.5.29.15",
                    true,
                    der::tlv(tag::BIT_STRING, &[7, 0x80]),
                ));
                exts.push(extension(
                    "2.5.29.37",
                    true,
                    der::sequence(&[der::oid_lit("1.3.6.1.5.5.7.3.8")]),
                ));
            }
        }
    }
    exts.push(extension(
        "2.5.29.14",
        false,
        der::octet_string(&key_id(subject_spki)),
    ));
    exts.push(extension(
        "2.5.29.35",
        false,
        der::sequence(&[der::tlv(tag::ctx_prim(0), &key_id(&issuer_spki))]),
    ));
    if let Some(url) = crl_url {
        exts.push(extension("2.5.29.31", false, crl_distribution_points(url)));
    }
    let tbs = der::sequence(&[
        der::tlv(tag::ctx(0), &der::integer(2)),
        der::integer_unsigned(serial),
        der::algorithm(OID_SM2_SM3, false),
        issuer_name,
        der::sequence(&[time_der(not_before), time_der(not_after)]),
        subject_der,
        subject_spki.to_vec(),
        der::tlv(tag::ctx(3), &der::sequence(&exts)),
    ]);
    signed(tbs, signer)
}

/// A revoked certificate on a CRL.
#[derive(Clone, Debug)]
pub struct GmRevoked {
    pub serial: Vec<u8>,
    pub at: OffsetDateTime,
}

/// A CRL (v2, with its number and the issuer's key id) signed with SM2-with-SM3.
pub fn crl(
    issuer: &GmAuthority,
    number: u64,
    revoked: &[GmRevoked],
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> PkiResult<Vec<u8>> {
    let cert = X509::from_der(&issuer.cert_der)?;
    let mut items = vec![
        der::integer(1),
        der::algorithm(OID_SM2_SM3, false),
        cert.subject_name().to_der()?,
        time_der(this_update),
        time_der(next_update),
    ];
    if !revoked.is_empty() {
        items.push(der::sequence(
            &revoked
                .iter()
                .map(|r| der::sequence(&[der::integer_unsigned(&r.serial), time_der(r.at)]))
                .collect::<Vec<_>>(),
        ));
    }
    items.push(der::tlv(
        tag::ctx(0),
        &der::sequence(&[
            extension("2.5.29.20", false, der::integer(number)),
            extension(
                "2.5.29.35",
                false,
                der::sequence(&[der::tlv(
                    tag::ctx_prim(0),
                    &key_id(issuer.key.public_key_der()),
                )]),
            ),
        ]),
    ));
    signed(der::sequence(&items), &issuer.key)
}

/// The three parts of a signed X.509 structure (certificate or CRL).
pub struct SignedParts<'a> {
    pub tbs: &'a [u8],
    pub algorithm: String,
    pub signature: &'a [u8],
}

pub fn split_signed(der_bytes: &[u8]) -> Option<SignedParts<'_>> {
    let mut outer = Reader::new(der_bytes);
    let seq = outer.read_tag(tag::SEQUENCE).ok()?;
    if !outer.is_empty() {
        return None;
    }
    let mut r = seq.children();
    let tbs = r.read_tag(tag::SEQUENCE).ok()?.raw;
    let alg = r.read_tag(tag::SEQUENCE).ok()?;
    let algorithm = der::oid_to_string(alg.children().read_tag(tag::OID).ok()?.content)?;
    let bits = r.read_tag(tag::BIT_STRING).ok()?.content;
    if bits.first() != Some(&0) || !r.is_empty() {
        return None;
    }
    Some(SignedParts {
        tbs,
        algorithm,
        signature: &bits[1..],
    })
}

/// Whether `signed_der` (a certificate or CRL) carries a valid SM2-with-SM3 signature by the
/// key `issuer_spki`. Outcomes are remembered (by SHA-256 of both): every package sealed by one
/// centre repeats the same few CA links, and an SM2 verification costs ~0.5 ms on OpenSSL 3.0.
pub fn signed_by(signed_der: &[u8], issuer_spki: &[u8]) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<[u8; 32], bool>>> = OnceLock::new();
    let mut h = openssl::sha::Sha256::new();
    h.update(&(signed_der.len() as u64).to_be_bytes());
    h.update(signed_der);
    h.update(issuer_spki);
    let k = h.finish();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(v) = seen.lock().ok().and_then(|m| m.get(&k).copied()) {
        return v;
    }
    let v = match split_signed(signed_der) {
        Some(p) if p.algorithm == OID_SM2_SM3 => sm2::verify(issuer_spki, p.tbs, p.signature),
        _ => false,
    };
    if let Ok(mut m) = seen.lock() {
        // Bounded: forget everything rather than grow (hostile uploads bring new certificates).
        if m.len() >= 4096 {
            m.clear();
        }
        m.insert(k, v);
    }
    v
}

/// The whole 国密 hierarchy.
#[derive(Debug)]
pub struct GmHierarchy {
    pub root: GmAuthority,
    pub people_ca: GmAuthority,
    pub organisations_ca: GmAuthority,
    pub centre_ca: GmAuthority,
    /// 制章者: signs the seal data (SES_SealInfo).
    pub seal_maker: GmAuthority,
    pub tsa: GmAuthority,
}

const CENTRE: &str = "东莞市不动产登记中心";

fn serial() -> Vec<u8> {
    let mut s = [0u8; 16];
    openssl::rand::rand_bytes(&mut s).expect("the system RNG works");
    s[0] &= 0x7f;
    s[0] |= 0x01;
    s.to_vec()
}

impl GmHierarchy {
    /// A new hierarchy; `crl_base` is the URL under which each CA's CRL is published.
    pub fn create(now: OffsetDateTime, crl_base: &str) -> PkiResult<GmHierarchy> {
        let start = now - time::Duration::minutes(5);
        let root_key = Sm2Key::generate()?;
        let root_name = GmName::new(CENTRE, "Virtual Window SM2 Root CA 虚拟窗口国密根证书");
        let root_cert = issue(
            None,
            Some(&root_key),
            root_key.public_key_der(),
            &root_name,
            GmRole::Ca,
            &serial(),
            start,
            now + time::Duration::days(365 * 20),
            None,
        )?;
        let root = GmAuthority {
            name: "sm2-root".into(),
            cert_der: root_cert,
            key: root_key,
        };
        let under = |issuer: &GmAuthority, name: &str, cn: &str, role: GmRole, years: i64| {
            let key = Sm2Key::generate()?;
            let cert = issue(
                Some(issuer),
                None,
                key.public_key_der(),
                &GmName::new(CENTRE, cn),
                role,
                &serial(),
                start,
                now + time::Duration::days(365 * years),
                Some(&crl_url(crl_base, issuer)),
            )?;
            PkiResult::Ok(GmAuthority {
                name: name.into(),
                cert_der: cert,
                key,
            })
        };
        let people_ca = under(&root, "sm2-people-ca", "国密个人证书CA", GmRole::Ca, 10)?;
        let organisations_ca = under(
            &root,
            "sm2-organisations-ca",
            "国密机构证书CA",
            GmRole::Ca,
            10,
        )?;
        let centre_ca = under(&root, "sm2-centre-ca", "国密登记中心CA", GmRole::Ca, 10)?;
        let seal_maker = under(
            &centre_ca,
            "sm2-seal-maker",
            "电子印章制章者",
            GmRole::Signer,
            5,
        )?;
        let tsa = under(
            &centre_ca,
            "sm2-tsa",
            "国密时间戳服务",
            GmRole::TimeStamping,
            5,
        )?;
        Ok(GmHierarchy {
            root,
            people_ca,
            organisations_ca,
            centre_ca,
            seal_maker,
            tsa,
        })
    }

    /// A seal holder's signing certificate and key: from the organisations' CA for a developer,
    /// from the centre CA for the centre.
    pub fn issue_signer(
        &self,
        centre: bool,
        organisation: &str,
        seal_name: &str,
        now: OffsetDateTime,
        years: i64,
        crl_base: &str,
    ) -> PkiResult<GmAuthority> {
        let issuer = if centre {
            &self.centre_ca
        } else {
            &self.organisations_ca
        };
        let key = Sm2Key::generate()?;
        let cert = issue(
            Some(issuer),
            None,
            key.public_key_der(),
            &GmName::new(organisation, seal_name),
            GmRole::Signer,
            &serial(),
            now - time::Duration::minutes(5),
            now + time::Duration::days(365 * years),
            Some(&crl_url(crl_base, issuer)),
        )?;
        Ok(GmAuthority {
            name: seal_name.into(),
            cert_der: cert,
            key,
        })
    }

    /// A person's event certificate from the people's CA, for `spki` (a key made for one
    /// signing), valid `validity` from a few seconds ago (clock skew), naming the CA's CRL.
    pub fn issue_event(
        &self,
        person: &GmName,
        spki: &[u8],
        now: OffsetDateTime,
        validity: time::Duration,
        crl_base: &str,
    ) -> PkiResult<Vec<u8>> {
        issue(
            Some(&self.people_ca),
            None,
            spki,
            person,
            GmRole::Signer,
            &serial(),
            now - time::Duration::seconds(30),
            now + validity,
            Some(&crl_url(crl_base, &self.people_ca)),
        )
    }

    pub fn authorities(&self) -> [&GmAuthority; 6] {
        [
            &self.root,
            &self.people_ca,
            &self.organisations_ca,
            &self.centre_ca,
            &self.seal_maker,
            &self.tsa,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_certificates_chain_and_parse() {
        let h = GmHierarchy::create(OffsetDateTime::now_utc(), "http://127.0.0.1/pki/crl").unwrap();
        let root_spki = h.root.key.public_key_der();
        assert!(signed_by(&h.root.cert_der, root_spki));
        assert!(signed_by(&h.centre_ca.cert_der, root_spki));
        assert!(signed_by(
            &h.seal_maker.cert_der,
            h.centre_ca.key.public_key_der()
        ));
        assert!(!signed_by(&h.seal_maker.cert_der, root_spki));
        for a in h.authorities() {
            let x = X509::from_der(&a.cert_der).unwrap();
            assert_eq!(x.signature_algorithm().object().to_string(), "SM2-with-SM3");
            let spki = x.public_key().unwrap().public_key_to_der().unwrap();
            assert_eq!(spki, a.key.public_key_der());
        }
        // Every certificate below the root names where its issuer's CRL is published.
        let points = |der: &[u8]| -> Vec<String> {
            X509::from_der(der)
                .unwrap()
                .crl_distribution_points()
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| {
                            p.distpoint()?
                                .fullname()?
                                .iter()
                                .next()?
                                .uri()
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        assert!(points(&h.root.cert_der).is_empty());
        assert_eq!(
            points(&h.centre_ca.cert_der),
            ["http://127.0.0.1/pki/crl/sm2-root.crl"]
        );
        assert_eq!(
            points(&h.seal_maker.cert_der),
            ["http://127.0.0.1/pki/crl/sm2-centre-ca.crl"]
        );
        let holder = h
            .issue_signer(
                false,
                "东莞市云境置业有限公司",
                "合同专用章",
                OffsetDateTime::now_utc(),
                1,
                "https://window.example/pki/crl/",
            )
            .unwrap();
        assert_eq!(
            points(&holder.cert_der),
            ["https://window.example/pki/crl/sm2-organisations-ca.crl"]
        );
        let mut tampered = h.centre_ca.cert_der.clone();
        let i = tampered.len() / 3;
        tampered[i] ^= 1;
        assert!(!signed_by(&tampered, root_spki));
        let list = crl(
            &h.centre_ca,
            7,
            &[GmRevoked {
                serial: vec![1, 2, 3],
                at: OffsetDateTime::now_utc(),
            }],
            OffsetDateTime::now_utc(),
            OffsetDateTime::now_utc() + time::Duration::days(1),
        )
        .unwrap();
        assert!(signed_by(&list, h.centre_ca.key.public_key_der()));
        openssl::x509::X509Crl::from_der(&list).unwrap();
    }
}
