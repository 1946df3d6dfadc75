//! The development seed: the sample development of DOMAIN.md (developer, project, permit, three
//! buildings of units in every status) and a demo account for every role. Loading it twice is a
//! no-op, so `serve` can call it on every development start.

use super::accounts::hash_password;
use super::{Error, Services};
use crate::config::DEV_DEMO_PASSWORD;
use crate::domain::lifecycle::{PermitStatus, UnitStatus};
use crate::domain::{Area, Duty, Money, Role, roles};
use crate::store::{Building, Development, Organisation, Permit, Project, Unit, User};
use anyhow::{Context, anyhow};
use serde::Deserialize;
use std::collections::HashMap;
use time::{Date, OffsetDateTime};

/// The fixtures are compiled in so the binary seeds the same data wherever it runs.
pub const SAMPLE_DEVELOPMENT: &str = include_str!("../../fixtures/sample-development.toml");
pub const ACCOUNTS: &str = include_str!("../../fixtures/accounts.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    developer: OrgFixture,
    registration_centre: OrgFixture,
    operator: OrgFixture,
    project: ProjectFixture,
    permit: PermitFixture,
    buildings: Vec<BuildingFixture>,
    floor_premium: i64,
    storey_height_mm: i32,
    layouts: Vec<LayoutFixture>,
    units: Vec<UnitFixture>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgFixture {
    name: String,
    #[serde(default)]
    uscc: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFixture {
    name: String,
    town: String,
    parcel_code: String,
    land_certificate_no: String,
    land_use: String,
    land_term_end: String,
    planning_permit_no: String,
    construction_permit_no: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermitFixture {
    number: String,
    authority: String,
    issued_on: String,
    escrow_bank: String,
    escrow_account_name: String,
    escrow_account_no: String,
    status: PermitStatus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildingFixture {
    number: i32,
    floors_above: i32,
    floors_below: i32,
    released_floors: i32,
    base_price: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFixture {
    position: i32,
    gross: String,
    internal: String,
    shared: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UnitFixture {
    building: i32,
    room: String,
    #[serde(default)]
    unit_number: Option<String>,
    status: UnitStatus,
    #[serde(default)]
    seized: bool,
    #[serde(default)]
    mortgaged: bool,
    #[serde(default)]
    objection: bool,
    #[serde(default)]
    manual_hold: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFixture {
    accounts: Vec<AccountFixture>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFixture {
    username: String,
    display_name: String,
    role: Role,
    #[serde(default)]
    duties: Vec<Duty>,
    #[serde(default)]
    organisation: Option<String>,
    /// The person's ID number (the display name is their real name).
    #[serde(default)]
    id_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOutcome {
    Loaded { users: usize, units: usize },
    AlreadyPresent,
}

fn date(s: &str) -> anyhow::Result<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .with_context(|| format!("bad date `{s}`"))
}

pub async fn load(s: &Services) -> Result<SeedOutcome, Error> {
    let fx: Fixture =
        toml::from_str(SAMPLE_DEVELOPMENT).context("fixtures/sample-development.toml")?;
    let accounts: AccountsFixture = toml::from_str(ACCOUNTS).context("fixtures/accounts.toml")?;
    let dev_uscc = fx
        .developer
        .uscc
        .clone()
        .context("the developer needs a USCC")?;
    if s.store.organisation_by_uscc(&dev_uscc).await?.is_some() {
        return Ok(SeedOutcome::AlreadyPresent);
    }
    let now = OffsetDateTime::now_utc();
    let mut orgs = HashMap::new();
    for (key, kind, o) in [
        ("developer", "developer", &fx.developer),
        (
            "registration_centre",
            "registration_centre",
            &fx.registration_centre,
        ),
        ("operator", "operator", &fx.operator),
    ] {
        let org = Organisation {
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.into(),
            name: o.name.clone(),
            uscc: o.uscc.clone(),
            created_at: now,
        };
        s.store.insert_organisation(&org).await?;
        orgs.insert(key.to_owned(), org.id);
    }

    let dev = development(&fx, &orgs["developer"], now)?;
    let unit_count = dev.units.len();
    s.store.insert_development(&dev).await?;

    // One hash for every demo account (they share the public development password anyway).
    let demo_hash = hash_password(s, DEV_DEMO_PASSWORD.into()).await?;
    for a in &accounts.accounts {
        let organisation_id = match &a.organisation {
            Some(key) => Some(
                orgs.get(key)
                    .cloned()
                    .ok_or_else(|| anyhow!("unknown organisation `{key}`"))?,
            ),
            None => None,
        };
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            username: a.username.clone(),
            display_name: a.display_name.clone(),
            role: a.role.as_str().into(),
            duties: roles::duties_to_column(&a.duties),
            organisation_id,
            password_hash: demo_hash.clone(),
            demo: true,
            disabled: false,
            created_at: now,
        };
        s.store.insert_user(&user).await?;
        if let Some(id) = &a.id_number {
            super::identity::set_identity(s, &user.id, &a.display_name, id)
                .await
                .map_err(|e| anyhow!("identity of {}: {e}", a.username))?;
        }
    }
    Ok(SeedOutcome::Loaded {
        users: accounts.accounts.len(),
        units: unit_count,
    })
}

fn development(
    fx: &Fixture,
    developer_id: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Development> {
    let p = &fx.project;
    let project = Project {
        id: uuid::Uuid::now_v7().to_string(),
        developer_id: developer_id.to_owned(),
        name: p.name.clone(),
        town: p.town.clone(),
        parcel_code: p.parcel_code.clone(),
        land_certificate_no: p.land_certificate_no.clone(),
        land_use: p.land_use.clone(),
        land_term_end: date(&p.land_term_end)?,
        planning_permit_no: p.planning_permit_no.clone(),
        construction_permit_no: p.construction_permit_no.clone(),
        created_at: now,
    };
    let m = &fx.permit;
    let permit = Permit {
        id: uuid::Uuid::now_v7().to_string(),
        project_id: project.id.clone(),
        number: m.number.clone(),
        authority: m.authority.clone(),
        issued_on: date(&m.issued_on)?,
        escrow_bank: m.escrow_bank.clone(),
        escrow_account_name: m.escrow_account_name.clone(),
        escrow_account_no: m.escrow_account_no.clone(),
        status: m.status,
        created_at: now,
    };
    let specials: HashMap<(i32, &str), &UnitFixture> = fx
        .units
        .iter()
        .map(|u| ((u.building, u.room.as_str()), u))
        .collect();
    let mut buildings = Vec::new();
    let mut units = Vec::new();
    for b in &fx.buildings {
        let building = Building {
            id: uuid::Uuid::now_v7().to_string(),
            project_id: project.id.clone(),
            number: b.number,
            name: format!("{}栋", b.number),
            floors_above: b.floors_above,
            floors_below: b.floors_below,
        };
        for floor in 1..=b.floors_above {
            for l in &fx.layouts {
                let room = format!("{:02}{:02}", floor, l.position);
                let special = specials.get(&(b.number, room.as_str()));
                let released = floor <= b.released_floors;
                let (gross, internal, shared) = (
                    Area::parse(&l.gross)?,
                    Area::parse(&l.internal)?,
                    Area::parse(&l.shared)?,
                );
                anyhow::ensure!(
                    gross.0 == internal.0 + shared.0,
                    "layout {} areas do not add up",
                    l.position
                );
                let unit_number =
                    special
                        .and_then(|s| s.unit_number.clone())
                        .unwrap_or_else(|| {
                            format!(
                                "{}F{:04}{:04}",
                                p.parcel_code,
                                b.number,
                                floor * 100 + l.position
                            )
                        });
                let status = match special {
                    Some(s) => s.status,
                    None if released => UnitStatus::Available,
                    None => UnitStatus::Unreleased,
                };
                units.push(Unit {
                    id: uuid::Uuid::now_v7().to_string(),
                    project_id: project.id.clone(),
                    building_id: building.id.clone(),
                    permit_id: released.then(|| permit.id.clone()),
                    room_no: room.clone(),
                    floor,
                    unit_number,
                    use_type: "住宅".into(),
                    gross_area: gross.0,
                    internal_area: internal.0,
                    shared_area: shared.0,
                    storey_height_mm: fx.storey_height_mm,
                    filed_price_fen: Money::from_yuan(
                        b.base_price + fx.floor_premium * floor as i64,
                    )
                    .0,
                    status,
                    seized: special.is_some_and(|s| s.seized),
                    mortgaged: special.is_some_and(|s| s.mortgaged),
                    objection: special.is_some_and(|s| s.objection),
                    manual_hold: special.is_some_and(|s| s.manual_hold),
                    version: 1,
                    updated_at: now,
                });
            }
        }
        buildings.push(building);
    }
    Ok(Development {
        project,
        permits: vec![permit],
        buildings,
        units,
    })
}
