//! Advance-notice registration (预告登记) of a filed contract: the buyer applies (after an
//! identity check, relying on the filed contract already stored — nothing is handed in twice),
//! the case is accepted, reviewed twice and recorded by four different people, and the
//! electronic registration certificate is issued as a sealed PDF with a QR code whose public
//! page shows its current status. Every change of a case is a row of the registration table,
//! made through one path (the table decides, the store moves the case by compare-and-set, the
//! audit records it).

use super::{Caller, Error, FieldError, Services};
use crate::domain::lifecycle::registration::{self as table, RegistrationTransition};
use crate::domain::lifecycle::{
    ActionView, CertificateStatus, EntryStatus, Hold, RegistrationAction, RegistrationFacts,
    RegistrationStatus, Who,
};
use crate::domain::{Duty, Role};
pub use crate::store::RegistrationStep;
use crate::store::{Registration, RegistrationMove};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationView {
    pub id: String,
    pub contract_id: String,
    pub status: RegistrationStatus,
    /// The status (with a hold, and the register entry) in words.
    pub status_label: String,
    pub acceptance_no: Option<String>,
    pub certificate_no: Option<String>,
    /// Whether the certificate is also issued as a sealed OFD package
    /// (`GET /api/v1/registrations/{id}/certificate?format=ofd`).
    pub certificate_ofd: bool,
    pub certificate_status: Option<CertificateStatus>,
    /// The stored materials (SHA-256) the case relies on.
    pub materials: Vec<String>,
    pub opinions: Vec<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Requisitioned (the applicant must hand in what `hold_reasons` lists) or suspended.
    pub hold: Option<Hold>,
    pub hold_reasons: Vec<serde_json::Value>,
    /// The register entry once recorded: valid, lapsed or cancelled.
    pub entry_status: Option<EntryStatus>,
    /// When a valid advance notice lapses (YYYY-MM-DD).
    pub lapses_on: Option<String>,
    /// What the calling person may do next, from the registration table.
    pub actions: Vec<ActionView>,
}

fn digits(n: usize) -> String {
    let mut b = vec![0u8; n];
    let _ = openssl::rand::rand_bytes(&mut b);
    b.iter().map(|x| char::from(b'0' + x % 10)).collect()
}

async fn load(s: &Services, id: &str) -> Result<Registration, Error> {
    s.store
        .registration(id)
        .await?
        .ok_or_else(|| Error::not_found("该登记申请"))
}

/// What a person is to a case: the table's relations. Reviewers see every case, administrators
/// see every case and act on none, a buyer sees the cases they applied for.
fn relations(caller: &Caller, r: &Registration) -> (bool, Vec<Who>) {
    match caller.role {
        Role::Admin => (true, vec![]),
        Role::Reviewer => {
            let mut w = vec![Who::Reviewer];
            for (duty, who) in [
                (Duty::FirstReviewer, Who::FirstReviewer),
                (Duty::SecondReviewer, Who::SecondReviewer),
                (Duty::Recorder, Who::Recorder),
            ] {
                if caller.has_duty(duty) {
                    w.push(who);
                }
            }
            (true, w)
        }
        Role::Buyer if r.applicant_id == caller.user_id => (true, vec![Who::Applicant]),
        _ => (false, vec![]),
    }
}

