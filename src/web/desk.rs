//! The desks: the developer's contracts, projects, permits and the 楼盘表; the reviewers'
//! queues, oldest first, with whose turn each case is; the administrator's users, staff
//! identities, certificates and dead-letter notifications.

use super::{Chrome, Ctx, PageForm, PageResult, local, page};
use crate::domain::{Duty, Role};
use crate::services::{self, Error, FieldError, Services};
use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Multipart, Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    std::sync::Arc<Services>: FromRef<S>,
{
    Router::new()
        .route("/dev", get(dev))
        .route("/dev/projects", get(projects).post(create_project))
        .route("/dev/projects/{id}", get(project))
        .route("/dev/projects/{id}/permits", post(create_permit))
        .route("/dev/projects/{id}/buildings", post(import_building))
        .route("/review", get(review))
        .route("/admin", get(admin))
        .route("/admin/users", post(create_user))
        .route("/admin/users/{id}/identity", post(staff_identity))
        .route("/admin/certificates/{serial}/revoke", post(revoke))
        .route("/admin/notifications/{id}/requeue", post(requeue))
}

fn only(ctx: &Ctx, role: Role) -> Result<services::Caller, Response> {
    ctx.only(&[role])
}

pub struct Row {
    pub id: String,
    pub contract_no: String,
    pub status: &'static str,
    pub buyers: String,
    pub filing_no: String,
    pub updated_at: String,
}

#[derive(Template)]
#[template(path = "web/dev.html")]
struct Dev {
    chrome: Chrome,
    rows: Vec<Row>,
    counts: Vec<(&'static str, &'static str, i64, bool)>,
    status: String,
    next: Option<String>,
}

#[derive(Deserialize)]
struct DevQuery {
    status: Option<String>,
    cursor: Option<String>,
    unit: Option<String>,
}

async fn dev(ctx: Ctx, Query(q): Query<DevQuery>) -> PageResult {
    let caller = only(&ctx, Role::Developer)?;
    let status = q.status.clone().unwrap_or_default();
    let params = services::listing::CaseParams {
        status: (!status.is_empty()).then(|| status.clone()),
        cursor: q.cursor.clone(),
        unit: q.unit.clone(),
        limit: Some(50),
        ..Default::default()
    };
    let list = services::contracts::list(&ctx.services, &caller, &params)
        .await
        .map_err(|e| ctx.fail(e))?;
    let counts = list
        .counts
        .iter()
        .map(|(s, n)| (s.as_str(), s.label(), *n, s.as_str() == status))
        .collect();
    let next = list.next_cursor.map(|c| {
        format!(
            "/dev?status={}&cursor={}",
            super::percent_encode(&status),
            super::percent_encode(&c)
        )
    });
    Ok(page(Dev {
        chrome: ctx.chrome("合同"),
        rows: list
            .items
            .into_iter()
            .map(|c| Row {
                id: c.id,
                contract_no: c.contract_no,
                status: c.status_label,
                buyers: c.buyers.join("、"),
                filing_no: c.filing_no.unwrap_or_default(),
                updated_at: local(c.updated_at),
            })
            .collect(),
        counts,
        status,
        next,
    }))
}

#[derive(Template)]
#[template(path = "web/projects.html")]
struct Projects {
    chrome: Chrome,
    projects: Vec<services::inventory::DeskProject>,
    errors: Vec<FieldError>,
    values: Vec<(String, String)>,
}

