//! Contracts: what a contract holds and shows, who may see it, what each person may do with it
//! next, and the one path every status change takes (the contract table decides, the store
//! moves it by compare-and-set, the audit records it, the outbox trigger tells the parties).
//! Each stage of the life cycle is a module of its own.

mod cancellation;
mod drafting;
mod evidence;
mod filing;
mod invitations;
mod listing;
mod reading;
mod signing;
mod timeline;

pub use cancellation::{approve_cancellation, consent_cancellation, request_cancellation};
pub use drafting::{DraftCheck, check_draft, confirm, create, draft_terms, edit, recall, withdraw};
pub use evidence::evidence;
pub use filing::{
    ChecksView, QueueItem, ReturnReason, approve_filing, checks, filing_queue, reopen,
    return_filing, submit_filing,
};
pub use invitations::{Invitation, accept_invitation, invitations};
pub use listing::{ContractList, ContractListItem, ContractListQuery, list};
pub use reading::{ChapterEntry, ReadingView, chapter, reading};
pub use signing::{organisation_seal, seal, sign_as_buyer};
pub use timeline::{TimelineEntry, timeline};

pub(crate) use drafting::expire_due;
pub(crate) use filing::submit_left_sealed;

use super::{Caller, Error, FieldError, Services};
use crate::domain::identity::mask_name;
use crate::domain::lifecycle::contract::{self as table, ContractTransition};
use crate::domain::lifecycle::{
    ActionView, ContractAction, ContractFacts, ContractStatus, Refusal, RefusalKind, Who,
};
use crate::domain::{Duty, Role};
use crate::store::{Contract, ContractBuyer, ContractMove};
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
pub(crate) struct StoredBuyer {
    pub name: String,
    pub id_number_enc: String,
    pub id_number_hash: String,
    pub id_number_masked: String,
    pub share_percent: u8,
    pub phone: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredTerms {
    pub buyers: Vec<StoredBuyer>,
    pub co_ownership: String,
    pub unit_price: String,
    pub payment: PaymentTerms,
    pub delivery_date: String,
    pub dispute: String,
    pub property: PropertyTerms,
    pub supplementary: Vec<String>,
    pub seller: SellerTerms,
}

impl StoredTerms {
    pub(crate) fn of(c: &Contract) -> Result<StoredTerms, Error> {
        Ok(serde_json::from_str(&c.terms).map_err(|e| anyhow::anyhow!("stored terms: {e}"))?)
    }

