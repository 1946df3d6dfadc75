//! Contracts (first part of issue 7): a draft takes its unit, a withdrawal releases it, and one
//! unit never has two live contracts — also under concurrent drafts through two service
//! instances on one database.

use crate::helpers::{ChainedAudit, Db, TestApp, spawn_app, spawn_app_with, test_config};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) async fn units(app: &TestApp) -> Vec<virtual_window::store::Unit> {
    let projects = app.services.store.projects().await.unwrap();
    app.services.store.units(&projects[0].id).await.unwrap()
}

fn draft(unit_id: &str) -> Value {
    draft_priced(unit_id, "30500", "2725480.00")
}

/// A lump-sum contract at `unit_price`, `total` being unit price × gross area.
pub(crate) fn draft_priced(unit_id: &str, unit_price: &str, total: &str) -> Value {
    json!({
        "unit_id": unit_id,
        "buyers": [
            {"name": "张伟", "id_number": "44190019900101001X", "share_percent": 60, "phone": "13800000001", "address": "广东省东莞市南城街道鸿福路 100 号"},
            {"name": "李娜", "id_number": "441900198506150021", "share_percent": 40, "phone": "13800000002", "address": "广东省东莞市南城街道鸿福路 100 号"}
        ],
        "co_ownership": "按份共有",
        "unit_price": unit_price,
        "payment": {"mode": "一次性付款", "schedule": [{"item": "全部房价款", "due": "2026-12-31", "amount": total}]},
        "delivery_date": "2028-06-30",
        "dispute": "依法向东莞市第三人民法院起诉",
        "property": {"company": "东莞市云境物业服务有限公司", "fee": "3.50"},
        "supplementary": ["本补充协议与合同正文不一致的，以合同正文为准。"],
        "seller": {"address": "广东省东莞市松山湖园区科技四路 1 号", "legal_representative": "陈建国", "qualification_no": "粤房开 441900-2024-0088"}
    })
}

/// A draft priced at the unit's filed price, so it passes confirmation.
pub(crate) fn draft_for(unit: &virtual_window::store::Unit) -> Value {
    use virtual_window::domain::{Area, Money};
    let price = Money(unit.filed_price_fen);
    let total = price.times_area(Area(unit.gross_area)).unwrap();
    draft_priced(&unit.id, &price.to_string(), &total.to_string())
}

async fn public_status(app: &TestApp, unit_id: &str) -> String {
    let number = app
        .services
        .store
        .unit(unit_id)
        .await
        .unwrap()
        .unwrap()
        .unit_number;
    let projects = app.services.store.projects().await.unwrap();
    let r = app
        .get(&format!("/api/v1/projects/{}/units", projects[0].id), None)
        .await;
    r.body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit_number"] == number.as_str())
        .map(|u| u["status"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn drafting_takes_the_unit_and_withdrawing_releases_it(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let all = units(&app).await;
    let unit = all
        .iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let before = app.audit_len().await;
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft(&unit.id))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "draft");
    assert_eq!(
        r.body["buyers"][0]["id_number_masked"],
        "4419**********001X"
    );
    assert!(!r.text.contains("44190019900101001X"));
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(public_status(&app, &unit.id).await, "locked");
    assert_eq!(app.audit_len().await, before + 1);

    // The unit is taken: a second draft is refused with a clear code.
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft(&unit.id))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "unit_not_available")
    );

    // Readers: its buyers, the developer, reviewers; not another buyer.
    for (who, status) in [
        ("buyer-zhang", StatusCode::OK),
        ("buyer-li", StatusCode::OK),
        ("buyer-wang", StatusCode::NOT_FOUND),
        ("yj-confirmer", StatusCode::OK),
        ("rc-first", StatusCode::OK),
    ] {
        let t = app.token(who).await;
        let r = app.get(&format!("/api/v1/contracts/{id}"), Some(&t)).await;
        assert_eq!(r.status, status, "{who}");
    }
    // Buyers and reviewers cannot draft or withdraw.
    let buyer = app.token("buyer-zhang").await;
    let r = app
        .post("/api/v1/contracts", Some(&buyer), draft(&unit.id))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/withdraw"),
            Some(&buyer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The confirmer (not only the drafter) may draft? No: drafting needs the drafter duty.
    let confirmer = app.token("yj-confirmer").await;
    let other = all
        .iter()
        .find(|u| u.status.as_str() == "available" && u.id != unit.id && !u.seized)
        .unwrap();
    let r = app
        .post("/api/v1/contracts", Some(&confirmer), draft(&other.id))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Withdrawn: the unit is available again, and can be drafted anew.
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/withdraw"),
            Some(&confirmer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "withdrawn");
    assert_eq!(public_status(&app, &unit.id).await, "available");
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/withdraw"),
            Some(&confirmer),
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "wrong_status");
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft(&unit.id))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // A frozen unit (court seizure) is refused.
    if let Some(seized) = all.iter().find(|u| u.seized) {
        let r = app
            .post("/api/v1/contracts", Some(&drafter), draft(&seized.id))
            .await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "unit_frozen"));
    }

    // Bad data: every rule at once, nothing written.
    let before = app.audit_len().await;
    let mut bad = draft(&other.id);
    bad["buyers"][0]["id_number"] = json!("441900199001010011");
    bad["buyers"][1]["share_percent"] = json!(30);
    bad["delivery_date"] = json!("2020-01-01");
    bad["payment"]["mode"] = json!("赊账");
    let r = app.post("/api/v1/contracts", Some(&drafter), bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<(&str, &str)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert!(
        fields.contains(&("buyers[0].id_number", "checksum")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("buyers", "shares_sum_to_100")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("delivery_date", "after_today")),
        "{fields:?}"
    );
    assert_eq!(app.audit_len().await, before);
    assert_eq!(public_status(&app, &other.id).await, "available");

    // The stored terms hold no ID number in the clear.
    let c = app.services.store.contract(&id).await.unwrap().unwrap();
    assert!(!c.terms.contains("44190019900101001X") && !c.terms.contains("441900198506150021"));
}