async fn visible(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<(Registration, Vec<Who>), Error> {
    let r = load(s, id).await?;
    let (sees, rel) = relations(caller, &r);
    if !sees {
        return Err(Error::not_found("该登记申请"));
    }
    Ok((r, rel))
}

fn took_part(r: &Registration, user: &str) -> bool {
    [
        &r.acceptor_id,
        &r.first_reviewer_id,
        &r.second_reviewer_id,
        &r.recorder_id,
    ]
    .iter()
    .any(|x| x.as_deref() == Some(user))
}

async fn facts(
    s: &Services,
    caller: Option<&Caller>,
    r: &Registration,
    today: time::Date,
) -> Result<RegistrationFacts, Error> {
    let unit = match s.store.contract(&r.contract_id).await? {
        Some(c) => s.store.unit(&c.unit_id).await?,
        None => None,
    };
    Ok(RegistrationFacts {
        caller_took_part: caller.is_some_and(|c| took_part(r, &c.user_id)),
        unit_frozen: unit.is_some_and(|u| u.seized || u.objection || u.manual_hold),
        contract_filed: true,
        past_lapse_date: r.lapses_on.is_some_and(|d| d < today),
    })
}

fn local_today() -> time::Date {
    OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

fn decide(
    r: &Registration,
    action: RegistrationAction,
    relations: &[Who],
    facts: &RegistrationFacts,
) -> Result<&'static RegistrationTransition, Error> {
    table::decide(Some(r.state()), action, relations, facts).map_err(super::contracts::refusal)
}

/// The table's row for the caller's `action` on a case they can see, or the refusal.
async fn allowed(
    s: &Services,
    caller: &Caller,
    id: &str,
    action: RegistrationAction,
) -> Result<(Registration, &'static RegistrationTransition), Error> {
    let (r, rel) = visible(s, caller, id).await?;
    let f = facts(s, Some(caller), &r, local_today()).await?;
    let row = decide(&r, action, &rel, &f)?;
    Ok((r, row))
}

/// The opinions with one more entry.
fn opinions_with(r: &Registration, entry: serde_json::Value) -> Result<String, Error> {
    let mut opinions: Vec<serde_json::Value> =
        serde_json::from_str(&r.opinions).unwrap_or_default();
    opinions.push(entry);
    Ok(serde_json::to_string(&opinions).map_err(|e| anyhow::anyhow!("{e}"))?)
}

/// The one path of a decided change: the move (completed from the row: the states before and
/// after, the unit) as one compare-and-set; a lost race is `already_decided`; the audit entry
/// `registration.<action>`; the case as it is now.
async fn commit(
    s: &Services,
    caller: Option<&Caller>,
    r: &Registration,
    row: &RegistrationTransition,
    mut m: RegistrationMove<'_>,
    detail: serde_json::Value,
) -> Result<Registration, Error> {
    m.from = r.state();
    m.to = row.next(Some(r.state()));
    m.unit = row.unit;
    m.effect = caller.and_then(|who| who.idempotency.clone());
    if !s.store.move_registration(&m).await? {
        return Err(super::contracts::refusal(
            crate::domain::lifecycle::Refusal::already_decided(),
        ));
    }
    let now = load(s, &r.id).await?;
    let mut detail = detail;
    if let Some(o) = detail.as_object_mut() {
        o.insert("from".into(), r.state().label().into());
        o.insert("to".into(), now.state().label().into());
    }
    let action = format!("registration.{}", row.action.as_str());
    match caller {
        Some(c) => {
            super::audit(
                s,
                Some(c),
                &action,
                ("registration", &r.id),
                now.certificate_sha256.clone(),
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
                    actor_role: Some("scheduler".into()),
                    action,
                    object_kind: "registration".into(),
                    object_id: r.id.clone(),
                    object_hash: now.certificate_sha256.clone(),
                    source: None,
                    detail: detail.to_string(),
                },
            )
            .await?;
        }
    }
    Ok(now)
}

/// The case as the caller sees it, with the actions the table allows them now.
async fn view_for(
    s: &Services,
    caller: &Caller,
    r: &Registration,
) -> Result<RegistrationView, Error> {
    let (_, rel) = relations(caller, r);
    let f = facts(s, Some(caller), r, local_today()).await?;
    Ok(view(r, table::actions(r.state(), &rel, &f)))
}

fn view(r: &Registration, actions: Vec<ActionView>) -> RegistrationView {
    RegistrationView {
        id: r.id.clone(),
        contract_id: r.contract_id.clone(),
        status: r.status,
        status_label: r.state().label(),
        acceptance_no: r.acceptance_no.clone(),
        certificate_no: r.certificate_no.clone(),
        certificate_ofd: r.certificate_ofd_sha256.is_some(),
        certificate_status: r.certificate_status,
        materials: serde_json::from_str(&r.materials).unwrap_or_default(),
        opinions: serde_json::from_str(&r.opinions).unwrap_or_default(),
        created_at: r.created_at,
        updated_at: r.updated_at,
        hold: r.hold,
        hold_reasons: r
            .hold_reasons
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default(),
        entry_status: r.entry_status,
        lapses_on: r.lapses_on.map(|d| d.to_string()),
        actions,
    }
}

