//! The web window: pages for homebuyers (phone first), developers' staff and reviewers (at
//! desks), administrators and the public, in simplified Chinese, rendered on the server
//! (askama, escaped by default). Every action is a plain form POST answered by a 303 redirect;
//! the vendored htmx only adds conveniences (inline validation, status polling, the resend
//! countdown). Pages call the same services as the API and never the store.
//!
//! A page session is a cookie holding a refresh token of the ordinary token family (signing out
//! revokes the family, from the pages or the API); every form carries a CSRF token derived from
//! its own cookie; every page carries a Content-Security-Policy without inline script.

// A page result's error is the response that replaces the page (a redirect to sign in, an
// error page): built once per request and returned straight away, so boxing it buys nothing.
#![allow(clippy::result_large_err)]

pub mod assets;
mod contracts;
mod desk;
mod drafting;
mod public;
mod registrations;
mod report;

use crate::domain::Role;
use crate::services::{Caller, Error, Services};
use askama::Template;
use axum::Router;
use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};

/// The session cookie (a refresh token), the CSRF seed, the large-text switch, a one-time notice.
pub const SESSION: &str = "vw_session";
const CSRF: &str = "vw_csrf";
pub(crate) const ELDER: &str = "vw_elder";
const FLASH: &str = "vw_flash";

/// Every page of the window.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    std::sync::Arc<Services>: FromRef<S>,
{
    Router::new()
        .merge(public::routes())
        .merge(contracts::routes())
        .merge(registrations::routes())
        .merge(desk::routes())
        .merge(assets::routes())
        .layer(middleware::from_fn(page_layer))
}

/// Security headers on every page; a CSRF seed cookie for a browser that has none; a one-time
/// notice cleared once shown.
async fn page_layer(mut req: Request, next: Next) -> Response {
    let cookies = Cookies::from(req.headers());
    let new_seed = cookies.get(CSRF).is_none().then(random_hex);
    if let Some(seed) = &new_seed {
        req.extensions_mut().insert(CsrfSeed(seed.clone()));
    }
    let had_flash = cookies.get(FLASH).is_some();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // A response that set its own policy (a PDF shown in a frame of the site, an upload
    // served sandboxed) keeps it. No `form-action`: the face check hands the person over to
    // the identity provider's site by a redirect after a form, which it would block.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    if let Some(seed) = new_seed
        && let Ok(v) =
            HeaderValue::from_str(&format!("{CSRF}={seed}; Path=/; HttpOnly; SameSite=Lax"))
    {
        h.append(header::SET_COOKIE, v);
    }
    let sets_flash = h
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.starts_with(FLASH)));
    if had_flash && !sets_flash {
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("vw_flash=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
        );
    }
    res
}

/// The CSRF seed given to a browser in this very response.
#[derive(Clone)]
struct CsrfSeed(String);

fn random_hex() -> String {
    let mut b = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The cookies of a request.
pub(crate) struct Cookies(Vec<(String, String)>);

impl From<&HeaderMap> for Cookies {
    fn from(h: &HeaderMap) -> Cookies {
        Cookies(
            h.get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|kv| {
                    let (k, v) = kv.trim().split_once('=')?;
                    Some((k.to_owned(), v.to_owned()))
                })
                .collect(),
        )
    }
}

