//! A contract's pages, for everyone who may see it: the contract page (status, timeline, the
//! buyers' progress, and exactly the actions the contract table gives this person — disabled
//! ones with the reason), reading by chapter, the PDF and the evidence package, the developer's
//! invitations and checks, the reviewer's case view, the forms of actions that need words, and
//! the identity-check-and-code step of signing, sealing, consenting and applying.

use super::report::PlainReport;
use super::{Chrome, Ctx, PageForm, PageResult, local, page};
use crate::domain::Role;
use crate::domain::lifecycle::ContractStatus;
use crate::services::contracts::{self as svc, ContractView};
use crate::services::identity::CheckPurpose as Purpose;
use crate::services::{self, Caller, Error, FieldError, Services};
use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, Query};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    std::sync::Arc<Services>: FromRef<S>,
{
    Router::new()
        .route("/my", get(my))
        .route("/contracts/{id}", get(contract))
        .route("/contracts/{id}/pdf", get(pdf))
        .route("/contracts/{id}/evidence", get(evidence))
        .route("/contracts/{id}/read", get(reading))
        .route("/contracts/{id}/read/{n}", get(chapter))
        .route("/contracts/{id}/checks", get(checks))
        .route("/contracts/{id}/act/{action}", get(action_form).post(act))
        .route("/contracts/{id}/step/{action}", get(step).post(complete))
        .route("/contracts/{id}/step/{action}/verify", post(step_verify))
        .route("/contracts/{id}/step/{action}/code", post(step_code))
        .route(
            "/contracts/{id}/edit",
            get(super::drafting::edit_page).post(super::drafting::edit),
        )
        .route(
            "/dev/draft",
            get(super::drafting::new_draft).post(super::drafting::create),
        )
        .route("/dev/draft/check", post(super::drafting::check))
        .route("/v/{contract_no}", get(public_contract))
}

/// How a page offers an action.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A button that posts at once.
    Post,
    /// A page with a form (reasons, notes).
    Form,
    /// The identity check and one-time code, then the signature.
    Step,
    /// The drafting form.
    Edit,
}

fn kind_of(action: &str) -> Kind {
    match action {
        "edit" => Kind::Edit,
        "sign" | "seal" | "consent_cancellation" | "apply" => Kind::Step,
        "recall" | "return_filing" | "request_cancellation" => Kind::Form,
        _ => Kind::Post,
    }
}

/// One action as a page shows it.
pub struct ActionUi {
    pub action: &'static str,
    pub label: String,
    pub enabled: bool,
    pub reason: Option<String>,
    /// `post`, `form`, `step` or `edit`.
    pub kind: &'static str,
    pub href: String,
}

fn action_ui(id: &str, a: &crate::domain::lifecycle::ActionView, caller: &Caller) -> ActionUi {
    let kind = kind_of(a.action);
    let label = match (a.action, caller.role) {
        ("recall", Role::Buyer) => "要求修改或拒绝签署".to_owned(),
        _ => a.label.to_owned(),
    };
    ActionUi {
        action: a.action,
        label,
        enabled: a.enabled,
        reason: a.reason.clone(),
        kind: match kind {
            Kind::Post => "post",
            Kind::Form => "form",
            Kind::Step => "step",
            Kind::Edit => "edit",
        },
        href: match kind {
            Kind::Post => format!("/contracts/{id}/act/{}", a.action),
            Kind::Form => format!("/contracts/{id}/act/{}", a.action),
            Kind::Step => format!("/contracts/{id}/step/{}", a.action),
            Kind::Edit => format!("/contracts/{id}/edit"),
        },
    }
}

pub struct TimelineUi {
    pub at: String,
    pub label: String,
    pub who: String,
}

pub struct InvitationUi {
    pub name: String,
    pub code: String,
    pub link: String,
    pub signed: bool,
    pub qr: String,
}

/// A QR code as an image (an SVG data address: no script, allowed by the pages' policy).
pub fn qr_data_uri(text: &str) -> String {
    use base64::Engine as _;
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(160, 160)
                .quiet_zone(true)
                .build();
            format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(svg)
            )
        }
        Err(_) => String::new(),
    }
}

pub struct CaseUi {
    pub id: String,
    pub status: String,
    pub acceptance_no: String,
    pub certificate_no: String,
}

