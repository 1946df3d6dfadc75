//! The public, read-only listing of projects and units.

use super::AppState;
use super::error::{ApiResult, Problem};
use crate::services::inventory::{self, ProjectSummary, PublicUnit};
use axum::Json;
use axum::extract::{Path, State};

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
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<PublicUnit>>> {
    Ok(Json(inventory::project_units(&state.services, &id).await?))
}
