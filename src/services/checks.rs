//! The reviewer's checklist (DOMAIN.md, "What a reviewer checks"), automated: each of the ten
//! checks runs on submission (its results kept with the contract), again whenever a reviewer
//! looks, and before approval, which is refused while any fails. The human confirms; the
//! service makes sure nothing on the list is forgotten.
//!
//! What the PDF was made from is kept at confirmation ([`Snapshot`]: the contract data encrypted,
//! the render time and address, the document's digest), so the checks compare the contract with
//! the inventory as it is *now* (a permit suspended, an escrow account changed, a unit seized
//! since) and re-render the document to prove its fixed text and filled blanks (check 9).

use super::{Error, FieldError, Services};
use crate::domain::contract::ContractData;
use crate::domain::identity::VerificationStatus;
use crate::domain::identity::{IdNumber, Uscc};
use crate::domain::lifecycle::{ContractStatus, PermitStatus, UnitStatus};
use crate::domain::{Area, Duty, Money, roles};
use crate::store::Contract;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a contract's current PDF was made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The render's creation time, as written into the PDF.
    pub created: String,
    pub public_url: String,
    /// The document's SHA-256 as rendered (the revision every signature builds on).
    pub document_sha256: String,
    /// The contract data (with ID numbers), encrypted under the personal-data key and bound to
    /// this contract.
    pub data: String,
}

impl Snapshot {
    fn context(contract_id: &str) -> String {
        format!("contract-snapshot:{contract_id}")
    }

    pub fn seal(
        s: &Services,
        contract_id: &str,
        data: &ContractData,
        public_url: &str,
        created: &str,
        document_sha256: &str,
    ) -> Result<String, Error> {
        let plain = serde_json::to_string(data).map_err(|e| anyhow::anyhow!("{e}"))?;
        let snap = Snapshot {
            created: created.into(),
            public_url: public_url.into(),
            document_sha256: document_sha256.into(),
            data: s
                .identity
                .personal
                .encrypt(&Self::context(contract_id), &plain)?,
        };
        Ok(serde_json::to_string(&snap).map_err(|e| anyhow::anyhow!("{e}"))?)
    }

    /// The snapshot and its decrypted data; none when missing or not readable with this key.
    pub fn open(s: &Services, c: &Contract) -> Option<(Snapshot, ContractData)> {
        let snap: Snapshot = serde_json::from_str(c.snapshot.as_deref()?).ok()?;
        let plain = s
            .identity
            .personal
            .decrypt(&Self::context(&c.id), &snap.data)
            .ok()?;
        let data = serde_json::from_str(&plain).ok()?;
        Some((snap, data))
    }
}

/// One finding of a check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub field: String,
    pub code: String,
    pub message: String,
}

/// One check of the list and its result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// 1–10, as numbered in DOMAIN.md.
    pub no: u8,
    pub title: String,
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Checks {
    pub contract_id: String,
    pub passed: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: time::OffsetDateTime,
    pub checks: Vec<Check>,
}

const TITLES: [&str; 10] = [
    "预售许可有效且覆盖该房屋，合同监管账户与许可一致",
    "房屋与楼盘表一致，由本合同锁定，无查封、异议或其他有效合同",
    "出卖人统一社会信用代码与许可持有人一致，起草与确认为不同的授权人员",
    "每位买受人身份证号有效、已实名核验、活体通过、比对分数达到阈值，份额合计 100%",
    "建筑面积 = 套内面积 + 分摊面积，且与楼盘表一致",
    "总价 = 单价 × 面积，大写金额一致，不高于备案价",
    "付款合计等于总价，日期递增，贷款写明贷款机构",
    "交付日期晚于签约日期，备案在期限（≤ 30 日）内",
    "合同固定文本未被改动，各空白处均已填写",
    "每个签名在存档文件上核验通过，签署时证书有效，印章属于出卖人",
];

struct Sheet {
    findings: [Vec<Finding>; 10],
}

impl Sheet {
    fn add(&mut self, no: usize, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.findings[no - 1].push(Finding {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        });
    }
}

