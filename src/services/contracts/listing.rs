//! The list of contracts: a buyer's own, a developer's organisation's, every contract for
//! reviewers and administrators; filtered, in a stable order, a page at a time, with the count
//! of each status for dashboards (within the same scope and filters).

use super::StoredTerms;
use crate::domain::identity::mask_name;
use crate::domain::lifecycle::ContractStatus;
use crate::services::listing::{CaseParams, contract_scope, encode_cursor, statuses};
use crate::services::{Caller, Error, Services};
use crate::store::ContractQuery;
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;

pub type ContractListQuery = CaseParams;

/// One contract in a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContractListItem {
    pub id: String,
    pub contract_no: String,
    pub unit_id: String,
    pub status: ContractStatus,
    pub status_label: &'static str,
    pub version: i32,
    /// The buyers' names, masked (张*).
    pub buyers: Vec<String>,
    pub filing_no: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A page of contracts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContractList {
    pub items: Vec<ContractListItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// How many contracts of each status match the filters (every status named, zeros too).
    pub counts: BTreeMap<ContractStatus, i64>,
    /// All of them, whatever their status.
    pub total: i64,
}

pub async fn list(
    s: &Services,
    caller: &Caller,
    params: &ContractListQuery,
) -> Result<ContractList, Error> {
    if params.step.is_some() {
        return Err(Error::Invalid {
            code: "invalid_query",
            message: "查询条件有误，请按字段提示修改。".into(),
            fields: vec![crate::services::FieldError::new(
                "step",
                "not_applicable",
                "合同列表没有 step 条件（它属于登记申请的审核队列）。",
            )],
        });
    }
    let p = params.parse()?;
    let q = ContractQuery {
        scope: contract_scope(s, caller).await?,
        statuses: statuses(&p.statuses)?,
        filter: p.filter,
        order: p.order,
        after: p.after,
        // One more than the page: whether there is a next page.
        limit: p.limit + 1,
    };
    let mut rows = s.store.list_contracts(&q).await?;
    let more = rows.len() as i64 > p.limit;
    rows.truncate(p.limit as usize);
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|c| encode_cursor(q.order, &c.id, c.updated_at))
        })
        .flatten();
    let mut counts: BTreeMap<ContractStatus, i64> =
        ContractStatus::ALL.iter().map(|s| (*s, 0)).collect();
    for (status, n) in s.store.count_contracts(&q).await? {
        counts.insert(status, n);
    }
    let mut items = Vec::with_capacity(rows.len());
    for c in rows {
        let t = StoredTerms::of(&c)?;
        items.push(ContractListItem {
            buyers: t.buyers.iter().map(|b| mask_name(&b.name)).collect(),
            id: c.id,
            contract_no: c.contract_no,
            unit_id: c.unit_id,
            status: c.status,
            status_label: c.status.label(),
            version: c.version,
            filing_no: c.filing_no,
            created_at: c.created_at,
            updated_at: c.updated_at,
        });
    }
    Ok(ContractList {
        items,
        next_cursor,
        total: counts.values().sum(),
        counts,
    })
}
