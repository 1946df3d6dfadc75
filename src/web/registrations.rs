//! Registration pages: a case (its state, the opinions, the materials, the certificate with its
//! QR code, and exactly the actions the registration table gives this person, each with the
//! words it needs), and a buyer's library of materials to hand in.

use super::contracts::{TimelineUi, field_label, qr_data_uri};
use super::{Chrome, Ctx, PageForm, PageResult, local, page};
use crate::domain::Role;
use crate::services::registrations::{self as svc, Item, Items, Note, RegistrationView};
use crate::services::{self, Error, FieldError, Services};
use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Multipart, Path};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    std::sync::Arc<Services>: FromRef<S>,
{
    Router::new()
        .route("/registrations/{id}", get(case))
        .route("/registrations/{id}/act/{action}", post(act))
        .route("/registrations/{id}/certificate", get(certificate))
        .route("/registrations/{id}/certificate.ofd", get(certificate_ofd))
        .route("/materials", get(materials).post(upload))
        .route("/materials/{sha}", get(material))
}

/// The standard items of a refusal, a requisition or a rejection (each about one material or
/// subject), besides notes.
pub const ITEMS: &[(&str, &str, &str)] = &[
    ("id_card", "missing", "缺少申请人身份证明材料。"),
    (
        "contract",
        "not_filed",
        "预售合同未备案或备案信息与申请不一致。",
    ),
    ("consent", "missing", "缺少共有人同意或委托材料。"),
    ("applicant", "mismatch", "申请人与合同买受人不一致。"),
    ("unit", "frozen", "房屋被查封、存在异议或已暂停交易。"),
    ("other", "unclear", "申请材料不清晰或不完整。"),
];

pub struct OpinionUi {
    pub step: String,
    pub opinion: String,
    pub at: String,
}

pub struct FormUi {
    pub action: &'static str,
    pub label: String,
    pub enabled: bool,
    pub reason: Option<String>,
    /// `opinion`, `items`, `note`, `hand_in` or `plain`.
    pub needs: &'static str,
}

#[derive(Template)]
#[template(path = "web/registration.html")]
struct Case {
    chrome: Chrome,
    r: RegistrationView,
    forms: Vec<FormUi>,
    opinions: Vec<OpinionUi>,
    hold_reasons: Vec<String>,
    items: Vec<(usize, String, &'static str)>,
    my_materials: Vec<services::materials::MaterialView>,
    certificate_link: Option<String>,
    certificate_qr: String,
    timeline: Vec<TimelineUi>,
    is_reviewer: bool,
    error: Option<String>,
}

fn needs(action: &str) -> &'static str {
    match action {
        "accept" | "first_review" | "second_review" | "record" => "opinion",
        "not_accept" | "reject" | "requisition" => "items",
        "withdraw" | "suspend" | "resume" | "cancel_entry" => "note",
        "hand_in" => "hand_in",
        _ => "plain",
    }
}

fn step_label(step: &str) -> String {
    match step {
        "apply" => "申请".into(),
        other => other
            .parse::<crate::domain::lifecycle::RegistrationStatus>()
            .map(|s| s.label().to_owned())
            .unwrap_or_else(|_| other.to_owned()),
    }
}

