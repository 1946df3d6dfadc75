//! The registration case's life cycle (advance-notice registration, 预告登记): the path from the
//! application to the certificate by four different people, its side exits, the holds a case
//! can be put on at its step (requisition 补正, suspension), and the register entry's own life
//! after the certificate.

use super::{ActionView, Refusal, RefusalKind, UnitStatus, Who, named_enum};

named_enum! {
    /// Where a registration case stands.
    RegistrationStatus {
        Submitted => ("submitted", "已提交"),
        Accepted => ("accepted", "已受理"),
        FirstReviewed => ("first_reviewed", "已初审"),
        SecondReviewed => ("second_reviewed", "已复审"),
        Recorded => ("recorded", "已登簿"),
        CertificateIssued => ("certificate_issued", "已出具证明"),
        NotAccepted => ("not_accepted", "不予受理"),
        Rejected => ("rejected", "不予登记"),
        Withdrawn => ("withdrawn", "已撤回"),
    }
}

impl RegistrationStatus {
    /// A case that has ended without a register entry frees its contract for a new application.
    pub fn is_refused_or_withdrawn(self) -> bool {
        matches!(
            self,
            RegistrationStatus::NotAccepted
                | RegistrationStatus::Rejected
                | RegistrationStatus::Withdrawn
        )
    }
}

named_enum! {
    /// A hold keeps the case at its step until it is lifted.
    Hold {
        Requisitioned => ("requisitioned", "待补正"),
        Suspended => ("suspended", "已中止"),
    }
}

named_enum! {
    /// The register entry (登记簿) once recorded.
    EntryStatus {
        Valid => ("valid", "有效"),
        Converted => ("converted", "已转本登记"),
        Lapsed => ("lapsed", "已失效"),
        Cancelled => ("cancelled", "已注销"),
    }
}

named_enum! {
    /// What can be done to a registration case.
    RegistrationAction {
        Apply => ("apply", "申请预告登记"),
        Accept => ("accept", "受理"),
        NotAccept => ("not_accept", "不予受理"),
        FirstReview => ("first_review", "初审"),
        SecondReview => ("second_review", "复审"),
        Record => ("record", "登簿"),
        IssueCertificate => ("issue_certificate", "出具登记证明"),
        Reject => ("reject", "不予登记"),
        Withdraw => ("withdraw", "撤回申请"),
        Requisition => ("requisition", "要求补正"),
        HandIn => ("hand_in", "提交材料"),
        Suspend => ("suspend", "中止办理"),
        Resume => ("resume", "恢复办理"),
        CancelEntry => ("cancel_entry", "注销预告登记"),
        Lapse => ("lapse", "预告登记失效"),
    }
}

/// A case's whole state: its step, a hold on it, and its register entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationState {
    pub status: RegistrationStatus,
    pub hold: Option<Hold>,
    pub entry: Option<EntryStatus>,
}

impl RegistrationState {
    pub fn label(&self) -> String {
        let mut s = self.status.label().to_owned();
        if let Some(h) = self.hold {
            s.push_str(&format!("（{}）", h.label()));
        }
        if let Some(e) = self.entry {
            s.push_str(&format!("（预告登记{}）", e.label()));
        }
        s
    }
}

/// A condition a row needs besides its state and its person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationGuard {
    /// The same person never takes two steps of one case: `four_eyes`.
    NotTakenPart,
    /// The unit is not seized, under objection or on hold: `unit_frozen`.
    UnitNotFrozen,
    /// The contract is filed (for a new application): `contract_not_filed`.
    ContractFiled,
    /// The advance notice's legal period is over (the scheduler's own condition).
    PastLapseDate,
}

