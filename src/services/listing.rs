//! What the lists of contracts and of registration cases share: the filters of the query string,
//! checked and turned into the store's; the opaque cursor of the next page; and whose cases the
//! caller may see at all (the scope), decided before any filter so that no filter or count can
//! reach another person's case.

use super::{Caller, Error, FieldError, Services};
use crate::domain::Role;
use crate::domain::identity::mask_name;
use crate::store::{CaseFilter, Cursor, Order, Scope};
use base64::Engine as _;
use serde::Deserialize;
use time::OffsetDateTime;

/// The page size when none is asked for, and the largest allowed.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// The filters both lists take (query parameters).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseParams {
    /// Statuses, comma-separated (`filing_review,returned`).
    pub status: Option<String>,
    /// A project id.
    pub project: Option<String>,
    /// A building id.
    pub building: Option<String>,
    /// A unit id.
    pub unit: Option<String>,
    /// Created at or after (RFC 3339).
    pub created_from: Option<String>,
    /// Created before (RFC 3339).
    pub created_to: Option<String>,
    /// Last changed at or after (RFC 3339).
    pub updated_from: Option<String>,
    /// Last changed before (RFC 3339).
    pub updated_to: Option<String>,
    pub contract_no: Option<String>,
    /// The filing number (备案号).
    pub filing_no: Option<String>,
    /// The registration certificate's number.
    pub certificate_no: Option<String>,
    /// A buyer's name as lists show it, masked (张*); a full name is masked first.
    pub buyer: Option<String>,
    /// `newest` (the default: newest first) or `waiting` (longest waiting first, as a queue).
    pub order: Option<String>,
    /// Where the previous page ended (`next_cursor` of that page).
    pub cursor: Option<String>,
    /// Page size, 1–100 (20 when absent).
    pub limit: Option<i64>,
    /// Registrations only: a reviewer's queue, the cases waiting for this step (`accept`,
    /// `first_review`, `second_review` or `record`), oldest first unless `order` says otherwise.
    pub step: Option<String>,
}

/// The parameters checked: the store's filter, order, cursor and limit, and the statuses named.
pub struct Parsed {
    pub filter: CaseFilter,
    pub order: Order,
    pub after: Option<Cursor>,
    pub limit: i64,
    pub statuses: Vec<String>,
}

fn time_param(
    errors: &mut Vec<FieldError>,
    name: &str,
    v: &Option<String>,
) -> Option<OffsetDateTime> {
    let v = v.as_deref()?;
    match OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        Ok(t) => Some(t),
        Err(_) => {
            errors.push(FieldError::new(
                name,
                "date_time",
                "时间须为 RFC 3339 格式，例如 2026-12-04T08:00:00+08:00。",
            ));
            None
        }
    }
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl CaseParams {
    pub fn parse(&self) -> Result<Parsed, Error> {
        let mut errors = Vec::new();
        let filter = CaseFilter {
            project_id: nonempty(&self.project),
            building_id: nonempty(&self.building),
            unit_id: nonempty(&self.unit),
            created_from: time_param(&mut errors, "created_from", &self.created_from),
            created_to: time_param(&mut errors, "created_to", &self.created_to),
            updated_from: time_param(&mut errors, "updated_from", &self.updated_from),
            updated_to: time_param(&mut errors, "updated_to", &self.updated_to),
            contract_no: nonempty(&self.contract_no),
            filing_no: nonempty(&self.filing_no),
            certificate_no: nonempty(&self.certificate_no),
            buyer_masked: nonempty(&self.buyer)
                .map(|b| if b.contains('*') { b } else { mask_name(&b) }),
        };
        let order = match self.order.as_deref() {
            None | Some("newest") => Order::Newest,
            Some("waiting") => Order::LongestWaiting,
            Some(_) => {
                errors.push(FieldError::new(
                    "order",
                    "one_of",
                    "排序须为 newest 或 waiting。",
                ));
                Order::Newest
            }
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                "range",
                format!("每页条数须在 1 至 {MAX_LIMIT} 之间。"),
            ));
        }
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => match decode_cursor(c, order) {
                Some(c) => Some(c),
                None => {
                    errors.push(FieldError::new(
                        "cursor",
                        "invalid_cursor",
                        "分页游标无效，请从第一页重新查询。",
                    ));
                    None
                }
            },
        };
        let statuses: Vec<String> = self
            .status
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !errors.is_empty() {
            return Err(Error::Invalid {
                code: "invalid_query",
                message: "查询条件有误，请按字段提示修改。".into(),
                fields: errors,
            });
        }
        Ok(Parsed {
            filter,
            order,
            after,
            limit: limit.clamp(1, MAX_LIMIT),
            statuses,
        })
    }
}

/// Parses the named statuses of one kind, reporting the unknown ones.
pub fn statuses<T: std::str::FromStr>(names: &[String]) -> Result<Vec<T>, Error> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        match n.parse() {
            Ok(s) => out.push(s),
            Err(_) => errors.push(FieldError::new(
                "status",
                "unknown_status",
                format!("没有“{n}”这种状态。"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid {
            code: "invalid_query",
            message: "查询条件有误，请按字段提示修改。".into(),
            fields: errors,
        })
    }
}

/// The cursor after a page's last case: its id, and for a queue its last change.
pub fn encode_cursor(order: Order, id: &str, updated_at: OffsetDateTime) -> String {
    let raw = match order {
        Order::Newest => id.to_owned(),
        Order::LongestWaiting => format!("{}|{id}", updated_at.unix_timestamp_nanos()),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(c: &str, order: Order) -> Option<Cursor> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let valid_id =
        |id: &str| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    match order {
        Order::Newest => valid_id(&raw).then_some(Cursor {
            updated_at: None,
            id: raw,
        }),
        Order::LongestWaiting => {
            let (t, id) = raw.split_once('|')?;
            let t = OffsetDateTime::from_unix_timestamp_nanos(t.parse().ok()?).ok()?;
            valid_id(id).then(|| Cursor {
                updated_at: Some(t),
                id: id.to_owned(),
            })
        }
    }
}

/// Whose contracts the caller may list: all (reviewers, administrators), their organisation's
/// (developers' staff), or those naming their registered identity (buyers).
pub async fn contract_scope(s: &Services, caller: &Caller) -> Result<Scope, Error> {
    Ok(match caller.role {
        Role::Admin | Role::Reviewer => Scope::All,
        Role::Developer => match &caller.organisation_id {
            Some(org) => Scope::Organisation(org.clone()),
            None => Scope::Nothing,
        },
        Role::Buyer => match s
            .store
            .user_identity(&caller.user_id)
            .await?
            .and_then(|i| i.id_number_hash)
        {
            Some(hash) => Scope::Buyer(hash),
            None => Scope::Nothing,
        },
    })
}
