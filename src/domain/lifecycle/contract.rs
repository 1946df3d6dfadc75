//! The contract's life cycle (DOMAIN.md): one table from the draft to the filing and its
//! cancellation.

use super::{ActionView, Refusal, RefusalKind, UnitStatus, Who, named_enum};

named_enum! {
    /// Where a contract stands.
    ContractStatus {
        Draft => ("draft", "草稿"),
        AwaitingBuyers => ("awaiting_buyers", "待买受人签署"),
        BuyersSigning => ("buyers_signing", "买受人签署中"),
        BuyersSigned => ("buyers_signed", "买受人已签署"),
        Sealed => ("sealed", "已盖章"),
        FilingReview => ("filing_review", "备案审核中"),
        Returned => ("returned", "备案退回"),
        Filed => ("filed", "已备案"),
        CancelRequested => ("cancel_requested", "注销备案申请中"),
        Cancelled => ("cancelled", "已注销"),
        Withdrawn => ("withdrawn", "已撤回"),
        Expired => ("expired", "已过期"),
    }
}

impl ContractStatus {
    /// Statuses in which the contract holds its unit.
    pub fn is_live(self) -> bool {
        !matches!(
            self,
            ContractStatus::Cancelled | ContractStatus::Withdrawn | ContractStatus::Expired
        )
    }

    /// Where the contract table leaves the unit while the contract is in this status (a filed
    /// contract's unit may go on to `advance_notice_registered` through its registration).
    pub fn unit_status(self) -> UnitStatus {
        match self {
            ContractStatus::Draft
            | ContractStatus::AwaitingBuyers
            | ContractStatus::BuyersSigning
            | ContractStatus::BuyersSigned => UnitStatus::Locked,
            ContractStatus::Sealed | ContractStatus::FilingReview | ContractStatus::Returned => {
                UnitStatus::Signed
            }
            ContractStatus::Filed | ContractStatus::CancelRequested => UnitStatus::Filed,
            ContractStatus::Cancelled | ContractStatus::Withdrawn | ContractStatus::Expired => {
                UnitStatus::Available
            }
        }
    }

    /// Statuses reached only after every buyer signed (the signatures are the contract).
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            ContractStatus::BuyersSigned
                | ContractStatus::Sealed
                | ContractStatus::FilingReview
                | ContractStatus::Filed
                | ContractStatus::CancelRequested
        )
    }
}

named_enum! {
    /// What can be done to a contract.
    ContractAction {
        Create => ("create", "起草合同"),
        Edit => ("edit", "修改草稿"),
        Confirm => ("confirm", "确认合同"),
        Withdraw => ("withdraw", "撤回合同"),
        Recall => ("recall", "退回修改"),
        Sign => ("sign", "签署合同"),
        Seal => ("seal", "加盖合同专用章"),
        SubmitFiling => ("submit_filing", "提交备案"),
        ApproveFiling => ("approve_filing", "准予备案"),
        ReturnFiling => ("return_filing", "退回备案"),
        Reopen => ("reopen", "重新起草"),
        RequestCancellation => ("request_cancellation", "申请注销备案"),
        ConsentCancellation => ("consent_cancellation", "同意注销备案"),
        ApproveCancellation => ("approve_cancellation", "准予注销备案"),
        Expire => ("expire", "过期失效"),
    }
}

/// A condition a row needs besides its status and its person. Each has its refusal code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContractGuard {
    /// The confirmer is not the drafter (four eyes): `four_eyes`.
    NotTheDrafter,
    /// This buyer has not signed this version yet: `already_signed`.
    NotSignedYet,
    /// This buyer opened every chapter of this version, long enough ago: `reading_incomplete`.
    ReadInFull,
    /// Other buyers still have to sign after this one (selects the row, never refuses).
    OthersStillToSign,
    /// This buyer is the last to sign (selects the row, never refuses).
    LastToSign,
    /// The reviewer's ten checks pass: `checks_failed`.
    ChecksPass,
    /// The unit is not seized, under objection or on hold: `unit_frozen`.
    UnitNotFrozen,
    /// The consenting party is not the one who asked: `same_party`.
    OtherParty,
    /// The other party consented, or a court document takes its place: `consent_missing`.
    ConsentOrCourtDocument,
    /// No advance-notice registration of the contract is alive: `advance_notice_live`.
    NoLiveAdvanceNotice,
    /// The draft's time ran out (the scheduler's own condition): `not_expired`.
    PastExpiry,
}

