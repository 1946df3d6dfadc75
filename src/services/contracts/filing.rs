//! Filing review: a sealed contract is submitted (at once, or by the developer when that did not
//! happen); the reviewer's ten checks run on submission, on request and before approval; a
//! reviewer files it — the registration centre's seal, validation data and an archive
//! time-stamp added (PAdES B-LTA), a filing number issued — or returns it with every reason at
//! once; the developer reopens a returned contract as a new draft version.

use super::signing::{Signed, certificate_serial, signature_step, signing_error};
use super::{CENTRE, CENTRE_SEAL, Party, commit, decide, facts, view_for, visible};
use crate::domain::Role;
use crate::domain::lifecycle::{ContractAction, ContractStatus, Who};
use crate::services::{Caller, Error, FieldError, Services};
use crate::store::{Contract, ContractMove};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Submits a sealed contract for filing (`who`: the service after sealing, or the developer's
/// staff) and runs the reviewer's checks, keeping their results with the contract. The checks
/// are best-effort here: the submission stands when a busy verifier cannot run them, the queue
/// shows them as not run, and approval runs them anyway.
pub(crate) async fn submit(
    s: &Services,
    caller: Option<&Caller>,
    c: &Contract,
    who: Who,
) -> Result<Contract, Error> {
    let f = crate::domain::lifecycle::ContractFacts::default();
    let row = decide(c, ContractAction::SubmitFiling, &[who], &f)?;
    let m = ContractMove::new(&c.id, c.status, c.status, OffsetDateTime::now_utc());
    let c = commit(
        s,
        caller,
        c,
        row,
        m,
        serde_json::json!({"automatic": who != Who::DeveloperStaff}),
    )
    .await?;
    crate::services::phases::mark("submit");
    match crate::services::checks::run(s, &c).await {
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
    crate::services::phases::mark("submit_checks");
    super::load(s, &c.id).await
}

/// Sealed contracts left unsubmitted for `after` while the operator submits on sealing: the
/// request that sealed them was lost between its seal and its submission (its process or its
/// database gone) and nobody retried it. Submitted here as the scheduler; another instance
/// getting there first is no error.
pub(crate) async fn submit_left_sealed(
    s: &Services,
    now: OffsetDateTime,
    after: time::Duration,
) -> Result<usize, Error> {
    if !s.config.workflow.submit_on_seal {
        return Ok(0);
    }
    let mut n = 0;
    for c in s
        .store
        .stale_contracts(&[ContractStatus::Sealed], now - after, 200)
        .await?
    {
        match submit(s, None, &c, Who::System).await {
            Ok(_) => n += 1,
            Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The developer submits a sealed contract that was not submitted at once.
pub async fn submit_filing(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let f = facts(s, Some(caller), &c, &p).await?;
    decide(&c, ContractAction::SubmitFiling, &p.relations, &f)?;
    let c2 = submit(s, Some(caller), &c, Who::DeveloperStaff).await?;
    view_for(s, caller, &c2).await
}

async fn allowed(
    s: &Services,
    caller: &Caller,
    c: &Contract,
    p: &Party,
    action: ContractAction,
) -> Result<&'static crate::domain::lifecycle::ContractTransition, Error> {
    let f = facts(s, Some(caller), c, p).await?;
    decide(c, action, &p.relations, &f)
}

/// A reviewer approves the filing: the reviewer's whole list is run again and approval refused
/// while any check fails; a filing number is issued; the registration centre's seal, the
/// validation data (DSS) and a document time-stamp are added (PAdES B-LTA); the unit becomes
/// `filed`. Two reviewers approving at once: one succeeds, the other gets `already_decided`.
pub async fn approve_filing(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let mut f = facts(s, Some(caller), &c, &p).await?;
    // Decided once before the checks (the status and the person), and again with them.
    f.checks_failed = false;
    decide(&c, ContractAction::ApproveFiling, &p.relations, &f)?;
    crate::services::phases::mark("decide");
    let checks = crate::services::checks::run(s, &c).await?;
    crate::services::phases::mark("checks");
    f.checks_failed = !checks.passed;
    let row = match decide(&c, ContractAction::ApproveFiling, &p.relations, &f) {
        Err(Error::Invalid { code, message, .. }) if code == "checks_failed" => {
            // Another reviewer may have decided while the checks ran (they then see the unit
            // moved on): that decision is the answer (`already_decided`), not the checks.
            let (now, p2) = visible(s, caller, id).await?;
            if now.status != c.status || now.version != c.version {
                let mut f2 = facts(s, Some(caller), &now, &p2).await?;
                f2.checks_failed = false;
                decide(&now, ContractAction::ApproveFiling, &p2.relations, &f2)?;
            }
            return Err(Error::Invalid {
                code,
                message,
                fields: crate::services::checks::failures(&checks),
            });
        }
        other => other?,
    };
    let (cert, key) = crate::services::pki::centre_seal(s)?;
    let now = OffsetDateTime::now_utc();
    let filing_no = format!(
        "莞预备{}{}",
        now.year(),
        &uuid::Uuid::new_v4().simple().to_string()[..8].to_ascii_uppercase()
    );
    let h = &s.pki.hierarchy;
    let certs: Vec<Vec<u8>> = std::iter::once(&h.root)
        .chain(h.issuing.iter())
        .map(|a| a.cert_der.clone())
        .collect();
    let mut crls = Vec::new();
    for name in std::iter::once("root").chain(crate::pki::ca::ISSUING_CAS) {
        crls.push(crate::services::pki::crl(s, name).await?);
    }
    crate::services::phases::mark("crls");
    let c2 = signature_step(
        s,
        caller,
        &c,
        row,
        async |pdf: &[u8], _| {
            let (sealed, _) = crate::services::signing::seal_document(
                s,
                pdf,
                &crate::services::signing::Seal {
                    field: "centre-seal",
                    cert: &cert,
                    key: key.as_ref(),
                    organisation: CENTRE,
                    purpose: CENTRE_SEAL,
                    reason: "备案",
                    certify: None,
                },
                now,
            ).await?;
            // Long-term validation data and an archive time-stamp over everything.
            let tsa = crate::services::pki::tsa_unit(s)?;
            let stamp = |d: &[u8; 32]| crate::services::pki::stamp_digest(tsa, d);
            let (archived, sha256) = s
                .documents
                .run_here(|| {
                    let with_dss = crate::pdf::sign::add_dss(&sealed, &certs, &crls)?;
                    crate::pdf::sign::add_document_timestamp_digested(
                        &with_dss,
                        "archive-timestamp",
                        &stamp,
                        crate::pdf::sign::TIMESTAMP_ALLOWANCE,
                    )
                })
                .await?
                .map_err(signing_error)?;
            Ok(Signed {
                pdf: archived,
                sha256,
                kind: "centre_seal",
                field: "centre-seal".into(),
                certificate_serial: certificate_serial(&cert),
                evidence: serde_json::json!({"reviewer": caller.user_id, "verification_verdict": crate::pdf::verify::Verdict::Valid, "filing_no": filing_no}).to_string(),
            })
        },
        Some(&filing_no),
        serde_json::json!({"filing_no": filing_no}),
    )
    .await?;
    view_for(s, caller, &c2).await
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
) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let row = allowed(s, caller, &c, &p, ContractAction::ReturnFiling).await?;
    if reasons.is_empty() || reasons.iter().any(|r| r.message.trim().is_empty()) {
        return Err(Error::invalid(vec![FieldError::new(
            "reasons",
            "required",
            "退回须列明全部理由。",
        )]));
    }
    let list: Vec<FieldError> = reasons
        .into_iter()
        .map(|r| FieldError::new(r.field, r.code, r.message))
        .collect();
    let json = serde_json::to_string(&list).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut m = ContractMove::new(&c.id, c.status, c.status, OffsetDateTime::now_utc());
    m.set.returned_reasons = Some(&json);
    let c2 = commit(
        s,
        Some(caller),
        &c,
        row,
        m,
        serde_json::json!({"reasons": list}),
    )
    .await?;
    view_for(s, caller, &c2).await
}

/// The developer takes a returned contract back as a new draft version: the earlier
/// signatures are void (they belong to the old version) and everyone signs again.
pub async fn reopen(s: &Services, caller: &Caller, id: &str) -> Result<super::ContractView, Error> {
    let (c, p) = visible(s, caller, id).await?;
    let row = allowed(s, caller, &c, &p, ContractAction::Reopen).await?;
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
        serde_json::json!({"version": c.version + 1}),
    )
    .await?;
    view_for(s, caller, &c2).await
}

/// The reviewer's checks of a contract, run now, with those kept from its submission.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChecksView {
    pub current: crate::services::checks::Checks,
    pub at_submission: Option<crate::services::checks::Checks>,
}

pub async fn checks(s: &Services, caller: &Caller, id: &str) -> Result<ChecksView, Error> {
    let (c, _) = visible(s, caller, id).await?;
    if caller.is(Role::Buyer) {
        return Err(Error::not_found("该合同"));
    }
    Ok(ChecksView {
        current: crate::services::checks::run(s, &c).await?,
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
        .stale_contracts(&[ContractStatus::FilingReview], far, 500)
        .await?
        .into_iter()
        .map(|c| {
            let checks: Option<crate::services::checks::Checks> = c
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
