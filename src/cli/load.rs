//! `virtual-window load`: an opening day (开盘) against the real HTTP API of running instances.
//! Scripted users, each with their own account and state: buyers sign in with their phone,
//! register their identity, choose a unit and race for it (the drafter drafts for them; the
//! loser of a race gets a clean 409 and chooses another), a confirmer confirms, the buyer reads
//! every chapter, checks their face, takes a code and signs, the confirmer checks theirs and
//! seals, a reviewer files. Beside it, public verification uploads. Requests that fail because an
//! instance or the database went away are retried with the same `Idempotency-Key`.
//!
//! It reports throughput, latency percentiles per step and errors by code, and — given the
//! database — checks the outcome: one live contract per unit, every acknowledged change present,
//! the audit chain intact.

use crate::config::DEV_DEMO_PASSWORD;
use crate::domain::identity::VerificationStatus;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Options {
    /// Where the service is (a load balancer, or one instance).
    pub target: String,
    pub buyers: usize,
    pub units: usize,
    /// Buyers acting at once.
    pub concurrency: usize,
    /// Buyers arrive over this many seconds.
    pub arrival_secs: u64,
    /// Confirmers (each seals one contract at a time: a new face check supersedes the last).
    pub confirmers: usize,
    /// A person's mean pause before each action (zero: none — the stress test, where the
    /// service is saturated and latency is set by `concurrency`).
    pub think: Duration,
    /// The time a buyer spends reading, over which the chapters are opened.
    pub reading: Duration,
    /// Public verification uploads during the run.
    pub verifications: usize,
    /// The database, for the outcome checks.
    pub database_url: Option<String>,
    /// JSON lines `{"fault": …, "start_ms": …, "end_ms": …}` written by whoever injected faults;
    /// 5xx answers inside a fault's window (plus a grace) are the fault's, not the service's.
    pub fault_log: Option<PathBuf>,
    /// Files holding the pids of the instances, sampled for resident memory.
    pub pid_files: Vec<PathBuf>,
    pub json: Option<PathBuf>,
    /// Every timed request as a CSV line (step, start in ms since the epoch, duration in ms),
    /// for finding when the slow ones happened.
    pub samples: Option<PathBuf>,
    /// Instead of the opening day: this many password sign-ins at once (memory and latency of
    /// a burst).
    pub password_burst: usize,
}

/// One timed request outcome.
#[derive(Default)]
struct Stats {
    /// Per step: (started, answered) in ms since the epoch, and the time taken in ms.
    steps: BTreeMap<&'static str, Vec<(i64, i64, f64)>>,
    /// Signatures that needed a second code (the first spent by an attempt a fault cut off).
    new_codes_after_faults: usize,
    errors: BTreeMap<String, u64>,
    /// When 5xx answers (and transport failures) were seen, ms since the epoch.
    server_errors: Vec<(i64, String)>,
    acks: Vec<Ack>,
    contracts_won: usize,
    sold_out: usize,
}

#[derive(Clone, Debug)]
enum Ack {
    Drafted { contract: String, unit: String },
    Signed { contract: String },
    Sealed { contract: String },
    Filed { contract: String },
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

struct Api {
    http: reqwest::Client,
    base: String,
    stats: Mutex<Stats>,
    think: Duration,
}

/// A request's final answer.
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl Api {
    /// A person's pause before an action: between half and one and a half times the mean, so
    /// people who arrived together drift apart as they would.
    async fn pause(&self) {
        if self.think.is_zero() {
            return;
        }
        let mut r = [0u8; 2];
        let _ = openssl::rand::rand_bytes(&mut r);
        let f = 0.5 + f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX);
        tokio::time::sleep(self.think.mul_f64(f)).await;
    }

