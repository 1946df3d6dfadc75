//! Pages for everyone: the home page, signing in (staff with a password, buyers with a code sent
//! to their phone) and out, the large-text switch, "verify anything", how to trust the centre's
//! seal, a certificate's public page (the QR code's target), an invitation's landing page, and
//! a buyer's own real-name registration and face check.

use super::report::PlainReport;
use super::{Chrome, Ctx, PageForm, PageResult, local, local_next, page, session_cookie};
use crate::domain::Role;
use crate::services::identity::CheckPurpose as Purpose;
use crate::services::{self, Error, FieldError, Services};
use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Multipart, Path, Query};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    std::sync::Arc<Services>: FromRef<S>,
{
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_staff))
        .route("/login/phone/code", post(phone_code))
        .route("/login/phone", post(phone_login))
        .route("/logout", post(logout))
        .route("/settings/elder", post(elder))
        .route("/verify", get(verify_page).post(verify_upload))
        .route("/trust", get(trust))
        .route("/public/certificates/{digits}", get(certificate))
        .route("/invitations/{id}", get(invitation).post(accept_invitation))
        .route("/me/identity", get(identity_page).post(identity_save))
        .route("/me/identity/verify", post(identity_verify))
        .route("/identity/return", get(identity_return))
}

#[derive(Template)]
#[template(path = "web/home.html")]
struct Home {
    chrome: Chrome,
    home: Option<&'static str>,
}

async fn home(ctx: Ctx) -> Response {
    let home = ctx.user.as_ref().map(|u| super::home_of(u.caller.role));
    page(Home {
        chrome: ctx.chrome("首页"),
        home,
    })
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "web/login.html")]
struct Login {
    chrome: Chrome,
    next: String,
    username: String,
    phone: String,
    errors: Vec<FieldError>,
}

impl Login {
    fn error(&self, field: &str) -> Option<&str> {
        super::field_error(&self.errors, field)
    }
}

async fn login_page(ctx: Ctx, Query(q): Query<NextQuery>) -> Response {
    page(Login {
        chrome: ctx.chrome("登录"),
        next: local_next(q.next.as_deref()),
        username: String::new(),
        phone: String::new(),
        errors: vec![],
    })
}

/// Signs a person in: the refresh token of a new family becomes the page session.
fn signed_in(ctx: &Ctx, pair: services::accounts::TokenPair, next: &str, notice: &str) -> Response {
    let mut res = ctx.done(next, notice);
    let max_age = ctx.services.tokens.refresh_ttl_secs;
    if let Ok(v) =
        HeaderValue::from_str(&session_cookie(&pair.refresh_token, max_age, ctx.secure()))
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

async fn login_staff(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let next = local_next(Some(form.get("next")));
    let username = form.get("username").trim().to_owned();
    match services::accounts::login(&ctx.services, &username, form.get("password"), &ctx.source)
        .await
    {
        Ok(pair) => {
            let (caller, _) =
                services::accounts::page_session(&ctx.services, &pair.refresh_token, None)
                    .await
                    .map_err(|e| ctx.fail(e))?;
            let to = if next == "/" {
                super::home_of(caller.role).to_owned()
            } else {
                next
            };
            Ok(signed_in(&ctx, pair, &to, "已登录。"))
        }
        Err(Error::Unauthenticated { message, .. }) => Ok((
            axum::http::StatusCode::UNAUTHORIZED,
            page(Login {
                chrome: ctx.chrome("登录"),
                next,
                username,
                phone: String::new(),
                errors: vec![FieldError::new("password", "invalid_credentials", message)],
            }),
        )
            .into_response()),
        Err(e) => Err(ctx.fail(e)),
    }
}

#[derive(Template)]
#[template(path = "web/login_code.html")]
struct LoginCode {
    chrome: Chrome,
    next: String,
    challenge: services::accounts::PhoneChallengeView,
    error: Option<String>,
}

async fn phone_code(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let next = local_next(Some(form.get("next")));
    match services::accounts::send_phone_code(&ctx.services, form.get("phone"), &ctx.source).await {
        Ok(challenge) => Ok(page(LoginCode {
            chrome: ctx.chrome("输入短信验证码"),
            next,
            challenge,
            error: None,
        })),
        Err(Error::Invalid { fields, .. }) => Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            page(Login {
                chrome: ctx.chrome("登录"),
                next,
                username: String::new(),
                phone: form.get("phone").to_owned(),
                errors: fields,
            }),
        )
            .into_response()),
        Err(e) => Err(ctx.fail(e)),
    }
}