/// A buyer of a filed contract applies, with the developer as obligor. The hook: the buyer's
/// fresh verification for `apply_registration` and a code bound to the filed contract's PDF.
pub async fn apply(
    s: &Services,
    caller: &Caller,
    contract_id: &str,
    code_id: &str,
    code: &str,
) -> Result<RegistrationView, Error> {
    let (contract, _) = super::contracts::contract_for_buyer(s, caller, contract_id).await?;
    let f = RegistrationFacts {
        contract_filed: contract.status == crate::domain::lifecycle::ContractStatus::Filed,
        ..Default::default()
    };
    let row = table::decide(None, RegistrationAction::Apply, &[Who::Buyer], &f)
        .map_err(super::contracts::refusal)?;
    let document = contract
        .document_sha256
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no document"))?;
    let auth = super::identity::authorize_signing(
        s,
        caller,
        crate::identity::Purpose::ApplyRegistration,
        &document,
        code_id,
        code,
    )
    .await?;
    let now = OffsetDateTime::now_utc();
    let state = row.next(None);
    let r = Registration {
        id: uuid::Uuid::now_v7().to_string(),
        contract_id: contract.id.clone(),
        applicant_id: caller.user_id.clone(),
        status: state.status,
        acceptance_no: None,
        acceptor_id: None,
        first_reviewer_id: None,
        second_reviewer_id: None,
        recorder_id: None,
        certificate_no: None,
        certificate_sha256: None,
        certificate_ofd_sha256: None,
        certificate_status: None,
        // The filed contract is already among the materials: referenced, not uploaded again.
        materials: serde_json::json!([document]).to_string(),
        opinions: serde_json::json!([{"step": "apply", "person": caller.user_id, "evidence": auth, "at": crate::audit::rfc3339(now)}]).to_string(),
        created_at: now,
        updated_at: now,
        hold: state.hold,
        hold_reasons: None,
        entry_status: state.entry,
        lapses_on: None,
    };
    if !s
        .store
        .insert_registration(&r, caller.idempotency.as_ref())
        .await?
    {
        return Err(Error::conflict(
            "registration_exists",
            "该合同已有正在办理的登记申请。",
        ));
    }
    super::audit(
        s,
        Some(caller),
        "registration.apply",
        ("registration", &r.id),
        None,
        serde_json::json!({"contract_id": r.contract_id, "to": r.state().label()}),
    )
    .await?;
    view_for(s, caller, &r).await
}

/// The registration cases of one contract that the caller may see, and the application a
/// buyer of the filed contract may make now (the table's row from nothing), if no case is
/// alive.
#[derive(Debug, Clone, Serialize)]
pub struct ContractCases {
    pub cases: Vec<RegistrationView>,
    pub apply: Option<ActionView>,
}

pub async fn of_contract(
    s: &Services,
    caller: &Caller,
    contract_id: &str,
) -> Result<ContractCases, Error> {
    let (contract, party) = super::contracts::visible(s, caller, contract_id).await?;
    let mut cases = Vec::new();
    for r in s.store.registrations_of_contract(&contract.id).await? {
        if relations(caller, &r).0 {
            cases.push(view_for(s, caller, &r).await?);
        }
    }
    let live = cases.iter().any(|r| !r.status.is_refused_or_withdrawn());
    let filed = contract.status == crate::domain::lifecycle::ContractStatus::Filed;
    let apply = (party.is(Who::Buyer) && filed && !live).then(|| {
        let f = RegistrationFacts {
            contract_filed: filed,
            ..Default::default()
        };
        ActionView::new(
            RegistrationAction::Apply.as_str(),
            RegistrationAction::Apply.label(),
            table::decide(None, RegistrationAction::Apply, &[Who::Buyer], &f).err(),
        )
    });
    Ok(ContractCases { cases, apply })
}

pub async fn get(s: &Services, caller: &Caller, id: &str) -> Result<RegistrationView, Error> {
    let (r, _) = visible(s, caller, id).await?;
    view_for(s, caller, &r).await
}

/// One step of the path by a reviewer, with an opinion: acceptance (no particular duty), the
/// two reviews and the recording (their duties); nobody takes two steps of one case. Recording
/// completes the registration; the certificate follows at once.
pub async fn step(
    s: &Services,
    caller: &Caller,
    id: &str,
    step: RegistrationStep,
    opinion: &str,
) -> Result<RegistrationView, Error> {
    let action = match step {
        RegistrationStep::Accept => RegistrationAction::Accept,
        RegistrationStep::FirstReview => RegistrationAction::FirstReview,
        RegistrationStep::SecondReview => RegistrationAction::SecondReview,
        RegistrationStep::Record => RegistrationAction::Record,
    };
    let (r, row) = allowed(s, caller, id, action).await?;
    if opinion.trim().is_empty() {
        return Err(Error::invalid(vec![FieldError::new(
            "opinion",
            "required",
            "请填写审核意见。",
        )]));
    }
    let now = OffsetDateTime::now_utc();
    let opinions = opinions_with(
        &r,
        serde_json::json!({"step": row.to.as_str(), "person": caller.user_id, "opinion": opinion, "at": crate::audit::rfc3339(now)}),
    )?;
    let acceptance_no =
        (step == RegistrationStep::Accept).then(|| format!("莞受{}{}", now.year(), digits(8)));
    let mut m = RegistrationMove::new(&r.id, r.state(), r.state(), &opinions, now);
    m.step = Some((step, &caller.user_id));
    m.acceptance_no = acceptance_no.as_deref();
    let r = commit(
        s,
        Some(caller),
        &r,
        row,
        m,
        serde_json::json!({"opinion": opinion}),
    )
    .await?;
    if step == RegistrationStep::Record {
        let r = issue_certificate(s, caller, &r).await?;
        return view_for(s, caller, &r).await;
    }
    view_for(s, caller, &r).await
}