/// Many drafts at once for the same few units, through two service instances (PostgreSQL) or
/// one (SQLite): exactly one contract per unit, a 409 for every other request.
async fn concurrent_drafts_sell_each_unit_once(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let mut routers = vec![app.router.clone()];
    if db == Db::Postgres {
        // A second instance: its own pool and state, the same database.
        let cfg = test_config(&app.db);
        let services = virtual_window::server::prepare(Arc::new(cfg))
            .await
            .unwrap();
        routers.push(virtual_window::app(virtual_window::AppState::new(services)));
    }
    let targets: Vec<String> = units(&app)
        .await
        .into_iter()
        .filter(|u| u.status.as_str() == "available" && !u.seized)
        .take(3)
        .map(|u| u.id)
        .collect();
    assert_eq!(targets.len(), 3);
    let token = app.token("yj-drafter").await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let router = routers[i % routers.len()].clone();
        let unit = targets[i % 3].clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt as _;
            let req = axum::http::Request::builder()
                .method("POST")
                .uri("/api/v1/contracts")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::from(draft(&unit).to_string()))
                .unwrap();
            let res = router.oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap()
                .to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (unit, status, body["code"].as_str().unwrap_or("").to_owned())
        }));
    }
    let mut created = std::collections::HashMap::new();
    let mut conflicts = 0;
    for t in tasks {
        let (unit, status, code) = t.await.unwrap();
        match status {
            StatusCode::CREATED => *created.entry(unit).or_insert(0) += 1,
            StatusCode::CONFLICT => {
                assert!(
                    matches!(
                        code.as_str(),
                        "unit_not_available" | "unit_has_live_contract"
                    ),
                    "{code}"
                );
                conflicts += 1;
            }
            other => panic!("unexpected {other} ({code})"),
        }
    }
    assert_eq!(created.len(), 3, "{created:?}");
    assert!(created.values().all(|&n| n == 1), "{created:?}");
    assert_eq!(conflicts, 21);
    for u in &targets {
        assert_eq!(
            app.services
                .store
                .live_contracts_of_unit(u)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

/// Confirmation by another person generates the PDF; each buyer verifies, gets a code for the
/// exact PDF, and signs; the first signature certifies; the verifier finds every signature valid.
async fn confirmed_then_signed_by_every_buyer(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let unit = units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let confirmer = app.token("yj-confirmer").await;
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Four eyes: the drafter cannot confirm; a price above the filed one is refused.
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&drafter),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "awaiting_buyers");
    let first_sha = r.body["document_sha256"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "wrong_status");

    let doc = |token: String| {
        let app = &app;
        let id = id.clone();
        async move {
            let r = app
                .send(
                    axum::http::Request::builder()
                        .uri(format!("/api/v1/contracts/{id}/document"))
                        .header("authorization", format!("Bearer {token}"))
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
            r
        }
    };
    let sign = |who: &'static str| act(&app, who, &id, "sign_contract", "sign");
    let pdf = doc(app.token("buyer-zhang").await).await;
    assert!(pdf.text.starts_with("%PDF-"));
    let r = sign("buyer-zhang").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "buyers_signing");
    assert_ne!(r.body["document_sha256"], first_sha.as_str());
    // A code for the document as it was before is refused: it binds the exact bytes.
    let li = app.token("buyer-li").await;
    let r = app
        .post(
            "/api/v1/identity/verifications",
            Some(&li),
            json!({"purpose": "sign_contract"}),
        )
        .await;
    let vid = r.body["id"].as_str().unwrap().to_owned();
    app.get(&format!("/api/v1/identity/verifications/{vid}"), Some(&li))
        .await;
    let r = app
        .post(
            "/api/v1/identity/codes",
            Some(&li),
            json!({"purpose": "sign_contract", "document_sha256": first_sha}),
        )
        .await;
    crate::contracts::read_all(&app, &li, &id).await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/sign"),
            Some(&li),
            json!({"code_id": r.body["code_id"], "code": r.body["dev_code"]}),
        )
        .await;
    assert_eq!(r.code(), "code_other_document");
    // Someone who is not a buyer of this contract cannot sign it; nobody signs twice.
    let r = sign("buyer-wang").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = sign("buyer-zhang").await;
    assert_eq!(r.code(), "already_signed");
    let r = sign("buyer-li").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "buyers_signed");

    // The contract's own verification report: two valid signatures, the first certifying.
    let token = app.token("rc-first").await;
    let r = app
        .get(
            &format!("/api/v1/contracts/{id}/verification"),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["verdict"], "valid", "{}", r.text);
    let sigs = r.body["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    assert_eq!(sigs[0]["kind"], "certification");
    assert_eq!(sigs[0]["field"], "buyer-1");
    assert_eq!(sigs[1]["field"], "buyer-2");
    assert!(sigs.iter().all(|s| s["level"] == "B-T"));
    // The developer's confirmer seals after their own identity check; the contract goes to
    // filing review and the unit is signed.
    let r = app
        .post(
            "/api/v1/identity/verifications",
            Some(&confirmer),
            json!({"purpose": "seal_contract"}),
        )
        .await;
    let vid = r.body["id"].as_str().unwrap().to_owned();
    app.get(
        &format!("/api/v1/identity/verifications/{vid}"),
        Some(&confirmer),
    )
    .await;
    let current = app
        .get(&format!("/api/v1/contracts/{id}"), Some(&confirmer))
        .await;
    let sha = current.body["document_sha256"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/api/v1/identity/codes",
            Some(&confirmer),
            json!({"purpose": "seal_contract", "document_sha256": sha}),
        )
        .await;
    let body = json!({"code_id": r.body["code_id"], "code": r.body["dev_code"]});
    let drafter_seal = app
        .post(
            &format!("/api/v1/contracts/{id}/seal"),
            Some(&drafter),
            body.clone(),
        )
        .await;
    assert_eq!(
        drafter_seal.status,
        StatusCode::FORBIDDEN,
        "only the confirmer seals"
    );
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/seal"),
            Some(&confirmer),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "filing_review");
    assert_eq!(public_status(&app, &unit.id).await, "signed");

    // Two reviewers approve at once: exactly one files it, the other is told it was decided.
    let first = app.token("rc-first").await;
    let second = app.token("rc-second").await;
    let path = format!("/api/v1/contracts/{id}/filing/approve");
    let (a, b) = tokio::join!(
        app.post(&path, Some(&first), json!({})),
        app.post(&path, Some(&second), json!({}))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.text,
        b.text
    );
    let filed = if a.status == StatusCode::OK { a } else { b };
    assert_eq!(filed.body["status"], "filed");
    assert!(
        filed.body["filing_no"]
            .as_str()
            .unwrap()
            .starts_with("莞预备")
    );
    assert_eq!(public_status(&app, &unit.id).await, "filed");
    let r = app
        .get(
            &format!("/api/v1/contracts/{id}/verification"),
            Some(&first),
        )
        .await;
    assert_eq!(r.body["verdict"], "valid", "{}", r.text);
    let sigs = r.body["signatures"].as_array().unwrap();
    let fields: Vec<&str> = sigs.iter().map(|x| x["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "buyer-1",
            "buyer-2",
            "seller-seal",
            "centre-seal",
            "archive-timestamp"
        ]
    );
    for s in &sigs[1..4] {
        assert_eq!(s["level"], "B-LTA", "{s}");
    }
    assert_eq!(sigs[4]["kind"], "document_timestamp");

    // The evidence package: every file listed with its digest in a manifest signed by the
    // registration centre (checked with OpenSSL against the root), the audit trail included.
    let r = app
        .send(
            axum::http::Request::builder()
                .uri(format!("/api/v1/contracts/{id}/evidence"))
                .header("authorization", format!("Bearer {first}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("content-type").unwrap(), "application/zip");
    let bytes = {
        let req = axum::http::Request::builder()
            .uri(format!("/api/v1/contracts/{id}/evidence"))
            .header("authorization", format!("Bearer {first}"))
            .body(axum::body::Body::empty())
            .unwrap();
        use tower::ServiceExt as _;
        let res = app.router.clone().oneshot(req).await.unwrap();
        http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes()
    };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut read = |name: &str| {
        let mut f = zip.by_name(name).unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut v).unwrap();
        v
    };
    let manifest_bytes = read("manifest.json");
    let signature = read("manifest.json.p7s");
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let listed = manifest["files"].as_array().unwrap();
    assert!(listed.iter().any(|f| f["name"] == "audit.json"));
    let checks: Value = serde_json::from_slice(&read("filing-checks.json")).unwrap();
    assert_eq!(
        checks["passed"], true,
        "the checks as they stood at submission"
    );
    assert_eq!(
        listed
            .iter()
            .filter(|f| f["name"].as_str().unwrap().ends_with(".pdf"))
            .count(),
        5,
        "confirmed, two buyers, sealed, filed"
    );
    for f in listed {
        let content = read(f["name"].as_str().unwrap());
        let digest: String = openssl::sha::sha256(&content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(f["sha256"], digest.as_str(), "{}", f["name"]);
    }
    let audit: Value = serde_json::from_slice(&read("audit.json")).unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "contract.create",
        "contract.confirm",
        "contract.sign",
        "contract.seal",
        "contract.submit_filing",
        "contract.approve_filing",
    ] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), &manifest_bytes).unwrap();
    std::fs::write(dir.path().join("manifest.json.p7s"), &signature).unwrap();
    std::fs::write(
        dir.path().join("root.pem"),
        app.services.pki.hierarchy.root.cert_pem(),
    )
    .unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-in",
        ])
        .arg(dir.path().join("manifest.json.p7s"))
        .arg("-content")
        .arg(dir.path().join("manifest.json"))
        .arg("-CAfile")
        .arg(dir.path().join("root.pem"))
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = app.token("buyer-wang").await;
    assert_eq!(
        app.get(&format!("/api/v1/contracts/{id}/evidence"), Some(&other))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // What the hook checked is stored with each signature.
    let stored = app.services.store.contract_signatures(&id).await.unwrap();
    assert_eq!(stored.len(), 4);
    for s in stored
        .iter()
        .filter(|s| s.kind == "personal" || s.kind == "organisation_seal")
    {
        let e: Value = serde_json::from_str(&s.evidence).unwrap();
        assert_eq!(e["document_sha256"], s.document_before.as_str());
        assert!(e["verification_id"].is_string() && e["code_id"].is_string());
        assert_eq!(e["similarity"], 96.5);
    }
}

/// `who` verifies for `purpose`, gets a code for the contract's current PDF and posts it to
/// `action` (`sign` or `seal`).
/// An identity check and a code for the contract's current PDF, without acting yet.
pub(crate) async fn intent_for(
    app: &TestApp,
    who: &str,
    id: &str,
    purpose: &str,
) -> (String, Value) {
    let token = app.token(who).await;
    let r = app
        .post(
            "/api/v1/identity/verifications",
            Some(&token),
            json!({"purpose": purpose}),
        )
        .await;
    let vid = r.body["id"].as_str().unwrap().to_owned();
    app.get(
        &format!("/api/v1/identity/verifications/{vid}"),
        Some(&token),
    )
    .await;
    let current = app
        .get(&format!("/api/v1/contracts/{id}"), Some(&token))
        .await;
    // A contract the caller cannot see has no digest: the code request then fails, as it should.
    let sha = current.body["document_sha256"]
        .as_str()
        .unwrap_or(&"00".repeat(32))
        .to_owned();
    let r = app
        .post(
            "/api/v1/identity/codes",
            Some(&token),
            json!({"purpose": purpose, "document_sha256": sha}),
        )
        .await;
    (
        token,
        json!({"code_id": r.body["code_id"], "code": r.body["dev_code"]}),
    )
}

pub(crate) async fn act(
    app: &TestApp,
    who: &str,
    id: &str,
    purpose: &str,
    action: &str,
) -> crate::helpers::Reply {
    let (token, body) = intent_for(app, who, id, purpose).await;
    if action == "sign" {
        read_all(app, &token, id).await;
    }
    app.post(
        &format!("/api/v1/contracts/{id}/{action}"),
        Some(&token),
        body,
    )
    .await
}

/// Opens every chapter of the contract's current version, as a buyer must before signing.
pub(crate) async fn read_all(app: &TestApp, token: &str, id: &str) {
    let r = app
        .get(&format!("/api/v1/contracts/{id}/reading"), Some(token))
        .await;
    for ch in r.body["chapters"].as_array().cloned().unwrap_or_default() {
        app.get(
            &format!("/api/v1/contracts/{id}/chapters/{}", ch["number"]),
            Some(token),
        )
        .await;
    }
}

/// Confirmed and signed by both buyers of the sample draft: ready for the developer's seal.
pub(crate) async fn to_buyers_signed(app: &TestApp, id: &str) {
    let confirmer = app.token("yj-confirmer").await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for who in ["buyer-zhang", "buyer-li"] {
        let r = act(app, who, id, "sign_contract", "sign").await;
        assert_eq!(r.status, StatusCode::OK, "{who}: {}", r.text);
    }
}

/// Confirmed, signed by both buyers and sealed: in filing review.
async fn to_filing_review(app: &TestApp, id: &str) {
    to_buyers_signed(app, id).await;
    let r = act(app, "yj-confirmer", id, "seal_contract", "seal").await;
    assert_eq!(r.body["status"], "filing_review", "{}", r.text);
}