async fn case_page(ctx: &Ctx, id: &str, error: Option<String>) -> Result<Case, Response> {
    let caller = ctx.caller()?.clone();
    let s = &ctx.services;
    let r = svc::get(s, &caller, id).await.map_err(|e| ctx.fail(e))?;
    let forms = r
        .actions
        .iter()
        // Cancelling the entry needs a stored joint request or court document: the API's.
        .filter(|a| a.action != "cancel_entry")
        .map(|a| FormUi {
            action: a.action,
            label: a.label.to_owned(),
            enabled: a.enabled,
            reason: a.reason.clone(),
            needs: needs(a.action),
        })
        .collect();
    let opinions = r
        .opinions
        .iter()
        .map(|o| OpinionUi {
            step: step_label(o["step"].as_str().unwrap_or("")),
            opinion: o["opinion"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    o["items"].as_array().map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i["message"].as_str())
                            .collect::<Vec<_>>()
                            .join("；")
                    })
                })
                .or_else(|| o["reason"].as_str().map(str::to_owned))
                .unwrap_or_default(),
            at: o["at"]
                .as_str()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map(local)
                .unwrap_or_default(),
        })
        .collect();
    let hold_reasons = r
        .hold_reasons
        .iter()
        .map(|h| {
            let field = h["field"].as_str().unwrap_or("");
            let message = h["message"].as_str().or(h["reason"].as_str()).unwrap_or("");
            if field.is_empty() {
                message.to_owned()
            } else {
                format!("{}：{message}", item_label(field))
            }
        })
        .collect();
    let my_materials = if caller.role == Role::Buyer {
        services::materials::mine(s, &caller)
            .await
            .map_err(|e| ctx.fail(e))?
    } else {
        vec![]
    };
    let digits = r
        .certificate_no
        .as_deref()
        .map(|n| n.chars().filter(char::is_ascii_digit).collect::<String>());
    let base = s
        .config
        .public_url
        .clone()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    let certificate_link = digits.as_ref().map(|d| format!("/c/{d}"));
    let certificate_qr = certificate_link
        .as_ref()
        .map(|l| qr_data_uri(&format!("{base}{l}")))
        .unwrap_or_default();
    let timeline = services::contracts::timeline(s, &caller, &r.contract_id)
        .await
        .map_err(|e| ctx.fail(e))?
        .into_iter()
        .map(|t| TimelineUi {
            at: local(t.at),
            label: t.label,
            who: t.who,
        })
        .collect();
    Ok(Case {
        chrome: ctx.chrome("预告登记"),
        forms,
        opinions,
        hold_reasons,
        items: ITEMS
            .iter()
            .enumerate()
            .map(|(i, (f, _, m))| (i, item_label(f), *m))
            .collect(),
        my_materials,
        certificate_link,
        certificate_qr,
        timeline,
        is_reviewer: caller.role == Role::Reviewer,
        error,
        r,
    })
}

fn item_label(field: &str) -> String {
    match field {
        "id_card" => "身份证明".into(),
        "contract" => "预售合同".into(),
        "consent" => "同意或委托材料".into(),
        "applicant" => "申请人".into(),
        "unit" => "房屋".into(),
        "other" => "其他".into(),
        f => field_label(f),
    }
}

async fn case(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    Ok(page(case_page(&ctx, &id, None).await?))
}