impl RegistrationGuard {
    pub fn describe(self) -> &'static str {
        match self {
            RegistrationGuard::NotTakenPart => "未办理过本案其他步骤",
            RegistrationGuard::UnitNotFrozen => "房屋未被查封、异议或暂停销售",
            RegistrationGuard::ContractFiled => "合同已备案",
            RegistrationGuard::PastLapseDate => "超过法定期间",
        }
    }

    pub fn check(self, f: &RegistrationFacts) -> Result<(), Refusal> {
        use RefusalKind::*;
        match self {
            RegistrationGuard::NotTakenPart if f.caller_took_part => Err(Refusal::new(
                "four_eyes",
                Forbidden,
                "同一人不能办理同一案件的两个步骤。",
            )),
            RegistrationGuard::UnitNotFrozen if f.unit_frozen => Err(Refusal::new(
                "unit_frozen",
                Conflict,
                "该房屋已被查封、存在异议或被暂停销售，不能办理。",
            )),
            RegistrationGuard::ContractFiled if !f.contract_filed => Err(Refusal::new(
                "contract_not_filed",
                Conflict,
                "合同备案后才能申请预告登记。",
            )),
            RegistrationGuard::PastLapseDate if !f.past_lapse_date => Err(Refusal::new(
                "not_lapsed",
                Conflict,
                "预告登记尚未届满失效期间。",
            )),
            _ => Ok(()),
        }
    }
}

/// What the guards are decided on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistrationFacts {
    pub caller_took_part: bool,
    pub unit_frozen: bool,
    pub contract_filed: bool,
    pub past_lapse_date: bool,
}

/// Which holds a row applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldIs {
    None,
    Is(Hold),
    Any,
}

impl HoldIs {
    fn allows(self, h: Option<Hold>) -> bool {
        match self {
            HoldIs::Any => true,
            HoldIs::None => h.is_none(),
            HoldIs::Is(x) => h == Some(x),
        }
    }
}

/// One row: from (status, hold, entry) by an action to (status, hold, entry).
#[derive(Clone, Copy, Debug)]
pub struct RegistrationTransition {
    /// `None`: the case does not exist yet.
    pub from: Option<RegistrationStatus>,
    pub hold: HoldIs,
    /// The register entry it needs (`None`: no condition).
    pub entry: Option<EntryStatus>,
    pub action: RegistrationAction,
    pub who: Who,
    pub guards: &'static [RegistrationGuard],
    pub to: RegistrationStatus,
    /// The hold afterwards: `HoldIs::Any` keeps it, `None` lifts it, `Is` puts it on.
    pub hold_to: HoldIs,
    pub entry_to: Option<EntryStatus>,
    pub unit: Option<(UnitStatus, UnitStatus)>,
}

use HoldIs as H;
use RegistrationAction as A;
use RegistrationGuard as G;
use RegistrationStatus as S;
use UnitStatus as U;

/// A step along the path.
const fn step(
    from: S,
    action: A,
    who: Who,
    guards: &'static [G],
    to: S,
    unit: Option<(U, U)>,
) -> RegistrationTransition {
    RegistrationTransition {
        from: Some(from),
        hold: H::None,
        entry: None,
        action,
        who,
        guards,
        to,
        hold_to: H::None,
        entry_to: None,
        unit,
    }
}

/// A hold put on or lifted at the same step.
const fn holding(from: S, hold: H, action: A, who: Who, hold_to: H) -> RegistrationTransition {
    RegistrationTransition {
        from: Some(from),
        hold,
        entry: None,
        action,
        who,
        guards: &[],
        to: from,
        hold_to,
        entry_to: None,
        unit: None,
    }
}

/// An exit off the path, whatever the hold.
const fn exit(from: S, action: A, who: Who, to: S) -> RegistrationTransition {
    RegistrationTransition {
        from: Some(from),
        hold: H::Any,
        entry: None,
        action,
        who,
        guards: &[],
        to,
        hold_to: H::None,
        entry_to: None,
        unit: None,
    }
}

/// The register entry's end.
const fn entry_end(
    action: A,
    who: Who,
    guards: &'static [G],
    to: EntryStatus,
) -> RegistrationTransition {
    RegistrationTransition {
        from: Some(S::CertificateIssued),
        hold: H::None,
        entry: Some(EntryStatus::Valid),
        action,
        who,
        guards,
        to: S::CertificateIssued,
        hold_to: H::None,
        entry_to: Some(to),
        unit: Some((U::AdvanceNoticeRegistered, U::Filed)),
    }
}