/// A buyer signs only after opening every chapter of the exact version and after the minimum
/// reading time; the reading record goes with the signature's evidence; a new version must be
/// read again.
async fn signing_needs_the_contract_read(db: Db) {
    let Some(app) = spawn_app_with(db, |c| c.web.min_reading_secs = 2).await else {
        return;
    };
    let unit = units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let confirmer = app.token("yj-confirmer").await;
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (token, body) = intent_for(&app, "buyer-zhang", &id, "sign_contract").await;
    let sign = |body: Value| {
        let app = &app;
        let token = token.clone();
        let id = id.clone();
        async move {
            app.post(&format!("/api/v1/contracts/{id}/sign"), Some(&token), body)
                .await
        }
    };
    let r = sign(body.clone()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "reading_incomplete"),
        "{}",
        r.text
    );
    let view = app
        .get(&format!("/api/v1/contracts/{id}"), Some(&token))
        .await;
    let action = view.body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "sign")
        .unwrap()
        .clone();
    assert_eq!(action["enabled"], false);
    assert_eq!(action["reason_code"], "reading_incomplete");
    // Every chapter but the last: still refused.
    let reading = app
        .get(&format!("/api/v1/contracts/{id}/reading"), Some(&token))
        .await;
    let chapters = reading.body["chapters"].as_array().unwrap().clone();
    assert!(chapters.len() > 10, "{}", reading.text);
    for ch in &chapters[..chapters.len() - 1] {
        let r = app
            .get(
                &format!("/api/v1/contracts/{id}/chapters/{}", ch["number"]),
                Some(&token),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(!r.body["paragraphs"].as_array().unwrap().is_empty() || ch["number"] != 1);
    }
    assert_eq!(sign(body.clone()).await.code(), "reading_incomplete");
    let last = &chapters[chapters.len() - 1];
    app.get(
        &format!("/api/v1/contracts/{id}/chapters/{}", last["number"]),
        Some(&token),
    )
    .await;
    // Every chapter, but the minimum time has not passed.
    let r = sign(body.clone()).await;
    assert_eq!(r.code(), "reading_incomplete", "{}", r.text);
    assert!(
        r.body["detail"].as_str().unwrap().contains("秒"),
        "{}",
        r.text
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = sign(body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let sigs = app.services.store.contract_signatures(&id).await.unwrap();
    let evidence: Value = serde_json::from_str(&sigs[0].evidence).unwrap();
    assert_eq!(
        evidence["reading"]["opened"].as_array().unwrap().len(),
        chapters.len(),
        "{evidence}"
    );
    assert_eq!(evidence["reading"]["min_reading_secs"], 2);
    // The text is the contract's own: its number and the buyer's name are in it.
    let contract_no = view.body["contract_no"].as_str().unwrap().to_owned();
    let all: String = {
        let mut t = String::new();
        for ch in &chapters {
            let r = app
                .get(
                    &format!("/api/v1/contracts/{id}/chapters/{}", ch["number"]),
                    Some(&token),
                )
                .await;
            for p in r.body["paragraphs"].as_array().unwrap() {
                t.push_str(p.as_str().unwrap());
            }
        }
        t
    };
    assert!(all.contains(&contract_no) && all.contains("张伟"));
    // Someone who may not see the contract reads nothing.
    let wang = app.token("buyer-wang").await;
    let r = app
        .get(&format!("/api/v1/contracts/{id}/chapters/0"), Some(&wang))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Names with rare characters (CJK Extension A and B) are set in the contract; a character the
/// document font does not have is refused when drafting, named with its code point, before any
/// PDF. The document's dates are the confirmation time, the same in Info and XMP.
async fn rare_characters_and_document_dates(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let mut free = units(&app)
        .await
        .into_iter()
        .filter(|u| u.status.as_str() == "available" && !u.seized);
    let drafter = app.token("yj-drafter").await;
    let confirmer = app.token("yj-confirmer").await;

    let unit = free.next().unwrap();
    let mut body = draft_for(&unit);
    body["buyers"][0]["name"] = json!("陈\u{20000}");
    let r = app.post("/api/v1/contracts", Some(&drafter), body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let err = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "buyers[0].name")
        .unwrap_or_else(|| panic!("{}", r.text));
    assert_eq!(err["code"], "unsupported_character");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("\u{20000}") && message.contains("U+20000"),
        "{message}"
    );
    assert_eq!(public_status(&app, &unit.id).await, "available");

    // 䶮 is U+4DAE (Extension A), 𠮷 U+20BB7 (Extension B).
    let mut body = draft_for(&unit);
    body["buyers"][0]["name"] = json!("刘䶮");
    body["buyers"][1]["name"] = json!("吴𠮷");
    let r = app.post("/api/v1/contracts", Some(&drafter), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let confirmed = time::OffsetDateTime::parse(
        r.body["updated_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let r = app
        .send(
            axum::http::Request::builder()
                .uri(format!("/api/v1/contracts/{id}/document"))
                .header("authorization", format!("Bearer {confirmer}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contract.pdf");
    std::fs::write(&path, &r.bytes).unwrap();
    let path = path.to_str().unwrap();
    let text = crate::pdf::tool("pdftotext", &[path, "-"]);
    assert!(text.contains("刘䶮") && text.contains("吴𠮷"), "{text}");
    let fonts = crate::pdf::tool("pdffonts", &[path]);
    for line in fonts.lines().skip(2) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cols[cols.len() - 5..cols.len() - 2],
            ["yes", "yes", "yes"],
            "{fonts}"
        );
    }

    // pdfinfo reads the confirmation time back, to the second, in both Info dates.
    let info = crate::pdf::tool("pdfinfo", &["-isodates", path]);
    let date_of = |key: &str| {
        let line = info
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} in {info}"));
        let v = line[key.len()..].trim().to_owned();
        // pdfinfo writes the offset as +08; RFC 3339 wants +08:00.
        let v = if v.len() == 22 { format!("{v}:00") } else { v };
        time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{key} {v}: {e}"))
    };
    let created = date_of("CreationDate:");
    assert_eq!(created, confirmed.replace_nanosecond(0).unwrap(), "{info}");
    assert_eq!(created.offset(), time::macros::offset!(+8));
    assert_eq!(date_of("ModDate:"), created);
    // The XMP metadata says the same instant (PDF/A wants them to agree).
    let meta = crate::pdf::tool("pdfinfo", &["-meta", path]);
    for tag in ["xmp:CreateDate", "xmp:ModifyDate"] {
        let v = meta
            .split(&format!("<{tag}>"))
            .nth(1)
            .and_then(|r| r.split(&format!("</{tag}>")).next())
            .unwrap_or_else(|| panic!("{tag} in {meta}"));
        let t =
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).unwrap();
        assert_eq!(t, created, "{tag} {v}");
    }
}

/// The reviewer's ten checks run on submission and are kept; the queue shows them; a permit
/// suspended or a unit seized since makes its check fail and approval is refused until it
/// passes again; a document not rendered from the contract's data fails the fixed-text check.
async fn the_reviewers_checks_run_on_submission(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let unit = units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    to_filing_review(&app, &id).await;
    let reviewer = app.token("rc-first").await;

    let queue = app.get("/api/v1/filings", Some(&reviewer)).await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.text);
    let item = queue
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["checks_passed"], true, "{item}");
    assert_eq!(item["failed_checks"], json!([]));
    assert_eq!(
        app.get("/api/v1/filings", Some(&drafter)).await.status,
        StatusCode::FORBIDDEN
    );

    let path = format!("/api/v1/contracts/{id}/checks");
    let r = app.get(&path, Some(&reviewer)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let nos: Vec<u64> = r.body["current"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["no"].as_u64().unwrap())
        .collect();
    assert_eq!(nos, (1..=10).collect::<Vec<_>>());
    assert_eq!(r.body["current"]["passed"], true, "{}", r.text);
    assert_eq!(r.body["at_submission"]["passed"], true);
    assert_eq!(app.get(&path, Some(&drafter)).await.status, StatusCode::OK);
    let zhang = app.token("buyer-zhang").await;
    assert_eq!(
        app.get(&path, Some(&zhang)).await.status,
        StatusCode::FORBIDDEN
    );

    let failed = |body: &Value| -> Vec<(u64, String)> {
        body["current"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["passed"] == false)
            .flat_map(|c| {
                c["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| {
                        (
                            c["no"].as_u64().unwrap(),
                            f["code"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    // Check 1: the permit suspended since the contract was signed.
    let permit = app
        .services
        .store
        .unit(&unit.id)
        .await
        .unwrap()
        .unwrap()
        .permit_id
        .unwrap();
    let status = |s: &str| json!({"status": s, "reason": "复核"});
    let r = app
        .post(
            &format!("/api/v1/permits/{permit}/status"),
            Some(&reviewer),
            status("suspended"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(&path, Some(&reviewer)).await;
    assert_eq!(failed(&r.body), [(1, "permit_not_valid".to_owned())]);
    let approve = format!("/api/v1/contracts/{id}/filing/approve");
    let r = app.post(&approve, Some(&reviewer), json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "checks_failed")
    );
    assert!(r.text.contains("check1.permit.status"), "{}", r.text);
    app.post(
        &format!("/api/v1/permits/{permit}/status"),
        Some(&reviewer),
        status("valid"),
    )
    .await;
    // Check 2: the unit seized since.
    let flag = |v: bool| json!({"flag": "seized", "value": v, "reason": "（2026）粤1971执保1号"});
    app.post(
        &format!("/api/v1/units/{}/flags", unit.id),
        Some(&reviewer),
        flag(true),
    )
    .await;
    let r = app.get(&path, Some(&reviewer)).await;
    assert_eq!(failed(&r.body), [(2, "unit_frozen".to_owned())]);
    assert_eq!(
        app.post(&approve, Some(&reviewer), json!({})).await.code(),
        "checks_failed"
    );
    app.post(
        &format!("/api/v1/units/{}/flags", unit.id),
        Some(&reviewer),
        flag(false),
    )
    .await;

    // Check 9, on the contract as it would be with other data or another document.
    use virtual_window::services::checks::{self, Snapshot};
    let c = app.services.store.contract(&id).await.unwrap().unwrap();
    let (snap, mut data) = Snapshot::open(&app.services, &c).unwrap();
    data.supplementary.push("出卖人不承担逾期交房责任。".into());
    let mut altered = c.clone();
    altered.snapshot = Some(
        Snapshot::seal(
            &app.services,
            &c.id,
            &data,
            &snap.public_url,
            &snap.created,
            &snap.document_sha256,
        )
        .unwrap(),
    );
    let k = checks::run(&app.services, &altered).await.unwrap();
    let nine = &k.checks[8];
    assert!(
        !nine.passed && nine.findings[0].code == "fixed_text_changed",
        "{nine:?}"
    );
    let mut other_doc = c.clone();
    let (_, data) = Snapshot::open(&app.services, &c).unwrap();
    other_doc.snapshot = Some(
        Snapshot::seal(
            &app.services,
            &c.id,
            &data,
            &snap.public_url,
            &snap.created,
            &"0".repeat(64),
        )
        .unwrap(),
    );
    let k = checks::run(&app.services, &other_doc).await.unwrap();
    assert_eq!(k.checks[8].findings[0].code, "document_not_generated");
    // A snapshot bound to another contract does not open.
    let mut moved = c.clone();
    moved.id = "another-contract".into();
    assert!(Snapshot::open(&app.services, &moved).is_none());

    let r = app.post(&approve, Some(&reviewer), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "filed");
}

/// A buyer applies for the advance-notice registration of contract `id`, after an identity
/// check and with a code bound to the contract's current PDF.
pub(crate) async fn apply_registration(
    app: &TestApp,
    id: &str,
    who: &str,
) -> crate::helpers::Reply {
    let (token, mut body) = intent_for(app, who, id, "apply_registration").await;
    body["contract_id"] = json!(id);
    app.post("/api/v1/registrations", Some(&token), body).await
}

/// A filed contract for the next available unit.
async fn filed_contract(app: &TestApp) -> String {
    let unit = units(app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    to_filing_review(app, &id).await;
    let reviewer = app.token("rc-first").await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/filing/approve"),
            Some(&reviewer),
            json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "filed", "{}", r.text);
    id
}

pub(crate) async fn reg_post(
    app: &TestApp,
    who: &str,
    reg: &str,
    action: &str,
    body: Value,
) -> crate::helpers::Reply {
    let t = app.token(who).await;
    app.post(
        &format!("/api/v1/registrations/{reg}/{action}"),
        Some(&t),
        body,
    )
    .await
}

pub(crate) async fn upload(
    app: &TestApp,
    who: &str,
    kind: &str,
    content_type: &str,
    bytes: &[u8],
) -> crate::helpers::Reply {
    let t = app.token(who).await;
    app.send(
        axum::http::Request::post(format!("/api/v1/materials?kind={kind}&name=scan"))
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", content_type)
            .body(axum::body::Body::from(bytes.to_vec()))
            .unwrap(),
    )
    .await
}

/// The side exits of a registration case — not accepted, withdrawn, rejected, requisitioned and
/// answered with materials from the applicant's library, suspended and resumed — then the
/// register entry's end: cancelled on a court document (certificate revoked), or lapsed by the
/// scheduler after its legal period, exactly once.
async fn registration_side_exits_and_the_entry(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let id = filed_contract(&app).await;
    let items = json!({"items": [
        {"field": "id_card", "code": "missing", "message": "缺少申请人身份证明。"},
        {"field": "consent", "code": "missing", "message": "缺少共有人同意书。"}
    ]});
    let note = |m: &str| json!({"reason": m});
    let opinion = json!({"opinion": "符合登记条件。"});

    // Not accepted: everything missing at once; the contract is free for a new application.
    let reg = apply_registration(&app, &id, "buyer-zhang").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = reg_post(&app, "rc-intake", &reg, "not-accept", json!({"items": []})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = reg_post(&app, "rc-intake", &reg, "not-accept", items.clone()).await;
    assert_eq!(r.body["status"], "not_accepted", "{}", r.text);
    // Withdrawn by its applicant only.
    let reg = apply_registration(&app, &id, "buyer-zhang").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        reg_post(&app, "buyer-li", &reg, "withdraw", note("x"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = reg_post(&app, "buyer-zhang", &reg, "withdraw", note("需与家人商量")).await;
    assert_eq!(r.body["status"], "withdrawn", "{}", r.text);
    // Rejected after acceptance, by a reviewer with a review duty.
    let reg = apply_registration(&app, &id, "buyer-zhang").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        reg_post(&app, "rc-intake", &reg, "accept", opinion.clone())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        reg_post(&app, "rc-intake", &reg, "reject", items.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = reg_post(&app, "rc-first", &reg, "reject", items.clone()).await;
    assert_eq!(r.body["status"], "rejected", "{}", r.text);

    // Requisitioned: the case waits at its step until the applicant answers.
    let reg = apply_registration(&app, &id, "buyer-zhang").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    reg_post(&app, "rc-intake", &reg, "accept", opinion.clone()).await;
    let r = reg_post(&app, "rc-first", &reg, "requisition", items.clone()).await;
    assert_eq!(
        (r.body["status"].as_str(), r.body["hold"].as_str()),
        (Some("accepted"), Some("requisitioned")),
        "{}",
        r.text
    );
    assert_eq!(r.body["hold_reasons"].as_array().unwrap().len(), 2);
    assert_eq!(
        reg_post(&app, "rc-first", &reg, "first-review", opinion.clone())
            .await
            .code(),
        "on_hold"
    );
    // The library: stored once by content, checked for what it really is, private to its owner.
    let pdf = b"%PDF-1.4\n% an ID card scan\n%%EOF\n";
    let a = upload(&app, "buyer-zhang", "id_card", "application/pdf", pdf).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let sha = a.body["sha256"].as_str().unwrap().to_owned();
    let again = upload(&app, "buyer-zhang", "id_card", "application/pdf", pdf).await;
    assert_eq!(again.body["sha256"], sha.as_str());
    assert_eq!(
        upload(&app, "buyer-zhang", "id_card", "image/png", pdf)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        upload(&app, "buyer-zhang", "passport", "application/pdf", pdf)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let li = upload(
        &app,
        "buyer-li",
        "consent",
        "image/png",
        b"\x89PNG\r\n\x1a\nconsent",
    )
    .await;
    assert_eq!(li.status, StatusCode::CREATED, "{}", li.text);
    let li_sha = li.body["sha256"].as_str().unwrap().to_owned();
    let zhang = app.token("buyer-zhang").await;
    assert_eq!(
        app.get("/api/v1/materials", Some(&zhang))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get(&format!("/api/v1/materials/{li_sha}"), Some(&zhang))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let rc = app.token("rc-first").await;
    assert_eq!(
        app.get(&format!("/api/v1/materials/{li_sha}"), Some(&rc))
            .await
            .status,
        StatusCode::OK
    );
    let r = reg_post(
        &app,
        "buyer-zhang",
        &reg,
        "materials",
        json!({"materials": [li_sha]}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_yours"))
    );
    let r = reg_post(
        &app,
        "buyer-zhang",
        &reg,
        "materials",
        json!({"materials": [sha]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["hold"], Value::Null);
    assert_eq!(
        r.body["materials"].as_array().unwrap().len(),
        2,
        "the filed contract and the scan"
    );
    // Suspended and resumed.
    let r = reg_post(&app, "rc-first", &reg, "suspend", note("法院协助执行通知")).await;
    assert_eq!(r.body["hold"], "suspended", "{}", r.text);
    assert_eq!(
        reg_post(&app, "rc-first", &reg, "first-review", opinion.clone())
            .await
            .code(),
        "on_hold"
    );
    assert_eq!(
        reg_post(&app, "rc-first", &reg, "resume", note("解除"))
            .await
            .body["hold"],
        Value::Null
    );
    for (who, step) in [
        ("rc-first", "first-review"),
        ("rc-second", "second-review"),
        ("rc-recorder", "record"),
    ] {
        let r = reg_post(&app, who, &reg, step, opinion.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.text);
    }
    let r = app
        .get(&format!("/api/v1/registrations/{reg}"), Some(&zhang))
        .await;
    assert_eq!(
        (r.body["status"].as_str(), r.body["entry_status"].as_str()),
        (Some("certificate_issued"), Some("valid"))
    );
    assert_eq!(
        r.body["lapses_on"], "2028-09-28",
        "delivery 2028-06-30 + 90 days"
    );
    let digits: String = r.body["certificate_no"]
        .as_str()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let public = app.get(&format!("/c/{digits}"), None).await;
    assert_eq!(
        (
            public.body["status"].as_str(),
            public.body["entry_status"].as_str()
        ),
        (Some("valid"), Some("valid"))
    );
    // Times are RFC 3339 text everywhere, also inside the case's opinions.
    for t in [
        &public.body["issued_at"],
        &r.body["created_at"],
        &r.body["opinions"][0]["at"],
    ] {
        let t = t.as_str().unwrap_or_else(|| panic!("not a string: {t}"));
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
    }
    // A phone scanning the QR code is sent to the status page.
    let html = |path: String| {
        axum::http::Request::get(path)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let qr = app.send(html(format!("/c/{digits}"))).await;
    assert_eq!(qr.status, StatusCode::SEE_OTHER);
    let page = app
        .send(html(qr.headers["location"].to_str().unwrap().to_owned()))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text.contains("不动产登记证明状态"));
    assert!(page.text.contains("证明有效"), "{}", page.text);

    // Cancelled on a court document by the recorder: the certificate is revoked publicly.
    let court = upload(
        &app,
        "rc-recorder",
        "court_document",
        "application/pdf",
        b"%PDF-1.4\n(2026) ruling\n",
    )
    .await;
    let court_sha = court.body["sha256"].as_str().unwrap().to_owned();
    let cancel = json!({"reason": "法院判决解除合同", "basis": "court", "material": court_sha});
    assert_eq!(
        reg_post(&app, "rc-first", &reg, "entry/cancel", cancel.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = reg_post(&app, "rc-recorder", &reg, "entry/cancel", cancel.clone()).await;
    assert_eq!(r.body["entry_status"], "cancelled", "{}", r.text);
    assert_eq!(
        reg_post(&app, "rc-recorder", &reg, "entry/cancel", cancel)
            .await
            .code(),
        "no_valid_entry"
    );
    let public = app.get(&format!("/c/{digits}"), None).await;
    assert_eq!(
        (
            public.body["status"].as_str(),
            public.body["entry_status"].as_str()
        ),
        (Some("revoked"), Some("cancelled"))
    );
    let c = app.services.store.contract(&id).await.unwrap().unwrap();
    assert_eq!(
        app.services
            .store
            .unit(&c.unit_id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "filed"
    );
    // With the advance notice gone, the contract's filing is cancelled on a court document
    // (in place of the other party's consent); the document must be the requester's own.
    let ruling = upload(
        &app,
        "buyer-zhang",
        "court_document",
        "application/pdf",
        b"%PDF-1.4\n(2026) judgment\n",
    )
    .await;
    let ruling = ruling.body["sha256"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/contracts/{id}/cancellation");
    let r = app
        .post(
            &path,
            Some(&zhang),
            json!({"reason": "法院判决解除", "court_document": court_sha}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app
        .post(
            &path,
            Some(&zhang),
            json!({"reason": "法院判决解除", "court_document": ruling}),
        )
        .await;
    assert_eq!(r.body["status"], "cancel_requested", "{}", r.text);
    let r = app
        .post(&format!("{path}/approve"), Some(&rc), json!({}))
        .await;
    assert_eq!(r.body["status"], "cancelled", "{}", r.text);
    assert_eq!(
        app.services
            .store
            .unit(&c.unit_id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "available"
    );

    // Another contract's advance notice lapses after its legal period, exactly once.
    let id2 = filed_contract(&app).await;
    let reg2 = apply_registration(&app, &id2, "buyer-li").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (who, step) in [
        ("rc-intake", "accept"),
        ("rc-first", "first-review"),
        ("rc-second", "second-review"),
        ("rc-recorder", "record"),
    ] {
        let r = reg_post(&app, who, &reg2, step, opinion.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.text);
    }
    use virtual_window::services::scheduler;
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        scheduler::run_once(&app.services, now)
            .await
            .unwrap()
            .lapsed_advance_notices,
        0
    );
    let after = time::macros::datetime!(2028-09-30 00:00 UTC);
    let (a, b) = tokio::join!(
        scheduler::run_once(&app.services, after),
        scheduler::run_once(&app.services, after)
    );
    assert_eq!(
        a.unwrap().lapsed_advance_notices + b.unwrap().lapsed_advance_notices,
        1
    );
    let li_token = app.token("buyer-li").await;
    let r = app
        .get(&format!("/api/v1/registrations/{reg2}"), Some(&li_token))
        .await;
    assert_eq!(r.body["entry_status"], "lapsed");
    let c2 = app.services.store.contract(&id2).await.unwrap().unwrap();
    assert_eq!(
        app.services
            .store
            .unit(&c2.unit_id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "filed"
    );
    let events = app
        .services
        .store
        .chained_audit_events(0, 100_000)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "registration.lapse")
            .count(),
        1
    );
    for a in [
        "registration.not_accept",
        "registration.withdraw",
        "registration.reject",
        "registration.requisition",
        "registration.hand_in",
        "registration.suspend",
        "registration.resume",
        "registration.cancel_entry",
        "material.upload",
        "material.read",
    ] {
        assert!(events.iter().any(|e| e.action == a), "{a} not audited");
    }
}

/// The developer hands each buyer an invitation code; it opens the contract only to the buyer
/// it was made for, shows who has signed, and is void once the contract changes.
async fn buyers_are_invited_by_code(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let unit = units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/contracts/{id}/invitations");
    assert_eq!(
        app.get(&path, Some(&drafter)).await.code(),
        "not_awaiting_buyers"
    );
    let confirmer = app.token("yj-confirmer").await;
    app.post(
        &format!("/api/v1/contracts/{id}/confirm"),
        Some(&confirmer),
        json!({}),
    )
    .await;
    let r = app.get(&path, Some(&drafter)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.body.as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0]["name"].as_str(), list[0]["signed"].as_bool()),
        (Some("张伟"), Some(false))
    );
    assert!(list[0]["link"].as_str().unwrap().contains(&id));
    let (zhang_code, li_code) = (list[0]["code"].clone(), list[1]["code"].clone());
    assert_ne!(zhang_code, li_code);

    let accept = format!("/api/v1/contracts/{id}/invitation");
    // A buyer account without a registered identity is asked to register it first.
    let admin = app.token("admin").await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": "buyer-new", "display_name": "新用户", "password": virtual_window::config::DEV_DEMO_PASSWORD, "role": "buyer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let newcomer = app.token("buyer-new").await;
    let r = app
        .post(&accept, Some(&newcomer), json!({"code": list[0]["code"]}))
        .await;
    assert_eq!(r.code(), "identity_required");
    let zhang = app.token("buyer-zhang").await;
    let wang = app.token("buyer-wang").await;
    let r = app
        .post(&accept, Some(&zhang), json!({"code": "WRONGCODE0"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app.post(&accept, Some(&zhang), json!({"code": "X"})).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a short code is refused, not a panic"
    );
    let r = app
        .post(&accept, Some(&zhang), json!({"code": li_code}))
        .await;
    assert_eq!(r.code(), "invitation_not_for_you");
    let r = app
        .post(&accept, Some(&wang), json!({"code": zhang_code}))
        .await;
    assert_eq!(r.code(), "invitation_not_for_you");
    let r = app
        .post(
            &accept,
            Some(&zhang),
            json!({"code": zhang_code.as_str().unwrap().to_lowercase()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());

    let r = act(&app, "buyer-zhang", &id, "sign_contract", "sign").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = app.get(&path, Some(&drafter)).await.body;
    assert_eq!(
        (list[0]["signed"].as_bool(), list[1]["signed"].as_bool()),
        (Some(true), Some(false))
    );
    // A change of content (recalled to a new version) voids the codes.
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/recall"),
            Some(&drafter),
            json!({"reason": "改付款方式"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.post(
        &format!("/api/v1/contracts/{id}/confirm"),
        Some(&confirmer),
        json!({}),
    )
    .await;
    let r = app
        .post(&accept, Some(&zhang), json!({"code": zhang_code}))
        .await;
    assert_eq!(r.code(), "validation_failed");
    let fresh = app.get(&path, Some(&drafter)).await.body;
    assert_ne!(fresh[0]["code"], zhang_code);
}

/// The first seals of a developer, at the same moment on two instances sharing the database: one organisation seal is issued and kept (the other issuance revoked as
/// superseded), and both contracts carry that seal and verify.
async fn first_seals_at_once_issue_one_organisation_seal(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let second = virtual_window::server::prepare(Arc::new(test_config(&app.db)))
        .await
        .unwrap();
    // First use from eight requests at once, four on each instance: one seal comes out, its key
    // and certificate belong together, and every other issuance is revoked.
    let org = app
        .services
        .store
        .organisation_by_uscc("91441900MA4W0L7N36")
        .await
        .unwrap()
        .unwrap();
    let mut calls = Vec::new();
    for i in 0..8 {
        let services = if i % 2 == 0 {
            app.services.clone()
        } else {
            second.clone()
        };
        let org = org.clone();
        calls.push(tokio::spawn(async move {
            virtual_window::services::contracts::organisation_seal(&services, &org)
                .await
                .unwrap()
        }));
    }
    let mut certs = std::collections::HashSet::new();
    for c in calls {
        let seal = c.await.unwrap();
        let x = openssl::x509::X509::from_der(&seal.cert).unwrap();
        assert_eq!(
            x.public_key().unwrap().public_key_to_der().unwrap(),
            seal.key.public_key_der(),
            "key and certificate paired"
        );
        certs.insert(seal.cert.clone());
    }
    assert_eq!(certs.len(), 1, "one organisation seal");
    let router2 = virtual_window::app(virtual_window::AppState::new(second));
    // A second confirmer, registered by the administrator.
    let admin = app.token("admin").await;
    let me = app
        .get("/api/v1/me", Some(&app.token("yj-drafter").await))
        .await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": "yj-confirmer2", "display_name": "何敏", "password": virtual_window::config::DEV_DEMO_PASSWORD, "role": "developer", "duties": ["confirmer"], "organisation_id": me.body["organisation_id"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let uid = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            axum::http::Method::PUT,
            &format!("/api/v1/users/{uid}/identity"),
            Some(&admin),
            Some(
                json!({"real_name": "何敏", "id_number": crate::identity::id_with_sequence("210")}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    let drafter = app.token("yj-drafter").await;
    let confirmer = app.token("yj-confirmer").await;
    let free: Vec<_> = units(&app)
        .await
        .into_iter()
        .filter(|u| u.status.as_str() == "available" && !u.seized)
        .take(2)
        .collect();
    let mut ids = Vec::new();
    for u in &free {
        let r = app
            .post("/api/v1/contracts", Some(&drafter), draft_for(u))
            .await;
        let id = r.body["id"].as_str().unwrap().to_owned();
        app.post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            json!({}),
        )
        .await;
        for who in ["buyer-zhang", "buyer-li"] {
            let r = act(&app, who, &id, "sign_contract", "sign").await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
        ids.push(id);
    }
    let (t1, b1) = intent_for(&app, "yj-confirmer", &ids[0], "seal_contract").await;
    let (t2, b2) = intent_for(&app, "yj-confirmer2", &ids[1], "seal_contract").await;
    let seal = |router: axum::Router, token: String, id: String, body: Value| async move {
        use tower::ServiceExt as _;
        let req = axum::http::Request::post(format!("/api/v1/contracts/{id}/seal"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        router.oneshot(req).await.unwrap().status()
    };
    let (a, b) = tokio::join!(
        seal(app.router.clone(), t1, ids[0].clone(), b1),
        seal(router2, t2, ids[1].clone(), b2)
    );
    assert_eq!((a, b), (StatusCode::OK, StatusCode::OK));

    let org = org.id.as_str();
    let mut serials = Vec::new();
    for id in &ids {
        let sigs = app.services.store.contract_signatures(id).await.unwrap();
        let seal = sigs.iter().find(|x| x.kind == "organisation_seal").unwrap();
        serials.push(seal.certificate_serial.clone().unwrap());
        let r = app
            .get(
                &format!("/api/v1/contracts/{id}/checks"),
                Some(&app.token("rc-first").await),
            )
            .await;
        assert_eq!(r.body["current"]["passed"], true, "{}", r.text);
    }
    assert_eq!(serials[0], serials[1], "one seal for the organisation");
    let seals: Vec<_> = app
        .services
        .store
        .certificates(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.organisation_id.as_deref() == Some(org) && c.revoked_at.is_none())
        .collect();
    let (sm2, p256): (Vec<_>, Vec<_>) = seals.iter().partition(|c| c.profile == "sm2-seal");
    assert_eq!(p256.len(), 1, "the losing issuance is revoked");
    // Its GB/T 38540 seal's holder certificate (SM2): one kept, only the winner's logged.
    assert_eq!(sm2.len(), 1, "one SM2 seal holder");
}

/// An account's uploads are limited per day; the limit names itself and when to come back.
async fn uploads_are_limited_per_account(db: Db) {
    let Some(app) = crate::helpers::spawn_app_with(db, |c| c.workflow.uploads_per_day = 3).await
    else {
        return;
    };
    for i in 0..3 {
        let body = format!("%PDF-1.4\n% scan {i}\n");
        let r = upload(
            &app,
            "buyer-zhang",
            "other",
            "application/pdf",
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = upload(
        &app,
        "buyer-zhang",
        "other",
        "application/pdf",
        b"%PDF-1.4\n% one more\n",
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads")
    );
    assert!(r.headers.contains_key("retry-after"));
    // Another account is not affected.
    let r = upload(
        &app,
        "buyer-li",
        "other",
        "application/pdf",
        b"%PDF-1.4\n% li\n",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// A reviewer returns the filing with every reason; the developer reopens it as a new version
/// (old signatures void), corrects it, everyone signs again, and it is filed.
async fn a_returned_filing_is_corrected_and_refiled(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let unit = units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    to_filing_review(&app, &id).await;

    let reviewer = app.token("rc-first").await;
    let buyer = app.token("buyer-zhang").await;
    let reasons = json!({"reasons": [
        {"field": "buyers[1].address", "code": "incomplete", "message": "买受人李娜的通讯地址不完整。"},
        {"field": "supplementary", "code": "unfair_term", "message": "补充协议第 1 条减轻了出卖人的责任。"}
    ]});
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/filing/return"),
            Some(&buyer),
            reasons.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/filing/return"),
            Some(&reviewer),
            reasons.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "returned");
    assert_eq!(r.body["returned_reasons"].as_array().unwrap().len(), 2);
    // Decided: a second decision is refused.
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/filing/approve"),
            Some(&reviewer),
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "wrong_status");

    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/reopen"),
            Some(&drafter),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["status"].as_str(), r.body["version"].as_i64()),
        (Some("draft"), Some(2))
    );
    assert!(
        r.body["document_sha256"].is_null(),
        "the signed document is no longer the contract"
    );
    assert_eq!(public_status(&app, &unit.id).await, "locked");
    let mut corrected = draft_for(&unit);
    corrected["buyers"][1]["address"] = json!("广东省东莞市南城街道鸿福路 100 号 2 栋 1201 房");
    corrected["supplementary"] = json!([]);
    let r = app
        .call(
            axum::http::Method::PUT,
            &format!("/api/v1/contracts/{id}"),
            Some(&drafter),
            Some(corrected),
        )
        .await;
    assert_eq!(
        (r.status, r.body["version"].as_i64()),
        (StatusCode::OK, Some(3)),
        "{}",
        r.text
    );
    to_filing_review(&app, &id).await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/filing/approve"),
            Some(&reviewer),
            json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "filed", "{}", r.text);
    // Only the last version's signatures are in the filed document.
    let report = app
        .get(
            &format!("/api/v1/contracts/{id}/verification"),
            Some(&reviewer),
        )
        .await;
    assert_eq!(report.body["verdict"], "valid");
    assert_eq!(report.body["signatures"].as_array().unwrap().len(), 5);
    let stored = app.services.store.contract_signatures(&id).await.unwrap();
    assert_eq!(stored.iter().filter(|s| s.contract_version == 1).count(), 3);
    assert_eq!(stored.iter().filter(|s| s.contract_version == 3).count(), 4);
}

/// Each signature, seal and the filing's validation data append an incremental update to the
/// PDF: the store keeps the confirmed contract whole and each later revision as the encrypted
/// bytes it appends, naming the revision before. Read by another instance (nothing kept in
/// memory) the filed contract is put together byte for byte; a row pointed at the wrong base,
/// or an increment swapped for another, is refused, never returned.
async fn signed_revisions_are_stored_as_increments(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let id = filed_contract(&app).await;
    let c = app.services.store.contract(&id).await.unwrap().unwrap();
    let filed = c.document_sha256.clone().unwrap();
    let reviewer = app.token("rc-first").await;
    let download = app
        .get(&format!("/api/v1/contracts/{id}/document"), Some(&reviewer))
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(
        virtual_window::audit::hex(&openssl::sha::sha256(&download.bytes)),
        filed
    );

    let sigs = app.services.store.contract_signatures(&id).await.unwrap();
    assert_eq!(sigs.len(), 4, "two buyers, the seal, the filing");
    for sig in &sigs {
        let rows = app
            .services
            .store
            .material(&sig.document_after)
            .await
            .unwrap();
        assert_eq!(
            rows[0].base_sha256.as_deref(),
            Some(sig.document_before.as_str()),
            "{} is stored as what it appends",
            sig.field
        );
        assert!(
            rows[0].content.len() < download.bytes.len() / 3,
            "{}: {} bytes stored",
            sig.field,
            rows[0].content.len()
        );
        assert!(
            !rows[0].content.windows(5).any(|w| w == b"%%EOF"),
            "encrypted"
        );
        let whole = rows.last().unwrap();
        assert!(whole.base_sha256.is_none());
        assert!(!whole.content.starts_with(b"%PDF"), "encrypted");
    }
    assert_eq!(
        app.services.store.material(&filed).await.unwrap().len(),
        5,
        "the confirmed contract and four increments"
    );

    // Another instance: nothing in memory, everything from the rows.
    let mut other = app.services.clone();
    let fresh = || {
        std::sync::Arc::new(virtual_window::services::materials::Recent::new(
            virtual_window::services::materials::RECENT_BYTES,
        ))
    };
    other.recent_documents = fresh();
    let bytes = virtual_window::services::materials::get(&other, &filed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bytes, download.bytes);

    // The first buyer's revision pointed at the contract's filed revision instead of the
    // confirmed one: the pieces no longer make the digest. Put back, it reads again.
    let first = sigs.iter().min_by_key(|s| s.signed_at).unwrap();
    let rebase = async |base: &str| {
        crate::store::behind_the_service(
            db,
            &app.db.url,
            &format!(
                "UPDATE materials SET base_sha256 = '{base}' WHERE sha256 = '{}'",
                first.document_after
            ),
        )
        .await;
        let mut reader = app.services.clone();
        reader.recent_documents = fresh();
        virtual_window::services::materials::get(&reader, &filed).await
    };
    assert!(rebase(&filed).await.is_err());
    assert_eq!(
        rebase(&first.document_before).await.unwrap().unwrap(),
        download.bytes
    );
    // An increment swapped for another's bytes: it does not decrypt under its own digest.
    let last = sigs.iter().max_by_key(|s| s.signed_at).unwrap();
    crate::store::behind_the_service(
        db,
        &app.db.url,
        &format!(
            "UPDATE materials SET content = (SELECT content FROM materials WHERE sha256 = '{}'), \
             base_sha256 = '{}' WHERE sha256 = '{}'",
            first.document_after, last.document_before, last.document_after
        ),
    )
    .await;
    other.recent_documents = fresh();
    assert!(
        virtual_window::services::materials::get(&other, &last.document_after)
            .await
            .is_err()
    );
}

/// After filing: the buyer applies for advance-notice registration relying on the stored
/// contract; four different people accept, review twice and record; the sealed certificate is
/// issued and its public page shows it valid.
async fn registration_with_four_eyes_to_the_certificate(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let unit = units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    // Not filed yet: no application.
    let apply = |who: &'static str| apply_registration(&app, &id, who);
    to_filing_review(&app, &id).await;
    assert_eq!(apply("buyer-zhang").await.code(), "contract_not_filed");
    let reviewer = app.token("rc-first").await;
    let filed = app
        .post(
            &format!("/api/v1/contracts/{id}/filing/approve"),
            Some(&reviewer),
            json!({}),
        )
        .await;
    let filed_sha = filed.body["document_sha256"].as_str().unwrap().to_owned();

    let r = apply("buyer-zhang").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "submitted");
    assert_eq!(
        r.body["materials"],
        json!([filed_sha]),
        "the filed contract is referenced, not uploaded"
    );
    let reg = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(apply("buyer-li").await.code(), "registration_exists");

    let step = |who: &'static str, action: &'static str| {
        let app = &app;
        let reg = reg.clone();
        async move {
            let t = app.token(who).await;
            app.post(
                &format!("/api/v1/registrations/{reg}/{action}"),
                Some(&t),
                json!({"opinion": "材料齐全，符合登记条件。"}),
            )
            .await
        }
    };
    assert_eq!(
        step("rc-first", "first-review").await.code(),
        "wrong_status",
        "not accepted yet"
    );
    let r = step("rc-intake", "accept").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.body["acceptance_no"]
            .as_str()
            .unwrap()
            .starts_with("莞受")
    );
    assert_eq!(
        step("rc-intake", "first-review").await.status,
        StatusCode::FORBIDDEN,
        "no duty"
    );
    assert_eq!(
        step("rc-second", "first-review").await.status,
        StatusCode::FORBIDDEN,
        "no duty"
    );
    assert_eq!(
        step("rc-first", "first-review").await.status,
        StatusCode::OK
    );
    assert_eq!(step("rc-recorder", "record").await.code(), "wrong_status");
    assert_eq!(
        step("rc-second", "second-review").await.status,
        StatusCode::OK
    );
    let r = step("rc-recorder", "record").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "certificate_issued");
    assert_eq!(r.body["certificate_status"], "valid");
    let number = r.body["certificate_no"].as_str().unwrap().to_owned();
    assert!(
        number.starts_with("粤(") && number.ends_with("号"),
        "{number}"
    );
    assert_eq!(r.body["opinions"].as_array().unwrap().len(), 5);
    assert_eq!(
        public_status(&app, &unit.id).await,
        "advance_notice_registered"
    );

    // The certificate: sealed by the centre and valid for the verifier.
    let token = app.token("buyer-zhang").await;
    let pdf = app
        .send(
            axum::http::Request::builder()
                .uri(format!("/api/v1/registrations/{reg}/certificate"))
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    let sha = app
        .services
        .store
        .registration(&reg)
        .await
        .unwrap()
        .unwrap()
        .certificate_sha256
        .unwrap();
    // Stored encrypted: the row is not the PDF; the service opens it and checks its digest.
    let stored = app.services.store.material(&sha).await.unwrap();
    assert_eq!(stored.len(), 1, "the certificate is stored whole");
    assert!(!stored[0].content.starts_with(b"%PDF"));
    let bytes = virtual_window::services::materials::get(&app.services, &sha)
        .await
        .unwrap()
        .unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    let report = virtual_window::services::verification::verify_pdf(&app.services, bytes.into())
        .await
        .unwrap();
    assert_eq!(
        report.verdict,
        virtual_window::pdf::verify::Verdict::Valid,
        "{report:#?}"
    );
    assert_eq!(report.signatures[0].field, "centre-seal");

    // The same certificate as an OFD package under the centre's GB/T 38540 seal (SM2).
    let ofd = app
        .send(
            axum::http::Request::builder()
                .uri(format!(
                    "/api/v1/registrations/{reg}/certificate?format=ofd"
                ))
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(ofd.status, StatusCode::OK, "{}", ofd.text);
    assert_eq!(ofd.headers["content-type"], "application/ofd");
    assert!(ofd.bytes.starts_with(b"PK\x03\x04"));
    // Laid out from the PDF certificate's template: the same number, parties, statement and
    // the seal's label.
    let page = virtual_window::ofd::package::Package::open(&ofd.bytes)
        .unwrap()
        .text("Doc_0/Pages/Page_0/Content.xml")
        .unwrap()
        .to_owned();
    for text in [
        number.as_str(),
        "不动产登记证明",
        "证明权利或事项",
        "预告登记（预购商品房买卖）",
        "登记机构：东莞市不动产登记中心",
        "不动产登记中心（印章）：",
    ] {
        assert!(page.contains(text), "{text} missing from the OFD page");
    }
    // Not for someone else's case.
    let other = app.token("buyer-li").await;
    let r = app
        .get(
            &format!("/api/v1/registrations/{reg}/certificate?format=ofd"),
            Some(&other),
        )
        .await;
    assert!(
        r.status == StatusCode::NOT_FOUND || r.status == StatusCode::FORBIDDEN,
        "{}",
        r.status
    );
    // Anyone may verify it: valid, one seal, trusted to the SM2 root.
    let v = verify_ofd(&app, ofd.bytes.clone()).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    assert_eq!(v.body["verdict"], "valid", "{}", v.text);
    assert_eq!(v.body["signatures"][0]["kind"], "seal");
    assert_eq!(v.body["signatures"][0]["sub_filter"], "GB/T 38540");
    assert_eq!(v.body["signatures"][0]["trust"], "trusted");
    // Declared as OFD but a PDF: refused by its bytes.
    let v = verify_ofd(&app, pdf.bytes.clone()).await;
    assert_eq!(v.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v.code(), "not_an_ofd");
    // The seals: the developer's 合同专用章 and the centre's 不动产登记专用章, for admins only.
    let admin = app.token("admin").await;
    let seals = app.get("/api/v1/pki/seals", Some(&admin)).await;
    assert_eq!(seals.status, StatusCode::OK, "{}", seals.text);
    let names: Vec<&str> = seals
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("不动产登记专用章")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with("合同专用章")), "{names:?}");
    assert_eq!(
        app.get("/api/v1/pki/seals", Some(&token)).await.status,
        StatusCode::FORBIDDEN
    );
    let centre_seal = seals
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"].as_str().unwrap().ends_with("不动产登记专用章"))
        .unwrap()["es_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/pki/seals/{centre_seal}/revoke");
    assert_eq!(
        app.post(&path, Some(&token), json!({"reason": "测试"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .post(&path, Some(&admin), json!({"reason": "印章信息变更"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["revoked_at"].is_string());
    assert_eq!(
        app.post(&path, Some(&admin), json!({"reason": "again"}))
            .await
            .code(),
        "seal_revoked"
    );
    // Revoked after it sealed the certificate: the certificate stays valid.
    let v = verify_ofd(&app, ofd.bytes.clone()).await;
    assert_eq!(v.body["verdict"], "valid", "{}", v.text);
    // The next certificate gets a new seal for the centre (the revoked one is never used again).
    let next = virtual_window::services::gm::centre_seal(&app.services)
        .await
        .unwrap();
    assert_ne!(next.seal.es_id, centre_seal);
    // The SM2 certificates are in the certificate log; revoking the centre's seal certificate
    // puts it on the SM2 centre CA's CRL (signed SM2-with-SM3), leaves the certificate sealed
    // before valid, and the next seal comes with a new holder certificate.
    let certs = app.get("/api/v1/pki/certificates", Some(&admin)).await;
    let holder = certs
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["profile"] == "sm2-seal" && c["issuer"] == "sm2-centre-ca")
        .unwrap_or_else(|| panic!("{}", certs.text))["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &format!("/api/v1/pki/certificates/{holder}/revoke"),
            Some(&admin),
            json!({"reason": "key_compromise"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The holder's certificate names this CRL where the service publishes it.
    let holder_cert = app
        .services
        .store
        .pki_object("sm2-centre-seal")
        .await
        .unwrap()
        .expect("the centre's SM2 seal holder")
        .cert_der;
    let point = openssl::x509::X509::from_der(&holder_cert)
        .unwrap()
        .crl_distribution_points()
        .and_then(|ps| {
            let uri = ps
                .iter()
                .next()?
                .distpoint()?
                .fullname()?
                .iter()
                .next()?
                .uri()?
                .to_owned();
            Some(uri)
        })
        .expect("a CRL distribution point");
    assert!(point.ends_with("/pki/crl/sm2-centre-ca.crl"), "{point}");
    let crl = app.get("/pki/crl/sm2-centre-ca.crl", None).await;
    assert_eq!(crl.status, StatusCode::OK);
    let parsed = openssl::x509::X509Crl::from_der(&crl.bytes).unwrap();
    let listed: Vec<String> = parsed
        .get_revoked()
        .map(|v| {
            v.iter()
                .map(|x| virtual_window::audit::hex(&x.serial_number().to_bn().unwrap().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        listed.iter().any(|x| holder.ends_with(x.as_str())),
        "{listed:?} {holder}"
    );
    assert!(virtual_window::pki::gm::signed_by(
        &crl.bytes,
        app.services.pki.gm.centre_ca.key.public_key_der()
    ));
    let v = verify_ofd(&app, ofd.bytes.clone()).await;
    assert_eq!(
        v.body["verdict"], "valid",
        "revoked after sealing: {}",
        v.text
    );
    let after = virtual_window::services::gm::centre_seal(&app.services)
        .await
        .unwrap();
    assert_ne!(after.signer.cert_der, next.signer.cert_der);
    assert_ne!(after.seal.es_id, next.seal.es_id);
    // A package sealed after the revocation with the revoked certificate (and the revoked seal)
    // is invalid: certificate_revoked, seal_revoked.
    let files: std::collections::BTreeMap<String, Vec<u8>> =
        virtual_window::ofd::package::Package::open(&ofd.bytes)
            .unwrap()
            .into_files()
            .into_iter()
            .filter(|(n, _)| !n.starts_with("Doc_0/Signs"))
            .collect();
    // The first seal (revoked above) and its holder's certificate (revoked now).
    let first_seal = app
        .services
        .store
        .es_seal(&centre_seal)
        .await
        .unwrap()
        .unwrap()
        .seal_der;
    let late = virtual_window::ofd::write::seal_package(
        virtual_window::ofd::write::Unsealed {
            files,
            stamp_box: (30.0, 200.0, 40.0, 40.0),
        },
        &virtual_window::ofd::write::Stamp {
            seal: &first_seal,
            signer: &next.signer,
            chain: vec![app.services.pki.gm.centre_ca.cert_der.clone()],
            crls: vec![],
            tsa: None,
        },
        time::OffsetDateTime::now_utc() + time::Duration::seconds(1),
    )
    .unwrap();
    let v = verify_ofd(&app, late).await;
    assert_eq!(v.body["verdict"], "invalid", "{}", v.text);
    let codes = v.body["signatures"][0]["problems"].to_string();
    assert!(
        codes.contains("certificate_revoked") && codes.contains("seal_revoked"),
        "{codes}"
    );

    // Its public page (the QR code's link) shows it valid, without personal data.
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let r = app.get(&format!("/c/{digits}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "valid");
    assert_eq!(r.body["unit_number"], unit.unit_number.as_str());
    assert!(!r.text.contains("44190019900101001X") && !r.text.contains("张伟"));
    assert_eq!(
        app.get("/c/2026000", None).await.status,
        StatusCode::NOT_FOUND
    );
}

/// `POST /api/v1/verify` with an OFD package (declared `application/ofd`), as anyone.
async fn verify_ofd(app: &TestApp, bytes: Vec<u8>) -> crate::helpers::Reply {
    app.send(
        axum::http::Request::builder()
            .method("POST")
            .uri("/api/v1/verify")
            .header("content-type", "application/ofd")
            .body(axum::body::Body::from(bytes))
            .unwrap(),
    )
    .await
}

/// One person holding two duties still cannot take two steps of one case.
async fn four_eyes_hold_against_a_person_with_two_duties(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let admin = app.token("admin").await;
    let centre = app
        .services
        .store
        .user_by_username("rc-first")
        .await
        .unwrap()
        .unwrap()
        .organisation_id;
    let r = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": "rc-both", "display_name": "钱多", "password": virtual_window::config::DEV_DEMO_PASSWORD,
                   "role": "reviewer", "duties": ["first_reviewer", "second_reviewer"], "organisation_id": centre}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // A case in first review, prepared directly in the store (the way there is tested above).
    let now = time::OffsetDateTime::now_utc();
    let unit = units(&app)
        .await
        .into_iter()
        .find(|u| u.status.as_str() == "available" && !u.seized)
        .unwrap();
    let drafter = app.token("yj-drafter").await;
    let c = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(&unit))
        .await;
    let both = app.user_id("rc-both").await;
    let reg = virtual_window::store::Registration {
        id: uuid::Uuid::new_v4().to_string(),
        contract_id: c.body["id"].as_str().unwrap().to_owned(),
        applicant_id: app.user_id("buyer-zhang").await,
        status: virtual_window::domain::lifecycle::RegistrationStatus::Accepted,
        acceptance_no: Some("莞受2026TEST0001".into()),
        acceptor_id: Some(app.user_id("rc-intake").await),
        first_reviewer_id: None,
        second_reviewer_id: None,
        recorder_id: None,
        certificate_no: None,
        certificate_sha256: None,
        certificate_ofd_sha256: None,
        certificate_status: None,
        materials: "[]".into(),
        opinions: "[]".into(),
        created_at: now,
        updated_at: now,
        hold: None,
        hold_reasons: None,
        entry_status: None,
        lapses_on: None,
    };
    assert!(
        app.services
            .store
            .insert_registration(&reg, None)
            .await
            .unwrap()
    );
    let t = app.token("rc-both").await;
    let opinion = json!({"opinion": "同意。"});
    let r = app
        .post(
            &format!("/api/v1/registrations/{}/first-review", reg.id),
            Some(&t),
            opinion.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/registrations/{}/second-review", reg.id),
            Some(&t),
            opinion,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "four_eyes"));
    // And the statement itself refuses it, whatever the service layer checked.
    use virtual_window::domain::lifecycle::{RegistrationState, RegistrationStatus};
    let state = |status| RegistrationState {
        status,
        hold: None,
        entry: None,
    };
    let mut m = virtual_window::store::RegistrationMove::new(
        &reg.id,
        state(RegistrationStatus::FirstReviewed),
        state(RegistrationStatus::SecondReviewed),
        "[]",
        now,
    );
    m.step = Some((virtual_window::store::RegistrationStep::SecondReview, &both));
    let refused = app.services.store.move_registration(&m).await.unwrap();
    assert!(!refused);
}

/// A retried POST with the same Idempotency-Key returns the first result and changes nothing
/// twice; the key cannot be reused for another request; keys are per caller.
async fn retried_requests_with_an_idempotency_key_act_once(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let free: Vec<_> = units(&app)
        .await
        .into_iter()
        .filter(|u| u.status.as_str() == "available" && !u.seized)
        .take(2)
        .collect();
    let drafter = app.token("yj-drafter").await;
    let post = |body: Value, key: &'static str, token: String| {
        let app = &app;
        async move {
            app.send(
                axum::http::Request::builder()
                    .method("POST")
                    .uri("/api/v1/contracts")
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {token}"))
                    .header("idempotency-key", key)
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
        }
    };
    let before = app.audit_len().await;
    let first = post(draft(&free[0].id), "draft-2026-0001", drafter.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = post(draft(&free[0].id), "draft-2026-0001", drafter.clone()).await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "the first result, not a 409"
    );
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers.get("idempotent-replay").unwrap(), "true");
    assert_eq!(app.audit_len().await, before + 1, "acted once");
    assert_eq!(
        app.services
            .store
            .live_contracts_of_unit(&free[0].id)
            .await
            .unwrap()
            .len(),
        1
    );
    // The same key for another request is refused.
    let other = post(draft(&free[1].id), "draft-2026-0001", drafter.clone()).await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    assert_eq!(public_status(&app, &free[1].id).await, "available");
    // The same person with a fresh token (after a refresh) still gets the first result...
    let second_login = app.token("yj-drafter").await;
    let again = post(draft(&free[0].id), "draft-2026-0001", second_login).await;
    assert_eq!(again.body["id"], first.body["id"]);
    // ...while another caller's key space is its own: its request runs.
    let admin = app.token("admin").await;
    let theirs = post(draft(&free[0].id), "draft-2026-0001", admin).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    assert!(theirs.headers.get("idempotent-replay").is_none());
    // Without a key nothing is remembered.
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft(&free[0].id))
        .await;
    assert_eq!(r.code(), "unit_not_available");
}

/// Unsigned drafts expire and release their units, exactly once, with the job running on two
/// instances at the same moment.
async fn unsigned_drafts_expire_exactly_once(db: Db) {
    let Some(app) = crate::helpers::spawn_app_with(db, |c| c.workflow.draft_expiry_secs = 0).await
    else {
        return;
    };
    let mut instances = vec![app.services.clone()];
    if db == Db::Postgres {
        let mut cfg = test_config(&app.db);
        cfg.workflow.draft_expiry_secs = 0;
        instances.push(
            virtual_window::server::prepare(Arc::new(cfg))
                .await
                .unwrap(),
        );
    } else {
        instances.push(app.services.clone());
    }
    let drafter = app.token("yj-drafter").await;
    let free: Vec<_> = units(&app)
        .await
        .into_iter()
        .filter(|u| u.status.as_str() == "available" && !u.seized)
        .take(3)
        .collect();
    for u in &free {
        let r = app
            .post("/api/v1/contracts", Some(&drafter), draft(&u.id))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(public_status(&app, &u.id).await, "locked");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let now = time::OffsetDateTime::now_utc();
    let (a, b) = tokio::join!(
        virtual_window::services::scheduler::run_once(&instances[0], now),
        virtual_window::services::scheduler::run_once(&instances[1], now)
    );
    assert_eq!(
        a.unwrap().expired_contracts + b.unwrap().expired_contracts,
        3
    );
    for u in &free {
        assert_eq!(public_status(&app, &u.id).await, "available");
        assert!(
            app.services
                .store
                .live_contracts_of_unit(&u.id)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let expiries = app
        .services
        .store
        .chained_audit_events(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "contract.expire")
        .count();
    assert_eq!(expiries, 3, "each expiry recorded once");
    let again = virtual_window::services::scheduler::run_once(
        &instances[0],
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(again.expired_contracts, 0);
}

/// A buyer asks for changes before everyone signed: back to draft, a new version, signatures
/// void. A filed contract is cancelled only with the other party's verified consent and a
/// reviewer's approval; the unit is released.
async fn changes_and_cancellation_need_the_other_party(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let free: Vec<_> = units(&app)
        .await
        .into_iter()
        .filter(|u| u.status.as_str() == "available" && !u.seized)
        .take(1)
        .collect();
    let unit = &free[0];
    let drafter = app.token("yj-drafter").await;
    let confirmer = app.token("yj-confirmer").await;
    let r = app
        .post("/api/v1/contracts", Some(&drafter), draft_for(unit))
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        act(&app, "buyer-zhang", &id, "sign_contract", "sign")
            .await
            .status,
        StatusCode::OK
    );
    // The co-buyer asks for a change instead of signing.
    let li = app.token("buyer-li").await;
    let wang = app.token("buyer-wang").await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/recall"),
            Some(&wang),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not a party");
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/recall"),
            Some(&li),
            json!({"reason": "交付日期需提前。"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["status"].as_str(), r.body["version"].as_i64()),
        (Some("draft"), Some(2))
    );

    // Through to filing, then a cancellation request by the developer.
    to_filing_review(&app, &id).await;
    let reviewer = app.token("rc-first").await;
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/filing/approve"),
            Some(&reviewer),
            json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "filed");
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/cancellation"),
            Some(&confirmer),
            json!({"reason": "双方协商一致解除合同。"}),
        )
        .await;
    assert_eq!(r.body["status"], "cancel_requested", "{}", r.text);
    // Without the buyers' consent the reviewer cannot approve.
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/cancellation/approve"),
            Some(&reviewer),
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "consent_missing")
    );
    // The requesting side cannot consent to itself.
    let r = act(
        &app,
        "yj-confirmer",
        &id,
        "seal_contract",
        "cancellation/consent",
    )
    .await;
    assert_eq!(r.code(), "same_party");
    let r = act(
        &app,
        "buyer-li",
        &id,
        "sign_contract",
        "cancellation/consent",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/contracts/{id}/cancellation/approve"),
            Some(&reviewer),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(public_status(&app, &unit.id).await, "available");
    assert!(
        app.services
            .store
            .live_contracts_of_unit(&unit.id)
            .await
            .unwrap()
            .is_empty()
    );
}

crate::on_both_databases!(
    uploads_are_limited_per_account,
    rare_characters_and_document_dates,
    signing_needs_the_contract_read,
    first_seals_at_once_issue_one_organisation_seal,
    buyers_are_invited_by_code,
    registration_side_exits_and_the_entry,
    the_reviewers_checks_run_on_submission,
    changes_and_cancellation_need_the_other_party,
    unsigned_drafts_expire_exactly_once,
    retried_requests_with_an_idempotency_key_act_once,
    drafting_takes_the_unit_and_withdrawing_releases_it,
    concurrent_drafts_sell_each_unit_once,
    confirmed_then_signed_by_every_buyer,
    a_returned_filing_is_corrected_and_refiled,
    signed_revisions_are_stored_as_increments,
    registration_with_four_eyes_to_the_certificate,
    four_eyes_hold_against_a_person_with_two_duties
);
