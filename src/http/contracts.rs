//! Contracts on the web (first part of issue 7): draft a contract for a unit, read it, withdraw
//! it while unsigned.

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::services::Caller;
use crate::services::contracts::{self, ContractView, NewContract};
use axum::Json;
use axum::extract::State;
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

#[utoipa::path(get, path = "/api/v1/contracts", tag = "contracts", security(("bearer" = [])),
    params(contracts::ContractListQuery),
    responses((status = 200, description = "A page of the contracts the caller may see (a buyer: their own; a developer's staff: their organisation's; reviewers and administrators: all), with the count of each status", body = contracts::ContractList),
              (status = 422, description = "`invalid_query`: a filter, the cursor or the page size is not valid", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<contracts::ContractListQuery>,
) -> ApiResult<Json<contracts::ContractList>> {
    Ok(Json(contracts::list(&state.services, &caller, &q).await?))
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/submit", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "Submitted for filing review (a sealed contract not submitted at once)", body = ContractView),
              (status = 409, description = "`wrong_status`, `already_decided`", body = Problem, content_type = "application/problem+json")))]
pub async fn submit_filing(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::submit_filing(&state.services, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}/reading", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The chapters of the current version and which the calling buyer has opened; a buyer signs only once every chapter is opened and `web.min_reading_secs` have passed", body = contracts::ReadingView)))]
pub async fn reading(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<contracts::ReadingView>> {
    Ok(Json(
        contracts::reading(&state.services, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}/chapters/{n}", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path), ("n" = usize, Path, description = "The chapter, from 0")),
    responses((status = 200, description = "The chapter's text (the same words as the PDF); a buyer's opening of it is recorded", body = crate::services::documents::Chapter)))]
pub async fn chapter(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, n)): ApiPath<(String, usize)>,
) -> ApiResult<Json<crate::services::documents::Chapter>> {
    Ok(Json(
        contracts::chapter(&state.services, &caller, &id, n).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ContractView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(contracts::get(&state.services, &caller, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/withdraw", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ContractView),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status`: only an unsigned contract (draft, awaiting buyers); `already_decided`", body = Problem, content_type = "application/problem+json")))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::withdraw(&state.services, &caller, &id).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/confirm", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ContractView),
              (status = 403, description = "`four_eyes`: the drafter cannot confirm", body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "every broken rule, with its field", body = Problem, content_type = "application/problem+json")))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::confirm(&state.services, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}/document", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The contract's current PDF; its SHA-256 is what a buyer's one-time code is bound to", content_type = "application/pdf"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn document(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<impl axum::response::IntoResponse> {
    let pdf = contracts::document(&state.services, &caller, &id).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/pdf")], pdf))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}/verification", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The verification report of the current PDF (docs/verification.md)", body = serde_json::Value),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn verification(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<crate::pdf::verify::Report>> {
    Ok(Json(
        contracts::verification(&state.services, &caller, &id).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The one-time code issued for the SHA-256 of the current document.
    pub code_id: String,
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/sign", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SignRequest,
    responses((status = 200, body = ContractView),
              (status = 403, description = "`verification_required`, `verification_stale`, `code_wrong`, `code_used`, `code_expired`, `code_other_document`", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`already_signed`, `wrong_status`, `already_decided` (the document changed meanwhile)", body = Problem, content_type = "application/problem+json")))]
pub async fn sign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SignRequest>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::sign_as_buyer(&state.services, &caller, &id, &req.code_id, &req.code).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/seal", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SignRequest,
    responses((status = 200, description = "Sealed and submitted for filing review", body = ContractView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`wrong_status` (not every buyer has signed), `unit_frozen`, `already_decided`", body = Problem, content_type = "application/problem+json")))]
pub async fn seal(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SignRequest>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::seal(&state.services, &caller, &id, &req.code_id, &req.code).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/filing/approve", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "Filed: filing number issued, centre seal, DSS and archive time-stamp added", body = ContractView),
              (status = 409, description = "`already_decided`", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "`signatures_invalid`", body = Problem, content_type = "application/problem+json")))]
pub async fn approve_filing(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::approve_filing(&state.services, &caller, &id).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/contracts/{id}", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = NewContract,
    responses((status = 200, description = "A new version of the draft", body = ContractView),
              (status = 409, description = "`wrong_status`, `already_decided` (another version was saved first)", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<NewContract>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::edit(&state.services, &caller, &id, req).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// Every reason at once (一次性告知).
    pub reasons: Vec<contracts::ReturnReason>,
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/filing/return", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ReturnRequest,
    responses((status = 200, body = ContractView),
              (status = 409, description = "`already_decided`", body = Problem, content_type = "application/problem+json")))]
pub async fn return_filing(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ReturnRequest>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::return_filing(&state.services, &caller, &id, req.reasons).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/reopen", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "A new draft version; earlier signatures are void", body = ContractView),
              (status = 409, description = "`wrong_status`: only a returned contract", body = Problem, content_type = "application/problem+json")))]
pub async fn reopen(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::reopen(&state.services, &caller, &id).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/recall", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ReasonRequest,
    responses((status = 200, description = "Back to draft as a new version; signatures so far are void", body = ContractView),
              (status = 409, description = "`wrong_status`: only before every buyer signed", body = Problem, content_type = "application/problem+json")))]
pub async fn recall(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ReasonRequest>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::recall(&state.services, &caller, &id, &req.reason).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/cancellation", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CancellationRequest,
    responses((status = 200, body = ContractView),
              (status = 409, description = "`wrong_status`: only a filed contract", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "no reason, or a court document that is not the requester's", body = Problem, content_type = "application/problem+json")))]
pub async fn request_cancellation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CancellationRequest>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::request_cancellation(
            &state.services,
            &caller,
            &id,
            &req.reason,
            req.court_document.as_deref(),
        )
        .await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancellationRequest {
    pub reason: String,
    /// SHA-256 of a court judgment or ruling the requester uploaded (kind `court_document`):
    /// it stands in for the other party's consent; a reviewer still approves.
    #[serde(default)]
    pub court_document: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/cancellation/consent", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SignRequest,
    responses((status = 200, body = ContractView),
              (status = 403, description = "`same_party` or an identity-hook refusal", body = Problem, content_type = "application/problem+json")))]
pub async fn consent_cancellation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SignRequest>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::consent_cancellation(&state.services, &caller, &id, &req.code_id, &req.code)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/cancellation/approve", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "Cancelled; the unit is available again", body = ContractView),
              (status = 409, description = "`consent_missing`, `advance_notice_live`, `wrong_status`", body = Problem, content_type = "application/problem+json")))]