/// The registration case's table.
pub const REGISTRATION_TRANSITIONS: &[RegistrationTransition] = &[
    RegistrationTransition {
        from: None,
        hold: H::None,
        entry: None,
        action: A::Apply,
        who: Who::Buyer,
        guards: &[G::ContractFiled],
        to: S::Submitted,
        hold_to: H::None,
        entry_to: None,
        unit: None,
    },
    step(
        S::Submitted,
        A::Accept,
        Who::Reviewer,
        &[G::NotTakenPart],
        S::Accepted,
        None,
    ),
    exit(S::Submitted, A::NotAccept, Who::Reviewer, S::NotAccepted),
    step(
        S::Accepted,
        A::FirstReview,
        Who::FirstReviewer,
        &[G::NotTakenPart],
        S::FirstReviewed,
        None,
    ),
    step(
        S::FirstReviewed,
        A::SecondReview,
        Who::SecondReviewer,
        &[G::NotTakenPart],
        S::SecondReviewed,
        None,
    ),
    step(
        S::SecondReviewed,
        A::Record,
        Who::Recorder,
        &[G::NotTakenPart, G::UnitNotFrozen],
        S::Recorded,
        None,
    ),
    RegistrationTransition {
        from: Some(S::Recorded),
        hold: H::None,
        entry: None,
        action: A::IssueCertificate,
        who: Who::System,
        guards: &[],
        to: S::CertificateIssued,
        hold_to: H::None,
        entry_to: Some(EntryStatus::Valid),
        unit: Some((U::Filed, U::AdvanceNoticeRegistered)),
    },
    exit(S::Accepted, A::Reject, Who::Examiner, S::Rejected),
    exit(S::FirstReviewed, A::Reject, Who::Examiner, S::Rejected),
    exit(S::SecondReviewed, A::Reject, Who::Examiner, S::Rejected),
    exit(S::Submitted, A::Withdraw, Who::Applicant, S::Withdrawn),
    exit(S::Accepted, A::Withdraw, Who::Applicant, S::Withdrawn),
    exit(S::FirstReviewed, A::Withdraw, Who::Applicant, S::Withdrawn),
    exit(S::SecondReviewed, A::Withdraw, Who::Applicant, S::Withdrawn),
    holding(
        S::Accepted,
        H::None,
        A::Requisition,
        Who::Reviewer,
        H::Is(Hold::Requisitioned),
    ),
    holding(
        S::FirstReviewed,
        H::None,
        A::Requisition,
        Who::Reviewer,
        H::Is(Hold::Requisitioned),
    ),
    holding(
        S::SecondReviewed,
        H::None,
        A::Requisition,
        Who::Reviewer,
        H::Is(Hold::Requisitioned),
    ),
    holding(
        S::Accepted,
        H::Is(Hold::Requisitioned),
        A::HandIn,
        Who::Applicant,
        H::None,
    ),
    holding(
        S::FirstReviewed,
        H::Is(Hold::Requisitioned),
        A::HandIn,
        Who::Applicant,
        H::None,
    ),
    holding(
        S::SecondReviewed,
        H::Is(Hold::Requisitioned),
        A::HandIn,
        Who::Applicant,
        H::None,
    ),
    // Materials handed in unasked, before the case is decided: the case stays where it is.
    holding(S::Submitted, H::None, A::HandIn, Who::Applicant, H::None),
    holding(S::Accepted, H::None, A::HandIn, Who::Applicant, H::None),
    holding(
        S::FirstReviewed,
        H::None,
        A::HandIn,
        Who::Applicant,
        H::None,
    ),
    holding(
        S::SecondReviewed,
        H::None,
        A::HandIn,
        Who::Applicant,
        H::None,
    ),
    holding(
        S::Accepted,
        H::None,
        A::Suspend,
        Who::Reviewer,
        H::Is(Hold::Suspended),
    ),
    holding(
        S::FirstReviewed,
        H::None,
        A::Suspend,
        Who::Reviewer,
        H::Is(Hold::Suspended),
    ),
    holding(
        S::SecondReviewed,
        H::None,
        A::Suspend,
        Who::Reviewer,
        H::Is(Hold::Suspended),
    ),
    holding(
        S::Accepted,
        H::Is(Hold::Suspended),
        A::Resume,
        Who::Reviewer,
        H::None,
    ),
    holding(
        S::FirstReviewed,
        H::Is(Hold::Suspended),
        A::Resume,
        Who::Reviewer,
        H::None,
    ),
    holding(
        S::SecondReviewed,
        H::Is(Hold::Suspended),
        A::Resume,
        Who::Reviewer,
        H::None,
    ),
    entry_end(A::CancelEntry, Who::Recorder, &[], EntryStatus::Cancelled),
    entry_end(
        A::Lapse,
        Who::Scheduler,
        &[G::PastLapseDate],
        EntryStatus::Lapsed,
    ),
];

