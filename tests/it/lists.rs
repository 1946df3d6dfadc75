//! The lists of cases: each person sees only their own — a buyer the contracts that name them and
//! the cases they applied for, a developer's staff their organisation's contracts, reviewers and
//! administrators everything — through every filter, in every count, page by page.

use crate::contracts::{act, apply_registration, draft_for, reg_post, units};
use crate::helpers::{Db, TestApp, spawn_app_with};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use virtual_window::domain::lifecycle::UnitStatus;

/// A draft of organisation A's next available unit for these buyers (account name, name, ID).
async fn draft_a(app: &TestApp, buyers: &[(&str, &str)]) -> String {
    let unit = units(app)
        .await
        .into_iter()
        .find(|u| u.status == UnitStatus::Available && !u.seized && !u.manual_hold)
        .unwrap();
    let mut body = draft_for(&unit);
    let shares: &[u8] = if buyers.len() == 1 { &[100] } else { &[60, 40] };
    body["buyers"] = Value::Array(
        buyers
            .iter()
            .zip(shares)
            .map(|((name, id), share)| json!({"name": name, "id_number": id, "share_percent": share, "phone": "13800000001", "address": "广东省东莞市南城街道鸿福路 100 号"}))
            .collect(),
    );
    body["co_ownership"] = json!(if buyers.len() == 1 {
        "单独所有"
    } else {
        "按份共有"
    });
    let t = app.token("yj-drafter").await;
    let r = app.post("/api/v1/contracts", Some(&t), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

const ZHANG_LI: &[(&str, &str)] = &[
    ("张伟", "44190019900101001X"),
    ("李娜", "441900198506150021"),
];
const WANG: &[(&str, &str)] = &[("王芳", "441900199202280032")];

/// A contract of organisation A taken to `filed`.
async fn filed(app: &TestApp) -> String {
    let id = draft_a(app, ZHANG_LI).await;
    let c = app.token("yj-confirmer").await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&c),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for who in ["buyer-zhang", "buyer-li"] {
        let r = act(app, who, &id, "sign_contract", "sign").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = act(app, "yj-confirmer", &id, "seal_contract", "seal").await;
    assert_eq!(r.body["status"], "filing_review", "{}", r.text);
    let t = app.token("rc-first").await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/filing/approve"),
            Some(&t),
            json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "filed", "{}", r.text);
    id
}

/// A second developer with its own project, a building of two units under a valid permit, a
/// drafter `other-dev`; returns the drafter's token, the project id and a unit id.
async fn second_developer(app: &TestApp) -> (String, String, String) {
    let other = virtual_window::store::Organisation {
        id: uuid::Uuid::now_v7().to_string(),
        kind: "developer".into(),
        name: "东莞市别家地产有限公司".into(),
        uscc: None,
        created_at: time::OffsetDateTime::now_utc(),
    };
    app.services
        .store
        .insert_organisation(&other)
        .await
        .unwrap();
    let admin = app.token("admin").await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": "other-dev", "display_name": "赵强", "password": "another-long-password-1", "role": "developer", "duties": ["drafter"], "organisation_id": other.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "other-dev", "password": "another-long-password-1"}),
        )
        .await;
    let t = r.body["access_token"].as_str().unwrap().to_owned();
    let r = app
        .post("/api/v1/projects", Some(&t), crate::inventory::project())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pid = r.body["id"].as_str().unwrap().to_owned();
    let rows: Vec<Value> = (1..=2)
        .map(|p| crate::inventory::unit_row(1, 1, p))
        .collect();
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/buildings"),
            Some(&t),
            json!({"number": 1, "floors_above": 1, "floors_below": 0, "units": rows}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/permits"),
            Some(&t),
            json!({"number": "莞房预证字第20269999号", "authority": "东莞市住房和城乡建设局", "issued_on": "2026-10-08",
                   "escrow_bank": "中国工商银行东莞分行", "escrow_account_name": "东莞市别家地产有限公司预售资金监管专户",
                   "escrow_account_no": "44050177000800009999", "buildings": [1]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/projects/{pid}/units"), None)
        .await;
    let unit = r.body.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (t, pid, unit)
}

async fn contract(app: &TestApp, id: &str) -> virtual_window::store::Contract {
    app.services.store.contract(id).await.unwrap().unwrap()
}

/// Every page of a list, following the cursors.
async fn all_pages(app: &TestApp, token: &str, path: &str, query: &str) -> (Vec<Value>, Value) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut first = None;
    for _ in 0..100 {
        let sep = if query.is_empty() { "" } else { "&" };
        let q = match &cursor {
            Some(c) => format!("{query}{sep}cursor={c}"),
            None => query.to_owned(),
        };
        let r = app.get(&format!("{path}?{q}"), Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}?{q}: {}", r.text);
        items.extend(r.body["items"].as_array().unwrap().iter().cloned());
        first.get_or_insert_with(|| r.body.clone());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (items, first.unwrap()),
        }
    }
    panic!("no end of pages");
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn set(xs: &[&String]) -> BTreeSet<String> {
    xs.iter().map(|x| (*x).clone()).collect()
}

async fn contracts_as(app: &TestApp, who: &str, query: &str) -> (BTreeSet<String>, Value) {
    let t = app.token(who).await;
    let (items, first) = all_pages(app, &t, "/api/v1/contracts", query).await;
    (ids(&items), first)
}

async fn each_person_lists_only_their_cases(db: Db) {
    let Some(app) = spawn_app_with(db, |c| c.identity.codes_per_hour = 100_000).await else {
        return;
    };
    let (other_dev, other_project, other_unit) = second_developer(&app).await;

    // Organisation A: a filed contract with a registration taken to its certificate, three
    // drafts for 张伟 and 李娜, one for 王芳; organisation B: one for 王芳.
    let a1 = filed(&app).await;
    let r = apply_registration(&app, &a1, "buyer-zhang").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r1 = r.body["id"].as_str().unwrap().to_owned();
    for (who, step) in [
        ("rc-intake", "accept"),
        ("rc-first", "first-review"),
        ("rc-second", "second-review"),
        ("rc-recorder", "record"),
    ] {
        let r = reg_post(&app, who, &r1, step, json!({"opinion": "符合。"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let a2 = draft_a(&app, ZHANG_LI).await;
    let a3 = draft_a(&app, ZHANG_LI).await;
    let a4 = draft_a(&app, ZHANG_LI).await;
    let a5 = draft_a(&app, WANG).await;
    let mut body = draft_for(&app.services.store.unit(&other_unit).await.unwrap().unwrap());
    body["buyers"] = json!([{"name": "王芳", "id_number": "441900199202280032", "share_percent": 100, "phone": "13800000003", "address": "广东省东莞市东城街道东纵路 1 号"}]);
    body["co_ownership"] = json!("单独所有");
    let r = app.post("/api/v1/contracts", Some(&other_dev), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let b1 = r.body["id"].as_str().unwrap().to_owned();
    // A second filed contract whose registration 李娜 applies for: waiting for acceptance.
    let a6 = filed(&app).await;
    let r = apply_registration(&app, &a6, "buyer-li").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r2 = r.body["id"].as_str().unwrap().to_owned();
    // A buyer with no registered identity.
    let admin = app.token("admin").await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": "no-identity", "display_name": "新用户", "password": "a-long-enough-password-2", "role": "buyer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let mine_zhang = set(&[&a1, &a2, &a3, &a4, &a6]);
    let all = set(&[&a1, &a2, &a3, &a4, &a5, &a6, &b1]);
    let (seen, first) = contracts_as(&app, "buyer-zhang", "limit=2").await;
    assert_eq!(seen, mine_zhang);
    assert_eq!(first["total"], 5);
    assert_eq!(first["counts"]["filed"], 2);
    assert_eq!(first["counts"]["draft"], 3);
    assert_eq!(contracts_as(&app, "buyer-li", "").await.0, mine_zhang);
    let (seen, first) = contracts_as(&app, "buyer-wang", "").await;
    assert_eq!(seen, set(&[&a5, &b1]));
    assert_eq!(first["total"], 2);
    assert_eq!(
        contracts_as(&app, "yj-drafter", "").await.0,
        set(&[&a1, &a2, &a3, &a4, &a5, &a6])
    );
    assert_eq!(
        contracts_as(&app, "yj-confirmer", "limit=3").await.0,
        set(&[&a1, &a2, &a3, &a4, &a5, &a6])
    );
    let t = &other_dev;
    let (items, first) = all_pages(&app, t, "/api/v1/contracts", "").await;
    assert_eq!(ids(&items), set(&[&b1]));
    assert_eq!(first["total"], 1);
    for who in ["rc-first", "admin"] {
        let (seen, first) = contracts_as(&app, who, "limit=2").await;
        assert_eq!(seen, all, "{who}");
        assert_eq!(first["total"], 7, "{who}");
    }
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "no-identity", "password": "a-long-enough-password-2"}),
        )
        .await;
    let fresh = r.body["access_token"].as_str().unwrap().to_owned();
    let (items, first) = all_pages(&app, &fresh, "/api/v1/contracts", "").await;
    assert!(items.is_empty());
    assert_eq!(first["total"], 0);
    assert!(
        first["counts"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v == 0)
    );

    // Pages: newest first, no case twice, none missing, across page boundaries.
    let rc = app.token("rc-first").await;
    let (items, _) = all_pages(&app, &rc, "/api/v1/contracts", "limit=2").await;
    let order: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted, "newest first");
    assert_eq!(order.len(), 7);
    let (items, _) = all_pages(&app, &rc, "/api/v1/contracts", "limit=3&order=waiting").await;
    let waits: Vec<String> = items
        .iter()
        .map(|i| i["updated_at"].as_str().unwrap().to_owned())
        .collect();
    let times: Vec<time::OffsetDateTime> = waits
        .iter()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "longest waiting first: {waits:?}"
    );
    assert_eq!(ids(&items), all);

    // Every filter, as a reviewer who sees everything.
    let a1c = contract(&app, &a1).await;
    let a2c = contract(&app, &a2).await;
    let a3c = contract(&app, &a3).await;
    let a2u = app
        .services
        .store
        .unit(&a2c.unit_id)
        .await
        .unwrap()
        .unwrap();
    let cert = app
        .services
        .store
        .registration(&r1)
        .await
        .unwrap()
        .unwrap()
        .certificate_no
        .unwrap();
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let ts = |t: time::OffsetDateTime| {
        enc(&t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap())
    };
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        ("status=draft".into(), set(&[&a2, &a3, &a4, &a5, &b1])),
        ("status=filed,draft".into(), all.clone()),
        ("status=filed".into(), set(&[&a1, &a6])),
        (format!("project={other_project}"), set(&[&b1])),
        (format!("building={}", a2u.building_id), {
            let mut s = BTreeSet::new();
            for id in [&a1, &a2, &a3, &a4, &a5, &a6] {
                let u = app
                    .services
                    .store
                    .unit(&contract(&app, id).await.unit_id)
                    .await
                    .unwrap()
                    .unwrap();
                if u.building_id == a2u.building_id {
                    s.insert(id.clone());
                }
            }
            s
        }),
        (format!("unit={}", a2c.unit_id), set(&[&a2])),
        (
            format!("contract_no={}", enc(&a3c.contract_no)),
            set(&[&a3]),
        ),
        (
            format!("filing_no={}", enc(a1c.filing_no.as_deref().unwrap())),
            set(&[&a1]),
        ),
        (format!("certificate_no={}", enc(&cert)), set(&[&a1])),
        (format!("buyer={}", enc("王*")), set(&[&a5, &b1])),
        (
            format!("buyer={}", enc("张伟")),
            set(&[&a1, &a2, &a3, &a4, &a6]),
        ),
        (
            format!("created_from={}", ts(a3c.created_at)),
            set(&[&a3, &a4, &a5, &b1, &a6]),
        ),
        (
            format!("created_to={}", ts(a3c.created_at)),
            set(&[&a1, &a2]),
        ),
        (format!("updated_from={}", ts(a3c.updated_at)), {
            let mut s = BTreeSet::new();
            for id in &all {
                if contract(&app, id).await.updated_at >= a3c.updated_at {
                    s.insert(id.clone());
                }
            }
            s
        }),
        (format!("updated_to={}", ts(a3c.updated_at)), {
            let mut s = BTreeSet::new();
            for id in &all {
                if contract(&app, id).await.updated_at < a3c.updated_at {
                    s.insert(id.clone());
                }
            }
            s
        }),
    ];
    for (q, want) in &cases {
        let (seen, first) = contracts_as(&app, "rc-first", &format!("{q}&limit=2")).await;
        assert_eq!(&seen, want, "{q}");
        // The counts follow the filters (the statuses aside).
        if !q.starts_with("status=") {
            assert_eq!(first["total"], want.len(), "{q}");
        }
    }
    // Nobody sees another's case through a filter or a count.
    for q in [
        format!("contract_no={}", enc(&a3c.contract_no)),
        format!("certificate_no={}", enc(&cert)),
        format!("unit={}", a2c.unit_id),
    ] {
        let (seen, first) = contracts_as(&app, "buyer-wang", &q).await;
        assert!(seen.is_empty(), "{q}");
        assert_eq!(first["total"], 0, "{q}");
        let t = &other_dev;
        let r = app.get(&format!("/api/v1/contracts?{q}"), Some(t)).await;
        assert_eq!(r.body["total"], 0, "{q}: {}", r.text);
    }
    // Bad queries are refused with the field.
    for (q, field) in [
        ("status=bogus", "status"),
        ("cursor=%21%21", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("order=sideways", "order"),
        ("created_from=yesterday", "created_from"),
        ("step=accept", "step"),
        ("colour=red", "colour"),
    ] {
        let r = app.get(&format!("/api/v1/contracts?{q}"), Some(&rc)).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query"),
            "{q}: {}",
            r.text
        );
        assert_eq!(r.body["errors"][0]["field"], field, "{q}: {}", r.text);
    }

    // Registrations: a buyer sees the cases they applied for; developers none; reviewers all,
    // or one step's queue with who may take it.
    let regs_as = |who: &'static str, q: &'static str| {
        let app = &app;
        async move {
            let t = app.token(who).await;
            all_pages(app, &t, "/api/v1/registrations", q).await
        }
    };
    let (items, first) = regs_as("buyer-zhang", "").await;
    assert_eq!(ids(&items), set(&[&r1]));
    assert_eq!(first["total"], 1);
    assert_eq!(first["counts"]["certificate_issued"], 1);
    let (items, _) = regs_as("buyer-li", "").await;
    assert_eq!(ids(&items), set(&[&r2]));
    let (items, first) = regs_as("yj-drafter", "").await;
    assert!(items.is_empty());
    assert_eq!(first["total"], 0);
    let (items, first) = regs_as("rc-first", "limit=1").await;
    assert_eq!(ids(&items), set(&[&r1, &r2]));
    assert_eq!(first["total"], 2);
    assert_eq!(first["counts"]["submitted"], 1);
    let (items, _) = regs_as("rc-intake", "step=accept").await;
    assert_eq!(ids(&items), set(&[&r2]));
    let next = &items[0]["next_step"];
    assert_eq!(next["action"], "accept");
    assert_eq!(next["who"], "reviewer");
    assert_eq!(next["you_may_take"], true);
    let (items, _) = regs_as("rc-first", "step=first_review").await;
    assert!(items.is_empty());
    let (items, _) = regs_as("rc-first", "step=accept").await;
    assert_eq!(
        items[0]["next_step"]["you_may_take"], true,
        "acceptance needs no duty"
    );
    let r = app
        .get(
            &format!("/api/v1/registrations?certificate_no={}", enc(&cert)),
            Some(&rc),
        )
        .await;
    assert_eq!(ids(r.body["items"].as_array().unwrap()), set(&[&r1]));
    let r = app
        .get(
            &format!(
                "/api/v1/registrations?contract_no={}",
                enc(&contract(&app, &a6).await.contract_no)
            ),
            Some(&rc),
        )
        .await;
    assert_eq!(ids(r.body["items"].as_array().unwrap()), set(&[&r2]));
    let zhang = app.token("buyer-zhang").await;
    let r = app
        .get(
            &format!(
                "/api/v1/registrations?contract_no={}",
                enc(&contract(&app, &a6).await.contract_no)
            ),
            Some(&zhang),
        )
        .await;
    assert_eq!(r.body["total"], 0, "{}", r.text);
    let r = app
        .get("/api/v1/registrations?step=nonsense", Some(&rc))
        .await;
    assert_eq!(r.code(), "invalid_query");
}

crate::on_both_databases!(each_person_lists_only_their_cases);
