//! The life cycles as data, through the HTTP API: every row of the contract table and of the
//! registration table taken by the person it names, with the status and the unit effect it
//! gives; at every status reached, every action the table has no row for refused with its code
//! and nothing changed (the case, its unit, its signatures, the audit entries, the outbox); the
//! `actions` each person is shown equal to what the table gives them. And outside the API: no
//! status literal outside the domain, and the diagrams in docs/lifecycles.md drawn from the
//! tables.

use crate::contracts::{act, apply_registration, draft_for, reg_post, units, upload};
use crate::helpers::{ChainedAudit, Db, Reply, TestApp, spawn_app_with};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use virtual_window::domain::lifecycle::registration::HoldIs;
use virtual_window::domain::lifecycle::{
    CONTRACT_TRANSITIONS, ContractAction, ContractGuard, ContractStatus, REGISTRATION_TRANSITIONS,
    RegistrationAction, RegistrationState, RegistrationStatus, UnitStatus, Who,
};

/// The buyers of the demo: account, name, ID number.
const BUYERS: [(&str, &str, &str); 3] = [
    ("buyer-zhang", "张伟", "44190019900101001X"),
    ("buyer-li", "李娜", "441900198506150021"),
    ("buyer-wang", "王芳", "441900199202280032"),
];

/// Everyone who looks at a case, with their relations to the demo's contracts and cases.
const PEOPLE: [&str; 10] = [
    "buyer-zhang",
    "buyer-li",
    "buyer-wang",
    "yj-drafter",
    "yj-confirmer",
    "rc-intake",
    "rc-first",
    "rc-second",
    "rc-recorder",
    "admin",
];

