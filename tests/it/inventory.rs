//! The inventory (issue 7): a developer registers a project, imports a building's 楼盘表 as JSON
//! or CSV (all or nothing, every broken row reported at once), registers the permit that
//! releases its units; the centre suspends permits and records seizures; drafting follows.

use crate::helpers::{ChainedAudit, Db, TestApp, spawn_app};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

const PARCEL: &str = "441900104002GB00456";

pub(crate) fn project() -> Value {
    json!({
        "name": "松湖云境花园二期",
        "town": "松山湖",
        "parcel_code": PARCEL,
        "land_certificate_no": "粤(2025)东莞市不动产权第0100456号",
        "land_use": "城镇住宅用地",
        "land_term_end": "2095-06-30",
        "planning_permit_no": "建字第441900202500456号",
        "construction_permit_no": "441900202509010456",
    })
}

pub(crate) fn unit_row(building: i32, floor: i32, pos: i32) -> Value {
    json!({
        "room_no": format!("{floor:02}{pos:02}"),
        "floor": floor,
        "unit_number": format!("{PARCEL}F{building:04}{:04}", floor * 100 + pos),
        "use_type": "住宅",
        "gross_area": "89.36",
        "internal_area": "71.20",
        "shared_area": "18.16",
        "storey_height_mm": 3000,
        "filed_price": "30500",
    })
}

fn csv_of(building: i32, floors: i32) -> String {
    let mut s = String::from(
        "room_no,floor,unit_number,use_type,gross_area,internal_area,shared_area,storey_height_mm,filed_price\n",
    );
    for floor in 1..=floors {
        for pos in 1..=2 {
            s.push_str(&format!(
                "{floor:02}{pos:02},{floor},{PARCEL}F{building:04}{:04},住宅,102.50,80.00,22.50,3000,31000\n",
                floor * 100 + pos
            ));
        }
    }
    s
}

async fn post_csv(app: &TestApp, path: &str, token: &str, csv: String) -> crate::helpers::Reply {
    app.send(
        Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "text/csv; charset=utf-8")
            .body(Body::from(csv))
            .unwrap(),
    )
    .await
}

async fn listing(app: &TestApp, project: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/projects/{project}/units"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.body.as_array().unwrap().clone()
}

fn draft(unit_id: &str) -> Value {
    json!({
        "unit_id": unit_id,
        "buyers": [{"name": "王芳", "id_number": "441900199202280032", "share_percent": 100, "phone": "13800000003", "address": "广东省东莞市东城街道东纵路 1 号"}],
        "co_ownership": "单独所有",
        "unit_price": "30500",
        "payment": {"mode": "一次性付款", "schedule": [{"item": "全部房价款", "due": "2026-12-31", "amount": "2725480.00"}]},
        "delivery_date": "2028-06-30",
        "dispute": "依法向东莞市第三人民法院起诉",
        "property": {"company": "东莞市云境物业服务有限公司", "fee": "3.50"},
        "supplementary": [],
        "seller": {"address": "广东省东莞市松山湖园区科技四路 1 号", "legal_representative": "陈建国", "qualification_no": "粤房开 441900-2024-0088"}
    })
}