impl ContractGuard {
    pub fn describe(self) -> &'static str {
        match self {
            ContractGuard::NotTheDrafter => "确认人不是起草人",
            ContractGuard::NotSignedYet => "本人尚未签署本版本",
            ContractGuard::ReadInFull => "本人已阅读本版本的全部章节",
            ContractGuard::OthersStillToSign => "还有其他买受人未签署",
            ContractGuard::LastToSign => "最后一位买受人签署",
            ContractGuard::ChecksPass => "备案审核十项检查全部通过",
            ContractGuard::UnitNotFrozen => "房屋未被查封、异议或暂停销售",
            ContractGuard::OtherParty => "由另一方当事人同意",
            ContractGuard::ConsentOrCourtDocument => "另一方已同意或附有法院文书",
            ContractGuard::NoLiveAdvanceNotice => "没有有效或在办的预告登记",
            ContractGuard::PastExpiry => "超过草稿有效期",
        }
    }

    /// Whether the guard holds for `facts`; the refusal when it does not.
    pub fn check(self, f: &ContractFacts) -> Result<(), Refusal> {
        use RefusalKind::*;
        let refuse = |code, kind, msg: &str| Err(Refusal::new(code, kind, msg));
        match self {
            ContractGuard::NotTheDrafter if f.caller_is_drafter => {
                refuse("four_eyes", Forbidden, "合同的起草人与确认人不能是同一人。")
            }
            ContractGuard::NotSignedYet if f.caller_has_signed => {
                refuse("already_signed", Conflict, "您已签署过本合同。")
            }
            ContractGuard::ReadInFull if f.chapters_unread > 0 => Err(Refusal::new(
                "reading_incomplete",
                Conflict,
                format!(
                    "请先阅读合同的全部章节（还有 {} 章未打开）再签署。",
                    f.chapters_unread
                ),
            )),
            ContractGuard::ReadInFull if f.reading_seconds_left > 0 => Err(Refusal::new(
                "reading_incomplete",
                Conflict,
                format!("请仔细阅读合同，{} 秒后可以签署。", f.reading_seconds_left),
            )),
            ContractGuard::OthersStillToSign if f.buyers_left <= 1 => {
                refuse("last_to_sign", Conflict, "您是最后一位签署的买受人。")
            }
            ContractGuard::LastToSign if f.buyers_left != 1 => {
                refuse("others_to_sign", Conflict, "还有其他买受人尚未签署。")
            }
            ContractGuard::ChecksPass if f.checks_failed => refuse(
                "checks_failed",
                Invalid,
                "合同未通过备案审核的自动检查，请逐项查看检查结果。",
            ),
            ContractGuard::UnitNotFrozen if f.unit_frozen => refuse(
                "unit_frozen",
                Conflict,
                "该房屋已被查封、存在异议或被暂停销售，不能办理。",
            ),
            ContractGuard::OtherParty if f.caller_requested_cancellation => {
                refuse("same_party", Forbidden, "注销申请须由另一方当事人同意。")
            }
            ContractGuard::ConsentOrCourtDocument if !f.consent_or_court_document => refuse(
                "consent_missing",
                Conflict,
                "另一方当事人尚未同意注销（也未附法院文书），不能审批。",
            ),
            ContractGuard::NoLiveAdvanceNotice if f.live_advance_notice => refuse(
                "advance_notice_live",
                Conflict,
                "该合同有正在办理或有效的预告登记，须先注销预告登记。",
            ),
            ContractGuard::PastExpiry if !f.past_expiry => {
                refuse("not_expired", Conflict, "草稿尚未过期。")
            }
            _ => Ok(()),
        }
    }

    /// Guards that only choose between rows of one action.
    fn selects_row(self) -> bool {
        matches!(
            self,
            ContractGuard::OthersStillToSign | ContractGuard::LastToSign
        )
    }
}