#[derive(Template)]
#[template(path = "web/contract.html")]
struct ContractPage {
    chrome: Chrome,
    v: ContractView,
    actions: Vec<ActionUi>,
    is_buyer: bool,
    is_staff: bool,
    is_reviewer: bool,
    timeline: Vec<TimelineUi>,
    reading: Option<svc::ReadingView>,
    invitations: Vec<InvitationUi>,
    cases: Vec<CaseUi>,
    returned: Vec<FieldError>,
    data: Option<crate::domain::contract::ContractData>,
    checks: Option<services::checks::Checks>,
    report: Option<PlainReport>,
    unit_label: String,
    /// The status line refreshes itself (htmx) while others are acting on the contract.
    poll: bool,
    signed_count: usize,
}

impl ContractPage {
    fn field_label(&self, field: &str) -> String {
        field_label(field)
    }
}

/// A field of the contract in words (for reasons attached to fields).
pub fn field_label(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("buyers[")
        && let Some((n, tail)) = rest.split_once(']')
        && let Ok(i) = n.parse::<usize>()
    {
        let what = match tail.trim_start_matches('.') {
            "name" => "姓名",
            "id_number" => "身份证号码",
            "share_percent" | "share" => "份额",
            "phone" => "联系电话",
            "address" => "通讯地址",
            _ => "信息",
        };
        return format!("买受人{} {what}", i + 1);
    }
    match field {
        "buyers" => "买受人".into(),
        "unit_price" | "price.unit_price" => "单价".into(),
        "price" | "price.total" => "总价款".into(),
        "payment" | "payment.schedule" => "付款安排".into(),
        "payment.mode" => "付款方式".into(),
        "delivery_date" => "交付日期".into(),
        "dispute" => "争议解决方式".into(),
        "property" | "property.company" => "前期物业服务企业".into(),
        "property.fee" => "物业服务费".into(),
        "supplementary" => "补充协议".into(),
        "co_ownership" => "共有方式".into(),
        "seller" | "seller.address" => "出卖人信息".into(),
        "document" => "合同文件与签章".into(),
        "" => "整体".into(),
        other => other.to_owned(),
    }
}

async fn my(ctx: Ctx) -> PageResult {
    let caller = ctx.only(&[Role::Buyer])?;
    let s = &ctx.services;
    let list = svc::list(s, &caller, &Default::default())
        .await
        .map_err(|e| ctx.fail(e))?;
    let regs = services::registrations::list(s, &caller, &Default::default())
        .await
        .map_err(|e| ctx.fail(e))?;
    let has_identity = services::identity::identity_of(s, &caller.user_id)
        .await
        .map_err(|e| ctx.fail(e))?
        .is_some();
    Ok(page(My {
        chrome: ctx.chrome("我的合同"),
        contracts: list.items,
        registrations: regs.items,
        has_identity,
    }))
}

#[derive(Template)]
#[template(path = "web/my.html")]
struct My {
    chrome: Chrome,
    contracts: Vec<svc::ContractListItem>,
    registrations: Vec<services::registrations::RegistrationListItem>,
    has_identity: bool,
}

impl My {
    fn when(&self, t: &time::OffsetDateTime) -> String {
        local(*t)
    }
}

