//! The pages without a browser: every page's access rule (signed-out visitors are sent to sign
//! in, other roles are refused, forms without their CSRF token are refused), security headers,
//! the assets' caching, the page session tied to the refresh-token family, safe redirects, the
//! error page, and the forms a browser test does not reach (a requisition answered from the
//! materials library, the administrator's desk).

use crate::helpers::{Db, TestApp, spawn_app, spawn_app_with};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use tower::ServiceExt;
use virtual_window::config::DEV_DEMO_PASSWORD;
use virtual_window::domain::Role;
use virtual_window::web::{PAGES, PageAccess};

/// A browser without a browser: cookies kept, the CSRF token read from the pages.
struct Visitor<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl<'a> Visitor<'a> {
    fn new(app: &'a TestApp) -> Self {
        Visitor {
            app,
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<String>) -> Page {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "text/html");
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            b = b.header(header::COOKIE, c.join("; "));
        }
        let req = match form {
            Some(f) => b
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(f))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let res = self.app.router.clone().oneshot(req).await.unwrap();
        for v in res.headers().get_all(header::SET_COOKIE) {
            let s = v.to_str().unwrap();
            let (kv, attrs) = s.split_once(';').unwrap_or((s, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// The CSRF token of this visitor (from any page's forms).
    async fn csrf(&mut self) -> String {
        let p = self.get("/login").await;
        let at = p.body.find("name=\"_csrf\" value=\"").expect("a form") + 20;
        p.body[at..at + 32].to_owned()
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf().await;
        let mut all = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(all)
            .finish();
        self.send(Method::POST, path, Some(body)).await
    }

    async fn sign_in(&mut self, username: &str) {
        let p = self
            .post(
                "/login",
                &[("username", username), ("password", DEV_DEMO_PASSWORD)],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        assert!(self.cookies.contains_key("vw_session"));
    }
}

fn filled(path: &str) -> String {
    path.replace("{file}", "app.css")
        .replace("{action}", "confirm")
        .replace("{n}", "0")
        .replace("{id}", "00000000-0000-7000-8000-000000000000")
        .replace("{digits}", "20260000001")
        .replace("{contract_no}", "YJ2026-NONE")
        .replace("{sha}", &"0".repeat(64))
        .replace("{serial}", "01")
}

/// Every route the web room declares is in `PAGES`, with its method.
#[test]
fn every_page_has_an_access_rule() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut declared = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + 7..];
            let open = rest.find('"').unwrap();
            let close = rest[open + 1..].find('"').unwrap();
            let path = rest[open + 1..open + 1 + close].to_owned();
            let end = rest.find(")\n").unwrap_or(rest.len());
            let call = &rest[..end.min(rest.len())];
            let call = &call[..call.find(".route(").unwrap_or(call.len())];
            for m in ["get", "post"] {
                if call.contains(&format!("{m}(")) {
                    declared.push((m.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    assert!(declared.len() > 40, "{declared:?}");
    for (m, p) in &declared {
        assert!(
            PAGES.iter().any(|(pm, pp, _)| pm == m && pp == p),
            "{m} {p} is routed but not listed in web::PAGES"
        );
    }
    for (m, p, _) in PAGES {
        assert!(
            declared.iter().any(|(dm, dp)| dm == m && dp == p),
            "{m} {p} is listed in web::PAGES but not routed"
        );
    }
}

async fn access_rules_hold_for_every_page(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let mut anonymous = Visitor::new(&app);
    for (method, path, access) in PAGES {
        let url = filled(path);
        let page = if *method == "GET" {
            anonymous.get(&url).await
        } else {
            anonymous.post(&url, &[]).await
        };
        // Every page carries the security headers.
        let h = &page.headers;
        if !path.starts_with("/static/") {
            let csp = h
                .get(header::CONTENT_SECURITY_POLICY)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(
                csp.contains("frame-ancestors") && !csp.contains("unsafe-inline"),
                "{method} {path}: {csp}"
            );
        }
        assert_eq!(
            h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff",
            "{method} {path}"
        );
        assert!(h.contains_key(header::REFERRER_POLICY), "{method} {path}");
        match access {
            PageAccess::Public => assert!(
                page.status != StatusCode::SEE_OTHER || !page.location().starts_with("/login"),
                "{method} {path} is public but sent a visitor to sign in"
            ),
            _ => {
                assert_eq!(
                    page.status,
                    StatusCode::SEE_OTHER,
                    "{method} {path} signed out: {}",
                    page.body
                );
                assert!(
                    page.location().starts_with("/login?next="),
                    "{method} {path} → {}",
                    page.location()
                );
            }
        }
    }

    // Every form refuses a post without its CSRF token (signed in or not).
    let mut admin = Visitor::new(&app);
    admin.sign_in("admin").await;
    for (method, path, _) in PAGES.iter().filter(|(m, _, _)| *m == "POST") {
        let url = filled(path);
        let p = admin
            .send(Method::POST, &url, Some("_csrf=forged".into()))
            .await;
        assert_eq!(
            p.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            p.body
        );
        assert!(p.body.contains("csrf"), "{path}: {}", p.body);
    }

    // Other roles are refused (never a page of another role's desk).
    for (role, username) in [
        (Role::Buyer, "buyer-zhang"),
        (Role::Developer, "yj-drafter"),
        (Role::Reviewer, "rc-first"),
        (Role::Admin, "admin"),
    ] {
        let mut v = Visitor::new(&app);
        v.sign_in(username).await;
        for (method, path, access) in PAGES {
            let PageAccess::Roles(roles) = access else {
                continue;
            };
            if roles.contains(&role) {
                continue;
            }
            let url = filled(path);
            let p = if *method == "GET" {
                v.get(&url).await
            } else {
                v.post(&url, &[]).await
            };
            assert!(
                matches!(p.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                "{username} at {method} {path}: {} {}",
                p.status,
                p.location()
            );
        }
    }
}

async fn sessions_headers_and_redirects(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let mut v = Visitor::new(&app);
    // The cookies: the session HttpOnly and SameSite, not Secure in development.
    let token = v.csrf().await;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("_csrf", token.as_str()),
            ("username", "yj-drafter"),
            ("password", DEV_DEMO_PASSWORD),
            ("next", "//evil.example/steal"),
        ])
        .finish();
    let p = v.send(Method::POST, "/login", Some(body)).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    // Never sent to another site: a foreign `next` is replaced by the person's desk.
    assert_eq!(p.location(), "/dev");
    let cookie = p
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("vw_session="))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"));
    let home = v.get("/dev").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("陈晓明"));

    // Signing out from the API ends the page session too (one token family).
    let refresh = v.cookies["vw_session"].clone();
    let r = app
        .post(
            "/api/v1/auth/logout",
            None,
            serde_json::json!({"refresh_token": refresh}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let after = v.get("/dev").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/login"));

    // And signing out from a page ends the API's refresh.
    let mut w = Visitor::new(&app);
    w.sign_in("yj-drafter").await;
    let refresh = w.cookies["vw_session"].clone();
    let out = w.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!w.cookies.contains_key("vw_session"));
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            serde_json::json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // Assets: named by their hash, kept for a year; another name is not served.
    let page = w.get("/").await;
    let at = page.body.find("/static/app.").unwrap();
    let css = &page.body[at..at + page.body[at..].find('"').unwrap()];
    let asset = w.get(css).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(
        asset.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(
        w.get("/static/app.000000000000.css").await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(page.body.contains("htmx-2.0.11"));

    // An unknown address: a page for browsers, a problem for programs.
    let missing = w.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("没有这个页面"));
    assert!(
        missing
            .body
            .contains(missing.headers["x-request-id"].to_str().unwrap())
    );
    let api = app.get("/api/v1/no-such", None).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.code(), "no_such_endpoint");

    // A refused page says why in words, with a stable code and the request id.
    let mut buyer = Visitor::new(&app);
    buyer.sign_in("buyer-zhang").await;
    let refused = buyer.get("/review").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("此页面属于其他岗位"));
    assert!(refused.body.contains("forbidden"));
    assert!(
        refused
            .body
            .contains(refused.headers["x-request-id"].to_str().unwrap())
    );

    // The QR code's address sends a browser to the status page.
    let qr = app
        .send(
            Request::builder()
                .uri("/c/20261234567")
                .header(header::ACCEPT, "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(qr.status, StatusCode::SEE_OTHER);
    assert_eq!(
        qr.headers[header::LOCATION],
        "/public/certificates/20261234567"
    );
}

/// In production the session cookie is `Secure`.
async fn secure_cookies_in_production(db: Db) {
    let Some(app) = spawn_app_with(db, |c| c.web.secure_cookies = Some(true)).await else {
        return;
    };
    let mut v = Visitor::new(&app);
    let p = v
        .post(
            "/login",
            &[("username", "admin"), ("password", DEV_DEMO_PASSWORD)],
        )
        .await;
    let cookie = p
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("vw_session="))
        .unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

crate::on_both_databases!(
    access_rules_hold_for_every_page,
    sessions_headers_and_redirects,
    secure_cookies_in_production,
);