/// The service's own step after recording: the certificate rendered, sealed by the registration
/// centre (certifying, P=1), stored; the register entry valid; the unit registered.
async fn issue_certificate(
    s: &Services,
    caller: &Caller,
    r: &Registration,
) -> Result<Registration, Error> {
    let row = decide(
        r,
        RegistrationAction::IssueCertificate,
        &[Who::System],
        &Default::default(),
    )?;
    let contract = super::contracts::load(s, &r.contract_id).await?;
    let view_c = super::contracts::summary(s, &contract).await?;
    let font = s.font.as_ref().ok_or_else(|| Error::Unavailable {
        code: "documents_unavailable",
        message: "服务器缺少中文字体，暂时不能出具证明。".into(),
    })?;
    let now = OffsetDateTime::now_utc();
    let local = now.to_offset(time::macros::offset!(+8));
    let certificate_no = format!("粤({})东莞市不动产证明第{}号", local.year(), digits(7));
    let data = super::documents::RegistrationCertificateData {
        certificate_no: certificate_no.clone(),
        matter: "预告登记（预购商品房买卖）".into(),
        right_holder: view_c.right_holder,
        obligor: view_c.obligor,
        location: view_c.location,
        unit_number: view_c.unit_number.clone(),
        other: format!(
            "合同编号 {}；备案号 {}；总价款人民币 {} 元；建筑面积 {} 平方米",
            contract.contract_no,
            contract.filing_no.clone().unwrap_or_default(),
            view_c.total,
            view_c.gross_area
        ),
        notes: format!("受理号 {}", r.acceptance_no.clone().unwrap_or_default()),
        authority: super::contracts::CENTRE.into(),
        recorded_on: local.date().to_string(),
    };
    let public = s
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", s.config.listen));
    let created = local
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let doc = s
        .documents
        .run_here(|| {
            super::documents::render_registration_certificate(font, &data, &public, &created)
        })
        .await??;
    let (cert, key) = super::pki::centre_seal(s)?;
    let (sealed, sealed_sha256) = super::signing::seal_document(
        s,
        &doc.pdf,
        &super::signing::Seal {
            field: "centre-seal",
            cert: &cert,
            key: key.as_ref(),
            organisation: super::contracts::CENTRE,
            purpose: super::contracts::CENTRE_SEAL,
            reason: "不动产登记",
            certify: Some(1),
        },
        now,
    )
    .await?;
    let sha = super::contracts::hex(&sealed_sha256);
    super::materials::put(s, &sha, "application/pdf", &sealed, now).await?;
    // The same certificate as an OFD package under the centre's GB/T 38540 seal (SM2).
    let ofd = super::gm::seal_certificate(
        s,
        &crate::ofd::write::CertificateContent {
            title: "不动产登记证明".into(),
            authority: data.authority.clone(),
            blocks: super::documents::registration_certificate_blocks(&data, &public)?,
            data: vec![
                ("证明号".into(), data.certificate_no.clone()),
                ("证明权利或事项".into(), data.matter.clone()),
                ("权利人".into(), data.right_holder.clone()),
                ("义务人".into(), data.obligor.clone()),
                ("坐落".into(), data.location.clone()),
                ("不动产单元号".into(), data.unit_number.clone()),
                ("登簿日期".into(), data.recorded_on.clone()),
                ("登记机构".into(), data.authority.clone()),
                ("PDF证明SHA-256".into(), sha.clone()),
            ],
        },
        now,
    )
    .await?;
    let ofd_sha = super::contracts::hex(&openssl::sha::sha256(&ofd));
    super::materials::put(s, &ofd_sha, "application/ofd", &ofd, now).await?;
    // The advance notice lapses its legal period after ownership registration became possible,
    // taken as the agreed delivery date.
    let lapse = time::Duration::days(s.config.workflow.advance_notice_lapse_days as i64);
    let lapses_on = super::contracts::delivery_date(&contract).unwrap_or(local.date()) + lapse;
    let mut m = RegistrationMove::new(&r.id, r.state(), r.state(), &r.opinions, now);
    m.certificate = Some((&certificate_no, &sha, lapses_on));
    m.certificate_ofd = Some(&ofd_sha);
    m.certificate_status = Some(CertificateStatus::Valid);
    commit(
        s,
        Some(caller),
        r,
        row,
        m,
        serde_json::json!({"certificate_no": certificate_no}),
    )
    .await
}