/// What the guards are decided on, gathered by the services for one caller and one contract.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContractFacts {
    pub caller_is_drafter: bool,
    pub caller_has_signed: bool,
    /// Chapters of the current version this buyer has not opened, and the seconds of reading
    /// time still to pass (both 0 once they have read it in full).
    pub chapters_unread: usize,
    pub reading_seconds_left: u64,
    /// Buyers who have not signed the current version.
    pub buyers_left: usize,
    /// The checks ran and failed (at submission, or just now).
    pub checks_failed: bool,
    pub unit_frozen: bool,
    /// The caller is on the side that asked for the cancellation.
    pub caller_requested_cancellation: bool,
    pub consent_or_court_document: bool,
    pub live_advance_notice: bool,
    pub past_expiry: bool,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct ContractTransition {
    /// `None`: the contract does not exist yet.
    pub from: Option<ContractStatus>,
    pub action: ContractAction,
    pub who: Who,
    pub guards: &'static [ContractGuard],
    pub to: ContractStatus,
    /// The unit's status before and after, when it moves.
    pub unit: Option<(UnitStatus, UnitStatus)>,
}

use ContractAction as A;
use ContractGuard as G;
use ContractStatus as S;
use UnitStatus as U;

const fn row(
    from: Option<S>,
    action: A,
    who: Who,
    guards: &'static [G],
    to: S,
    unit: Option<(U, U)>,
) -> ContractTransition {
    ContractTransition {
        from,
        action,
        who,
        guards,
        to,
        unit,
    }
}

/// The contract's table. Every status change of a contract is one of these rows.
pub const CONTRACT_TRANSITIONS: &[ContractTransition] = &[
    row(
        None,
        A::Create,
        Who::Drafter,
        &[G::UnitNotFrozen],
        S::Draft,
        Some((U::Available, U::Locked)),
    ),
    row(Some(S::Draft), A::Edit, Who::Drafter, &[], S::Draft, None),
    row(
        Some(S::Draft),
        A::Confirm,
        Who::Confirmer,
        &[G::NotTheDrafter],
        S::AwaitingBuyers,
        None,
    ),
    row(
        Some(S::Draft),
        A::Withdraw,
        Who::DeveloperStaff,
        &[],
        S::Withdrawn,
        Some((U::Locked, U::Available)),
    ),
    row(
        Some(S::AwaitingBuyers),
        A::Withdraw,
        Who::DeveloperStaff,
        &[],
        S::Withdrawn,
        Some((U::Locked, U::Available)),
    ),
    row(
        Some(S::AwaitingBuyers),
        A::Recall,
        Who::Buyer,
        &[],
        S::Draft,
        None,
    ),
    row(
        Some(S::AwaitingBuyers),
        A::Recall,
        Who::DeveloperStaff,
        &[],
        S::Draft,
        None,
    ),
    row(
        Some(S::BuyersSigning),
        A::Recall,
        Who::Buyer,
        &[],
        S::Draft,
        None,
    ),
    row(
        Some(S::BuyersSigning),
        A::Recall,
        Who::DeveloperStaff,
        &[],
        S::Draft,
        None,
    ),
    row(
        Some(S::AwaitingBuyers),
        A::Sign,
        Who::Buyer,
        &[G::NotSignedYet, G::ReadInFull, G::OthersStillToSign],
        S::BuyersSigning,
        None,
    ),
    row(
        Some(S::AwaitingBuyers),
        A::Sign,
        Who::Buyer,
        &[G::NotSignedYet, G::ReadInFull, G::LastToSign],
        S::BuyersSigned,
        None,
    ),
    row(
        Some(S::BuyersSigning),
        A::Sign,
        Who::Buyer,
        &[G::NotSignedYet, G::ReadInFull, G::OthersStillToSign],
        S::BuyersSigning,
        None,
    ),
    row(
        Some(S::BuyersSigning),
        A::Sign,
        Who::Buyer,
        &[G::NotSignedYet, G::ReadInFull, G::LastToSign],
        S::BuyersSigned,
        None,
    ),
    row(
        Some(S::BuyersSigned),
        A::Seal,
        Who::Confirmer,
        &[G::UnitNotFrozen],
        S::Sealed,
        Some((U::Locked, U::Signed)),
    ),
    row(
        Some(S::Sealed),
        A::SubmitFiling,
        Who::System,
        &[],
        S::FilingReview,
        None,
    ),
    row(
        Some(S::Sealed),
        A::SubmitFiling,
        Who::DeveloperStaff,
        &[],
        S::FilingReview,
        None,
    ),
    row(
        Some(S::FilingReview),
        A::ApproveFiling,
        Who::Reviewer,
        // A frozen unit fails check 2, so the checks refuse it with their fields.
        &[G::ChecksPass],
        S::Filed,
        Some((U::Signed, U::Filed)),
    ),
    row(
        Some(S::FilingReview),
        A::ReturnFiling,
        Who::Reviewer,
        &[],
        S::Returned,
        None,
    ),
    row(
        Some(S::Returned),
        A::Reopen,
        Who::DeveloperStaff,
        &[],
        S::Draft,
        Some((U::Signed, U::Locked)),
    ),
    row(
        Some(S::Filed),
        A::RequestCancellation,
        Who::Buyer,
        &[],
        S::CancelRequested,
        None,
    ),
    row(
        Some(S::Filed),
        A::RequestCancellation,
        Who::Confirmer,
        &[],
        S::CancelRequested,
        None,
    ),
    row(
        Some(S::CancelRequested),
        A::ConsentCancellation,
        Who::Buyer,
        &[G::OtherParty],
        S::CancelRequested,
        None,
    ),
    row(
        Some(S::CancelRequested),
        A::ConsentCancellation,
        Who::Confirmer,
        &[G::OtherParty],
        S::CancelRequested,
        None,
    ),
    row(
        Some(S::CancelRequested),
        A::ApproveCancellation,
        Who::Reviewer,
        &[G::ConsentOrCourtDocument, G::NoLiveAdvanceNotice],
        S::Cancelled,
        Some((U::Filed, U::Available)),
    ),
    row(
        Some(S::Draft),
        A::Expire,
        Who::Scheduler,
        &[G::PastExpiry],
        S::Expired,
        Some((U::Locked, U::Available)),
    ),
    row(
        Some(S::AwaitingBuyers),
        A::Expire,
        Who::Scheduler,
        &[G::PastExpiry],
        S::Expired,
        Some((U::Locked, U::Available)),
    ),
];

