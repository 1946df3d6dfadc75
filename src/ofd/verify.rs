//! Verifies OFD packages sealed with GB/T 38540 seal signatures and reports in the verifier's
//! schema (`kind: "seal"`, `sub_filter: "GB/T 38540"`). For each signature: every Reference
//! digest; dataHash = SM3(Signature.xml); the holder's signature over DER(TBS_Sign); the seal
//! maker's signature over the seal data; the holder's certificate in the seal's list; the seal's
//! and the certificates' validity at the signing time; both chains to a trusted root (SM2 with
//! the fixed ID on every link). Then the package: a file a reader would show (reachable from
//! OFD.xml) that no signature covers is a problem.

use super::package::{Package, PackageError};
use crate::pdf::verify::{
    Changes, Integrity, Kind, Level, Problem, Report, SignatureReport, Signer, Trust, Verdict,
    problem, rfc3339,
};
use crate::pki::gm;
use crate::pki::ses::{self, ParsedSignature};
use crate::pki::sm2;
use base64::Engine;
use openssl::x509::X509;
use std::collections::BTreeSet;
use time::OffsetDateTime;

pub const SUB_FILTER: &str = "GB/T 38540";

/// The elements of a DER `SEQUENCE OF` the package carries (CA certificates, CRLs), at most 16;
/// empty when the file is missing or unreadable.
fn der_list(pkg: &Package, path: &str) -> Vec<Vec<u8>> {
    let mut out = vec![];
    if let Some(b) = pkg.file(path)
        && let Ok(seq) = crate::pki::der::Reader::new(b).read_tag(crate::pki::der::tag::SEQUENCE)
    {
        let mut c = seq.children();
        while let Ok(t) = c.read() {
            out.push(t.raw.to_vec());
            if out.len() > 16 {
                break;
            }
        }
    }
    out
}

/// Digest of a Reference by its CheckMethod (name or OID; MD5 when absent, as the schema says).
fn check_digest(method: &str, data: &[u8]) -> Option<Vec<u8>> {
    use openssl::hash::{MessageDigest, hash};
    let md = match method.trim().to_ascii_uppercase().as_str() {
        "SM3" | "1.2.156.10197.1.401" => return Some(sm2::sm3(data).to_vec()),
        "" | "MD5" | "1.2.840.113549.2.5" => MessageDigest::md5(),
        "SHA1" | "SHA-1" | "1.3.14.3.2.26" => MessageDigest::sha1(),
        "SHA256" | "SHA-256" | "2.16.840.1.101.3.4.2.1" => MessageDigest::sha256(),
        _ => return None,
    };
    hash(md, data).ok().map(|d| d.to_vec())
}

fn ofd_ns(n: &roxmltree::Node<'_, '_>, local: &str) -> bool {
    n.is_element() && n.tag_name().name() == local
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, local: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| ofd_ns(c, local))
}

fn text_of(n: Option<roxmltree::Node<'_, '_>>) -> Option<String> {
    n.and_then(|n| n.text()).map(|t| t.trim().to_owned())
}

/// What the chain walk needs of a certificate, read once (x509-parser; OpenSSL's X.509 decoding
/// cost more than the signatures).
struct Cert<'a> {
    der: &'a [u8],
    subject: Vec<u8>,
    issuer: Vec<u8>,
    spki: Vec<u8>,
    not_before: i64,
    not_after: i64,
    is_ca: bool,
    name: String,
}

fn cert(der: &[u8]) -> Option<Cert<'_>> {
    let (rest, c) = x509_parser::parse_x509_certificate(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    Some(Cert {
        der,
        subject: c.subject().as_raw().to_vec(),
        issuer: c.issuer().as_raw().to_vec(),
        spki: c.public_key().raw.to_vec(),
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        is_ca: c.is_ca(),
        name: c.subject().to_string(),
    })
}

