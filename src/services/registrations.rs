//! Advance-notice registration (预告登记) of a filed contract: the buyer applies (after an
//! identity check, relying on the filed contract already stored — nothing is handed in twice),
//! the case is accepted, reviewed twice and recorded by four different people, and the
//! electronic registration certificate is issued as a sealed PDF with a QR code whose public
//! page shows its current status.

use super::{Caller, Error, FieldError, Services};
use crate::audit;
use crate::domain::{Duty, Role};
use crate::store::{NewAuditEvent, Registration, RegistrationStep};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationView {
    pub id: String,
    pub contract_id: String,
    pub status: String,
    pub acceptance_no: Option<String>,
    pub certificate_no: Option<String>,
    pub certificate_status: Option<String>,
    /// The stored materials (SHA-256) the case relies on.
    pub materials: Vec<String>,
    pub opinions: Vec<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// `requisitioned` (the applicant must hand in what `hold_reasons` lists) or `suspended`.
    pub hold: Option<String>,
    pub hold_reasons: Vec<serde_json::Value>,
    /// The register entry once recorded: valid, lapsed or cancelled.
    pub entry_status: Option<String>,
    /// When a valid advance notice lapses (YYYY-MM-DD).
    pub lapses_on: Option<String>,
}

fn view(r: &Registration) -> RegistrationView {
    RegistrationView {
        id: r.id.clone(),
        contract_id: r.contract_id.clone(),
        status: r.status.clone(),
        acceptance_no: r.acceptance_no.clone(),
        certificate_no: r.certificate_no.clone(),
        certificate_status: r.certificate_status.clone(),
        materials: serde_json::from_str(&r.materials).unwrap_or_default(),
        opinions: serde_json::from_str(&r.opinions).unwrap_or_default(),
        created_at: r.created_at,
        updated_at: r.updated_at,
        hold: r.hold.clone(),
        hold_reasons: r
            .hold_reasons
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default(),
        entry_status: r.entry_status.clone(),
        lapses_on: r.lapses_on.map(|d| d.to_string()),
    }
}

async fn record(
    s: &Services,
    caller: &Caller,
    action: &str,
    r: &Registration,
    detail: serde_json::Value,
) -> Result<(), Error> {
    let hash = r.certificate_sha256.clone();
    super::audit(
        s,
        Some(caller),
        action,
        ("registration", &r.id),
        hash,
        detail,
    )
    .await
}

fn digits(n: usize) -> String {
    let mut b = vec![0u8; n];
    let _ = openssl::rand::rand_bytes(&mut b);
    b.iter().map(|x| char::from(b'0' + x % 10)).collect()
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
    if !caller.is(Role::Buyer) {
        return Err(Error::forbidden("只有买受人可以申请预告登记。"));
    }
    let contract = super::contracts::contract_for_buyer(s, caller, contract_id).await?;
    if contract.status != "filed" {
        return Err(Error::conflict(
            "contract_not_filed",
            "合同备案后才能申请预告登记。",
        ));
    }
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
    let r = Registration {
        id: uuid::Uuid::now_v7().to_string(),
        contract_id: contract.id.clone(),
        applicant_id: caller.user_id.clone(),
        status: "submitted".into(),
        acceptance_no: None,
        acceptor_id: None,
        first_reviewer_id: None,
        second_reviewer_id: None,
        recorder_id: None,
        certificate_no: None,
        certificate_sha256: None,
        certificate_status: None,
        // The filed contract is already among the materials: referenced, not uploaded again.
        materials: serde_json::json!([document]).to_string(),
        opinions: serde_json::json!([{"step": "apply", "person": caller.user_id, "evidence": auth, "at": crate::audit::rfc3339(now)}]).to_string(),
        created_at: now,
        updated_at: now,
        hold: None,
        hold_reasons: None,
        entry_status: None,
        lapses_on: None,
    };
    if !s.store.insert_registration(&r).await? {
        return Err(Error::conflict(
            "registration_exists",
            "该合同已有正在办理的登记申请。",
        ));
    }
    record(
        s,
        caller,
        "registration.apply",
        &r,
        serde_json::json!({"contract_id": r.contract_id}),
    )
    .await?;
    Ok(view(&r))
}