/// A draft for the next available unit with the first `n` demo buyers.
async fn draft(app: &TestApp, n: usize) -> String {
    let unit = units(app)
        .await
        .into_iter()
        .find(|u| u.status == UnitStatus::Available && !u.seized && !u.manual_hold)
        .expect("an available unit");
    let mut body = draft_for(&unit);
    let shares: &[u8] = match n {
        1 => &[100],
        2 => &[60, 40],
        _ => &[40, 30, 30],
    };
    body["buyers"] = Value::Array(
        BUYERS[..n]
            .iter()
            .zip(shares)
            .map(|((_, name, id), share)| {
                json!({"name": name, "id_number": id, "share_percent": share, "phone": "13800000001", "address": "广东省东莞市南城街道鸿福路 100 号"})
            })
            .collect(),
    );
    body["co_ownership"] = json!(if n == 1 {
        "单独所有"
    } else {
        "按份共有"
    });
    let drafter = app.token("yj-drafter").await;
    let r = app.post("/api/v1/contracts", Some(&drafter), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Everything an action could change, to compare before and after a refusal.
#[derive(Debug, PartialEq)]
struct Footprint {
    case: String,
    unit: Option<UnitStatus>,
    signatures: usize,
    audit: usize,
    outbox: usize,
}

async fn contract_footprint(app: &TestApp, id: &str) -> Footprint {
    let s = &app.services.store;
    let c = s.contract(id).await.unwrap().unwrap();
    Footprint {
        case: format!(
            "{} v{} {:?} {:?} {:?} {}",
            c.status, c.version, c.document_sha256, c.filing_no, c.cancellation, c.updated_at
        ),
        unit: s.unit(&c.unit_id).await.unwrap().map(|u| u.status),
        signatures: s.contract_signatures(id).await.unwrap().len(),
        audit: s.chained_audit_events(0, 1_000_000).await.unwrap().len(),
        outbox: s.outbox_events(0, 1_000_000).await.unwrap().len(),
    }
}

async fn contract_status(app: &TestApp, id: &str) -> (ContractStatus, UnitStatus) {
    let s = &app.services.store;
    let c = s.contract(id).await.unwrap().unwrap();
    let u = s.unit(&c.unit_id).await.unwrap().unwrap();
    (c.status, u.status)
}

/// Takes `action` on contract `id` as the person of `who`; `buyer` signs for the buyers.
async fn perform(app: &TestApp, id: &str, action: ContractAction, who: Who, buyer: &str) -> Reply {
    use ContractAction as A;
    let post = |who: &'static str, path: &'static str, body: Value| async move {
        let t = app.token(who).await;
        app.post(&format!("/api/v1/contracts/{id}/{path}"), Some(&t), body)
            .await
    };
    let developer = if who == Who::Confirmer {
        "yj-confirmer"
    } else {
        "yj-drafter"
    };
    match action {
        A::Create | A::Expire => unreachable!("not a person's action on a contract"),
        A::Edit => {
            let unit_id = app.services.store.contract(id).await.unwrap().unwrap().unit_id;
            let unit = app.services.store.unit(&unit_id).await.unwrap().unwrap();
            let t = app.token("yj-drafter").await;
            app.call(
                axum::http::Method::PUT,
                &format!("/api/v1/contracts/{id}"),
                Some(&t),
                Some(draft_for(&unit)),
            )
            .await
        }
        A::Confirm => post("yj-confirmer", "confirm", json!({})).await,
        A::Withdraw => post("yj-drafter", "withdraw", json!({})).await,
        A::Recall if who == Who::Buyer => {
            let t = app.token(buyer).await;
            app.post(
                &format!("/api/v1/contracts/{id}/recall"),
                Some(&t),
                json!({"reason": "请修改交付日期"}),
            )
            .await
        }
        A::Recall => post("yj-drafter", "recall", json!({"reason": "单价有误"})).await,
        A::Sign => act(app, buyer, id, "sign_contract", "sign").await,
        A::Seal => act(app, "yj-confirmer", id, "seal_contract", "seal").await,
        A::SubmitFiling => post("yj-drafter", "submit", json!({})).await,
        A::ApproveFiling => post("rc-first", "filing/approve", json!({})).await,
        A::ReturnFiling => {
            post(
                "rc-first",
                "filing/return",
                json!({"reasons": [{"field": "unit_price", "code": "price", "message": "单价须核对。"}]}),
            )
            .await
        }
        A::Reopen => post("yj-drafter", "reopen", json!({})).await,
        A::RequestCancellation if who == Who::Buyer => {
            let t = app.token(buyer).await;
            app.post(
                &format!("/api/v1/contracts/{id}/cancellation"),
                Some(&t),
                json!({"reason": "双方协商解除"}),
            )
            .await
        }
        A::RequestCancellation => {
            let _ = developer;
            post("yj-confirmer", "cancellation", json!({"reason": "双方协商解除"})).await
        }
        A::ConsentCancellation if who == Who::Buyer => {
            act(app, buyer, id, "sign_contract", "cancellation/consent").await
        }
        A::ConsentCancellation => {
            act(app, "yj-confirmer", id, "seal_contract", "cancellation/consent").await
        }
        A::ApproveCancellation => post("rc-first", "cancellation/approve", json!({})).await,
    }
}

/// The steps from a new draft to `target` (with `n` buyers).
fn path_to(target: ContractStatus, n: usize) -> Vec<(ContractAction, Who, &'static str)> {
    use ContractAction as A;
    use ContractStatus as S;
    let signed: Vec<(ContractAction, Who, &'static str)> =
        std::iter::once((A::Confirm, Who::Confirmer, ""))
            .chain(
                BUYERS[..n]
                    .iter()
                    .map(|(b, _, _)| (A::Sign, Who::Buyer, *b)),
            )
            .collect();
    let mut steps = match target {
        S::Draft | S::Expired | S::Withdrawn => vec![],
        S::AwaitingBuyers => vec![(A::Confirm, Who::Confirmer, "")],
        S::BuyersSigning => vec![
            (A::Confirm, Who::Confirmer, ""),
            (A::Sign, Who::Buyer, "buyer-zhang"),
        ],
        _ => signed,
    };
    let filing = [
        (A::Seal, Who::Confirmer, ""),
        (A::SubmitFiling, Who::DeveloperStaff, ""),
    ];
    match target {
        S::Sealed => steps.push(filing[0]),
        S::FilingReview => steps.extend(filing),
        S::Returned => {
            steps.extend(filing);
            steps.push((A::ReturnFiling, Who::Reviewer, ""));
        }
        S::Filed | S::CancelRequested | S::Cancelled => {
            steps.extend(filing);
            steps.push((A::ApproveFiling, Who::Reviewer, ""));
            if target != S::Filed {
                steps.push((A::RequestCancellation, Who::Buyer, "buyer-zhang"));
            }
            if target == S::Cancelled {
                steps.push((A::ConsentCancellation, Who::Confirmer, ""));
                steps.push((A::ApproveCancellation, Who::Reviewer, ""));
            }
        }
        S::Withdrawn => steps.push((A::Withdraw, Who::DeveloperStaff, "")),
        _ => {}
    }
    steps
}

async fn reach(app: &TestApp, target: ContractStatus, n: usize) -> String {
    let id = draft(app, n).await;
    for (action, who, buyer) in path_to(target, n) {
        let r = perform(app, &id, action, who, buyer).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{action} on the way to {target}: {}",
            r.text
        );
    }
    if target == ContractStatus::Expired {
        expire_all(app).await;
    }
    assert_eq!(contract_status(app, &id).await.0, target);
    id
}

/// Runs the scheduler as if far in the future.
async fn expire_all(app: &TestApp) -> usize {
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(400);
    virtual_window::services::scheduler::run_once(&app.services, later)
        .await
        .unwrap()
        .expired_contracts
}

/// The person who would take `action`, by the role the endpoint admits.
fn natural_who(action: ContractAction) -> (Who, &'static str) {
    use ContractAction as A;
    match action {
        A::Sign | A::Recall | A::RequestCancellation | A::ConsentCancellation => {
            (Who::Buyer, "buyer-zhang")
        }
        A::Confirm | A::Seal => (Who::Confirmer, ""),
        A::ApproveFiling | A::ReturnFiling | A::ApproveCancellation => (Who::Reviewer, ""),
        _ => (Who::DeveloperStaff, ""),
    }
}

/// At a status: every person action the table has no row for is refused with `wrong_status`,
/// and nothing changes.
async fn refuses_what_the_table_lacks(app: &TestApp, id: &str, status: ContractStatus) {
    for action in ContractAction::ALL {
        if matches!(action, ContractAction::Create | ContractAction::Expire)
            || CONTRACT_TRANSITIONS
                .iter()
                .any(|t| t.from == Some(status) && t.action == *action)
        {
            continue;
        }
        let before = contract_footprint(app, id).await;
        let (who, buyer) = natural_who(*action);
        // The status is decided before any code is looked at: a code-taking action is sent with
        // a well-formed body whose code was never issued.
        let r = match action {
            ContractAction::Sign | ContractAction::Seal | ContractAction::ConsentCancellation => {
                let person = if *action == ContractAction::Seal {
                    "yj-confirmer"
                } else {
                    buyer
                };
                let path = match action {
                    ContractAction::Sign => "sign",
                    ContractAction::Seal => "seal",
                    _ => "cancellation/consent",
                };
                let t = app.token(person).await;
                app.post(
                    &format!("/api/v1/contracts/{id}/{path}"),
                    Some(&t),
                    json!({"code_id": "00000000-0000-0000-0000-000000000000", "code": "000000"}),
                )
                .await
            }
            _ => perform(app, id, *action, who, buyer).await,
        };
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::CONFLICT, "wrong_status"),
            "{action} from {status}: {}",
            r.text
        );
        // A code taken for the refused action is the only trace (identity checks are audited
        // on their own account, not on the contract).
        let after = contract_footprint(app, id).await;
        assert_eq!(before.case, after.case, "{action} from {status}");
        assert_eq!(before.unit, after.unit, "{action} from {status}");
        assert_eq!(
            before.signatures, after.signatures,
            "{action} from {status}"
        );
        assert_eq!(before.outbox, after.outbox, "{action} from {status}");
        let new_entries: Vec<String> = app
            .services
            .store
            .chained_audit_events(0, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .skip(before.audit)
            .filter(|e| e.object_id == id)
            .map(|e| e.action)
            .collect();
        assert!(
            new_entries.is_empty(),
            "{action} from {status}: {new_entries:?}"
        );
    }
}

/// The relations a demo person has to a contract of the first `n` buyers.
fn contract_relations(person: &str, n: usize) -> Option<Vec<Who>> {
    match person {
        "yj-drafter" => Some(vec![Who::DeveloperStaff, Who::Drafter]),
        "yj-confirmer" => Some(vec![Who::DeveloperStaff, Who::Confirmer]),
        "admin" => Some(vec![]),
        p if p.starts_with("rc-") => Some(vec![Who::Reviewer]),
        p => BUYERS[..n]
            .iter()
            .any(|(b, _, _)| *b == p)
            .then(|| vec![Who::Buyer]),
    }
}

/// Each person sees exactly the actions the table gives them from this status (a person who
/// may not see the contract gets 404), with the reasons the guards give.
async fn actions_are_the_tables(app: &TestApp, id: &str, status: ContractStatus, n: usize) {
    for person in PEOPLE {
        let t = app.token(person).await;
        let r = app.get(&format!("/api/v1/contracts/{id}"), Some(&t)).await;
        let Some(relations) = contract_relations(person, n) else {
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{person} on {status}");
            continue;
        };
        assert_eq!(r.status, StatusCode::OK, "{person}: {}", r.text);
        let shown: Vec<(String, bool, Option<String>)> = r.body["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["action"].as_str().unwrap().to_owned(),
                    a["enabled"].as_bool().unwrap(),
                    a["reason_code"].as_str().map(str::to_owned),
                )
            })
            .collect();
        let mut expected: Vec<&str> = Vec::new();
        for t in CONTRACT_TRANSITIONS {
            if t.from == Some(status)
                && t.who.is_person()
                && t.who.matches(&relations)
                && !expected.contains(&t.action.as_str())
            {
                expected.push(t.action.as_str());
            }
        }
        let names: Vec<&str> = shown.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(names, expected, "{person} on {status}");
        // The guards the test knows the answer of.
        for (action, enabled, reason) in &shown {
            let want_disabled: Option<&str> = match (status, action.as_str(), person) {
                (ContractStatus::BuyersSigning, "sign", "buyer-zhang") => Some("already_signed"),
                // Nobody here has opened the chapters yet.
                (ContractStatus::AwaitingBuyers | ContractStatus::BuyersSigning, "sign", _) => {
                    Some("reading_incomplete")
                }
                (ContractStatus::CancelRequested, "consent_cancellation", p)
                    if p.starts_with("buyer") =>
                {
                    Some("same_party")
                }
                (ContractStatus::CancelRequested, "approve_cancellation", _) => {
                    Some("consent_missing")
                }
                _ => None,
            };
            assert_eq!(
                (!*enabled).then(|| reason.clone().unwrap_or_default()),
                want_disabled.map(str::to_owned),
                "{person}: {action} on {status}"
            );
        }
    }
}

