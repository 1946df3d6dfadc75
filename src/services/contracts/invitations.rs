//! Invitations: per-buyer codes and links for a confirmed contract, derived rather than stored
//! (a keyed hash of contract, version and place, void with a new version), that the developer
//! hands to each buyer; accepting one checks the buyer's registered identity is the invited one.

use super::{StoredTerms, record, view_for, visible};
use crate::domain::Role;
use crate::domain::lifecycle::{ContractStatus, Who};
use crate::services::{Caller, Error, FieldError, Services};
use crate::store::Contract;
use serde::Serialize;
use utoipa::ToSchema;

/// The buyers' signing is open: invitations are valid.
fn awaiting_buyers(s: ContractStatus) -> bool {
    crate::domain::lifecycle::CONTRACT_TRANSITIONS
        .iter()
        .any(|t| t.from == Some(s) && t.action == crate::domain::lifecycle::ContractAction::Sign)
}

/// A buyer's invitation to a confirmed contract: a code the developer hands over (on paper, by
/// SMS from its own system) with a link to the contract. The code is derived from the contract,
/// its version and the buyer's place (a keyed hash: nothing stored, void with a new version).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invitation {
    /// The buyer's place in the contract, from 0.
    pub buyer: usize,
    pub name: String,
    pub code: String,
    /// Where the buyer signs in and opens the contract.
    pub link: String,
    /// Whether this buyer has signed the current version.
    pub signed: bool,
}

fn invitation_code(s: &Services, c: &Contract, index: usize) -> String {
    s.identity.personal.code_hash(
        &format!("invite:{}:{}", c.id, c.version),
        &index.to_string(),
    )[..10]
        .to_ascii_uppercase()
}

/// The invitations of a contract awaiting its buyers, for the developer's staff.
pub async fn invitations(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<Vec<Invitation>, Error> {
    let (c, p) = visible(s, caller, id).await?;
    if !p.is(Who::DeveloperStaff) {
        return Err(Error::not_found("该合同"));
    }
    if !awaiting_buyers(c.status) {
        return Err(Error::conflict(
            "not_awaiting_buyers",
            "合同确认后、买受人签署完成前才有签约邀请。",
        ));
    }
    let t = StoredTerms::of(&c)?;
    let signatures = s.store.contract_signatures(&c.id).await?;
    let mut signed_hashes = Vec::new();
    for sig in signatures
        .iter()
        .filter(|x| x.contract_version == c.version && x.kind == "personal")
    {
        if let Some(u) = &sig.signer_user_id
            && let Some(h) = s
                .store
                .user_identity(u)
                .await?
                .and_then(|i| i.id_number_hash)
        {
            signed_hashes.push(h);
        }
    }
    let public = s
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", s.config.listen));
    Ok(t.buyers
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let code = invitation_code(s, &c, i);
            Invitation {
                buyer: i,
                name: b.name.clone(),
                link: format!("{public}/invitations/{}?code={code}", c.id),
                code,
                signed: signed_hashes.contains(&b.id_number_hash),
            }
        })
        .collect())
}

/// A buyer accepts an invitation: the code must be one of the contract's current ones, and the
/// buyer's own identity (set on the account) must be the invited buyer's. Then the contract is
/// theirs to read and sign.
pub async fn accept_invitation(
    s: &Services,
    caller: &Caller,
    id: &str,
    code: &str,
) -> Result<super::ContractView, Error> {
    if !caller.is(Role::Buyer) {
        return Err(Error::forbidden("只有买受人可以接受签约邀请。"));
    }
    let invalid = || {
        Error::invalid(vec![FieldError::new(
            "code",
            "invitation_invalid",
            "邀请码不正确或已失效（合同已修改或已签署完成），请向开发企业重新索取。",
        )])
    };
    let Some(c) = s.store.contract(id).await? else {
        return Err(invalid());
    };
    if !awaiting_buyers(c.status) {
        return Err(invalid());
    }
    let t = StoredTerms::of(&c)?;
    let given = code.trim().to_ascii_uppercase();
    let Some(index) = (0..t.buyers.len()).find(|i| {
        let expected = invitation_code(s, &c, *i);
        // Lengths first: memcmp::eq compares equal-length inputs only.
        expected.len() == given.len() && openssl::memcmp::eq(expected.as_bytes(), given.as_bytes())
    }) else {
        return Err(invalid());
    };
    let hash = s
        .store
        .user_identity(&caller.user_id)
        .await?
        .and_then(|i| i.id_number_hash)
        .ok_or_else(|| Error::Forbidden {
            code: "identity_required",
            message: "请先登记您的实名信息（姓名和身份证号）再接受邀请。".into(),
        })?;
    if t.buyers[index].id_number_hash != hash {
        return Err(Error::Forbidden {
            code: "invitation_not_for_you",
            message: "该邀请不是发给您的：您的身份信息与合同中的买受人不一致。".into(),
        });
    }
    record(
        s,
        caller,
        "contract.invitation_accepted",
        &c,
        serde_json::json!({"buyer": index}),
    )
    .await?;
    view_for(s, caller, &c).await
}
