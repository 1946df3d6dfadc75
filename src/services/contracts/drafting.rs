//! Drafting: a drafter drafts a contract for an available unit (the unit is taken in the same
//! transaction: one unit, one live contract, enforced by the database) and edits the draft; a
//! confirmer — another person — confirms it, which renders the PDF the buyers will sign; the
//! developer withdraws a contract nobody signed; a buyer or the developer recalls one for changes;
//! and the scheduler expires drafts nobody signed in time.

use super::{
    NewContract, Party, StoredBuyer, StoredTerms, commit, decide, facts, today, view_for, visible,
};
use crate::domain::identity::{IdNumber, PersonName};
use crate::domain::lifecycle::contract as table;
use crate::domain::lifecycle::{ContractAction, ContractFacts, ContractStatus, Who};
use crate::domain::{Duty, Role};
use crate::services::{Caller, Error, FieldError, Services};
use crate::store::{Contract, ContractMove, DraftRefusal};
use serde::Serialize;
use time::OffsetDateTime;

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
            errors.extend(crate::services::documents::unrenderable(font, &field, text));
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

/// The terms as stored: each buyer's number encrypted, bound to this contract and position (a
/// value copied elsewhere does not decrypt).
fn stored_terms(s: &Services, id: &str, req: &NewContract) -> Result<(String, StoredTerms), Error> {
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
    let t = StoredTerms {
        buyers,
        co_ownership: req.co_ownership.clone(),
        unit_price: req.unit_price.clone(),
        payment: req.payment.clone(),
        delivery_date: req.delivery_date.clone(),
        dispute: req.dispute.clone(),
        property: req.property.clone(),
        supplementary: req.supplementary.clone(),
        seller: req.seller.clone(),
    };
    Ok((
        serde_json::to_string(&t).map_err(|e| anyhow::anyhow!("{e}"))?,
        t,
    ))
}

/// A drafter of the unit's developer creates a draft; the unit is taken in the same
/// transaction. Another live contract on the unit, or a unit that is not available, is a 409.
pub async fn create(
    s: &Services,
    caller: &Caller,
    req: NewContract,
) -> Result<super::ContractView, Error> {
    let unit = s.store.unit(&req.unit_id).await?;
    let project = match &unit {
        Some(u) => s.store.project(&u.project_id).await?,
        None => None,
    };
    let (Some(unit), Some(project)) = (unit, project) else {
        return Err(Error::not_found("该房屋"));
    };
    if !(caller.is(Role::Developer)
        && caller.organisation_id.as_deref() == Some(project.developer_id.as_str()))
    {
        // Another developer's unit: not found rather than forbidden, to reveal nothing.
        return Err(Error::not_found("该房屋"));
    }
    let mut relations = vec![Who::DeveloperStaff];
    if caller.has_duty(Duty::Drafter) {
        relations.push(Who::Drafter);
    }
    let f = ContractFacts {
        unit_frozen: unit.seized || unit.objection || unit.manual_hold,
        ..Default::default()
    };
    table::decide(None, ContractAction::Create, &relations, &f).map_err(super::refusal)?;
    validate(s, &req)?;
    let now = OffsetDateTime::now_utc();
    let id = uuid::Uuid::now_v7().to_string();
    let (terms, stored) = stored_terms(s, &id, &req)?;
    let contract = new_draft(id, &unit.id, &project.developer_id, terms, caller, now);
    match s
        .store
        .create_contract_draft(
            &contract,
            &stored.index(&contract.id),
            caller.idempotency.as_ref(),
        )
        .await?
    {
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
    super::record(
        s,
        caller,
        "contract.create",
        &contract,
        serde_json::json!({"unit_id": contract.unit_id, "contract_no": contract.contract_no, "to": contract.status.as_str()}),
    )
    .await?;
    view_for(s, caller, &contract).await
}

fn new_draft(
    id: String,
    unit_id: &str,
    developer_id: &str,
    terms: String,
    caller: &Caller,
    now: OffsetDateTime,
) -> Contract {
    Contract {
        contract_no: format!(
            "YJ{}-{}",
            now.year(),
            &uuid::Uuid::new_v4().simple().to_string()[..10].to_ascii_uppercase()
        ),
        id,
        unit_id: unit_id.to_owned(),
        developer_id: developer_id.to_owned(),
        status: ContractStatus::Draft,
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
    }
}

/// What a draft would be, checked as you type: every rule of drafting and of confirmation
/// (areas, the price against the filed price, instalments adding up to the total) at once,
/// and the amounts the contract will state, in figures and in 大写. Nothing is stored.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DraftCheck {
    pub errors: Vec<FieldError>,
    /// The unit as a person names it (building and room).
    pub unit: Option<String>,
    pub gross_area: Option<String>,
    pub filed_price: Option<String>,
    /// The total price (unit price × gross area), and in 大写.
    pub total: Option<String>,
    pub total_capital: Option<String>,
    /// Each instalment's amount in 大写 (empty where the figure is not an amount).
    pub instalments_capital: Vec<String>,
}