/// The certificate as a sealed OFD package, for the applicant and the centre.
pub async fn certificate_ofd(s: &Services, caller: &Caller, id: &str) -> Result<Vec<u8>, Error> {
    let (r, _) = visible(s, caller, id).await?;
    let sha = r
        .certificate_ofd_sha256
        .ok_or_else(|| Error::not_found("该登记证明的 OFD 版本"))?;
    Ok(super::materials::get(s, &sha)
        .await?
        .ok_or_else(|| anyhow::anyhow!("material missing"))?)
}

/// The certificate's PDF, for the applicant and the centre.
pub async fn certificate_pdf(s: &Services, caller: &Caller, id: &str) -> Result<Vec<u8>, Error> {
    let (r, _) = visible(s, caller, id).await?;
    let sha = r
        .certificate_sha256
        .ok_or_else(|| Error::not_found("该登记证明"))?;
    Ok(super::materials::get(s, &sha)
        .await?
        .ok_or_else(|| anyhow::anyhow!("material missing"))?)
}

/// What the QR code's public page shows: the certificate's current status and what it proves,
/// with names but no ID numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicCertificate {
    pub certificate_no: String,
    pub status: crate::domain::lifecycle::CertificateStatus,
    /// The advance notice it proves.
    pub entry_status: EntryStatus,
    pub matter: String,
    pub unit_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// SHA-256 of the certificate PDF: a copy can be checked against it.
    pub document_sha256: String,
    /// SHA-256 of the certificate's OFD package (GB/T 38540 seal), when one was issued.
    pub ofd_sha256: Option<String>,
}

pub async fn public_status(s: &Services, digits: &str) -> Result<PublicCertificate, Error> {
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::not_found("该登记证明"));
    }
    // The number is 粤(YYYY)东莞市不动产证明第NNNNNNN号: the digits are the year and the serial.
    let (year, serial) = digits.split_at(4.min(digits.len()));
    let no = format!("粤({year})东莞市不动产证明第{serial}号");
    let r = s
        .store
        .registration_by_certificate(&no)
        .await?
        .ok_or_else(|| Error::not_found("该登记证明"))?;
    let contract = s
        .store
        .contract(&r.contract_id)
        .await?
        .ok_or_else(|| Error::not_found("该登记证明"))?;
    let unit = s
        .store
        .unit(&contract.unit_id)
        .await?
        .ok_or_else(|| Error::not_found("该登记证明"))?;
    Ok(PublicCertificate {
        certificate_no: no,
        status: r
            .certificate_status
            .unwrap_or(crate::domain::lifecycle::CertificateStatus::Valid),
        entry_status: r.entry_status.unwrap_or(EntryStatus::Valid),
        matter: "预告登记（预购商品房买卖）".into(),
        unit_number: unit.unit_number,
        issued_at: r.updated_at,
        document_sha256: r.certificate_sha256.unwrap_or_default(),
        ofd_sha256: r.certificate_ofd_sha256,
    })
}

/// One item of a refusal, a requisition or a rejection (all of them at once: 一次性告知).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The material or subject (`id_card`, `contract`, `applicant`, …).
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Items {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandIn {
    /// SHA-256 of materials the applicant uploaded (`POST /api/v1/materials`).
    pub materials: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryCancellation {
    pub reason: String,
    /// `joint_request` (both parties) or `court` (a judgment or ruling).
    pub basis: String,
    /// SHA-256 of the stored joint request or court document.
    pub material: String,
}

fn check_items(items: &[Item]) -> Result<serde_json::Value, Error> {
    if items.is_empty()
        || items.len() > 50
        || items
            .iter()
            .any(|i| i.message.trim().is_empty() || i.message.chars().count() > 500)
    {
        return Err(Error::invalid(vec![FieldError::new(
            "items",
            "required",
            "须一次列明全部事项（1 至 50 项，每项写明原因）。",
        )]));
    }
    Ok(serde_json::to_value(items).map_err(|e| anyhow::anyhow!("{e}"))?)
}

fn check_note(reason: &str) -> Result<(), Error> {
    if reason.trim().is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid(vec![FieldError::new(
            "reason",
            "required",
            "请写明理由（500 字以内）。",
        )]));
    }
    Ok(())
}

/// What a change off the path writes besides the state and the opinions.
#[derive(Default)]
struct Extra {
    hold_reasons: Option<Option<String>>,
    materials: Option<String>,
    certificate_status: Option<CertificateStatus>,
}

