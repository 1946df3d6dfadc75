//! A contract's timeline: every step from the draft to the certificate — who signed, sealed,
//! filed, reviewed, and when — read from the audit entries of the contract and of its
//! registration cases, in words.

use super::visible;
use crate::domain::lifecycle::{ContractAction, RegistrationAction};
use crate::services::{Caller, Error, Services};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The audit action (`contract.sign`, `registration.record`, …).
    pub action: String,
    /// What happened, in words.
    pub label: String,
    /// Who did it: a person's display name, or the service.
    pub who: String,
    /// The role they acted in.
    pub role: Option<String>,
}

/// What an audit action says, in words; `None` for entries that are not steps of the case.
fn label(action: &str) -> Option<String> {
    let (kind, name) = action.split_once('.')?;
    let known = match (kind, name) {
        ("contract", "evidence_export") => "导出证据包",
        ("contract", "invitation_accepted") => "买受人接受签约邀请",
        ("registration", "apply") => "申请预告登记",
        ("registration", "issue_certificate") => "出具不动产登记证明",
        ("contract", n) => {
            return n
                .parse::<ContractAction>()
                .ok()
                .map(|a| a.label().to_owned());
        }
        ("registration", n) => {
            return n
                .parse::<RegistrationAction>()
                .ok()
                .map(|a| format!("登记：{}", a.label()));
        }
        _ => return None,
    };
    Some(known.to_owned())
}

pub async fn timeline(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<Vec<TimelineEntry>, Error> {
    let (c, _) = visible(s, caller, id).await?;
    let mut ids = vec![c.id.clone()];
    ids.extend(
        s.store
            .registrations_of_contract(&c.id)
            .await?
            .into_iter()
            .map(|r| r.id),
    );
    let mut out = Vec::new();
    let mut names: std::collections::HashMap<String, String> = Default::default();
    crate::audit::chain(s.store.as_ref()).await?;
    for e in s.store.audit_events_of(&ids).await? {
        let Some(label) = label(&e.action) else {
            continue;
        };
        let who = match &e.actor_id {
            Some(uid) => {
                if !names.contains_key(uid) {
                    let name = s
                        .store
                        .user(uid)
                        .await?
                        .map(|u| u.display_name)
                        .unwrap_or_else(|| "（已删除的账号）".into());
                    names.insert(uid.clone(), name);
                }
                names[uid].clone()
            }
            None => "系统".into(),
        };
        out.push(TimelineEntry {
            at: e.at,
            action: e.action,
            label,
            who,
            role: e.actor_role,
        });
    }
    Ok(out)
}