    /// One logical request: retried (same idempotency key) while an instance or the database is
    /// away; timed from the first attempt to the answer, under `step`.
    async fn call(
        &self,
        step: &'static str,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Body>,
    ) -> Answer {
        let key = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut attempt = 0u32;
        let answer = loop {
            attempt += 1;
            let mut r = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if method != reqwest::Method::GET {
                r = r.header("idempotency-key", &key);
            }
            match &body {
                Some(Body::Json(v)) => r = r.json(v),
                Some(Body::Raw(ct, bytes)) => {
                    r = r.header("content-type", *ct).body(bytes.clone());
                }
                None => {}
            }
            let res = r.send().await;
            let (status, retry_after, value) = match res {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let retry_after = res
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let value = res.json::<Value>().await.unwrap_or(Value::Null);
                    (status, retry_after, value)
                }
                Err(e) => {
                    let what = if e.is_timeout() {
                        "timeout"
                    } else {
                        "transport"
                    };
                    (0, None, json!({"code": what}))
                }
            };
            if (status >= 500 || status == 0)
                && let Ok(mut s) = self.stats.lock()
            {
                s.server_errors
                    .push((now_ms(), format!("{step} {status} {}", value["code"])));
            }
            // Away (a killed instance, a failover, overload): try again, as a phone app would.
            let retry = matches!(status, 0 | 502 | 503 | 504)
                || (status == 409 && value["code"] == "idempotency_in_progress");
            // A phone app keeps trying for two minutes (a failover, an instance restarting, a
            // claim left by a killed process until its lease ends), then tells its user.
            if retry && started.elapsed() < Duration::from_secs(120) {
                let wait = retry_after
                    .map(|s| Duration::from_secs(s.min(5)))
                    .unwrap_or_else(|| {
                        Duration::from_millis((100 * 2u64.pow(attempt.min(5))).min(3000))
                    });
                tokio::time::sleep(wait).await;
                continue;
            }
            break Answer {
                status,
                body: value,
            };
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let end = now_ms();
        if let Ok(mut s) = self.stats.lock() {
            s.steps
                .entry(step)
                .or_default()
                .push((end - ms as i64, end, ms));
            if !answer.ok() {
                *s.errors
                    .entry(format!("{step} {} {}", answer.status, answer.code()))
                    .or_default() += 1;
            }
        }
        answer
    }

    async fn json(
        &self,
        step: &'static str,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let a = self
            .call(step, method, path, token, body.map(Body::Json))
            .await;
        if !a.ok() {
            bail!("{step} {path}: HTTP {} {}", a.status, a.body);
        }
        Ok(a.body)
    }

    fn ack(&self, a: Ack) {
        if let Ok(mut s) = self.stats.lock() {
            s.acks.push(a);
        }
    }

    async fn password_login(&self, step: &'static str, user: &str) -> anyhow::Result<String> {
        let v = self
            .json(
                step,
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": user, "password": DEV_DEMO_PASSWORD})),
            )
            .await?;
        Ok(v["access_token"].as_str().context("token")?.to_owned())
    }

    /// A face check for `purpose` and a code for the document.
    async fn intent(&self, token: &str, purpose: &str, sha: &str) -> anyhow::Result<Value> {
        // Facing the camera.
        self.pause().await;
        let v = self
            .json(
                "verify",
                reqwest::Method::POST,
                "/api/v1/identity/verifications",
                Some(token),
                Some(json!({"purpose": purpose})),
            )
            .await?;
        let id = v["id"].as_str().context("verification")?.to_owned();
        let mut v = Value::Null;
        for _ in 0..50 {
            v = self
                .json(
                    "verify",
                    reqwest::Method::GET,
                    &format!("/api/v1/identity/verifications/{id}"),
                    Some(token),
                    None,
                )
                .await?;
            if v["status"] != VerificationStatus::Pending.as_str() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if v["status"] != VerificationStatus::Passed.as_str() {
            bail!("face check {}: {v}", v["status"]);
        }
        // Asking for the code.
        self.pause().await;
        let c = self
            .json(
                "code",
                reqwest::Method::POST,
                "/api/v1/identity/codes",
                Some(token),
                Some(json!({"purpose": purpose, "document_sha256": sha})),
            )
            .await?;
        Ok(json!({"code_id": c["code_id"], "code": c["dev_code"]}))
    }
}

impl Api {
    /// The SHA-256 of the contract's current PDF, as its signer reads it before signing.
    async fn current_document(
        &self,
        step: &'static str,
        token: &str,
        contract: &str,
    ) -> anyhow::Result<String> {
        let view = self
            .json(
                step,
                reqwest::Method::GET,
                &format!("/api/v1/contracts/{contract}"),
                Some(token),
                None,
            )
            .await?;
        Ok(view["document_sha256"]
            .as_str()
            .context("document")?
            .to_owned())
    }