pub async fn check_draft(
    s: &Services,
    caller: &Caller,
    req: &NewContract,
) -> Result<DraftCheck, Error> {
    let unit = s.store.unit(&req.unit_id).await?;
    let project = match &unit {
        Some(u) => s.store.project(&u.project_id).await?,
        None => None,
    };
    let (Some(unit), Some(project)) = (unit, project) else {
        return Err(Error::not_found("该房屋"));
    };
    if !(caller.is(Role::Developer)
        && caller.organisation_id.as_deref() == Some(project.developer_id.as_str()))
    {
        return Err(Error::not_found("该房屋"));
    }
    let capital = |v: &str| {
        crate::domain::Money::parse_yuan(v)
            .ok()
            .map(|m| crate::pdf::numerals::capital_amount(m.0))
            .unwrap_or_default()
    };
    let building = s
        .store
        .buildings(&project.id)
        .await?
        .into_iter()
        .find(|b| b.id == unit.building_id)
        .map(|b| b.name)
        .unwrap_or_default();
    let mut out = DraftCheck {
        unit: Some(format!("{building}{}", unit.room_no)),
        gross_area: Some(crate::domain::Area(unit.gross_area).to_string()),
        filed_price: Some(crate::domain::Money(unit.filed_price_fen).to_string()),
        instalments_capital: req
            .payment
            .schedule
            .iter()
            .map(|i| capital(&i.amount))
            .collect(),
        ..Default::default()
    };
    if let Ok(price) = crate::domain::Money::parse_yuan(&req.unit_price)
        && let Some(total) = price.times_area(crate::domain::Area(unit.gross_area))
    {
        out.total = Some(total.to_string());
        out.total_capital = Some(crate::pdf::numerals::capital_amount(total.0));
    }
    if let Err(Error::Invalid { fields, .. }) = validate(s, req) {
        out.errors = fields;
        return Ok(out);
    }
    // The rules of confirmation, on the data the document would be made from.
    let (terms, _) = stored_terms(s, "preview", req)?;
    let preview = new_draft(
        "preview".into(),
        &unit.id,
        &project.developer_id,
        terms,
        caller,
        OffsetDateTime::now_utc(),
    );
    match contract_data(s, &preview, today()).await {
        Ok(data) => out.errors = confirmation_errors(&data, &unit),
        Err(Error::Conflict { code, message } | Error::NotFound { code, message }) => {
            out.errors = vec![FieldError::new("unit_id", code, message)]
        }
        Err(e) => return Err(e),
    }
    Ok(out)
}

/// Every rule the contract's data must meet before its document is made.
fn confirmation_errors(
    data: &crate::domain::contract::ContractData,
    unit: &crate::store::Unit,
) -> Vec<FieldError> {
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
    errors
}

/// A draft's terms as the drafter wrote them, to edit (the buyers' ID numbers in full: the
/// reading is logged as an access to personal information).
pub async fn draft_terms(s: &Services, caller: &Caller, id: &str) -> Result<NewContract, Error> {
    let (c, p) = visible(s, caller, id).await?;
    if !p.is(Who::Drafter) {
        return Err(Error::not_found("该合同"));
    }
    let t = StoredTerms::of(&c)?;
    let personal = &s.identity.personal;
    let mut buyers = Vec::new();
    for (i, b) in t.buyers.iter().enumerate() {
        buyers.push(super::BuyerTerms {
            name: b.name.clone(),
            id_number: personal.decrypt(&format!("{}/buyers/{i}", c.id), &b.id_number_enc)?,
            share_percent: b.share_percent,
            phone: b.phone.clone(),
            address: b.address.clone(),
        });
    }
    crate::services::audit(
        s,
        Some(caller),
        "personal_data.read",
        ("contract", &c.id),
        None,
        serde_json::json!({"field": "buyers.id_number", "why": "edit_draft"}),
    )
    .await?;
    Ok(NewContract {
        unit_id: c.unit_id.clone(),
        buyers,
        co_ownership: t.co_ownership,
        unit_price: t.unit_price,
        payment: t.payment,
        delivery_date: t.delivery_date,
        dispute: t.dispute,
        property: t.property,
        supplementary: t.supplementary,
        seller: t.seller,
    })
}

/// Decides `action` for the caller on a contract they can see: the table's answer.
async fn allowed(
    s: &Services,
    caller: &Caller,
    c: &Contract,
    p: &Party,
    action: ContractAction,
) -> Result<&'static table::ContractTransition, Error> {
    let f = facts(s, Some(caller), c, p).await?;
    decide(c, action, &p.relations, &f)
}

/// The drafter changes a draft's terms (not its unit): a new version.
pub async fn edit(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: NewContract,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let row = allowed(s, caller, &c, &p, ContractAction::Edit).await?;
    if req.unit_id != c.unit_id {
        return Err(Error::invalid(vec![FieldError::new(
            "unit_id",
            "unchanged",
            "合同的房屋不能更改；请撤回后另行起草。",
        )]));
    }
    validate(s, &req)?;
    let (terms, stored) = stored_terms(s, &c.id, &req)?;
    let index = stored.index(&c.id);
    let mut m = ContractMove::new(&c.id, c.status, c.status, OffsetDateTime::now_utc());
    m.version = Some(c.version);
    m.set.terms = Some(&terms);
    m.set.new_version = true;
    m.buyers = Some(&index);
    let c2 = commit(
        s,
        Some(caller),
        &c,
        row,
        m,
        serde_json::json!({"version": c.version + 1}),
    )
    .await?;
    view_for(s, caller, &c2).await
}