impl Cookies {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The token a form carries: derived from the browser's seed cookie, which another site cannot
/// read.
fn csrf_token(seed: &str) -> String {
    let d = openssl::sha::sha256(format!("vw-csrf:{seed}").as_bytes());
    d[..16].iter().map(|x| format!("{x:02x}")).collect()
}

/// The signed-in person of a page.
#[derive(Clone, Debug)]
pub struct PageUser {
    pub caller: Caller,
    pub name: String,
}

/// Everything a page needs about its request: the services, the person (if signed in), the
/// CSRF token, the large-text switch, the request id and a one-time notice.
#[derive(Clone)]
pub struct Ctx {
    pub services: std::sync::Arc<Services>,
    pub user: Option<PageUser>,
    pub csrf: String,
    pub elder: bool,
    pub request_id: String,
    pub path: String,
    pub flash: Option<String>,
    pub source: String,
    /// The request came from htmx (a fragment is wanted, or an `HX-Redirect`).
    pub htmx: bool,
    session: Option<String>,
}

impl<S> FromRequestParts<S> for Ctx
where
    S: Send + Sync,
    std::sync::Arc<Services>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let services = std::sync::Arc::<Services>::from_ref(state);
        let cookies = Cookies::from(&parts.headers);
        let seed = parts
            .extensions
            .get::<CsrfSeed>()
            .map(|s| s.0.clone())
            .or_else(|| cookies.get(CSRF).map(str::to_owned))
            .unwrap_or_default();
        let source =
            crate::http::extract::client_addr(parts, services.config.http.trust_forwarded_for).0;
        let session = cookies
            .get(SESSION)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let user = match cookies.get(SESSION) {
            Some(token) if !token.is_empty() => {
                crate::services::accounts::page_session(&services, token, Some(source.clone()))
                    .await
                    .ok()
                    .map(|(caller, name)| PageUser { caller, name })
            }
            _ => None,
        };
        Ok(Ctx {
            user,
            csrf: csrf_token(&seed),
            elder: cookies.get(ELDER) == Some("1"),
            request_id: parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
            flash: cookies
                .get(FLASH)
                .and_then(percent_decode)
                .filter(|v| !v.is_empty()),
            source,
            htmx: parts.headers.contains_key("hx-request"),
            session,
            services,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The frame of every page: the title, the person, the navigation, the CSRF token.
#[derive(Clone, Debug)]
pub struct Chrome {
    pub title: String,
    pub user: Option<String>,
    pub role_label: &'static str,
    pub nav: Vec<(&'static str, &'static str)>,
    pub csrf: String,
    pub elder: bool,
    pub flash: Option<String>,
    pub css: &'static str,
    pub js: &'static str,
    pub htmx: &'static str,
    pub path: String,
    pub request_id: String,
}

impl Ctx {
    /// The frame for a page titled `title`.
    pub fn chrome(&self, title: impl Into<String>) -> Chrome {
        let (role_label, nav): (&'static str, Vec<(&'static str, &'static str)>) =
            match self.user.as_ref().map(|u| u.caller.role) {
                Some(Role::Buyer) => (
                    "买受人",
                    vec![
                        ("/my", "我的合同"),
                        ("/me/identity", "实名信息"),
                        ("/materials", "材料库"),
                    ],
                ),
                Some(Role::Developer) => (
                    "开发企业",
                    vec![("/dev", "合同"), ("/dev/projects", "项目与楼盘表")],
                ),
                Some(Role::Reviewer) => ("登记中心", vec![("/review", "审核队列")]),
                Some(Role::Admin) => ("管理员", vec![("/admin", "管理")]),
                None => ("", vec![]),
            };
        Chrome {
            title: title.into(),
            user: self.user.as_ref().map(|u| u.name.clone()),
            role_label,
            nav,
            csrf: self.csrf.clone(),
            elder: self.elder,
            flash: self.flash.clone(),
            css: assets::CSS.path(),
            js: assets::APP_JS.path(),
            htmx: assets::HTMX.path(),
            path: self.path.clone(),
            request_id: self.request_id.clone(),
        }
    }

    /// The signed-in person, or a redirect to the sign-in page that comes back here.
    pub fn signed_in(&self) -> Result<&PageUser, Response> {
        self.user.as_ref().ok_or_else(|| {
            Redirect::to(&format!("/login?next={}", percent_encode(&self.path))).into_response()
        })
    }

    pub fn caller(&self) -> Result<&Caller, Response> {
        self.signed_in().map(|u| &u.caller)
    }

    /// The signed-in person if their role is one of `roles`; a refusal in words otherwise.
    pub fn only(&self, roles: &[Role]) -> Result<Caller, Response> {
        let caller = self.caller()?.clone();
        if !roles.contains(&caller.role) {
            return Err(self.fail(Error::forbidden(
                "此页面属于其他岗位；请用相应岗位的账号登录。",
            )));
        }
        Ok(caller)
    }

    /// The page of a refused or failed request, in words, with the request id (an internal
    /// cause is logged, never shown).
    pub fn fail(&self, e: Error) -> Response {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (code, message, fields) = match e {
            Error::Internal(cause) => {
                // Logged once, in the request's span; never shown.
                tracing::error!(error = format!("{cause:#}"), "internal error");
                (
                    "internal_error",
                    "服务内部错误，请稍后再试；如持续出现，请将下面的请求编号告诉运营单位。"
                        .to_owned(),
                    vec![],
                )
            }
            Error::Invalid {
                code,
                message,
                fields,
            } => (code, message, fields),
            other => (other.code(), other.message().to_owned(), vec![]),
        };
        let title = match status.as_u16() {
            401 => "请先登录",
            403 => "不能办理",
            404 => "找不到",
            409 => "当前不能办理",
            422 => "请修改后再提交",
            429 => "操作过于频繁",
            503 => "服务暂时不可用",
            500..=599 => "服务器出错了",
            _ => "出错了",
        };
        let page = ErrorPage {
            chrome: self.chrome(title),
            status: status.as_u16(),
            code,
            message,
            fields,
        };
        (status, Html(page.render().unwrap_or_default())).into_response()
    }

    /// A 303 back to `to`, with a notice shown once there.
    pub fn done(&self, to: &str, notice: &str) -> Response {
        let mut res = Redirect::to(to).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{FLASH}={}; Path=/; HttpOnly; SameSite=Lax",
            percent_encode(notice)
        )) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        res
    }

    /// The page session's token, when the browser has one.
    pub fn session_token(&self) -> Option<String> {
        self.session.clone()
    }

    /// Whether cookies must be marked `Secure` (production, unless configured otherwise).
    pub fn secure(&self) -> bool {
        self.services
            .config
            .web
            .secure_cookies
            .unwrap_or(self.services.config.mode == crate::config::Mode::Production)
    }
}

/// An HTML body.
pub struct Html(pub String);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], self.0).into_response()
    }
}

