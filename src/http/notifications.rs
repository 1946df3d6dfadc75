//! The notification outbox as administrators see it: what was delivered, what is pending, the
//! dead letters and why.

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{ApiPath, ApiQuery};
use crate::services::Caller;
use crate::services::notifications::{self, OutboxView};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct After {
    /// Events after this sequence number (0: from the start); 200 at most.
    #[serde(default)]
    pub after: i64,
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(After),
    responses((status = 200, body = [OutboxView]),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<After>,
) -> ApiResult<Json<Vec<OutboxView>>> {
    Ok(Json(
        notifications::list(&state.services, &caller, q.after).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/requeue", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path, description = "The event id")),
    responses((status = 204, description = "Due again now, attempts counted afresh"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`not_dead_letter`", body = Problem, content_type = "application/problem+json")))]
pub async fn requeue(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    notifications::requeue(&state.services, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