/// Who may read a case: its applicant, reviewers and administrators.
pub async fn get(s: &Services, caller: &Caller, id: &str) -> Result<RegistrationView, Error> {
    let r = load(s, id).await?;
    let ok =
        matches!(caller.role, Role::Reviewer | Role::Admin) || r.applicant_id == caller.user_id;
    if !ok {
        return Err(Error::not_found("该登记申请"));
    }
    Ok(view(&r))
}

/// One review step by a reviewer. Acceptance needs no particular duty; the reviews and the
/// recording need theirs; nobody takes two steps of one case.
pub async fn step(
    s: &Services,
    caller: &Caller,
    id: &str,
    step: RegistrationStep,
    opinion: &str,
) -> Result<RegistrationView, Error> {
    if !caller.is(Role::Reviewer) {
        return Err(Error::forbidden("只有登记中心的人员可以办理登记。"));
    }
    let (from, to, duty, action) = match step {
        RegistrationStep::Accept => ("submitted", "accepted", None, "registration.accept"),
        RegistrationStep::FirstReview => (
            "accepted",
            "first_reviewed",
            Some(Duty::FirstReviewer),
            "registration.first_review",
        ),
        RegistrationStep::SecondReview => (
            "first_reviewed",
            "second_reviewed",
            Some(Duty::SecondReviewer),
            "registration.second_review",
        ),
        RegistrationStep::Record => (
            "second_reviewed",
            "recorded",
            Some(Duty::Recorder),
            "registration.record",
        ),
    };
    if let Some(d) = duty
        && !caller.has_duty(d)
    {
        return Err(Error::forbidden("您没有办理这一步骤的职责。"));
    }
    if opinion.trim().is_empty() {
        return Err(Error::invalid(vec![FieldError::new(
            "opinion",
            "required",
            "请填写审核意见。",
        )]));
    }
    let r = load(s, id).await?;
    let took_part = [
        &r.acceptor_id,
        &r.first_reviewer_id,
        &r.second_reviewer_id,
        &r.recorder_id,
    ]
    .iter()
    .any(|x| x.as_deref() == Some(caller.user_id.as_str()));
    if took_part {
        return Err(Error::Forbidden {
            code: "four_eyes",
            message: "同一人不能办理同一案件的两个步骤。".into(),
        });
    }
    if r.status != from {
        return Err(Error::conflict("wrong_step", "该申请当前不在这一步骤。"));
    }
    let now = OffsetDateTime::now_utc();
    let mut opinions: Vec<serde_json::Value> =
        serde_json::from_str(&r.opinions).unwrap_or_default();
    opinions.push(
        serde_json::json!({"step": to, "person": caller.user_id, "opinion": opinion, "at": crate::audit::rfc3339(now)}),
    );
    let acceptance_no =
        (step == RegistrationStep::Accept).then(|| format!("莞受{}{}", now.year(), digits(8)));
    let opinions = serde_json::to_string(&opinions).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !s
        .store
        .registration_step(
            &r.id,
            step,
            from,
            to,
            &caller.user_id,
            &opinions,
            acceptance_no.as_deref(),
            now,
        )
        .await?
    {
        return Err(Error::conflict(
            "wrong_step",
            "该申请已被他人处理或您已办理过其他步骤。",
        ));
    }
    let r = load(s, id).await?;
    record(
        s,
        caller,
        action,
        &r,
        serde_json::json!({"opinion": opinion}),
    )
    .await?;
    if step == RegistrationStep::Record {
        return issue_certificate(s, caller, &r).await;
    }
    Ok(view(&r))
}