/// The row a caller holding `relations` takes for `action` from `status`, or why none.
///
/// The order of the answers is the order of the questions: does the status allow the action at
/// all (`wrong_status`), is it this person's to take (`not_your_step`), do the guards hold (each
/// its own code).
pub fn decide(
    status: Option<ContractStatus>,
    action: ContractAction,
    relations: &[Who],
    facts: &ContractFacts,
) -> Result<&'static ContractTransition, Refusal> {
    let rows: Vec<&'static ContractTransition> = CONTRACT_TRANSITIONS
        .iter()
        .filter(|t| t.from == status && t.action == action)
        .collect();
    if rows.is_empty() {
        let label = status.map_or("尚未起草", |s| s.label());
        return Err(Refusal::wrong_status(label, action.label()));
    }
    let mine: Vec<&&ContractTransition> =
        rows.iter().filter(|t| t.who.matches(relations)).collect();
    if mine.is_empty() {
        let who: Vec<Who> = rows
            .iter()
            .map(|t| t.who)
            .filter(|w| w.is_person())
            .collect();
        return Err(Refusal::not_yours(&who, action.label()));
    }
    let mut first_refusal = None;
    for t in &mine {
        // Guards that refuse come first; the row selectors decide between rows that remain.
        let refusal = t
            .guards
            .iter()
            .filter(|g| !g.selects_row())
            .chain(t.guards.iter().filter(|g| g.selects_row()))
            .find_map(|g| g.check(facts).err());
        match refusal {
            None => return Ok(t),
            Some(r) if first_refusal.is_none() => first_refusal = Some(r),
            Some(_) => {}
        }
    }
    Err(first_refusal.expect("at least one row was tried"))
}

/// The actions a person holding `relations` sees for a contract in `status`: every action the
/// table gives them from it, enabled when its guards hold, otherwise with the reason.
pub fn actions(
    status: ContractStatus,
    relations: &[Who],
    facts: &ContractFacts,
) -> Vec<ActionView> {
    let mut seen: Vec<ContractAction> = Vec::new();
    let mut out = Vec::new();
    for t in CONTRACT_TRANSITIONS {
        if t.from != Some(status) || !t.who.is_person() || !t.who.matches(relations) {
            continue;
        }
        if seen.contains(&t.action) {
            continue;
        }
        seen.push(t.action);
        let refusal = decide(Some(status), t.action, relations, facts).err();
        out.push(ActionView::new(
            t.action.as_str(),
            t.action.label(),
            refusal,
        ));
    }
    out
}