/// The confirmer (another person than the drafter) confirms the draft: every rule is checked,
/// the PDF is generated from the template, stored, and the buyers may sign.
pub async fn confirm(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let row = allowed(s, caller, &c, &p, ContractAction::Confirm).await?;
    let data = contract_data(s, &c, today()).await?;
    let unit = s
        .store
        .unit(&c.unit_id)
        .await?
        .ok_or_else(|| Error::not_found("该房屋"))?;
    let errors = confirmation_errors(&data, &unit);
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
    let rendered = s
        .documents
        .run_here(|| {
            crate::services::documents::render_contract(
                font,
                crate::services::documents::CONTRACT_TEMPLATE,
                &data,
                &public,
                &created,
            )
        })
        .await??;
    let sha = super::hex(&openssl::sha::sha256(&rendered.pdf));
    crate::services::documents::remember_render(&data, &public, &created, &sha);
    crate::services::materials::put(s, &sha, "application/pdf", &rendered.pdf, now).await?;
    let snapshot =
        crate::services::checks::Snapshot::seal(s, &c.id, &data, &public, &created, &sha)?;
    let mut m = ContractMove::new(&c.id, c.status, c.status, now);
    m.version = Some(c.version);
    m.set.confirmer_id = Some(Some(&caller.user_id));
    m.set.document_sha256 = Some(Some(&sha));
    m.set.snapshot = Some(&snapshot);
    let c2 = commit(
        s,
        Some(caller),
        &c,
        row,
        m,
        serde_json::json!({"document_sha256": sha, "pages": rendered.pages}),
    )
    .await?;
    view_for(s, caller, &c2).await
}

/// The developer withdraws a contract nobody has signed; the unit becomes available again.
pub async fn withdraw(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let row = allowed(s, caller, &c, &p, ContractAction::Withdraw).await?;
    let m = ContractMove::new(&c.id, c.status, c.status, OffsetDateTime::now_utc());
    let c2 = commit(
        s,
        Some(caller),
        &c,
        row,
        m,
        serde_json::json!({"unit_id": c.unit_id}),
    )
    .await?;
    view_for(s, caller, &c2).await
}

/// A buyer asks for changes, or the developer recalls the contract, before it is fully signed:
/// it goes back to draft as a new version and every signature so far is void.
pub async fn recall(
    s: &Services,
    caller: &Caller,
    id: &str,
    reason: &str,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let row = allowed(s, caller, &c, &p, ContractAction::Recall).await?;
    if reason.trim().is_empty() {
        return Err(Error::invalid(vec![FieldError::new(
            "reason",
            "required",
            "请说明需要修改的内容。",
        )]));
    }
    let mut m = ContractMove::new(&c.id, c.status, c.status, OffsetDateTime::now_utc());
    m.set.new_version = true;
    m.set.document_sha256 = Some(None);
    m.set.confirmer_id = Some(None);
    let c2 = commit(
        s,
        Some(caller),
        &c,
        row,
        m,
        serde_json::json!({"reason": reason, "version": c.version + 1}),
    )
    .await?;
    view_for(s, caller, &c2).await
}

/// The scheduler's job: unsigned contracts past their time expire and release their unit,
/// exactly once however many instances run it.
pub(crate) async fn expire_due(s: &Services, now: OffsetDateTime) -> Result<usize, Error> {
    let unsigned: Vec<ContractStatus> = table::CONTRACT_TRANSITIONS
        .iter()
        .filter(|t| t.action == ContractAction::Expire)
        .filter_map(|t| t.from)
        .collect();
    let ttl = time::Duration::seconds(s.config.workflow.draft_expiry_secs as i64);
    let mut n = 0;
    for c in s.store.stale_contracts(&unsigned, now - ttl, 500).await? {
        let f = ContractFacts {
            past_expiry: true,
            ..Default::default()
        };
        let Ok(row) = decide(&c, ContractAction::Expire, &[Who::Scheduler], &f) else {
            continue;
        };
        let m = ContractMove::new(&c.id, c.status, c.status, now);
        match commit(
            s,
            None,
            &c,
            row,
            m,
            serde_json::json!({"unit_id": c.unit_id}),
        )
        .await
        {
            Ok(_) => n += 1,
            // Another instance expired it first (or someone acted on it meanwhile).
            Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The contract's full data: the drafter's terms, the buyers' numbers decrypted for the
/// document (it prints them masked), and everything the inventory knows.
pub(crate) async fn contract_data(
    s: &Services,
    c: &Contract,
    signed_on: time::Date,
) -> Result<crate::domain::contract::ContractData, Error> {
    use crate::domain::contract as d;
    let t = StoredTerms::of(c)?;
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