/// Renders a page template.
pub fn page<T: Template>(t: T) -> Response {
    match t.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "页面生成失败。").into_response()
        }
    }
}

/// Page results: the page, or the response that replaces it (a redirect, an error page).
pub type PageResult = Result<Response, Response>;

/// `?`-friendly conversion of a service result into a page result.
pub trait OrPage<T> {
    fn or_page(self, ctx: &Ctx) -> Result<T, Response>;
}

impl<T> OrPage<T> for Result<T, Error> {
    fn or_page(self, ctx: &Ctx) -> Result<T, Response> {
        self.map_err(|e| ctx.fail(e))
    }
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    code: &'static str,
    message: String,
    fields: Vec<crate::services::FieldError>,
}

/// The page for an address that names nothing.
pub fn not_found_page(headers: &HeaderMap) -> Response {
    let chrome = Chrome {
        title: "找不到该页面".into(),
        user: None,
        role_label: "",
        nav: vec![],
        csrf: String::new(),
        elder: Cookies::from(headers).get(ELDER) == Some("1"),
        flash: None,
        css: assets::CSS.path(),
        js: assets::APP_JS.path(),
        htmx: assets::HTMX.path(),
        path: "/".into(),
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    };
    let page = ErrorPage {
        chrome,
        status: 404,
        code: "no_such_page",
        message: "没有这个页面。请从首页重新进入。".into(),
        fields: vec![],
    };
    let mut res = (
        StatusCode::NOT_FOUND,
        Html(page.render().unwrap_or_default()),
    )
        .into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    res
}

/// A form posted from a page: its fields, once its CSRF token is checked.
pub struct PageForm(pub Vec<(String, String)>);

impl PageForm {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// Checks the form's CSRF token against the page's.
    pub fn check(&self, ctx: &Ctx) -> Result<(), Response> {
        let given = self.get("_csrf");
        if given.is_empty()
            || given.len() != ctx.csrf.len()
            || !openssl::memcmp::eq(given.as_bytes(), ctx.csrf.as_bytes())
        {
            return Err(ctx.fail(Error::Forbidden {
                code: "csrf",
                message: "页面已过期或来源不明，请返回刷新后重试。".into(),
            }));
        }
        Ok(())
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for PageForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "表单过大。").into_response())?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .take(2000)
            .collect();
        Ok(PageForm(pairs))
    }
}

/// The refusal of a post that is not the form it should be (an upload without its parts).
pub fn not_a_form(ctx: &Ctx) -> Response {
    ctx.fail(Error::Forbidden {
        code: "csrf",
        message: "页面已过期或来源不明，请返回刷新后重试。".into(),
    })
}

