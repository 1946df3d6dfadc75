//! The inventory on the web: the public, read-only listing of projects and units, and the
//! developer's registration of projects, permits and buildings (JSON or CSV), the centre's
//! permit decisions and unit encumbrances.

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, parse_json};
use crate::services::Caller;
use crate::services::inventory::{
    self, BuildingParams, BuildingView, NewBuilding, NewPermit, NewProject, PermitStatusChange,
    PermitView, ProjectSummary, ProjectView, PublicUnit, UnitFlagChange,
};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;

#[utoipa::path(get, path = "/api/v1/projects", tag = "inventory",
    responses((status = 200, body = [ProjectSummary])))]
pub async fn list_projects(State(state): State<AppState>) -> ApiResult<Json<Vec<ProjectSummary>>> {
    Ok(Json(inventory::list_projects(&state.services).await?))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/units", tag = "inventory",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = [PublicUnit]), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn project_units(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<PublicUnit>>> {
    Ok(Json(inventory::project_units(&state.services, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "inventory", security(("bearer" = [])),
    request_body = NewProject,
    responses((status = 201, body = ProjectView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "every broken rule, with its field", body = Problem, content_type = "application/problem+json")))]
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewProject>,
) -> ApiResult<(StatusCode, Json<ProjectView>)> {
    let p = inventory::create_project(&state.services, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/permits", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    request_body = NewPermit,
    responses((status = 201, body = PermitView),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`permit_number_taken`", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_permit(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<NewPermit>,
) -> ApiResult<(StatusCode, Json<PermitView>)> {
    let m = inventory::create_permit(&state.services, &caller, &id, req).await?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// A building's 楼盘表, as JSON (`NewBuilding`) or as CSV (`text/csv`: a header row naming the
/// columns of `NewUnit`, the building's particulars in the query string).
#[utoipa::path(post, path = "/api/v1/projects/{id}/buildings", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), BuildingParams),
    request_body(content(
        (NewBuilding = "application/json"),
        (String = "text/csv", example = "room_no,floor,unit_number,use_type,gross_area,internal_area,shared_area,storey_height_mm,filed_price\n0101,1,441900104002GB00123F00040101,住宅,89.36,71.20,18.16,3000,30500")
    )),
    responses((status = 201, body = BuildingView),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`building_exists` or `unit_number_taken`: nothing imported", body = Problem, content_type = "application/problem+json"),
              (status = 415, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "every broken rule of every row, nothing imported", body = Problem, content_type = "application/problem+json")))]
pub async fn import_building(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<BuildingView>)> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let req = match essence.as_str() {
        "application/json" => parse_json::<NewBuilding>(&body)?,
        "text/csv" => {
            let params: BuildingParams = serde_urlencoded_params(query.as_deref().unwrap_or(""))?;
            NewBuilding {
                number: params.number,
                floors_above: params.floors_above,
                floors_below: params.floors_below,
                permit_id: params.permit_id,
                units: inventory::units_from_csv(&body)?,
            }
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "请求内容须为 JSON（application/json）或 CSV（text/csv）。",
            ));
        }
    };
    let b = inventory::import_building(&state.services, &caller, &id, req).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

fn serde_urlencoded_params(q: &str) -> Result<BuildingParams, ApiError> {
    axum::extract::Query::<BuildingParams>::try_from_uri(
        &format!("/?{q}").parse().map_err(|_| {
            ApiError::bad_request("invalid_query", "查询参数无法读取。")
        })?,
    )
    .map(|q| q.0)
    .map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            "CSV 导入须在查询参数中给出 number、floors_above、floors_below（整数），可选 permit_id。",
        )
    })
}

#[utoipa::path(post, path = "/api/v1/permits/{id}/status", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path, description = "Permit id")),
    request_body = PermitStatusChange,
    responses((status = 200, body = PermitView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`no_change` or `permit_revoked`", body = Problem, content_type = "application/problem+json")))]
pub async fn set_permit_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PermitStatusChange>,
) -> ApiResult<Json<PermitView>> {
    Ok(Json(
        inventory::set_permit_status(&state.services, &caller, &id, req).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/units/{id}/flags", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path, description = "Unit id")),
    request_body = UnitFlagChange,
    responses((status = 200, body = PublicUnit),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`no_change`", body = Problem, content_type = "application/problem+json")))]
pub async fn set_unit_flag(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UnitFlagChange>,
) -> ApiResult<Json<PublicUnit>> {
    Ok(Json(
        inventory::set_unit_flag(&state.services, &caller, &id, req).await?,
    ))
}