impl RegistrationTransition {
    fn applies_to(&self, state: Option<RegistrationState>) -> bool {
        match (self.from, state) {
            (None, None) => true,
            (Some(f), Some(s)) => {
                f == s.status
                    && self.hold.allows(s.hold)
                    && self.entry.is_none_or(|e| s.entry == Some(e))
            }
            _ => false,
        }
    }

    /// The state after this row.
    pub fn next(&self, before: Option<RegistrationState>) -> RegistrationState {
        let hold = match self.hold_to {
            H::None => None,
            H::Is(h) => Some(h),
            H::Any => before.and_then(|b| b.hold),
        };
        RegistrationState {
            status: self.to,
            hold,
            entry: self.entry_to.or(before.and_then(|b| b.entry)),
        }
    }
}

/// The row a caller holding `relations` takes for `action` from `state`, or why none: a wrong
/// state (`wrong_status`, or `on_hold` / `not_on_hold` / `no_valid_entry` when only the hold or
/// the entry is wrong), not this person's step (`not_your_step`), a guard (its own code).
pub fn decide(
    state: Option<RegistrationState>,
    action: RegistrationAction,
    relations: &[Who],
    facts: &RegistrationFacts,
) -> Result<&'static RegistrationTransition, Refusal> {
    let rows: Vec<&'static RegistrationTransition> = REGISTRATION_TRANSITIONS
        .iter()
        .filter(|t| t.action == action && t.applies_to(state))
        .collect();
    if rows.is_empty() {
        let same_status = REGISTRATION_TRANSITIONS
            .iter()
            .any(|t| t.action == action && t.from == state.map(|s| s.status));
        let label = state.map_or_else(|| "尚未申请".to_owned(), |s| s.label());
        if let Some(s) = state
            && same_status
        {
            if s.hold.is_some() {
                return Err(Refusal::new(
                    "on_hold",
                    RefusalKind::Conflict,
                    format!("案件{}，不能{}。", label, action.label()),
                ));
            }
            if action == A::Resume || (action == A::HandIn && s.hold.is_none()) {
                return Err(Refusal::new(
                    "not_on_hold",
                    RefusalKind::Conflict,
                    format!("案件未中止或无需补正，不能{}。", action.label()),
                ));
            }
            if s.entry != Some(EntryStatus::Valid) {
                return Err(Refusal::new(
                    "no_valid_entry",
                    RefusalKind::Conflict,
                    "该案件没有有效的预告登记。",
                ));
            }
        }
        return Err(Refusal::wrong_status(&label, action.label()));
    }
    let mine: Vec<&&RegistrationTransition> =
        rows.iter().filter(|t| t.who.matches(relations)).collect();
    if mine.is_empty() {
        let who: Vec<Who> = rows
            .iter()
            .map(|t| t.who)
            .filter(|w| w.is_person())
            .collect();
        return Err(Refusal::not_yours(&who, action.label()));
    }
    let mut first = None;
    for t in &mine {
        match t.guards.iter().find_map(|g| g.check(facts).err()) {
            None => return Ok(t),
            Some(r) if first.is_none() => first = Some(r),
            Some(_) => {}
        }
    }
    Err(first.expect("a row was tried"))
}

/// The actions a person holding `relations` sees for a case in `state`.
pub fn actions(
    state: RegistrationState,
    relations: &[Who],
    facts: &RegistrationFacts,
) -> Vec<ActionView> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for t in REGISTRATION_TRANSITIONS {
        if !t.applies_to(Some(state)) || !t.who.is_person() || !t.who.matches(relations) {
            continue;
        }
        if seen.contains(&t.action) {
            continue;
        }
        seen.push(t.action);
        let refusal = decide(Some(state), t.action, relations, facts).err();
        out.push(ActionView::new(
            t.action.as_str(),
            t.action.label(),
            refusal,
        ));
    }
    out
}

