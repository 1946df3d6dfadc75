//! Contracts, first part of the workflow (issue 7): a drafter creates a draft for an available
//! unit, which takes the unit in the same transaction (one unit, one live contract, enforced by
//! the database), and a developer can withdraw an unsigned contract, which releases the unit.
//! Buyers' ID numbers are encrypted in the stored terms, as on accounts.

use super::{Caller, Error, FieldError, Services};
use crate::audit;
use crate::domain::identity::{IdNumber, PersonName};
use crate::domain::{Duty, Role};
use crate::store::{Contract, DraftRefusal, NewAuditEvent};
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
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContract {
    pub unit_id: String,
    pub buyers: Vec<BuyerTerms>,
    /// `lump_sum`, `instalments` or `loan`.
    pub payment_mode: String,
    /// YYYY-MM-DD, after today.
    pub delivery_date: String,
}

/// What is stored of a buyer: the number only encrypted, with its lookup hash and mask.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredBuyer {
    name: String,
    id_number_enc: String,
    id_number_hash: String,
    id_number_masked: String,
    share_percent: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredTerms {
    buyers: Vec<StoredBuyer>,
    payment_mode: String,
    delivery_date: String,
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
    pub payment_mode: String,
    pub delivery_date: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

fn today() -> time::Date {
    OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

fn validate(req: &NewContract) -> Result<(), Error> {
    let mut errors = Vec::new();
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
        req.payment_mode.as_str(),
        "lump_sum" | "instalments" | "loan"
    ) {
        errors.push(FieldError::new(
            "payment_mode",
            "one_of",
            "付款方式须为 lump_sum、instalments 或 loan。",
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
        payment_mode: t.payment_mode,
        delivery_date: t.delivery_date,
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
    audit::append(
        s.store.as_ref(),
        NewAuditEvent {
            at: OffsetDateTime::now_utc(),
            actor_id: Some(caller.user_id.clone()),
            actor_role: Some(caller.role.as_str().to_owned()),
            action: action.into(),
            object_kind: "contract".into(),
            object_id: c.id.clone(),
            object_hash: Some(crate::audit::hex(&openssl::sha::sha256(c.terms.as_bytes()))),
            source: caller.source.clone(),
            detail: detail.to_string(),
        },
    )
    .await?;
    Ok(())
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
    validate(&req)?;
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
            // Bound to this contract and position: a value copied elsewhere does not decrypt.
            id_number_enc: p.encrypt(&format!("{id}/buyers/{i}"), number.as_str())?,
            id_number_hash: p.lookup_hash(number.as_str()),
            id_number_masked: number.masked(),
            share_percent: b.share_percent,
        });
    }
    let terms = serde_json::to_string(&StoredTerms {
        buyers,
        payment_mode: req.payment_mode.clone(),
        delivery_date: req.delivery_date.clone(),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
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
    let c = s
        .store
        .contract(id)
        .await?
        .ok_or_else(|| Error::not_found("该合同"))?;
    if !may_read(s, caller, &c).await? {
        return Err(Error::not_found("该合同"));
    }
    view(&c)
}

/// The developer withdraws a contract nobody has signed; the unit becomes available again.
pub async fn withdraw(s: &Services, caller: &Caller, id: &str) -> Result<ContractView, Error> {
    let c = s
        .store
        .contract(id)
        .await?
        .ok_or_else(|| Error::not_found("该合同"))?;
    if !(caller.is(Role::Developer)
        && caller.organisation_id.as_deref() == Some(c.developer_id.as_str()))
    {
        return Err(Error::not_found("该合同"));
    }
    let now = OffsetDateTime::now_utc();
    if !s
        .store
        .withdraw_contract(id, &["draft", "awaiting_buyers"], now)
        .await?
    {
        return Err(Error::conflict(
            "contract_not_withdrawable",
            "只有尚无人签署的合同可以撤回。",
        ));
    }
    let c = s
        .store
        .contract(id)
        .await?
        .ok_or_else(|| Error::not_found("该合同"))?;
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