async fn contract(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let s = &ctx.services;
    let v = svc::get(s, &caller, &id).await.map_err(|e| ctx.fail(e))?;
    let is_buyer = caller.role == Role::Buyer;
    let is_staff = caller.role == Role::Developer;
    let is_reviewer = matches!(caller.role, Role::Reviewer | Role::Admin);
    let cases = services::registrations::of_contract(s, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut actions: Vec<ActionUi> = v
        .actions
        .iter()
        .map(|a| action_ui(&id, a, &caller))
        .collect();
    if let Some(apply) = &cases.apply {
        actions.push(action_ui(&id, apply, &caller));
    }
    let timeline = svc::timeline(s, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?
        .into_iter()
        .map(|t| TimelineUi {
            at: local(t.at),
            label: t.label,
            who: t.who,
        })
        .collect();
    let reading = if is_buyer && v.document_sha256.is_some() {
        Some(
            svc::reading(s, &caller, &id)
                .await
                .map_err(|e| ctx.fail(e))?,
        )
    } else {
        None
    };
    let invitations = if is_staff
        && matches!(
            v.status,
            ContractStatus::AwaitingBuyers | ContractStatus::BuyersSigning
        ) {
        svc::invitations(s, &caller, &id)
            .await
            .map_err(|e| ctx.fail(e))?
            .into_iter()
            .map(|i| InvitationUi {
                qr: qr_data_uri(&i.link),
                name: crate::domain::identity::mask_name(&i.name),
                code: i.code,
                link: i.link,
                signed: i.signed,
            })
            .collect()
    } else {
        vec![]
    };
    let returned = if is_buyer {
        vec![]
    } else if v.returned_reasons.is_empty() {
        svc::last_return_reasons(s, &caller, &id)
            .await
            .map_err(|e| ctx.fail(e))?
    } else {
        v.returned_reasons.clone()
    };
    // The reviewer's case view: the data the PDF was made from, the ten checks, the report.
    let (data, checks, report) = if is_reviewer && v.document_sha256.is_some() {
        let data = svc::data(s, &caller, &id).await.map_err(|e| ctx.fail(e))?;
        let checks = svc::checks(s, &caller, &id)
            .await
            .map_err(|e| ctx.fail(e))?
            .current;
        let report = svc::verification(s, &caller, &id)
            .await
            .map_err(|e| ctx.fail(e))?;
        (Some(data), Some(checks), Some(PlainReport::of(&report)))
    } else {
        (None, None, None)
    };
    let unit_label = svc::data(s, &caller, &id)
        .await
        .map(|d| {
            format!(
                "{}{}{}{}",
                d.project.name, d.unit.building, d.unit.room_no, "室"
            )
        })
        .unwrap_or_default();
    let poll = !is_reviewer
        && matches!(
            v.status,
            ContractStatus::AwaitingBuyers
                | ContractStatus::BuyersSigning
                | ContractStatus::BuyersSigned
                | ContractStatus::Sealed
                | ContractStatus::FilingReview
        );
    Ok(page(ContractPage {
        chrome: ctx.chrome(format!("合同 {}", v.contract_no)),
        poll,
        signed_count: v.buyers.iter().filter(|b| b.signed).count(),
        cases: cases
            .cases
            .iter()
            .map(|r| CaseUi {
                id: r.id.clone(),
                status: r.status_label.clone(),
                acceptance_no: r.acceptance_no.clone().unwrap_or_default(),
                certificate_no: r.certificate_no.clone().unwrap_or_default(),
            })
            .collect(),
        v,
        actions,
        is_buyer,
        is_staff,
        is_reviewer,
        timeline,
        reading,
        invitations,
        returned,
        data,
        checks,
        report,
        unit_label,
    }))
}

fn pdf_response(bytes: Vec<u8>, name: &str, inline: bool) -> Response {
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}; filename=\"{name}\"",
        if inline { "inline" } else { "attachment" }
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    // The PDF may be shown inside the contract page (same site only).
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'self'"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    res
}

#[derive(Deserialize)]
struct DownloadQuery {
    download: Option<String>,
}

async fn pdf(ctx: Ctx, Path(id): Path<String>, Query(q): Query<DownloadQuery>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let bytes = svc::document(&ctx.services, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(pdf_response(bytes, "contract.pdf", q.download.is_none()))
}

async fn evidence(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let zip = svc::evidence(&ctx.services, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut res = zip.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"evidence.zip\""),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}

#[derive(Template)]
#[template(path = "web/reading.html")]
struct Reading {
    chrome: Chrome,
    id: String,
    r: svc::ReadingView,
    sha256: String,
}

async fn reading(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let s = &ctx.services;
    let v = svc::get(s, &caller, &id).await.map_err(|e| ctx.fail(e))?;
    let r = svc::reading(s, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(page(Reading {
        chrome: ctx.chrome("阅读合同"),
        id,
        r,
        sha256: v.document_sha256.unwrap_or_default(),
    }))
}

#[derive(Template)]
#[template(path = "web/chapter.html")]
struct ChapterPage {
    chrome: Chrome,
    id: String,
    c: crate::services::documents::Chapter,
    total: usize,
    next: Option<usize>,
    prev: Option<usize>,
}

async fn chapter(ctx: Ctx, Path((id, n)): Path<(String, usize)>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let s = &ctx.services;
    let c = svc::chapter(s, &caller, &id, n)
        .await
        .map_err(|e| ctx.fail(e))?;
    let total = svc::reading(s, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?
        .chapters
        .len();
    Ok(page(ChapterPage {
        chrome: ctx.chrome(c.title.clone()),
        prev: n.checked_sub(1),
        next: (n + 1 < total).then_some(n + 1),
        id,
        c,
        total,
    }))
}

#[derive(Template)]
#[template(path = "web/checks.html")]
struct ChecksPage {
    chrome: Chrome,
    id: String,
    k: services::checks::Checks,
    seal: Option<ActionUi>,
}

async fn checks(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let s = &ctx.services;
    let view = svc::checks(s, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let v = svc::get(s, &caller, &id).await.map_err(|e| ctx.fail(e))?;
    let seal = v
        .actions
        .iter()
        .find(|a| a.action == "seal")
        .map(|a| action_ui(&id, a, &caller));
    Ok(page(ChecksPage {
        chrome: ctx.chrome("备案十项检查"),
        id,
        k: view.current,
        seal,
    }))
}

/// The standard reasons for returning a filing (each attached to a field), besides notes.
pub const RETURN_REASONS: &[(&str, &str, &str)] = &[
    (
        "unit_price",
        "price_wrong",
        "单价或总价与备案价格、面积不符，请核对。",
    ),
    (
        "payment.schedule",
        "payment_wrong",
        "付款安排有误（合计、日期或贷款信息），请核对。",
    ),
    (
        "delivery_date",
        "delivery_wrong",
        "交付日期与项目计划或预售方案不符，请核对。",
    ),
    (
        "buyers",
        "buyer_wrong",
        "买受人信息（姓名、证件、份额或联系方式）有误，请核对。",
    ),
    (
        "property.company",
        "property_wrong",
        "前期物业服务企业或收费标准有误，请核对。",
    ),
    (
        "dispute",
        "dispute_wrong",
        "争议解决方式表述不规范，请修改。",
    ),
    (
        "supplementary",
        "supplementary_wrong",
        "补充协议含有减轻出卖人责任或加重买受人责任的条款，请修改。",
    ),
    (
        "document",
        "document_wrong",
        "合同文件或签章有问题，请重新签署。",
    ),
];

#[derive(Template)]
#[template(path = "web/action_form.html")]
struct ActionForm {
    chrome: Chrome,
    id: String,
    action: String,
    label: String,
    v: ContractView,
    reasons: Vec<(usize, &'static str, String, &'static str)>,
    fields: Vec<(&'static str, String)>,
    error: Option<String>,
}

fn find_action(v: &ContractView, action: &str) -> Option<crate::domain::lifecycle::ActionView> {
    v.actions.iter().find(|a| a.action == action).cloned()
}

async fn action_form(ctx: Ctx, Path((id, action)): Path<(String, String)>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let v = svc::get(&ctx.services, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let Some(a) = find_action(&v, &action).filter(|_| kind_of(&action) == Kind::Form) else {
        return Err(ctx.fail(Error::not_found("该操作")));
    };
    let ui = action_ui(&id, &a, &caller);
    Ok(page(action_form_page(&ctx, id, &action, ui.label, v, None)))
}

fn action_form_page(
    ctx: &Ctx,
    id: String,
    action: &str,
    label: String,
    v: ContractView,
    error: Option<String>,
) -> ActionForm {
    let reasons = if action == "return_filing" {
        RETURN_REASONS
            .iter()
            .enumerate()
            .map(|(i, (f, _, m))| (i, *f, field_label(f), *m))
            .collect()
    } else {
        vec![]
    };
    let fields = [
        "unit_price",
        "payment.schedule",
        "delivery_date",
        "buyers",
        "property.company",
        "dispute",
        "supplementary",
        "seller",
        "document",
    ]
    .into_iter()
    .map(|f| (f, field_label(f)))
    .collect();
    ActionForm {
        chrome: ctx.chrome(label.clone()),
        id,
        action: action.to_owned(),
        label,
        v,
        reasons,
        fields,
        error,
    }
}

/// An action posted from a page: the table decides in the service; the answer is a 303 to the
/// contract with a notice, or the refusal in words.
async fn act(ctx: Ctx, Path((id, action)): Path<(String, String)>, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.caller()?.clone();
    let s = &ctx.services;
    let result = match action.as_str() {
        "confirm" => svc::confirm(s, &caller, &id).await,
        "withdraw" => svc::withdraw(s, &caller, &id).await,
        "submit_filing" => svc::submit_filing(s, &caller, &id).await,
        "approve_filing" => svc::approve_filing(s, &caller, &id).await,
        "reopen" => svc::reopen(s, &caller, &id).await,
        "approve_cancellation" => svc::approve_cancellation(s, &caller, &id).await,
        "recall" => svc::recall(s, &caller, &id, form.get("reason")).await,
        "request_cancellation" => {
            let court = form.get("court_document").trim();
            svc::request_cancellation(
                s,
                &caller,
                &id,
                form.get("reason"),
                (!court.is_empty()).then_some(court),
            )
            .await
        }
        "return_filing" => {
            let mut reasons: Vec<svc::ReturnReason> = form
                .all("reason")
                .into_iter()
                .filter_map(|i| i.parse::<usize>().ok())
                .filter_map(|i| RETURN_REASONS.get(i))
                .map(|(f, c, m)| svc::ReturnReason {
                    field: (*f).into(),
                    code: (*c).into(),
                    message: (*m).into(),
                })
                .collect();
            let note = form.get("note").trim();
            if !note.is_empty() {
                reasons.push(svc::ReturnReason {
                    field: form.get("note_field").trim().to_owned(),
                    code: "note".into(),
                    message: note.to_owned(),
                });
            }
            svc::return_filing(s, &caller, &id, reasons).await
        }
        _ => Err(Error::not_found("该操作")),
    };
    match result {
        Ok(v) => Ok(ctx.done(
            &format!("/contracts/{}", v.id),
            &format!(
                "已办理：{}。当前状态：{}。",
                label_of(&action),
                v.status_label
            ),
        )),
        Err(Error::Invalid {
            fields, message, ..
        }) if kind_of(&action) == Kind::Form => {
            let v = svc::get(s, &caller, &id).await.map_err(|e| ctx.fail(e))?;
            let text = fields.first().map(|f| f.message.clone()).unwrap_or(message);
            let label = label_of(&action).to_owned();
            Ok((
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                page(action_form_page(&ctx, id, &action, label, v, Some(text))),
            )
                .into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

fn label_of(action: &str) -> &'static str {
    action
        .parse::<crate::domain::lifecycle::ContractAction>()
        .map(|a| a.label())
        .or_else(|_| {
            action
                .parse::<crate::domain::lifecycle::RegistrationAction>()
                .map(|a| a.label())
        })
        .unwrap_or("操作")
}

// ---- The identity check and the code: signing, sealing, consenting, applying ----------------

fn purpose_of(action: &str, caller: &Caller) -> Option<Purpose> {
    Some(match action {
        "sign" => Purpose::SignContract,
        "seal" => Purpose::SealContract,
        "apply" => Purpose::ApplyRegistration,
        "consent_cancellation" if caller.role == Role::Buyer => Purpose::SignContract,
        "consent_cancellation" => Purpose::SealContract,
        _ => return None,
    })
}

#[derive(Template)]
#[template(path = "web/step.html")]
struct Step {
    chrome: Chrome,
    id: String,
    action: String,
    label: String,
    v: ContractView,
    sha256: String,
    fresh: bool,
    code_id: String,
    ui: ActionUi,
    reading: Option<svc::ReadingView>,
    resend_after: u64,
    error: Option<String>,
}

#[derive(Deserialize)]
struct StepQuery {
    code_id: Option<String>,
}

/// The action as the table gives it to this person now (the application from the
/// registration table), or not found.
async fn step_action(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    action: &str,
) -> Result<(ContractView, ActionUi), Response> {
    let s = &ctx.services;
    let v = svc::get(s, caller, id).await.map_err(|e| ctx.fail(e))?;
    let found = if action == "apply" {
        services::registrations::of_contract(s, caller, id)
            .await
            .map_err(|e| ctx.fail(e))?
            .apply
    } else {
        find_action(&v, action)
    };
    match found.filter(|_| kind_of(action) == Kind::Step) {
        Some(a) => {
            let ui = action_ui(id, &a, caller);
            Ok((v, ui))
        }
        None => Err(ctx.fail(Error::not_found("该操作"))),
    }
}

async fn step_page(
    ctx: &Ctx,
    id: String,
    action: String,
    code_id: String,
    error: Option<String>,
) -> Result<Step, Response> {
    let caller = ctx.caller()?.clone();
    let s = &ctx.services;
    let purpose =
        purpose_of(&action, &caller).ok_or_else(|| ctx.fail(Error::not_found("该操作")))?;
    let (v, ui) = step_action(ctx, &caller, &id, &action).await?;
    let fresh = services::identity::is_fresh(s, &caller, purpose)
        .await
        .map_err(|e| ctx.fail(e))?;
    let reading = if action == "sign" {
        Some(
            svc::reading(s, &caller, &id)
                .await
                .map_err(|e| ctx.fail(e))?,
        )
    } else {
        None
    };
    Ok(Step {
        chrome: ctx.chrome(ui.label.clone()),
        label: ui.label.clone(),
        sha256: v.document_sha256.clone().unwrap_or_default(),
        resend_after: if code_id.is_empty() { 0 } else { 60 },
        id,
        action,
        v,
        fresh,
        code_id,
        ui,
        reading,
        error,
    })
}

async fn step(
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    Query(q): Query<StepQuery>,
) -> PageResult {
    let code_id: String = q
        .code_id
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    Ok(page(step_page(&ctx, id, action, code_id, None).await?))
}

async fn step_verify(
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    form: PageForm,
) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.caller()?.clone();
    let purpose =
        purpose_of(&action, &caller).ok_or_else(|| ctx.fail(Error::not_found("该操作")))?;
    step_action(&ctx, &caller, &id, &action).await?;
    super::start_verification(&ctx, purpose, &format!("/contracts/{id}/step/{action}")).await
}

async fn step_code(
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    form: PageForm,
) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.caller()?.clone();
    let purpose =
        purpose_of(&action, &caller).ok_or_else(|| ctx.fail(Error::not_found("该操作")))?;
    let (v, _) = step_action(&ctx, &caller, &id, &action).await?;
    let sha = v.document_sha256.unwrap_or_default();
    let issued = services::identity::request_code(&ctx.services, &caller, purpose, &sha)
        .await
        .map_err(|e| ctx.fail(e))?;
    let phone = services::accounts::phone_of(&ctx.services, &caller)
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut notice = match phone {
        Some(p) => format!("验证码已发送到 {p}，10 分钟内有效。"),
        None => "验证码已发出，10 分钟内有效。".to_owned(),
    };
    if let Some(code) = issued.dev_code {
        notice.push_str(&format!("（开发环境短信沙箱：验证码 {code}）"));
    }
    Ok(ctx.done(
        &format!("/contracts/{id}/step/{action}?code_id={}", issued.code_id),
        &notice,
    ))
}

async fn complete(
    ctx: Ctx,
    Path((id, action)): Path<(String, String)>,
    form: PageForm,
) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.caller()?.clone();
    let s = &ctx.services;
    let (code_id, code) = (form.get("code_id"), form.get("code"));
    let done = match action.as_str() {
        "sign" => svc::sign_as_buyer(s, &caller, &id, code_id, code)
            .await
            .map(|v| (format!("/contracts/{}", v.id), "签署成功。".to_owned())),
        "seal" => svc::seal(s, &caller, &id, code_id, code).await.map(|v| {
            (
                format!("/contracts/{}", v.id),
                format!("已加盖合同专用章。当前状态：{}。", v.status_label),
            )
        }),
        "consent_cancellation" => svc::consent_cancellation(s, &caller, &id, code_id, code)
            .await
            .map(|v| {
                (
                    format!("/contracts/{}", v.id),
                    "已同意注销备案。".to_owned(),
                )
            }),
        "apply" => services::registrations::apply(s, &caller, &id, code_id, code)
            .await
            .map(|r| {
                (
                    format!("/registrations/{}", r.id),
                    "预告登记申请已提交，请等待登记中心受理。".to_owned(),
                )
            }),
        _ => Err(Error::not_found("该操作")),
    };
    match done {
        Ok((to, notice)) => Ok(ctx.done(&to, &notice)),
        // A wrong or spent code: the same step again, the reason beside the code.
        Err(Error::Forbidden { code: c, message })
            if c.starts_with("code_") || c == "verification_stale" =>
        {
            let keep = if c == "code_wrong" { code_id } else { "" };
            let page_ = step_page(&ctx, id, action, keep.to_owned(), Some(message)).await?;
            Ok((axum::http::StatusCode::FORBIDDEN, page(page_)).into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

#[derive(Template)]
#[template(path = "web/public_contract.html")]
struct PublicContract {
    chrome: Chrome,
    contract_no: String,
    f: crate::services::contracts::PublicFiling,
    standing: bool,
    updated_at: String,
}

/// The address printed on every page of a contract: where it stands, for anyone holding it.
async fn public_contract(ctx: Ctx, Path(no): Path<String>) -> PageResult {
    let f = svc::public_contract(&ctx.services, &no)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(page(PublicContract {
        chrome: ctx.chrome("合同状态查询"),
        contract_no: no,
        standing: f.status == ContractStatus::Filed,
        updated_at: local(f.updated_at),
        f,
    }))
}