async fn phone_login(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let next = local_next(Some(form.get("next")));
    let challenge_id = form.get("challenge_id");
    match services::accounts::phone_login(
        &ctx.services,
        challenge_id,
        form.get("code"),
        &ctx.source,
    )
    .await
    {
        Ok(pair) => {
            let to = if next == "/" { "/my".to_owned() } else { next };
            Ok(signed_in(&ctx, pair, &to, "已登录。"))
        }
        Err(Error::Invalid { fields, .. }) => {
            // The same challenge again, with the reason beside the code field.
            let challenge = services::accounts::PhoneChallengeView {
                challenge_id: challenge_id.to_owned(),
                phone_masked: form.get("phone_masked").to_owned(),
                expires_at: time::OffsetDateTime::now_utc(),
                resend_after_secs: 0,
                dev_code: None,
            };
            Ok((
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                page(LoginCode {
                    chrome: ctx.chrome("输入短信验证码"),
                    next,
                    challenge,
                    error: fields.into_iter().next().map(|f| f.message),
                }),
            )
                .into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

async fn logout(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    if let Some(token) = ctx.session_token() {
        // Ends the whole token family: this page session and any API session refreshed from it.
        let _ = services::accounts::logout(&ctx.services, &token, &ctx.source).await;
    }
    let mut res = ctx.done("/", "已退出登录。");
    if let Ok(v) = HeaderValue::from_str(&session_cookie("", 0, ctx.secure())) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

async fn elder(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let back = local_next(Some(form.get("back")));
    let on = !ctx.elder;
    let mut res = Redirect::to(&back).into_response();
    let cookie = if on {
        format!("{}=1; Path=/; Max-Age=31536000; SameSite=Lax", super::ELDER)
    } else {
        format!("{}=; Path=/; Max-Age=0; SameSite=Lax", super::ELDER)
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

// ---- Verify anything -------------------------------------------------------------------------

#[derive(Deserialize)]
struct VerifyQuery {
    number: Option<String>,
}

#[derive(Template)]
#[template(path = "web/verify.html")]
struct Verify {
    chrome: Chrome,
    number: String,
    report: Option<PlainReport>,
    file_name: String,
    certificate: Option<CertificateView>,
    filing: Option<FilingView>,
    not_found: Option<String>,
}

pub struct CertificateView {
    pub certificate_no: String,
    pub good: bool,
    pub status: &'static str,
    pub entry: &'static str,
    pub matter: String,
    pub unit_number: String,
    pub issued_at: String,
    pub sha256: String,
    pub ofd_sha256: Option<String>,
}

impl CertificateView {
    fn of(c: services::registrations::PublicCertificate) -> CertificateView {
        use crate::domain::lifecycle::{CertificateStatus, EntryStatus};
        CertificateView {
            good: c.status == CertificateStatus::Valid && c.entry_status == EntryStatus::Valid,
            status: c.status.label(),
            entry: c.entry_status.label(),
            certificate_no: c.certificate_no,
            matter: c.matter,
            unit_number: c.unit_number,
            issued_at: local(c.issued_at),
            sha256: c.document_sha256,
            ofd_sha256: c.ofd_sha256,
        }
    }
}

pub struct FilingView {
    pub filing_no: String,
    pub status: &'static str,
    pub standing: bool,
    pub unit_number: String,
    pub updated_at: String,
}

/// The digits of a certificate number as printed (粤(2026)东莞市不动产证明第1234567号) or as
/// in the QR code.
fn certificate_digits(input: &str) -> Option<String> {
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    let looks_like = input.contains("证明") || input.chars().all(|c| c.is_ascii_digit());
    (looks_like && (5..=20).contains(&digits.len())).then_some(digits)
}

async fn verify_page(ctx: Ctx, Query(q): Query<VerifyQuery>) -> PageResult {
    let number = q.number.unwrap_or_default().trim().to_owned();
    let mut v = Verify {
        chrome: ctx.chrome("核验文件或证明"),
        number: number.clone(),
        report: None,
        file_name: String::new(),
        certificate: None,
        filing: None,
        not_found: None,
    };
    if !number.is_empty() {
        if let Some(digits) = certificate_digits(&number) {
            match services::registrations::public_status(&ctx.services, &digits).await {
                Ok(c) => v.certificate = Some(CertificateView::of(c)),
                Err(Error::NotFound { .. }) => {
                    v.not_found = Some(format!("没有找到证明号为“{number}”的不动产登记证明。"))
                }
                Err(e) => return Err(ctx.fail(e)),
            }
        } else {
            match services::contracts::public_filing(&ctx.services, &number).await {
                Ok(f) => {
                    v.filing = Some(FilingView {
                        standing: f.status == crate::domain::lifecycle::ContractStatus::Filed,
                        filing_no: f.filing_no,
                        status: f.status_label,
                        unit_number: f.unit_number,
                        updated_at: local(f.updated_at),
                    })
                }
                Err(Error::NotFound { .. }) => {
                    v.not_found = Some(format!("没有找到备案号为“{number}”的合同备案。"))
                }
                Err(e) => return Err(ctx.fail(e)),
            }
        }
    }
    Ok(page(v))
}

async fn verify_upload(
    ctx: Ctx,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> PageResult {
    let mut mp = mp.map_err(|_| super::not_a_form(&ctx))?;
    let mut file: Option<(String, bytes::Bytes)> = None;
    let mut csrf = String::new();
    while let Some(field) = mp.next_field().await.map_err(|_| bad_upload(&ctx))? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or("").chars().take(100).collect();
                let bytes = field.bytes().await.map_err(|_| bad_upload(&ctx))?;
                file = Some((name, bytes));
            }
            Some("_csrf") => csrf = field.text().await.map_err(|_| bad_upload(&ctx))?,
            _ => {}
        }
    }
    PageForm(vec![("_csrf".into(), csrf)]).check(&ctx)?;
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Err(ctx.fail(Error::invalid(vec![FieldError::new(
            "file",
            "required",
            "请选择要核验的 PDF 或 OFD 文件。",
        )])));
    };
    let report = services::verification::verify_upload(&ctx.services, bytes)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(page(Verify {
        chrome: ctx.chrome("核验结果"),
        number: String::new(),
        report: Some(PlainReport::of(&report)),
        file_name: name,
        certificate: None,
        filing: None,
        not_found: None,
    }))
}

fn bad_upload(ctx: &Ctx) -> Response {
    ctx.fail(Error::invalid(vec![FieldError::new(
        "file",
        "unreadable",
        "上传的文件无法读取（可能过大或上传中断），请重试。",
    )]))
}

#[derive(Template)]
#[template(path = "web/trust.html")]
struct Trust {
    chrome: Chrome,
    fingerprint: String,
}

async fn trust(ctx: Ctx) -> Response {
    page(Trust {
        chrome: ctx.chrome("如何信任本中心的电子印章"),
        fingerprint: services::pki::root_fingerprint(&ctx.services),
    })
}

#[derive(Template)]
#[template(path = "web/certificate.html")]
struct Certificate {
    chrome: Chrome,
    c: CertificateView,
}

async fn certificate(ctx: Ctx, Path(digits): Path<String>) -> PageResult {
    let c = services::registrations::public_status(&ctx.services, &digits)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(page(Certificate {
        chrome: ctx.chrome("不动产登记证明状态"),
        c: CertificateView::of(c),
    }))
}

// ---- Invitations and the buyer's own identity ------------------------------------------------

#[derive(Deserialize)]
struct CodeQuery {
    code: Option<String>,
}

#[derive(Template)]
#[template(path = "web/invitation.html")]
struct Invitation {
    chrome: Chrome,
    id: String,
    code: String,
    here: String,
    signed_in: bool,
}

async fn invitation(ctx: Ctx, Path(id): Path<String>, Query(q): Query<CodeQuery>) -> PageResult {
    let code: String = q
        .code
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect();
    let here = format!("/invitations/{}?code={code}", super::percent_encode(&id));
    if let Some(u) = &ctx.user {
        if u.caller.role != Role::Buyer {
            return Err(ctx.fail(Error::forbidden(
                "签约邀请是发给买受人的；请用买受人的手机号登录后打开。",
            )));
        }
        // Sign-up continues: the real name and ID number, then the face check.
        if !registered_and_checked(&ctx, &u.caller).await? {
            return Err(super::redirect(&format!(
                "/me/identity?next={}",
                super::percent_encode(&here)
            )));
        }
    }
    Ok(page(Invitation {
        chrome: ctx.chrome("合同签约邀请"),
        signed_in: ctx.user.is_some(),
        id,
        code,
        here,
    }))
}

/// Whether a buyer registered their real name and ID number and passed a face check for it.
async fn registered_and_checked(ctx: &Ctx, caller: &services::Caller) -> Result<bool, Response> {
    let s = &ctx.services;
    let has_identity = services::identity::identity_of(s, &caller.user_id)
        .await
        .map_err(|e| ctx.fail(e))?
        .is_some();
    if !has_identity {
        return Ok(false);
    }
    let checked = services::identity::latest(s, caller, Purpose::Register)
        .await
        .map_err(|e| ctx.fail(e))?
        .is_some_and(|v| v.status == crate::domain::identity::VerificationStatus::Passed);
    Ok(checked)
}

async fn accept_invitation(ctx: Ctx, Path(id): Path<String>, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.only(&[Role::Buyer])?;
    if !registered_and_checked(&ctx, &caller).await? {
        return Err(super::redirect(&format!(
            "/me/identity?next={}",
            super::percent_encode(&format!("/invitations/{id}?code={}", form.get("code")))
        )));
    }
    let view =
        services::contracts::accept_invitation(&ctx.services, &caller, &id, form.get("code"))
            .await
            .map_err(|e| ctx.fail(e))?;
    Ok(ctx.done(
        &format!("/contracts/{}", view.id),
        "已接受签约邀请。请先阅读合同全文，再签署。",
    ))
}

#[derive(Template)]
#[template(path = "web/identity.html")]
struct IdentityPage {
    chrome: Chrome,
    next: String,
    name: Option<String>,
    masked: Option<String>,
    phone: Option<String>,
    verification: Option<services::identity::VerificationView>,
    passed: bool,
    real_name: String,
    id_number: String,
    errors: Vec<FieldError>,
}

impl IdentityPage {
    fn error(&self, field: &str) -> Option<&str> {
        super::field_error(&self.errors, field)
    }
}

async fn identity_view(
    ctx: &Ctx,
    next: String,
    real_name: String,
    errors: Vec<FieldError>,
) -> Result<IdentityPage, Response> {
    let caller = &ctx.only(&[Role::Buyer])?;
    let s = &ctx.services;
    let id = services::identity::identity_of(s, &caller.user_id)
        .await
        .map_err(|e| ctx.fail(e))?;
    let verification = services::identity::latest(s, caller, Purpose::Register)
        .await
        .map_err(|e| ctx.fail(e))?;
    let passed = verification
        .as_ref()
        .is_some_and(|v| v.status == crate::domain::identity::VerificationStatus::Passed);
    Ok(IdentityPage {
        chrome: ctx.chrome("实名信息与人脸核验"),
        next,
        name: id
            .as_ref()
            .map(|(n, _)| crate::domain::identity::mask_name(n)),
        masked: id.as_ref().map(|(_, n)| n.masked()),
        phone: services::accounts::phone_of(s, caller)
            .await
            .map_err(|e| ctx.fail(e))?,
        verification,
        passed,
        real_name,
        id_number: String::new(),
        errors,
    })
}

async fn identity_page(ctx: Ctx, Query(q): Query<NextQuery>) -> PageResult {
    let next = local_next(q.next.as_deref());
    Ok(page(
        identity_view(&ctx, next, String::new(), vec![]).await?,
    ))
}

async fn identity_save(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    let caller = ctx.only(&[Role::Buyer])?;
    let next = local_next(Some(form.get("next")));
    let s = &ctx.services;
    if services::identity::identity_of(s, &caller.user_id)
        .await
        .map_err(|e| ctx.fail(e))?
        .is_some()
    {
        return Err(ctx.fail(Error::conflict(
            "identity_set",
            "实名信息已登记，不能自行更改；如有错误请到登记中心窗口办理。",
        )));
    }
    match services::identity::register_identity(
        s,
        &caller,
        &caller.user_id,
        form.get("real_name"),
        form.get("id_number"),
    )
    .await
    {
        Ok(()) => Ok(ctx.done(
            &format!("/me/identity?next={}", super::percent_encode(&next)),
            "实名信息已登记。下一步：人脸核验。",
        )),
        Err(Error::Invalid { fields, .. }) => {
            let mut v = identity_view(&ctx, next, form.get("real_name").to_owned(), fields).await?;
            // What was typed stays (the person's own number, on their own page).
            v.id_number = form.get("id_number").to_owned();
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page(v)).into_response())
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

async fn identity_verify(ctx: Ctx, form: PageForm) -> PageResult {
    form.check(&ctx)?;
    ctx.only(&[Role::Buyer])?;
    let next = local_next(Some(form.get("next")));
    super::start_verification(&ctx, Purpose::Register, &next).await
}

#[derive(Deserialize)]
struct ReturnQuery {
    purpose: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "web/identity_return.html")]
struct IdentityReturn {
    chrome: Chrome,
    v: Option<services::identity::VerificationView>,
    pending: bool,
    retry: String,
    here: String,
}

/// Where the identity provider sends the person back: the result, or a page that waits for it.
async fn identity_return(ctx: Ctx, Query(q): Query<ReturnQuery>) -> PageResult {
    let caller = ctx.caller()?;
    let purpose = q
        .purpose
        .as_deref()
        .and_then(Purpose::parse)
        .unwrap_or(Purpose::Register);
    let next = local_next(q.next.as_deref());
    let v = services::identity::latest(&ctx.services, caller, purpose)
        .await
        .map_err(|e| ctx.fail(e))?;
    use crate::domain::identity::VerificationStatus as V;
    if v.as_ref().is_some_and(|v| v.status == V::Passed) {
        let mut res = ctx.done(&next, "人脸核验通过。");
        if ctx.htmx {
            // The waiting page polls with htmx: send the whole page on, not a fragment.
            *res.status_mut() = axum::http::StatusCode::OK;
            if let Ok(v) = HeaderValue::from_str(&next) {
                res.headers_mut().insert("hx-redirect", v);
            }
        }
        return Ok(res);
    }
    let pending = v.as_ref().is_some_and(|v| v.status == V::Pending);
    Ok(page(IdentityReturn {
        chrome: ctx.chrome(if pending {
            "正在核验"
        } else {
            "核验未通过"
        }),
        here: format!(
            "/identity/return?purpose={}&next={}",
            purpose.as_str(),
            super::percent_encode(&next)
        ),
        v,
        pending,
        retry: next,
    }))
}