/// A chain check on the 国密 side: `leaf` up to a trusted root through `pool`, every signature
/// SM2-with-SM3 with the fixed ID, CA flags on issuers, then validity at `at` on every link. The
/// path comes first: without one, the answer is "untrusted" whatever the dates say.
/// Revocation comes from `crls` (those the package carries): each certificate below the anchor
/// is looked up in its issuer's CRL (signed by that issuer); `Ok(true)` when every one was
/// covered by a CRL, `Ok(false)` when some had none.
fn chain(
    leaf: &[u8],
    pool: &[Vec<u8>],
    trust: &[Vec<u8>],
    crls: &[Vec<u8>],
    at: OffsetDateTime,
) -> Result<bool, (Trust, Problem)> {
    let malformed = || (Trust::Unknown, problem("malformed", "证书无法解析"));
    let trusted: Vec<Cert<'_>> = trust.iter().filter_map(|d| cert(d)).collect();
    let others: Vec<Cert<'_>> = pool.iter().filter_map(|d| cert(d)).collect();
    let mut path = vec![cert(leaf).ok_or_else(malformed)?];
    loop {
        let current = path.last().expect("not empty");
        if trusted.iter().any(|t| t.der == current.der) {
            break;
        }
        if path.len() > 8 {
            return Err((Trust::InvalidChain, problem("invalid_chain", "证书链过长")));
        }
        let Some(issuer) = trusted
            .iter()
            .chain(others.iter())
            .find(|c| c.subject == current.issuer && gm::signed_by(current.der, &c.spki))
        else {
            return Err((
                Trust::Untrusted,
                problem(
                    "untrusted_chain",
                    format!("证书链无法连接到受信任的根证书：{}", current.name),
                ),
            ));
        };
        if !issuer.is_ca {
            return Err((
                Trust::InvalidChain,
                problem("invalid_chain", "签发者不是证书颁发机构"),
            ));
        }
        let issuer = cert(issuer.der).ok_or_else(malformed)?;
        path.push(issuer);
    }
    let at = at.unix_timestamp();
    for c in &path {
        if c.not_before > at || c.not_after < at {
            return Err((
                Trust::Expired,
                problem(
                    "certificate_expired",
                    format!("证书在签章时不在有效期内：{}", c.name),
                ),
            ));
        }
    }
    let mut covered = true;
    for pair in path.windows(2) {
        let (c, issuer) = (&pair[0], &pair[1]);
        match revocation(c, issuer, crls) {
            Some(Some(revoked)) if revoked <= at => {
                return Err((
                    Trust::Revoked,
                    problem(
                        "certificate_revoked",
                        format!("证书在签章前已被吊销：{}", c.name),
                    ),
                ));
            }
            Some(_) => {}
            None => covered = false,
        }
    }
    Ok(covered)
}

/// `c`'s revocation time according to a CRL of `issuer` among `crls` (signed by it): `None`
/// when no such CRL is there, `Some(None)` when it is not listed.
fn revocation(c: &Cert<'_>, issuer: &Cert<'_>, crls: &[Vec<u8>]) -> Option<Option<i64>> {
    let serial = x509_parser::parse_x509_certificate(c.der)
        .ok()
        .map(|(_, x)| x.raw_serial().to_vec())?;
    for der in crls {
        let Ok((_, crl)) = x509_parser::parse_x509_crl(der) else {
            continue;
        };
        if crl.issuer().as_raw() != issuer.subject.as_slice() || !gm::signed_by(der, &issuer.spki) {
            continue;
        }
        let listed = crl
            .iter_revoked_certificates()
            .find(|r| r.raw_serial() == serial.as_slice())
            .map(|r| r.revocation_date.timestamp());
        return Some(listed);
    }
    None
}

