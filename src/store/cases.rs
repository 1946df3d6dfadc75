//! Cases in storage: contracts and registration applications. A case moves only by a typed
//! compare-and-set — one conditional statement on its status (and hold, entry, version or
//! document where they matter), with the unit's move and any signature in the same transaction
//! — and is listed with the caller's scope, filters, counts per status and a cursor.

use super::{
    Contract, ContractSignature, DraftRefusal, Registration, RegistrationStep, StoreResult,
};
use crate::domain::lifecycle::{
    CertificateStatus, ContractStatus, Hold, RegistrationStatus, UnitStatus,
};
use async_trait::async_trait;
use time::{Date, OffsetDateTime};

/// A contract's buyer as the lists need it: the lookup hash of the ID number (to find a buyer's
/// own contracts) and the masked name (what lists show and filter on).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ContractBuyer {
    pub contract_id: String,
    pub position: i32,
    pub id_number_hash: String,
    pub name_masked: String,
}

/// Columns a contract move writes besides its status.
#[derive(Clone, Debug, Default)]
pub struct ContractSet<'a> {
    /// `Some(None)` clears it.
    pub document_sha256: Option<Option<&'a str>>,
    /// Version + 1 (every earlier signature belongs to the old version).
    pub new_version: bool,
    pub terms: Option<&'a str>,
    pub confirmer_id: Option<Option<&'a str>>,
    /// What the PDF was made from; the checks kept from an earlier submission are cleared.
    pub snapshot: Option<&'a str>,
    pub filing_no: Option<&'a str>,
    pub returned_reasons: Option<&'a str>,
    pub cancellation: Option<&'a str>,
}

/// One status change of a contract, decided from a row of the contract table.
#[derive(Clone, Debug)]
pub struct ContractMove<'a> {
    pub id: &'a str,
    pub from: ContractStatus,
    pub to: ContractStatus,
    pub at: OffsetDateTime,
    /// Only from this version (the one the caller saw).
    pub version: Option<i32>,
    /// Only while this is the contract's document (the one that was signed).
    pub document_before: Option<&'a str>,
    /// The unit moves from → to in the same transaction (or nothing happens).
    pub unit: Option<(UnitStatus, UnitStatus)>,
    pub set: ContractSet<'a>,
    pub signature: Option<&'a ContractSignature>,
    /// The buyers replaced (a new version's terms).
    pub buyers: Option<&'a [ContractBuyer]>,
    /// Only while no registration of the contract is alive (cancellation).
    pub unless_registration_alive: bool,
    /// The request's idempotency key, written with the move (same transaction).
    pub effect: Option<crate::store::IdempotencyTag>,
}

impl<'a> ContractMove<'a> {
    pub fn new(id: &'a str, from: ContractStatus, to: ContractStatus, at: OffsetDateTime) -> Self {
        ContractMove {
            id,
            from,
            to,
            at,
            version: None,
            document_before: None,
            unit: None,
            set: ContractSet::default(),
            signature: None,
            buyers: None,
            unless_registration_alive: false,
            effect: None,
        }
    }
}

/// A registration case's whole state as stored.
pub type CaseState = crate::domain::lifecycle::RegistrationState;

/// One change of a registration case, decided from a row of the registration table.
#[derive(Clone, Debug)]
pub struct RegistrationMove<'a> {
    pub id: &'a str,
    pub from: CaseState,
    pub to: CaseState,
    pub at: OffsetDateTime,
    /// The opinions with this step's entry appended (JSON).
    pub opinions: &'a str,
    /// A step of the path, by this person: recorded in its column, and refused by the statement
    /// itself when the person took another step of the case (four eyes).
    pub step: Option<(RegistrationStep, &'a str)>,
    pub acceptance_no: Option<&'a str>,
    /// `Some(None)` clears them.
    pub hold_reasons: Option<Option<&'a str>>,
    pub materials: Option<&'a str>,
    /// Number, SHA-256 of the sealed PDF, and when the advance notice lapses.
    pub certificate: Option<(&'a str, &'a str, Date)>,
    /// SHA-256 of the sealed OFD package of the certificate.
    pub certificate_ofd: Option<&'a str>,
    pub certificate_status: Option<CertificateStatus>,
    /// The contract's unit moves from → to in the same transaction (or nothing happens).
    pub unit: Option<(UnitStatus, UnitStatus)>,
    /// The request's idempotency key, written with the move (same transaction).
    pub effect: Option<crate::store::IdempotencyTag>,
}

impl<'a> RegistrationMove<'a> {
    pub fn new(
        id: &'a str,
        from: CaseState,
        to: CaseState,
        opinions: &'a str,
        at: OffsetDateTime,
    ) -> Self {
        RegistrationMove {
            id,
            from,
            to,
            at,
            opinions,
            step: None,
            acceptance_no: None,
            hold_reasons: None,
            materials: None,
            certificate: None,
            certificate_ofd: None,
            certificate_status: None,
            unit: None,
            effect: None,
        }
    }
}