/// How many buyers a row's contract needs, so that its guards select it.
fn buyers_for(t: &virtual_window::domain::lifecycle::ContractTransition) -> usize {
    match (t.from, t.guards) {
        (Some(ContractStatus::AwaitingBuyers), g) if g.contains(&ContractGuard::LastToSign) => 1,
        (Some(ContractStatus::BuyersSigning), g)
            if g.contains(&ContractGuard::OthersStillToSign) =>
        {
            3
        }
        _ => 2,
    }
}

/// Every row of the contract table through the API, with its status and unit effect; every
/// status's missing rows refused; every person's actions as the table gives them.
async fn every_contract_row_through_the_api(db: Db) {
    // Sealing leaves the contract `sealed`, so the developer's own submission is a row to take.
    let Some(app) = spawn_app_with(db, |c| {
        c.workflow.submit_on_seal = false;
        // Each signature step takes a one-time code; this test takes hundreds.
        c.identity.codes_per_hour = 100_000;
    })
    .await
    else {
        return;
    };
    let mut checked: HashSet<ContractStatus> = HashSet::new();
    let mut rows = 0;
    for (i, t) in CONTRACT_TRANSITIONS.iter().enumerate() {
        if !t.who.is_person() && t.action != ContractAction::Expire {
            continue;
        }
        let n = buyers_for(t);
        let (id, before_unit) = match t.from {
            None => {
                let free_before = units(&app)
                    .await
                    .into_iter()
                    .filter(|u| u.status == UnitStatus::Available)
                    .count();
                let id = draft(&app, 2).await;
                let free_after = units(&app)
                    .await
                    .into_iter()
                    .filter(|u| u.status == UnitStatus::Available)
                    .count();
                assert_eq!(free_before, free_after + 1, "the draft took its unit");
                (id, UnitStatus::Available)
            }
            Some(from) => {
                let mut id = reach(&app, from, n).await;
                if t.action == ContractAction::ApproveCancellation {
                    // The other party consents first.
                    let r = perform(
                        &app,
                        &id,
                        ContractAction::ConsentCancellation,
                        Who::Confirmer,
                        "",
                    )
                    .await;
                    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
                }
                if checked.insert(from) {
                    actions_are_the_tables(&app, &id, from, n).await;
                    refuses_what_the_table_lacks(&app, &id, from).await;
                }
                let before = contract_status(&app, &id).await.1;
                if t.action == ContractAction::Expire {
                    assert!(expire_all(&app).await >= 1, "row {i}");
                } else {
                    let buyer = match (t.action, n) {
                        (ContractAction::Sign, 1) => "buyer-zhang",
                        // One of three signed: the second leaves the third to sign.
                        (ContractAction::Sign, 3) => "buyer-li",
                        (ContractAction::Sign, _) if from == ContractStatus::AwaitingBuyers => {
                            "buyer-zhang"
                        }
                        _ if t.action == ContractAction::ConsentCancellation
                            && t.who == Who::Buyer =>
                        {
                            // The buyers consent to a request by the developer.
                            id = reach(&app, ContractStatus::Filed, 2).await;
                            let r = perform(
                                &app,
                                &id,
                                ContractAction::RequestCancellation,
                                Who::Confirmer,
                                "",
                            )
                            .await;
                            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
                            "buyer-li"
                        }
                        _ => "buyer-li",
                    };
                    let r = perform(&app, &id, t.action, t.who, buyer).await;
                    assert_eq!(r.status, StatusCode::OK, "row {i} {:?}: {}", t, r.text);
                }
                (id, before)
            }
        };
        let (status, unit) = contract_status(&app, &id).await;
        assert_eq!(status, t.to, "row {i}: {t:?}");
        let want_unit = t.unit.map_or(before_unit, |(from, to)| {
            assert_eq!(before_unit, from, "row {i}: the unit before");
            to
        });
        assert_eq!(unit, want_unit, "row {i}: {t:?}");
        if checked.insert(status) {
            actions_are_the_tables(&app, &id, status, n).await;
            refuses_what_the_table_lacks(&app, &id, status).await;
        }
        rows += 1;
    }
    assert_eq!(
        checked.len(),
        ContractStatus::ALL.len(),
        "every status was reached and checked: {checked:?}"
    );
    // The scheduler expires only what the table lets it: nothing here is a draft any more.
    let before: Vec<(String, ContractStatus)> = app
        .services
        .store
        .list_contracts(&virtual_window::store::ContractQuery {
            scope: virtual_window::store::Scope::All,
            statuses: vec![],
            filter: Default::default(),
            order: Default::default(),
            after: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.status))
        .collect();
    expire_all(&app).await;
    for (id, status) in before {
        let now = contract_status(&app, &id).await.0;
        let expires = CONTRACT_TRANSITIONS
            .iter()
            .any(|t| t.from == Some(status) && t.action == ContractAction::Expire);
        assert!(now == status || expires, "{status} became {now}");
    }
    // The service's own submission after sealing, with the default configuration.
    let Some(app) = spawn_app_with(db, |c| c.identity.codes_per_hour = 100_000).await else {
        return;
    };
    let id = reach(&app, ContractStatus::BuyersSigned, 2).await;
    let r = perform(&app, &id, ContractAction::Seal, Who::Confirmer, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        contract_status(&app, &id).await,
        (ContractStatus::FilingReview, UnitStatus::Signed)
    );
    let system_row = CONTRACT_TRANSITIONS
        .iter()
        .find(|t| t.who == Who::System)
        .unwrap();
    assert_eq!(system_row.to, ContractStatus::FilingReview);
    assert!(rows >= CONTRACT_TRANSITIONS.len() - 1);
}

