//! The life cycles as data: the statuses of contracts, registration cases, register entries and
//! units, and for each case type one table of transitions (from, action, who, guards) → (to,
//! effect on the unit). The services move every case through these tables, the API and the
//! pages show each person the actions the tables allow them now, and the documentation draws the
//! diagrams from them (docs/lifecycles.md), so none of them can disagree.

pub mod contract;
pub mod registration;

use serde::Serialize;
use std::fmt;

pub use contract::{
    CONTRACT_TRANSITIONS, ContractAction, ContractFacts, ContractGuard, ContractStatus,
    ContractTransition,
};
pub use registration::{
    EntryStatus, Hold, REGISTRATION_TRANSITIONS, RegistrationAction, RegistrationFacts,
    RegistrationGuard, RegistrationState, RegistrationStatus, RegistrationTransition,
};

/// A status name that is not one of the enum's (a corrupt row, or a typo in a request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

/// Implements `as_str`, `label`, `ALL`, `Display`, `FromStr` and `TryFrom<String>` for a status
/// enum from one list of (variant, name, Chinese label).
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => ($s:literal, $label:literal)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            /// What a person reads (simplified Chinese).
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::lifecycle::UnknownStatus;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$variant),)+
                    other => Err($crate::domain::lifecycle::UnknownStatus(other.to_owned())),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::lifecycle::UnknownStatus;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}
pub(crate) use named_enum;

named_enum! {
    /// A unit's sale status (DOMAIN.md). Seizure, objection and manual hold are flags beside it
    /// that freeze the unit.
    UnitStatus {
        Unreleased => ("unreleased", "未取得预售许可"),
        Available => ("available", "可售"),
        Locked => ("locked", "已锁定"),
        Signed => ("signed", "已签约"),
        Filed => ("filed", "已备案"),
        AdvanceNoticeRegistered => ("advance_notice_registered", "已预告登记"),
    }
}

/// A unit is unreleased until a valid permit covers it.
impl Default for UnitStatus {
    fn default() -> Self {
        UnitStatus::Unreleased
    }
}

named_enum! {
    /// A pre-sale permit's status: only a valid permit lets its units be sold.
    PermitStatus {
        Valid => ("valid", "有效"),
        Suspended => ("suspended", "暂停"),
        Revoked => ("revoked", "撤销"),
    }
}

named_enum! {
    /// What an electronic registration certificate's public page says.
    CertificateStatus {
        Valid => ("valid", "有效"),
        Revoked => ("revoked", "已注销"),
        Superseded => ("superseded", "已被替代"),
    }
}

named_enum! {
    /// An issued X.509 certificate's state as administrators see it.
    IssuedCertificateState {
        Valid => ("valid", "有效"),
        Expired => ("expired", "已过期"),
        Revoked => ("revoked", "已吊销"),
    }
}

named_enum! {
    /// Where a notification in the outbox stands.
    DeliveryState {
        Pending => ("pending", "待发送"),
        Delivered => ("delivered", "已送达"),
        Dead => ("dead", "投递失败"),
    }
}

/// The transitions of the unit, as the case tables and the inventory make them: (from, to, what
/// makes it). Drawn in docs/lifecycles.md.
pub fn unit_transitions() -> Vec<(UnitStatus, UnitStatus, String)> {
    let mut out: Vec<(UnitStatus, UnitStatus, String)> = vec![(
        UnitStatus::Unreleased,
        UnitStatus::Available,
        "预售许可覆盖".into(),
    )];
    let mut push = |from, to, why: String| {
        if let Some(row) = out.iter_mut().find(|(f, t, _)| *f == from && *t == to) {
            if !row.2.split(" / ").any(|w| w == why) {
                row.2.push_str(" / ");
                row.2.push_str(&why);
            }
        } else {
            out.push((from, to, why));
        }
    };
    for t in CONTRACT_TRANSITIONS {
        if let Some((from, to)) = t.unit {
            push(from, to, format!("合同：{}", t.action.label()));
        }
    }
    for t in REGISTRATION_TRANSITIONS {
        if let Some((from, to)) = t.unit {
            push(from, to, format!("登记：{}", t.action.label()));
        }
    }
    out
}