/// A change that is not a step of the path (an exit, a hold, materials, the entry's end): the
/// opinion entry and audit detail are `detail`.
async fn act(
    s: &Services,
    caller: &Caller,
    r: &Registration,
    row: &RegistrationTransition,
    detail: serde_json::Value,
    extra: Extra,
) -> Result<RegistrationView, Error> {
    let now = OffsetDateTime::now_utc();
    let opinions = opinions_with(
        r,
        serde_json::json!({"step": row.action.as_str(), "person": caller.user_id, "detail": detail, "at": crate::audit::rfc3339(now)}),
    )?;
    let mut m = RegistrationMove::new(&r.id, r.state(), r.state(), &opinions, now);
    m.hold_reasons = extra.hold_reasons.as_ref().map(|x| x.as_deref());
    m.materials = extra.materials.as_deref();
    m.certificate_status = extra.certificate_status;
    let r = commit(s, Some(caller), r, row, m, detail).await?;
    view_for(s, caller, &r).await
}

/// The acceptor refuses to accept, listing everything missing at once.
pub async fn not_accept(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Items,
) -> Result<RegistrationView, Error> {
    let (r, row) = allowed(s, caller, id, RegistrationAction::NotAccept).await?;
    let items = check_items(&req.items)?;
    act(
        s,
        caller,
        &r,
        row,
        serde_json::json!({"items": items}),
        Extra {
            hold_reasons: Some(None),
            ..Default::default()
        },
    )
    .await
}

/// A first or second reviewer rejects an accepted case, with every reason.
pub async fn reject(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Items,
) -> Result<RegistrationView, Error> {
    let (r, row) = allowed(s, caller, id, RegistrationAction::Reject).await?;
    let items = check_items(&req.items)?;
    act(
        s,
        caller,
        &r,
        row,
        serde_json::json!({"items": items}),
        Extra {
            hold_reasons: Some(None),
            ..Default::default()
        },
    )
    .await
}

/// The applicant withdraws before recording.
pub async fn withdraw(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Note,
) -> Result<RegistrationView, Error> {
    let (r, row) = allowed(s, caller, id, RegistrationAction::Withdraw).await?;
    check_note(&req.reason)?;
    act(
        s,
        caller,
        &r,
        row,
        serde_json::json!({"reason": req.reason}),
        Extra {
            hold_reasons: Some(None),
            ..Default::default()
        },
    )
    .await
}

/// A reviewer asks for corrections (补正), everything at once; the case waits at its step.
pub async fn requisition(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Items,
) -> Result<RegistrationView, Error> {
    let (r, row) = allowed(s, caller, id, RegistrationAction::Requisition).await?;
    let items = check_items(&req.items)?;
    let reasons = items.to_string();
    act(
        s,
        caller,
        &r,
        row,
        serde_json::json!({"items": items}),
        Extra {
            hold_reasons: Some(Some(reasons)),
            ..Default::default()
        },
    )
    .await
}

/// A reviewer suspends a case (court, objection); it waits until resumed.
pub async fn suspend(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Note,
) -> Result<RegistrationView, Error> {
    let (r, row) = allowed(s, caller, id, RegistrationAction::Suspend).await?;
    check_note(&req.reason)?;
    let why = serde_json::json!([{"field": "case", "code": Hold::Suspended.as_str(), "message": req.reason}])
        .to_string();
    act(
        s,
        caller,
        &r,
        row,
        serde_json::json!({"reason": req.reason}),
        Extra {
            hold_reasons: Some(Some(why)),
            ..Default::default()
        },
    )
    .await
}

pub async fn resume(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Note,
) -> Result<RegistrationView, Error> {
    let (r, row) = allowed(s, caller, id, RegistrationAction::Resume).await?;
    check_note(&req.reason)?;
    act(
        s,
        caller,
        &r,
        row,
        serde_json::json!({"reason": req.reason}),
        Extra {
            hold_reasons: Some(None),
            ..Default::default()
        },
    )
    .await
}