async fn act(ctx: Ctx, Path((id, action)): Path<(String, String)>, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.caller()?.clone();
    let s = &ctx.services;
    let note = || Note {
        reason: form.get("reason").to_owned(),
    };
    let items = || {
        let mut items: Vec<Item> = form
            .all("item")
            .into_iter()
            .filter_map(|i| i.parse::<usize>().ok())
            .filter_map(|i| ITEMS.get(i))
            .map(|(f, c, m)| Item {
                field: (*f).into(),
                code: (*c).into(),
                message: (*m).into(),
            })
            .collect();
        let extra = form.get("note").trim();
        if !extra.is_empty() {
            items.push(Item {
                field: "other".into(),
                code: "note".into(),
                message: extra.to_owned(),
            });
        }
        Items { items }
    };
    let opinion = form.get("opinion");
    use svc::RegistrationStep as Step;
    let result = match action.as_str() {
        "accept" => svc::step(s, &caller, &id, Step::Accept, opinion).await,
        "first_review" => svc::step(s, &caller, &id, Step::FirstReview, opinion).await,
        "second_review" => svc::step(s, &caller, &id, Step::SecondReview, opinion).await,
        "record" => svc::step(s, &caller, &id, Step::Record, opinion).await,
        "not_accept" => svc::not_accept(s, &caller, &id, items()).await,
        "reject" => svc::reject(s, &caller, &id, items()).await,
        "requisition" => svc::requisition(s, &caller, &id, items()).await,
        "withdraw" => svc::withdraw(s, &caller, &id, note()).await,
        "suspend" => svc::suspend(s, &caller, &id, note()).await,
        "resume" => svc::resume(s, &caller, &id, note()).await,
        "hand_in" => {
            let materials = form
                .all("material")
                .into_iter()
                .map(str::to_owned)
                .collect();
            svc::hand_in(s, &caller, &id, svc::HandIn { materials }).await
        }
        _ => Err(Error::not_found("该操作")),
    };
    match result {
        Ok(r) => Ok(ctx.done(
            &format!("/registrations/{}", r.id),
            &format!("已办理。当前状态：{}。", r.status_label),
        )),
        Err(Error::Invalid {
            fields, message, ..
        }) => {
            let text = fields
                .first()
                .map(|f: &FieldError| f.message.clone())
                .unwrap_or(message);
            let p = case_page(&ctx, &id, Some(text)).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page(p)).into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

/// The certificate as an OFD package (GB/T 38540 seal, SM2).
async fn certificate_ofd(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let ofd = svc::certificate_ofd(&ctx.services, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut res = ofd.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ofd"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"certificate.ofd\""),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}

async fn certificate(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let pdf = svc::certificate_pdf(&ctx.services, &caller, &id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut res = pdf.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"certificate.pdf\""),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}

#[derive(Template)]
#[template(path = "web/materials.html")]
struct Materials {
    chrome: Chrome,
    items: Vec<services::materials::MaterialView>,
    kinds: Vec<(&'static str, &'static str)>,
    error: Option<String>,
}

const KIND_LABELS: [(&str, &str); 5] = [
    ("id_card", "身份证明"),
    ("business_licence", "营业执照"),
    ("court_document", "法院文书"),
    ("consent", "同意书或委托书"),
    ("other", "其他"),
];

async fn materials_page(ctx: &Ctx, error: Option<String>) -> Result<Materials, Response> {
    let caller = ctx.caller()?.clone();
    let items = services::materials::mine(&ctx.services, &caller)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(Materials {
        chrome: ctx.chrome("我的材料库"),
        items,
        kinds: KIND_LABELS.to_vec(),
        error,
    })
}

async fn materials(ctx: Ctx) -> PageResult {
    Ok(page(materials_page(&ctx, None).await?))
}

async fn upload(
    ctx: Ctx,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> PageResult {
    let caller = ctx.caller()?.clone();
    let mut mp = mp.map_err(|_| super::not_a_form(&ctx))?;
    let (mut csrf, mut kind, mut name) = (String::new(), String::new(), String::new());
    let mut file: Option<(String, bytes::Bytes)> = None;
    let bad = |ctx: &Ctx| {
        ctx.fail(Error::invalid(vec![FieldError::new(
            "file",
            "unreadable",
            "上传的文件无法读取（可能过大或上传中断），请重试。",
        )]))
    };
    while let Some(field) = mp.next_field().await.map_err(|_| bad(&ctx))? {
        match field.name() {
            Some("_csrf") => csrf = field.text().await.map_err(|_| bad(&ctx))?,
            Some("kind") => kind = field.text().await.map_err(|_| bad(&ctx))?,
            Some("name") => name = field.text().await.map_err(|_| bad(&ctx))?,
            Some("file") => {
                let declared = field.content_type().unwrap_or("").to_owned();
                file = Some((declared, field.bytes().await.map_err(|_| bad(&ctx))?));
            }
            _ => {}
        }
    }
    PageForm(vec![("_csrf".into(), csrf)]).check(&ctx)?;
    let (declared, bytes) = file.unwrap_or_default();
    match services::materials::upload(&ctx.services, &caller, &declared, &kind, &name, &bytes).await
    {
        Ok(_) => Ok(ctx.done("/materials", "材料已上传。")),
        Err(Error::Invalid {
            fields, message, ..
        }) => {
            let text = fields
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join(" ");
            let p =
                materials_page(&ctx, Some(if text.is_empty() { message } else { text })).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page(p)).into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

/// A material's bytes, always as a download (never rendered in the site's origin).
async fn material(ctx: Ctx, Path(sha): Path<String>) -> PageResult {
    let caller = ctx.caller()?.clone();
    let (media, bytes) = services::materials::content(&ctx.services, &caller, &sha)
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&media) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(res)
}