// --- registrations ---------------------------------------------------------------------------

async fn reg_state(app: &TestApp, id: &str) -> (RegistrationState, UnitStatus) {
    let s = &app.services.store;
    let r = s.registration(id).await.unwrap().unwrap();
    let c = s.contract(&r.contract_id).await.unwrap().unwrap();
    let u = s.unit(&c.unit_id).await.unwrap().unwrap();
    (r.state(), u.status)
}

async fn reg_footprint(app: &TestApp, id: &str) -> String {
    let r = app.services.store.registration(id).await.unwrap().unwrap();
    let audit = app
        .services
        .store
        .chained_audit_events(0, 1_000_000)
        .await
        .unwrap();
    format!(
        "{:?} {} {} {} {:?}",
        r.state(),
        r.updated_at,
        r.opinions.len(),
        r.materials,
        audit.iter().filter(|e| e.object_id == id).count()
    )
}

/// A material of buyer-zhang's library to hand in.
async fn material(app: &TestApp) -> String {
    let pdf = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
    let r = upload(app, "buyer-zhang", "id_card", "application/pdf", pdf).await;
    assert!(r.status.is_success(), "{}", r.text);
    r.body["sha256"].as_str().unwrap().to_owned()
}

/// Takes a registration action as the person the row names.
async fn reg_perform(app: &TestApp, id: &str, action: RegistrationAction, sha: &str) -> Reply {
    use RegistrationAction as A;
    let opinion = json!({"opinion": "符合登记条件。"});
    let items =
        json!({"items": [{"field": "id_card", "code": "missing", "message": "请补充身份证明。"}]});
    let note = json!({"reason": "法院协助执行通知"});
    match action {
        A::Apply | A::IssueCertificate | A::Lapse => unreachable!(),
        A::Accept => reg_post(app, "rc-intake", id, "accept", opinion).await,
        A::NotAccept => reg_post(app, "rc-intake", id, "not-accept", items).await,
        A::FirstReview => reg_post(app, "rc-first", id, "first-review", opinion).await,
        A::SecondReview => reg_post(app, "rc-second", id, "second-review", opinion).await,
        A::Record => reg_post(app, "rc-recorder", id, "record", opinion).await,
        A::Reject => reg_post(app, "rc-first", id, "reject", items).await,
        A::Withdraw => {
            reg_post(
                app,
                "buyer-zhang",
                id,
                "withdraw",
                json!({"reason": "不再办理"}),
            )
            .await
        }
        A::Requisition => reg_post(app, "rc-first", id, "requisition", items).await,
        A::HandIn => {
            reg_post(
                app,
                "buyer-zhang",
                id,
                "materials",
                json!({"materials": [sha]}),
            )
            .await
        }
        A::Suspend => reg_post(app, "rc-first", id, "suspend", note).await,
        A::Resume => reg_post(app, "rc-first", id, "resume", note).await,
        A::CancelEntry => {
            reg_post(
                app,
                "rc-recorder",
                id,
                "entry/cancel",
                json!({"reason": "双方共同申请", "basis": "joint_request", "material": sha}),
            )
            .await
        }
    }
}