/// Which check a rule of `ContractData::validate` belongs to, by its field.
fn check_of(field: &str) -> usize {
    if field.starts_with("buyers") {
        4
    } else if field.starts_with("unit.") {
        5
    } else if field.starts_with("price") {
        6
    } else if field.starts_with("payment") {
        7
    } else if field.starts_with("delivery")
        || field.starts_with("filing")
        || field.starts_with("signed_on")
        || field.starts_with("registration")
    {
        8
    } else if field.starts_with("escrow") || field.starts_with("permit") {
        1
    } else if field.starts_with("seller") {
        3
    } else {
        9
    }
}

/// Runs the whole list on a contract as it stands.
pub async fn run(s: &Services, c: &Contract) -> Result<Checks, Error> {
    let now = time::OffsetDateTime::now_utc();
    let mut sh = Sheet {
        findings: Default::default(),
    };
    let unit = s
        .store
        .unit(&c.unit_id)
        .await?
        .ok_or_else(|| Error::not_found("该房屋"))?;
    let opened = Snapshot::open(s, c);
    if opened.is_none() {
        sh.add(
            9,
            "document",
            "no_snapshot",
            "没有合同生成时的数据快照，无法复核合同文本。",
        );
    }

    // 1. The permit.
    let permit = match &unit.permit_id {
        Some(id) => s.store.permit(id).await?,
        None => None,
    };
    match &permit {
        None => sh.add(1, "permit", "no_permit", "该房屋不在任何预售许可范围内。"),
        Some(m) => {
            if m.status != PermitStatus::Valid {
                sh.add(
                    1,
                    "permit.status",
                    "permit_not_valid",
                    format!("预售许可证 {} 当前状态为 {}。", m.number, m.status),
                );
            }
            if let Some((_, d)) = &opened {
                if d.permit.number != m.number {
                    sh.add(
                        1,
                        "permit.number",
                        "permit_mismatch",
                        "合同所载预售许可证号与楼盘表不一致。",
                    );
                }
                if d.escrow.account_no != m.escrow_account_no
                    || d.escrow.bank != m.escrow_bank
                    || d.escrow.account_name != m.escrow_account_name
                {
                    sh.add(
                        1,
                        "escrow",
                        "escrow_mismatch",
                        "合同所载预售资金监管账户与预售许可登记的监管账户不一致。",
                    );
                }
            }
        }
    }

    // 2. The unit.
    if unit.seized || unit.objection || unit.manual_hold {
        sh.add(
            2,
            "unit",
            "unit_frozen",
            "该房屋已被查封、存在异议或被暂停销售。",
        );
    }
    // Where the contract table puts the unit at this stage.
    let expected_unit_status = c.status.unit_status();
    if unit.status != expected_unit_status
        && !(expected_unit_status == UnitStatus::Filed
            && unit.status == UnitStatus::AdvanceNoticeRegistered)
    {
        sh.add(
            2,
            "unit.status",
            "unit_status",
            format!("房屋状态为 {}，与合同所处阶段不符。", unit.status),
        );
    }
    let live = s.store.live_contracts_of_unit(&unit.id).await?;
    if !c.live || live.iter().any(|o| o.id != c.id) {
        sh.add(
            2,
            "unit",
            "other_live_contract",
            "该房屋另有有效合同，或本合同已不再持有该房屋。",
        );
    }
    if let Some((_, d)) = &opened
        && d.unit.unit_number != unit.unit_number
    {
        sh.add(
            2,
            "unit.unit_number",
            "unit_mismatch",
            "合同所载不动产单元号与楼盘表不一致。",
        );
    }

    // 3. The seller and the developer's people.
    let org = s.store.organisation(&c.developer_id).await?;
    if let Some((_, d)) = &opened {
        let holder = org
            .as_ref()
            .and_then(|o| o.uscc.clone())
            .unwrap_or_default();
        if Uscc::parse(&d.seller.uscc).is_err() || d.seller.uscc != holder {
            sh.add(
                3,
                "seller.uscc",
                "seller_not_permit_holder",
                "出卖人统一社会信用代码与预售许可持有企业不一致。",
            );
        }
    }
    let drafter = s.store.user(&c.drafter_id).await?;
    let confirmer = match &c.confirmer_id {
        Some(id) => s.store.user(id).await?,
        None => None,
    };
    let authorised = |u: &Option<crate::store::User>, duty: Duty| {
        u.as_ref().is_some_and(|u| {
            !u.disabled
                && u.organisation_id.as_deref() == Some(c.developer_id.as_str())
                && roles::duties_from_column(&u.duties).is_ok_and(|d| d.contains(&duty))
        })
    };
    if !authorised(&drafter, Duty::Drafter) {
        sh.add(
            3,
            "drafter",
            "drafter_not_authorised",
            "起草人不是出卖人的在职授权起草人员。",
        );
    }
    if !authorised(&confirmer, Duty::Confirmer) {
        sh.add(
            3,
            "confirmer",
            "confirmer_not_authorised",
            "确认人不是出卖人的在职授权确认人员。",
        );
    }
    if c.confirmer_id.as_deref() == Some(c.drafter_id.as_str()) {
        sh.add(3, "confirmer", "four_eyes", "起草人与确认人为同一人。");
    }

    // The data's own rules, each under its check (4–9).
    if let Some((_, d)) = &opened {
        for i in d.validate() {
            sh.add(check_of(&i.field), i.field, i.rule, i.message);
        }
    }

    // 4. The buyers: identity verified by the hook before each signature.
    let sigs: Vec<_> = s
        .store
        .contract_signatures(&c.id)
        .await?
        .into_iter()
        .filter(|x| x.contract_version == c.version)
        .collect();
    if let Some((_, d)) = &opened {
        let today = time::OffsetDateTime::now_utc().date();
        for (i, b) in d.buyers.iter().enumerate() {
            if let Err(r) = IdNumber::parse(&b.id_number, today) {
                sh.add(4, format!("buyers[{i}].id_number"), r.rule, r.message);
                continue;
            }
            let hash = s.identity.personal.lookup_hash(&b.id_number);
            let mut verified = false;
            for sig in sigs.iter().filter(|x| x.kind == "personal") {
                let Some(signer) = &sig.signer_user_id else {
                    continue;
                };
                let same = s
                    .store
                    .user_identity(signer)
                    .await?
                    .and_then(|u| u.id_number_hash)
                    .is_some_and(|h| h == hash);
                if !same {
                    continue;
                }
                let evidence: serde_json::Value =
                    serde_json::from_str(&sig.evidence).unwrap_or_default();
                let Some(vid) = evidence["verification_id"].as_str() else {
                    continue;
                };
                let Some(v) = s.store.identity_verification(vid).await? else {
                    continue;
                };
                let score_ok = v.similarity.is_some_and(|x| x >= v.threshold);
                if v.status == VerificationStatus::Passed
                    && v.identity_matched
                    && v.liveness_passed
                    && score_ok
                {
                    verified = true;
                } else {
                    sh.add(
                        4,
                        format!("buyers[{i}]"),
                        "verification_insufficient",
                        "该买受人的实名核验未通过（身份比对、活体或相似度未达到阈值）。",
                    );
                }
            }
            if !verified && c.status.is_signed() {
                sh.add(
                    4,
                    format!("buyers[{i}]"),
                    "buyer_not_verified",
                    "没有该买受人经实名核验后的签名。",
                );
            }
        }
    }

    // 5. Areas equal to the inventory.
    if let Some((_, d)) = &opened {
        let same = |v: &str, fen: i64| Area::parse(v).is_ok_and(|a| a.0 == fen);
        if !(same(&d.unit.gross_area, unit.gross_area)
            && same(&d.unit.internal_area, unit.internal_area)
            && same(&d.unit.shared_area, unit.shared_area))
        {
            sh.add(
                5,
                "unit.gross_area",
                "area_mismatch",
                "合同所载面积与楼盘表不一致。",
            );
        }
        // 6. Not above the filed price.
        if Money::parse_yuan(&d.price.unit_price).is_ok_and(|p| p.0 > unit.filed_price_fen) {
            sh.add(
                6,
                "price.unit_price",
                "above_filed_price",
                "单价高于该房屋的备案价格。",
            );
        }
        // 8. Filing within its deadline, counted from the buyers' signing.
        if d.filing_deadline_days > 30 {
            sh.add(
                8,
                "filing_deadline_days",
                "filing_deadline",
                "备案期限不得超过 30 日。",
            );
        }
        if let Some(first) = sigs
            .iter()
            .filter(|x| x.kind == "personal")
            .map(|x| x.signed_at)
            .min()
            && c.status == ContractStatus::FilingReview
            && now > first + time::Duration::days(d.filing_deadline_days.min(30) as i64)
        {
            sh.add(8, "filing", "filing_overdue", "已超过合同约定的备案期限。");
        }
    }

    // 9. The fixed text: the first revision re-rendered from the snapshot, byte for byte.
    if let Some((snap, d)) = &opened {
        let first = sigs
            .iter()
            .min_by_key(|x| x.signed_at)
            .map(|x| x.document_before.clone())
            .or_else(|| c.document_sha256.clone())
            .unwrap_or_default();
        if first != snap.document_sha256 {
            sh.add(
                9,
                "document",
                "document_not_generated",
                "签署的文件不是本服务按合同数据生成的文件。",
            );
        } else if super::documents::remembered_render(d, &snap.public_url, &snap.created).as_deref()
            == Some(snap.document_sha256.as_str())
        {
            // This process rendered the same data, address and time to this very document
            // already (rendering is deterministic): the fixed text is the template's.
        } else if let Some(font) = s.font.as_ref() {
            let rendered = s
                .documents
                .run_here(|| {
                    super::documents::render_contract(
                        font,
                        super::documents::CONTRACT_TEMPLATE,
                        d,
                        &snap.public_url,
                        &snap.created,
                    )
                })
                .await?;
            match rendered {
                Ok(r) if crate::audit::hex(&openssl::sha::sha256(&r.pdf)) == snap.document_sha256 => {
                    super::documents::remember_render(d, &snap.public_url, &snap.created, &snap.document_sha256);
                }
                Ok(_) => sh.add(
                    9,
                    "document",
                    "fixed_text_changed",
                    "按合同数据和现行示范文本重新生成的文件与签署的文件不一致（固定文本被改动或模板版本已变）。",
                ),
                Err(_) => sh.add(9, "document", "not_renderable", "合同数据不完整，无法生成合同文本。"),
            }
        } else {
            sh.add(
                9,
                "document",
                "documents_unavailable",
                "服务器缺少中文字体，无法复核合同文本。",
            );
        }
    }

    // 10. Signatures over the stored PDF, and the seal is the developer's.
    if let Some(sha) = &c.document_sha256 {
        let pdf = super::materials::get(s, sha)
            .await?
            .ok_or_else(|| anyhow::anyhow!("material missing"))?;
        let report = super::verification::verify_pdf(s, bytes::Bytes::from(pdf)).await?;
        if report.verdict != crate::pdf::verify::Verdict::Valid {
            for p in report
                .problems
                .iter()
                .chain(report.signatures.iter().flat_map(|x| x.problems.iter()))
            {
                sh.add(10, "document", p.code, p.message.clone());
            }
            if sh.findings[9].is_empty() {
                sh.add(10, "document", "signatures_invalid", "签名核验未通过。");
            }
        }
        if report.signatures.is_empty() {
            sh.add(10, "document", "unsigned", "文件没有签名。");
        }
    }
    for seal in sigs.iter().filter(|x| x.kind == "organisation_seal") {
        let owner = match &seal.certificate_serial {
            Some(serial) => s
                .store
                .certificate(serial)
                .await?
                .and_then(|r| r.organisation_id),
            None => None,
        };
        if owner.as_deref() != Some(c.developer_id.as_str()) {
            sh.add(10, "seal", "seal_not_sellers", "企业印章证书不属于出卖人。");
        }
    }

    let checks: Vec<Check> = sh
        .findings
        .into_iter()
        .enumerate()
        .map(|(i, findings)| Check {
            no: i as u8 + 1,
            title: TITLES[i].into(),
            passed: findings.is_empty(),
            findings,
        })
        .collect();
    Ok(Checks {
        contract_id: c.id.clone(),
        passed: checks.iter().all(|x| x.passed),
        checked_at: now,
        checks,
    })
}

/// The failed checks as field errors (for a refused approval).
pub fn failures(checks: &Checks) -> Vec<FieldError> {
    checks
        .checks
        .iter()
        .flat_map(|c| {
            c.findings.iter().map(move |f| {
                FieldError::new(
                    format!("check{}.{}", c.no, f.field),
                    f.code.clone(),
                    f.message.clone(),
                )
            })
        })
        .collect()
}