/// A 303 to `to`.
pub fn redirect(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A local path to go on to after a step: only paths on this site (`/…`, never `//host`).
pub fn local_next(next: Option<&str>) -> String {
    match next.map(str::trim) {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control())
                && n.len() <= 500 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The page session's cookie (empty with `max_age` 0 to end it).
pub fn session_cookie(token: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{SESSION}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Where each role starts.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Buyer => "/my",
        Role::Developer => "/dev",
        Role::Reviewer => "/review",
        Role::Admin => "/admin",
    }
}

/// The message for `field` among `errors` (an exact field, or one of its elements).
pub fn field_error<'a>(errors: &'a [crate::services::FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

/// A time as people here read it: UTC+8, to the second.
pub fn local(t: time::OffsetDateTime) -> String {
    let l = t.to_offset(time::macros::offset!(+8));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        l.year(),
        l.month() as u8,
        l.day(),
        l.hour(),
        l.minute(),
        l.second()
    )
}

/// Starts a face check for `purpose` and sends the person to the provider, who sends them back
/// to `/identity/return`, which goes on to `next`.
pub async fn start_verification(
    ctx: &Ctx,
    purpose: crate::services::identity::CheckPurpose,
    next: &str,
) -> PageResult {
    let caller = ctx.caller()?;
    let back = format!(
        "/identity/return?purpose={}&next={}",
        purpose.as_str(),
        percent_encode(next)
    );
    // The provider needs an absolute address; without a configured public address the
    // development sandbox takes the path as it is.
    let return_url = match &ctx.services.config.public_url {
        Some(base) => format!("{}{back}", base.trim_end_matches('/')),
        None => back.clone(),
    };
    let v = crate::services::identity::start(&ctx.services, caller, purpose, Some(return_url))
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(redirect(v.redirect_url.as_deref().unwrap_or(&back)))
}

/// Who may open a page. Handlers apply it (a signed-out visitor is sent to sign in, another
/// role is refused); the services behind them decide again on the object itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageAccess {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in person; the service decides what they see of the object.
    SignedIn,
    /// Signed in with one of these roles.
    Roles(&'static [Role]),
}

/// Every page and form of the window with its access rule, in one list: tests/it/pages.rs
/// checks every entry against signed-out visitors and other roles, and that every route the
/// web room declares is listed here.
pub const PAGES: &[(&str, &str, PageAccess)] = {
    use PageAccess::*;
    const BUYER: &[Role] = &[Role::Buyer];
    const DEVELOPER: &[Role] = &[Role::Developer];
    const REVIEWER: &[Role] = &[Role::Reviewer];
    const ADMIN: &[Role] = &[Role::Admin];
    &[
        ("GET", "/", Public),
        ("GET", "/login", Public),
        ("POST", "/login", Public),
        ("POST", "/login/phone/code", Public),
        ("POST", "/login/phone", Public),
        ("POST", "/logout", Public),
        ("POST", "/settings/elder", Public),
        ("GET", "/verify", Public),
        ("POST", "/verify", Public),
        ("GET", "/trust", Public),
        ("GET", "/public/certificates/{digits}", Public),
        ("GET", "/v/{contract_no}", Public),
        ("GET", "/invitations/{id}", Public),
        ("GET", "/static/{file}", Public),
        ("POST", "/invitations/{id}", Roles(BUYER)),
        ("GET", "/me/identity", Roles(BUYER)),
        ("POST", "/me/identity", Roles(BUYER)),
        ("POST", "/me/identity/verify", Roles(BUYER)),
        ("GET", "/identity/return", SignedIn),
        ("GET", "/my", Roles(BUYER)),
        ("GET", "/contracts/{id}", SignedIn),
        ("GET", "/contracts/{id}/pdf", SignedIn),
        ("GET", "/contracts/{id}/evidence", SignedIn),
        ("GET", "/contracts/{id}/read", SignedIn),
        ("GET", "/contracts/{id}/read/{n}", SignedIn),
        ("GET", "/contracts/{id}/checks", SignedIn),
        ("GET", "/contracts/{id}/act/{action}", SignedIn),
        ("POST", "/contracts/{id}/act/{action}", SignedIn),
        ("GET", "/contracts/{id}/step/{action}", SignedIn),
        ("POST", "/contracts/{id}/step/{action}", SignedIn),
        ("POST", "/contracts/{id}/step/{action}/verify", SignedIn),
        ("POST", "/contracts/{id}/step/{action}/code", SignedIn),
        ("GET", "/contracts/{id}/edit", Roles(DEVELOPER)),
        ("POST", "/contracts/{id}/edit", Roles(DEVELOPER)),
        ("GET", "/dev/draft", Roles(DEVELOPER)),
        ("POST", "/dev/draft", Roles(DEVELOPER)),
        ("POST", "/dev/draft/check", Roles(DEVELOPER)),
        ("GET", "/dev", Roles(DEVELOPER)),
        ("GET", "/dev/projects", Roles(DEVELOPER)),
        ("POST", "/dev/projects", Roles(DEVELOPER)),
        ("GET", "/dev/projects/{id}", Roles(DEVELOPER)),
        ("POST", "/dev/projects/{id}/permits", Roles(DEVELOPER)),
        ("POST", "/dev/projects/{id}/buildings", Roles(DEVELOPER)),
        ("GET", "/registrations/{id}", SignedIn),
        ("POST", "/registrations/{id}/act/{action}", SignedIn),
        ("GET", "/registrations/{id}/certificate", SignedIn),
        ("GET", "/registrations/{id}/certificate.ofd", SignedIn),
        ("GET", "/materials", SignedIn),
        ("POST", "/materials", SignedIn),
        ("GET", "/materials/{sha}", SignedIn),
        ("GET", "/review", Roles(REVIEWER)),
        ("GET", "/admin", Roles(ADMIN)),
        ("POST", "/admin/users", Roles(ADMIN)),
        ("POST", "/admin/users/{id}/identity", Roles(ADMIN)),
        ("POST", "/admin/certificates/{serial}/revoke", Roles(ADMIN)),
        ("POST", "/admin/notifications/{id}/requeue", Roles(ADMIN)),
    ]
};