impl Projects {
    fn error(&self, field: &str) -> Option<&str> {
        super::field_error(&self.errors, field)
    }
    fn value(&self, field: &str) -> &str {
        self.values
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

async fn projects_page(
    ctx: &Ctx,
    errors: Vec<FieldError>,
    values: Vec<(String, String)>,
) -> Result<Projects, Response> {
    let caller = only(ctx, Role::Developer)?;
    let projects = services::inventory::desk_projects(&ctx.services, &caller)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(Projects {
        chrome: ctx.chrome("项目与楼盘表"),
        projects,
        errors,
        values,
    })
}

async fn projects(ctx: Ctx) -> PageResult {
    Ok(page(projects_page(&ctx, vec![], vec![]).await?))
}

async fn create_project(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = only(&ctx, Role::Developer)?;
    let g = |k: &str| form.get(k).trim().to_owned();
    let req = services::inventory::NewProject {
        name: g("name"),
        town: g("town"),
        parcel_code: g("parcel_code"),
        land_certificate_no: g("land_certificate_no"),
        land_use: g("land_use"),
        land_term_end: g("land_term_end"),
        planning_permit_no: g("planning_permit_no"),
        construction_permit_no: g("construction_permit_no"),
    };
    match services::inventory::create_project(&ctx.services, &caller, req).await {
        Ok(p) => Ok(ctx.done(&format!("/dev/projects/{}", p.id), "项目已登记。")),
        Err(Error::Invalid { fields, .. }) => {
            let p = projects_page(&ctx, fields, form.0.clone()).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page(p)).into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

pub struct Cell {
    pub id: String,
    pub room: String,
    pub state: String,
    pub class: String,
    pub for_sale: bool,
    pub title: String,
}

pub struct FloorRow {
    pub floor: i32,
    pub cells: Vec<Cell>,
}

pub struct Grid {
    pub name: String,
    pub rows: Vec<FloorRow>,
    pub counts: String,
}

#[derive(Template)]
#[template(path = "web/project.html")]
struct ProjectPage {
    chrome: Chrome,
    p: services::inventory::DeskProject,
    grids: Vec<Grid>,
    valid_permits: Vec<(String, String)>,
    error: Option<String>,
}

fn grid(b: &services::inventory::BuildingGrid) -> Grid {
    use crate::domain::lifecycle::UnitStatus;
    let mut tally: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let rows = b
        .floors
        .iter()
        .map(|f| FloorRow {
            floor: f.floor,
            cells: f
                .units
                .iter()
                .map(|u| {
                    let state = if u.frozen {
                        format!("{}·冻结", u.status.label())
                    } else {
                        u.status.label().to_owned()
                    };
                    *tally.entry(u.status.label()).or_default() += 1;
                    let class = format!(
                        "u u-{}{}",
                        u.status.as_str(),
                        if u.frozen { " u-frozen" } else { "" }
                    );
                    Cell {
                        title: format!(
                            "{} {}，建筑面积 {} 平方米，备案价 {} 元/平方米，{}",
                            b.name, u.room_no, u.gross_area, u.filed_price, state
                        ),
                        id: u.id.clone(),
                        room: u.room_no.clone(),
                        for_sale: u.for_sale,
                        class,
                        state: if u.status == UnitStatus::Available && !u.for_sale && !u.frozen {
                            format!("{state}（许可无效）")
                        } else {
                            state
                        },
                    }
                })
                .collect(),
        })
        .collect();
    Grid {
        name: b.name.clone(),
        rows,
        counts: tally
            .iter()
            .map(|(k, v)| format!("{k} {v} 套"))
            .collect::<Vec<_>>()
            .join("，"),
    }
}

async fn project_page(ctx: &Ctx, id: &str, error: Option<String>) -> Result<ProjectPage, Response> {
    let caller = only(ctx, Role::Developer)?;
    let p = services::inventory::desk_project(&ctx.services, &caller, id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let grids = p.buildings.iter().map(grid).collect();
    let valid_permits = p
        .permits
        .iter()
        .filter(|m| m.status == crate::domain::lifecycle::PermitStatus::Valid)
        .map(|m| (m.id.clone(), m.number.clone()))
        .collect();
    Ok(ProjectPage {
        chrome: ctx.chrome(format!("{} · 楼盘表", p.project.name)),
        p,
        grids,
        valid_permits,
        error,
    })
}

async fn project(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    Ok(page(project_page(&ctx, &id, None).await?))
}

fn messages(fields: &[FieldError], message: String) -> String {
    if fields.is_empty() {
        message
    } else {
        fields
            .iter()
            .map(|f| format!("{}：{}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("；")
    }
}

async fn create_permit(ctx: Ctx, Path(id): Path<String>, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = only(&ctx, Role::Developer)?;
    let g = |k: &str| form.get(k).trim().to_owned();
    let buildings = g("buildings")
        .split([',', '，', ' '])
        .filter(|x| !x.is_empty())
        .map(|x| x.parse::<i32>().unwrap_or(-1))
        .collect();
    let req = services::inventory::NewPermit {
        number: g("number"),
        authority: g("authority"),
        issued_on: g("issued_on"),
        escrow_bank: g("escrow_bank"),
        escrow_account_name: g("escrow_account_name"),
        escrow_account_no: g("escrow_account_no"),
        buildings,
    };
    match services::inventory::create_permit(&ctx.services, &caller, &id, req).await {
        Ok(p) => Ok(ctx.done(
            &format!("/dev/projects/{id}"),
            &format!("预售许可已登记，{} 套房屋可售。", p.units_released),
        )),
        Err(Error::Invalid {
            fields, message, ..
        }) => {
            let p = project_page(&ctx, &id, Some(messages(&fields, message))).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page(p)).into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

async fn import_building(
    ctx: Ctx,
    Path(id): Path<String>,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> PageResult {
    ctx.caller()?;
    let mut mp = mp.map_err(|_| super::not_a_form(&ctx))?;
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut csv = bytes::Bytes::new();
    let bad = |ctx: &Ctx| {
        ctx.fail(Error::invalid(vec![FieldError::new(
            "file",
            "unreadable",
            "上传的文件无法读取，请重试。",
        )]))
    };
    while let Some(f) = mp.next_field().await.map_err(|_| bad(&ctx))? {
        let name = f.name().unwrap_or("").to_owned();
        if name == "file" {
            csv = f.bytes().await.map_err(|_| bad(&ctx))?;
        } else if fields.len() < 20 {
            fields.push((name, f.text().await.map_err(|_| bad(&ctx))?));
        }
    }
    let form = PageForm(fields);
    form.check(&ctx)?;
    let caller = only(&ctx, Role::Developer)?;
    let num = |k: &str| form.get(k).trim().parse::<i32>().unwrap_or(i32::MIN);
    let result = match services::inventory::units_from_csv(&csv) {
        Ok(units) => {
            let permit = form.get("permit_id").trim();
            let req = services::inventory::NewBuilding {
                number: num("number"),
                floors_above: num("floors_above"),
                floors_below: num("floors_below"),
                permit_id: (!permit.is_empty()).then(|| permit.to_owned()),
                units,
            };
            services::inventory::import_building(&ctx.services, &caller, &id, req).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(b) => Ok(ctx.done(
            &format!("/dev/projects/{id}"),
            &format!(
                "楼栋已导入：{} 套房屋，其中 {} 套可售。",
                b.units, b.available
            ),
        )),
        Err(Error::Invalid {
            fields, message, ..
        }) => {
            let p = project_page(&ctx, &id, Some(messages(&fields, message))).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page(p)).into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

// ---- Reviewers -------------------------------------------------------------------------------

pub struct QueueRow {
    pub href: String,
    pub title: String,
    pub since: String,
    pub turn: String,
    pub yours: bool,
    pub note: String,
}

pub struct Queue {
    pub key: &'static str,
    pub title: &'static str,
    pub rows: Vec<QueueRow>,
}

#[derive(Template)]
#[template(path = "web/review.html")]
struct Review {
    chrome: Chrome,
    queues: Vec<Queue>,
    duties: String,
}

async fn review(ctx: Ctx) -> PageResult {
    let caller = only(&ctx, Role::Reviewer)?;
    let s = &ctx.services;
    let mut queues = Vec::new();
    let filing = services::contracts::filing_queue(s, &caller)
        .await
        .map_err(|e| ctx.fail(e))?;
    queues.push(Queue {
        key: "filing",
        title: "合同备案审核",
        rows: filing
            .into_iter()
            .map(|q| QueueRow {
                href: format!("/contracts/{}", q.id),
                title: format!("合同 {}", q.contract_no),
                since: local(q.submitted_at),
                turn: "任一审核人员".into(),
                yours: true,
                note: match q.checks_passed {
                    Some(true) => "提交时十项检查全部通过".into(),
                    Some(false) => format!("提交时未通过的检查：{:?}", q.failed_checks),
                    None => String::new(),
                },
            })
            .collect(),
    });
    for (key, title) in [
        ("accept", "预告登记：待受理"),
        ("first_review", "预告登记：待初审"),
        ("second_review", "预告登记：待复审"),
        ("record", "预告登记：待登簿"),
    ] {
        let params = services::listing::CaseParams {
            step: Some(key.into()),
            limit: Some(100),
            ..Default::default()
        };
        let list = services::registrations::list(s, &caller, &params)
            .await
            .map_err(|e| ctx.fail(e))?;
        queues.push(Queue {
            key,
            title,
            rows: list
                .items
                .into_iter()
                .map(|r| {
                    let (turn, yours) = match &r.next_step {
                        Some(n) => (
                            format!(
                                "{}（{}）{}",
                                n.label,
                                n.who_label,
                                if n.excluded.is_empty() {
                                    String::new()
                                } else {
                                    "；已办理前序步骤的人员不能办理".into()
                                }
                            ),
                            n.you_may_take,
                        ),
                        None => (String::new(), false),
                    };
                    QueueRow {
                        href: format!("/registrations/{}", r.id),
                        title: match &r.acceptance_no {
                            Some(n) => format!("受理号 {n}（合同 {}）", r.contract_no),
                            None => format!("合同 {} 的预告登记申请", r.contract_no),
                        },
                        since: local(r.updated_at),
                        turn,
                        yours,
                        note: r.status_label,
                    }
                })
                .collect(),
        });
    }
    let duties = caller
        .duties
        .iter()
        .map(|d| match d {
            Duty::FirstReviewer => "初审",
            Duty::SecondReviewer => "复审",
            Duty::Recorder => "登簿",
            Duty::Drafter => "起草",
            Duty::Confirmer => "确认",
        })
        .collect::<Vec<_>>()
        .join("、");
    Ok(page(Review {
        chrome: ctx.chrome("审核队列"),
        queues,
        duties: if duties.is_empty() {
            "受理".into()
        } else {
            duties
        },
    }))
}

// ---- Administrators --------------------------------------------------------------------------

pub struct UserRow {
    pub id: String,
    pub username: String,
    pub name: String,
    pub role: &'static str,
    pub duties: String,
    pub staff: bool,
    pub disabled: bool,
}

pub struct CertRow {
    pub serial: String,
    pub subject: String,
    pub profile: String,
    pub not_after: String,
    pub state: &'static str,
    pub valid: bool,
}

pub struct EventRow {
    pub id: String,
    pub kind: String,
    pub attempts: i32,
    pub error: String,
}

#[derive(Template)]
#[template(path = "web/admin.html")]
struct Admin {
    chrome: Chrome,
    users: Vec<UserRow>,
    certificates: Vec<CertRow>,
    dead: Vec<EventRow>,
    pending: usize,
    error: Option<String>,
}

fn role_label(r: Role) -> &'static str {
    match r {
        Role::Buyer => "买受人",
        Role::Developer => "开发企业",
        Role::Reviewer => "登记中心",
        Role::Admin => "管理员",
    }
}

async fn admin_page(ctx: &Ctx, error: Option<String>) -> Result<Admin, Response> {
    let caller = only(ctx, Role::Admin)?;
    let s = &ctx.services;
    let users = services::accounts::list_users(s, &caller)
        .await
        .map_err(|e| ctx.fail(e))?;
    let certs = services::pki::list(s, &caller)
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut events = Vec::new();
    let mut after = 0;
    // Every event, a page at a time (the dead letters are what the page is about).
    loop {
        let page = services::notifications::list(s, &caller, after)
            .await
            .map_err(|e| ctx.fail(e))?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        events.extend(page);
        if events.len() > 5000 {
            break;
        }
        after = last;
    }
    use crate::domain::lifecycle::{DeliveryState, IssuedCertificateState};
    Ok(Admin {
        chrome: ctx.chrome("管理"),
        users: users
            .into_iter()
            .map(|u| UserRow {
                staff: matches!(u.role, Role::Developer | Role::Reviewer),
                id: u.id,
                username: u.username,
                name: u.display_name,
                role: role_label(u.role),
                duties: u
                    .duties
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                disabled: u.disabled,
            })
            .collect(),
        certificates: certs
            .into_iter()
            .rev()
            .take(200)
            .map(|c| CertRow {
                valid: c.status == IssuedCertificateState::Valid,
                state: c.status.label(),
                serial: c.serial,
                subject: c.subject,
                profile: c.profile,
                not_after: local(c.not_after),
            })
            .collect(),
        pending: events
            .iter()
            .filter(|e| e.state == DeliveryState::Pending)
            .count(),
        dead: events
            .into_iter()
            .filter(|e| e.state == DeliveryState::Dead)
            .map(|e| EventRow {
                id: e.id,
                kind: e.kind,
                attempts: e.attempts,
                error: e.last_error.unwrap_or_default(),
            })
            .collect(),
        error,
    })
}

async fn admin(ctx: Ctx) -> PageResult {
    Ok(page(admin_page(&ctx, None).await?))
}

async fn admin_result(ctx: &Ctx, r: Result<String, Error>) -> PageResult {
    match r {
        Ok(notice) => Ok(ctx.done("/admin", &notice)),
        Err(Error::Invalid {
            fields, message, ..
        }) => {
            let p = admin_page(ctx, Some(messages(&fields, message))).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page(p)).into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

async fn create_user(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = only(&ctx, Role::Admin)?;
    let role = form.get("role").parse::<Role>();
    let duties: Vec<Duty> = form
        .all("duty")
        .into_iter()
        .filter_map(|d| d.parse().ok())
        .collect();
    let r = match role {
        Ok(role) => {
            let org = form.get("organisation_id").trim();
            services::accounts::create_user(
                &ctx.services,
                &caller,
                services::accounts::NewUserRequest {
                    username: form.get("username").trim().to_owned(),
                    display_name: form.get("display_name").trim().to_owned(),
                    password: form.get("password").to_owned(),
                    role,
                    duties,
                    organisation_id: (!org.is_empty()).then(|| org.to_owned()),
                },
            )
            .await
            .map(|u| format!("账号 {} 已创建。", u.username))
        }
        Err(_) => Err(Error::invalid(vec![FieldError::new(
            "role",
            "one_of",
            "请选择岗位。",
        )])),
    };
    admin_result(&ctx, r).await
}

async fn staff_identity(ctx: Ctx, Path(id): Path<String>, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = only(&ctx, Role::Admin)?;
    let r = services::identity::register_identity(
        &ctx.services,
        &caller,
        &id,
        form.get("real_name"),
        form.get("id_number"),
    )
    .await
    .map(|()| "实名信息已登记。".to_owned());
    admin_result(&ctx, r).await
}

async fn revoke(ctx: Ctx, Path(serial): Path<String>, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = only(&ctx, Role::Admin)?;
    let reason = services::pki::RevocationReason::parse(form.get("reason"))
        .unwrap_or(services::pki::RevocationReason::Unspecified);
    let r = services::pki::revoke(&ctx.services, Some(&caller), &serial, reason)
        .await
        .map(|c| format!("证书 {} 已吊销。", c.serial));
    admin_result(&ctx, r).await
}

async fn requeue(ctx: Ctx, Path(id): Path<String>, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = only(&ctx, Role::Admin)?;
    let r = services::notifications::requeue(&ctx.services, &caller, &id)
        .await
        .map(|()| "通知已重新排队投递。".to_owned());
    admin_result(&ctx, r).await
}