pub async fn approve_cancellation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::approve_cancellation(&state.services, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}/evidence", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "ZIP: manifest.json (SHA-256 of every file), manifest.json.p7s (detached CMS by the registration centre), documents/*.pdf, verification.json, signatures.json, audit.json", content_type = "application/zip"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn evidence(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<impl axum::response::IntoResponse> {
    let zip = contracts::evidence(&state.services, &caller, &id).await?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/zip".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"evidence-{id}.zip\""),
            ),
        ],
        zip,
    ))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}/checks", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The ten checks of the reviewer's list (DOMAIN.md), run now, and as they stood at submission", body = contracts::ChecksView),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn checks(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<contracts::ChecksView>> {
    Ok(Json(
        contracts::checks(&state.services, &caller, &id).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/filings", tag = "contracts", security(("bearer" = [])),
    responses((status = 200, description = "Contracts under filing review, oldest first, with the checks that failed at submission", body = [contracts::QueueItem]),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn filing_queue(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<contracts::QueueItem>>> {
    Ok(Json(
        contracts::filing_queue(&state.services, &caller).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/contracts/{id}/invitations", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "Each buyer's invitation code and link (void with a new version)", body = [contracts::Invitation]),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "`not_awaiting_buyers`: only while buyers sign", body = Problem, content_type = "application/problem+json")))]
pub async fn invitations(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<contracts::Invitation>>> {
    Ok(Json(
        contracts::invitations(&state.services, &caller, &id).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationAcceptance {
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/contracts/{id}/invitation", tag = "contracts", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = InvitationAcceptance,
    responses((status = 200, body = ContractView),
              (status = 403, description = "`identity_required` or `invitation_not_for_you`", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "`invitation_invalid`", body = Problem, content_type = "application/problem+json")))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<InvitationAcceptance>,
) -> ApiResult<Json<ContractView>> {
    Ok(Json(
        contracts::accept_invitation(&state.services, &caller, &id, &req.code).await?,
    ))
}