/// Whose cases a list may show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Reviewers and administrators.
    All,
    /// A developer's staff: the organisation's cases.
    Organisation(String),
    /// A buyer: the contracts naming this ID-number lookup hash.
    Buyer(String),
    /// A buyer: the registration cases they applied for.
    Applicant(String),
    /// Someone who may see none (a buyer without a registered identity).
    Nothing,
}

/// The order of a list: newest first (by creation), or longest waiting first (by the last
/// change), as a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    Newest,
    LongestWaiting,
}

/// Where the previous page ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub updated_at: Option<OffsetDateTime>,
    pub id: String,
}

/// Filters common to both lists.
#[derive(Clone, Debug, Default)]
pub struct CaseFilter {
    pub project_id: Option<String>,
    pub building_id: Option<String>,
    pub unit_id: Option<String>,
    pub created_from: Option<OffsetDateTime>,
    pub created_to: Option<OffsetDateTime>,
    pub updated_from: Option<OffsetDateTime>,
    pub updated_to: Option<OffsetDateTime>,
    pub contract_no: Option<String>,
    pub filing_no: Option<String>,
    pub certificate_no: Option<String>,
    /// A buyer's masked name (张*).
    pub buyer_masked: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ContractQuery {
    pub scope: Scope,
    pub statuses: Vec<ContractStatus>,
    pub filter: CaseFilter,
    pub order: Order,
    pub after: Option<Cursor>,
    pub limit: i64,
}

#[derive(Clone, Debug)]
pub struct RegistrationQuery {
    pub scope: Scope,
    pub statuses: Vec<RegistrationStatus>,
    /// Only cases waiting at their step (no hold).
    pub waiting: bool,
    pub filter: CaseFilter,
    pub order: Order,
    pub after: Option<Cursor>,
    pub limit: i64,
}

#[async_trait]
pub trait CaseStore: Send + Sync {
    /// ∅ → draft: in one transaction the unit `available` → `locked` (unless frozen or without a
    /// valid permit), the contract inserted live and its buyers indexed. Concurrent calls for
    /// one unit: exactly one succeeds.
    async fn create_contract_draft(
        &self,
        c: &Contract,
        buyers: &[ContractBuyer],
        effect: Option<&crate::store::IdempotencyTag>,
    ) -> StoreResult<Result<(), DraftRefusal>>;
    async fn contract(&self, id: &str) -> StoreResult<Option<Contract>>;
    /// The contract and, in the same round trip, the ID-number lookup hash of the user asking
    /// (a buyer sees a contract that names them): every buyer's request starts with both.
    async fn contract_seen_by(
        &self,
        id: &str,
        user_id: &str,
    ) -> StoreResult<Option<(Contract, Option<String>)>>;
    /// One status change as a compare-and-set, returning the contract as moved; `None`, with
    /// nothing written, when the contract was not as the move expects (another request moved
    /// it first), when the unit was not in the expected status, or when the signature's field
    /// was signed already.
    async fn move_contract(&self, m: &ContractMove<'_>) -> StoreResult<Option<Contract>>;
    async fn contract_signatures(&self, contract_id: &str) -> StoreResult<Vec<ContractSignature>>;
    async fn contract_buyers(&self, contract_id: &str) -> StoreResult<Vec<ContractBuyer>>;
    /// Contracts whose buyers are not indexed yet (made before the index existed).
    async fn contracts_without_buyers(&self, limit: i64) -> StoreResult<Vec<Contract>>;
    async fn set_contract_buyers(
        &self,
        contract_id: &str,
        buyers: &[ContractBuyer],
    ) -> StoreResult<()>;
    async fn live_contracts_of_unit(&self, unit_id: &str) -> StoreResult<Vec<Contract>>;
    /// Contracts in one of `statuses` last changed before `before` (candidates for expiry).
    async fn stale_contracts(
        &self,
        statuses: &[ContractStatus],
        before: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<Contract>>;
    /// Keeps the automated checks' results of a contract under filing review.
    async fn set_filing_checks(&self, id: &str, checks: &str) -> StoreResult<()>;
    async fn list_contracts(&self, q: &ContractQuery) -> StoreResult<Vec<Contract>>;
    /// How many contracts of each status the query finds (its statuses and cursor aside).
    async fn count_contracts(&self, q: &ContractQuery) -> StoreResult<Vec<(ContractStatus, i64)>>;

    /// ∅ → submitted; false when the contract already has a live application.
    async fn insert_registration(
        &self,
        r: &Registration,
        effect: Option<&crate::store::IdempotencyTag>,
    ) -> StoreResult<bool>;
    async fn registration(&self, id: &str) -> StoreResult<Option<Registration>>;
    async fn registration_by_certificate(
        &self,
        certificate_no: &str,
    ) -> StoreResult<Option<Registration>>;
    async fn registrations_of_contract(&self, contract_id: &str) -> StoreResult<Vec<Registration>>;
    /// One change of a case as a compare-and-set on its status, hold and entry.
    async fn move_registration(&self, m: &RegistrationMove<'_>) -> StoreResult<bool>;
    /// Adds materials to a case without changing its state (materials handed in unasked).
    /// Valid advance notices whose lapse date is before `today`.
    async fn lapsing_advance_notices(
        &self,
        today: Date,
        limit: i64,
    ) -> StoreResult<Vec<Registration>>;
    async fn list_registrations(&self, q: &RegistrationQuery) -> StoreResult<Vec<Registration>>;
    /// How many cases of each status (and hold) the query finds (its statuses and cursor aside).
    async fn count_registrations(
        &self,
        q: &RegistrationQuery,
    ) -> StoreResult<Vec<(RegistrationStatus, Option<Hold>, i64)>>;
}

/// A value bound to a placeholder of a statement built at run time.
#[derive(Clone, Debug)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    Int(i64),
    Bool(bool),
    Time(OffsetDateTime),
    Date(Date),
}

/// A statement's text and its arguments, numbered as they are pushed.
#[derive(Default)]
pub(crate) struct Sql<'a> {
    pub text: String,
    pub args: Vec<Arg<'a>>,
}

impl<'a> Sql<'a> {
    /// Appends `fragment`, each `?` in it replaced by the next placeholder for `args`.
    pub fn push(&mut self, fragment: &str, args: impl IntoIterator<Item = Arg<'a>>) -> &mut Self {
        let mut args = args.into_iter();
        for ch in fragment.chars() {
            if ch == '?' {
                self.args
                    .push(args.next().expect("an argument for each placeholder"));
                self.text.push_str(&format!("${}", self.args.len()));
            } else {
                self.text.push(ch);
            }
        }
        assert!(args.next().is_none(), "more arguments than placeholders");
        self
    }
}

pub(crate) fn text(s: &str) -> Arg<'_> {
    Arg::Text(Some(s))
}

/// `col IN (?, ?, …)` for statuses (never empty: an empty list matches nothing).
pub(crate) fn in_list<'a>(sql: &mut Sql<'a>, col: &str, names: &[&'static str]) {
    if names.is_empty() {
        sql.push(" AND FALSE", []);
        return;
    }
    let marks = vec!["?"; names.len()].join(", ");
    sql.push(
        &format!(" AND {col} IN ({marks})"),
        names.iter().map(|n| Arg::Text(Some(n))),
    );
}

/// The WHERE conditions of a filter (tables `c` contracts, `u` units, `r` registrations).
pub(crate) fn push_filter<'a>(sql: &mut Sql<'a>, f: &'a CaseFilter, case: &str) {
    let t = |v: &'a Option<String>| v.as_deref().map(text);
    if let Some(v) = t(&f.project_id) {
        sql.push(" AND u.project_id = ?", [v]);
    }
    if let Some(v) = t(&f.building_id) {
        sql.push(" AND u.building_id = ?", [v]);
    }
    if let Some(v) = t(&f.unit_id) {
        sql.push(" AND c.unit_id = ?", [v]);
    }
    for (col, op, v) in [
        ("created_at", ">=", f.created_from),
        ("created_at", "<", f.created_to),
        ("updated_at", ">=", f.updated_from),
        ("updated_at", "<", f.updated_to),
    ] {
        if let Some(v) = v {
            sql.push(&format!(" AND {case}.{col} {op} ?"), [Arg::Time(v)]);
        }
    }
    if let Some(v) = t(&f.contract_no) {
        sql.push(" AND c.contract_no = ?", [v]);
    }
    if let Some(v) = t(&f.filing_no) {
        sql.push(" AND c.filing_no = ?", [v]);
    }
    if let Some(v) = t(&f.certificate_no) {
        if case == "r" {
            sql.push(" AND r.certificate_no = ?", [v]);
        } else {
            sql.push(
                " AND EXISTS (SELECT 1 FROM registrations x WHERE x.contract_id = c.id AND x.certificate_no = ?)",
                [v],
            );
        }
    }
    if let Some(v) = t(&f.buyer_masked) {
        sql.push(
            " AND EXISTS (SELECT 1 FROM contract_buyers b WHERE b.contract_id = c.id AND b.name_masked = ?)",
            [v],
        );
    }
}

