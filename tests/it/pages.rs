//! The pages without a browser: every page's access rule (signed-out visitors are sent to sign
//! in, other roles are refused, forms without their CSRF token are refused), security headers,
//! the assets' caching, the page session tied to the refresh-token family, safe redirects, the
//! error page, and the forms the browser tests do not reach (a project, a building from CSV and
//! its permit; a buyer asking for changes; staff accounts, staff identities and revocation).

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

    /// A multipart form (uploads), with this visitor's CSRF token.
    async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
    ) -> Page {
        let token = self.csrf().await;
        let boundary = "vw-test-boundary-7d1f";
        let mut body: Vec<u8> = Vec::new();
        let mut all = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        for (k, v) in all {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        let (name, content_type, bytes) = file;
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::ACCEPT, "text/html")
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            );
        let c: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        b = b.header(header::COOKIE, c.join("; "));
        let res = self
            .app
            .router
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
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

const PARCEL: &str = "441900104002GB00777";

/// The developer's desk through its forms: a project (a refused one keeps what was typed), a
/// building's units from CSV, the permit that releases them; the 楼盘表 shows them.
async fn the_developers_desk_forms(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let mut dev = Visitor::new(&app);
    dev.sign_in("yj-drafter").await;
    let project = [
        ("name", "松湖云境花园三期"),
        ("town", "松山湖"),
        ("parcel_code", PARCEL),
        ("land_certificate_no", "粤(2025)东莞市不动产权第0100777号"),
        ("land_use", "城镇住宅用地"),
        ("land_term_end", "2095-06-30"),
        ("planning_permit_no", "建字第441900202500777号"),
        ("construction_permit_no", "441900202509010777"),
    ];
    let mut bad = project.to_vec();
    bad[2] = ("parcel_code", "4419001");
    let refused = dev.post("/dev/projects", &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("aria-invalid=\"true\""),
        "the field is marked"
    );
    assert!(
        refused.body.contains("松湖云境花园三期"),
        "what was typed is kept"
    );
    let made = dev.post("/dev/projects", &project).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let at = made.location().to_owned();
    assert!(at.starts_with("/dev/projects/"));

    let mut csv = String::from(
        "room_no,floor,unit_number,use_type,gross_area,internal_area,shared_area,storey_height_mm,filed_price\n",
    );
    for floor in 1..=2 {
        for pos in 1..=2 {
            csv.push_str(&format!(
                "{floor:02}{pos:02},{floor},{PARCEL}F0001{:04},住宅,102.50,80.00,22.50,3000,31000\n",
                floor * 100 + pos
            ));
        }
    }
    let imported = dev
        .post_multipart(
            &format!("{at}/buildings"),
            &[
                ("number", "1"),
                ("floors_above", "2"),
                ("floors_below", "0"),
                ("permit_id", ""),
            ],
            ("units.csv", "text/csv", csv.as_bytes()),
        )
        .await;
    assert_eq!(imported.status, StatusCode::SEE_OTHER, "{}", imported.body);
    let permit = dev
        .post(
            &format!("{at}/permits"),
            &[
                ("number", "莞房预证字第20260777号"),
                ("authority", "东莞市住房和城乡建设局"),
                ("issued_on", "2026-10-08"),
                ("escrow_bank", "中国建设银行东莞分行"),
                (
                    "escrow_account_name",
                    "东莞市云境置业有限公司松湖云境花园三期预售资金监管专户",
                ),
                ("escrow_account_no", "44050177000800000777"),
                ("buildings", "1"),
            ],
        )
        .await;
    assert_eq!(permit.status, StatusCode::SEE_OTHER, "{}", permit.body);
    let grid = dev.get(&at).await;
    assert!(grid.body.contains("4 套房屋可售"), "{}", grid.body);
    assert_eq!(grid.body.matches("可售·起草").count(), 4);
    assert!(grid.body.contains("0202"));

    // Another developer's project is not found.
    let mut buyer = Visitor::new(&app);
    buyer.sign_in("buyer-zhang").await;
    assert_ne!(buyer.get(&at).await.status, StatusCode::OK);
}

/// A buyer asks for changes with a reason (refused without one, the form shown again).
async fn a_buyer_asks_for_changes(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let unit = crate::contracts::units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized && !u.objection && !u.manual_hold)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let r = app
        .post(
            "/api/v1/contracts",
            Some(&drafter),
            crate::contracts::draft_for(&unit),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let confirmer = app.token("yj-confirmer").await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut zhang = Visitor::new(&app);
    zhang.sign_in("buyer-zhang").await;
    let page = zhang.get(&format!("/contracts/{id}")).await;
    assert!(page.body.contains("要求修改或拒绝签署"));
    let form = zhang.get(&format!("/contracts/{id}/act/recall")).await;
    assert_eq!(form.status, StatusCode::OK);
    let empty = zhang
        .post(&format!("/contracts/{id}/act/recall"), &[("reason", " ")])
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty.body.contains("请说明需要修改的内容"),
        "{}",
        empty.body
    );
    let done = zhang
        .post(
            &format!("/contracts/{id}/act/recall"),
            &[("reason", "付款日期需要推迟一个月。")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let after = zhang.get(&format!("/contracts/{id}")).await;
    assert!(after.body.contains("草稿"), "{}", after.body);
    // An action the table does not give this person now is not found.
    let other = zhang
        .post(&format!("/contracts/{id}/act/approve_filing"), &[])
        .await;
    assert!(
        matches!(
            other.status,
            StatusCode::FORBIDDEN | StatusCode::CONFLICT | StatusCode::NOT_FOUND
        ),
        "{}",
        other.status
    );
}

/// The administrator's forms: a staff account, its real-name identity, a revocation.
async fn the_administrators_forms(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let mut admin = Visitor::new(&app);
    admin.sign_in("admin").await;
    let org = app
        .services
        .store
        .user_by_username("yj-drafter")
        .await
        .unwrap()
        .unwrap()
        .organisation_id
        .unwrap();
    let made = admin
        .post(
            "/admin/users",
            &[
                ("username", "yj-confirmer-2"),
                ("display_name", "郑洁"),
                ("password", "a-long-enough-password-2026"),
                ("role", "developer"),
                ("duty", "confirmer"),
                ("organisation_id", &org),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let user = app
        .services
        .store
        .user_by_username("yj-confirmer-2")
        .await
        .unwrap()
        .expect("created");
    let id = crate::web::id_number("44190019880808044");
    let set = admin
        .post(
            &format!("/admin/users/{}/identity", user.id),
            &[("real_name", "郑洁"), ("id_number", &id)],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert!(
        virtual_window::services::identity::identity_of(&app.services, &user.id)
            .await
            .unwrap()
            .is_some()
    );
    let (cert, _) = virtual_window::services::pki::issue_seal(
        &app.services,
        Some(org.clone()),
        "东莞市云境置业有限公司",
        "91441900MA4W0L7N36",
        "合同专用章",
        None,
    )
    .await
    .unwrap();
    let revoked = admin
        .post(
            &format!("/admin/certificates/{}/revoke", cert.serial),
            &[("reason", "superseded")],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let desk = admin.get("/admin").await;
    assert!(desk.body.contains("已吊销"), "the revocation shows");
    assert!(desk.body.contains("yj-confirmer-2"));
}

crate::on_both_databases!(
    the_developers_desk_forms,
    a_buyer_asks_for_changes,
    the_administrators_forms,
    access_rules_hold_for_every_page,
    sessions_headers_and_redirects,
    secure_cookies_in_production,
);