async fn developer_registers_a_development(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let drafter = app.token("yj-drafter").await;
    let reviewer = app.token("rc-first").await;
    let zhang = app.token("buyer-zhang").await;
    let audit_before = app.audit_len().await;

    // Every broken rule of a project at once.
    let mut bad = project();
    bad["parcel_code"] = json!("4419001040");
    bad["land_term_end"] = json!("2001-01-01");
    bad["name"] = json!("");
    let r = app.post("/api/v1/projects", Some(&drafter), bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "parcel_code", "land_term_end"]);
    assert_eq!(
        app.post("/api/v1/projects", Some(&zhang), project())
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let r = app
        .post("/api/v1/projects", Some(&drafter), project())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pid = r.body["id"].as_str().unwrap().to_owned();
    let projects = app.get("/api/v1/projects", None).await;
    assert!(
        projects
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == pid.as_str())
    );

    // Building 1 as JSON without a permit: its units exist but are not for sale.
    let units: Vec<Value> = (1..=3)
        .flat_map(|f| (1..=2).map(move |p| unit_row(1, f, p)))
        .collect();
    let building = json!({"number": 1, "floors_above": 3, "floors_below": 1, "units": units});
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/buildings"),
            Some(&drafter),
            building.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["units"], 6);
    assert_eq!(r.body["available"], 0);
    assert!(
        listing(&app, &pid)
            .await
            .iter()
            .all(|u| u["status"] == "unreleased")
    );
    // The same building again: refused, nothing doubled.
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/buildings"),
            Some(&drafter),
            building,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "building_exists")
    );
    assert_eq!(listing(&app, &pid).await.len(), 6);

    // A broken 楼盘表: every bad row reported, nothing imported.
    let mut rows: Vec<Value> = (1..=2).map(|p| unit_row(2, 1, p)).collect();
    rows.push(unit_row(2, 1, 1)); // the same room and unit number twice
    let mut wrong_area = unit_row(2, 2, 1);
    wrong_area["gross_area"] = json!("90.00");
    rows.push(wrong_area);
    let mut other_parcel = unit_row(2, 2, 2);
    other_parcel["unit_number"] = json!("441900104002GB00123F00020202");
    rows.push(other_parcel);
    let mut bad_floor = unit_row(2, 3, 1);
    bad_floor["floor"] = json!(9);
    rows.push(bad_floor);
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/buildings"),
            Some(&drafter),
            json!({"number": 2, "floors_above": 3, "floors_below": 0, "units": rows}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let errors: Vec<(String, String)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().into(),
                e["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("units[2].room_no", "duplicate"),
        ("units[2].unit_number", "duplicate"),
        ("units[3].gross_area", "area_sum"),
        ("units[4].unit_number", "mismatch"),
        ("units[5].floor", "range"),
    ] {
        assert!(
            errors.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} missing from {errors:?}"
        );
    }
    assert_eq!(listing(&app, &pid).await.len(), 6);

    // The permit covering building 1 releases its units, in the same transaction.
    let permit = json!({
        "number": "莞房预证字第20260456号",
        "authority": "东莞市住房和城乡建设局",
        "issued_on": "2026-10-08",
        "escrow_bank": "中国建设银行东莞分行",
        "escrow_account_name": "东莞市云境置业有限公司松湖云境花园二期预售资金监管专户",
        "escrow_account_no": "44050177000800000456",
        "buildings": [1],
    });
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/permits"),
            Some(&drafter),
            permit.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["units_released"], 6);
    let permit_id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/permits"),
            Some(&drafter),
            permit,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "permit_number_taken")
    );
    assert!(
        listing(&app, &pid)
            .await
            .iter()
            .all(|u| u["status"] == "available")
    );

    // Building 2 as CSV under the permit: for sale at once.
    let r = post_csv(
        &app,
        &format!("/api/v1/projects/{pid}/buildings?number=2&floors_above=4&floors_below=0&permit_id={permit_id}"),
        &drafter,
        csv_of(2, 4),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (r.body["units"].as_u64(), r.body["available"].as_u64()),
        (Some(8), Some(8))
    );
    // A CSV with a short row and a bad number: both rows named, nothing imported.
    let mut broken = csv_of(3, 2);
    broken.push_str("0301,3\n0302,三,x,住宅,1,1,0,3000,1\n");
    let r = post_csv(
        &app,
        &format!("/api/v1/projects/{pid}/buildings?number=3&floors_above=3&floors_below=0"),
        &drafter,
        broken,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2, "{}", r.text);
    assert!(r.text.contains("第 6 行"), "{}", r.text);
    assert_eq!(listing(&app, &pid).await.len(), 14);

    // A contract can be drafted for a released unit.
    let units = listing(&app, &pid).await;
    let first = units.iter().find(|u| u["room_no"] == "0101").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = units.iter().find(|u| u["room_no"] == "0102").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft(&first))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // The centre suspends the permit: no new contract for its units until it is valid again.
    let suspend = json!({"status": "suspended", "reason": "预售资金监管账户异常"});
    assert_eq!(
        app.post(
            &format!("/api/v1/permits/{permit_id}/status"),
            Some(&drafter),
            suspend.clone()
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .post(
            &format!("/api/v1/permits/{permit_id}/status"),
            Some(&reviewer),
            suspend.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/permits/{permit_id}/status"),
            Some(&reviewer),
            suspend,
        )
        .await;
    assert_eq!(r.code(), "no_change");
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft(&second))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "unit_not_available")
    );
    let for_sale = |units: Vec<Value>| {
        units
            .iter()
            .find(|u| u["id"] == second.as_str())
            .map(|u| {
                (
                    u["status"].as_str().unwrap().to_owned(),
                    u["for_sale"].as_bool().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(
        for_sale(listing(&app, &pid).await),
        ("available".into(), false)
    );
    let r = app
        .post(
            &format!("/api/v1/permits/{permit_id}/status"),
            Some(&reviewer),
            json!({"status": "valid", "reason": "整改完成"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        for_sale(listing(&app, &pid).await),
        ("available".into(), true)
    );

    // A seizure is the centre's to record; the developer may only hold its own units.
    let seize = json!({"flag": "seized", "value": true, "reason": "（2026）粤1971执保123号"});
    let r = app
        .post(
            &format!("/api/v1/units/{second}/flags"),
            Some(&drafter),
            seize.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/units/{second}/flags"),
            Some(&reviewer),
            seize,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["frozen"], true);
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft(&second))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "unit_frozen"));
    let lift = json!({"flag": "seized", "value": false, "reason": "解除查封"});
    assert_eq!(
        app.post(
            &format!("/api/v1/units/{second}/flags"),
            Some(&reviewer),
            lift
        )
        .await
        .status,
        StatusCode::OK
    );
    let hold = json!({"flag": "manual_hold", "value": true, "reason": "样板间"});
    let r = app
        .post(
            &format!("/api/v1/units/{second}/flags"),
            Some(&drafter),
            hold,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft(&second))
        .await;
    assert_eq!(r.code(), "unit_frozen");

    // Another developer's staff see none of it.
    let admin = app.token("admin").await;
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
    let stranger = r.body["access_token"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/buildings"),
            Some(&stranger),
            json!({"number": 9, "floors_above": 1, "floors_below": 0, "units": [unit_row(9, 1, 1)]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/units/{second}/flags"),
            Some(&stranger),
            json!({"flag": "manual_hold", "value": false, "reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Every change is in the audit trail.
    let actions: Vec<String> = app
        .services
        .store
        .chained_audit_events(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .skip(audit_before)
        .map(|e| e.action)
        .collect();
    for a in [
        "project.create",
        "building.import",
        "permit.create",
        "permit.status",
        "unit.flag",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
}

crate::on_both_databases!(developer_registers_a_development);