/// Who takes an action: a role, with the duty or the relation to the case that matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// The developer's contract drafter (拟签人员).
    Drafter,
    /// The developer's confirmer (确认人员), who also seals.
    Confirmer,
    /// Any staff member of the contract's developer.
    DeveloperStaff,
    /// One of the contract's buyers.
    Buyer,
    /// Any reviewer of the registration centre (acceptance needs no duty).
    Reviewer,
    FirstReviewer,
    SecondReviewer,
    /// A first or a second reviewer (rejection).
    Examiner,
    Recorder,
    /// The buyer who applied for the registration.
    Applicant,
    /// The service itself, on a schedule.
    Scheduler,
    /// The service itself, following another step at once.
    System,
}

impl Who {
    pub fn label(self) -> &'static str {
        match self {
            Who::Drafter => "合同起草人员",
            Who::Confirmer => "合同确认人员",
            Who::DeveloperStaff => "开发企业人员",
            Who::Buyer => "买受人",
            Who::Reviewer => "登记中心人员",
            Who::FirstReviewer => "初审人员",
            Who::SecondReviewer => "复审人员",
            Who::Examiner => "初审或复审人员",
            Who::Recorder => "登簿人员",
            Who::Applicant => "申请人",
            Who::Scheduler => "系统定时任务",
            Who::System => "系统",
        }
    }

    /// Whether a person holding `relations` to a case is this `Who`.
    pub fn matches(self, relations: &[Who]) -> bool {
        relations.contains(&self)
            || (self == Who::Examiner
                && relations
                    .iter()
                    .any(|r| matches!(r, Who::FirstReviewer | Who::SecondReviewer)))
    }

    /// A person, not the service.
    pub fn is_person(self) -> bool {
        !matches!(self, Who::Scheduler | Who::System)
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// How a refusal is answered: 403, 404, 409 or 422.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    Forbidden,
    NotFound,
    Conflict,
    Invalid,
}

/// Why an action cannot be taken now: a stable code for programs and a message for people. Every
/// refusal of a transition comes from here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub kind: RefusalKind,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, kind: RefusalKind, message: impl Into<String>) -> Self {
        Refusal {
            code,
            kind,
            message: message.into(),
        }
    }

    /// The status has no row for the action.
    pub fn wrong_status(status_label: &str, action_label: &str) -> Self {
        Refusal::new(
            "wrong_status",
            RefusalKind::Conflict,
            format!("当前状态为“{status_label}”，不能{action_label}。"),
        )
    }

    /// The status has a row, but for someone else.
    pub fn not_yours(who: &[Who], action_label: &str) -> Self {
        let names: Vec<&str> = who.iter().map(|w| w.label()).collect();
        Refusal::new(
            "not_your_step",
            RefusalKind::Forbidden,
            format!("只有{}可以{action_label}。", names.join("或")),
        )
    }

    /// Another request changed the case first (the compare-and-set found it moved).
    pub fn already_decided() -> Self {
        Refusal::new(
            "already_decided",
            RefusalKind::Conflict,
            "该案件已被他人处理或已发生变化，请刷新后查看。",
        )
    }
}

/// One action as a person sees it: whether they may take it now, and if it is shown but
/// disabled, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActionView {
    /// The action's stable name (`confirm`, `sign`, `first_review`, …).
    pub action: &'static str,
    /// What a button says.
    pub label: &'static str,
    pub enabled: bool,
    /// Why it is disabled (a stable code); none when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<&'static str>,
    /// Why it is disabled, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ActionView {
    pub(crate) fn new(action: &'static str, label: &'static str, refusal: Option<Refusal>) -> Self {
        ActionView {
            action,
            label,
            enabled: refusal.is_none(),
            reason_code: refusal.as_ref().map(|r| r.code),
            reason: refusal.map(|r| r.message),
        }
    }
}

/// A Mermaid state diagram from rows of (from, to, label); `[*]` for none.
pub(crate) fn mermaid(title: &str, rows: &[(String, String, String)]) -> String {
    let mut out = format!("---\ntitle: {title}\n---\nstateDiagram-v2\n");
    for (from, to, label) in rows {
        out.push_str(&format!("    {from} --> {to}: {label}\n"));
    }
    out
}

/// The diagrams of docs/lifecycles.md, generated from the tables.
pub fn diagrams() -> String {
    let units: Vec<(String, String, String)> = unit_transitions()
        .into_iter()
        .map(|(f, t, why)| (f.as_str().to_owned(), t.as_str().to_owned(), why))
        .collect();
    format!(
        "## 合同 (contract)\n\n```mermaid\n{}```\n\n## 登记申请 (registration case)\n\n```mermaid\n{}```\n\n## 房屋 (unit)\n\n```mermaid\n{}```\n",
        contract::diagram(),
        registration::diagram(),
        mermaid("房屋", &units)
    )
}