    /// A face check, a code and the signing request. When the code was spent by an attempt that
    /// did not finish (its instance killed, its database lost between spending the code and
    /// committing the signature), the service answers `code_used`: as a person would, take a new
    /// code once and sign again.
    async fn sign_with_code(
        &self,
        step: &'static str,
        token: &str,
        purpose: &str,
        sha: &str,
        path: &str,
    ) -> anyhow::Result<Value> {
        for round in 0..2 {
            let intent = self.intent(token, purpose, sha).await?;
            // Typing it in.
            self.pause().await;
            let a = self
                .call(
                    step,
                    reqwest::Method::POST,
                    path,
                    Some(token),
                    Some(Body::Json(
                        json!({"code_id": intent["code_id"], "code": intent["code"]}),
                    )),
                )
                .await;
            if a.ok() {
                return Ok(a.body);
            }
            if round == 0 && a.status == 403 && a.code() == "code_used" {
                if let Ok(mut s) = self.stats.lock() {
                    s.new_codes_after_faults += 1;
                }
                continue;
            }
            bail!("{step} {path}: HTTP {} {}", a.status, a.body);
        }
        bail!("{step} {path}: no signature after a new code")
    }
}

enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

fn id_number(index: usize, base: time::Date, sequence: usize) -> anyhow::Result<String> {
    let born = base + time::Duration::days(index as i64);
    let first17 = format!(
        "441900{:04}{:02}{:02}{:03}",
        born.year(),
        born.month() as u8,
        born.day(),
        sequence
    );
    let check = crate::domain::identity::id_check_character(&first17).context("ID number")?;
    Ok(format!("{first17}{check}"))
}

fn name_of(i: usize) -> String {
    const SURNAMES: [char; 12] = [
        '王', '李', '张', '刘', '陈', '杨', '黄', '赵', '吴', '周', '徐', '孙',
    ];
    const GIVEN: [char; 16] = [
        '伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋', '勇', '艳', '杰', '娟', '涛',
        '明',
    ];
    [
        SURNAMES[i % 12],
        GIVEN[(i / 12) % 16],
        GIVEN[(i / 192 + i) % 16],
    ]
    .iter()
    .collect()
}

/// Everything the buyers race for and the staff who serve them.
struct Stage {
    /// This run's number: its buyers' phones and identities are its own.
    run: usize,
    project: String,
    drafter: String,
    reviewer: String,
    /// Confirmers' tokens, each behind a lock (one seal at a time per person).
    confirmers: Vec<tokio::sync::Mutex<String>>,
    /// How long each buyer reads before signing.
    reading: Duration,
}

async fn stage(api: &Api, opts: &Options) -> anyhow::Result<Stage> {
    let admin = api.password_login("setup", "admin").await?;
    let drafter = api.password_login("setup", "yj-drafter").await?;
    let reviewer = api.password_login("setup", "rc-first").await?;
    let me = api
        .json(
            "setup",
            reqwest::Method::GET,
            "/api/v1/me",
            Some(&drafter),
            None,
        )
        .await?;
    // A new development for the day, released by its permit.
    let mut rnd = [0u8; 3];
    openssl::rand::rand_bytes(&mut rnd)?;
    let tag = u32::from_be_bytes([0, rnd[0], rnd[1], rnd[2]]) % 100_000;
    let parcel = format!("441900104002GB{tag:05}");
    let project = api
        .json(
            "setup",
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(&drafter),
            Some(json!({
                "name": format!("开盘测试花园{tag}"),
                "town": "松山湖",
                "parcel_code": parcel,
                "land_certificate_no": format!("粤(2025)东莞市不动产权第01{tag:05}号"),
                "land_use": "城镇住宅用地",
                "land_term_end": "2095-06-30",
                "planning_permit_no": format!("建字第4419002025{tag:05}号"),
                "construction_permit_no": format!("4419002025090{tag:05}"),
            })),
        )
        .await?;
    let pid = project["id"].as_str().context("project")?.to_owned();
    let per_building = 32 * 8;
    let buildings = opts.units.div_ceil(per_building).max(1);
    let mut left = opts.units;
    for b in 1..=buildings {
        let mut csv = String::from(
            "room_no,floor,unit_number,use_type,gross_area,internal_area,shared_area,storey_height_mm,filed_price\n",
        );
        'floors: for floor in 1..=32 {
            for pos in 1..=8 {
                if left == 0 {
                    break 'floors;
                }
                left -= 1;
                csv.push_str(&format!(
                    "{floor:02}{pos:02},{floor},{parcel}F{b:04}{:04},住宅,89.36,71.20,18.16,3000,{}\n",
                    floor * 100 + pos,
                    28000 + floor * 100
                ));
            }
        }
        api.call(
            "setup",
            reqwest::Method::POST,
            &format!("/api/v1/projects/{pid}/buildings?number={b}&floors_above=32&floors_below=0"),
            Some(&drafter),
            Some(Body::Raw("text/csv; charset=utf-8", csv.into_bytes())),
        )
        .await;
    }
    api.json(
        "setup",
        reqwest::Method::POST,
        &format!("/api/v1/projects/{pid}/permits"),
        Some(&drafter),
        Some(json!({
            "number": format!("莞房预证字第2026{tag:05}号"),
            "authority": "东莞市住房和城乡建设局",
            "issued_on": "2026-10-08",
            "escrow_bank": "中国建设银行东莞分行",
            "escrow_account_name": "东莞市云境置业有限公司开盘测试花园预售资金监管专户",
            "escrow_account_no": format!("440501770008{tag:08}"),
            "buildings": (1..=buildings as i32).collect::<Vec<_>>(),
        })),
    )
    .await?;
    // Confirmers, with the identities their face checks need (registered by the operator).
    let mut confirmers = Vec::new();
    for k in 0..opts.confirmers.max(1) {
        let user = format!("load-confirmer-{tag}-{k}");
        let created = api
            .json(
                "setup",
                reqwest::Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(json!({"username": user, "display_name": "林确认", "password": DEV_DEMO_PASSWORD, "role": "developer", "duties": ["confirmer"], "organisation_id": me["organisation_id"]})),
            )
            .await?;
        let id = created["id"].as_str().context("user")?;
        api.call(
            "setup",
            reqwest::Method::PUT,
            &format!("/api/v1/users/{id}/identity"),
            Some(&admin),
            Some(Body::Json(json!({"real_name": "林确认", "id_number": id_number(k, time::macros::date!(1970 - 01 - 01), 300)?}))),
        )
        .await;
        confirmers.push(tokio::sync::Mutex::new(
            api.password_login("setup", &user).await?,
        ));
    }
    Ok(Stage {
        run: tag as usize,
        project: pid,
        drafter,
        reviewer,
        confirmers,
        reading: opts.reading,
    })
}