pub(crate) fn push_scope<'a>(sql: &mut Sql<'a>, scope: &'a Scope) {
    match scope {
        Scope::All => {}
        Scope::Organisation(org) => {
            sql.push(" AND c.developer_id = ?", [text(org)]);
        }
        Scope::Buyer(hash) => {
            sql.push(
                " AND EXISTS (SELECT 1 FROM contract_buyers b WHERE b.contract_id = c.id AND b.id_number_hash = ?)",
                [text(hash)],
            );
        }
        Scope::Applicant(user) => {
            sql.push(" AND r.applicant_id = ?", [text(user)]);
        }
        Scope::Nothing => {
            sql.push(" AND FALSE", []);
        }
    }
}

/// Ordering and the cursor's condition for table alias `case`.
pub(crate) fn push_page<'a>(
    sql: &mut Sql<'a>,
    case: &str,
    order: Order,
    after: &'a Option<Cursor>,
    limit: i64,
) {
    match (order, after) {
        (Order::Newest, Some(c)) => {
            sql.push(&format!(" AND {case}.id < ?"), [text(&c.id)]);
        }
        (Order::LongestWaiting, Some(c)) => {
            if let Some(u) = c.updated_at {
                sql.push(
                    &format!(
                        " AND ({case}.updated_at > ? OR ({case}.updated_at = ? AND {case}.id > ?))"
                    ),
                    [Arg::Time(u), Arg::Time(u), text(&c.id)],
                );
            }
        }
        (_, None) => {}
    }
    match order {
        Order::Newest => sql.push(
            &format!(" ORDER BY {case}.id DESC LIMIT ?"),
            [Arg::Int(limit)],
        ),
        Order::LongestWaiting => sql.push(
            &format!(" ORDER BY {case}.updated_at, {case}.id LIMIT ?"),
            [Arg::Int(limit)],
        ),
    };
}

