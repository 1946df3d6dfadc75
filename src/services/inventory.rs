//! The inventory: projects, permits, buildings and units (the 楼盘表), registered by the
//! developer (a building's units imported at once from JSON or CSV, all or nothing), the
//! encumbrances the registration centre records (seizure, objection, mortgage) and the
//! developer's manual hold, and the public listing of each unit's sale status and filed price.

use super::{Caller, Error, FieldError, Services};
use crate::audit;
use crate::domain::contract::parse_date;
use crate::domain::lifecycle::{PermitStatus, UnitStatus};
use crate::domain::{Area, Money, Role};
use crate::store::{Building, Permit, Project, StoreError, Unit, UnitFlag};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectSummary {
    pub id: String,
    pub name: String,
    pub town: String,
    pub developer: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicUnit {
    /// What a drafter names when drafting a contract for the unit.
    pub id: String,
    pub building: String,
    pub room_no: String,
    pub floor: i32,
    pub unit_number: String,
    pub use_type: String,
    /// Projected gross area in m², two decimals.
    pub gross_area: String,
    /// Filed price in yuan per m², two decimals.
    pub filed_price: String,
    pub status: UnitStatus,
    /// Seized, under objection or on hold: no transaction is possible.
    pub frozen: bool,
    pub mortgaged: bool,
    /// A contract can be drafted now: available, not frozen, under a valid permit.
    pub for_sale: bool,
}

pub async fn list_projects(s: &Services) -> Result<Vec<ProjectSummary>, Error> {
    let mut out = Vec::new();
    for p in s.store.projects().await? {
        let developer = s
            .store
            .organisation(&p.developer_id)
            .await?
            .map(|o| o.name)
            .unwrap_or_default();
        out.push(ProjectSummary {
            id: p.id,
            name: p.name,
            town: p.town,
            developer,
        });
    }
    Ok(out)
}

pub async fn project_units(s: &Services, project_id: &str) -> Result<Vec<PublicUnit>, Error> {
    if s.store.project(project_id).await?.is_none() {
        return Err(Error::not_found("该项目"));
    }
    let buildings: HashMap<String, String> = s
        .store
        .buildings(project_id)
        .await?
        .into_iter()
        .map(|b| (b.id, b.name))
        .collect();
    let valid = valid_permits(s, project_id).await?;
    Ok(s.store
        .units(project_id)
        .await?
        .into_iter()
        .map(|u| {
            let b = buildings.get(&u.building_id).cloned().unwrap_or_default();
            public_unit(u, b, &valid)
        })
        .collect())
}

/// A project as the developer registers it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub name: String,
    /// 镇街
    pub town: String,
    /// 宗地代码, 19 characters.
    pub parcel_code: String,
    pub land_certificate_no: String,
    pub land_use: String,
    /// YYYY-MM-DD
    pub land_term_end: String,
    pub planning_permit_no: String,
    pub construction_permit_no: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectView {
    pub id: String,
    pub name: String,
    pub town: String,
    pub parcel_code: String,
    pub developer_id: String,
}

/// A pre-sale permit and the buildings (by number) it covers.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPermit {
    pub number: String,
    pub authority: String,
    /// YYYY-MM-DD, not in the future.
    pub issued_on: String,
    pub escrow_bank: String,
    pub escrow_account_name: String,
    pub escrow_account_no: String,
    /// Building numbers; their unreleased units become available under this permit.
    pub buildings: Vec<i32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PermitView {
    pub id: String,
    pub number: String,
    pub status: PermitStatus,
    /// Units released for sale by this registration.
    pub units_released: u64,
}

/// One row of a building's 楼盘表 (also the columns of the CSV form, in this order).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUnit {
    pub room_no: String,
    /// Negative below ground; there is no floor 0.
    pub floor: i32,
    /// 不动产单元号, 28 characters: the project's parcel code, `F`, the building and the unit.
    pub unit_number: String,
    pub use_type: String,
    /// m², two decimals: gross = internal + shared.
    pub gross_area: String,
    pub internal_area: String,
    pub shared_area: String,
    pub storey_height_mm: i32,
    /// Filed price, yuan per m².
    pub filed_price: String,
}