/// The applicant hands in materials from their own library; an answered requisition puts the
/// case back where it was.
pub async fn hand_in(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: HandIn,
) -> Result<RegistrationView, Error> {
    let (r, row) = allowed(s, caller, id, RegistrationAction::HandIn).await?;
    if req.materials.is_empty() || req.materials.len() > 20 {
        return Err(Error::invalid(vec![FieldError::new(
            "materials",
            "count",
            "须提交 1 至 20 份材料。",
        )]));
    }
    let mut list: Vec<String> = serde_json::from_str(&r.materials).unwrap_or_default();
    let mut errors = Vec::new();
    let own: Vec<String> = s
        .store
        .materials_of(&caller.user_id)
        .await?
        .into_iter()
        .map(|m| m.sha256)
        .collect();
    for (i, sha) in req.materials.iter().enumerate() {
        if !own.contains(sha) {
            errors.push(FieldError::new(
                format!("materials[{i}]"),
                "not_yours",
                "只能提交您本人上传的材料。",
            ));
        } else if !list.contains(sha) {
            list.push(sha.clone());
        }
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    let json = serde_json::to_string(&list).map_err(|e| anyhow::anyhow!("{e}"))?;
    let answered = r.hold == Some(Hold::Requisitioned);
    act(
        s,
        caller,
        &r,
        row,
        serde_json::json!({"materials": req.materials, "answers_requisition": answered}),
        Extra {
            materials: Some(json),
            hold_reasons: answered.then_some(None),
            ..Default::default()
        },
    )
    .await
}

/// The recorder cancels a valid advance notice on a joint request or a court document: the
/// certificate is revoked (its public page says so) and the unit is back to `filed`.
pub async fn cancel_entry(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: EntryCancellation,
) -> Result<RegistrationView, Error> {
    let (r, row) = allowed(s, caller, id, RegistrationAction::CancelEntry).await?;
    check_note(&req.reason)?;
    if !["joint_request", "court"].contains(&req.basis.as_str()) {
        return Err(Error::invalid(vec![FieldError::new(
            "basis",
            "one_of",
            "注销依据须为 joint_request（双方共同申请）或 court（法院文书）。",
        )]));
    }
    if super::materials::get(s, &req.material).await?.is_none() {
        return Err(Error::invalid(vec![FieldError::new(
            "material",
            "unknown_material",
            "注销依据的材料须先上传。",
        )]));
    }
    let detail =
        serde_json::json!({"reason": req.reason, "basis": req.basis, "material": req.material});
    act(
        s,
        caller,
        &r,
        row,
        detail,
        Extra {
            certificate_status: Some(CertificateStatus::Revoked),
            ..Default::default()
        },
    )
    .await
}

/// The scheduler's job: valid advance notices past their lapse date lapse, exactly once.
pub async fn lapse_due(s: &Services, now: OffsetDateTime) -> Result<usize, Error> {
    let today = now.to_offset(time::macros::offset!(+8)).date();
    let mut n = 0;
    for r in s.store.lapsing_advance_notices(today, 200).await? {
        let f = facts(s, None, &r, today).await?;
        let Ok(row) = decide(&r, RegistrationAction::Lapse, &[Who::Scheduler], &f) else {
            continue;
        };
        let opinions = opinions_with(
            &r,
            serde_json::json!({"step": "entry_lapsed", "person": null, "at": crate::audit::rfc3339(now)}),
        )?;
        let mut m = RegistrationMove::new(&r.id, r.state(), r.state(), &opinions, now);
        m.certificate_status = Some(CertificateStatus::Revoked);
        match commit(
            s,
            None,
            &r,
            row,
            m,
            serde_json::json!({"lapses_on": r.lapses_on.map(|d| d.to_string())}),
        )
        .await
        {
            Ok(_) => n += 1,
            Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The person who may take a case's next step: the duty, and who may not (four eyes).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NextStep {
    /// The action (`accept`, `first_review`, `second_review`, `record`).
    pub action: RegistrationAction,
    pub label: &'static str,
    /// Who may take it (`reviewer`, `first_reviewer`, …).
    pub who: Who,
    pub who_label: &'static str,
    /// The people who took an earlier step of this case and so may not take this one.
    pub excluded: Vec<String>,
    /// Whether the caller may take it now.
    pub you_may_take: bool,
}

/// One case in a list or a queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationListItem {
    pub id: String,
    pub contract_id: String,
    pub contract_no: String,
    pub status: RegistrationStatus,
    pub status_label: String,
    pub hold: Option<Hold>,
    pub acceptance_no: Option<String>,
    pub certificate_no: Option<String>,
    pub entry_status: Option<EntryStatus>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the case reached where it stands (queues are oldest first by this).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The next step on the path, when the case waits for one.
    pub next_step: Option<NextStep>,
}

/// A page of cases.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationList {
    pub items: Vec<RegistrationListItem>,
    pub next_cursor: Option<String>,
    /// How many cases of each status match the filters (every status named, zeros too).
    pub counts: std::collections::BTreeMap<RegistrationStatus, i64>,
    /// Of those, how many wait on each hold.
    pub on_hold: std::collections::BTreeMap<Hold, i64>,
    pub total: i64,
}

/// The query of the registration list: the common filters, and a reviewer's queue (`step`).
pub type RegistrationListQuery = super::listing::CaseParams;

/// The list of cases: a buyer's own applications; every case, or one step's queue, for
/// reviewers and administrators; none for developers' staff.
pub async fn list(
    s: &Services,
    caller: &Caller,
    params: &RegistrationListQuery,
) -> Result<RegistrationList, Error> {
    use crate::store::{RegistrationQuery, Scope};
    let mut filters = params.clone();
    let queue = match params.step.as_deref() {
        None | Some("") => None,
        Some(name) => {
            let action = name
                .parse::<RegistrationAction>()
                .ok()
                .filter(|a| {
                    matches!(
                        a,
                        RegistrationAction::Accept
                            | RegistrationAction::FirstReview
                            | RegistrationAction::SecondReview
                            | RegistrationAction::Record
                    )
                })
                .ok_or_else(|| Error::Invalid {
                    code: "invalid_query",
                    message: "查询条件有误，请按字段提示修改。".into(),
                    fields: vec![FieldError::new(
                        "step",
                        "one_of",
                        "步骤须为 accept、first_review、second_review 或 record。",
                    )],
                })?;
            if filters.order.is_none() {
                filters.order = Some("waiting".into());
            }
            Some(action)
        }
    };
    let p = filters.parse()?;
    let mut statuses: Vec<RegistrationStatus> = super::listing::statuses(&p.statuses)?;
    if let Some(action) = queue {
        let from: Vec<RegistrationStatus> = table::REGISTRATION_TRANSITIONS
            .iter()
            .filter(|t| t.action == action)
            .filter_map(|t| t.from)
            .collect();
        statuses = if statuses.is_empty() {
            from
        } else {
            statuses.into_iter().filter(|s| from.contains(s)).collect()
        };
    }
    let scope = match caller.role {
        Role::Admin | Role::Reviewer => Scope::All,
        Role::Buyer => Scope::Applicant(caller.user_id.clone()),
        Role::Developer => Scope::Nothing,
    };
    let nothing_left = queue.is_some() && statuses.is_empty();
    let q = RegistrationQuery {
        scope: if nothing_left { Scope::Nothing } else { scope },
        statuses,
        waiting: queue.is_some(),
        filter: p.filter,
        order: p.order,
        after: p.after,
        limit: p.limit + 1,
    };
    let mut rows = s.store.list_registrations(&q).await?;
    let more = rows.len() as i64 > p.limit;
    rows.truncate(p.limit as usize);
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|r| super::listing::encode_cursor(q.order, &r.id, r.updated_at))
        })
        .flatten();
    let mut counts: std::collections::BTreeMap<RegistrationStatus, i64> =
        RegistrationStatus::ALL.iter().map(|s| (*s, 0)).collect();
    let mut on_hold: std::collections::BTreeMap<Hold, i64> =
        Hold::ALL.iter().map(|h| (*h, 0)).collect();
    for (status, hold, n) in s.store.count_registrations(&q).await? {
        *counts.entry(status).or_default() += n;
        if let Some(h) = hold {
            *on_hold.entry(h).or_default() += n;
        }
    }
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        let contract_no = s
            .store
            .contract(&r.contract_id)
            .await?
            .map(|c| c.contract_no)
            .unwrap_or_default();
        let (_, rel) = relations(caller, &r);
        let next_step = table::next_step(r.state()).map(|(action, who)| {
            let excluded: Vec<String> = [
                &r.acceptor_id,
                &r.first_reviewer_id,
                &r.second_reviewer_id,
                &r.recorder_id,
            ]
            .iter()
            .filter_map(|x| (*x).clone())
            .collect();
            let f = RegistrationFacts {
                caller_took_part: took_part(&r, &caller.user_id),
                contract_filed: true,
                ..Default::default()
            };
            NextStep {
                action,
                label: action.label(),
                who,
                who_label: who.label(),
                excluded,
                you_may_take: table::decide(Some(r.state()), action, &rel, &f).is_ok(),
            }
        });
        items.push(RegistrationListItem {
            status_label: r.state().label(),
            id: r.id,
            contract_id: r.contract_id,
            contract_no,
            status: r.status,
            hold: r.hold,
            acceptance_no: r.acceptance_no,
            certificate_no: r.certificate_no,
            entry_status: r.entry_status,
            created_at: r.created_at,
            updated_at: r.updated_at,
            next_step,
        });
    }
    Ok(RegistrationList {
        items,
        next_cursor,
        total: counts.values().sum(),
        counts,
        on_hold,
    })
}