/// The units still for sale.
async fn for_sale(api: &Api, project: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let units = api
        .json(
            "choose",
            reqwest::Method::GET,
            &format!("/api/v1/projects/{project}/units"),
            None,
            None,
        )
        .await?;
    Ok(units
        .as_array()
        .context("units")?
        .iter()
        .filter(|u| u["for_sale"] == true)
        .map(|u| {
            (
                u["id"].as_str().unwrap_or("").to_owned(),
                u["filed_price"].as_str().unwrap_or("").to_owned(),
                u["gross_area"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect())
}

/// One buyer's opening day; `Ok(true)` when they bought a unit.
async fn buyer(api: &Api, st: &Stage, i: usize) -> anyhow::Result<bool> {
    let phone = format!("1{}{:09}", 3 + st.run % 7, (st.run % 1000) * 100_000 + i);
    let c = api
        .json(
            "sign_in",
            reqwest::Method::POST,
            "/api/v1/auth/phone/code",
            None,
            Some(json!({"phone": phone})),
        )
        .await?;
    // Reading the text message and typing the code.
    api.pause().await;
    let t = api
        .json(
            "sign_in",
            reqwest::Method::POST,
            "/api/v1/auth/phone/login",
            None,
            Some(json!({"challenge_id": c["challenge_id"], "code": c["dev_code"]})),
        )
        .await?;
    let token = t["access_token"].as_str().context("token")?.to_owned();
    let name = name_of(i);
    let id = id_number(
        st.run % 3000 + i,
        time::macros::date!(1960 - 01 - 01),
        100 + i % 700,
    )?;
    // Typing their name and ID number.
    api.pause().await;
    api.call(
        "identity",
        reqwest::Method::PUT,
        "/api/v1/me/identity",
        Some(&token),
        Some(Body::Json(json!({"real_name": name, "id_number": id}))),
    )
    .await;
    // Choose a unit and race for it; a lost race is a clean 409: choose again.
    let mut contract = None;
    for _ in 0..6 {
        let units = for_sale(api, &st.project).await?;
        if units.is_empty() {
            break;
        }
        // Choosing, and the drafter typing the contract in.
        api.pause().await;
        let mut pick = [0u8; 4];
        openssl::rand::rand_bytes(&mut pick)?;
        let (unit, price, area) = &units[u32::from_le_bytes(pick) as usize % units.len()];
        let total = crate::domain::Money::parse_yuan(price)
            .ok()
            .zip(crate::domain::Area::parse(area).ok())
            .and_then(|(p, a)| p.times_area(a))
            .context("price")?;
        let draft = json!({
            "unit_id": unit,
            "buyers": [{"name": name, "id_number": id, "share_percent": 100, "phone": phone, "address": "广东省东莞市南城街道鸿福路 100 号"}],
            "co_ownership": "单独所有",
            "unit_price": price,
            "payment": {"mode": "一次性付款", "schedule": [{"item": "全部房价款", "due": "2026-12-31", "amount": total.to_string()}]},
            "delivery_date": "2028-06-30",
            "dispute": "依法向东莞市第三人民法院起诉",
            "property": {"company": "东莞市云境物业服务有限公司", "fee": "3.50"},
            "supplementary": [],
            "seller": {"address": "广东省东莞市松山湖园区科技四路 1 号", "legal_representative": "陈建国", "qualification_no": "粤房开 441900-2024-0088"}
        });
        let a = api
            .call(
                "create_draft",
                reqwest::Method::POST,
                "/api/v1/contracts",
                Some(&st.drafter),
                Some(Body::Json(draft)),
            )
            .await;
        if a.ok() {
            let cid = a.body["id"].as_str().context("contract")?.to_owned();
            api.ack(Ack::Drafted {
                contract: cid.clone(),
                unit: unit.clone(),
            });
            contract = Some(cid);
            break;
        }
        if a.status != 409 {
            bail!("draft: HTTP {} {}", a.status, a.body);
        }
    }
    let Some(cid) = contract else {
        if let Ok(mut s) = api.stats.lock() {
            s.sold_out += 1;
        }
        return Ok(false);
    };
    let confirmer = &st.confirmers[i % st.confirmers.len()];
    {
        let token = confirmer.lock().await;
        // The confirmer checks the draft.
        api.pause().await;
        api.json(
            "confirm",
            reqwest::Method::POST,
            &format!("/api/v1/contracts/{cid}/confirm"),
            Some(&token),
            Some(json!({})),
        )
        .await?;
    }
    // The buyer reads every chapter, checks their face, takes a code and signs.
    let reading = api
        .json(
            "read",
            reqwest::Method::GET,
            &format!("/api/v1/contracts/{cid}/reading"),
            Some(&token),
            None,
        )
        .await?;
    let chapters = reading["chapters"].as_array().context("chapters")?;
    // The chapters opened one after another over the reading time; the signature is asked for
    // once it has passed since the first (the service refuses it earlier).
    let began = Instant::now();
    let per_chapter = st.reading.div_f64(chapters.len().max(1) as f64);
    for (k, ch) in chapters.iter().enumerate() {
        if k > 0 {
            tokio::time::sleep(per_chapter).await;
        }
        api.json(
            "read",
            reqwest::Method::GET,
            &format!("/api/v1/contracts/{cid}/chapters/{}", ch["number"]),
            Some(&token),
            None,
        )
        .await?;
    }
    if !st.reading.is_zero() {
        let due = st.reading + Duration::from_secs(1);
        tokio::time::sleep(due.saturating_sub(began.elapsed())).await;
    }
    let sha = api.current_document("read", &token, &cid).await?;
    api.sign_with_code(
        "sign",
        &token,
        "sign_contract",
        &sha,
        &format!("/api/v1/contracts/{cid}/sign"),
    )
    .await?;
    api.ack(Ack::Signed {
        contract: cid.clone(),
    });
    // The developer's confirmer checks their face and seals; the filing is submitted.
    {
        let ctoken = confirmer.lock().await;
        let sha = api.current_document("seal", &ctoken, &cid).await?;
        api.sign_with_code(
            "seal",
            &ctoken,
            "seal_contract",
            &sha,
            &format!("/api/v1/contracts/{cid}/seal"),
        )
        .await?;
    }
    api.ack(Ack::Sealed {
        contract: cid.clone(),
    });
    // The reviewer opens the filing.
    api.pause().await;
    api.json(
        "file",
        reqwest::Method::POST,
        &format!("/api/v1/contracts/{cid}/filing/approve"),
        Some(&st.reviewer),
        Some(json!({})),
    )
    .await?;
    api.ack(Ack::Filed { contract: cid });
    if let Ok(mut s) = api.stats.lock() {
        s.contracts_won += 1;
    }
    Ok(true)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The resident memory of the instances named by pid files, in MB (largest).
fn rss_mb(pid_files: &[PathBuf]) -> f64 {
    let mut max = 0.0f64;
    for f in pid_files {
        let Some(pid) = std::fs::read_to_string(f).ok().map(|s| s.trim().to_owned()) else {
            continue;
        };
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(line) = status.lines().find(|l| l.starts_with("VmRSS:"))
            && let Some(kb) = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        {
            max = max.max(kb / 1024.0);
        }
    }
    max
}

#[derive(serde::Deserialize)]
struct Fault {
    fault: String,
    start_ms: i64,
    end_ms: i64,
}

pub async fn run(opts: Options) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency.max(8))
        .timeout(Duration::from_secs(30))
        .build()?;
    let api = Arc::new(Api {
        http,
        base: opts.target.trim_end_matches('/').to_owned(),
        stats: Mutex::default(),
        think: opts.think,
    });
    let rss = Arc::new(Mutex::new(0.0f64));
    let sampling = {
        let (rss, files) = (rss.clone(), opts.pid_files.clone());
        tokio::spawn(async move {
            loop {
                let now = rss_mb(&files);
                if let Ok(mut m) = rss.lock() {
                    *m = m.max(now);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let started = Instant::now();
    let mut summary = if opts.password_burst > 0 {
        burst(&api, &opts).await?
    } else {
        opening_day(&api, &opts).await?
    };
    let secs = started.elapsed().as_secs_f64();
    sampling.abort();
    let stats = std::mem::take(&mut *api.stats.lock().map_err(|_| anyhow::anyhow!("stats"))?);
    if let Some(path) = &opts.samples {
        let mut csv = String::from("step,start_ms,ms\n");
        for (step, v) in &stats.steps {
            for (start, _, ms) in v {
                csv.push_str(&format!("{step},{start},{ms:.1}\n"));
            }
        }
        std::fs::write(path, csv)?;
    }
    let faults: Vec<Fault> = match &opts.fault_log {
        Some(f) => std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        None => vec![],
    };
    // A fault's answers: from its start to 15 s after its end (reconnects, retries in flight).
    let grace = 15_000;
    let in_fault = |from: i64, to: i64| {
        faults
            .iter()
            .any(|f| from <= f.end_ms + grace && to >= f.start_ms)
    };
    // `steps`: the requests that neither overlapped a fault's window nor its grace (the
    // service's own latency); `steps_during_faults`: the others, each timed from its first
    // attempt to its answer through every retry.
    // The selling time: from the first buyer's request (after the setup) to the last filing
    // answered. Once the units are gone the remaining buyers only find none, so the run's own
    // length understates the rate a saturated service sells at.
    let first_request = stats
        .steps
        .iter()
        .filter(|(step, _)| **step != "setup")
        .flat_map(|(_, v)| v.iter().map(|x| x.0))
        .min();
    let last_filed = stats
        .steps
        .get("file")
        .and_then(|v| v.iter().map(|x| x.1).max());
    let mut steps = serde_json::Map::new();
    let mut during = serde_json::Map::new();
    let describe = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        json!({"count": v.len(), "p50_ms": round(percentile(&v, 50.0)), "p95_ms": round(percentile(&v, 95.0)), "p99_ms": round(percentile(&v, 99.0)), "max_ms": round(v.last().copied().unwrap_or(0.0))})
    };
    for (step, v) in stats.steps {
        let (hit, clear): (Vec<_>, Vec<_>) = v.into_iter().partition(|(a, b, _)| in_fault(*a, *b));
        steps.insert(
            step.into(),
            describe(clear.into_iter().map(|x| x.2).collect()),
        );
        if !hit.is_empty() {
            during.insert(
                step.into(),
                describe(hit.into_iter().map(|x| x.2).collect()),
            );
        }
    }
    let outside: Vec<&(i64, String)> = stats
        .server_errors
        .iter()
        .filter(|(at, _)| !in_fault(*at, *at))
        .collect();
    let o = summary.as_object_mut().context("summary")?;
    o.insert("seconds".into(), json!(round(secs)));
    o.insert("steps".into(), Value::Object(steps));
    o.insert("steps_during_faults".into(), Value::Object(during));
    o.insert(
        "new_codes_after_faults".into(),
        json!(stats.new_codes_after_faults),
    );
    o.insert("errors".into(), json!(stats.errors));
    o.insert("server_errors".into(), json!(outside.len()));
    o.insert(
        "server_errors_during_faults".into(),
        json!(stats.server_errors.len() - outside.len()),
    );
    o.insert(
        "server_error_samples".into(),
        json!(outside.iter().take(10).map(|(_, s)| s).collect::<Vec<_>>()),
    );
    o.insert(
        "faults".into(),
        json!(faults.iter().map(|f| f.fault.clone()).collect::<Vec<_>>()),
    );
    o.insert(
        "rss_max_mb".into(),
        json!(round(*rss.lock().map_err(|_| anyhow::anyhow!("rss"))?)),
    );
    if opts.password_burst == 0 {
        o.insert("contracts_won".into(), json!(stats.contracts_won));
        o.insert("sold_out_buyers".into(), json!(stats.sold_out));
        o.insert(
            "flows_per_second".into(),
            json!(round(stats.contracts_won as f64 / secs)),
        );
        if let (Some(first), Some(last)) = (first_request, last_filed) {
            let selling = ((last - first) as f64 / 1000.0).max(0.001);
            o.insert("selling_seconds".into(), json!(round(selling)));
            o.insert(
                "flows_per_second_selling".into(),
                json!(round(stats.contracts_won as f64 / selling)),
            );
        }
        if let Some(url) = &opts.database_url {
            let outcome = outcome(url, &stats.acks).await?;
            for (k, v) in outcome {
                o.insert(k, v);
            }
        }
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)?;
    }
    Ok(summary)
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

async fn opening_day(api: &Arc<Api>, opts: &Options) -> anyhow::Result<Value> {
    let st = Arc::new(stage(api, opts).await?);
    let gate = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = Vec::new();
    let failures = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let spacing = Duration::from_secs_f64(opts.arrival_secs as f64 / opts.buyers.max(1) as f64);
    for i in 0..opts.buyers {
        let (api, st, gate, failures) = (api.clone(), st.clone(), gate.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await;
            if let Err(e) = buyer(&api, &st, i).await {
                let key: String = e.to_string().chars().take(120).collect();
                if let Ok(mut f) = failures.lock() {
                    *f.entry(key).or_default() += 1;
                }
            }
        }));
        tokio::time::sleep(spacing).await;
    }
    // Public verification uploads meanwhile: the filed contracts' PDFs as anyone holds them.
    let verifier = {
        let (api, st, n) = (api.clone(), st.clone(), opts.verifications);
        tokio::spawn(async move {
            let mut done = 0;
            while done < n {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let filed: Vec<String> = api
                    .stats
                    .lock()
                    .map(|s| {
                        s.acks
                            .iter()
                            .filter_map(|a| match a {
                                Ack::Filed { contract } => Some(contract.clone()),
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let Some(c) = filed.last() else { continue };
                let pdf = api
                    .http
                    .get(format!("{}/api/v1/contracts/{c}/document", api.base))
                    .bearer_auth(&st.reviewer)
                    .send()
                    .await;
                let Ok(pdf) = pdf else { continue };
                let Ok(bytes) = pdf.bytes().await else {
                    continue;
                };
                api.call(
                    "public_verify",
                    reqwest::Method::POST,
                    "/api/v1/verify",
                    None,
                    Some(Body::Raw("application/pdf", bytes.to_vec())),
                )
                .await;
                done += 1;
            }
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    verifier.abort();
    let failures = failures
        .lock()
        .map_err(|_| anyhow::anyhow!("failures"))?
        .clone();
    Ok(json!({
        "scenario": "opening-day",
        "buyers": opts.buyers,
        "units": opts.units,
        "arrival_secs": opts.arrival_secs,
        "concurrency": opts.concurrency,
        "think_secs": opts.think.as_secs_f64(),
        "reading_secs": opts.reading.as_secs(),
        "database": opts.database_url.as_deref().map(|u| if u.starts_with("postgres") { "postgres" } else { "sqlite" }),
        "flow_failures": failures,
    }))
}

/// `n` password sign-ins at once from distinct accounts (made first, not timed).
async fn burst(api: &Arc<Api>, opts: &Options) -> anyhow::Result<Value> {
    let admin = api.password_login("setup", "admin").await?;
    let mut rnd = [0u8; 3];
    openssl::rand::rand_bytes(&mut rnd)?;
    let tag = u32::from_be_bytes([0, rnd[0], rnd[1], rnd[2]]);
    let users: Vec<String> = (0..opts.password_burst)
        .map(|i| format!("burst-{tag}-{i}"))
        .collect();
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut made = Vec::new();
    for u in &users {
        let (api, admin, u, gate) = (api.clone(), admin.clone(), u.clone(), gate.clone());
        made.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await;
            api.call(
                "setup",
                reqwest::Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(Body::Json(json!({"username": u, "display_name": "开盘买受人", "password": DEV_DEMO_PASSWORD, "role": "buyer"}))),
            )
            .await
        }));
    }
    for m in made {
        m.await?;
    }
    let spacing = Duration::from_secs_f64(opts.arrival_secs as f64 / users.len().max(1) as f64);
    let mut tasks = Vec::new();
    for u in users {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            api.call(
                "password_sign_in",
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                Some(Body::Json(
                    json!({"username": u, "password": DEV_DEMO_PASSWORD}),
                )),
            )
            .await
            .status
        }));
        if !spacing.is_zero() {
            tokio::time::sleep(spacing).await;
        }
    }
    let mut statuses: HashMap<u16, u64> = HashMap::new();
    for t in tasks {
        *statuses.entry(t.await?).or_default() += 1;
    }
    Ok(
        json!({"scenario": "password-burst", "sign_ins": opts.password_burst, "arrival_secs": opts.arrival_secs, "statuses": statuses}),
    )
}

/// The outcome in the database: one live contract per unit, every acknowledged change present,
/// the audit chain intact.
async fn outcome(url: &str, acks: &[Ack]) -> anyhow::Result<Vec<(String, Value)>> {
    use crate::domain::lifecycle::ContractStatus;
    let store = crate::store::open(url, 4).await?;
    let mut per_unit: HashMap<String, usize> = HashMap::new();
    let mut lost = Vec::new();
    for a in acks {
        let (id, ok) = match a {
            Ack::Drafted { contract, unit } => {
                let c = store.contract(contract).await?;
                if let Some(c) = &c
                    && c.live
                {
                    *per_unit.entry(unit.clone()).or_default() += 0;
                }
                (contract, c.is_some())
            }
            Ack::Signed { contract } => {
                let sigs = store.contract_signatures(contract).await?;
                (contract, sigs.iter().any(|s| s.kind == "personal"))
            }
            Ack::Sealed { contract } => {
                let sigs = store.contract_signatures(contract).await?;
                (contract, sigs.iter().any(|s| s.kind == "organisation_seal"))
            }
            Ack::Filed { contract } => {
                let c = store.contract(contract).await?;
                (
                    contract,
                    c.is_some_and(|c| {
                        matches!(
                            c.status,
                            ContractStatus::Filed | ContractStatus::CancelRequested
                        )
                    }),
                )
            }
        };
        if !ok {
            lost.push(json!({"ack": format!("{a:?}"), "contract": id}));
        }
    }
    // Live contracts per unit, over every unit a contract was drafted for.
    let mut double = 0;
    for unit in per_unit.keys() {
        let q = crate::store::ContractQuery {
            scope: crate::store::Scope::All,
            statuses: ContractStatus::ALL
                .iter()
                .copied()
                .filter(|s| s.is_live())
                .collect(),
            filter: crate::store::CaseFilter {
                unit_id: Some(unit.clone()),
                ..Default::default()
            },
            order: Default::default(),
            after: None,
            limit: 10,
        };
        if store.list_contracts(&q).await?.len() > 1 {
            double += 1;
        }
    }
    let chain = crate::audit::verify_chain(store.as_ref()).await?;
    Ok(vec![
        ("double_sales".into(), json!(double)),
        ("acknowledged_lost".into(), json!(lost.len())),
        (
            "acknowledged_lost_samples".into(),
            json!(lost.into_iter().take(10).collect::<Vec<_>>()),
        ),
        (
            "audit_chain".into(),
            json!(match chain {
                crate::audit::ChainCheck::Intact { .. } => "intact".to_owned(),
                crate::audit::ChainCheck::Broken { seq, reason } =>
                    format!("broken at {seq}: {reason}"),
            }),
        ),
    ])
}