/// Columns with a table alias (`id, status` → `c.id, c.status`).
pub(crate) fn prefixed(cols: &str, alias: &str) -> String {
    cols.split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds a statement's arguments in order.
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args.iter() {
            q = match a {
                $crate::store::cases::Arg::Text(s) => q.bind(*s),
                $crate::store::cases::Arg::Int(i) => q.bind(*i),
                $crate::store::cases::Arg::Bool(b) => q.bind(*b),
                $crate::store::cases::Arg::Time(t) => q.bind(*t),
                $crate::store::cases::Arg::Date(d) => q.bind(*d),
            };
        }
        q
    }};
}
pub(crate) use bind_args;

/// Expands `impl CaseStore` for a store struct with a `pool` field (in a module of its own, so
/// its helpers do not meet `impl_store!`'s).
macro_rules! impl_case_store {
    ($store:ty) => {
        mod case_store {
            use super::*;
            use $crate::domain::lifecycle::{ContractStatus, RegistrationStatus};
            use $crate::store::cases::{
                bind_args, in_list, prefixed, push_filter, push_page, push_scope, text, Arg,
                ContractBuyer, ContractMove, ContractQuery, RegistrationMove, RegistrationQuery,
                Sql,
            };
            use $crate::store::sql::{CONTRACT_COLS, REGISTRATION_COLS, SIGNATURE_COLS};
            use $crate::store::{Contract, ContractSignature, Registration, StoreError, StoreResult};

            #[async_trait::async_trait]
            impl $crate::store::cases::CaseStore for $store {
                async fn create_contract_draft(
                    &self,
                    c: &Contract,
                    buyers: &[ContractBuyer],
                    effect: Option<&$crate::store::IdempotencyTag>,
                ) -> StoreResult<Result<(), $crate::store::DraftRefusal>> {
                    use $crate::domain::lifecycle::{PermitStatus, UnitStatus};
                    let mut tx = self.lend.begin().await?;
                    // Compare-and-set on the unit: only an available, unfrozen unit under a
                    // valid permit is taken.
                    let taken = sqlx::query(
                        "UPDATE units SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND status = $4 \
                         AND NOT seized AND NOT manual_hold AND NOT objection \
                         AND permit_id IN (SELECT id FROM presale_permits WHERE status = $5)",
                    )
                    .bind(UnitStatus::Locked)
                    .bind(c.created_at)
                    .bind(&c.unit_id)
                    .bind(UnitStatus::Available)
                    .bind(PermitStatus::Valid)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if taken != 1 {
                        tx.rollback().await?;
                        return Ok(Err($crate::store::DraftRefusal::UnitNotAvailable));
                    }
                    let sql = format!(
                        "INSERT INTO contracts ({CONTRACT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
                    );
                    let inserted = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(&c.id)
                        .bind(&c.contract_no)
                        .bind(&c.unit_id)
                        .bind(&c.developer_id)
                        .bind(c.status)
                        .bind(c.live)
                        .bind(c.version)
                        .bind(&c.terms)
                        .bind(&c.drafter_id)
                        .bind(&c.confirmer_id)
                        .bind(c.created_at)
                        .bind(c.updated_at)
                        .bind(&c.document_sha256)
                        .bind(&c.filing_no)
                        .bind(&c.returned_reasons)
                        .bind(&c.cancellation)
                        .bind(&c.snapshot)
                        .bind(&c.filing_checks)
                        .execute(&mut *tx)
                        .await;
                    match inserted.map_err(StoreError::from) {
                        Ok(_) => {}
                        Err(StoreError::Conflict { constraint })
                            if constraint.contains("contracts_one_live_per_unit")
                                || constraint.contains("contracts.unit_id") =>
                        {
                            tx.rollback().await?;
                            return Ok(Err($crate::store::DraftRefusal::UnitHasLiveContract));
                        }
                        Err(e) => return Err(e),
                    }
                    insert_buyers(&mut tx, &c.id, buyers).await?;
                    if let Some(tag) = effect {
                        insert_effect(&mut tx, tag, "contract", &c.id, true, c.created_at).await?;
                    }
                    tx.commit().await?;
                    Ok(Ok(()))
                }

                async fn contract(&self, id: &str) -> StoreResult<Option<Contract>> {
                    let sql = format!("SELECT {CONTRACT_COLS} FROM contracts WHERE id = $1");
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&self.lend).await?)
                }

                async fn contract_seen_by(
                    &self,
                    id: &str,
                    user_id: &str,
                ) -> StoreResult<Option<(Contract, Option<String>)>> {
                    #[derive(sqlx::FromRow)]
                    struct Seen {
                        #[sqlx(flatten)]
                        contract: Contract,
                        viewer_id_number_hash: Option<String>,
                    }
                    let sql = format!(
                        "SELECT {CONTRACT_COLS}, (SELECT id_number_hash FROM users WHERE users.id = $2) AS viewer_id_number_hash FROM contracts WHERE id = $1"
                    );
                    let seen: Option<Seen> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(id)
                        .bind(user_id)
                        .fetch_optional(&self.lend)
                        .await?;
                    Ok(seen.map(|s| (s.contract, s.viewer_id_number_hash)))
                }

                async fn move_contract(&self, m: &ContractMove<'_>) -> StoreResult<Option<Contract>> {
                    let mut sql = Sql::default();
                    sql.push(
                        "UPDATE contracts SET status = ?, live = ?, updated_at = ?",
                        [text(m.to.as_str()), Arg::Bool(m.to.is_live()), Arg::Time(m.at)],
                    );
                    let s = &m.set;
                    if let Some(d) = s.document_sha256 {
                        sql.push(", document_sha256 = ?", [Arg::Text(d)]);
                    }
                    if s.new_version {
                        sql.push(", version = version + 1", []);
                    }
                    if let Some(t) = s.terms {
                        sql.push(", terms = ?", [text(t)]);
                    }
                    if let Some(c) = s.confirmer_id {
                        sql.push(", confirmer_id = ?", [Arg::Text(c)]);
                    }
                    if let Some(x) = s.snapshot {
                        sql.push(", snapshot = ?, filing_checks = NULL", [text(x)]);
                    }
                    if let Some(x) = s.filing_no {
                        sql.push(", filing_no = ?", [text(x)]);
                    }
                    if let Some(x) = s.returned_reasons {
                        sql.push(", returned_reasons = ?", [text(x)]);
                    }
                    if let Some(x) = s.cancellation {
                        sql.push(", cancellation = ?", [text(x)]);
                    }
                    sql.push(" WHERE id = ? AND status = ? AND live", [text(m.id), text(m.from.as_str())]);
                    if let Some(v) = m.version {
                        sql.push(" AND version = ?", [Arg::Int(v as i64)]);
                    }
                    if let Some(d) = m.document_before {
                        sql.push(" AND document_sha256 = ?", [text(d)]);
                    }
                    if m.unless_registration_alive {
                        let ended: Vec<&'static str> = RegistrationStatus::ALL
                            .iter()
                            .filter(|s| s.is_refused_or_withdrawn())
                            .map(|s| s.as_str())
                            .collect();
                        let marks = vec!["?"; ended.len()].join(", ");
                        sql.push(
                            &format!(
                                " AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.contract_id = contracts.id AND r.status NOT IN ({marks}) \
                                 AND COALESCE(r.entry_status, ?) NOT IN (?, ?))"
                            ),
                            ended
                                .into_iter()
                                .map(|s| Arg::Text(Some(s)))
                                .chain([
                                    text($crate::domain::lifecycle::EntryStatus::Valid.as_str()),
                                    text($crate::domain::lifecycle::EntryStatus::Lapsed.as_str()),
                                    text($crate::domain::lifecycle::EntryStatus::Cancelled.as_str()),
                                ]),
                        );
                    }
                    // The row as moved, so the caller need not read it again.
                    sql.push(&format!(" RETURNING {CONTRACT_COLS}"), []);
                    let mut tx = self.lend.begin().await?;
                    let moved: Option<Contract> = bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text.as_str())),
                        sql.args
                    )
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(moved) = moved else {
                        tx.rollback().await?;
                        return Ok(None);
                    };
                    let unit_id = moved.unit_id.clone();
                    if let Some((from, to)) = m.unit {
                        let moved = sqlx::query(
                            "UPDATE units SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND status = $4",
                        )
                        .bind(to)
                        .bind(m.at)
                        .bind(&unit_id)
                        .bind(from)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if moved != 1 {
                            tx.rollback().await?;
                            return Ok(None);
                        }
                    }
                    if let Some(sig) = m.signature {
                        match insert_signature(&mut *tx, sig).await {
                            Ok(()) => {}
                            Err(StoreError::Conflict { .. }) => {
                                tx.rollback().await?;
                                return Ok(None);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    if let Some(buyers) = m.buyers {
                        sqlx::query("DELETE FROM contract_buyers WHERE contract_id = $1")
                            .bind(m.id)
                            .execute(&mut *tx)
                            .await?;
                        insert_buyers(&mut tx, m.id, buyers).await?;
                    }
                    if let Some(tag) = &m.effect {
                        insert_effect(&mut tx, tag, "contract", m.id, false, m.at).await?;
                    }
                    tx.commit().await?;
                    Ok(Some(moved))
                }

                async fn contract_signatures(&self, contract_id: &str) -> StoreResult<Vec<ContractSignature>> {
                    let sql = format!(
                        "SELECT {SIGNATURE_COLS} FROM contract_signatures WHERE contract_id = $1 ORDER BY signed_at, id"
                    );
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(contract_id).fetch_all(&self.lend).await?)
                }

                async fn contract_buyers(&self, contract_id: &str) -> StoreResult<Vec<ContractBuyer>> {
                    Ok(sqlx::query_as(
                        "SELECT contract_id, position, id_number_hash, name_masked FROM contract_buyers WHERE contract_id = $1 ORDER BY position",
                    )
                    .bind(contract_id)
                    .fetch_all(&self.lend)
                    .await?)
                }

                async fn contracts_without_buyers(&self, limit: i64) -> StoreResult<Vec<Contract>> {
                    let sql = format!(
                        "SELECT {CONTRACT_COLS} FROM contracts WHERE NOT EXISTS (SELECT 1 FROM contract_buyers b WHERE b.contract_id = contracts.id) ORDER BY id LIMIT $1"
                    );
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(limit).fetch_all(&self.lend).await?)
                }

                async fn set_contract_buyers(&self, contract_id: &str, buyers: &[ContractBuyer]) -> StoreResult<()> {
                    let mut tx = self.lend.begin().await?;
                    sqlx::query("DELETE FROM contract_buyers WHERE contract_id = $1")
                        .bind(contract_id)
                        .execute(&mut *tx)
                        .await?;
                    insert_buyers(&mut tx, contract_id, buyers).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn live_contracts_of_unit(&self, unit_id: &str) -> StoreResult<Vec<Contract>> {
                    let sql = format!("SELECT {CONTRACT_COLS} FROM contracts WHERE unit_id = $1 AND live");
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(unit_id).fetch_all(&self.lend).await?)
                }

                async fn stale_contracts(
                    &self,
                    statuses: &[ContractStatus],
                    before: time::OffsetDateTime,
                    limit: i64,
                ) -> StoreResult<Vec<Contract>> {
                    let mut sql = Sql::default();
                    sql.push(
                        &format!("SELECT {CONTRACT_COLS} FROM contracts WHERE live AND updated_at < ?"),
                        [Arg::Time(before)],
                    );
                    let names: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
                    in_list(&mut sql, "status", &names);
                    sql.push(" ORDER BY updated_at LIMIT ?", [Arg::Int(limit)]);
                    Ok(bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql.text.as_str())), sql.args)
                        .fetch_all(&self.lend)
                        .await?)
                }

                async fn set_filing_checks(&self, id: &str, checks: &str) -> StoreResult<()> {
                    sqlx::query("UPDATE contracts SET filing_checks = $1 WHERE id = $2")
                        .bind(checks)
                        .bind(id)
                        .execute(&self.lend)
                        .await?;
                    Ok(())
                }

                async fn list_contracts(&self, q: &ContractQuery) -> StoreResult<Vec<Contract>> {
                    let mut sql = Sql::default();
                    sql.push(
                        &format!(
                            "SELECT {} FROM contracts c JOIN units u ON u.id = c.unit_id WHERE TRUE",
                            prefixed(CONTRACT_COLS, "c")
                        ),
                        [],
                    );
                    push_scope(&mut sql, &q.scope);
                    if !q.statuses.is_empty() {
                        let names: Vec<&'static str> = q.statuses.iter().map(|s| s.as_str()).collect();
                        in_list(&mut sql, "c.status", &names);
                    }
                    push_filter(&mut sql, &q.filter, "c");
                    push_page(&mut sql, "c", q.order, &q.after, q.limit);
                    Ok(bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql.text.as_str())), sql.args)
                        .fetch_all(&self.lend)
                        .await?)
                }

                async fn count_contracts(&self, q: &ContractQuery) -> StoreResult<Vec<(ContractStatus, i64)>> {
                    let mut sql = Sql::default();
                    sql.push("SELECT c.status, COUNT(*) FROM contracts c JOIN units u ON u.id = c.unit_id WHERE TRUE", []);
                    push_scope(&mut sql, &q.scope);
                    push_filter(&mut sql, &q.filter, "c");
                    sql.push(" GROUP BY c.status ORDER BY c.status", []);
                    Ok(bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql.text.as_str())), sql.args)
                        .fetch_all(&self.lend)
                        .await?)
                }

                async fn insert_registration(
                    &self,
                    r: &Registration,
                    effect: Option<&$crate::store::IdempotencyTag>,
                ) -> StoreResult<bool> {
                    let mut tx = self.lend.begin().await?;
                    let sql = format!(
                        "INSERT INTO registrations ({REGISTRATION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
                    );
                    let res = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(&r.id)
                        .bind(&r.contract_id)
                        .bind(&r.applicant_id)
                        .bind(r.status)
                        .bind(&r.acceptance_no)
                        .bind(&r.acceptor_id)
                        .bind(&r.first_reviewer_id)
                        .bind(&r.second_reviewer_id)
                        .bind(&r.recorder_id)
                        .bind(&r.certificate_no)
                        .bind(&r.certificate_sha256)
                        .bind(&r.certificate_ofd_sha256)
                        .bind(r.certificate_status)
                        .bind(&r.materials)
                        .bind(&r.opinions)
                        .bind(r.created_at)
                        .bind(r.updated_at)
                        .bind(r.hold)
                        .bind(&r.hold_reasons)
                        .bind(r.entry_status)
                        .bind(r.lapses_on)
                        .execute(&mut *tx)
                        .await;
                    match res.map_err(StoreError::from) {
                        Ok(_) => {}
                        Err(StoreError::Conflict { .. }) => {
                            tx.rollback().await?;
                            return Ok(false);
                        }
                        Err(e) => return Err(e),
                    }
                    if let Some(tag) = effect {
                        insert_effect(&mut tx, tag, "registration", &r.id, true, r.created_at).await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn registration(&self, id: &str) -> StoreResult<Option<Registration>> {
                    let sql = format!("SELECT {REGISTRATION_COLS} FROM registrations WHERE id = $1");
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&self.lend).await?)
                }

                async fn registration_by_certificate(&self, certificate_no: &str) -> StoreResult<Option<Registration>> {
                    let sql = format!("SELECT {REGISTRATION_COLS} FROM registrations WHERE certificate_no = $1");
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(certificate_no).fetch_optional(&self.lend).await?)
                }

                async fn registrations_of_contract(&self, contract_id: &str) -> StoreResult<Vec<Registration>> {
                    let sql = format!("SELECT {REGISTRATION_COLS} FROM registrations WHERE contract_id = $1 ORDER BY id");
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(contract_id).fetch_all(&self.lend).await?)
                }

                async fn move_registration(&self, m: &RegistrationMove<'_>) -> StoreResult<bool> {
                    let mut sql = Sql::default();
                    sql.push(
                        "UPDATE registrations SET status = ?, hold = ?, entry_status = ?, opinions = ?, updated_at = ?",
                        [
                            text(m.to.status.as_str()),
                            Arg::Text(m.to.hold.map(|h| h.as_str())),
                            Arg::Text(m.to.entry.map(|e| e.as_str())),
                            text(m.opinions),
                            Arg::Time(m.at),
                        ],
                    );
                    if let Some((step, actor)) = m.step {
                        // The column comes from a closed set, never from input.
                        sql.push(&format!(", {} = ?", step.column()), [text(actor)]);
                    }
                    if let Some(n) = m.acceptance_no {
                        sql.push(", acceptance_no = ?", [text(n)]);
                    }
                    if let Some(r) = m.hold_reasons {
                        sql.push(", hold_reasons = ?", [Arg::Text(r)]);
                    }
                    if let Some(x) = m.materials {
                        sql.push(", materials = ?", [text(x)]);
                    }
                    if let Some((no, sha, lapses)) = m.certificate {
                        sql.push(
                            ", certificate_no = ?, certificate_sha256 = ?, lapses_on = ?",
                            [text(no), text(sha), Arg::Date(lapses)],
                        );
                    }
                    if let Some(sha) = m.certificate_ofd {
                        sql.push(", certificate_ofd_sha256 = ?", [text(sha)]);
                    }
                    if let Some(c) = m.certificate_status {
                        sql.push(", certificate_status = ?", [text(c.as_str())]);
                    }
                    sql.push(
                        " WHERE id = ? AND status = ? AND COALESCE(hold, '') = ? AND COALESCE(entry_status, '') = ?",
                        [
                            text(m.id),
                            text(m.from.status.as_str()),
                            text(m.from.hold.map_or("", |h| h.as_str())),
                            text(m.from.entry.map_or("", |e| e.as_str())),
                        ],
                    );
                    if let Some((_, actor)) = m.step {
                        sql.push(
                            " AND COALESCE(acceptor_id, '') <> ? AND COALESCE(first_reviewer_id, '') <> ? \
                             AND COALESCE(second_reviewer_id, '') <> ? AND COALESCE(recorder_id, '') <> ?",
                            [text(actor), text(actor), text(actor), text(actor)],
                        );
                    }
                    sql.push(" RETURNING contract_id", []);
                    let mut tx = self.lend.begin().await?;
                    let row: Option<(String,)> = bind_args!(
                        sqlx::query_as(sqlx::AssertSqlSafe(sql.text.as_str())),
                        sql.args
                    )
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((contract_id,)) = row else {
                        tx.rollback().await?;
                        return Ok(false);
                    };
                    if let Some((from, to)) = m.unit {
                        let moved = sqlx::query(
                            "UPDATE units SET status = $1, version = version + 1, updated_at = $2 \
                             WHERE id = (SELECT unit_id FROM contracts WHERE id = $3) AND status = $4",
                        )
                        .bind(to)
                        .bind(m.at)
                        .bind(&contract_id)
                        .bind(from)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if moved != 1 {
                            tx.rollback().await?;
                            return Ok(false);
                        }
                    }
                    if let Some(tag) = &m.effect {
                        insert_effect(&mut tx, tag, "registration", m.id, false, m.at).await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn lapsing_advance_notices(&self, today: time::Date, limit: i64) -> StoreResult<Vec<Registration>> {
                    let sql = format!(
                        "SELECT {REGISTRATION_COLS} FROM registrations WHERE entry_status = $1 AND lapses_on < $2 ORDER BY lapses_on LIMIT $3"
                    );
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind($crate::domain::lifecycle::EntryStatus::Valid)
                        .bind(today)
                        .bind(limit)
                        .fetch_all(&self.lend)
                        .await?)
                }

                async fn list_registrations(&self, q: &RegistrationQuery) -> StoreResult<Vec<Registration>> {
                    let mut sql = Sql::default();
                    sql.push(
                        &format!(
                            "SELECT {} FROM registrations r JOIN contracts c ON c.id = r.contract_id JOIN units u ON u.id = c.unit_id WHERE TRUE",
                            prefixed(REGISTRATION_COLS, "r")
                        ),
                        [],
                    );
                    registration_conditions(&mut sql, q);
                    if !q.statuses.is_empty() {
                        let names: Vec<&'static str> = q.statuses.iter().map(|s| s.as_str()).collect();
                        in_list(&mut sql, "r.status", &names);
                    }
                    push_page(&mut sql, "r", q.order, &q.after, q.limit);
                    Ok(bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql.text.as_str())), sql.args)
                        .fetch_all(&self.lend)
                        .await?)
                }

                async fn count_registrations(
                    &self,
                    q: &RegistrationQuery,
                ) -> StoreResult<Vec<(RegistrationStatus, Option<$crate::domain::lifecycle::Hold>, i64)>> {
                    let mut sql = Sql::default();
                    sql.push(
                        "SELECT r.status, r.hold, COUNT(*) FROM registrations r JOIN contracts c ON c.id = r.contract_id JOIN units u ON u.id = c.unit_id WHERE TRUE",
                        [],
                    );
                    registration_conditions(&mut sql, q);
                    sql.push(" GROUP BY r.status, r.hold ORDER BY r.status, r.hold", []);
                    Ok(bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql.text.as_str())), sql.args)
                        .fetch_all(&self.lend)
                        .await?)
                }
            }

            fn registration_conditions<'a>(sql: &mut Sql<'a>, q: &'a RegistrationQuery) {
                push_scope(sql, &q.scope);
                if q.waiting {
                    sql.push(" AND r.hold IS NULL", []);
                }
                push_filter(sql, &q.filter, "r");
            }

            /// The idempotency key of the request that made a change, in the change's transaction.
            /// A request that changes the same object twice (a signature that also submits) keeps
            /// one row.
            async fn insert_effect(
                tx: &mut $crate::store::lend::Tx<Db>,
                tag: &$crate::store::IdempotencyTag,
                kind: &str,
                id: &str,
                created: bool,
                at: time::OffsetDateTime,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO idempotency_effects (scope, key, object_kind, object_id, created, at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(&tag.scope)
                .bind(&tag.key)
                .bind(kind)
                .bind(id)
                .bind(created)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn insert_buyers(
                tx: &mut $crate::store::lend::Tx<Db>,
                contract_id: &str,
                buyers: &[ContractBuyer],
            ) -> StoreResult<()> {
                for b in buyers {
                    sqlx::query(
                        "INSERT INTO contract_buyers (contract_id, position, id_number_hash, name_masked) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(contract_id)
                    .bind(b.position)
                    .bind(&b.id_number_hash)
                    .bind(&b.name_masked)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            /// A signature row; a field signs once per version, so a second one is a `Conflict`.
            async fn insert_signature<'c, E>(conn: E, sig: &ContractSignature) -> StoreResult<()>
            where
                E: sqlx::Executor<'c, Database = Db>,
            {
                let sql = format!(
                    "INSERT INTO contract_signatures ({SIGNATURE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(&sig.id)
                    .bind(&sig.contract_id)
                    .bind(sig.contract_version)
                    .bind(&sig.field)
                    .bind(&sig.kind)
                    .bind(&sig.signer_user_id)
                    .bind(&sig.certificate_serial)
                    .bind(sig.signed_at)
                    .bind(&sig.document_before)
                    .bind(&sig.document_after)
                    .bind(&sig.evidence)
                    .execute(conn)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_case_store;