    /// The index rows of the buyers (lists find a buyer's contracts by them).
    pub(crate) fn index(&self, contract_id: &str) -> Vec<ContractBuyer> {
        self.buyers
            .iter()
            .enumerate()
            .map(|(i, b)| ContractBuyer {
                contract_id: contract_id.to_owned(),
                position: i as i32,
                id_number_hash: b.id_number_hash.clone(),
                name_masked: mask_name(&b.name),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuyerView {
    pub name: String,
    pub id_number_masked: String,
    pub share_percent: u8,
    /// Whether this buyer signed the current version.
    pub signed: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContractView {
    pub id: String,
    pub contract_no: String,
    pub unit_id: String,
    pub status: ContractStatus,
    /// The status in words.
    pub status_label: &'static str,
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
    /// What the calling person may do next, from the contract table: each action they could take
    /// from this status, enabled or with the reason it is not available now.
    pub actions: Vec<ActionView>,
}

pub(crate) fn today() -> time::Date {
    OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The contract with this id, or "not found" (also what a caller who may not see it gets).
pub async fn load(s: &Services, id: &str) -> Result<Contract, Error> {
    s.store
        .contract(id)
        .await?
        .ok_or_else(|| Error::not_found("该合同"))
}

/// What a person is to one contract: their relations in the table's terms, and a buyer's place.
#[derive(Clone, Debug, Default)]
pub struct Party {
    pub relations: Vec<Who>,
    /// A buyer's place among the contract's buyers (from 0).
    pub buyer_index: Option<usize>,
    /// Administrators see every contract but act on none.
    pub sees: bool,
}

impl Party {
    pub fn is(&self, who: Who) -> bool {
        who.matches(&self.relations)
    }
    /// The side of the contract the person is on (cancellation requests and consent).
    pub fn side(&self) -> Option<&'static str> {
        if self.is(Who::Buyer) {
            Some("buyer")
        } else if self.is(Who::Confirmer) {
            Some("developer")
        } else {
            None
        }
    }
}

/// The caller's relations to a contract. A buyer is one of its buyers when their registered
/// identity is one the contract names.
pub(crate) async fn party(s: &Services, caller: &Caller, c: &Contract) -> Result<Party, Error> {
    let mut p = Party::default();
    match caller.role {
        Role::Admin => p.sees = true,
        Role::Reviewer => {
            p.sees = true;
            p.relations.push(Who::Reviewer);
        }
        Role::Developer => {
            if caller.organisation_id.as_deref() == Some(c.developer_id.as_str()) {
                p.sees = true;
                p.relations.push(Who::DeveloperStaff);
                if caller.has_duty(Duty::Drafter) {
                    p.relations.push(Who::Drafter);
                }
                if caller.has_duty(Duty::Confirmer) {
                    p.relations.push(Who::Confirmer);
                }
            }
        }
        Role::Buyer => {
            let hash = s
                .store
                .user_identity(&caller.user_id)
                .await?
                .and_then(|r| r.id_number_hash);
            return buyer_party(c, hash.as_deref());
        }
    }
    Ok(p)
}

/// A buyer's party: the contract names them when their ID number's lookup hash is among its
/// buyers'.
fn buyer_party(c: &Contract, id_number_hash: Option<&str>) -> Result<Party, Error> {
    let mut p = Party::default();
    if let Some(hash) = id_number_hash {
        let t = StoredTerms::of(c)?;
        if let Some(i) = t.buyers.iter().position(|b| b.id_number_hash == hash) {
            p.sees = true;
            p.buyer_index = Some(i);
            p.relations.push(Who::Buyer);
        }
    }
    Ok(p)
}

/// The contract if the caller may see it; "not found" otherwise, to reveal nothing.
pub(crate) async fn visible(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<(Contract, Party), Error> {
    let (c, p) = if caller.role == Role::Buyer {
        // The contract and who the buyer is, in one round trip.
        let (c, hash) = s
            .store
            .contract_seen_by(id, &caller.user_id)
            .await?
            .ok_or_else(|| Error::not_found("该合同"))?;
        let p = buyer_party(&c, hash.as_deref())?;
        (c, p)
    } else {
        let c = load(s, id).await?;
        let p = party(s, caller, &c).await?;
        (c, p)
    };
    if !p.sees {
        return Err(Error::not_found("该合同"));
    }
    Ok((c, p))
}

/// The facts the table's guards are decided on, for one person and one contract.
pub(crate) async fn facts(
    s: &Services,
    caller: Option<&Caller>,
    c: &Contract,
    p: &Party,
) -> Result<ContractFacts, Error> {
    Ok(facts_and_reads(s, caller, c, p).await?.0)
}

/// What was read to decide the facts, for a caller that needs it too (the view lists the
/// signatures, a buyer's signature keeps the reading record): read once per request.
pub(crate) struct Reads {
    pub signatures: Vec<crate::store::ContractSignature>,
    /// The buyer's reading record (null unless the caller is a buyer who could sign now).
    pub reading: serde_json::Value,
}

pub(crate) async fn facts_and_reads(
    s: &Services,
    caller: Option<&Caller>,
    c: &Contract,
    p: &Party,
) -> Result<(ContractFacts, Reads), Error> {
    let t = StoredTerms::of(c)?;
    let sigs = s.store.contract_signatures(&c.id).await?;
    let signed: Vec<&str> = sigs
        .iter()
        .filter(|x| x.contract_version == c.version && x.kind == "personal")
        .map(|x| x.field.as_str())
        .collect();
    let unit = s.store.unit(&c.unit_id).await?;
    let cancellation: serde_json::Value = c
        .cancellation
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let registrations = if c.status == ContractStatus::CancelRequested {
        s.store.registrations_of_contract(&c.id).await?
    } else {
        vec![]
    };
    let checks_failed = c
        .filing_checks
        .as_deref()
        .and_then(|j| serde_json::from_str::<super::checks::Checks>(j).ok())
        .is_some_and(|k| !k.passed);
    let ttl = time::Duration::seconds(s.config.workflow.draft_expiry_secs as i64);
    // Reading matters only to a buyer who could sign now.
    let (chapters_unread, reading_seconds_left, reading) = match caller {
        Some(who)
            if p.is(Who::Buyer)
                && matches!(
                    c.status,
                    ContractStatus::AwaitingBuyers | ContractStatus::BuyersSigning
                ) =>
        {
            reading::reading_state(s, c, &who.user_id).await?
        }
        _ => (0, 0, serde_json::Value::Null),
    };
    let facts = ContractFacts {
        chapters_unread,
        reading_seconds_left,
        caller_is_drafter: caller.is_some_and(|c2| c2.user_id == c.drafter_id),
        caller_has_signed: p
            .buyer_index
            .is_some_and(|i| signed.contains(&format!("buyer-{}", i + 1).as_str())),
        buyers_left: t.buyers.len().saturating_sub(signed.len()),
        checks_failed,
        unit_frozen: unit.is_some_and(|u| u.seized || u.objection || u.manual_hold),
        caller_requested_cancellation: p.side().is_some()
            && cancellation["party"].as_str() == p.side(),
        consent_or_court_document: !cancellation["consent"].is_null()
            || !cancellation["court_document"].is_null(),
        live_advance_notice: registrations.iter().any(|r| {
            !r.status.is_refused_or_withdrawn()
                && !matches!(
                    r.entry_status,
                    Some(
                        crate::domain::lifecycle::EntryStatus::Lapsed
                            | crate::domain::lifecycle::EntryStatus::Cancelled
                    )
                )
        }),
        past_expiry: OffsetDateTime::now_utc() - c.updated_at > ttl,
    };
    Ok((
        facts,
        Reads {
            signatures: sigs,
            reading,
        },
    ))
}

pub(crate) fn refusal(r: Refusal) -> Error {
    match r.kind {
        RefusalKind::Forbidden => Error::Forbidden {
            code: r.code,
            message: r.message,
        },
        RefusalKind::NotFound => Error::NotFound {
            code: r.code,
            message: r.message,
        },
        RefusalKind::Conflict => Error::Conflict {
            code: r.code,
            message: r.message,
        },
        RefusalKind::Invalid => Error::Invalid {
            code: r.code,
            message: r.message,
            fields: vec![],
        },
    }
}

/// The row of the contract table this person takes for `action` now, or the refusal.
pub(crate) fn decide(
    c: &Contract,
    action: ContractAction,
    relations: &[Who],
    facts: &ContractFacts,
) -> Result<&'static ContractTransition, Error> {
    table::decide(Some(c.status), action, relations, facts).map_err(refusal)
}

/// The one path of a decided change: the move (completed from the row: from, to, the unit) as
/// one compare-and-set; a lost race is `already_decided`; the audit entry
/// `contract.<action>`; the contract as it is now. The outbox trigger writes the notification in
/// the same transaction as the status change.
pub(crate) async fn commit(
    s: &Services,
    caller: Option<&Caller>,
    c: &Contract,
    row: &ContractTransition,
    mut m: ContractMove<'_>,
    detail: serde_json::Value,
) -> Result<Contract, Error> {
    m.from = row.from.unwrap_or(c.status);
    m.to = row.to;
    m.unit = row.unit;
    m.effect = caller.and_then(|who| who.idempotency.clone());
    let Some(now) = s.store.move_contract(&m).await? else {
        return Err(refusal(Refusal::already_decided()));
    };
    super::phases::mark("move");
    let hash = crate::audit::hex(&openssl::sha::sha256(now.terms.as_bytes()));
    let mut detail = detail;
    if let Some(o) = detail.as_object_mut() {
        o.insert("from".into(), c.status.as_str().into());
        o.insert("to".into(), now.status.as_str().into());
    }
    match caller {
        Some(who) => {
            super::audit(
                s,
                Some(who),
                &format!("contract.{}", row.action.as_str()),
                ("contract", &c.id),
                Some(hash),
                detail,
            )
            .await?;
        }
        None => {
            crate::audit::append(
                s.store.as_ref(),
                crate::store::NewAuditEvent {
                    at: OffsetDateTime::now_utc(),
                    actor_id: None,
                    actor_role: Some(
                        if row.who == Who::Scheduler {
                            "scheduler"
                        } else {
                            "system"
                        }
                        .into(),
                    ),
                    action: format!("contract.{}", row.action.as_str()),
                    object_kind: "contract".into(),
                    object_id: c.id.clone(),
                    object_hash: Some(hash),
                    source: None,
                    detail: detail.to_string(),
                },
            )
            .await?;
        }
    }
    super::phases::mark("audit");
    Ok(now)
}

/// Appends an action that changes no status (an export, an invitation accepted).
pub(crate) async fn record(
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

/// The contract as the caller sees it, with the actions the table allows them now.
pub(crate) async fn view_for(
    s: &Services,
    caller: &Caller,
    c: &Contract,
) -> Result<ContractView, Error> {
    let p = party(s, caller, c).await?;
    view_as(s, caller, c, &p).await
}

/// The same for a caller whose party in the contract is known (it does not change when the
/// contract moves: the buyers are the terms').
pub(crate) async fn view_as(
    s: &Services,
    caller: &Caller,
    c: &Contract,
    p: &Party,
) -> Result<ContractView, Error> {
    let (f, reads) = facts_and_reads(s, Some(caller), c, p).await?;
    let actions = table::actions(c.status, &p.relations, &f);
    view(c, actions, &reads.signatures)
}

fn view(
    c: &Contract,
    actions: Vec<ActionView>,
    sigs: &[crate::store::ContractSignature],
) -> Result<ContractView, Error> {
    let t = StoredTerms::of(c)?;
    let signed = |i: usize| {
        sigs.iter().any(|x| {
            x.contract_version == c.version
                && x.kind == "personal"
                && x.field == format!("buyer-{}", i + 1)
        })
    };
    Ok(ContractView {
        id: c.id.clone(),
        contract_no: c.contract_no.clone(),
        unit_id: c.unit_id.clone(),
        status: c.status,
        status_label: c.status.label(),
        version: c.version,
        buyers: t
            .buyers
            .iter()
            .enumerate()
            .map(|(i, b)| BuyerView {
                name: b.name.clone(),
                id_number_masked: b.id_number_masked.clone(),
                share_percent: b.share_percent,
                signed: signed(i),
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
            .filter(|_| c.status == ContractStatus::Returned)
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default(),
        created_at: c.created_at,
        updated_at: c.updated_at,
        actions,
    })
}

pub async fn get(s: &Services, caller: &Caller, id: &str) -> Result<ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    view_as(s, caller, &c, &p).await
}

/// The answer to a retried request whose change committed while the request itself failed (its
/// process or its database lost): the contract as it is now, after the service's own step that
/// the first attempt would have taken next. A seal commits the seal and then submits the filing
/// (`workflow.submit_on_seal`); lost between the two, the contract would wait `sealed` for a
/// submission nobody asks for, so the retry submits it.
pub async fn resume(s: &Services, caller: &Caller, id: &str) -> Result<ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    if c.status == ContractStatus::Sealed && s.config.workflow.submit_on_seal {
        let submitted = filing::submit(s, Some(caller), &c, Who::System).await?;
        return view_as(s, caller, &submitted, &p).await;
    }
    view_as(s, caller, &c, &p).await
}

/// The reasons the filing was last returned for, for the developer's staff and reviewers while
/// the contract is corrected after it (empty when it was never returned or is filed since).
pub async fn last_return_reasons(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<Vec<FieldError>, Error> {
    let (c, p) = visible(s, caller, id).await?;
    if !(p.is(Who::DeveloperStaff) || p.is(Who::Reviewer)) || c.filing_no.is_some() {
        return Ok(vec![]);
    }
    Ok(c.returned_reasons
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default())
}

/// The contract's current PDF, for whoever may see the contract.
pub async fn document(s: &Services, caller: &Caller, id: &str) -> Result<Vec<u8>, Error> {
    let (c, _) = visible(s, caller, id).await?;
    let sha = c
        .document_sha256
        .ok_or_else(|| Error::not_found("该合同的文件（尚未确认）"))?;
    Ok(super::materials::get(s, &sha)
        .await?
        .ok_or_else(|| anyhow::anyhow!("material {sha} missing"))?)
}

/// The verification report of the contract's current PDF (trusting this installation's root).
pub async fn verification(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<crate::pdf::verify::Report, Error> {
    let pdf = document(s, caller, id).await?;
    super::verification::verify_pdf(s, bytes::Bytes::from(pdf)).await
}

/// The ID-number lookup hashes of the contract's buyers.
pub fn buyer_hashes(c: &Contract) -> Result<Vec<String>, Error> {
    Ok(StoredTerms::of(c)?
        .buyers
        .into_iter()
        .map(|b| b.id_number_hash)
        .collect())
}

/// The agreed delivery date (the advance notice's lapse is counted from it).
pub fn delivery_date(c: &Contract) -> Option<time::Date> {
    let t = StoredTerms::of(c).ok()?;
    crate::domain::contract::parse_date(&t.delivery_date)
}

/// The contract, if the caller is one of its buyers.
pub async fn contract_for_buyer(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<(Contract, Party), Error> {
    let (c, p) = visible(s, caller, id).await?;
    if !p.is(Who::Buyer) {
        return Err(Error::not_found("该合同"));
    }
    Ok((c, p))
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
    let data = drafting::contract_data(s, c, today()).await?;
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

/// What the contract says, for people who may see it: the data its PDF was made from (the
/// snapshot of the current version when it was rendered, today's data for a draft), ID numbers
/// masked.
pub async fn data(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<crate::domain::contract::ContractData, Error> {
    let (c, _) = visible(s, caller, id).await?;
    let mut data = match super::checks::Snapshot::open(s, &c) {
        Some((_, d)) => d,
        None => drafting::contract_data(s, &c, today()).await?,
    };
    for b in &mut data.buyers {
        b.id_number = crate::domain::contract::mask_id_number(&b.id_number);
    }
    Ok(data)
}

/// What anyone may learn of a filing number (printed on the contract): whether it stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicFiling {
    pub filing_no: String,
    pub status: ContractStatus,
    pub status_label: &'static str,
    pub unit_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

pub async fn public_filing(s: &Services, filing_no: &str) -> Result<PublicFiling, Error> {
    let no = filing_no.trim();
    if no.is_empty() || no.chars().count() > 40 {
        return Err(Error::not_found("该备案号"));
    }
    public_lookup(
        s,
        crate::store::CaseFilter {
            filing_no: Some(no.to_owned()),
            ..Default::default()
        },
        "该备案号",
    )
    .await
}

/// What anyone may learn of a contract number (printed on every page of the contract with the
/// address to check it): where the contract stands and its filing number once filed.
pub async fn public_contract(s: &Services, contract_no: &str) -> Result<PublicFiling, Error> {
    let no = contract_no.trim();
    if no.is_empty() || no.chars().count() > 40 {
        return Err(Error::not_found("该合同编号"));
    }
    public_lookup(
        s,
        crate::store::CaseFilter {
            contract_no: Some(no.to_owned()),
            ..Default::default()
        },
        "该合同编号",
    )
    .await
}

async fn public_lookup(
    s: &Services,
    filter: crate::store::CaseFilter,
    what: &str,
) -> Result<PublicFiling, Error> {
    let q = crate::store::ContractQuery {
        scope: crate::store::Scope::All,
        statuses: vec![],
        filter,
        order: Default::default(),
        after: None,
        limit: 1,
    };
    let c = s
        .store
        .list_contracts(&q)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found(what))?;
    let unit = s.store.unit(&c.unit_id).await?;
    Ok(PublicFiling {
        filing_no: c.filing_no.clone().unwrap_or_default(),
        status: c.status,
        status_label: c.status.label(),
        unit_number: unit.map(|u| u.unit_number).unwrap_or_default(),
        updated_at: c.updated_at,
    })
}

/// Indexes the buyers of contracts made before the index existed (run at start, idempotent).
pub async fn index_buyers(s: &Services) -> Result<usize, Error> {
    let mut n = 0;
    loop {
        let batch = s.store.contracts_without_buyers(200).await?;
        if batch.is_empty() {
            return Ok(n);
        }
        for c in &batch {
            let t = StoredTerms::of(c)?;
            s.store.set_contract_buyers(&c.id, &t.index(&c.id)).await?;
            n += 1;
        }
    }
}

/// The registration centre and the name of its seal, as drawn on what it seals.
pub const CENTRE: &str = "东莞市不动产登记中心";
pub const CENTRE_SEAL: &str = "不动产登记专用章";