/// The person who may take a case's next step on the main path (for the queues), and its action.
pub fn next_step(state: RegistrationState) -> Option<(RegistrationAction, Who)> {
    REGISTRATION_TRANSITIONS
        .iter()
        .find(|t| {
            t.applies_to(Some(state))
                && matches!(
                    t.action,
                    A::Accept | A::FirstReview | A::SecondReview | A::Record
                )
        })
        .map(|t| (t.action, t.who))
}

pub(crate) fn diagram() -> String {
    let name = |s: Option<S>, hold: HoldIs, entry: Option<EntryStatus>| -> String {
        let Some(s) = s else {
            return "[*]".into();
        };
        let mut n = s.as_str().to_owned();
        if let HoldIs::Is(h) = hold {
            n.push_str(&format!("_{}", h.as_str()));
        }
        if let Some(e) = entry {
            n.push_str(&format!("_entry_{}", e.as_str()));
        }
        n
    };
    let rows: Vec<(String, String, String)> = REGISTRATION_TRANSITIONS
        .iter()
        .map(|t| {
            let guards: Vec<&str> = t.guards.iter().map(|g| g.describe()).collect();
            let mut label = format!("{}（{}）", t.action.label(), t.who.label());
            if !guards.is_empty() {
                label.push_str(&format!(" [{}]", guards.join("；")));
            }
            let to_hold = match t.hold_to {
                H::Any => t.hold,
                other => other,
            };
            (
                name(t.from, t.hold, t.entry),
                name(Some(t.to), to_hold, t.entry_to.or(t.entry)),
                label,
            )
        })
        .collect();
    super::mermaid("登记申请", &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(status: S, hold: Option<Hold>) -> RegistrationState {
        RegistrationState {
            status,
            hold,
            entry: None,
        }
    }

    #[test]
    fn every_status_is_reached_and_names_round_trip() {
        for s in RegistrationStatus::ALL {
            assert_eq!(s.as_str().parse::<RegistrationStatus>().unwrap(), *s);
            assert!(REGISTRATION_TRANSITIONS.iter().any(|t| t.to == *s), "{s}");
        }
    }

    #[test]
    fn a_hold_keeps_the_step_and_is_named_when_it_refuses() {
        let f = RegistrationFacts::default();
        let first = [Who::Reviewer, Who::FirstReviewer];
        let r = decide(
            Some(st(S::Accepted, Some(Hold::Suspended))),
            A::FirstReview,
            &first,
            &f,
        )
        .unwrap_err();
        assert_eq!(r.code, "on_hold");
        let t = decide(
            Some(st(S::Accepted, Some(Hold::Suspended))),
            A::Resume,
            &first,
            &f,
        )
        .unwrap();
        assert_eq!(
            t.next(Some(st(S::Accepted, Some(Hold::Suspended)))),
            st(S::Accepted, None)
        );
        let r = decide(Some(st(S::Accepted, None)), A::Resume, &first, &f).unwrap_err();
        assert_eq!(r.code, "not_on_hold");
    }

    #[test]
    fn four_eyes_and_duties() {
        let second = [Who::Reviewer, Who::SecondReviewer];
        let r = decide(
            Some(st(S::Accepted, None)),
            A::FirstReview,
            &second,
            &Default::default(),
        )
        .unwrap_err();
        assert_eq!(r.code, "not_your_step");
        let f = RegistrationFacts {
            caller_took_part: true,
            ..Default::default()
        };
        let r = decide(
            Some(st(S::FirstReviewed, None)),
            A::SecondReview,
            &second,
            &f,
        )
        .unwrap_err();
        assert_eq!(r.code, "four_eyes");
        assert_eq!(
            next_step(st(S::FirstReviewed, None)),
            Some((A::SecondReview, Who::SecondReviewer))
        );
        assert_eq!(
            next_step(st(S::FirstReviewed, Some(Hold::Requisitioned))),
            None
        );
    }
}