/// The relations a demo person has to a case buyer-zhang applied for.
fn reg_relations(person: &str) -> Option<Vec<Who>> {
    Some(match person {
        "buyer-zhang" => vec![Who::Applicant],
        "rc-intake" => vec![Who::Reviewer],
        "rc-first" => vec![Who::Reviewer, Who::FirstReviewer],
        "rc-second" => vec![Who::Reviewer, Who::SecondReviewer],
        "rc-recorder" => vec![Who::Reviewer, Who::Recorder],
        "admin" => vec![],
        _ => return None,
    })
}

fn row_applies(
    t: &virtual_window::domain::lifecycle::RegistrationTransition,
    s: RegistrationState,
) -> bool {
    t.from == Some(s.status)
        && match t.hold {
            HoldIs::Any => true,
            HoldIs::None => s.hold.is_none(),
            HoldIs::Is(h) => s.hold == Some(h),
        }
        && t.entry.is_none_or(|e| s.entry == Some(e))
}

/// At a state: the actions each person sees, and every person action without a row refused.
async fn check_registration_state(app: &TestApp, id: &str, sha: &str) {
    let (state, _) = reg_state(app, id).await;
    for person in PEOPLE {
        let t = app.token(person).await;
        let r = app
            .get(&format!("/api/v1/registrations/{id}"), Some(&t))
            .await;
        let Some(relations) = reg_relations(person) else {
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{person}");
            continue;
        };
        assert_eq!(r.status, StatusCode::OK, "{person}: {}", r.text);
        let shown: Vec<&str> = r.body["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        let mut expected: Vec<&str> = Vec::new();
        for t in REGISTRATION_TRANSITIONS {
            if row_applies(t, state)
                && t.who.is_person()
                && t.who.matches(&relations)
                && !expected.contains(&t.action.as_str())
            {
                expected.push(t.action.as_str());
            }
        }
        assert_eq!(shown, expected, "{person} at {state:?}");
    }
    for action in RegistrationAction::ALL {
        if matches!(
            action,
            RegistrationAction::Apply
                | RegistrationAction::IssueCertificate
                | RegistrationAction::Lapse
        ) || REGISTRATION_TRANSITIONS
            .iter()
            .any(|t| t.action == *action && row_applies(t, state))
        {
            continue;
        }
        let before = reg_footprint(app, id).await;
        let r = reg_perform(app, id, *action, sha).await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "{action} at {state:?}: {}",
            r.text
        );
        assert!(
            ["wrong_status", "on_hold", "not_on_hold", "no_valid_entry"].contains(&r.code()),
            "{action} at {state:?}: {}",
            r.text
        );
        assert_eq!(
            before,
            reg_footprint(app, id).await,
            "{action} at {state:?}"
        );
    }
}

