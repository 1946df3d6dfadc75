//! The verifier's report in plain words: who signed or sealed, when, whether the file changed
//! since, and whether this service vouches for the signer — for people who never heard of
//! PAdES.

use crate::services::verification::{
    Changes, Integrity, Kind, Report, SignatureReport, Trust, Verdict,
};

pub struct PlainReport {
    /// One sentence: can the file be relied on.
    pub headline: String,
    /// `ok`, `bad` or `warn` (the words say the same).
    pub tone: &'static str,
    /// Something was changed after a signature: the file is not what was signed.
    pub changed: bool,
    pub sha256: String,
    pub signatures: Vec<PlainSignature>,
    pub problems: Vec<String>,
}

pub struct PlainSignature {
    /// 买受人签名, 出卖人合同专用章, 登记中心印章, 文档时间戳, 签名.
    pub what: String,
    pub who: String,
    pub organisation: String,
    /// Local time (UTC+8), and where it comes from.
    pub when: String,
    pub intact: String,
    pub trusted: String,
    pub changes: String,
    pub tone: &'static str,
    pub problems: Vec<String>,
}

fn part(subject: &str, key: &str) -> String {
    subject
        .split(", ")
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or("")
        .to_owned()
}

fn local_time(rfc3339: &str) -> String {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(super::local)
        .unwrap_or_else(|| rfc3339.to_owned())
}

fn what(s: &SignatureReport) -> String {
    match (s.kind, s.field.as_str()) {
        (Kind::DocumentTimestamp, _) => "文档时间戳".into(),
        (_, f) if f.starts_with("buyer-") => format!("买受人签名（第 {} 位）", &f[6..]),
        (_, "seller-seal") => "出卖人合同专用章".into(),
        (_, "centre-seal") => "登记中心印章".into(),
        (Kind::Certification, _) => "签名（认证签名）".into(),
        _ => "签名".into(),
    }
}

fn signature(s: &SignatureReport) -> PlainSignature {
    let subject = s.signer.as_ref().map(|x| x.subject.as_str()).unwrap_or("");
    let tone = match s.verdict {
        Verdict::Valid => "ok",
        Verdict::Invalid => "bad",
        Verdict::Indeterminate => "warn",
    };
    PlainSignature {
        what: what(s),
        who: part(subject, "CN"),
        organisation: part(subject, "O"),
        when: match (&s.signing_time, s.signing_time_source) {
            (Some(t), Some("timestamp")) => format!("{}（可信时间戳证明）", local_time(t)),
            (Some(t), _) => format!("{}（签署人所声明的时间）", local_time(t)),
            (None, _) => "未注明".into(),
        },
        intact: match s.integrity {
            Integrity::Intact => "签名后该部分内容未被改动".into(),
            Integrity::Broken => "签名所覆盖的内容已被改动，签名不再成立".into(),
            Integrity::Unknown => "无法判断内容是否被改动".into(),
        },
        trusted: match s.trust {
            Trust::Trusted => "证书由本登记中心的电子认证体系签发，签署时有效".into(),
            Trust::Untrusted => "证书不是本登记中心的电子认证体系签发的，无法确认签署人身份".into(),
            Trust::Expired => "签署时证书已过期".into(),
            Trust::Revoked => "证书已被吊销".into(),
            Trust::InvalidChain => "证书链不完整或无效".into(),
            Trust::Unknown => "无法确认证书状态".into(),
        },
        changes: match s.changes_after {
            Changes::None => "此后文件没有任何改动".into(),
            Changes::Permitted => "此后只有允许的改动（例如其他人的签名、印章或时间戳）".into(),
            Changes::Disallowed => "此后文件被做了不允许的改动".into(),
        },
        tone,
        problems: s.problems.iter().map(|p| p.message.clone()).collect(),
    }
}

impl PlainReport {
    pub fn of(r: &Report) -> PlainReport {
        let changed = r
            .signatures
            .iter()
            .any(|s| s.integrity == Integrity::Broken || s.changes_after == Changes::Disallowed);
        let (headline, tone) = if r.signatures.is_empty() {
            (
                "该文件没有任何电子签名或印章，无法证明由谁出具、是否被改动。".to_owned(),
                "warn",
            )
        } else if changed {
            (
                "该文件在签名或盖章之后被改动过：它已不是签署时的文件，不能作为依据。".to_owned(),
                "bad",
            )
        } else {
            match r.verdict {
                Verdict::Valid => (
                    "文件完好：所有签名和印章都有效，签署后没有被改动。".to_owned(),
                    "ok",
                ),
                Verdict::Invalid => ("文件中有无效的签名或印章，不能作为依据。".to_owned(), "bad"),
                Verdict::Indeterminate => (
                    "暂时无法确认全部签名：请看下面每一项的说明。".to_owned(),
                    "warn",
                ),
            }
        };
        PlainReport {
            headline,
            tone,
            changed,
            sha256: r.sha256.clone(),
            signatures: r.signatures.iter().map(signature).collect(),
            problems: r.problems.iter().map(|p| p.message.clone()).collect(),
        }
    }
}