/// A building with all its units.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBuilding {
    pub number: i32,
    pub floors_above: i32,
    pub floors_below: i32,
    /// A valid permit of the project covering the building: its units are for sale at once.
    #[serde(default)]
    pub permit_id: Option<String>,
    pub units: Vec<NewUnit>,
}

/// The building's particulars when its units come as CSV (query parameters).
#[derive(Debug, Clone, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BuildingParams {
    pub number: i32,
    pub floors_above: i32,
    pub floors_below: i32,
    #[serde(default)]
    pub permit_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuildingView {
    pub id: String,
    pub number: i32,
    pub units: usize,
    pub available: usize,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermitStatusChange {
    /// valid, suspended or revoked.
    pub status: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitFlagChange {
    pub flag: UnitFlag,
    pub value: bool,
    /// The court order, registration or business reason.
    pub reason: String,
}

/// Most units one import may carry: a 200-storey tower with 25 units a floor.
pub const MAX_UNITS_PER_BUILDING: usize = 5000;

fn is_parcel_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b[..12].iter().all(u8::is_ascii_digit)
        && b"GJZ".contains(&b[12])
        && b"ABSXCDEFHGWY".contains(&b[13])
        && b[14..].iter().all(u8::is_ascii_digit)
}

fn is_unit_number(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 28
        && is_parcel_code(&s[..19])
        && b"FLQW".contains(&b[19])
        && b[20..].iter().all(u8::is_ascii_digit)
}

fn text(errors: &mut Vec<FieldError>, field: &str, v: &str, max: usize) {
    if v.trim().is_empty() {
        errors.push(FieldError::new(field, "required", "此项必填。"));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("不得超过 {max} 个字符。"),
        ));
    }
}