/// Every row of the registration table through the API (the holds and the register entry's end
/// included), with the state and unit effect it gives; at every state reached, the actions each
/// person sees and every missing row refused.
async fn every_registration_row_through_the_api(db: Db) {
    use RegistrationAction as A;
    let Some(app) = spawn_app_with(db, |c| {
        c.identity.codes_per_hour = 100_000;
        c.workflow.submit_on_seal = false;
    })
    .await
    else {
        return;
    };
    let sha = material(&app).await;
    let filed = reach(&app, ContractStatus::Filed, 2).await;
    let mut taken: BTreeSet<usize> = BTreeSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let index_of = |action: RegistrationAction, s: RegistrationState| {
        REGISTRATION_TRANSITIONS
            .iter()
            .position(|t| t.action == action && row_applies(t, s))
    };
    // Each script starts with an application of the filed contract.
    let scripts: Vec<Vec<RegistrationAction>> = vec![
        vec![A::HandIn, A::Withdraw],
        vec![A::NotAccept],
        vec![A::Accept, A::Withdraw],
        vec![A::Accept, A::Reject],
        vec![A::Accept, A::FirstReview, A::Withdraw],
        vec![A::Accept, A::FirstReview, A::Reject],
        vec![A::Accept, A::FirstReview, A::SecondReview, A::Withdraw],
        vec![A::Accept, A::FirstReview, A::SecondReview, A::Reject],
        vec![
            A::Accept,
            A::HandIn,
            A::Requisition,
            A::HandIn,
            A::Suspend,
            A::Resume,
            A::FirstReview,
            A::HandIn,
            A::Requisition,
            A::HandIn,
            A::Suspend,
            A::Resume,
            A::SecondReview,
            A::HandIn,
            A::Requisition,
            A::HandIn,
            A::Suspend,
            A::Resume,
            A::Record,
            A::CancelEntry,
        ],
    ];
    for script in scripts {
        let r = apply_registration(&app, &filed, "buyer-zhang").await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        taken.insert(
            REGISTRATION_TRANSITIONS
                .iter()
                .position(|t| t.action == A::Apply)
                .unwrap(),
        );
        let id = r.body["id"].as_str().unwrap().to_owned();
        for action in script {
            let (before, unit_before) = reg_state(&app, &id).await;
            if seen.insert(format!("{before:?}")) {
                check_registration_state(&app, &id, &sha).await;
            }
            let i = index_of(action, before).unwrap_or_else(|| panic!("{action} at {before:?}"));
            let row = &REGISTRATION_TRANSITIONS[i];
            let r = reg_perform(&app, &id, action, &sha).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{action} at {before:?}: {}",
                r.text
            );
            taken.insert(i);
            let (after, unit) = reg_state(&app, &id).await;
            if action == A::Record {
                // Recording is followed at once by the service's own row: the certificate.
                let issue = index_of(A::IssueCertificate, row.next(Some(before))).unwrap();
                taken.insert(issue);
                let recorded = row.next(Some(before));
                assert_eq!(recorded.status, RegistrationStatus::Recorded);
                let issued = REGISTRATION_TRANSITIONS[issue].next(Some(recorded));
                assert_eq!(after, issued);
                assert_eq!(unit, UnitStatus::AdvanceNoticeRegistered);
            } else {
                assert_eq!(after, row.next(Some(before)), "{action} at {before:?}");
                let want = row.unit.map_or(unit_before, |(from, to)| {
                    assert_eq!(unit_before, from);
                    to
                });
                assert_eq!(unit, want, "{action} at {before:?}");
            }
            if seen.insert(format!("{after:?}")) {
                check_registration_state(&app, &id, &sha).await;
            }
        }
    }
    // The scheduler's row: a second filed contract's advance notice lapses.
    let filed2 = reach(&app, ContractStatus::Filed, 2).await;
    let r = apply_registration(&app, &filed2, "buyer-zhang").await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    for action in [A::Accept, A::FirstReview, A::SecondReview, A::Record] {
        let r = reg_perform(&app, &id, action, &sha).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let (before, _) = reg_state(&app, &id).await;
    let later = time::macros::datetime!(2030-01-01 00:00 UTC);
    let run = virtual_window::services::scheduler::run_once(&app.services, later)
        .await
        .unwrap();
    assert_eq!(run.lapsed_advance_notices, 1);
    let i = index_of(A::Lapse, before).unwrap();
    taken.insert(i);
    assert_eq!(
        reg_state(&app, &id).await,
        (
            REGISTRATION_TRANSITIONS[i].next(Some(before)),
            UnitStatus::Filed
        )
    );
    let missing: Vec<String> = (0..REGISTRATION_TRANSITIONS.len())
        .filter(|i| !taken.contains(i))
        .map(|i| format!("{:?}", REGISTRATION_TRANSITIONS[i]))
        .collect();
    assert!(missing.is_empty(), "rows not taken: {missing:#?}");
}

