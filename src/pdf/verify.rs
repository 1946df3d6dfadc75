//! The verifier: is this PDF genuine and unchanged? For every signature it checks the byte range
//! (exactly the file minus its own /Contents, ending at a revision), the digest and the signature
//! value, the signer's chain at the signing time, and every change made after the signed
//! revision, object by object. The report's field names are stable (docs/verification.md).
//! Untrusted input: bounded by the reader, and a file that could not be fully analysed is never
//! reported valid.

use super::read::{Dict, Entry, Object, Pdf, dict_diff, same};
use crate::pki::signed::{self, CmsFailure};
use crate::pki::validate::{Purpose, Validation, ValidationFailure};
use openssl::hash::{Hasher, MessageDigest};
use openssl::x509::{X509, X509Crl, X509NameRef};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

/// Graph walks stop after this many objects (a contract has a few hundred).
const MAX_WALK: usize = 200_000;
/// Form fields visited (nested /Kids) per revision.
const MAX_FIELDS: usize = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    Invalid,
    Indeterminate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Approval,
    Certification,
    DocumentTimestamp,
    /// A GB/T 38540 seal signature in an OFD package (ofd::verify).
    Seal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    Intact,
    Broken,
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    Trusted,
    Untrusted,
    Expired,
    Revoked,
    InvalidChain,
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Changes {
    None,
    Permitted,
    Disallowed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Level {
    #[serde(rename = "B-B")]
    BB,
    #[serde(rename = "B-T")]
    BT,
    #[serde(rename = "B-LT")]
    BLT,
    #[serde(rename = "B-LTA")]
    BLTA,
    #[serde(rename = "none")]
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable code for programs (listed in docs/verification.md).
    pub code: &'static str,
    /// For people, in Chinese.
    pub message: String,
}

pub(crate) fn problem(code: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        code,
        message: message.into(),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Signer {
    pub subject: String,
    pub issuer: String,
    /// Hexadecimal, upper case.
    pub serial: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SignatureReport {
    pub field: String,
    pub sub_filter: String,
    pub kind: Kind,
    pub signer: Option<Signer>,
    /// RFC 3339, UTC.
    pub signing_time: Option<String>,
    /// `/M` (claimed by the signer) or `timestamp` (from a verified time-stamp token).
    pub signing_time_source: Option<&'static str>,
    /// 1-based revision the signature covers.
    pub revision: usize,
    pub covers_whole_document: bool,
    pub integrity: Integrity,
    pub trust: Trust,
    pub changes_after: Changes,
    pub level: Level,
    pub verdict: Verdict,
    pub problems: Vec<Problem>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub sha256: String,
    pub size: u64,
    pub revisions: usize,
    pub signatures: Vec<SignatureReport>,
    pub verdict: Verdict,
    pub problems: Vec<Problem>,
}

/// The file is not a PDF at all (the CLI's exit code 3).
#[derive(Debug, Clone, thiserror::Error)]
#[error("not a readable PDF: {0}")]
pub struct NotPdf(pub String);

/// What to trust and when "now" is.
pub struct Options {
    pub trust: Vec<X509>,
    pub now: OffsetDateTime,
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn name_string(n: &X509NameRef) -> String {
    n.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let val = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// "D:YYYYMMDDHHmmSS+08'00'" (shorter forms allowed, as the spec says).
pub fn parse_pdf_date(s: &[u8]) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(s).ok()?;
    let s = s.strip_prefix("D:").unwrap_or(s);
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.len() < 4 || digits.len() > 14 || !digits.len().is_multiple_of(2) {
        return None;
    }
    let rest = &s[digits.len()..];
    let n = |a: usize, default: u32| -> Option<u32> {
        match digits.get(a..a + 2) {
            Some(v) => v.parse().ok(),
            None => Some(default),
        }
    };
    let year: i32 = digits[..4].parse().ok()?;
    let date = time::Date::from_calendar_date(
        year,
        time::Month::try_from(n(4, 1)? as u8).ok()?,
        n(6, 1)? as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(n(8, 0)? as u8, n(10, 0)? as u8, n(12, 0)? as u8).ok()?;
    let offset = match rest.as_bytes().first() {
        None | Some(b'Z') => time::UtcOffset::UTC,
        Some(&sign @ (b'+' | b'-')) => {
            let body: String = rest[1..].chars().filter(char::is_ascii_digit).collect();
            let h: i8 = body.get(0..2)?.parse().ok()?;
            let m: i8 = body.get(2..4).and_then(|m| m.parse().ok()).unwrap_or(0);
            let k = if sign == b'-' { -1 } else { 1 };
            time::UtcOffset::from_hms(k * h, k * m, 0).ok()?
        }
        _ => return None,
    };
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_offset(offset)
            .to_offset(time::UtcOffset::UTC),
    )
}

/// A signature field found in the form of the final revision.
struct FieldRef {
    name: String,
    /// The signature dictionary's object number (it must be indirect).
    sig: Option<u32>,
}

/// Form fields of one revision, by object number.
#[derive(Default)]
struct FormMap {
    /// field object → (is a signature field, /V reference or value present, widgets)
    fields: HashMap<u32, FieldInfo>,
    /// widget object → owning field object
    widgets: HashMap<u32, u32>,
    acroform: Option<u32>,
    /// Signature fields with a value, in form order.
    signed: Vec<FieldRef>,
}

#[derive(Clone, Debug, Default)]
struct FieldInfo {
    is_sig: bool,
    value: Option<Object>,
    visible: bool,
}

fn field_visible(d: &Dict) -> bool {
    let flags = d.get(b"F").and_then(Object::as_int).unwrap_or(0);
    if flags & 2 != 0 {
        return false;
    }
    let rect: Vec<f64> = d
        .get(b"Rect")
        .and_then(Object::as_array)
        .map(|a| {
            a.iter()
                .map(|o| match o {
                    Object::Int(i) => *i as f64,
                    Object::Real(r) => *r,
                    _ => 0.0,
                })
                .collect()
        })
        .unwrap_or_default();
    rect.len() == 4 && (rect[2] - rect[0]).abs() > 0.0 && (rect[3] - rect[1]).abs() > 0.0
}

fn decode_text(b: &[u8]) -> String {
    if b.starts_with(&[0xFE, 0xFF]) {
        let units: Vec<u16> = b[2..]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
            .collect();
        String::from_utf16_lossy(&units)
    } else if let Ok(s) = std::str::from_utf8(b) {
        s.to_string()
    } else {
        b.iter().map(|&c| c as char).collect()
    }
}

struct Ctx<'a, 'o> {
    pdf: &'a Pdf<'a>,
    opts: &'o Options,
    incomplete: Vec<Problem>,
    /// SHA-256 of the whole file, when a signature's hashing produced it on the way.
    whole_file: std::rc::Rc<std::cell::Cell<Option<[u8; 32]>>>,
    /// SHA-256 over the file's first bytes, up to the earliest signature hole seen so far:
    /// every byte range starts at the file's first byte, so the bytes before that hole are
    /// hashed once for all the signatures (a contract's 300 KB first revision, not once per
    /// signature).
    sha256_prefix: std::rc::Rc<std::cell::RefCell<Option<(usize, openssl::sha::Sha256)>>>,
    /// Form maps already read, by revision (change analysis asks for the same ones often).
    forms: HashMap<usize, std::rc::Rc<FormMap>>,
}

impl Ctx<'_, '_> {
    fn get(&mut self, rev: usize, num: u32) -> Object {
        match self.pdf.get(rev, num) {
            Ok(o) => o,
            Err(e) => {
                if self.incomplete.len() < 20 {
                    self.incomplete.push(problem(
                        "unreadable_object",
                        format!("对象 {num} 无法读取：{e}"),
                    ));
                }
                Object::Null
            }
        }
    }

    fn resolve(&mut self, rev: usize, o: &Object) -> Object {
        let mut cur = o.clone();
        for _ in 0..8 {
            match cur {
                Object::Ref(n, _) => cur = self.get(rev, n),
                other => return other,
            }
        }
        Object::Null
    }

    fn root_ref(&self, rev: usize) -> Option<u32> {
        self.pdf.trailer_get(rev, b"Root")?.as_ref()
    }

    fn catalog(&mut self, rev: usize) -> Dict {
        match self.root_ref(rev) {
            Some(n) => match self.get(rev, n) {
                Object::Dict(d) => d,
                _ => Dict::default(),
            },
            None => Dict::default(),
        }
    }

    /// The form of revision `rev`, read once.
    fn form_at(&mut self, rev: usize) -> std::rc::Rc<FormMap> {
        if let Some(f) = self.forms.get(&rev) {
            return f.clone();
        }
        let f = std::rc::Rc::new(self.form_map(rev));
        self.forms.insert(rev, f.clone());
        f
    }

    fn form_map(&mut self, rev: usize) -> FormMap {
        let mut map = FormMap::default();
        let cat = self.catalog(rev);
        let Some(af) = cat.get(b"AcroForm") else {
            return map;
        };
        map.acroform = af.as_ref();
        let af = self.resolve(rev, af);
        let Some(fields) = af.as_dict().and_then(|d| d.get(b"Fields")).cloned() else {
            return map;
        };
        let fields = self.resolve(rev, &fields);
        let mut stack: Vec<(Object, String, Option<Vec<u8>>, usize)> = fields
            .as_array()
            .unwrap_or(&[])
            .iter()
            .rev()
            .map(|f| (f.clone(), String::new(), None, 0))
            .collect();
        let mut seen = HashSet::new();
        let mut visited = 0usize;
        while let Some((node, prefix, inherited_ft, depth)) = stack.pop() {
            visited += 1;
            if visited > MAX_FIELDS || depth > 32 {
                self.incomplete
                    .push(problem("form_too_large", "表单字段过多或嵌套过深"));
                break;
            }
            let num = node.as_ref();
            if let Some(n) = num
                && !seen.insert(n)
            {
                continue;
            }
            let obj = self.resolve(rev, &node);
            let Some(d) = obj.as_dict() else { continue };
            let partial = d.get(b"T").and_then(Object::as_string).map(decode_text);
            let full = match (&partial, prefix.is_empty()) {
                (Some(p), true) => p.clone(),
                (Some(p), false) => format!("{prefix}.{p}"),
                (None, _) => prefix.clone(),
            };
            let ft = d.name(b"FT").map(<[u8]>::to_vec).or(inherited_ft.clone());
            let kids: Vec<Object> = d
                .get(b"Kids")
                .map(|k| self.resolve(rev, k))
                .and_then(|k| k.as_array().map(<[Object]>::to_vec))
                .unwrap_or_default();
            // Kids with a /T are fields; kids without are this field's widgets.
            let mut field_kids = Vec::new();
            let mut widget_kids = Vec::new();
            for k in kids {
                let kd = self.resolve(rev, &k);
                if kd.as_dict().and_then(|x| x.get(b"T")).is_some() {
                    field_kids.push(k);
                } else if let Some(kn) = k.as_ref() {
                    widget_kids.push((kn, kd));
                }
            }
            if !field_kids.is_empty() {
                for k in field_kids.into_iter().rev() {
                    stack.push((k, full.clone(), ft.clone(), depth + 1));
                }
                continue;
            }
            let Some(n) = num else { continue };
            let is_sig = ft.as_deref() == Some(b"Sig");
            let mut visible = d.name(b"Subtype") == Some(b"Widget") && field_visible(d);
            for (wn, wd) in &widget_kids {
                map.widgets.insert(*wn, n);
                if let Some(wd) = wd.as_dict() {
                    visible |= field_visible(wd);
                }
            }
            if d.name(b"Subtype") == Some(b"Widget") {
                map.widgets.insert(n, n);
            }
            let value = d.get(b"V").cloned().filter(|v| !matches!(v, Object::Null));
            if is_sig && value.is_some() {
                map.signed.push(FieldRef {
                    name: full,
                    sig: value.as_ref().and_then(Object::as_ref),
                });
            }
            map.fields.insert(
                n,
                FieldInfo {
                    is_sig,
                    value,
                    visible,
                },
            );
        }
        map
    }

    fn get_rc(&mut self, rev: usize, num: u32) -> std::rc::Rc<Object> {
        match self.pdf.get_rc(rev, num) {
            Ok(o) => o,
            Err(e) => {
                if self.incomplete.len() < 20 {
                    self.incomplete.push(problem(
                        "unreadable_object",
                        format!("对象 {num} 无法读取：{e}"),
                    ));
                }
                std::rc::Rc::new(Object::Null)
            }
        }
    }

    /// Every object number reachable from the catalog of `rev`.
    fn reachable(&mut self, rev: usize) -> HashSet<u32> {
        // What is displayed hangs from /Root; other trailer keys (/Info, writers' private
        // entries) are not content.
        match self.pdf.trailer_get(rev, b"Root").cloned() {
            Some(root) => self.reachable_from(rev, &root),
            None => HashSet::new(),
        }
    }

    /// Object numbers reachable from one starting object (bounded).
    fn reachable_from(&mut self, rev: usize, start: &Object) -> HashSet<u32> {
        let mut seen = HashSet::new();
        let mut stack = Vec::new();
        refs_in(start, &mut stack);
        while let Some(n) = stack.pop() {
            if seen.len() >= MAX_WALK {
                self.incomplete
                    .push(problem("graph_too_large", "对象图过大，未能完整分析"));
                break;
            }
            if seen.insert(n) {
                let o = self.get_rc(rev, n);
                refs_in(&o, &mut stack);
            }
        }
        seen
    }
}

/// The object numbers an object refers to directly (its nesting is bounded by the parser).
fn refs_in(o: &Object, out: &mut Vec<u32>) {
    match o {
        Object::Ref(n, _) => out.push(*n),
        Object::Array(a) => a.iter().for_each(|x| refs_in(x, out)),
        Object::Dict(d) => d.0.iter().for_each(|(_, v)| refs_in(v, out)),
        Object::Stream(s) => s.dict.0.iter().for_each(|(_, v)| refs_in(v, out)),
        _ => {}
    }
}

/// Verifies a PDF; `Err` only when it cannot be read as a PDF at all.
pub fn verify(bytes: &[u8], opts: &Options) -> Result<Report, NotPdf> {
    let pdf = Pdf::parse(bytes).map_err(|e| NotPdf(e.0))?;
    let mut ctx = Ctx {
        pdf: &pdf,
        opts,
        incomplete: Vec::new(),
        whole_file: Default::default(),
        sha256_prefix: Default::default(),
        forms: HashMap::new(),
    };
    let mut doc_problems = Vec::new();
    let last = pdf.last_revision();
    let final_end = pdf.revisions.last().map(|r| r.end).unwrap_or(0);
    if final_end < bytes.len()
        && !bytes[final_end..]
            .iter()
            .all(|b| b.is_ascii_whitespace() || *b == 0)
    {
        doc_problems.push(problem(
            "trailing_data",
            format!(
                "最后一个修订（%%EOF）之后还有 {} 字节未签名的数据",
                bytes.len() - final_end
            ),
        ));
    }
    if ctx.root_ref(last).is_none() {
        ctx.incomplete
            .push(problem("no_catalog", "找不到文档目录（/Root）"));
    }
    let form = ctx.form_at(last);
    let dss = DssData::collect(&mut ctx, last);

    // One report per signature dictionary, even when several fields point at it.
    let mut seen_sigs = HashSet::new();
    let mut sigs: Vec<SigWork> = Vec::new();
    for f in &form.signed {
        if let Some(n) = f.sig
            && !seen_sigs.insert(n)
        {
            continue;
        }
        sigs.push(analyse_signature(&mut ctx, f, &dss));
    }
    sigs.sort_by_key(|s| (s.revision, s.report.field.clone()));

    // Certification: the signature the catalog's /Perms /DocMDP names, or one with a DocMDP
    // reference. Its P governs what may change after it.
    let perms_docmdp = ctx
        .catalog(last)
        .get(b"Perms")
        .map(|p| ctx.resolve(last, p))
        .and_then(|p| {
            p.as_dict()
                .and_then(|d| d.get(b"DocMDP"))
                .and_then(Object::as_ref)
        });
    let mut certification: Option<(usize, i64)> = None;
    for s in &mut sigs {
        if s.docmdp.is_some() || (perms_docmdp.is_some() && perms_docmdp == s.sig_num) {
            if certification.is_some() {
                s.report
                    .problems
                    .push(problem("second_certification", "文档含有多个认证签名"));
                s.report.integrity = Integrity::Broken;
                continue;
            }
            s.report.kind = Kind::Certification;
            certification = Some((s.revision, s.docmdp.unwrap_or(2)));
        }
    }
    if let Some((cert_rev, _)) = certification
        && sigs
            .iter()
            .any(|s| s.revision < cert_rev && s.report.kind == Kind::Approval)
    {
        doc_problems.push(problem(
            "certification_not_first",
            "认证签名之前已有其他签名",
        ));
    }

    // The revision that wrote each signature dictionary (for a sound signature, the revision
    // its byte range ends at): a field may be created after a signature only together with its
    // own signature. Whether that signature is sound is its own report's business.
    let sig_revs: HashMap<u32, usize> = sigs
        .iter()
        .filter_map(|s| s.sig_num)
        .filter_map(|num| {
            let k = (0..=last).rev().find(|&k| {
                pdf.revisions[k]
                    .sections
                    .iter()
                    .any(|&sec| pdf.sections[sec].entries.contains_key(&num))
            })?;
            Some((num, k))
        })
        .collect();
    let mut change_cache: HashMap<usize, (Changes, Vec<Problem>)> = HashMap::new();
    for s in &mut sigs {
        if s.revision == usize::MAX {
            continue;
        }
        let (changes, probs) = change_cache
            .entry(s.revision)
            .or_insert_with(|| changes_since(&mut ctx, s.revision, last, certification, &sig_revs))
            .clone();
        s.report.changes_after = changes;
        s.report.problems.extend(probs);
    }

    // Levels need the DSS's revision and the document time-stamps after it.
    // Revisions that wrote the DSS (or the catalog pointing at a new one).
    let mut dss_updates = Vec::new();
    let mut prev_dss: Option<Object> = None;
    for r in 0..=last {
        let cur = ctx.catalog(r).get(b"DSS").cloned();
        let dss_obj = cur.as_ref().and_then(Object::as_ref);
        let written_here = dss_obj.is_some_and(|n| {
            pdf.revisions[r]
                .sections
                .iter()
                .any(|&s| pdf.sections[s].entries.contains_key(&n))
        });
        let changed = match (&prev_dss, &cur) {
            (None, Some(_)) => true,
            (Some(a), Some(b)) => !same(bytes, a, b),
            _ => false,
        };
        if cur.is_some() && (changed || written_here) {
            dss_updates.push(r);
        }
        prev_dss = cur;
    }
    let doc_ts_revs: Vec<usize> = sigs
        .iter()
        .filter(|s| {
            s.report.kind == Kind::DocumentTimestamp && s.report.integrity == Integrity::Intact
        })
        .map(|s| s.revision)
        .collect();
    for s in &mut sigs {
        s.report.level = level(s, &dss, &dss_updates, &doc_ts_revs);
        s.report.verdict = signature_verdict(&s.report);
    }

    doc_problems.append(&mut ctx.incomplete);
    for p in pdf.problems.borrow().iter() {
        doc_problems.push(problem("structure", format!("文件结构问题：{p}")));
    }
    let reports: Vec<SignatureReport> = sigs.into_iter().map(|s| s.report).collect();
    let sha256 = hex_lower(
        &ctx.whole_file
            .get()
            .unwrap_or_else(|| openssl::sha::sha256(bytes)),
    );
    let verdict = document_verdict(&reports, &doc_problems);
    Ok(Report {
        sha256,
        size: bytes.len() as u64,
        revisions: pdf.revisions.len(),
        signatures: reports,
        verdict,
        problems: doc_problems,
    })
}

/// A short text form of a report for people (the CLI without --json).
pub fn summary(r: &Report) -> String {
    use std::fmt::Write as _;
    let word = |v: Verdict| match v {
        Verdict::Valid => "有效 (valid)",
        Verdict::Invalid => "无效 (invalid)",
        Verdict::Indeterminate => "无法确定 (indeterminate)",
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "文件 SHA-256 {}，{} 字节，{} 个修订",
        r.sha256, r.size, r.revisions
    );
    let _ = writeln!(out, "结论：{}", word(r.verdict));
    for p in &r.problems {
        let _ = writeln!(out, "  ! [{}] {}", p.code, p.message);
    }
    for (i, s) in r.signatures.iter().enumerate() {
        let _ = writeln!(
            out,
            "签名 {}：域 {}，{:?}，签署人 {}，时间 {} ({})，修订 {}，完整性 {:?}，信任 {:?}，之后改动 {:?}，级别 {}，{}",
            i + 1,
            s.field,
            s.kind,
            s.signer.as_ref().map(|x| x.subject.as_str()).unwrap_or("?"),
            s.signing_time.as_deref().unwrap_or("?"),
            s.signing_time_source.unwrap_or("-"),
            s.revision,
            s.integrity,
            s.trust,
            s.changes_after,
            serde_json::to_value(s.level)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            word(s.verdict)
        );
        for p in &s.problems {
            let _ = writeln!(out, "  ! [{}] {}", p.code, p.message);
        }
    }
    out
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Document-level codes that make the file invalid rather than indeterminate.
const INVALID_DOC_CODES: &[&str] = &["trailing_data", "certification_not_first"];

fn document_verdict(sigs: &[SignatureReport], problems: &[Problem]) -> Verdict {
    if sigs.iter().any(|s| s.verdict == Verdict::Invalid)
        || problems.iter().any(|p| INVALID_DOC_CODES.contains(&p.code))
    {
        return Verdict::Invalid;
    }
    if sigs.is_empty() || !problems.is_empty() {
        return Verdict::Indeterminate;
    }
    if sigs.iter().all(|s| s.verdict == Verdict::Valid) {
        Verdict::Valid
    } else {
        Verdict::Indeterminate
    }
}

fn signature_verdict(s: &SignatureReport) -> Verdict {
    if s.integrity == Integrity::Broken
        || s.changes_after == Changes::Disallowed
        || matches!(s.trust, Trust::Revoked | Trust::InvalidChain)
    {
        return Verdict::Invalid;
    }
    if s.integrity == Integrity::Intact
        && s.trust == Trust::Trusted
        && !s.problems.iter().any(|p| p.code == "weak_algorithm")
    {
        Verdict::Valid
    } else {
        Verdict::Indeterminate
    }
}

/// Validation data from the DSS of the final revision.
#[derive(Default)]
struct DssData {
    certs: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    /// The issuers' names (DER) of the CRLs, for the level.
    crl_issuers: Vec<Vec<u8>>,
    ocsps: usize,
}

impl DssData {
    fn collect(ctx: &mut Ctx<'_, '_>, rev: usize) -> DssData {
        let mut out = DssData::default();
        let cat = ctx.catalog(rev);
        let Some(dss) = cat.get(b"DSS") else {
            return out;
        };
        let dss = ctx.resolve(rev, dss);
        let Some(d) = dss.as_dict().cloned() else {
            return out;
        };
        for (key, which) in [(&b"Certs"[..], 0), (b"CRLs", 1), (b"OCSPs", 2)] {
            let Some(list) = d.get(key).map(|l| ctx.resolve(rev, l)) else {
                continue;
            };
            for item in list.as_array().unwrap_or(&[]).iter().take(10_000) {
                let Object::Stream(s) = ctx.resolve(rev, item) else {
                    continue;
                };
                let Ok(data) = ctx.pdf.decode(&s) else {
                    continue;
                };
                match which {
                    0 => out.certs.push(data),
                    1 => {
                        if let Ok(crl) = X509Crl::from_der(&data) {
                            out.crl_issuers.extend(crl.issuer_name().to_der().ok());
                            out.crls.push(data);
                        }
                    }
                    _ => out.ocsps += 1,
                }
            }
        }
        out
    }
}

struct SigWork {
    report: SignatureReport,
    sig_num: Option<u32>,
    /// 0-based revision the signature covers; `usize::MAX` when none.
    revision: usize,
    docmdp: Option<i64>,
    /// The signer's certificate and the certificates that came with it.
    signer_cert: Option<X509>,
    timestamped: bool,
}

fn blank_report(field: &str) -> SignatureReport {
    SignatureReport {
        field: field.to_string(),
        sub_filter: String::new(),
        kind: Kind::Approval,
        signer: None,
        signing_time: None,
        signing_time_source: None,
        revision: 0,
        covers_whole_document: false,
        integrity: Integrity::Unknown,
        trust: Trust::Unknown,
        changes_after: Changes::None,
        level: Level::None,
        verdict: Verdict::Indeterminate,
        problems: Vec::new(),
    }
}

fn analyse_signature(ctx: &mut Ctx<'_, '_>, f: &FieldRef, dss: &DssData) -> SigWork {
    let mut w = SigWork {
        report: blank_report(&f.name),
        sig_num: f.sig,
        revision: usize::MAX,
        docmdp: None,
        signer_cert: None,
        timestamped: false,
    };
    let broken = |w: &mut SigWork, code: &'static str, msg: String| {
        w.report.integrity = Integrity::Broken;
        w.report.problems.push(problem(code, msg));
    };
    let pdf = ctx.pdf;
    let last = pdf.last_revision();
    let Some(num) = f.sig else {
        broken(
            &mut w,
            "signature_not_indirect",
            "签名字典不是间接对象，无法核对其字节范围".into(),
        );
        return w;
    };
    let Some(Entry::InUse { offset, .. }) = pdf.entry(last, num) else {
        broken(
            &mut w,
            "signature_missing",
            format!("签名字典（对象 {num}）不存在或在对象流中"),
        );
        return w;
    };
    let sig = match pdf.parse_indirect_at(offset, Some(last)) {
        Ok((_, _, Object::Dict(d))) => d,
        _ => {
            broken(
                &mut w,
                "signature_missing",
                format!("签名字典（对象 {num}）无法读取"),
            );
            return w;
        }
    };
    w.report.sub_filter = sig
        .name(b"SubFilter")
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default();
    if sig.name(b"Type") == Some(b"DocTimeStamp") || w.report.sub_filter == "ETSI.RFC3161" {
        w.report.kind = Kind::DocumentTimestamp;
    }
    w.docmdp = docmdp_of(ctx, last, &sig);

    // The byte range: [0 a b c], the hole exactly this dictionary's /Contents, ending a revision.
    let data = pdf.data;
    let br: Option<Vec<i64>> = sig
        .get(b"ByteRange")
        .and_then(Object::as_array)
        .map(|a| a.iter().map(|o| o.as_int().unwrap_or(-1)).collect());
    let Some(br) = br.filter(|b| b.len() == 4 && b.iter().all(|&v| v >= 0)) else {
        broken(
            &mut w,
            "byte_range_malformed",
            "/ByteRange 缺失或格式错误（须为四个非负整数）".into(),
        );
        return w;
    };
    let (a, b, c) = (br[1] as usize, br[2] as usize, br[3] as usize);
    let Some(end) = b.checked_add(c) else {
        broken(&mut w, "byte_range_malformed", "/ByteRange 数值溢出".into());
        return w;
    };
    if br[0] != 0 || a >= b || end > data.len() {
        broken(
            &mut w,
            "byte_range_malformed",
            format!(
                "/ByteRange [{} {a} {b} {c}] 不是从文件开头起、覆盖签名值两侧的范围",
                br[0]
            ),
        );
        return w;
    }
    match pdf.value_span(offset, b"Contents") {
        // The hole holds the hex digits and nothing else: no whitespace or other bytes that no
        // signature covers and that could be changed without changing the value.
        Some((s, e))
            if s == a
                && e == b
                && data[a] == b'<'
                && data[b - 1] == b'>'
                && data[a + 1..b - 1].iter().all(u8::is_ascii_hexdigit) => {}
        _ => {
            broken(
                &mut w,
                "byte_range_hole",
                "/ByteRange 留出的空洞不恰好是本签名的 /Contents".into(),
            );
            return w;
        }
    }
    if offset >= end {
        broken(
            &mut w,
            "signature_outside_range",
            "签名字典不在其签署的范围内".into(),
        );
        return w;
    }
    w.report.covers_whole_document = end == data.len();
    let rev = pdf.revisions.iter().position(|r| {
        end <= r.end && r.end - end <= 2 && data[..end].ends_with(b"%%EOF") || r.end == end
    });
    let Some(rev) = rev else {
        broken(
            &mut w,
            "byte_range_not_revision",
            "签名范围没有止于某个修订的末尾（%%EOF）".into(),
        );
        return w;
    };
    w.revision = rev;
    w.report.revision = rev + 1;
    // The signed revision must itself hold this very dictionary.
    if pdf.entry(rev, num) != pdf.entry(last, num) {
        broken(
            &mut w,
            "signature_replaced",
            "签名字典在签署之后被替换".into(),
        );
        return w;
    }
    let contents = sig
        .get(b"Contents")
        .and_then(Object::as_string)
        .unwrap_or(&[]);
    if contents.iter().all(|&x| x == 0) {
        broken(&mut w, "contents_empty", "/Contents 为空或全为零".into());
        return w;
    }
    // After the CMS only zero padding may follow: anything else in the hole would be bytes that
    // no signature covers.
    match signed::element_len(contents) {
        Some(len) if contents[len..].iter().all(|&x| x == 0) => {}
        Some(_) => {
            broken(
                &mut w,
                "contents_padding",
                "/Contents 中签名数据之后的填充不全为零".into(),
            );
            return w;
        }
        None => {
            broken(
                &mut w,
                "cms_malformed",
                "/Contents 不是可读的签名数据".into(),
            );
            return w;
        }
    }
    let whole_file = ctx.whole_file.clone();
    let prefix = ctx.sha256_prefix.clone();
    let hash_ranges = |md: MessageDigest| -> Vec<u8> {
        if md.type_() == openssl::nid::Nid::SHA256 {
            // The bytes before this signature's hole: from the state kept for an earlier hole,
            // or hashed here and kept for later ones.
            let mut h = {
                let mut kept = prefix.borrow_mut();
                match kept.as_ref() {
                    Some((p, state)) if *p <= a => {
                        let mut h = state.clone();
                        h.update(&data[*p..a]);
                        h
                    }
                    _ => {
                        let mut h = openssl::sha::Sha256::new();
                        h.update(&data[..a]);
                        *kept = Some((a, h.clone()));
                        h
                    }
                }
            };
            // A range over the whole file shares its prefix with the file's own digest (the
            // report's `sha256`) too.
            if end == data.len() {
                let mut whole = h.clone();
                whole.update(&data[a..end]);
                whole_file.set(Some(whole.finish()));
            }
            h.update(&data[b..end]);
            return h.finish().to_vec();
        }
        let digest = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let mut h = Hasher::new(md)?;
            h.update(&data[..a])?;
            h.update(&data[b..end])?;
            Ok(h.finish()?.to_vec())
        };
        digest().unwrap_or_default()
    };

    if w.report.kind == Kind::DocumentTimestamp {
        match signed::check_timestamp(contents, &hash_ranges) {
            Ok(tok)
                if !embedded_certificates_sound(
                    &tok.certificates
                        .iter()
                        .map(Vec::as_slice)
                        .collect::<Vec<_>>(),
                    dss,
                    &ctx.opts.trust,
                ) =>
            {
                broken(
                    &mut w,
                    "cms_certificate_invalid",
                    "时间戳中附带的证书已损坏或被改动".into(),
                );
            }
            Ok(tok) => {
                w.report.integrity = Integrity::Intact;
                w.report.signing_time = Some(rfc3339(tok.gen_time));
                w.report.signing_time_source = Some("timestamp");
                set_signer(&mut w.report, &tok.signer);
                let extra: Vec<&[u8]> = tok.certificates.iter().map(Vec::as_slice).collect();
                w.report.trust = trust_of(
                    ctx.opts,
                    &tok.signer,
                    &extra,
                    &[],
                    dss,
                    tok.gen_time,
                    Purpose::TimeStamping,
                    &mut w.report.problems,
                );
                w.signer_cert = Some(tok.signer);
            }
            Err(e) => cms_failed(&mut w.report, e),
        }
        return w;
    }

    // Some signers write BER; it is re-encoded once, and the signed attributes (DER by rule)
    // come out byte for byte the same.
    let normalised;
    let contents = match signed::parse(contents) {
        Ok(_) => contents,
        Err(_) => match signed::ber_to_der(contents) {
            Ok(d) => {
                normalised = d;
                &normalised[..]
            }
            Err(_) => contents,
        },
    };
    let sd = match signed::parse(contents) {
        Ok(sd) => sd,
        Err(e) => {
            cms_failed(&mut w.report, e);
            return w;
        }
    };
    match w.report.sub_filter.as_str() {
        "ETSI.CAdES.detached" | "adbe.pkcs7.detached" => {}
        other => {
            w.report.integrity = Integrity::Unknown;
            w.report.problems.push(problem(
                "unsupported_sub_filter",
                format!("不支持的签名格式 /SubFilter /{other}"),
            ));
            return w;
        }
    }
    if sd.content.is_some() {
        broken(&mut w, "not_detached", "分离式签名不应封装内容".into());
        return w;
    }
    let md = match sd.digest() {
        Ok(md) => md,
        Err(e) => {
            cms_failed(&mut w.report, e);
            return w;
        }
    };
    let signer = match sd.verify(&hash_ranges(md)) {
        Ok(c) => c,
        Err(e) => {
            if let Ok(c) = sd.signer_certificate() {
                set_signer(&mut w.report, &c);
            }
            cms_failed(&mut w.report, e);
            return w;
        }
    };
    // Checked once the signature itself verifies, so a wrong digest is reported as such.
    if !embedded_certificates_sound(&sd.certificates, dss, &ctx.opts.trust) {
        broken(
            &mut w,
            "cms_certificate_invalid",
            "签名数据中附带的证书已损坏或被改动".into(),
        );
        return w;
    }
    w.report.integrity = Integrity::Intact;
    set_signer(&mut w.report, &signer);
    if sd.is_weak() {
        w.report.problems.push(problem(
            "weak_algorithm",
            "签名使用了已不安全的算法（SHA-1）",
        ));
    }
    if w.report.sub_filter == "ETSI.CAdES.detached" {
        if !sd.has_signing_certificate_v2()
            && !matches!(
                sd.signed_attribute("1.2.840.113549.1.9.16.2.12"),
                Ok(Some(_))
            )
        {
            w.report.problems.push(problem(
                "no_signing_certificate_attribute",
                "CAdES 签名缺少 signing-certificate 属性",
            ));
        }
        if matches!(
            sd.signed_attribute(crate::pki::cms::ID_SIGNING_TIME),
            Ok(Some(_))
        ) {
            w.report.problems.push(problem(
                "signing_time_attribute",
                "PAdES 基线签名不应含 signingTime 属性",
            ));
        }
    }

    // Signing time: a verified signature time-stamp, else the signer's claim in /M.
    let mut validation_time = ctx.opts.now;
    let tokens = sd.unsigned_attribute(crate::pki::cms::ID_AA_SIGNATURE_TIME_STAMP_TOKEN);
    if let Some(token) = tokens.first() {
        let value = sd.signature;
        match signed::check_timestamp(token.raw, &|m| {
            openssl::hash::hash(m, value)
                .map(|d| d.to_vec())
                .unwrap_or_default()
        }) {
            Ok(tok)
                if !embedded_certificates_sound(
                    &tok.certificates
                        .iter()
                        .map(Vec::as_slice)
                        .collect::<Vec<_>>(),
                    dss,
                    &ctx.opts.trust,
                ) =>
            {
                broken(
                    &mut w,
                    "cms_certificate_invalid",
                    "签名时间戳中附带的证书已损坏或被改动".into(),
                );
                return w;
            }
            Ok(tok) => {
                let extra: Vec<&[u8]> = tok.certificates.iter().map(Vec::as_slice).collect();
                let mut tsa_problems = Vec::new();
                let tsa_trust = trust_of(
                    ctx.opts,
                    &tok.signer,
                    &extra,
                    &[],
                    dss,
                    tok.gen_time,
                    Purpose::TimeStamping,
                    &mut tsa_problems,
                );
                // An intact token proves the time only if its unit is trusted; the chain is
                // then validated at that time rather than now.
                w.timestamped = true;
                w.report.signing_time = Some(rfc3339(tok.gen_time));
                w.report.signing_time_source = Some("timestamp");
                if tsa_trust == Trust::Trusted {
                    validation_time = tok.gen_time;
                } else {
                    w.report.problems.push(problem(
                        "timestamp_untrusted",
                        "签名时间戳的签发单位不受信任",
                    ));
                }
            }
            Err(e) => w
                .report
                .problems
                .push(problem("timestamp_invalid", format!("签名时间戳无效：{e}"))),
        }
    }
    if w.report.signing_time.is_none()
        && let Some(m) = sig
            .get(b"M")
            .and_then(Object::as_string)
            .and_then(parse_pdf_date)
    {
        w.report.signing_time = Some(rfc3339(m));
        w.report.signing_time_source = Some("/M");
    }
    let extra = sd.certificates.clone();
    let crls = sd.crls.clone();
    w.report.trust = trust_of(
        ctx.opts,
        &signer,
        &extra,
        &crls,
        dss,
        validation_time,
        Purpose::DocumentSigning,
        &mut w.report.problems,
    );
    w.signer_cert = Some(signer);
    w
}

/// The certificates a CMS carries are not covered by its signature; a changed one must not pass
/// unnoticed. Each must parse, and each whose issuer is at hand (in the CMS, the DSS or the
/// trust anchors) must carry that issuer's valid signature.
fn embedded_certificates_sound(certs: &[&[u8]], dss: &DssData, anchors: &[X509]) -> bool {
    let parsed: Vec<Option<X509>> = certs
        .iter()
        .map(|c| crate::pki::cache::certificate(c))
        .collect();
    if parsed.iter().any(Option::is_none) {
        return false;
    }
    let pool: Vec<X509> = parsed
        .iter()
        .flatten()
        .cloned()
        .chain(
            dss.certs
                .iter()
                .filter_map(|c| crate::pki::cache::certificate(c)),
        )
        .chain(anchors.iter().cloned())
        .collect();
    parsed.iter().flatten().all(|cert| {
        let issuer_name = cert.issuer_name().to_der().ok();
        let issuers: Vec<&X509> = pool
            .iter()
            .filter(|p| p.subject_name().to_der().ok() == issuer_name)
            .collect();
        issuers.is_empty()
            || issuers
                .iter()
                .any(|i| crate::pki::cache::signed_by(cert, i))
    })
}

fn cms_failed(r: &mut SignatureReport, e: CmsFailure) {
    // An algorithm nobody here can check is as good as a broken signature for a contract (and
    // a changed byte in an OID looks exactly like it).
    r.integrity = Integrity::Broken;
    let msg = match &e {
        CmsFailure::Malformed(s) => format!("签名数据（CMS）格式错误：{s}"),
        CmsFailure::UnsupportedAlgorithm(s) => format!("不支持的算法 {s}"),
        CmsFailure::SignerCertificateMissing => "签名中缺少签署人证书".into(),
        CmsFailure::DigestMismatch => "文档摘要与签名不符：签署后内容被改动".into(),
        CmsFailure::BadSignature => "签名值验证失败".into(),
        CmsFailure::SigningCertificateMismatch => "签名属性中的证书摘要与签署人证书不符".into(),
        CmsFailure::SignedAttributesNotDer => "签名属性不是 DER 编码（集合未排序）".into(),
    };
    r.problems.push(problem(e.code(), msg));
}

fn set_signer(r: &mut SignatureReport, cert: &X509) {
    r.signer = Some(Signer {
        subject: name_string(cert.subject_name()),
        issuer: name_string(cert.issuer_name()),
        serial: cert
            .serial_number()
            .to_bn()
            .map(|b| hex_upper(&b.to_vec()))
            .unwrap_or_default(),
    });
}

type TrustEntry = (Trust, Vec<Problem>);

/// Chain validations by their inputs. Seals and CA chains repeat from document to document, and
/// OpenSSL's path validation costs more than the rest of a verification; every input that can
/// change the outcome is in the key, the time to the second when it comes from a time-stamp and
/// to the minute when it is "now". Bounded: emptied when full.
fn trust_cache() -> &'static std::sync::Mutex<HashMap<[u8; 32], TrustEntry>> {
    static T: std::sync::OnceLock<std::sync::Mutex<HashMap<[u8; 32], TrustEntry>>> =
        std::sync::OnceLock::new();
    T.get_or_init(|| std::sync::Mutex::new(HashMap::new()))
}

/// Forgets every cached certificate and path validation (benchmarks measure the cold path).
pub fn clear_caches() {
    crate::pki::cache::clear();
    if let Ok(mut t) = trust_cache().lock() {
        t.clear();
    }
}

#[allow(clippy::too_many_arguments)]
fn trust_of(
    opts: &Options,
    cert: &X509,
    extra: &[&[u8]],
    crls: &[&[u8]],
    dss: &DssData,
    at: OffsetDateTime,
    purpose: Purpose,
    problems: &mut Vec<Problem>,
) -> Trust {
    if opts.trust.is_empty() {
        problems.push(problem(
            "no_trust_anchor",
            "未配置信任根，无法判断证书是否可信",
        ));
        return Trust::Untrusted;
    }
    let mut h = openssl::sha::Sha256::new();
    let mut part = |tag: u8, b: &[u8]| {
        h.update(&[tag]);
        h.update(&(b.len() as u64).to_be_bytes());
        h.update(b);
    };
    part(0, &cert.to_der().unwrap_or_default());
    for a in &opts.trust {
        part(1, &a.to_der().unwrap_or_default());
    }
    for c in extra
        .iter()
        .copied()
        .chain(dss.certs.iter().map(Vec::as_slice))
    {
        part(2, c);
    }
    for c in crls
        .iter()
        .copied()
        .chain(dss.crls.iter().map(Vec::as_slice))
    {
        part(3, c);
    }
    let when = if at == opts.now {
        at.unix_timestamp() / 60 * 60
    } else {
        at.unix_timestamp()
    };
    part(4, &when.to_be_bytes());
    part(5, &[purpose as u8]);
    let key = h.finish();
    if let Some((trust, cached)) = trust_cache().lock().ok().and_then(|t| t.get(&key).cloned()) {
        problems.extend(cached);
        return trust;
    }
    let mut found = Vec::new();
    let trust = validate_chain(opts, cert, extra, crls, dss, at, purpose, &mut found);
    if let Ok(mut t) = trust_cache().lock() {
        if t.len() >= 4096 {
            t.clear();
        }
        t.insert(key, (trust, found.clone()));
    }
    problems.extend(found);
    trust
}

#[allow(clippy::too_many_arguments)]
fn validate_chain(
    opts: &Options,
    cert: &X509,
    extra: &[&[u8]],
    crls: &[&[u8]],
    dss: &DssData,
    at: OffsetDateTime,
    purpose: Purpose,
    problems: &mut Vec<Problem>,
) -> Trust {
    let v = Validation {
        anchors: opts.trust.clone(),
        intermediates: extra
            .iter()
            .copied()
            .chain(dss.certs.iter().map(Vec::as_slice))
            .filter_map(crate::pki::cache::certificate)
            .collect(),
        crls: crls
            .iter()
            .copied()
            .chain(dss.crls.iter().map(Vec::as_slice))
            .filter_map(|c| X509Crl::from_der(c).ok())
            .collect(),
        require_revocation: false,
    };
    match v.validate(cert, at, purpose) {
        Ok(_) => Trust::Trusted,
        Err(f) => {
            let (trust, msg) = match &f {
                ValidationFailure::Expired | ValidationFailure::NotYetValid => {
                    (Trust::Expired, "证书在签署时间不在有效期内")
                }
                ValidationFailure::Revoked { .. } => (Trust::Revoked, "证书已在签署前被吊销"),
                ValidationFailure::UnknownIssuer => (Trust::Untrusted, "证书链不通向受信任的根"),
                ValidationFailure::RevocationUnknown => (Trust::Unknown, "无法取得吊销信息"),
                _ => (Trust::InvalidChain, "证书链无效"),
            };
            problems.push(problem(
                match trust {
                    Trust::Expired => "certificate_expired",
                    Trust::Revoked => "certificate_revoked",
                    Trust::Untrusted => "untrusted_chain",
                    Trust::Unknown => "revocation_unknown",
                    _ => "invalid_chain",
                },
                format!("{msg}（{f}）"),
            ));
            trust
        }
    }
}

/// /Reference [<< /TransformMethod /DocMDP /TransformParams << /P n >> >>] → n.
fn docmdp_of(ctx: &mut Ctx<'_, '_>, rev: usize, sig: &Dict) -> Option<i64> {
    let refs = sig.get(b"Reference").map(|r| ctx.resolve(rev, r))?;
    for r in refs.as_array().unwrap_or(&[]) {
        let r = ctx.resolve(rev, r);
        let Some(d) = r.as_dict() else { continue };
        if d.name(b"TransformMethod") == Some(b"DocMDP") {
            let p = d
                .get(b"TransformParams")
                .map(|t| ctx.resolve(rev, t))
                .and_then(|t| {
                    t.as_dict()
                        .and_then(|t| t.get(b"P"))
                        .and_then(Object::as_int)
                })
                .unwrap_or(2);
            return Some(p.clamp(1, 3));
        }
    }
    None
}

fn level(s: &SigWork, dss: &DssData, dss_updates: &[usize], doc_ts: &[usize]) -> Level {
    if s.report.kind == Kind::DocumentTimestamp
        || s.report.sub_filter != "ETSI.CAdES.detached"
        || s.report.integrity != Integrity::Intact
    {
        return Level::None;
    }
    if !s.timestamped {
        return Level::BB;
    }
    // B-LT: revocation data for the signer's issuer in a DSS written after the signature.
    let issuer_der = s
        .signer_cert
        .as_ref()
        .and_then(|c| c.issuer_name().to_der().ok());
    let has_data = dss.ocsps > 0
        || dss
            .crl_issuers
            .iter()
            .any(|c| Some(c) == issuer_der.as_ref());
    let Some(&dss_rev) = dss_updates.iter().find(|&&r| r > s.revision) else {
        return Level::BT;
    };
    if !has_data {
        return Level::BT;
    }
    // B-LTA: a document time-stamp over that validation data.
    if doc_ts.iter().any(|&t| t >= dss_rev) {
        Level::BLTA
    } else {
        Level::BLT
    }
}

/// Page objects of a revision and their /Annots (resolved to object numbers when indirect).
fn pages(ctx: &mut Ctx<'_, '_>, rev: usize) -> (HashSet<u32>, HashMap<u32, u32>) {
    let mut pages = HashSet::new();
    let mut annots_arrays = HashMap::new();
    let cat = ctx.catalog(rev);
    let Some(root) = cat.get(b"Pages").cloned() else {
        return (pages, annots_arrays);
    };
    let mut stack = vec![(root, 0usize)];
    let mut seen = HashSet::new();
    while let Some((node, depth)) = stack.pop() {
        let Some(n) = node.as_ref() else { continue };
        if depth > 64 || !seen.insert(n) || seen.len() > MAX_WALK {
            continue;
        }
        let obj = ctx.get(rev, n);
        let Some(d) = obj.as_dict() else { continue };
        if let Some(kids) = d.get(b"Kids") {
            let kids = ctx.resolve(rev, kids);
            for k in kids.as_array().unwrap_or(&[]) {
                stack.push((k.clone(), depth + 1));
            }
        } else {
            pages.insert(n);
            if let Some(a) = d.get(b"Annots").and_then(Object::as_ref) {
                annots_arrays.insert(a, n);
            }
        }
    }
    (pages, annots_arrays)
}

/// Compares revision `r` (what was signed) with the final revision, object by object.
fn changes_since(
    ctx: &mut Ctx<'_, '_>,
    r: usize,
    last: usize,
    certification: Option<(usize, i64)>,
    sig_revs: &HashMap<u32, usize>,
) -> (Changes, Vec<Problem>) {
    if r >= last {
        return (Changes::None, vec![]);
    }
    let pdf = ctx.pdf;
    let data = pdf.data;
    let mut problems = Vec::new();
    let mut worst = Changes::None;
    let disallow = |problems: &mut Vec<Problem>, code: &'static str, msg: String| {
        if problems.len() < 50 {
            problems.push(problem(code, msg));
        }
    };
    // DocMDP applies to changes after the certification signature.
    let mdp = certification.map(|(_, p)| p);

    let root_r = ctx.root_ref(r);
    let root_f = ctx.root_ref(last);
    if root_r != root_f {
        disallow(
            &mut problems,
            "catalog_replaced",
            "签署后文档目录被替换".into(),
        );
    }
    // Object numbers written after revision r.
    let mut written: Vec<u32> = Vec::new();
    let mut seen = HashSet::new();
    for rev in &pdf.revisions[r + 1..=last] {
        for &s in &rev.sections {
            for &n in pdf.sections[s].entries.keys() {
                if seen.insert(n) {
                    written.push(n);
                }
            }
        }
    }
    written.sort_unstable();

    let form_r = ctx.form_at(r);
    let form_f = ctx.form_at(last);
    let (pages_f, annots_f) = pages(ctx, last);
    let reach_r = ctx.reachable(r);
    let info_refs: HashSet<u32> = [r, last]
        .iter()
        .filter_map(|&v| pdf.trailer_get(v, b"Info")?.as_ref())
        .collect();
    let cat_f = ctx.catalog(last);
    let metadata_ref = cat_f.get(b"Metadata").and_then(Object::as_ref);
    let dss_reach = match cat_f.get(b"DSS") {
        Some(d) => ctx.reachable_from(last, d),
        None => HashSet::new(),
    };

    // Signature fields that got a value after r, and whether each such addition is allowed.
    let newly_signed: HashMap<u32, bool> = form_f
        .fields
        .iter()
        .filter(|(n, f)| {
            f.is_sig && f.value.is_some() && form_r.fields.get(n).is_none_or(|o| o.value.is_none())
        })
        .map(|(&n, f)| (n, f.clone()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(n, f)| {
            let is_doc_ts = match f.value.as_ref() {
                Some(Object::Ref(v, _)) => {
                    let o = ctx.get_rc(last, *v);
                    o.as_dict().and_then(|d| d.name(b"Type")) == Some(b"DocTimeStamp")
                }
                Some(Object::Dict(d)) => d.name(b"Type") == Some(b"DocTimeStamp"),
                _ => false,
            };
            let existed = form_r.fields.contains_key(&n);
            let ok = match mdp {
                Some(1) => is_doc_ts,
                _ if is_doc_ts || existed => true,
                // A field created after r must come with its own signature, in the revision
                // that signature covers (Acrobat and pyHanko sign so when no empty field is
                // prepared). After certification only an invisible one, as pyHanko rules: a new
                // visible field could paint over certified content.
                Some(_) => !f.visible && created_with_signature(ctx, r, last, n, &f, sig_revs),
                None => created_with_signature(ctx, r, last, n, &f, sig_revs),
            };
            (n, ok)
        })
        .collect();
    let new_sig_objects: HashSet<u32> = form_f
        .fields
        .iter()
        .filter(|(n, _)| newly_signed.contains_key(n))
        .filter_map(|(_, f)| f.value.as_ref().and_then(Object::as_ref))
        .collect();
    let mut ap_reach = HashSet::new();
    for (&field, &ok) in &newly_signed {
        if !ok {
            continue;
        }
        let fo = ctx.get(last, field);
        if let Some(ap) = fo.as_dict().and_then(|d| d.get(b"AP")).cloned() {
            ap_reach.extend(ctx.reachable_from(last, &ap));
        }
        for (&wn, &owner) in &form_f.widgets {
            if owner == field && wn != field {
                let wo = ctx.get(last, wn);
                if let Some(ap) = wo.as_dict().and_then(|d| d.get(b"AP")).cloned() {
                    ap_reach.extend(ctx.reachable_from(last, &ap));
                }
            }
        }
    }
    for (&n, &ok) in &newly_signed {
        if ok {
            worst = worst.max(Changes::Permitted);
        } else {
            worst = Changes::Disallowed;
            let existed = form_r.fields.contains_key(&n);
            let visible = form_f.fields.get(&n).is_some_and(|f| f.visible);
            let why = match mdp {
                Some(1) => "认证签名（DocMDP P=1）不允许任何后续签名",
                Some(_) if !existed && visible => {
                    "认证之后新增了可见的签名域，可能遮盖已认证的内容"
                }
                _ => "签署后新增的签名域不是与它自己的签名在同一修订中创建的",
            };
            disallow(
                &mut problems,
                "signature_field_added",
                format!("{why}（对象 {n}）"),
            );
        }
    }

    let ok_new_widget = |n: &u32| {
        form_f.widgets.get(n).is_some_and(|owner| {
            newly_signed.get(owner) == Some(&true) && !form_r.fields.contains_key(owner)
        })
    };
    let ok_new_field = |o: &Object| {
        o.as_ref()
            .is_some_and(|n| newly_signed.get(&n) == Some(&true) && !form_r.fields.contains_key(&n))
    };

    // What the widgets of revision r show. An appearance may change only together with its
    // field's value, in the same revision (signing a field, filling it in); the objects of such
    // an appearance are judged as part of it, and no other object that r displays can be
    // excused as metadata, validation data or part of a new signature's appearance.
    let written_set: HashSet<u32> = written.iter().copied().collect();
    let appearances = Appearances::analyse(ctx, r, last, &form_r, &written_set, sig_revs);
    let shown_r = shown_content(ctx, r, &appearances.permitted);

    for n in written {
        let (er, ef) = (pdf.entry(r, n), pdf.entry(last, n));
        let in_r = matches!(er, Some(Entry::InUse { .. } | Entry::Compressed { .. }));
        let in_f = matches!(ef, Some(Entry::InUse { .. } | Entry::Compressed { .. }));
        if !in_r {
            if in_f && reach_r.contains(&n) {
                worst = Changes::Disallowed;
                disallow(
                    &mut problems,
                    "dangling_reference_filled",
                    format!("签署时指向空处的引用（对象 {n}）在签署后被填上了内容"),
                );
            } else if in_f {
                // New objects matter only through the changed objects that refer to them.
                worst = worst.max(Changes::Permitted);
            }
            continue;
        }
        let or = ctx.get(r, n);
        let of = ctx.get(last, n);
        if same(data, &or, &of) {
            continue;
        }
        if !in_f {
            if reach_r.contains(&n) {
                worst = Changes::Disallowed;
                disallow(
                    &mut problems,
                    "object_removed",
                    format!("签署后删除了对象 {n}"),
                );
            }
            continue;
        }
        let verdict = classify_change(
            ctx,
            n,
            &or,
            &of,
            &ChangeCtx {
                signed_rev: r,
                root: root_f,
                form_r: &form_r,
                form_f: &form_f,
                newly_signed: &newly_signed,
                pages_f: &pages_f,
                annots_f: &annots_f,
                info_refs: &info_refs,
                metadata_ref,
                dss_reach: &dss_reach,
                ap_reach: &ap_reach,
                new_sig_objects: &new_sig_objects,
                mdp,
                ok_new_widget: &ok_new_widget,
                ok_new_field: &ok_new_field,
                appearances: &appearances,
                shown_r: &shown_r,
            },
        );
        match verdict {
            Ok(()) => worst = worst.max(Changes::Permitted),
            Err((code, msg)) => {
                worst = Changes::Disallowed;
                disallow(&mut problems, code, msg);
            }
        }
    }
    if worst == Changes::None && !pdf.revisions[r + 1..=last].is_empty() {
        // A later revision that changed nothing visible (a re-save) is still a change made.
        worst = Changes::Permitted;
    }
    (worst, problems)
}

/// Whether signature field `n`, absent from revision `r`, was created in the very revision its
/// signature covers, holding that signature from the start and to the end.
fn created_with_signature(
    ctx: &mut Ctx<'_, '_>,
    r: usize,
    last: usize,
    n: u32,
    final_info: &FieldInfo,
    sig_revs: &HashMap<u32, usize>,
) -> bool {
    let Some(sig) = final_info.value.as_ref().and_then(Object::as_ref) else {
        return false;
    };
    let Some(&signed_in) = sig_revs.get(&sig) else {
        return false;
    };
    let Some(created) = (r + 1..=last).find(|&k| ctx.form_at(k).fields.contains_key(&n)) else {
        return false;
    };
    let at_creation = ctx.form_at(created);
    created == signed_in
        && at_creation
            .fields
            .get(&n)
            .and_then(|f| f.value.as_ref())
            .and_then(Object::as_ref)
            == Some(sig)
}

/// The appearances of the widgets that existed in the signed revision, and which of them
/// changed after it as a permitted part of signing or filling in their own field.
struct Appearances {
    /// Widgets whose appearance changed only in revisions that also changed their field's value.
    permitted: HashSet<u32>,
    /// Objects of the changed appearances (in r or later) → their widget.
    owner: HashMap<u32, u32>,
}

impl Appearances {
    fn analyse(
        ctx: &mut Ctx<'_, '_>,
        r: usize,
        last: usize,
        form_r: &FormMap,
        written: &HashSet<u32>,
        sig_revs: &HashMap<u32, usize>,
    ) -> Appearances {
        let data = ctx.pdf.data;
        let mut out = Appearances {
            permitted: HashSet::new(),
            owner: HashMap::new(),
        };
        let mut widgets: Vec<u32> = form_r.widgets.keys().copied().collect();
        widgets.sort_unstable();
        let mut budget = MAX_WALK;
        for w in widgets {
            if budget == 0 {
                ctx.incomplete
                    .push(problem("graph_too_large", "表单外观过多，未能完整分析"));
                break;
            }
            let at_r = appearance_objects(ctx, r, w, &mut budget);
            let at_f = appearance_objects(ctx, last, w, &mut budget);
            let entries_changed =
                written.contains(&w) && appearance_entries_differ(ctx, r, last, w);
            let objects_changed = at_r
                .iter()
                .chain(&at_f)
                .any(|&o| written.contains(&o) && !same(data, &ctx.get(r, o), &ctx.get(last, o)));
            if !(entries_changed || objects_changed) {
                continue;
            }
            for &o in at_r.iter().chain(&at_f) {
                out.owner.entry(o).or_insert(w);
            }
            if follows_value(ctx, r, last, w, sig_revs, &mut budget) {
                out.permitted.insert(w);
            }
        }
        out
    }
}

/// The objects an annotation's /AP (and /MK) reach in revision `rev`, within `budget`.
fn appearance_objects(ctx: &mut Ctx<'_, '_>, rev: usize, w: u32, budget: &mut usize) -> Vec<u32> {
    let wo = ctx.get_rc(rev, w);
    let Some(d) = wo.as_dict() else {
        return vec![];
    };
    let mut out = Vec::new();
    for key in [&b"AP"[..], b"MK"] {
        if let Some(ap) = d.get(key) {
            let reach = ctx.reachable_from(rev, ap);
            *budget = budget.saturating_sub(reach.len());
            out.extend(reach);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether widget `w`'s own appearance entries (/AP, /AS, /MK) differ between two revisions.
fn appearance_entries_differ(ctx: &mut Ctx<'_, '_>, a: usize, b: usize, w: u32) -> bool {
    let data = ctx.pdf.data;
    let (x, y) = (ctx.get_rc(a, w), ctx.get_rc(b, w));
    let (Some(x), Some(y)) = (x.as_dict(), y.as_dict()) else {
        return true;
    };
    [&b"AP"[..], b"AS", b"MK"]
        .iter()
        .any(|k| match (x.get(k), y.get(k)) {
            (None, None) => false,
            (Some(p), Some(q)) => !same(data, p, q),
            _ => true,
        })
}

/// Objects written in revision `k` (any section of it).
fn written_in(pdf: &Pdf<'_>, k: usize) -> HashSet<u32> {
    pdf.revisions[k]
        .sections
        .iter()
        .flat_map(|&s| pdf.sections[s].entries.keys().copied())
        .collect()
}

/// Widget `w` changed its appearance after `r` only in revisions that also changed its field's
/// value: for a signature field, the revision that gave it the signature covering that very
/// revision; for another field, a revision that wrote a new value.
fn follows_value(
    ctx: &mut Ctx<'_, '_>,
    r: usize,
    last: usize,
    w: u32,
    sig_revs: &HashMap<u32, usize>,
    budget: &mut usize,
) -> bool {
    let data = ctx.pdf.data;
    for k in r + 1..=last {
        let here = written_in(ctx.pdf, k);
        let mut changed = here.contains(&w) && appearance_entries_differ(ctx, k - 1, k, w);
        if !changed {
            let before = appearance_objects(ctx, k - 1, w, budget);
            let after = appearance_objects(ctx, k, w, budget);
            changed = before
                .iter()
                .chain(&after)
                .any(|&o| here.contains(&o) && !same(data, &ctx.get(k - 1, o), &ctx.get(k, o)));
        }
        if !changed {
            continue;
        }
        let (form_before, form_here) = (ctx.form_at(k - 1), ctx.form_at(k));
        let Some(&field) = form_here.widgets.get(&w) else {
            return false;
        };
        let (Some(now), prev) = (form_here.fields.get(&field), form_before.fields.get(&field))
        else {
            return false;
        };
        let prev_value = prev.and_then(|p| p.value.as_ref());
        let value_changed = if now.is_sig {
            prev_value.is_none()
                && now
                    .value
                    .as_ref()
                    .and_then(Object::as_ref)
                    .and_then(|v| sig_revs.get(&v))
                    == Some(&k)
        } else {
            match (prev_value, now.value.as_ref()) {
                (None, None) => false,
                (Some(a), Some(b)) if same(data, a, b) => {
                    // The same reference, to an object rewritten here, is a new value too.
                    b.as_ref().is_some_and(|v| {
                        here.contains(&v) && !same(data, &ctx.get(k - 1, v), &ctx.get(k, v))
                    })
                }
                _ => true,
            }
        };
        if !value_changed {
            return false;
        }
    }
    true
}

/// Objects revision `rev` displays: everything reachable from its catalog except the XMP
/// metadata, the validation data (DSS) and the appearances of the widgets in `skip_ap` (which
/// are judged as appearances).
fn shown_content(ctx: &mut Ctx<'_, '_>, rev: usize, skip_ap: &HashSet<u32>) -> HashSet<u32> {
    let mut seen = HashSet::new();
    let Some(root) = ctx.root_ref(rev) else {
        return seen;
    };
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if seen.len() >= MAX_WALK {
            ctx.incomplete
                .push(problem("graph_too_large", "对象图过大，未能完整分析"));
            break;
        }
        if !seen.insert(n) {
            continue;
        }
        let o = ctx.get_rc(rev, n);
        let skip: &[&[u8]] = if n == root {
            &[b"Metadata", b"DSS"]
        } else if skip_ap.contains(&n) {
            &[b"AP"]
        } else {
            &[]
        };
        match (&*o, skip.is_empty()) {
            (_, true) => refs_in(&o, &mut stack),
            (Object::Dict(d), false) => {
                for (k, v) in &d.0 {
                    if !skip.contains(&k.as_slice()) {
                        refs_in(v, &mut stack);
                    }
                }
            }
            _ => refs_in(&o, &mut stack),
        }
    }
    seen
}

struct ChangeCtx<'x> {
    signed_rev: usize,
    root: Option<u32>,
    form_r: &'x FormMap,
    form_f: &'x FormMap,
    newly_signed: &'x HashMap<u32, bool>,
    pages_f: &'x HashSet<u32>,
    annots_f: &'x HashMap<u32, u32>,
    info_refs: &'x HashSet<u32>,
    metadata_ref: Option<u32>,
    dss_reach: &'x HashSet<u32>,
    ap_reach: &'x HashSet<u32>,
    new_sig_objects: &'x HashSet<u32>,
    mdp: Option<i64>,
    ok_new_widget: &'x dyn Fn(&u32) -> bool,
    ok_new_field: &'x dyn Fn(&Object) -> bool,
    appearances: &'x Appearances,
    /// What revision r displayed (see `shown_content`).
    shown_r: &'x HashSet<u32>,
}

type ChangeResult = Result<(), (&'static str, String)>;

fn type_name(o: &Object) -> String {
    o.as_dict()
        .and_then(|d| d.name(b"Type"))
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_else(|| "?".into())
}

fn classify_change(
    ctx: &mut Ctx<'_, '_>,
    n: u32,
    or: &Object,
    of: &Object,
    c: &ChangeCtx<'_>,
) -> ChangeResult {
    let data = ctx.pdf.data;
    let changed_keys = |a: &Object, b: &Object| -> Option<Vec<Vec<u8>>> {
        match (a, b) {
            (Object::Dict(x), Object::Dict(y)) => Some(
                dict_diff(data, x, y)
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
            ),
            _ => None,
        }
    };
    let names = |k: &[Vec<u8>]| {
        k.iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let other = || -> ChangeResult {
        Err((
            "object_changed",
            format!("签署后修改了对象 {n}（/Type /{}）", type_name(or)),
        ))
    };

    // An object of an existing widget's appearance (not the widget itself): changed as part of
    // signing or filling in that field, and shown nowhere else, or not at all.
    if let Some(&w) = c.appearances.owner.get(&n)
        && w != n
    {
        if c.appearances.permitted.contains(&w) && !c.shown_r.contains(&n) {
            return Ok(());
        }
        return Err((
            "appearance_changed",
            format!(
                "签署后改变了已有表单域（对象 {w}）的外观（对象 {n}），而该域的值没有在同一修订中随之改变"
            ),
        ));
    }
    // What r did not display: document information, XMP metadata, validation data and the
    // appearance of a new signature are not content.
    if !c.shown_r.contains(&n) {
        if c.info_refs.contains(&n) || Some(n) == c.metadata_ref {
            return Ok(());
        }
        if c.dss_reach.contains(&n) && !c.form_r.fields.contains_key(&n) && Some(n) != c.root {
            return Ok(());
        }
        if c.ap_reach.contains(&n) && !c.pages_f.contains(&n) && Some(n) != c.root {
            return Ok(());
        }
    }
    if c.new_sig_objects.contains(&n) {
        return Err((
            "object_changed",
            format!("签署后用对象 {n} 原有的编号写入了新的签名"),
        ));
    }
    // The catalog: a DSS (and the extensions declaring it, and the version) may be added,
    // nothing else.
    if Some(n) == c.root {
        let Some(keys) = changed_keys(or, of) else {
            return other();
        };
        for k in &keys {
            match k.as_slice() {
                // The PDF version a later writer declares (pyHanko does) changes no content.
                b"DSS" | b"Extensions" | b"Version" => {}
                b"AcroForm" => {
                    let (a, b) = (
                        or.as_dict().and_then(|d| d.get(b"AcroForm")),
                        of.as_dict().and_then(|d| d.get(b"AcroForm")),
                    );
                    match (a, b) {
                        (Some(Object::Dict(a)), Some(Object::Dict(b))) => {
                            acroform_change(data, a, b, c, n)?;
                        }
                        // A form created by a later signer: only its new signature fields.
                        (None, Some(b)) => {
                            let b = ctx.resolve(ctx.pdf.last_revision(), b);
                            let fields = b.as_dict().and_then(|d| d.get(b"Fields")).cloned();
                            let fields = fields.map(|f| ctx.resolve(ctx.pdf.last_revision(), &f));
                            if !fields
                                .as_ref()
                                .and_then(Object::as_array)
                                .is_some_and(|a| a.iter().all(|f| (c.ok_new_field)(f)))
                            {
                                return Err((
                                    "form_changed",
                                    "签署后新建的表单含有非签名域".into(),
                                ));
                            }
                        }
                        _ => return Err(("form_changed", "签署后替换了表单（AcroForm）".into())),
                    }
                }
                _ => {
                    return Err((
                        "catalog_changed",
                        format!("签署后修改了文档目录的 /{}", names(std::slice::from_ref(k))),
                    ));
                }
            }
        }
        return Ok(());
    }
    if Some(n) == c.form_f.acroform && c.form_r.acroform == Some(n) {
        return match (or, of) {
            (Object::Dict(a), Object::Dict(b)) => acroform_change(data, a, b, c, n),
            _ => other(),
        };
    }
    // A field or widget: signing fills /V and the appearance; form filling where allowed.
    let owner = c
        .form_f
        .widgets
        .get(&n)
        .copied()
        .or_else(|| c.form_f.fields.get(&n).map(|_| n));
    if let Some(field) = owner {
        let Some(keys) = changed_keys(or, of) else {
            return other();
        };
        if keys
            .iter()
            .any(|k| matches!(k.as_slice(), b"AP" | b"AS" | b"MK"))
            && !c.appearances.permitted.contains(&n)
            && c.form_r.widgets.contains_key(&n)
        {
            return Err((
                "appearance_changed",
                format!(
                    "签署后改变了已有表单域（对象 {n}）的外观，而该域的值没有在同一修订中随之改变"
                ),
            ));
        }
        let info_f = c.form_f.fields.get(&field).cloned().unwrap_or_default();
        let info_r = c.form_r.fields.get(&field).cloned().unwrap_or_default();
        let is_field_obj = field == n;
        if info_f.is_sig {
            if c.newly_signed.get(&field) != Some(&true) {
                if info_r.value.is_some() {
                    return Err((
                        "signature_overwritten",
                        format!("签署后改动了已签名的签名域（对象 {n}）"),
                    ));
                }
                return Err((
                    "object_changed",
                    format!("签署后改动了签名域（对象 {n}）的 /{}", names(&keys)),
                ));
            }
            let allowed: &[&[u8]] = if is_field_obj {
                &[b"V", b"AP", b"AS", b"F"]
            } else {
                &[b"AP", b"AS", b"F"]
            };
            // Signers may lock the widget and mark it printable (F 132), not hide it.
            let flags = |o: &Object| {
                o.as_dict()
                    .and_then(|d| d.get(b"F"))
                    .and_then(Object::as_int)
                    .unwrap_or(0)
            };
            if (flags(or) ^ flags(of)) & !(4 | 128) != 0 {
                return Err((
                    "signature_field_changed",
                    format!("签名时改动了签名域（对象 {n}）的显示标志 /F"),
                ));
            }
            if let Some(k) = keys.iter().find(|k| !allowed.contains(&k.as_slice())) {
                return Err((
                    "signature_field_changed",
                    format!(
                        "签名时改动了签名域（对象 {n}）的 /{}",
                        names(std::slice::from_ref(k))
                    ),
                ));
            }
            return Ok(());
        }
        // Form filling: allowed without certification or with P ≥ 2.
        if c.mdp == Some(1) {
            return Err((
                "form_filled",
                format!("认证文档（P=1）的表单域（对象 {n}）被填写"),
            ));
        }
        if let Some(k) = keys
            .iter()
            .find(|k| !matches!(k.as_slice(), b"V" | b"AP" | b"AS" | b"I"))
        {
            return Err((
                "form_field_changed",
                format!(
                    "签署后改动了表单域（对象 {n}）的 /{}",
                    names(std::slice::from_ref(k))
                ),
            ));
        }
        return Ok(());
    }
    // A page: only new signature widgets may join its /Annots.
    if c.pages_f.contains(&n) {
        let Some(keys) = changed_keys(or, of) else {
            return other();
        };
        if keys.iter().any(|k| k.as_slice() != b"Annots") {
            return Err((
                "page_changed",
                format!("签署后修改了页面（对象 {n}）的 /{}", names(&keys)),
            ));
        }
        let rev_last = ctx.pdf.last_revision();
        let a = or
            .as_dict()
            .and_then(|d| d.get(b"Annots"))
            .cloned()
            .unwrap_or(Object::Array(vec![]));
        let b = of
            .as_dict()
            .and_then(|d| d.get(b"Annots"))
            .cloned()
            .unwrap_or(Object::Null);
        let a = ctx.resolve(c.signed_rev, &a);
        let b = ctx.resolve(rev_last, &b);
        return annots_change(data, &a, &b, c, n);
    }
    if c.annots_f.contains_key(&n) {
        return annots_change(data, or, of, c, n);
    }
    other()
}

fn acroform_change(data: &[u8], a: &Dict, b: &Dict, c: &ChangeCtx<'_>, n: u32) -> ChangeResult {
    for k in dict_diff(data, a, b) {
        match k {
            b"SigFlags" => {}
            b"Fields" => {
                let (Some(fa), Some(fb)) = (
                    a.get(b"Fields").and_then(Object::as_array),
                    b.get(b"Fields").and_then(Object::as_array),
                ) else {
                    return Err((
                        "form_changed",
                        format!("签署后替换了表单的字段列表（对象 {n}）"),
                    ));
                };
                let kept = fb.len() >= fa.len() && fa.iter().zip(fb).all(|(x, y)| same(data, x, y));
                if !kept || !fb[fa.len()..].iter().all(|f| (c.ok_new_field)(f)) {
                    return Err((
                        "form_changed",
                        "签署后表单的字段被删改或新增了非签名域".into(),
                    ));
                }
            }
            other => {
                return Err((
                    "form_changed",
                    format!("签署后修改了表单的 /{}", String::from_utf8_lossy(other)),
                ));
            }
        }
    }
    Ok(())
}

fn annots_change(data: &[u8], a: &Object, b: &Object, c: &ChangeCtx<'_>, n: u32) -> ChangeResult {
    let empty: &[Object] = &[];
    let a = a.as_array().unwrap_or(empty);
    let Some(b) = b.as_array() else {
        return Err((
            "annotation_changed",
            format!("签署后页面注释被替换（对象 {n}）"),
        ));
    };
    let kept = b.len() >= a.len() && a.iter().zip(b).all(|(x, y)| same(data, x, y));
    if !kept {
        return Err((
            "annotation_changed",
            format!("签署后页面注释被删除或调换（对象 {n}）"),
        ));
    }
    for added in &b[a.len()..] {
        if !added.as_ref().is_some_and(|w| (c.ok_new_widget)(&w)) {
            return Err((
                "annotation_added",
                format!("签署后在页面上新增了注释（对象 {n}）"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_dates() {
        let t = parse_pdf_date(b"D:20261128173000+08'00'").unwrap();
        assert_eq!(rfc3339(t), "2026-11-28T09:30:00Z");
        assert!(parse_pdf_date(b"D:2026").is_some());
        assert!(parse_pdf_date(b"D:20261328").is_none());
        assert!(parse_pdf_date(b"yesterday").is_none());
    }
}