fn today() -> time::Date {
    OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

async fn audit_change(
    s: &Services,
    caller: &Caller,
    action: &str,
    kind: &str,
    id: &str,
    detail: serde_json::Value,
) -> Result<(), Error> {
    let hash = audit::hex(&openssl::sha::sha256(detail.to_string().as_bytes()));
    super::audit(s, Some(caller), action, (kind, id), Some(hash), detail).await
}

/// The project, if the caller is staff of its developer; not found otherwise (another
/// developer's project reveals nothing).
async fn own_project(s: &Services, caller: &Caller, id: &str) -> Result<Project, Error> {
    let p = s
        .store
        .project(id)
        .await?
        .ok_or_else(|| Error::not_found("该项目"))?;
    if !caller.is(Role::Developer) || caller.organisation_id.as_deref() != Some(&p.developer_id) {
        return Err(Error::not_found("该项目"));
    }
    Ok(p)
}

pub async fn create_project(
    s: &Services,
    caller: &Caller,
    req: NewProject,
) -> Result<ProjectView, Error> {
    let Some(org) = caller
        .organisation_id
        .clone()
        .filter(|_| caller.is(Role::Developer))
    else {
        return Err(Error::forbidden("只有开发企业可以登记项目。"));
    };
    let mut errors = Vec::new();
    text(&mut errors, "name", &req.name, 100);
    text(&mut errors, "town", &req.town, 32);
    if !is_parcel_code(&req.parcel_code) {
        errors.push(FieldError::new(
            "parcel_code",
            "format",
            "宗地代码须为 19 位（6 位行政区划、6 位地籍区与子区、2 位宗地特征码、5 位顺序号）。",
        ));
    }
    text(
        &mut errors,
        "land_certificate_no",
        &req.land_certificate_no,
        64,
    );
    text(&mut errors, "land_use", &req.land_use, 32);
    text(
        &mut errors,
        "planning_permit_no",
        &req.planning_permit_no,
        64,
    );
    text(
        &mut errors,
        "construction_permit_no",
        &req.construction_permit_no,
        64,
    );
    let term_end = parse_date(&req.land_term_end);
    match term_end {
        None => errors.push(FieldError::new(
            "land_term_end",
            "date",
            "日期格式须为 YYYY-MM-DD。",
        )),
        Some(d) if d <= today() => errors.push(FieldError::new(
            "land_term_end",
            "expired",
            "土地使用期限已届满。",
        )),
        Some(_) => {}
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    let p = Project {
        id: uuid::Uuid::now_v7().to_string(),
        developer_id: org,
        name: req.name.trim().into(),
        town: req.town.trim().into(),
        parcel_code: req.parcel_code,
        land_certificate_no: req.land_certificate_no.trim().into(),
        land_use: req.land_use.trim().into(),
        land_term_end: term_end.unwrap_or_else(today),
        planning_permit_no: req.planning_permit_no.trim().into(),
        construction_permit_no: req.construction_permit_no.trim().into(),
        created_at: OffsetDateTime::now_utc(),
    };
    s.store.insert_project(&p).await?;
    audit_change(
        s,
        caller,
        "project.create",
        "project",
        &p.id,
        serde_json::json!({"name": p.name, "parcel_code": p.parcel_code}),
    )
    .await?;
    Ok(ProjectView {
        id: p.id,
        name: p.name,
        town: p.town,
        parcel_code: p.parcel_code,
        developer_id: p.developer_id,
    })
}

pub async fn create_permit(
    s: &Services,
    caller: &Caller,
    project_id: &str,
    req: NewPermit,
) -> Result<PermitView, Error> {
    let project = own_project(s, caller, project_id).await?;
    let mut errors = Vec::new();
    text(&mut errors, "number", &req.number, 64);
    text(&mut errors, "authority", &req.authority, 64);
    text(&mut errors, "escrow_bank", &req.escrow_bank, 64);
    text(
        &mut errors,
        "escrow_account_name",
        &req.escrow_account_name,
        100,
    );
    if !(8..=32).contains(&req.escrow_account_no.len())
        || !req.escrow_account_no.bytes().all(|b| b.is_ascii_digit())
    {
        errors.push(FieldError::new(
            "escrow_account_no",
            "format",
            "监管账号须为 8 至 32 位数字。",
        ));
    }
    let issued = parse_date(&req.issued_on);
    match issued {
        None => errors.push(FieldError::new(
            "issued_on",
            "date",
            "日期格式须为 YYYY-MM-DD。",
        )),
        Some(d) if d > today() => errors.push(FieldError::new(
            "issued_on",
            "future",
            "发证日期不能晚于今天。",
        )),
        Some(_) => {}
    }
    let buildings = s.store.buildings(&project.id).await?;
    let mut cover = Vec::new();
    for (i, n) in req.buildings.iter().enumerate() {
        match buildings.iter().find(|b| b.number == *n) {
            Some(b) if !cover.contains(&b.id) => cover.push(b.id.clone()),
            Some(_) => errors.push(FieldError::new(
                format!("buildings[{i}]"),
                "duplicate",
                "楼栋重复。",
            )),
            None => errors.push(FieldError::new(
                format!("buildings[{i}]"),
                "unknown_building",
                format!("本项目没有 {n} 栋。"),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    let now = OffsetDateTime::now_utc();
    let m = Permit {
        id: uuid::Uuid::now_v7().to_string(),
        project_id: project.id.clone(),
        number: req.number.trim().into(),
        authority: req.authority.trim().into(),
        issued_on: issued.unwrap_or_else(today),
        escrow_bank: req.escrow_bank.trim().into(),
        escrow_account_name: req.escrow_account_name.trim().into(),
        escrow_account_no: req.escrow_account_no,
        status: PermitStatus::Valid,
        created_at: now,
    };
    let released = match s.store.insert_permit(&m, &cover, now).await {
        Ok(n) => n,
        Err(StoreError::Conflict { .. }) => {
            return Err(Error::conflict(
                "permit_number_taken",
                "该预售许可证号已登记。",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    audit_change(
        s,
        caller,
        "permit.create",
        "permit",
        &m.id,
        serde_json::json!({"number": m.number, "project_id": m.project_id, "buildings": req.buildings, "units_released": released}),
    )
    .await?;
    Ok(PermitView {
        id: m.id,
        number: m.number,
        status: m.status,
        units_released: released,
    })
}

/// Parses the CSV form of a building's units: a header row naming the columns of [`NewUnit`].
pub fn units_from_csv(body: &[u8]) -> Result<Vec<NewUnit>, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body);
    let mut units = Vec::new();
    let mut errors = Vec::new();
    for (i, row) in reader.deserialize::<NewUnit>().enumerate() {
        if i >= MAX_UNITS_PER_BUILDING {
            errors.push(FieldError::new(
                "units",
                "too_many",
                format!("一栋最多 {MAX_UNITS_PER_BUILDING} 户。"),
            ));
            break;
        }
        match row {
            Ok(u) => units.push(u),
            // Rows are numbered as a spreadsheet shows them: the header is row 1.
            Err(e) => errors.push(FieldError::new(
                format!("units[{i}]"),
                "csv",
                format!("第 {} 行无法读取：{}", i + 2, csv_reason(&e)),
            )),
        }
        if errors.len() >= 100 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    Ok(units)
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { .. } => "列数与表头不一致".into(),
        csv::ErrorKind::Utf8 { .. } => "不是 UTF-8 文本".into(),
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(f) => format!("第 {} 列的值不正确", f + 1),
            None => "表头须为 room_no,floor,unit_number,use_type,gross_area,internal_area,shared_area,storey_height_mm,filed_price".into(),
        },
        _ => "格式错误".into(),
    }
}

pub async fn import_building(
    s: &Services,
    caller: &Caller,
    project_id: &str,
    req: NewBuilding,
) -> Result<BuildingView, Error> {
    let project = own_project(s, caller, project_id).await?;
    let mut errors = Vec::new();
    if !(1..=999).contains(&req.number) {
        errors.push(FieldError::new("number", "range", "楼栋号须为 1 至 999。"));
    }
    if !(1..=200).contains(&req.floors_above) {
        errors.push(FieldError::new(
            "floors_above",
            "range",
            "地上层数须为 1 至 200。",
        ));
    }
    if !(0..=10).contains(&req.floors_below) {
        errors.push(FieldError::new(
            "floors_below",
            "range",
            "地下层数须为 0 至 10。",
        ));
    }
    if req.units.is_empty() || req.units.len() > MAX_UNITS_PER_BUILDING {
        errors.push(FieldError::new(
            "units",
            "count",
            format!("须有 1 至 {MAX_UNITS_PER_BUILDING} 户。"),
        ));
    }
    let permit = match &req.permit_id {
        None => None,
        Some(id) => match s.store.permit(id).await? {
            Some(m) if m.project_id == project.id && m.status == PermitStatus::Valid => Some(m),
            _ => {
                errors.push(FieldError::new(
                    "permit_id",
                    "invalid_permit",
                    "须为本项目有效的预售许可证。",
                ));
                None
            }
        },
    };
    let now = OffsetDateTime::now_utc();
    let building = Building {
        id: uuid::Uuid::now_v7().to_string(),
        project_id: project.id.clone(),
        number: req.number,
        name: format!("{}栋", req.number),
        floors_above: req.floors_above,
        floors_below: req.floors_below,
    };
    let mut rooms = HashSet::new();
    let mut numbers = HashSet::new();
    let mut units = Vec::new();
    for (i, u) in req.units.iter().enumerate() {
        let f = |name: &str| format!("units[{i}].{name}");
        let before = errors.len();
        text(&mut errors, &f("room_no"), &u.room_no, 16);
        text(&mut errors, &f("use_type"), &u.use_type, 16);
        if !rooms.insert(u.room_no.trim().to_owned()) {
            errors.push(FieldError::new(f("room_no"), "duplicate", "房号重复。"));
        }
        if u.floor == 0 || u.floor > req.floors_above || u.floor < -req.floors_below {
            errors.push(FieldError::new(
                f("floor"),
                "range",
                "楼层须在该栋的地上、地下层数范围内（无 0 层）。",
            ));
        }
        if !is_unit_number(&u.unit_number) {
            errors.push(FieldError::new(
                f("unit_number"),
                "format",
                "不动产单元号须为 28 位（宗地代码 + 定着物特征码 + 幢号 + 户号）。",
            ));
        } else if !u.unit_number.starts_with(&project.parcel_code)
            || u.unit_number[20..24] != format!("{:04}", req.number)
        {
            errors.push(FieldError::new(
                f("unit_number"),
                "mismatch",
                "不动产单元号与本项目宗地代码或楼栋号不符。",
            ));
        }
        if !numbers.insert(u.unit_number.clone()) {
            errors.push(FieldError::new(
                f("unit_number"),
                "duplicate",
                "不动产单元号重复。",
            ));
        }
        let area = |name: &str, v: &str, errors: &mut Vec<FieldError>| match Area::parse(v) {
            // Shared area may be zero (a detached house); the gross area never is.
            Ok(a) if a.0 < 10_000_000 && (a.0 > 0 || name != "gross_area") => Some(a),
            _ => {
                errors.push(FieldError::new(
                    f(name),
                    "area",
                    "面积须为正数，最多两位小数（平方米）。",
                ));
                None
            }
        };
        let gross = area("gross_area", &u.gross_area, &mut errors);
        let internal = area("internal_area", &u.internal_area, &mut errors);
        let shared = area("shared_area", &u.shared_area, &mut errors);
        if let (Some(g), Some(i), Some(sh)) = (gross, internal, shared)
            && g.0 != i.0 + sh.0
        {
            errors.push(FieldError::new(
                f("gross_area"),
                "area_sum",
                format!("建筑面积 {g} 须等于套内面积 {i} 与分摊面积 {sh} 之和。"),
            ));
        }
        if !(2000..=10000).contains(&u.storey_height_mm) {
            errors.push(FieldError::new(
                f("storey_height_mm"),
                "range",
                "层高须为 2000 至 10000 毫米。",
            ));
        }
        let price = match Money::parse_yuan(&u.filed_price) {
            Ok(m) if m.0 > 0 && m.0 <= Money::from_yuan(100_000_000).0 => Some(m),
            _ => {
                errors.push(FieldError::new(
                    f("filed_price"),
                    "price",
                    "备案单价须为正数，最多两位小数（元/平方米）。",
                ));
                None
            }
        };
        if errors.len() > before {
            if errors.len() >= 200 {
                break;
            }
            continue;
        }
        let (Some(g), Some(i), Some(sh), Some(price)) = (gross, internal, shared, price) else {
            continue;
        };
        units.push(Unit {
            id: uuid::Uuid::now_v7().to_string(),
            project_id: project.id.clone(),
            building_id: building.id.clone(),
            permit_id: permit.as_ref().map(|m| m.id.clone()),
            room_no: u.room_no.trim().into(),
            floor: u.floor,
            unit_number: u.unit_number.clone(),
            use_type: u.use_type.trim().into(),
            gross_area: g.0,
            internal_area: i.0,
            shared_area: sh.0,
            storey_height_mm: u.storey_height_mm,
            filed_price_fen: price.0,
            status: if permit.is_some() {
                UnitStatus::Available
            } else {
                UnitStatus::Unreleased
            },
            seized: false,
            mortgaged: false,
            objection: false,
            manual_hold: false,
            version: 1,
            updated_at: now,
        });
    }
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    match s.store.insert_building(&building, &units).await {
        Ok(()) => {}
        Err(StoreError::Conflict { constraint }) => {
            return Err(if constraint.contains("buildings") {
                Error::conflict("building_exists", "本项目已登记该楼栋。")
            } else {
                Error::conflict(
                    "unit_number_taken",
                    "有不动产单元号已被其他房屋使用，整栋未导入。",
                )
            });
        }
        Err(e) => return Err(e.into()),
    }
    let available = units
        .iter()
        .filter(|u| u.status == UnitStatus::Available)
        .count();
    audit_change(
        s,
        caller,
        "building.import",
        "building",
        &building.id,
        serde_json::json!({"project_id": project.id, "number": building.number, "units": units.len(), "available": available}),
    )
    .await?;
    Ok(BuildingView {
        id: building.id,
        number: building.number,
        units: units.len(),
        available,
    })
}

/// The housing authority's decision on a permit, recorded by the registration centre: while a
/// permit is suspended or revoked no contract can be drafted for its units (the draft statement
/// itself checks).
pub async fn set_permit_status(
    s: &Services,
    caller: &Caller,
    id: &str,
    req: PermitStatusChange,
) -> Result<PermitView, Error> {
    if !(caller.is(Role::Reviewer) || caller.is(Role::Admin)) {
        return Err(Error::forbidden(
            "只有登记中心工作人员可以变更预售许可状态。",
        ));
    }
    let mut errors = Vec::new();
    let status = req.status.parse::<PermitStatus>();
    if status.is_err() {
        errors.push(FieldError::new(
            "status",
            "one_of",
            "状态须为 valid、suspended 或 revoked。",
        ));
    }
    text(&mut errors, "reason", &req.reason, 500);
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    let m = s
        .store
        .permit(id)
        .await?
        .ok_or_else(|| Error::not_found("该预售许可证"))?;
    let status = status.expect("checked above");
    if m.status == PermitStatus::Revoked {
        return Err(Error::conflict(
            "permit_revoked",
            "该预售许可证已撤销，不能再变更。",
        ));
    }
    if !s.store.set_permit_status(id, status).await? {
        return Err(Error::conflict("no_change", "预售许可证已是该状态。"));
    }
    audit_change(
        s,
        caller,
        "permit.status",
        "permit",
        id,
        serde_json::json!({"from": m.status, "to": status, "reason": req.reason}),
    )
    .await?;
    Ok(PermitView {
        id: m.id,
        number: m.number,
        status,
        units_released: 0,
    })
}

/// Seizure, objection and mortgage are recorded by the registration centre; a manual hold by
/// the unit's developer or the centre. A frozen unit takes no new contract.
pub async fn set_unit_flag(
    s: &Services,
    caller: &Caller,
    unit_id: &str,
    req: UnitFlagChange,
) -> Result<PublicUnit, Error> {
    let unit = s
        .store
        .unit(unit_id)
        .await?
        .ok_or_else(|| Error::not_found("该房屋"))?;
    let project = s
        .store
        .project(&unit.project_id)
        .await?
        .ok_or_else(|| Error::not_found("该项目"))?;
    let own_developer = caller.is(Role::Developer)
        && caller.organisation_id.as_deref() == Some(project.developer_id.as_str());
    let allowed = caller.is(Role::Reviewer) || (req.flag == UnitFlag::ManualHold && own_developer);
    if !allowed {
        if caller.is(Role::Developer) && !own_developer {
            return Err(Error::not_found("该房屋"));
        }
        return Err(Error::forbidden(
            "查封、异议和抵押由登记中心记载；开发企业只能设置本企业房屋的暂停销售。",
        ));
    }
    let mut errors = Vec::new();
    text(&mut errors, "reason", &req.reason, 500);
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    if !s
        .store
        .set_unit_flag(unit_id, req.flag, req.value, OffsetDateTime::now_utc())
        .await?
    {
        return Err(Error::conflict("no_change", "该房屋已是该状态。"));
    }
    audit_change(
        s,
        caller,
        "unit.flag",
        "unit",
        unit_id,
        serde_json::json!({"flag": req.flag, "value": req.value, "reason": req.reason}),
    )
    .await?;
    let u = s
        .store
        .unit(unit_id)
        .await?
        .ok_or_else(|| Error::not_found("该房屋"))?;
    let building = s
        .store
        .buildings(&u.project_id)
        .await?
        .into_iter()
        .find(|b| b.id == u.building_id)
        .map(|b| b.name)
        .unwrap_or_default();
    let valid = valid_permits(s, &u.project_id).await?;
    Ok(public_unit(u, building, &valid))
}

fn public_unit(u: Unit, building: String, valid_permits: &HashSet<String>) -> PublicUnit {
    let frozen = u.seized || u.objection || u.manual_hold;
    PublicUnit {
        for_sale: u.status == UnitStatus::Available
            && !frozen
            && u.permit_id
                .as_ref()
                .is_some_and(|p| valid_permits.contains(p)),
        id: u.id,
        building,
        room_no: u.room_no,
        floor: u.floor,
        unit_number: u.unit_number,
        use_type: u.use_type,
        gross_area: Area(u.gross_area).to_string(),
        filed_price: Money(u.filed_price_fen).to_string(),
        status: u.status,
        frozen,
        mortgaged: u.mortgaged,
    }
}

async fn valid_permits(s: &Services, project_id: &str) -> Result<HashSet<String>, Error> {
    Ok(s.store
        .permits(project_id)
        .await?
        .into_iter()
        .filter(|m| m.status == PermitStatus::Valid)
        .map(|m| m.id)
        .collect())
}

/// A permit as the developer's desk lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PermitSummary {
    pub id: String,
    pub number: String,
    pub status: PermitStatus,
    pub status_label: &'static str,
    pub issued_on: String,
}

/// One floor of a building's 楼盘表, its units in room order.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub floor: i32,
    pub units: Vec<PublicUnit>,
}

/// A building with its 楼盘表, top floor first (as the table is drawn).
#[derive(Debug, Clone, Serialize)]
pub struct BuildingGrid {
    pub id: String,
    pub number: i32,
    pub name: String,
    pub floors: Vec<Floor>,
}

/// A project at its developer's desk: its permits and buildings.
#[derive(Debug, Clone, Serialize)]
pub struct DeskProject {
    pub project: ProjectView,
    pub permits: Vec<PermitSummary>,
    pub buildings: Vec<BuildingGrid>,
}

/// The projects of the caller's own developer, with permits and buildings (grids left empty).
pub async fn desk_projects(s: &Services, caller: &Caller) -> Result<Vec<DeskProject>, Error> {
    if !caller.is(Role::Developer) {
        return Err(Error::forbidden("只有开发企业的工作人员可以管理项目。"));
    }
    let mut out = Vec::new();
    for p in s.store.projects().await? {
        if caller.organisation_id.as_deref() == Some(p.developer_id.as_str()) {
            out.push(desk(s, p, false).await?);
        }
    }
    Ok(out)
}

/// One of the caller's projects with the 楼盘表 of every building.
pub async fn desk_project(s: &Services, caller: &Caller, id: &str) -> Result<DeskProject, Error> {
    let p = own_project(s, caller, id).await?;
    desk(s, p, true).await
}

async fn desk(s: &Services, p: Project, grids: bool) -> Result<DeskProject, Error> {
    let permits = s.store.permits(&p.id).await?;
    let valid: HashSet<String> = permits
        .iter()
        .filter(|m| m.status == PermitStatus::Valid)
        .map(|m| m.id.clone())
        .collect();
    let units = if grids {
        s.store.units(&p.id).await?
    } else {
        vec![]
    };
    let buildings = s
        .store
        .buildings(&p.id)
        .await?
        .into_iter()
        .map(|b| {
            let mut floors: std::collections::BTreeMap<i32, Vec<PublicUnit>> = Default::default();
            for u in units.iter().filter(|u| u.building_id == b.id) {
                floors.entry(u.floor).or_default().push(public_unit(
                    u.clone(),
                    b.name.clone(),
                    &valid,
                ));
            }
            BuildingGrid {
                id: b.id.clone(),
                number: b.number,
                name: b.name.clone(),
                floors: floors
                    .into_iter()
                    .rev()
                    .map(|(floor, mut units)| {
                        units.sort_by(|a, b| a.room_no.cmp(&b.room_no));
                        Floor { floor, units }
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(DeskProject {
        project: ProjectView {
            id: p.id.clone(),
            name: p.name.clone(),
            town: p.town.clone(),
            parcel_code: p.parcel_code.clone(),
            developer_id: p.developer_id.clone(),
        },
        permits: permits
            .into_iter()
            .map(|m| PermitSummary {
                id: m.id,
                number: m.number,
                status: m.status,
                status_label: m.status.label(),
                issued_on: m.issued_on.to_string(),
            })
            .collect(),
        buildings,
    })
}