/// Paths reachable from OFD.xml that a reader would show or use: the document, its pages,
/// templates, resources, annotations, attachments, custom tags, signature lists.
fn reachable(pkg: &Package, doc_root: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut queue = vec![doc_root.to_owned()];
    while let Some(path) = queue.pop() {
        if out.len() > 10_000 || !out.insert(path.clone()) {
            continue;
        }
        let Some(bytes) = pkg.file(&path) else {
            continue;
        };
        if !path.ends_with(".xml") {
            continue;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        let Ok(doc) = super::package::parse_xml(text) else {
            continue;
        };
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let base = doc
            .root_element()
            .attribute("BaseLoc")
            .map(|b| super::package::join(dir, b))
            .unwrap_or_else(|| dir.to_owned());
        for n in doc.descendants().filter(|n| n.is_element()) {
            let mut refs: Vec<String> = ["BaseLoc", "FileRef"]
                .iter()
                .filter_map(|a| n.attribute(*a))
                .map(str::to_owned)
                .collect();
            let name = n.tag_name().name();
            if matches!(
                name,
                "PublicRes"
                    | "DocumentRes"
                    | "Annotations"
                    | "Attachments"
                    | "CustomTags"
                    | "Extensions"
                    | "FontFile"
                    | "MediaFile"
                    | "FileLoc"
                    | "Signatures"
                    | "BaseLoc"
                    | "Outlines"
            ) && let Some(t) = n.text()
            {
                refs.push(t.trim().to_owned());
            }
            for r in refs {
                if r.is_empty() {
                    continue;
                }
                let from = if matches!(name, "MultiMedia" | "MediaFile" | "Font" | "FontFile") {
                    &base
                } else {
                    dir
                };
                queue.push(super::package::join(from, &r));
            }
        }
    }
    out
}

/// Verifies an OFD package. `Err` when it is not a readable package at all.
pub fn verify(bytes: &[u8], trust: &[X509], now: OffsetDateTime) -> Result<Report, PackageError> {
    verify_with_seals(bytes, trust, now).map(|(r, _)| r)
}

/// What a service that keeps seals and certificates needs to check their revocation.
#[derive(Debug, Clone, Default)]
pub struct SealFacts {
    /// Empty when the seal could not be read.
    pub es_id: String,
    /// The holder's, the seal maker's and the time-stamping unit's certificates (DER).
    pub certificates: Vec<Vec<u8>>,
}

/// As `verify`, also giving each signature's seal esID and certificates (in the report's order),
/// so a service that keeps seals and certificates can say which were revoked.
pub fn verify_with_seals(
    bytes: &[u8],
    trust: &[X509],
    now: OffsetDateTime,
) -> Result<(Report, Vec<SealFacts>), PackageError> {
    let mut es_ids = Vec::new();
    let trust: Vec<Vec<u8>> = trust.iter().filter_map(|t| t.to_der().ok()).collect();
    let trust = trust.as_slice();
    let pkg = Package::open(bytes)?;
    let sha256 = crate::pki::names::hex(&openssl::sha::sha256(bytes));
    let mut report = Report {
        sha256,
        size: bytes.len() as u64,
        revisions: 1,
        signatures: vec![],
        verdict: Verdict::Indeterminate,
        problems: vec![],
    };
    let ofd_xml = pkg
        .text("OFD.xml")
        .ok_or_else(|| PackageError("OFD.xml 缺失".into()))?;
    let ofd =
        super::package::parse_xml(ofd_xml).map_err(|e| PackageError(format!("OFD.xml: {e}")))?;
    let body = ofd
        .descendants()
        .find(|n| ofd_ns(n, "DocBody"))
        .ok_or_else(|| PackageError("OFD.xml 没有 DocBody".into()))?;
    let doc_root = text_of(child(body, "DocRoot"))
        .map(|r| super::package::join("", &r))
        .ok_or_else(|| PackageError("OFD.xml 没有 DocRoot".into()))?;
    let mut covered: BTreeSet<String> = BTreeSet::new();
    let mut signature_files: BTreeSet<String> = BTreeSet::new();
    match text_of(child(body, "Signatures")) {
        None => report
            .problems
            .push(problem("unsigned", "文件没有任何签章")),
        Some(list_loc) => {
            let list_path = super::package::join("", &list_loc);
            signature_files.insert(list_path.clone());
            let list_dir = list_path
                .rsplit_once('/')
                .map(|(d, _)| d.to_owned())
                .unwrap_or_default();
            let list_text = pkg.text(&list_path).unwrap_or("");
            match super::package::parse_xml(list_text) {
                Err(e) => report
                    .problems
                    .push(problem("malformed", format!("签章列表无法读取：{e}"))),
                Ok(list) => {
                    for s in list
                        .root_element()
                        .children()
                        .filter(|n| ofd_ns(n, "Signature"))
                    {
                        let id = s.attribute("ID").unwrap_or("?").to_owned();
                        let kind = s.attribute("Type").unwrap_or("Seal");
                        let Some(loc) = s.attribute("BaseLoc") else {
                            continue;
                        };
                        let path = super::package::join(&list_dir, loc);
                        signature_files.insert(path.clone());
                        let (r, facts) = verify_one(
                            &pkg,
                            &id,
                            kind,
                            &path,
                            trust,
                            now,
                            &mut covered,
                            &mut signature_files,
                        );
                        report.signatures.push(r);
                        es_ids.push(facts);
                    }
                }
            }
        }
    }
    if report.signatures.is_empty() && !report.problems.iter().any(|p| p.code == "unsigned") {
        report
            .problems
            .push(problem("unsigned", "文件没有任何签章"));
    }
    // What a reader would show that no signature protects.
    let shown = reachable(&pkg, &doc_root);
    let uncovered: Vec<&String> = shown
        .iter()
        .filter(|p| pkg.file(p).is_some() && !covered.contains(*p) && !signature_files.contains(*p))
        .collect();
    if !covered.contains("OFD.xml") && !report.signatures.is_empty() {
        report
            .problems
            .push(problem("uncovered_file", "OFD.xml 不在签章保护范围内"));
    }
    for p in uncovered {
        report.problems.push(problem(
            "uncovered_file",
            format!("阅读器会显示的文件 /{p} 不在任何签章的保护范围内"),
        ));
    }
    let unused: Vec<&String> = pkg
        .names()
        .filter(|p| !covered.contains(*p) && !signature_files.contains(*p) && !shown.contains(*p))
        .collect();
    if !unused.is_empty() {
        // Not shown by a reader: reported, not a failure.
        report.problems.push(problem(
            "unprotected_unused_file",
            format!(
                "{} 个未被引用的文件不在保护范围内（阅读器不显示）",
                unused.len()
            ),
        ));
    }
    let any_invalid = report
        .signatures
        .iter()
        .any(|s| s.verdict == Verdict::Invalid);
    let all_valid = !report.signatures.is_empty()
        && report
            .signatures
            .iter()
            .all(|s| s.verdict == Verdict::Valid);
    let doc_problem = report
        .problems
        .iter()
        .any(|p| p.code == "uncovered_file" || p.code == "malformed");
    report.verdict = if any_invalid || doc_problem {
        Verdict::Invalid
    } else if all_valid {
        Verdict::Valid
    } else {
        Verdict::Indeterminate
    };
    Ok((report, es_ids))
}

#[allow(clippy::too_many_arguments)]
fn verify_one(
    pkg: &Package,
    id: &str,
    kind: &str,
    path: &str,
    trust: &[Vec<u8>],
    now: OffsetDateTime,
    covered: &mut BTreeSet<String>,
    signature_files: &mut BTreeSet<String>,
) -> (SignatureReport, SealFacts) {
    let mut r = SignatureReport {
        field: format!("{id}:/{path}"),
        sub_filter: SUB_FILTER.into(),
        kind: Kind::Seal,
        signer: None,
        signing_time: None,
        signing_time_source: None,
        revision: 1,
        covers_whole_document: false,
        integrity: Integrity::Unknown,
        trust: Trust::Unknown,
        changes_after: Changes::None,
        level: Level::None,
        verdict: Verdict::Indeterminate,
        problems: vec![],
    };
    let broken = |r: &mut SignatureReport, code: &'static str, msg: String| {
        r.integrity = Integrity::Broken;
        r.problems.push(problem(code, msg));
    };
    let Some(sig_xml) = pkg.file(path) else {
        broken(&mut r, "malformed", format!("签章描述文件 /{path} 缺失"));
        r.verdict = Verdict::Invalid;
        return (r, SealFacts::default());
    };
    let Some(doc) = std::str::from_utf8(sig_xml)
        .ok()
        .and_then(|t| super::package::parse_xml(t).ok())
    else {
        broken(&mut r, "malformed", "签章描述文件无法读取".into());
        r.verdict = Verdict::Invalid;
        return (r, SealFacts::default());
    };
    let dir = path
        .rsplit_once('/')
        .map(|(d, _)| d.to_owned())
        .unwrap_or_default();
    let root = doc.root_element();
    let info = child(root, "SignedInfo");
    let refs = info.and_then(|i| child(i, "References"));
    let method = refs
        .and_then(|r| r.attribute("CheckMethod"))
        .unwrap_or("MD5")
        .to_owned();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut mismatches = 0;
    let mut count = 0;
    for reference in refs
        .into_iter()
        .flat_map(|r| r.children())
        .filter(|n| ofd_ns(n, "Reference"))
    {
        count += 1;
        let file = super::package::join("", reference.attribute("FileRef").unwrap_or(""));
        let want = text_of(child(reference, "CheckValue")).and_then(|v| b64.decode(v).ok());
        let got = pkg.file(&file).and_then(|b| check_digest(&method, b));
        match (want, got) {
            (Some(w), Some(g)) if w == g => {
                covered.insert(file);
            }
            (_, None) if pkg.file(&file).is_some() => {
                mismatches += 1;
                r.problems.push(problem(
                    "unknown_check_method",
                    format!("不支持的摘要算法 {method}"),
                ));
            }
            _ => {
                mismatches += 1;
                r.problems.push(problem(
                    "reference_mismatch",
                    format!("文件 /{file} 与签章时的摘要不一致或已缺失"),
                ));
            }
        }
    }
    if count == 0 {
        r.problems
            .push(problem("reference_mismatch", "签章没有保护任何文件"));
        mismatches += 1;
    }
    let value_loc = text_of(child(root, "SignedValue")).unwrap_or_default();
    let value_path = super::package::join(&dir, &value_loc);
    signature_files.insert(value_path.clone());
    if kind != "Seal" {
        r.problems.push(problem(
            "unsupported_signature_type",
            "Type=Sign 的数字签名暂不核验",
        ));
        r.verdict = Verdict::Indeterminate;
        return (r, SealFacts::default());
    }
    let parsed: ParsedSignature = match pkg.file(&value_path).map(ses::parse_signature) {
        Some(Ok(p)) => p,
        _ => {
            broken(
                &mut r,
                "malformed",
                "签章值 SignedValue.dat 无法解析".into(),
            );
            r.verdict = Verdict::Invalid;
            return (r, SealFacts::default());
        }
    };
    let es_id = parsed.seal.es_id.clone();
    if let Ok((_, c)) = x509_parser::parse_x509_certificate(&parsed.signer_cert) {
        r.signer = Some(Signer {
            subject: c.subject().to_string(),
            issuer: c.issuer().to_string(),
            serial: crate::pki::names::hex(c.raw_serial()).to_uppercase(),
        });
    }
    // A time stamp over the signature value, when present, gives the trusted signing time.
    let mut stamped: Option<crate::pki::gm_tsa::Checked> = None;
    if let Some(token) = &parsed.timestamp {
        match crate::pki::gm_tsa::check(token, &sm2::sm3(&parsed.signature)) {
            Ok(c) => stamped = Some(c),
            Err(e) => {
                broken(
                    &mut r,
                    "timestamp_invalid",
                    format!("签章中的时间戳无效：{e}"),
                );
            }
        }
    }
    let at = stamped
        .as_ref()
        .map(|c| c.time)
        .or(parsed.time)
        .unwrap_or(now);
    r.signing_time = stamped
        .as_ref()
        .map(|c| c.time)
        .or(parsed.time)
        .map(rfc3339);
    r.signing_time_source = if stamped.is_some() {
        Some("timestamp")
    } else {
        parsed.time.map(|_| "seal")
    };
    let data_ok = parsed.data_hash == sm2::sm3(sig_xml);
    if !data_ok {
        broken(
            &mut r,
            "data_hash_mismatch",
            "签章原文杂凑值与签章描述文件不一致".into(),
        );
    }
    if parsed.property_info.trim_start_matches('/') != path {
        r.problems.push(problem(
            "property_info_mismatch",
            format!("签章原文属性 {} 不是本签章描述文件", parsed.property_info),
        ));
    }
    let sig_ok = parsed.algorithm == sm2::OID_SM2_SM3
        && ses::cert_signed(&parsed.signer_cert, &parsed.signed_part, &parsed.signature);
    if !sig_ok {
        broken(&mut r, "signature_invalid", "签章人的签名值无效".into());
    }
    let seal_ok = ses::seal_signed(&parsed.seal);
    if !seal_ok {
        broken(
            &mut r,
            "seal_signature_invalid",
            "电子印章的制章者签名无效".into(),
        );
    }
    if !ses::allows(&parsed.seal, &parsed.signer_cert) {
        broken(
            &mut r,
            "signer_not_in_seal",
            "签章人证书不在电子印章的证书列表中".into(),
        );
    }
    match (parsed.seal.valid_from, parsed.seal.valid_to) {
        (Some(a), Some(b)) if a <= at && at <= b => {}
        _ => r
            .problems
            .push(problem("seal_expired", "签章时电子印章不在有效期内")),
    }
    if mismatches == 0 && data_ok && sig_ok && seal_ok && r.integrity != Integrity::Broken {
        r.integrity = Integrity::Intact;
    } else {
        r.integrity = Integrity::Broken;
    }
    // Every file but the signature's own value is covered: the whole document.
    r.covers_whole_document = pkg
        .names()
        .all(|n| covered.contains(n) || *n == value_path || *n == path);
    // Chains: the holder's and the seal maker's, with the CA certificates the package carries.
    let pool = der_list(pkg, &super::package::join(&dir, "CACerts.der"));
    let crls = der_list(pkg, &super::package::join(&dir, "CRLs.der"));
    if let Some(c) = &stamped {
        r.level = Level::BT;
        if let Err((_, p)) = chain(&c.tsa_cert, &pool, trust, &crls, c.time) {
            r.problems.push(problem(
                "timestamp_untrusted",
                format!("时间戳单位的证书不可信：{}", p.message),
            ));
        }
    }
    r.trust = match chain(&parsed.signer_cert, &pool, trust, &crls, at)
        .and_then(|a| chain(&parsed.seal.maker_cert, &pool, trust, &crls, at).map(|b| a && b))
    {
        Ok(revocation_known) => {
            // Time-stamped, and revocation known from CRLs in the package: long-term material.
            if revocation_known && stamped.is_some() {
                r.level = Level::BLT;
            }
            Trust::Trusted
        }
        Err((t, p)) => {
            r.problems.push(p);
            t
        }
    };
    let seal_in_time = !r.problems.iter().any(|p| p.code == "seal_expired");
    r.verdict = if r.integrity == Integrity::Broken
        || matches!(
            r.trust,
            Trust::Revoked | Trust::InvalidChain | Trust::Expired
        )
        || !seal_in_time
    {
        Verdict::Invalid
    } else if r.trust == Trust::Trusted
        && r.integrity == Integrity::Intact
        && !r.problems.iter().any(|p| p.code == "timestamp_untrusted")
    {
        Verdict::Valid
    } else {
        Verdict::Indeterminate
    };
    let mut certificates = vec![parsed.signer_cert.clone(), parsed.seal.maker_cert.clone()];
    if let Some(c) = stamped {
        certificates.push(c.tsa_cert);
    }
    (
        r,
        SealFacts {
            es_id,
            certificates,
        },
    )
}
