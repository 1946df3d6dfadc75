//! Sign-in, tokens and accounts.

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ClientAddr};
use crate::services::Caller;
use crate::services::accounts::{self, NewUserRequest, OrganisationView, TokenPair, UserView};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 401, description = "`invalid_credentials`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_login_attempts` (per account and per address)", body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenPair>> {
    Ok(Json(
        accounts::login(&state.services, &req.username, &req.password, &addr).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneCodeRequest {
    /// A mainland mobile number (11 digits; `+86`, spaces and dashes allowed).
    pub phone: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneLoginRequest {
    pub challenge_id: String,
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/auth/phone/code", tag = "auth", request_body = PhoneCodeRequest,
    responses(
        (status = 201, description = "A sign-in code is on its way by SMS (the development sandbox returns it as `dev_code`)", body = accounts::PhoneChallengeView),
        (status = 429, description = "`too_many_codes`: at most `sms.codes_per_hour` an hour to one number", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`sms_unavailable`", body = Problem, content_type = "application/problem+json")))]
pub async fn phone_code(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<PhoneCodeRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<accounts::PhoneChallengeView>)> {
    Ok((
        axum::http::StatusCode::CREATED,
        Json(accounts::send_phone_code(&state.services, &req.phone, &addr).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/phone/login", tag = "auth", request_body = PhoneLoginRequest,
    responses(
        (status = 200, description = "Signed in; a number without an account gets a new buyer account", body = TokenPair),
        (status = 422, description = "`validation_failed` with `code_wrong`: wrong, used, expired or tried too often", body = Problem, content_type = "application/problem+json")))]
pub async fn phone_login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<PhoneLoginRequest>,
) -> ApiResult<Json<TokenPair>> {
    Ok(Json(
        accounts::phone_login(&state.services, &req.challenge_id, &req.code, &addr).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair; the refresh token presented is used up", body = TokenPair),
        (status = 401, description = "`invalid_refresh_token` or `refresh_token_reused`", body = Problem, content_type = "application/problem+json")))]
pub async fn refresh(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    Ok(Json(
        accounts::refresh(&state.services, &req.refresh_token, &addr).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "The refresh token and every token rotated from it are revoked")))]
pub async fn logout(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    accounts::logout(&state.services, &req.refresh_token, &addr).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<UserView>> {
    Ok(Json(accounts::me(&state.services, &caller).await?))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = [UserView]), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<UserView>>> {
    Ok(Json(accounts::list_users(&state.services, &caller).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", security(("bearer" = [])), request_body = NewUserRequest,
    responses(
        (status = 201, body = UserView),
        (status = 409, description = "`username_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` with field errors", body = Problem, content_type = "application/problem+json")))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = accounts::create_user(&state.services, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    responses(
        (status = 200, body = UserView),
        (status = 404, description = "No such account, or not yours", body = Problem, content_type = "application/problem+json")))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        accounts::get_user(&state.services, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/organisations/{id}", tag = "accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, body = OrganisationView),
        (status = 404, description = "No such organisation, or not yours", body = Problem, content_type = "application/problem+json")))]
pub async fn get_organisation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrganisationView>> {
    Ok(Json(
        accounts::get_organisation(&state.services, &caller, &id).await?,
    ))
}
