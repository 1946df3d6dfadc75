//! The inventory: projects, permits, buildings and units (the 楼盘表), and the public listing of
//! each unit's sale status and filed price.

use super::{Error, Services};
use crate::domain::{Area, Money};
use serde::Serialize;
use std::collections::HashMap;
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
    pub building: String,
    pub room_no: String,
    pub floor: i32,
    pub unit_number: String,
    pub use_type: String,
    /// Projected gross area in m², two decimals.
    pub gross_area: String,
    /// Filed price in yuan per m², two decimals.
    pub filed_price: String,
    pub status: String,
    /// Seized, under objection or on hold: no transaction is possible.
    pub frozen: bool,
    pub mortgaged: bool,
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
    Ok(s.store
        .units(project_id)
        .await?
        .into_iter()
        .map(|u| PublicUnit {
            building: buildings.get(&u.building_id).cloned().unwrap_or_default(),
            room_no: u.room_no,
            floor: u.floor,
            unit_number: u.unit_number,
            use_type: u.use_type,
            gross_area: Area(u.gross_area).to_string(),
            filed_price: Money(u.filed_price_fen).to_string(),
            status: u.status,
            frozen: u.seized || u.objection || u.manual_hold,
            mortgaged: u.mortgaged,
        })
        .collect())
}
