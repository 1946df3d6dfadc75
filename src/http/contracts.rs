//! Contracts on the web (first part of issue 7): draft a contract for a unit, read it, withdraw
//! it while unsigned.

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::ApiJson;
use crate::services::Caller;
use crate::services::contracts::{self, ContractView, NewContract};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

#[utoipa::path(post, path = "/api/v1/contracts", tag = "contracts", security(("bearer" = [])),
    request_body = NewContract,
    responses(
        (status = 201, body = ContractView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`unit_not_available` or `unit_has_live_contract`: one unit, one live contract", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewContract>,
) -> ApiResult<(StatusCode, Json<ContractView>)> {
    let c = contracts::create(&state.services, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ContractView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(contracts::get(&state.services, &caller, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/withdraw", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ContractView),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`contract_not_withdrawable`", body = Problem, content_type = "application/problem+json")))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::withdraw(&state.services, &caller, &id).await?,
    ))
}