/// Recording completes the registration; the certificate follows at once: rendered, sealed by
/// the registration centre (B-T), stored, and the unit registered.
async fn issue_certificate(
    s: &Services,
    caller: &Caller,
    r: &Registration,
) -> Result<RegistrationView, Error> {
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
        authority: "东莞市不动产登记中心".into(),
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
    let doc = super::documents::render_registration_certificate(font, &data, &public, &created)?;
    let (cert, key) = super::pki::centre_seal(s)?;
    let sealed = super::signing::seal_document(
        s,
        &doc.pdf,
        &super::signing::Seal {
            field: "centre-seal",
            cert: &cert,
            key: &key,
            organisation: super::contracts::CENTRE,
            purpose: super::contracts::CENTRE_SEAL,
            reason: "不动产登记",
            certify: Some(1),
        },
        now,
    )?;
    let sha: String = openssl::sha::sha256(&sealed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    super::materials::put(s, &sha, "application/pdf", &sealed, now).await?;
    // The advance notice lapses its legal period after ownership registration became possible,
    // taken as the agreed delivery date.
    let lapse = time::Duration::days(s.config.workflow.advance_notice_lapse_days as i64);
    let lapses_on = super::contracts::delivery_date(&contract).unwrap_or(local.date()) + lapse;
    if !s
        .store
        .issue_registration_certificate(
            &r.id,
            &contract.unit_id,
            &certificate_no,
            &sha,
            lapses_on,
            now,
        )
        .await?
    {
        return Err(Error::conflict("already_issued", "该案件的证明已经出具。"));
    }
    let r = load(s, &r.id).await?;
    record(
        s,
        caller,
        "registration.certificate_issued",
        &r,
        serde_json::json!({"certificate_no": certificate_no}),
    )
    .await?;
    Ok(view(&r))
}

/// The certificate's PDF, for the applicant and the centre.
pub async fn certificate_pdf(s: &Services, caller: &Caller, id: &str) -> Result<Vec<u8>, Error> {
    let r = load(s, id).await?;
    let ok =
        matches!(caller.role, Role::Reviewer | Role::Admin) || r.applicant_id == caller.user_id;
    let sha = r
        .certificate_sha256
        .filter(|_| ok)
        .ok_or_else(|| Error::not_found("该登记证明"))?;
    Ok(super::materials::get(s, &sha)
        .await?
        .ok_or_else(|| anyhow::anyhow!("material missing"))?)
}

/// What the QR code's public page shows: the certificate's current status and what it proves,
/// with names but no ID numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CertificateStatus {
    pub certificate_no: String,
    /// `valid`, `revoked` or `superseded`.
    pub status: String,
    /// The advance notice it proves: `valid`, `lapsed` or `cancelled`.
    pub entry_status: String,
    pub matter: String,
    pub unit_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// SHA-256 of the certificate PDF: a copy can be checked against it.
    pub document_sha256: String,
}

