//! Contracts, first part of the workflow (issue 7): a drafter creates a draft for an available
//! unit, which takes the unit in the same transaction (one unit, one live contract, enforced by
//! the database), and a developer can withdraw an unsigned contract, which releases the unit.
//! Buyers' ID numbers are encrypted in the stored terms, as on accounts.

use super::{Caller, Error, FieldError, Services};
use crate::domain::identity::{IdNumber, PersonName};
use crate::domain::{Duty, Role};
use crate::store::{Contract, DraftRefusal};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerTerms {
    pub name: String,
    pub id_number: String,
    /// Share of the co-owned property, in percent; all buyers add up to 100.
    pub share_percent: u8,
    pub phone: String,
    pub address: String,
}

/// The seller's particulars that the inventory does not hold.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellerTerms {
    pub address: String,
    pub legal_representative: String,
    pub qualification_no: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstalmentTerms {
    pub item: String,
    /// YYYY-MM-DD
    pub due: String,
    /// Yuan, up to two decimals.
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentTerms {
    /// 一次性付款, 分期付款 or 贷款方式付款.
    pub mode: String,
    #[serde(default)]
    pub loan_type: Option<String>,
    #[serde(default)]
    pub lender: Option<String>,
    pub schedule: Vec<InstalmentTerms>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PropertyTerms {
    pub company: String,
    /// Yuan per m² per month.
    pub fee: String,
}

/// What the drafter fills in; the project, permit, unit, areas and escrow come from the
/// inventory.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContract {
    pub unit_id: String,
    pub buyers: Vec<BuyerTerms>,
    /// 单独所有, 共同共有 or 按份共有.
    pub co_ownership: String,
    /// Yuan per m² of the gross area, at most the filed price.
    pub unit_price: String,
    pub payment: PaymentTerms,
    /// YYYY-MM-DD, after today.
    pub delivery_date: String,
    pub dispute: String,
    pub property: PropertyTerms,
    #[serde(default)]
    pub supplementary: Vec<String>,
    pub seller: SellerTerms,
}

/// What is stored of a buyer: the number only encrypted, with its lookup hash and mask.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredBuyer {
    name: String,
    id_number_enc: String,
    id_number_hash: String,
    id_number_masked: String,
    share_percent: u8,
    phone: String,
    address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredTerms {
    buyers: Vec<StoredBuyer>,
    co_ownership: String,
    unit_price: String,
    payment: PaymentTerms,
    delivery_date: String,
    dispute: String,
    property: PropertyTerms,
    supplementary: Vec<String>,
    seller: SellerTerms,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuyerView {
    pub name: String,
    pub id_number_masked: String,
    pub share_percent: u8,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContractView {
    pub id: String,
    pub contract_no: String,
    pub unit_id: String,
    pub status: String,
    pub version: i32,
    pub buyers: Vec<BuyerView>,
    pub unit_price: String,
    pub payment_mode: String,
    pub delivery_date: String,
    /// SHA-256 of the current PDF (after confirmation).
    pub document_sha256: Option<String>,
    /// The filing number (备案号), once filed.
    pub filing_no: Option<String>,
    /// Why the filing was returned (every reason), while `returned`.
    pub returned_reasons: Vec<FieldError>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

fn today() -> time::Date {
    OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

fn validate(s: &Services, req: &NewContract) -> Result<(), Error> {
    let mut errors = Vec::new();
    // Text the document font cannot show is refused now, naming the character, rather than at
    // confirmation when the PDF is made.
    if let Some(font) = s.font.as_ref() {
        let mut texts: Vec<(String, &str)> = vec![
            ("dispute".into(), req.dispute.as_str()),
            ("property.company".into(), req.property.company.as_str()),
            ("seller.address".into(), req.seller.address.as_str()),
            (
                "seller.legal_representative".into(),
                req.seller.legal_representative.as_str(),
            ),
            (
                "seller.qualification_no".into(),
                req.seller.qualification_no.as_str(),
            ),
        ];
        for (i, b) in req.buyers.iter().enumerate() {
            texts.push((format!("buyers[{i}].name"), b.name.as_str()));
            texts.push((format!("buyers[{i}].address"), b.address.as_str()));
        }
        for (i, t) in req.supplementary.iter().enumerate() {
            texts.push((format!("supplementary[{i}]"), t.as_str()));
        }
        if let Some(l) = &req.payment.lender {
            texts.push(("payment.lender".into(), l.as_str()));
        }
        for (i, p) in req.payment.schedule.iter().enumerate() {
            texts.push((format!("payment.schedule[{i}].item"), p.item.as_str()));
        }
        for (field, text) in texts {
            errors.extend(super::documents::unrenderable(font, &field, text));
        }
    }
    if req.buyers.is_empty() || req.buyers.len() > 10 {
        errors.push(FieldError::new(
            "buyers",
            "count",
            "买受人须为 1 至 10 人。",
        ));
    }
    for (i, b) in req.buyers.iter().enumerate() {
        if let Err(r) = PersonName::parse(&b.name) {
            errors.push(FieldError::new(
                format!("buyers[{i}].name"),
                r.rule,
                r.message,
            ));
        }
        if let Err(r) = IdNumber::parse(&b.id_number, today()) {
            errors.push(FieldError::new(
                format!("buyers[{i}].id_number"),
                r.rule,
                r.message,
            ));
        }
        if b.share_percent == 0 {
            errors.push(FieldError::new(
                format!("buyers[{i}].share_percent"),
                "positive",
                "份额须大于 0。",
            ));
        }
    }
    if !req.buyers.is_empty()
        && req
            .buyers
            .iter()
            .map(|b| b.share_percent as u32)
            .sum::<u32>()
            != 100
    {
        errors.push(FieldError::new(
            "buyers",
            "shares_sum_to_100",
            "各买受人的份额合计须为 100%。",
        ));
    }
    if !matches!(
        req.payment.mode.as_str(),
        "一次性付款" | "分期付款" | "贷款方式付款"
    ) {
        errors.push(FieldError::new(
            "payment.mode",
            "one_of",
            "付款方式须为一次性付款、分期付款或贷款方式付款。",
        ));
    }
    if !matches!(
        req.co_ownership.as_str(),
        "单独所有" | "共同共有" | "按份共有"
    ) {
        errors.push(FieldError::new(
            "co_ownership",
            "one_of",
            "共有方式须为单独所有、共同共有或按份共有。",
        ));
    }
    if crate::domain::Money::parse_yuan(&req.unit_price).map_or(true, |m| m.0 <= 0) {
        errors.push(FieldError::new(
            "unit_price",
            "format",
            "单价须为正数，最多两位小数。",
        ));
    }
    match crate::domain::contract::parse_date(&req.delivery_date) {
        Some(d) if d > today() => {}
        Some(_) => errors.push(FieldError::new(
            "delivery_date",
            "after_today",
            "交付日期须晚于今天。",
        )),
        None => errors.push(FieldError::new(
            "delivery_date",
            "date",
            "日期格式须为 YYYY-MM-DD。",
        )),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(errors))
    }
}

fn view(c: &Contract) -> Result<ContractView, Error> {
    let t: StoredTerms =
        serde_json::from_str(&c.terms).map_err(|e| anyhow::anyhow!("stored terms: {e}"))?;
    Ok(ContractView {
        id: c.id.clone(),
        contract_no: c.contract_no.clone(),
        unit_id: c.unit_id.clone(),
        status: c.status.clone(),
        version: c.version,
        buyers: t
            .buyers
            .iter()
            .map(|b| BuyerView {
                name: b.name.clone(),
                id_number_masked: b.id_number_masked.clone(),
                share_percent: b.share_percent,
            })
            .collect(),
        unit_price: t.unit_price,
        payment_mode: t.payment.mode,
        delivery_date: t.delivery_date,
        document_sha256: c.document_sha256.clone(),
        filing_no: c.filing_no.clone(),
        returned_reasons: c
            .returned_reasons
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

async fn record(
    s: &Services,
    caller: &Caller,
    action: &str,
    c: &Contract,
    detail: serde_json::Value,
) -> Result<(), Error> {
    let hash = crate::audit::hex(&openssl::sha::sha256(c.terms.as_bytes()));
    super::audit(
        s,
        Some(caller),
        action,
        ("contract", &c.id),
        Some(hash),
        detail,
    )
    .await
}

/// The terms as stored: each buyer's number encrypted, bound to this contract and position (a
/// value copied elsewhere does not decrypt).
fn stored_terms(s: &Services, id: &str, req: &NewContract) -> Result<String, Error> {
    let p = &s.identity.personal;
    let mut buyers = Vec::new();
    for (i, b) in req.buyers.iter().enumerate() {
        let number =
            IdNumber::parse(&b.id_number, today()).map_err(|r| anyhow::anyhow!("{}", r.rule))?;
        buyers.push(StoredBuyer {
            name: PersonName::parse(&b.name)
                .map_err(|r| anyhow::anyhow!("{}", r.rule))?
                .as_str()
                .to_owned(),
            id_number_enc: p.encrypt(&format!("{id}/buyers/{i}"), number.as_str())?,
            id_number_hash: p.lookup_hash(number.as_str()),
            id_number_masked: number.masked(),
            share_percent: b.share_percent,
            phone: b.phone.clone(),
            address: b.address.clone(),
        });
    }
    Ok(serde_json::to_string(&StoredTerms {
        buyers,
        co_ownership: req.co_ownership.clone(),
        unit_price: req.unit_price.clone(),
        payment: req.payment.clone(),
        delivery_date: req.delivery_date.clone(),
        dispute: req.dispute.clone(),
        property: req.property.clone(),
        supplementary: req.supplementary.clone(),
        seller: req.seller.clone(),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?)
}

/// A drafter of the unit's developer creates a draft; the unit is taken in the same
/// transaction. Another live contract on the unit, or a unit that is not available, is a 409.
pub async fn create(
    s: &Services,
    caller: &Caller,
    req: NewContract,
) -> Result<ContractView, Error> {
    if !(caller.is(Role::Developer) && caller.has_duty(Duty::Drafter)) {
        return Err(Error::forbidden("只有开发企业的合同起草人员可以起草合同。"));
    }
    validate(s, &req)?;
    let unit = s
        .store
        .unit(&req.unit_id)
        .await?
        .ok_or_else(|| Error::not_found("该房屋"))?;
    let project = s
        .store
        .project(&unit.project_id)
        .await?
        .ok_or_else(|| Error::not_found("该项目"))?;
    if caller.organisation_id.as_deref() != Some(project.developer_id.as_str()) {
        // Another developer's unit: not found rather than forbidden, to reveal nothing.
        return Err(Error::not_found("该房屋"));
    }
    let now = OffsetDateTime::now_utc();
    let id = uuid::Uuid::now_v7().to_string();
    let terms = stored_terms(s, &id, &req)?;
    let contract = Contract {
        contract_no: format!(
            "YJ{}-{}",
            now.year(),
            &uuid::Uuid::new_v4().simple().to_string()[..10].to_ascii_uppercase()
        ),
        id,
        unit_id: unit.id.clone(),
        developer_id: project.developer_id.clone(),
        status: "draft".into(),
        live: true,
        version: 1,
        terms,
        drafter_id: caller.user_id.clone(),
        confirmer_id: None,
        document_sha256: None,
        filing_no: None,
        returned_reasons: None,
        cancellation: None,
        snapshot: None,
        filing_checks: None,
        created_at: now,
        updated_at: now,
    };
    match s.store.create_contract_draft(&contract).await? {
        Ok(()) => {}
        Err(DraftRefusal::UnitNotAvailable) => {
            return Err(Error::conflict(
                "unit_not_available",
                "该房屋当前不可售（已被锁定、已售或被冻结）。",
            ));
        }
        Err(DraftRefusal::UnitHasLiveContract) => {
            return Err(Error::conflict(
                "unit_has_live_contract",
                "该房屋已有一份有效合同（一房一合同）。",
            ));
        }
    }
    record(
        s,
        caller,
        "contract.create",
        &contract,
        serde_json::json!({"unit_id": contract.unit_id, "contract_no": contract.contract_no}),
    )
    .await?;
    view(&contract)
}

/// The lookup hashes of the contract's buyers' ID numbers (never the numbers): how the
/// notification outbox finds the buyers' accounts.
pub fn buyer_hashes(c: &Contract) -> Result<Vec<String>, Error> {
    let t: StoredTerms = serde_json::from_str(&c.terms).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(t.buyers.into_iter().map(|b| b.id_number_hash).collect())
}

/// The agreed delivery date (the advance notice's lapse is counted from it).
pub fn delivery_date(c: &Contract) -> Option<time::Date> {
    let t: StoredTerms = serde_json::from_str(&c.terms).ok()?;
    crate::domain::contract::parse_date(&t.delivery_date)
}

/// The contract with this id, or "not found" (also what a caller who may not see it gets).
pub async fn load(s: &Services, id: &str) -> Result<Contract, Error> {
    s.store
        .contract(id)
        .await?
        .ok_or_else(|| Error::not_found("该合同"))
}

/// Who may read a contract: its developer's staff, reviewers, administrators, and its buyers.
async fn may_read(s: &Services, caller: &Caller, c: &Contract) -> Result<bool, Error> {
    Ok(match caller.role {
        Role::Admin | Role::Reviewer => true,
        Role::Developer => caller.organisation_id.as_deref() == Some(c.developer_id.as_str()),
        Role::Buyer => {
            let Some(row) = s.store.user_identity(&caller.user_id).await? else {
                return Ok(false);
            };
            let Some(hash) = row.id_number_hash else {
                return Ok(false);
            };
            let t: StoredTerms =
                serde_json::from_str(&c.terms).map_err(|e| anyhow::anyhow!("{e}"))?;
            t.buyers.iter().any(|b| b.id_number_hash == hash)
        }
    })
}

pub async fn get(s: &Services, caller: &Caller, id: &str) -> Result<ContractView, Error> {
    let c = load(s, id).await?;
    if !may_read(s, caller, &c).await? {
        return Err(Error::not_found("该合同"));
    }
    view(&c)
}

/// The developer withdraws a contract nobody has signed; the unit becomes available again.
pub async fn withdraw(s: &Services, caller: &Caller, id: &str) -> Result<ContractView, Error> {
    let c = load(s, id).await?;
    if !(caller.is(Role::Developer)
        && caller.organisation_id.as_deref() == Some(c.developer_id.as_str()))
    {
        return Err(Error::not_found("该合同"));
    }
    let now = OffsetDateTime::now_utc();
    if !s
        .store
        .end_unsigned_contract(id, &["draft", "awaiting_buyers"], "withdrawn", now)
        .await?
    {
        return Err(Error::conflict(
            "contract_not_withdrawable",
            "只有尚无人签署的合同可以撤回。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.withdraw",
        &c,
        serde_json::json!({"unit_id": c.unit_id}),
    )
    .await?;
    view(&c)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The contract's full data: the drafter's terms, the buyers' numbers decrypted for the
/// document (it prints them masked), and everything the inventory knows.
async fn contract_data(
    s: &Services,
    c: &Contract,
    signed_on: time::Date,
) -> Result<crate::domain::contract::ContractData, Error> {
    use crate::domain::contract as d;
    let t: StoredTerms =
        serde_json::from_str(&c.terms).map_err(|e| anyhow::anyhow!("stored terms: {e}"))?;
    let unit = s
        .store
        .unit(&c.unit_id)
        .await?
        .ok_or_else(|| Error::not_found("该房屋"))?;
    let project = s
        .store
        .project(&unit.project_id)
        .await?
        .ok_or_else(|| Error::not_found("该项目"))?;
    let permit = s
        .store
        .permits(&project.id)
        .await?
        .into_iter()
        .find(|p| Some(&p.id) == unit.permit_id.as_ref())
        .ok_or_else(|| Error::conflict("no_permit", "该房屋不在有效的预售许可范围内。"))?;
    let building = s
        .store
        .buildings(&project.id)
        .await?
        .into_iter()
        .find(|b| b.id == unit.building_id)
        .ok_or_else(|| Error::not_found("该楼栋"))?;
    let org = s
        .store
        .organisation(&c.developer_id)
        .await?
        .ok_or_else(|| Error::not_found("开发企业"))?;
    let p = &s.identity.personal;
    let mut buyers = Vec::new();
    for (i, b) in t.buyers.iter().enumerate() {
        buyers.push(d::Buyer {
            name: b.name.clone(),
            id_type: "居民身份证".into(),
            id_number: p.decrypt(&format!("{}/buyers/{i}", c.id), &b.id_number_enc)?,
            phone: b.phone.clone(),
            address: b.address.clone(),
            share: b.share_percent.to_string(),
        });
    }
    let gross = crate::domain::Area(unit.gross_area);
    let unit_price = crate::domain::Money::parse_yuan(&t.unit_price)
        .map_err(|_| anyhow::anyhow!("unit price"))?;
    let total = unit_price
        .times_area(gross)
        .ok_or_else(|| anyhow::anyhow!("price overflow"))?;
    Ok(d::ContractData {
        contract_no: c.contract_no.clone(),
        signed_on: signed_on.to_string(),
        seller: d::Seller {
            name: org.name.clone(),
            uscc: org.uscc.clone().unwrap_or_default(),
            address: t.seller.address.clone(),
            legal_representative: t.seller.legal_representative.clone(),
            qualification_no: t.seller.qualification_no.clone(),
        },
        buyers,
        co_ownership: t.co_ownership.clone(),
        project: d::Project {
            name: project.name.clone(),
            town: project.town.clone(),
            parcel_code: project.parcel_code.clone(),
            land_certificate_no: project.land_certificate_no.clone(),
            land_use: project.land_use.clone(),
            land_term_end: project.land_term_end.to_string(),
            planning_permit_no: project.planning_permit_no.clone(),
            construction_permit_no: project.construction_permit_no.clone(),
        },
        permit: d::Permit {
            number: permit.number.clone(),
            authority: permit.authority.clone(),
        },
        unit: d::Unit {
            building: building.name.clone(),
            room_no: unit.room_no.clone(),
            floor: unit.floor,
            floors_above: building.floors_above,
            floors_below: building.floors_below,
            unit_number: unit.unit_number.clone(),
            use_type: unit.use_type.clone(),
            storey_height: format!(
                "{}.{:02}",
                unit.storey_height_mm / 1000,
                (unit.storey_height_mm % 1000) / 10
            ),
            gross_area: gross.to_string(),
            internal_area: crate::domain::Area(unit.internal_area).to_string(),
            shared_area: crate::domain::Area(unit.shared_area).to_string(),
        },
        mortgage: if unit.mortgaged {
            "该商品房所在项目存在在建工程抵押，详见附件三之二".into()
        } else {
            "无".into()
        },
        price: d::Price {
            basis: "建筑面积".into(),
            unit_price: t.unit_price.clone(),
            total: total.to_string(),
        },
        payment: d::Payment {
            mode: t.payment.mode.clone(),
            loan_type: t.payment.loan_type.clone(),
            lender: t.payment.lender.clone(),
            schedule: t
                .payment
                .schedule
                .iter()
                .map(|i| d::Instalment {
                    due: i.due.clone(),
                    amount: i.amount.clone(),
                    item: i.item.clone(),
                })
                .collect(),
        },
        escrow: d::Escrow {
            bank: permit.escrow_bank.clone(),
            account_name: permit.escrow_account_name.clone(),
            account_no: permit.escrow_account_no.clone(),
        },
        delivery_date: t.delivery_date.clone(),
        filing_deadline_days: 30,
        registration_deadline_days: 730,
        dispute: t.dispute.clone(),
        property: d::PropertyManagement {
            company: t.property.company.clone(),
            fee: t.property.fee.clone(),
        },
        supplementary: t.supplementary.clone(),
    })
}

/// The confirmer (another person than the drafter) confirms the draft: every rule is checked,
/// the PDF is generated from the template, stored, and the buyers may sign.
pub async fn confirm(s: &Services, caller: &Caller, id: &str) -> Result<ContractView, Error> {
    let c = load(s, id).await?;
    if !(caller.is(Role::Developer)
        && caller.organisation_id.as_deref() == Some(c.developer_id.as_str()))
    {
        return Err(Error::not_found("该合同"));
    }
    if !caller.has_duty(Duty::Confirmer) {
        return Err(Error::forbidden("只有合同确认人员可以确认合同。"));
    }
    if caller.user_id == c.drafter_id {
        return Err(Error::Forbidden {
            code: "four_eyes",
            message: "合同的起草人与确认人不能是同一人。".into(),
        });
    }
    if c.status != "draft" {
        return Err(Error::conflict(
            "contract_not_draft",
            "只有草稿状态的合同可以确认。",
        ));
    }
    let data = contract_data(s, &c, today()).await?;
    let unit = s
        .store
        .unit(&c.unit_id)
        .await?
        .ok_or_else(|| Error::not_found("该房屋"))?;
    let mut errors: Vec<FieldError> = data
        .validate()
        .into_iter()
        .map(|i| FieldError::new(i.field, i.rule, i.message))
        .collect();
    if let Ok(p) = crate::domain::Money::parse_yuan(&data.price.unit_price)
        && p.0 > unit.filed_price_fen
    {
        errors.push(FieldError::new(
            "unit_price",
            "above_filed_price",
            "单价高于该房屋的备案价格。",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    let font = s.font.as_ref().ok_or_else(|| Error::Unavailable {
        code: "documents_unavailable",
        message: "服务器缺少中文字体，暂时不能生成合同文件。".into(),
    })?;
    let public = s
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", s.config.listen));
    let now = OffsetDateTime::now_utc();
    // Whole seconds: the document's dates (Info and XMP) have none, and the snapshot that check 9
    // re-renders from keeps the same text.
    let created = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .to_offset(time::macros::offset!(+8))
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rendered = super::documents::render_contract(
        font,
        super::documents::CONTRACT_TEMPLATE,
        &data,
        &public,
        &created,
    )?;
    let sha = hex(&openssl::sha::sha256(&rendered.pdf));
    super::materials::put(s, &sha, "application/pdf", &rendered.pdf, now).await?;
    let snapshot = super::checks::Snapshot::seal(s, &c.id, &data, &public, &created, &sha)?;
    if !s
        .store
        .confirm_contract(&c.id, c.version, &caller.user_id, &sha, &snapshot, now)
        .await?
    {
        return Err(Error::conflict(
            "contract_changed",
            "合同已被修改或已确认，请刷新后重试。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.confirm",
        &c,
        serde_json::json!({"document_sha256": sha, "pages": rendered.pages}),
    )
    .await?;
    view(&c)
}

/// The current PDF of a contract, for whoever may read the contract.
pub async fn document(s: &Services, caller: &Caller, id: &str) -> Result<Vec<u8>, Error> {
    let c = load(s, id).await?;
    if !may_read(s, caller, &c).await? {
        return Err(Error::not_found("该合同"));
    }
    let sha = c
        .document_sha256
        .ok_or_else(|| Error::not_found("该合同的文件（尚未确认）"))?;
    Ok(super::materials::get(s, &sha)
        .await?
        .ok_or_else(|| anyhow::anyhow!("material {sha} missing"))?)
}

/// The verification report of the contract's current PDF (the verifier of issue 5, trusting
/// this installation's root).
pub async fn verification(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<crate::pdf::verify::Report, Error> {
    let pdf = document(s, caller, id).await?;
    super::verification::verify_pdf(s, bytes::Bytes::from(pdf)).await
}

/// A buyer signs the contract's current PDF in their own field, after the identity hook (a
/// fresh verification and the one-time code issued for exactly this PDF's SHA-256). The first
/// buyer's signature certifies the contract (DocMDP P=2), so later signatures may only fill the
/// prepared fields. When every buyer has signed, the contract is `buyers_signed`.
pub async fn sign_as_buyer(
    s: &Services,
    caller: &Caller,
    id: &str,
    code_id: &str,
    code: &str,
) -> Result<ContractView, Error> {
    let c = load(s, id).await?;
    if !caller.is(Role::Buyer) || !may_read(s, caller, &c).await? {
        return Err(Error::not_found("该合同"));
    }
    if !matches!(c.status.as_str(), "awaiting_buyers" | "buyers_signing") {
        return Err(Error::conflict(
            "contract_not_signable",
            "合同当前不在买受人签署阶段。",
        ));
    }
    let t: StoredTerms = serde_json::from_str(&c.terms).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = s
        .store
        .user_identity(&caller.user_id)
        .await?
        .and_then(|r| r.id_number_hash)
        .ok_or_else(|| Error::not_found("该合同"))?;
    let index = t
        .buyers
        .iter()
        .position(|b| b.id_number_hash == hash)
        .ok_or_else(|| Error::not_found("该合同"))?;
    let field = format!("buyer-{}", index + 1);
    let done = s.store.contract_signatures(&c.id).await?;
    let of_version: Vec<_> = done
        .iter()
        .filter(|x| x.contract_version == c.version)
        .collect();
    if of_version.iter().any(|x| x.field == field) {
        return Err(Error::conflict("already_signed", "您已签署过本合同。"));
    }
    let before = c
        .document_sha256
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no document"))?;
    let pdf = super::materials::get(s, &before)
        .await?
        .ok_or_else(|| anyhow::anyhow!("material missing"))?;
    let certify = of_version.is_empty().then_some(2);
    let signed = super::signing::sign_as_person(
        s,
        caller,
        &pdf,
        &field,
        &super::signing::Intent {
            purpose: crate::identity::Purpose::SignContract,
            code_id,
            code,
        },
        certify,
    )
    .await?;
    let now = OffsetDateTime::now_utc();
    let after = hex(&openssl::sha::sha256(&signed.pdf));
    super::materials::put(s, &after, "application/pdf", &signed.pdf, now).await?;
    let all_signed = of_version.len() + 1 == t.buyers.len();
    let sig = crate::store::ContractSignature {
        id: uuid::Uuid::now_v7().to_string(),
        contract_id: c.id.clone(),
        contract_version: c.version,
        field: field.clone(),
        kind: "personal".into(),
        signer_user_id: Some(caller.user_id.clone()),
        certificate_serial: Some(signed.certificate_serial.clone()),
        signed_at: now,
        document_before: before,
        document_after: after.clone(),
        evidence: serde_json::to_string(&signed.authorization)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let status = if all_signed {
        "buyers_signed"
    } else {
        "buyers_signing"
    };
    if !s.store.record_contract_signature(&sig, status).await? {
        return Err(Error::conflict(
            "contract_changed",
            "合同在签署期间发生了变化，请重新核对后签署。",
        ));
    }
    let c = load(s, id).await?;
    record(s, caller, "contract.sign", &c, serde_json::json!({"field": field, "document_sha256": after, "certificate": signed.certificate_serial, "verification_id": signed.authorization.verification_id, "code_id": signed.authorization.code_id})).await?;
    view(&c)
}

/// The developer's seal certificate and key: issued on first use by the organisations CA and
/// kept (encrypted) in the PKI directory beside the service's own units.
///
/// First use can come from several requests at once (an opening day: every confirmer seals),
/// on one instance or several sharing the PKI directory. One issuance must win, or a key and a
/// certificate from different issuances would be paired: within the instance a lock serialises
/// issuers; across instances the key file is created with a hard link, which fails if another
/// instance got there first — the loser discards (and revokes) its own and uses the winner's.
pub async fn organisation_seal(
    s: &Services,
    org: &crate::store::Organisation,
) -> Result<(Vec<u8>, crate::pki::SoftwareKey), Error> {
    let unit = format!("seal-{}", org.id);
    let have = || -> Option<(Vec<u8>, crate::pki::SoftwareKey)> {
        Some((s.pki.unit_cert(&unit).ok()?, s.pki.unit_key(&unit).ok()?))
    };
    if let Some(found) = have() {
        return Ok(found);
    }
    let _guard = s.pki.issuing.lock().await;
    if let Some(found) = have() {
        return Ok(found);
    }
    let (issued, key) = super::pki::issue_seal(
        s,
        Some(org.id.clone()),
        &org.name,
        org.uscc.as_deref().unwrap_or(""),
        "合同专用章",
        None,
    )
    .await?;
    let key_path = s.pki.unit_key_path(&unit);
    let cert_path = s.pki.dir.join(format!("{unit}.pem"));
    let tmp = format!(".tmp-{}", uuid::Uuid::new_v4().simple());
    let key_tmp = key_path.with_extension(format!("pem{tmp}"));
    let cert_tmp = cert_path.with_extension(format!("pem{tmp}"));
    s.pki.save_key(&key_tmp, &key)?;
    std::fs::write(&cert_tmp, issued.pem()).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The key file is the commit point (a hard link never replaces an existing file); the
    // certificate follows it, and readers wait for both.
    let won = std::fs::hard_link(&key_tmp, &key_path).is_ok();
    if won {
        std::fs::rename(&cert_tmp, &cert_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let _ = std::fs::remove_file(&key_tmp);
    let _ = std::fs::remove_file(&cert_tmp);
    if won {
        return Ok((issued.der, key));
    }
    // Another instance won: its certificate follows its key within moments.
    let _ = super::pki::revoke(
        s,
        None,
        &issued.serial,
        super::pki::RevocationReason::Superseded,
    )
    .await;
    for _ in 0..50 {
        if let Some(found) = have() {
            return Ok(found);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(anyhow::anyhow!(
        "the organisation seal of {} is incomplete in the PKI directory",
        org.id
    )
    .into())
}

fn signing_error(e: crate::pdf::PdfError) -> Error {
    Error::Invalid {
        code: "signing_failed",
        message: format!("签章失败：{e}"),
        fields: vec![],
    }
}

/// The developer's confirmer seals the contract every buyer signed (after their own identity
/// check and a code for this exact PDF); the contract goes to filing review and the unit is
/// `signed`.
pub async fn seal(
    s: &Services,
    caller: &Caller,
    id: &str,
    code_id: &str,
    code: &str,
) -> Result<ContractView, Error> {
    let c = load(s, id).await?;
    if !(caller.is(Role::Developer)
        && caller.organisation_id.as_deref() == Some(c.developer_id.as_str()))
    {
        return Err(Error::not_found("该合同"));
    }
    if !caller.has_duty(Duty::Confirmer) {
        return Err(Error::forbidden("只有合同确认人员可以加盖合同专用章。"));
    }
    if c.status != "buyers_signed" {
        return Err(Error::conflict(
            "contract_not_sealable",
            "全部买受人签署后才能盖章。",
        ));
    }
    let before = c
        .document_sha256
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no document"))?;
    let pdf = super::materials::get(s, &before)
        .await?
        .ok_or_else(|| anyhow::anyhow!("material missing"))?;
    let auth = super::identity::authorize_signing(
        s,
        caller,
        crate::identity::Purpose::SealContract,
        &before,
        code_id,
        code,
    )
    .await?;
    let org = s
        .store
        .organisation(&c.developer_id)
        .await?
        .ok_or_else(|| Error::not_found("开发企业"))?;
    let (cert, key) = organisation_seal(s, &org).await?;
    let now = OffsetDateTime::now_utc();
    let sealed = super::signing::seal_document(
        s,
        &pdf,
        &super::signing::Seal {
            field: "seller-seal",
            cert: &cert,
            key: &key,
            organisation: &org.name,
            purpose: "合同专用章",
            reason: "出卖人盖章",
            certify: None,
        },
        now,
    )?;
    let after = hex(&openssl::sha::sha256(&sealed));
    super::materials::put(s, &after, "application/pdf", &sealed, now).await?;
    let serial = openssl::x509::X509::from_der(&cert)
        .ok()
        .and_then(|x| x.serial_number().to_bn().ok())
        .map(|b| hex(&b.to_vec()));
    let sig = crate::store::ContractSignature {
        id: uuid::Uuid::now_v7().to_string(),
        contract_id: c.id.clone(),
        contract_version: c.version,
        field: "seller-seal".into(),
        kind: "organisation_seal".into(),
        signer_user_id: Some(caller.user_id.clone()),
        certificate_serial: serial,
        signed_at: now,
        document_before: before,
        document_after: after.clone(),
        evidence: serde_json::to_string(&auth).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    // Sealed and submitted for filing in one step (the submission is automatic).
    if !s
        .store
        .record_contract_step(
            &sig,
            "buyers_signed",
            "filing_review",
            None,
            ("locked", "signed"),
        )
        .await?
    {
        return Err(Error::conflict(
            "contract_changed",
            "合同已被处理，请刷新后重试。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.seal",
        &c,
        serde_json::json!({"document_sha256": after}),
    )
    .await?;
    // Submitted: the reviewer's checks run now and their results stay with the contract. The
    // seal is already recorded, so a failure here (a busy verifier) must not fail the request:
    // the queue shows the checks as not run, and approval runs them anyway.
    match super::checks::run(s, &c).await {
        Ok(checks) => {
            s.store
                .set_filing_checks(
                    &c.id,
                    &serde_json::to_string(&checks).map_err(|e| anyhow::anyhow!("{e}"))?,
                )
                .await?
        }
        Err(e) => {
            tracing::warn!(contract = %c.id, error = %e, "filing checks not run at submission")
        }
    }
    record(
        s,
        caller,
        "contract.submit_filing",
        &c,
        serde_json::json!({}),
    )
    .await?;
    view(&c)
}

/// A reviewer approves the filing: the contract's signatures must all verify; a filing number
/// is issued; the registration centre's seal, the validation data (DSS) and a document
/// time-stamp are added (PAdES B-LTA); the unit becomes `filed`. Two reviewers approving at
/// once: one succeeds, the other gets `already_decided`.
pub async fn approve_filing(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<ContractView, Error> {
    if !caller.is(Role::Reviewer) {
        return Err(Error::forbidden("只有登记中心的审核人员可以审核备案。"));
    }
    let c = load(s, id).await?;
    if c.status != "filing_review" {
        return Err(Error::conflict(
            "already_decided",
            "该合同不在备案审核中（可能已被处理）。",
        ));
    }
    let before = c
        .document_sha256
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no document"))?;
    let pdf = super::materials::get(s, &before)
        .await?
        .ok_or_else(|| anyhow::anyhow!("material missing"))?;
    // The reviewer's whole list, run again now: approval is refused while any check fails.
    let checks = super::checks::run(s, &c).await?;
    if !checks.passed {
        return Err(Error::Invalid {
            code: "checks_failed",
            message: "合同未通过备案审核的自动检查，不能备案；请逐项查看检查结果。".into(),
            fields: super::checks::failures(&checks),
        });
    }
    let (cert, key) = super::pki::centre_seal(s)?;
    let now = OffsetDateTime::now_utc();
    let sealed = super::signing::seal_document(
        s,
        &pdf,
        &super::signing::Seal {
            field: "centre-seal",
            cert: &cert,
            key: &key,
            organisation: CENTRE,
            purpose: CENTRE_SEAL,
            reason: "备案",
            certify: None,
        },
        now,
    )?;
    // Long-term validation data and an archive time-stamp over everything.
    let h = &s.pki.hierarchy;
    let certs: Vec<Vec<u8>> = std::iter::once(&h.root)
        .chain(h.issuing.iter())
        .map(|a| a.cert_der.clone())
        .collect();
    let mut crls = Vec::new();
    for name in std::iter::once("root").chain(crate::pki::ca::ISSUING_CAS) {
        crls.push(super::pki::crl(s, name).await?);
    }
    let with_dss = crate::pdf::sign::add_dss(&sealed, &certs, &crls).map_err(signing_error)?;
    let tsa = super::pki::tsa_unit(s)?;
    let stamp = |d: &[u8; 32]| super::pki::stamp_digest(tsa, d);
    let archived = crate::pdf::sign::add_document_timestamp(
        &with_dss,
        "archive-timestamp",
        &stamp,
        crate::pdf::sign::TIMESTAMP_ALLOWANCE,
    )
    .map_err(signing_error)?;
    let after = hex(&openssl::sha::sha256(&archived));
    super::materials::put(s, &after, "application/pdf", &archived, now).await?;
    let filing_no = format!(
        "莞预备{}{}",
        now.year(),
        &uuid::Uuid::new_v4().simple().to_string()[..8].to_ascii_uppercase()
    );
    let serial = openssl::x509::X509::from_der(&cert)
        .ok()
        .and_then(|x| x.serial_number().to_bn().ok())
        .map(|b| hex(&b.to_vec()));
    let sig = crate::store::ContractSignature {
        id: uuid::Uuid::now_v7().to_string(),
        contract_id: c.id.clone(),
        contract_version: c.version,
        field: "centre-seal".into(),
        kind: "centre_seal".into(),
        signer_user_id: Some(caller.user_id.clone()),
        certificate_serial: serial,
        signed_at: now,
        document_before: before,
        document_after: after.clone(),
        evidence: serde_json::json!({"reviewer": caller.user_id, "verification_verdict": "valid", "filing_no": filing_no}).to_string(),
    };
    if !s
        .store
        .record_contract_step(
            &sig,
            "filing_review",
            "filed",
            Some(&filing_no),
            ("signed", "filed"),
        )
        .await?
    {
        return Err(Error::conflict(
            "already_decided",
            "该合同已被其他审核人员处理。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.file",
        &c,
        serde_json::json!({"filing_no": filing_no, "document_sha256": after}),
    )
    .await?;
    view(&c)
}

/// One reason for returning a filing.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnReason {
    /// The field or subject (`unit_price`, `buyers[1].phone`, `document`, …).
    pub field: String,
    /// A short code for the check that failed.
    pub code: String,
    pub message: String,
}

/// A reviewer returns the filing with every reason at once.
pub async fn return_filing(
    s: &Services,
    caller: &Caller,
    id: &str,
    reasons: Vec<ReturnReason>,
) -> Result<ContractView, Error> {
    if !caller.is(Role::Reviewer) {
        return Err(Error::forbidden("只有登记中心的审核人员可以审核备案。"));
    }
    if reasons.is_empty() || reasons.iter().any(|r| r.message.trim().is_empty()) {
        return Err(Error::invalid(vec![FieldError::new(
            "reasons",
            "required",
            "退回须列明全部理由。",
        )]));
    }
    let c = load(s, id).await?;
    let list: Vec<FieldError> = reasons
        .into_iter()
        .map(|r| FieldError::new(r.field, r.code, r.message))
        .collect();
    let json = serde_json::to_string(&list).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !s
        .store
        .return_contract(&c.id, &json, OffsetDateTime::now_utc())
        .await?
    {
        return Err(Error::conflict(
            "already_decided",
            "该合同不在备案审核中（可能已被处理）。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.return_filing",
        &c,
        serde_json::json!({"reasons": list}),
    )
    .await?;
    view(&c)
}

/// The developer takes a returned contract back as a new draft version: the earlier
/// signatures are void (they belong to the old version) and everyone signs again.
pub async fn reopen(s: &Services, caller: &Caller, id: &str) -> Result<ContractView, Error> {
    let c = load(s, id).await?;
    if !(caller.is(Role::Developer)
        && caller.organisation_id.as_deref() == Some(c.developer_id.as_str()))
    {
        return Err(Error::not_found("该合同"));
    }
    if !s
        .store
        .reopen_contract(&c.id, OffsetDateTime::now_utc())
        .await?
    {
        return Err(Error::conflict(
            "contract_not_returned",
            "只有被退回的合同可以重新起草。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.reopen",
        &c,
        serde_json::json!({"version": c.version}),
    )
    .await?;
    view(&c)
}

/// The drafter changes a draft's terms (not its unit): a new version.
pub async fn edit(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: NewContract,
) -> Result<ContractView, Error> {
    if !(caller.is(Role::Developer) && caller.has_duty(Duty::Drafter)) {
        return Err(Error::forbidden("只有开发企业的合同起草人员可以修改合同。"));
    }
    let c = load(s, id).await?;
    if caller.organisation_id.as_deref() != Some(c.developer_id.as_str()) {
        return Err(Error::not_found("该合同"));
    }
    if req.unit_id != c.unit_id {
        return Err(Error::invalid(vec![FieldError::new(
            "unit_id",
            "unchanged",
            "合同的房屋不能更改；请撤回后另行起草。",
        )]));
    }
    if c.status != "draft" {
        return Err(Error::conflict(
            "contract_not_draft",
            "只有草稿状态的合同可以修改。",
        ));
    }
    validate(s, &req)?;
    let terms = stored_terms(s, &c.id, &req)?;
    if !s
        .store
        .edit_contract(&c.id, c.version, &terms, OffsetDateTime::now_utc())
        .await?
    {
        return Err(Error::conflict(
            "contract_changed",
            "合同已被他人修改，请刷新后重试。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.edit",
        &c,
        serde_json::json!({"version": c.version}),
    )
    .await?;
    view(&c)
}

/// The contract, if the caller is one of its buyers.
pub async fn contract_for_buyer(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<Contract, Error> {
    let c = load(s, id).await?;
    if !caller.is(Role::Buyer) || !may_read(s, caller, &c).await? {
        return Err(Error::not_found("该合同"));
    }
    Ok(c)
}

/// What a registration certificate states of a contract.
pub struct Summary {
    pub right_holder: String,
    pub obligor: String,
    pub location: String,
    pub unit_number: String,
    pub total: String,
    pub gross_area: String,
}

pub async fn summary(s: &Services, c: &Contract) -> Result<Summary, Error> {
    let data = contract_data(s, c, today()).await?;
    let holders: Vec<String> = data
        .buyers
        .iter()
        .map(|b| format!("{}（{}%）", b.name, b.share))
        .collect();
    Ok(Summary {
        right_holder: format!("{}，{}", holders.join("、"), data.co_ownership),
        obligor: data.seller.name.clone(),
        location: format!(
            "{}{}{}{}号",
            data.project.town, data.project.name, data.unit.building, data.unit.room_no
        ),
        unit_number: data.unit.unit_number.clone(),
        total: data.price.total.clone(),
        gross_area: data.unit.gross_area.clone(),
    })
}

/// Which side of the contract the caller is on, if any.
async fn party(s: &Services, caller: &Caller, c: &Contract) -> Result<Option<&'static str>, Error> {
    Ok(match caller.role {
        Role::Developer
            if caller.organisation_id.as_deref() == Some(c.developer_id.as_str())
                && caller.has_duty(Duty::Confirmer) =>
        {
            Some("developer")
        }
        Role::Buyer if may_read(s, caller, c).await? => Some("buyer"),
        _ => None,
    })
}

/// A buyer asks for changes, or the developer recalls the contract, before it is fully signed:
/// it goes back to draft as a new version and every signature so far is void.
pub async fn recall(
    s: &Services,
    caller: &Caller,
    id: &str,
    reason: &str,
) -> Result<ContractView, Error> {
    let c = load(s, id).await?;
    let is_party = party(s, caller, &c).await?.is_some()
        || (caller.is(Role::Developer)
            && caller.organisation_id.as_deref() == Some(c.developer_id.as_str()));
    if !is_party {
        return Err(Error::not_found("该合同"));
    }
    if reason.trim().is_empty() {
        return Err(Error::invalid(vec![FieldError::new(
            "reason",
            "required",
            "请说明需要修改的内容。",
        )]));
    }
    if !s
        .store
        .recall_contract(&c.id, OffsetDateTime::now_utc())
        .await?
    {
        return Err(Error::conflict(
            "contract_not_recallable",
            "只有待签署或签署中的合同可以退回修改。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.recall",
        &c,
        serde_json::json!({"reason": reason, "version": c.version}),
    )
    .await?;
    view(&c)
}

/// One party asks to cancel a filed contract; the other must consent (verified) and a
/// reviewer approve.
pub async fn request_cancellation(
    s: &Services,
    caller: &Caller,
    id: &str,
    reason: &str,
    court_document: Option<&str>,
) -> Result<ContractView, Error> {
    let c = load(s, id).await?;
    let Some(side) = party(s, caller, &c).await? else {
        return Err(Error::not_found("该合同"));
    };
    if reason.trim().is_empty() {
        return Err(Error::invalid(vec![FieldError::new(
            "reason",
            "required",
            "请说明解除合同的原因。",
        )]));
    }
    if let Some(sha) = court_document {
        let ok = s
            .store
            .materials_of(&caller.user_id)
            .await?
            .iter()
            .any(|m| m.sha256 == sha && m.kind == "court_document");
        if !ok {
            return Err(Error::invalid(vec![FieldError::new(
                "court_document",
                "not_yours",
                "法院文书须为您本人上传、类型为 court_document 的材料。",
            )]));
        }
    }
    let now = OffsetDateTime::now_utc();
    let json = serde_json::json!({"requested_by": caller.user_id, "party": side, "reason": reason, "at": crate::audit::rfc3339(now), "consent": null, "court_document": court_document}).to_string();
    if !s
        .store
        .set_cancellation(&c.id, "filed", "cancel_requested", &json, now)
        .await?
    {
        return Err(Error::conflict(
            "contract_not_filed",
            "只有已备案的合同可以申请注销备案。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.cancel_request",
        &c,
        serde_json::json!({"party": side, "reason": reason}),
    )
    .await?;
    view(&c)
}

/// The other party consents, after an identity check and a code bound to the filed document.
pub async fn consent_cancellation(
    s: &Services,
    caller: &Caller,
    id: &str,
    code_id: &str,
    code: &str,
) -> Result<ContractView, Error> {
    let c = load(s, id).await?;
    let Some(side) = party(s, caller, &c).await? else {
        return Err(Error::not_found("该合同"));
    };
    if c.status != "cancel_requested" {
        return Err(Error::conflict(
            "no_cancellation",
            "该合同没有待同意的注销申请。",
        ));
    }
    let mut request: serde_json::Value =
        serde_json::from_str(c.cancellation.as_deref().unwrap_or("{}")).unwrap_or_default();
    if request["party"] == side {
        return Err(Error::Forbidden {
            code: "same_party",
            message: "注销申请须由另一方当事人同意。".into(),
        });
    }
    let purpose = if side == "buyer" {
        crate::identity::Purpose::SignContract
    } else {
        crate::identity::Purpose::SealContract
    };
    let document = c
        .document_sha256
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no document"))?;
    let auth =
        super::identity::authorize_signing(s, caller, purpose, &document, code_id, code).await?;
    let now = OffsetDateTime::now_utc();
    request["consent"] = serde_json::json!({"by": caller.user_id, "party": side, "at": crate::audit::rfc3339(now), "evidence": auth});
    if !s
        .store
        .set_cancellation(
            &c.id,
            "cancel_requested",
            "cancel_requested",
            &request.to_string(),
            now,
        )
        .await?
    {
        return Err(Error::conflict(
            "contract_changed",
            "合同状态已变化，请刷新后重试。",
        ));
    }
    let c = load(s, id).await?;
    record(
        s,
        caller,
        "contract.cancel_consent",
        &c,
        serde_json::json!({"party": side}),
    )
    .await?;
    view(&c)
}

/// A reviewer approves the cancellation: only with the other party's verified consent, and
/// only while no advance-notice registration of the contract is alive. The unit is released.
pub async fn approve_cancellation(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<ContractView, Error> {
    if !caller.is(Role::Reviewer) {
        return Err(Error::forbidden("只有登记中心的审核人员可以审批注销。"));
    }
    let c = load(s, id).await?;
    if c.status != "cancel_requested" {
        return Err(Error::conflict(
            "no_cancellation",
            "该合同没有待审批的注销申请。",
        ));
    }
    let request: serde_json::Value =
        serde_json::from_str(c.cancellation.as_deref().unwrap_or("{}")).unwrap_or_default();
    // The other party's verified consent, or a court document in its place.
    if request["consent"].is_null() && request["court_document"].is_null() {
        return Err(Error::conflict(
            "consent_missing",
            "另一方当事人尚未同意注销（也未附法院文书），不能审批。",
        ));
    }
    if !s
        .store
        .cancel_contract(&c.id, OffsetDateTime::now_utc())
        .await?
    {
        return Err(Error::conflict(
            "advance_notice_live",
            "该合同有正在办理或有效的预告登记，须先注销预告登记。",
        ));
    }
    let c = load(s, id).await?;
    record(s, caller, "contract.cancel", &c, serde_json::json!({"requested_by": request["party"], "consented_by": request["consent"]["party"], "court_document": request["court_document"]})).await?;
    view(&c)
}

/// The registration centre and the name of its seal, as drawn on what it seals.
pub const CENTRE: &str = "东莞市不动产登记中心";
pub const CENTRE_SEAL: &str = "不动产登记专用章";

/// An evidence package: every version of the contract's PDF the signatures produced, the
/// verification report of the current one, the signatures with what the identity hook checked,
/// the contract's (and its registrations') audit entries, and a manifest of SHA-256 digests
/// signed by the registration centre (a detached CMS, `manifest.json.p7s`). A ZIP of stored
/// entries (the PDFs are compressed already).
pub async fn evidence(s: &Services, caller: &Caller, id: &str) -> Result<Vec<u8>, Error> {
    use std::io::Write as _;
    let c = load(s, id).await?;
    let allowed =
        matches!(caller.role, Role::Reviewer | Role::Admin) || may_read(s, caller, &c).await?;
    if !allowed {
        return Err(Error::not_found("该合同"));
    }
    let signatures = s.store.contract_signatures(&c.id).await?;
    let mut documents: Vec<String> = Vec::new();
    for sig in &signatures {
        for d in [&sig.document_before, &sig.document_after] {
            if !documents.contains(d) {
                documents.push(d.clone());
            }
        }
    }
    if let Some(d) = &c.document_sha256
        && !documents.contains(d)
    {
        documents.push(d.clone());
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, d) in documents.iter().enumerate() {
        let pdf = super::materials::get(s, d)
            .await?
            .ok_or_else(|| anyhow::anyhow!("material {d} missing"))?;
        files.push((format!("documents/{:02}-{}.pdf", i + 1, &d[..16]), pdf));
    }
    if let Some(current) = &c.document_sha256 {
        let pdf = super::materials::get(s, current)
            .await?
            .ok_or_else(|| anyhow::anyhow!("material missing"))?;
        let report = super::verification::verify_pdf(s, bytes::Bytes::from(pdf)).await?;
        files.push((
            "verification.json".into(),
            serde_json::to_vec_pretty(&report).map_err(|e| anyhow::anyhow!("{e}"))?,
        ));
    }
    // The reviewer's checks as they stood at submission (the record of what was reviewed).
    if let Some(checks) = &c.filing_checks {
        files.push(("filing-checks.json".into(), checks.as_bytes().to_vec()));
    }
    let sigs: Vec<serde_json::Value> = signatures
        .iter()
        .map(|x| {
            serde_json::json!({
                "field": x.field, "kind": x.kind, "contract_version": x.contract_version,
                "signer_user_id": x.signer_user_id, "certificate_serial": x.certificate_serial,
                "signed_at": crate::audit::rfc3339(x.signed_at), "document_before": x.document_before,
                "document_after": x.document_after,
                "evidence": serde_json::from_str::<serde_json::Value>(&x.evidence).unwrap_or_default(),
            })
        })
        .collect();
    files.push((
        "signatures.json".into(),
        serde_json::to_vec_pretty(&sigs).map_err(|e| anyhow::anyhow!("{e}"))?,
    ));
    // The audit entries about this contract, and about registrations that name it.
    let all = s.store.audit_events(0, 1_000_000).await?;
    let registration_ids: Vec<String> = all
        .iter()
        .filter(|e| e.object_kind == "registration" && e.detail.contains(&c.id))
        .map(|e| e.object_id.clone())
        .collect();
    let entries: Vec<serde_json::Value> = all
        .iter()
        .filter(|e| e.object_id == c.id || registration_ids.contains(&e.object_id))
        .map(|e| {
            serde_json::json!({
                "seq": e.seq, "prev_hash": e.prev_hash, "hash": e.hash, "at": crate::audit::rfc3339(e.at),
                "actor_id": e.actor_id, "actor_role": e.actor_role, "action": e.action,
                "object_kind": e.object_kind, "object_id": e.object_id,
                "object_hash": e.object_hash,
                "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_default(),
            })
        })
        .collect();
    files.push((
        "audit.json".into(),
        serde_json::to_vec_pretty(&entries).map_err(|e| anyhow::anyhow!("{e}"))?,
    ));
    let now = OffsetDateTime::now_utc();
    let manifest = serde_json::json!({
        "contract_id": c.id,
        "contract_no": c.contract_no,
        "status": c.status,
        "filing_no": c.filing_no,
        "generated_at": crate::audit::rfc3339(now),
        "generated_for": caller.user_id,
        "files": files.iter().map(|(n, b)| serde_json::json!({"name": n, "sha256": hex(&openssl::sha::sha256(b)), "size": b.len()})).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec_pretty(&manifest).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Signed by the registration centre's seal: one detached CMS over the manifest.
    let (cert, key) = super::pki::centre_seal(s)?;
    let orgs_ca = s
        .pki
        .hierarchy
        .authority("organisations-ca")
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .cert_der
        .clone();
    let signature = crate::pki::cms::sign(&crate::pki::cms::SignRequest {
        content_type: crate::pki::cms::ID_DATA,
        content: None,
        content_digest: openssl::sha::sha256(&manifest),
        signer_cert: &cert,
        key: &key,
        certificates: vec![cert.clone(), orgs_ca],
        signing_time: Some(now),
        unsigned_attributes: vec![],
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), Error> {
        zip.start_file(name, options)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        zip.write_all(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    };
    put("manifest.json", &manifest)?;
    put("manifest.json.p7s", &signature)?;
    for (name, bytes) in &files {
        put(name, bytes)?;
    }
    let out = zip
        .finish()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_inner();
    record(
        s,
        caller,
        "contract.evidence_export",
        &c,
        serde_json::json!({"manifest_sha256": hex(&openssl::sha::sha256(&manifest))}),
    )
    .await?;
    Ok(out)
}

/// The reviewer's checks of a contract, run now, with those kept from its submission.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChecksView {
    pub current: super::checks::Checks,
    pub at_submission: Option<super::checks::Checks>,
}

pub async fn checks(s: &Services, caller: &Caller, id: &str) -> Result<ChecksView, Error> {
    let c = load(s, id).await?;
    let allowed = match caller.role {
        Role::Reviewer | Role::Admin => true,
        Role::Developer => caller.organisation_id.as_deref() == Some(c.developer_id.as_str()),
        Role::Buyer => false,
    };
    if !allowed {
        return Err(Error::not_found("该合同"));
    }
    Ok(ChecksView {
        current: super::checks::run(s, &c).await?,
        at_submission: c
            .filing_checks
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok()),
    })
}

/// A contract waiting in the reviewers' filing queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueItem {
    pub id: String,
    pub contract_no: String,
    pub unit_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// Whether every check passed at submission (none: not run).
    pub checks_passed: Option<bool>,
    /// The numbers of the checks that failed at submission.
    pub failed_checks: Vec<u8>,
}

/// The filing queue, oldest first.
pub async fn filing_queue(s: &Services, caller: &Caller) -> Result<Vec<QueueItem>, Error> {
    if !caller.is(Role::Reviewer) {
        return Err(Error::forbidden(
            "只有登记中心的审核人员可以查看备案审核队列。",
        ));
    }
    let far = OffsetDateTime::now_utc() + time::Duration::days(1);
    Ok(s.store
        .stale_contracts(&["filing_review"], far, 500)
        .await?
        .into_iter()
        .map(|c| {
            let checks: Option<super::checks::Checks> = c
                .filing_checks
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok());
            QueueItem {
                checks_passed: checks.as_ref().map(|k| k.passed),
                failed_checks: checks
                    .map(|k| {
                        k.checks
                            .iter()
                            .filter(|x| !x.passed)
                            .map(|x| x.no)
                            .collect()
                    })
                    .unwrap_or_default(),
                id: c.id,
                contract_no: c.contract_no,
                unit_id: c.unit_id,
                submitted_at: c.updated_at,
            }
        })
        .collect())
}

/// A buyer's invitation to a confirmed contract: a code the developer hands over (on paper, by
/// SMS from its own system) with a link to the contract. The code is derived from the contract,
/// its version and the buyer's place (a keyed hash: nothing stored, void with a new version).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invitation {
    /// The buyer's place in the contract, from 0.
    pub buyer: usize,
    pub name: String,
    pub code: String,
    /// Where the buyer signs in and opens the contract.
    pub link: String,
    /// Whether this buyer has signed the current version.
    pub signed: bool,
}

fn invitation_code(s: &Services, c: &Contract, index: usize) -> String {
    s.identity.personal.code_hash(
        &format!("invite:{}:{}", c.id, c.version),
        &index.to_string(),
    )[..10]
        .to_ascii_uppercase()
}

/// The invitations of a contract awaiting its buyers, for the developer's staff.
pub async fn invitations(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<Vec<Invitation>, Error> {
    let c = load(s, id).await?;
    if !(caller.is(Role::Developer)
        && caller.organisation_id.as_deref() == Some(c.developer_id.as_str()))
    {
        return Err(Error::not_found("该合同"));
    }
    if !matches!(c.status.as_str(), "awaiting_buyers" | "buyers_signing") {
        return Err(Error::conflict(
            "not_awaiting_buyers",
            "合同确认后、买受人签署完成前才有签约邀请。",
        ));
    }
    let t: StoredTerms = serde_json::from_str(&c.terms).map_err(|e| anyhow::anyhow!("{e}"))?;
    let signatures = s.store.contract_signatures(&c.id).await?;
    let mut signed_hashes = Vec::new();
    for sig in signatures
        .iter()
        .filter(|x| x.contract_version == c.version && x.kind == "personal")
    {
        if let Some(u) = &sig.signer_user_id
            && let Some(h) = s
                .store
                .user_identity(u)
                .await?
                .and_then(|i| i.id_number_hash)
        {
            signed_hashes.push(h);
        }
    }
    let public = s
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", s.config.listen));
    Ok(t.buyers
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let code = invitation_code(s, &c, i);
            Invitation {
                buyer: i,
                name: b.name.clone(),
                link: format!("{public}/invitations/{}?code={code}", c.id),
                code,
                signed: signed_hashes.contains(&b.id_number_hash),
            }
        })
        .collect())
}

/// A buyer accepts an invitation: the code must be one of the contract's current ones, and the
/// buyer's own identity (set on the account) must be the invited buyer's. Then the contract is
/// theirs to read and sign.
pub async fn accept_invitation(
    s: &Services,
    caller: &Caller,
    id: &str,
    code: &str,
) -> Result<ContractView, Error> {
    if !caller.is(Role::Buyer) {
        return Err(Error::forbidden("只有买受人可以接受签约邀请。"));
    }
    let invalid = || {
        Error::invalid(vec![FieldError::new(
            "code",
            "invitation_invalid",
            "邀请码不正确或已失效（合同已修改或已签署完成），请向开发企业重新索取。",
        )])
    };
    let Some(c) = s.store.contract(id).await? else {
        return Err(invalid());
    };
    if !matches!(c.status.as_str(), "awaiting_buyers" | "buyers_signing") {
        return Err(invalid());
    }
    let t: StoredTerms = serde_json::from_str(&c.terms).map_err(|e| anyhow::anyhow!("{e}"))?;
    let given = code.trim().to_ascii_uppercase();
    let Some(index) = (0..t.buyers.len()).find(|i| {
        let expected = invitation_code(s, &c, *i);
        // Lengths first: memcmp::eq compares equal-length inputs only.
        expected.len() == given.len() && openssl::memcmp::eq(expected.as_bytes(), given.as_bytes())
    }) else {
        return Err(invalid());
    };
    let hash = s
        .store
        .user_identity(&caller.user_id)
        .await?
        .and_then(|i| i.id_number_hash)
        .ok_or_else(|| Error::Forbidden {
            code: "identity_required",
            message: "请先登记您的实名信息（姓名和身份证号）再接受邀请。".into(),
        })?;
    if t.buyers[index].id_number_hash != hash {
        return Err(Error::Forbidden {
            code: "invitation_not_for_you",
            message: "该邀请不是发给您的：您的身份信息与合同中的买受人不一致。".into(),
        });
    }
    record(
        s,
        caller,
        "contract.invitation_accepted",
        &c,
        serde_json::json!({"buyer": index}),
    )
    .await?;
    view(&c)
}
