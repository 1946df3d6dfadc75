//! Advance-notice registration (预告登记) of a filed contract: the buyer applies (after an
//! identity check, relying on the filed contract already stored — nothing is handed in twice),
//! the case is accepted, reviewed twice and recorded by four different people, and the
//! electronic registration certificate is issued as a sealed PDF with a QR code whose public
//! page shows its current status.

use super::{Caller, Error, FieldError, Services};
use crate::audit;
use crate::domain::{Duty, Role};
use crate::store::{NewAuditEvent, Registration, RegistrationStep};
use serde::Serialize;
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
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
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
    }
}

async fn record(
    s: &Services,
    caller: &Caller,
    action: &str,
    r: &Registration,
    detail: serde_json::Value,
) -> Result<(), Error> {
    audit::append(
        s.store.as_ref(),
        NewAuditEvent {
            at: OffsetDateTime::now_utc(),
            actor_id: Some(caller.user_id.clone()),
            actor_role: Some(caller.role.as_str().to_owned()),
            action: action.into(),
            object_kind: "registration".into(),
            object_id: r.id.clone(),
            object_hash: r.certificate_sha256.clone(),
            source: caller.source.clone(),
            detail: detail.to_string(),
        },
    )
    .await?;
    Ok(())
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
        opinions: serde_json::json!([{"step": "apply", "person": caller.user_id, "evidence": auth, "at": now}]).to_string(),
        created_at: now,
        updated_at: now,
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
    let r = s
        .store
        .registration(id)
        .await?
        .ok_or_else(|| Error::not_found("该登记申请"))?;
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
    let r = s
        .store
        .registration(id)
        .await?
        .ok_or_else(|| Error::not_found("该登记申请"))?;
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
        serde_json::json!({"step": to, "person": caller.user_id, "opinion": opinion, "at": now}),
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
    let r = s
        .store
        .registration(id)
        .await?
        .ok_or_else(|| Error::not_found("该登记申请"))?;
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
    let contract = s
        .store
        .contract(&r.contract_id)
        .await?
        .ok_or_else(|| Error::not_found("该合同"))?;
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
    s.store
        .put_material(&sha, "application/pdf", &sealed, now)
        .await?;
    if !s
        .store
        .issue_registration_certificate(&r.id, &contract.unit_id, &certificate_no, &sha, now)
        .await?
    {
        return Err(Error::conflict("already_issued", "该案件的证明已经出具。"));
    }
    let r = s
        .store
        .registration(&r.id)
        .await?
        .ok_or_else(|| Error::not_found("该登记申请"))?;
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
    let r = s
        .store
        .registration(id)
        .await?
        .ok_or_else(|| Error::not_found("该登记申请"))?;
    let ok =
        matches!(caller.role, Role::Reviewer | Role::Admin) || r.applicant_id == caller.user_id;
    let sha = r
        .certificate_sha256
        .filter(|_| ok)
        .ok_or_else(|| Error::not_found("该登记证明"))?;
    Ok(s.store
        .material(&sha)
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
    pub matter: String,
    pub unit_number: String,
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
        matter: "预告登记（预购商品房买卖）".into(),
        unit_number: unit.unit_number,
        issued_at: r.updated_at,
        document_sha256: r.certificate_sha256.unwrap_or_default(),
    })
}