crate::on_both_databases!(
    every_contract_row_through_the_api,
    every_registration_row_through_the_api
);

// --- outside the API --------------------------------------------------------------------------

/// No status of a case, a unit, a permit, a certificate or a verification is spelled out in the
/// code outside `domain` (and the migrations): the rest use the enums.
#[test]
fn no_status_literal_outside_the_domain() {
    use virtual_window::domain::identity::VerificationStatus;
    use virtual_window::domain::lifecycle::{CertificateStatus, EntryStatus, Hold, PermitStatus};
    let mut names: BTreeSet<&str> = BTreeSet::new();
    names.extend(ContractStatus::ALL.iter().map(|s| s.as_str()));
    names.extend(RegistrationStatus::ALL.iter().map(|s| s.as_str()));
    names.extend(Hold::ALL.iter().map(|s| s.as_str()));
    names.extend(EntryStatus::ALL.iter().map(|s| s.as_str()));
    names.extend(UnitStatus::ALL.iter().map(|s| s.as_str()));
    names.extend(PermitStatus::ALL.iter().map(|s| s.as_str()));
    names.extend(CertificateStatus::ALL.iter().map(|s| s.as_str()));
    names.extend(VerificationStatus::ALL.iter().map(|s| s.as_str()));
    // The same words used for something else than a status: (file, literal, what it is).
    let not_statuses: &[(&str, &str)] = &[
        ("src/services/inventory.rs", "expired"), // a field rule: the land term is over
        ("src/services/inventory.rs", "available"), // a count in an audit entry
        ("src/services/pki.rs", "superseded"),    // an RFC 5280 revocation reason
        ("src/services/identity.rs", "cancelled"), // a verification's failure reason code
        ("src/pki/validate.rs", "expired"),       // a certificate validation problem code
        ("src/pki/validate.rs", "revoked"),       // a certificate validation problem code
    ];
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("domain") {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let file = p.to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for name in &names {
                    for quoted in [format!("\"{name}\""), format!("'{name}'")] {
                        if line.contains(&quoted) && !not_statuses.contains(&(file.as_str(), name))
                        {
                            found.push(format!("{file}:{}: {}", n + 1, line.trim()));
                        }
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "status literals outside domain:\n{}",
        found.join("\n")
    );
}

/// docs/lifecycles.md holds the diagrams drawn from the tables; a change to a table changes
/// them (`UPDATE_SNAPSHOTS=1` rewrites the generated part).
#[test]
fn the_diagrams_in_docs_are_drawn_from_the_tables() {
    let path = "docs/lifecycles.md";
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let (begin, end) = (
        "<!-- generated from the tables: begin -->\n",
        "<!-- generated from the tables: end -->",
    );
    let drawn = virtual_window::domain::lifecycle::diagrams();
    let (Some(a), Some(b)) = (doc.find(begin), doc.find(end)) else {
        panic!("{path} has no generated section");
    };
    let current = &doc[a + begin.len()..b];
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        let updated = format!("{}{begin}{drawn}{}", &doc[..a], &doc[b..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert!(
        current == drawn,
        "{path} differs from the tables; run `UPDATE_SNAPSHOTS=1 cargo test diagrams` and review"
    );
}