pub(crate) fn diagram() -> String {
    let rows: Vec<(String, String, String)> = CONTRACT_TRANSITIONS
        .iter()
        .map(|t| {
            let guards: Vec<&str> = t.guards.iter().map(|g| g.describe()).collect();
            let mut label = format!("{}（{}）", t.action.label(), t.who.label());
            if !guards.is_empty() {
                label.push_str(&format!(" [{}]", guards.join("；")));
            }
            (
                t.from.map_or("[*]".to_owned(), |s| s.as_str().to_owned()),
                t.to.as_str().to_owned(),
                label,
            )
        })
        .collect();
    super::mermaid("合同", &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ContractFacts {
        ContractFacts {
            buyers_left: 2,
            past_expiry: true,
            ..Default::default()
        }
    }

    #[test]
    fn names_round_trip_and_every_status_is_reached() {
        for s in ContractStatus::ALL {
            assert_eq!(s.as_str().parse::<ContractStatus>().unwrap(), *s);
            assert!(
                CONTRACT_TRANSITIONS.iter().any(|t| t.to == *s),
                "{s} is never reached"
            );
        }
        assert!("nonsense".parse::<ContractStatus>().is_err());
    }

    #[test]
    fn unit_status_agrees_with_the_table() {
        for t in CONTRACT_TRANSITIONS {
            match (t.from, t.unit) {
                (Some(f), Some((a, b))) => {
                    assert_eq!(f.unit_status(), a, "{:?}", t.action);
                    assert_eq!(t.to.unit_status(), b, "{:?}", t.action);
                }
                (Some(f), None) => {
                    assert_eq!(f.unit_status(), t.to.unit_status(), "{:?}", t.action)
                }
                (None, Some((_, b))) => assert_eq!(t.to.unit_status(), b),
                (None, None) => {}
            }
        }
    }

    #[test]
    fn the_answers_come_in_order() {
        let drafter = [Who::Drafter, Who::DeveloperStaff];
        let confirmer = [Who::Confirmer, Who::DeveloperStaff];
        let r = decide(Some(S::Filed), A::Confirm, &confirmer, &facts()).unwrap_err();
        assert_eq!(r.code, "wrong_status");
        let r = decide(Some(S::Draft), A::Confirm, &drafter, &facts()).unwrap_err();
        assert_eq!(r.code, "not_your_step");
        let f = ContractFacts {
            caller_is_drafter: true,
            ..facts()
        };
        let r = decide(Some(S::Draft), A::Confirm, &confirmer, &f).unwrap_err();
        assert_eq!(r.code, "four_eyes");
        let t = decide(Some(S::Draft), A::Confirm, &confirmer, &facts()).unwrap();
        assert_eq!(t.to, S::AwaitingBuyers);
    }

    #[test]
    fn the_last_buyer_completes_the_signing() {
        let buyer = [Who::Buyer];
        let t = decide(Some(S::AwaitingBuyers), A::Sign, &buyer, &facts()).unwrap();
        assert_eq!(t.to, S::BuyersSigning);
        let last = ContractFacts {
            buyers_left: 1,
            ..facts()
        };
        let t = decide(Some(S::BuyersSigning), A::Sign, &buyer, &last).unwrap();
        assert_eq!(t.to, S::BuyersSigned);
        let signed = ContractFacts {
            caller_has_signed: true,
            ..facts()
        };
        let r = decide(Some(S::BuyersSigning), A::Sign, &buyer, &signed).unwrap_err();
        assert_eq!(r.code, "already_signed");
    }

    #[test]
    fn actions_show_what_the_table_gives_with_reasons() {
        let f = ContractFacts {
            caller_is_drafter: true,
            ..facts()
        };
        let a = actions(
            S::Draft,
            &[Who::Confirmer, Who::Drafter, Who::DeveloperStaff],
            &f,
        );
        let names: Vec<&str> = a.iter().map(|x| x.action).collect();
        assert_eq!(names, ["edit", "confirm", "withdraw"]);
        let confirm = &a[1];
        assert!(!confirm.enabled);
        assert_eq!(confirm.reason_code, Some("four_eyes"));
        // Nobody sees the scheduler's rows.
        assert!(actions(S::Draft, &[], &facts()).is_empty());
    }
}