pub async fn public_status(s: &Services, digits: &str) -> Result<CertificateStatus, Error> {
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
    Ok(CertificateStatus {
        certificate_no: no,
        status: r.certificate_status.unwrap_or_else(|| "valid".into()),
        entry_status: r.entry_status.unwrap_or_else(|| "valid".into()),
        matter: "预告登记（预购商品房买卖）".into(),
        unit_number: unit.unit_number,
        issued_at: r.updated_at,
        document_sha256: r.certificate_sha256.unwrap_or_default(),
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

async fn load(s: &Services, id: &str) -> Result<Registration, Error> {
    s.store
        .registration(id)
        .await?
        .ok_or_else(|| Error::not_found("该登记申请"))
}

fn opinions_with(r: &Registration, entry: serde_json::Value) -> Result<String, Error> {
    let mut opinions: Vec<serde_json::Value> =
        serde_json::from_str(&r.opinions).unwrap_or_default();
    opinions.push(entry);
    Ok(serde_json::to_string(&opinions).map_err(|e| anyhow::anyhow!("{e}"))?)
}

const UNDECIDED: [&str; 4] = ["submitted", "accepted", "first_reviewed", "second_reviewed"];
const IN_REVIEW: [&str; 3] = ["accepted", "first_reviewed", "second_reviewed"];

/// Ends a case off its path (not accepted, rejected, withdrawn), audited.
async fn end(
    s: &Services,
    caller: &Caller,
    r: &Registration,
    from: &[&'static str],
    to: &'static str,
    detail: serde_json::Value,
) -> Result<RegistrationView, Error> {
    let now = OffsetDateTime::now_utc();
    let opinions = opinions_with(
        r,
        serde_json::json!({"step": to, "person": caller.user_id, "detail": detail, "at": crate::audit::rfc3339(now)}),
    )?;
    if !s
        .store
        .end_registration(&r.id, from, to, &opinions, now)
        .await?
    {
        return Err(Error::conflict(
            "wrong_step",
            "该申请当前不能这样处理（可能已被他人处理）。",
        ));
    }
    let r = load(s, &r.id).await?;
    record(s, caller, &format!("registration.{to}"), &r, detail).await?;
    Ok(view(&r))
}

/// The acceptor refuses to accept, listing everything missing at once.
pub async fn not_accept(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Items,
) -> Result<RegistrationView, Error> {
    if !caller.is(Role::Reviewer) {
        return Err(Error::forbidden("只有登记中心的人员可以办理登记。"));
    }
    let items = check_items(&req.items)?;
    let r = load(s, id).await?;
    end(
        s,
        caller,
        &r,
        &["submitted"],
        "not_accepted",
        serde_json::json!({"items": items}),
    )
    .await
}

/// A reviewer rejects an accepted case, with every reason.
pub async fn reject(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Items,
) -> Result<RegistrationView, Error> {
    if !(caller.is(Role::Reviewer)
        && (caller.has_duty(Duty::FirstReviewer) || caller.has_duty(Duty::SecondReviewer)))
    {
        return Err(Error::forbidden(
            "只有初审或复审人员可以作出不予登记的决定。",
        ));
    }
    let items = check_items(&req.items)?;
    let r = load(s, id).await?;
    end(
        s,
        caller,
        &r,
        &IN_REVIEW,
        "rejected",
        serde_json::json!({"items": items}),
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
    let r = load(s, id).await?;
    if r.applicant_id != caller.user_id {
        return Err(Error::not_found("该登记申请"));
    }
    check_note(&req.reason)?;
    end(
        s,
        caller,
        &r,
        &UNDECIDED,
        "withdrawn",
        serde_json::json!({"reason": req.reason}),
    )
    .await
}

/// Puts the case on hold or takes it off (`expected` → `to`), with the opinion and audit.
#[allow(clippy::too_many_arguments)]
async fn hold(
    s: &Services,
    caller: &Caller,
    r: &Registration,
    expected: Option<&str>,
    to: Option<&str>,
    reasons: Option<serde_json::Value>,
    materials: Option<String>,
    action: &str,
) -> Result<RegistrationView, Error> {
    let now = OffsetDateTime::now_utc();
    let detail = serde_json::json!({"hold": to, "reasons": reasons});
    let opinions = opinions_with(
        r,
        serde_json::json!({"step": action, "person": caller.user_id, "detail": detail, "at": crate::audit::rfc3339(now)}),
    )?;
    let reasons = reasons.map(|v| v.to_string());
    if !s
        .store
        .set_registration_hold(
            &r.id,
            expected,
            to,
            reasons.as_deref(),
            materials.as_deref(),
            &opinions,
            now,
        )
        .await?
    {
        return Err(Error::conflict(
            "wrong_step",
            "该申请当前不能这样处理（可能已被他人处理）。",
        ));
    }
    let r = load(s, &r.id).await?;
    record(s, caller, action, &r, detail).await?;
    Ok(view(&r))
}

/// A reviewer asks for corrections (补正), everything at once; the case waits at its step.
pub async fn requisition(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Items,
) -> Result<RegistrationView, Error> {
    if !caller.is(Role::Reviewer) {
        return Err(Error::forbidden("只有登记中心的人员可以办理登记。"));
    }
    let items = check_items(&req.items)?;
    let r = load(s, id).await?;
    hold(
        s,
        caller,
        &r,
        None,
        Some("requisitioned"),
        Some(items),
        None,
        "registration.requisition",
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
    if !caller.is(Role::Reviewer) {
        return Err(Error::forbidden("只有登记中心的人员可以办理登记。"));
    }
    check_note(&req.reason)?;
    let r = load(s, id).await?;
    let why = serde_json::json!([{"field": "case", "code": "suspended", "message": req.reason}]);
    hold(
        s,
        caller,
        &r,
        None,
        Some("suspended"),
        Some(why),
        None,
        "registration.suspend",
    )
    .await
}

pub async fn resume(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: Note,
) -> Result<RegistrationView, Error> {
    if !caller.is(Role::Reviewer) {
        return Err(Error::forbidden("只有登记中心的人员可以办理登记。"));
    }
    check_note(&req.reason)?;
    let r = load(s, id).await?;
    hold(
        s,
        caller,
        &r,
        Some("suspended"),
        None,
        None,
        None,
        "registration.resume",
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
    let r = load(s, id).await?;
    if r.applicant_id != caller.user_id {
        return Err(Error::not_found("该登记申请"));
    }
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
    if r.hold.as_deref() == Some("requisitioned") {
        return hold(
            s,
            caller,
            &r,
            Some("requisitioned"),
            None,
            None,
            Some(json),
            "registration.requisition_answered",
        )
        .await;
    }
    if !s
        .store
        .set_registration_materials(&r.id, &json, OffsetDateTime::now_utc())
        .await?
    {
        return Err(Error::conflict(
            "wrong_step",
            "该申请已办结，不能再提交材料。",
        ));
    }
    let r = load(s, id).await?;
    record(
        s,
        caller,
        "registration.materials",
        &r,
        serde_json::json!({"materials": req.materials}),
    )
    .await?;
    Ok(view(&r))
}

/// The recorder cancels a valid advance notice on a joint request or a court document: the
/// certificate is revoked (its public page says so) and the unit is back to `filed`.
pub async fn cancel_entry(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: EntryCancellation,
) -> Result<RegistrationView, Error> {
    if !(caller.is(Role::Reviewer) && caller.has_duty(Duty::Recorder)) {
        return Err(Error::forbidden("只有登簿人员可以注销预告登记。"));
    }
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
    let r = load(s, id).await?;
    let now = OffsetDateTime::now_utc();
    let detail =
        serde_json::json!({"reason": req.reason, "basis": req.basis, "material": req.material});
    let opinions = opinions_with(
        &r,
        serde_json::json!({"step": "entry_cancelled", "person": caller.user_id, "detail": detail, "at": crate::audit::rfc3339(now)}),
    )?;
    if !s
        .store
        .end_advance_notice(&r.id, "cancelled", &opinions, now)
        .await?
    {
        return Err(Error::conflict(
            "no_valid_entry",
            "该案件没有有效的预告登记。",
        ));
    }
    let r = load(s, id).await?;
    record(s, caller, "registration.entry_cancelled", &r, detail).await?;
    Ok(view(&r))
}

/// The scheduler's job: valid advance notices past their lapse date lapse, exactly once.
pub async fn lapse_due(s: &Services, now: OffsetDateTime) -> Result<usize, Error> {
    let today = now.to_offset(time::macros::offset!(+8)).date();
    let mut n = 0;
    for r in s.store.lapsing_advance_notices(today, 200).await? {
        let opinions = opinions_with(
            &r,
            serde_json::json!({"step": "entry_lapsed", "person": null, "at": crate::audit::rfc3339(now)}),
        )?;
        if s.store
            .end_advance_notice(&r.id, "lapsed", &opinions, now)
            .await?
        {
            n += 1;
            audit::append(
                s.store.as_ref(),
                NewAuditEvent {
                    at: now,
                    actor_id: None,
                    actor_role: Some("scheduler".into()),
                    action: "registration.entry_lapsed".into(),
                    object_kind: "registration".into(),
                    object_id: r.id.clone(),
                    object_hash: r.certificate_sha256.clone(),
                    source: None,
                    detail: serde_json::json!({"lapses_on": r.lapses_on.map(|d| d.to_string())})
                        .to_string(),
                },
            )
            .await?;
        }
    }
    Ok(n)
}
