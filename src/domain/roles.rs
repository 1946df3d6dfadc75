//! Who may act: the four roles of DOMAIN.md and the duties inside them. A developer is either a
//! drafter or a confirmer; a reviewer may hold any of first reviewer, second reviewer and recorder,
//! but the workflow keeps the same person from doing two steps on one case.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Developer,
    Buyer,
    Reviewer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Developer, Role::Buyer, Role::Reviewer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Developer => "developer",
            Role::Buyer => "buyer",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// Duties a holder of this role may be given.
    pub fn allowed_duties(self) -> &'static [Duty] {
        match self {
            Role::Developer => &[Duty::Drafter, Duty::Confirmer],
            Role::Reviewer => &[Duty::FirstReviewer, Duty::SecondReviewer, Duty::Recorder],
            Role::Buyer | Role::Admin => &[],
        }
    }

    /// Whether an account of this role must belong to an organisation.
    pub fn needs_organisation(self) -> bool {
        matches!(self, Role::Developer)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Duty {
    Drafter,
    Confirmer,
    FirstReviewer,
    SecondReviewer,
    Recorder,
}

impl Duty {
    pub const ALL: [Duty; 5] = [
        Duty::Drafter,
        Duty::Confirmer,
        Duty::FirstReviewer,
        Duty::SecondReviewer,
        Duty::Recorder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Duty::Drafter => "drafter",
            Duty::Confirmer => "confirmer",
            Duty::FirstReviewer => "first_reviewer",
            Duty::SecondReviewer => "second_reviewer",
            Duty::Recorder => "recorder",
        }
    }
}

impl fmt::Display for Duty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Duty {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duty::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// Duties are stored as one comma-separated column; this keeps the format in one place.
pub fn duties_to_column(duties: &[Duty]) -> String {
    duties
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn duties_from_column(column: &str) -> Result<Vec<Duty>, UnknownName> {
    column
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name `{0}`")]
pub struct UnknownName(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        let all = Duty::ALL.to_vec();
        assert_eq!(duties_from_column(&duties_to_column(&all)).unwrap(), all);
        assert!("root".parse::<Role>().is_err());
        assert_eq!(duties_from_column("").unwrap(), vec![]);
    }
}
