//! `virtual-window demo`: the one-command tour. From an empty embedded database it loads the
//! sample development and runs the whole flow through the HTTP API of an in-process server —
//! two co-buyers sign, the developer seals, a reviewer files, the registration is accepted,
//! reviewed twice and recorded, the certificate issued — then verifies every PDF and the audit
//! chain and writes the PDFs and a summary to the output directory.

use crate::config::{Config, DEV_DEMO_PASSWORD};
use crate::pdf::verify::{Options, Verdict};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

struct Client {
    http: reqwest::Client,
    base: String,
    /// One sign-in per account: the login throttle (5 per account in 15 minutes) would
    /// otherwise stop repeated flows, as it should stop a password-guessing client.
    tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The process's CPU over each request, by method and path pattern, when the timed flows
    /// run one at a time (`--concurrency 1`): with one request in flight, the CPU the process
    /// spends between sending it and reading its answer is that request's (server, client and,
    /// on SQLite, database; background tasks are the small rest).
    costs: Option<std::sync::Mutex<std::collections::BTreeMap<String, (usize, f64)>>>,
}

/// The CPU time of this process, in milliseconds (`CLOCK_PROCESS_CPUTIME_ID`: every thread,
/// nanosecond resolution, where /proc's figures come in 10 ms ticks).
fn process_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

/// The name of the threads the timed flows' HTTP client runs on (a runtime of its own), so that
/// its CPU can be told from the service's.
const CLIENT_THREADS: &str = "vw-demo-client";

/// The CPU time of this process's threads named `name`, in milliseconds (each thread's
/// `/proc/self/task/*/schedstat`, nanoseconds on the CPU).
fn threads_cpu_ms(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e6
}

/// A request's path with its ids replaced (`/api/v1/contracts/{id}/chapters/{n}`).
fn path_pattern(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    path.split('/')
        .map(|seg| {
            if seg.len() > 20 {
                "{id}"
            } else if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()) {
                "{n}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl Client {
    /// Runs one request, its CPU counted under `key` when costs are kept.
    async fn counted<T>(&self, key: impl FnOnce() -> String, f: impl Future<Output = T>) -> T {
        let Some(costs) = &self.costs else {
            return f.await;
        };
        let before = process_cpu_ms();
        let out = f.await;
        let spent = process_cpu_ms() - before;
        if let Ok(mut m) = costs.lock() {
            let e = m.entry(key()).or_default();
            e.0 += 1;
            e.1 += spent;
        }
        out
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let key = || format!("{method} {}", path_pattern(path));
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        self.counted(key, async {
            let res = r.send().await?;
            let status = res.status().as_u16();
            let v = res.json::<Value>().await.unwrap_or(Value::Null);
            Ok((status, v))
        })
        .await
    }

    async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(method, path, token, body).await?;
        if !(200..300).contains(&status) {
            bail!("{path}: HTTP {status}: {v}");
        }
        Ok(v)
    }

    async fn bytes(&self, path: &str, token: &str) -> anyhow::Result<Vec<u8>> {
        let key = || format!("GET {}", path_pattern(path));
        self.counted(key, async {
            let res = self
                .http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?;
            Ok(res.bytes().await?.to_vec())
        })
        .await
    }

    async fn login(&self, user: &str) -> anyhow::Result<String> {
        if let Some(t) = self.tokens.lock().ok().and_then(|m| m.get(user).cloned()) {
            return Ok(t);
        }
        let v = self
            .ok(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": user, "password": DEV_DEMO_PASSWORD})),
            )
            .await?;
        let token = v["access_token"].as_str().context("token")?.to_owned();
        if let Ok(mut m) = self.tokens.lock() {
            m.insert(user.to_owned(), token.clone());
        }
        Ok(token)
    }

    /// Identity check for `purpose`, then a code for the contract's current PDF.
    async fn intent(
        &self,
        token: &str,
        purpose: &str,
        document_sha256: &str,
    ) -> anyhow::Result<Value> {
        let v = self
            .ok(
                reqwest::Method::POST,
                "/api/v1/identity/verifications",
                Some(token),
                Some(json!({"purpose": purpose})),
            )
            .await?;
        let id = v["id"].as_str().context("verification id")?;
        let v = self
            .ok(
                reqwest::Method::GET,
                &format!("/api/v1/identity/verifications/{id}"),
                Some(token),
                None,
            )
            .await?;
        if v["status"] != crate::domain::identity::VerificationStatus::Passed.as_str() {
            bail!("identity check did not pass: {v}");
        }
        let c = self
            .ok(
                reqwest::Method::POST,
                "/api/v1/identity/codes",
                Some(token),
                Some(json!({"purpose": purpose, "document_sha256": document_sha256})),
            )
            .await?;
        Ok(json!({"code_id": c["code_id"], "code": c["dev_code"], "similarity": v["similarity"]}))
    }
}

fn step(n: &mut usize, text: &str) {
    *n += 1;
    println!("{n:>2}. {text}");
}

/// What one complete flow produced.
struct Flow {
    contract_id: String,
    filing_no: Value,
    registration_id: String,
    certificate_no: String,
    certificate_status: Value,
}

/// A buyer for concurrent worker `w`: an account made by the administrator, with a real name
/// and a fictitious ID number (valid check character; the sandbox passes it) set by the buyer.
async fn load_buyer(c: &Client, w: usize, k: usize) -> anyhow::Result<Buyer> {
    const SURNAMES: [char; 8] = ['王', '李', '张', '刘', '陈', '杨', '黄', '赵'];
    const GIVEN: [char; 10] = ['一', '二', '三', '四', '五', '六', '七', '八', '九', '十'];
    let user = format!("load-buyer-{w}-{k}");
    let name: String = [
        SURNAMES[w % 8],
        GIVEN[(w / 8) % 10],
        GIVEN[(w / 80 + k) % 10],
    ]
    .iter()
    .collect();
    // Born 1980-01-01 plus w days; sequence 100 + k (clear of the sandbox's 901–906 triggers).
    let born = time::macros::date!(1980 - 01 - 01) + time::Duration::days(w as i64);
    let first17 = format!(
        "441900{:04}{:02}{:02}{:03}",
        born.year(),
        born.month() as u8,
        born.day(),
        100 + k
    );
    let check = crate::domain::identity::id_check_character(&first17).context("ID number")?;
    let id_number = format!("{first17}{check}");
    let admin = c.login("admin").await?;
    c.ok(
        reqwest::Method::POST,
        "/api/v1/users",
        Some(&admin),
        Some(json!({"username": user, "display_name": name, "password": DEV_DEMO_PASSWORD, "role": "buyer"})),
    )
    .await?;
    let token = c.login(&user).await?;
    c.ok(
        reqwest::Method::PUT,
        "/api/v1/me/identity",
        Some(&token),
        Some(json!({"real_name": name, "id_number": id_number})),
    )
    .await?;
    Ok(Buyer {
        user,
        name,
        id_number,
    })
}

/// Another confirmer of the developer for worker `w` (a person seals one document at a time:
/// a new identity check supersedes the codes of the one before). Staff identities are
/// registered by the administrator at onboarding.
async fn load_confirmer(c: &Client, w: usize) -> anyhow::Result<String> {
    let user = format!("load-confirmer-{w}");
    let drafter = c.login("yj-drafter").await?;
    let me = c
        .ok(reqwest::Method::GET, "/api/v1/me", Some(&drafter), None)
        .await?;
    let admin = c.login("admin").await?;
    let created = c
        .ok(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": user, "display_name": "林确认", "password": DEV_DEMO_PASSWORD, "role": "developer", "duties": ["confirmer"], "organisation_id": me["organisation_id"]})),
        )
        .await?;
    let born = time::macros::date!(1975 - 01 - 01) + time::Duration::days(w as i64);
    let first17 = format!(
        "441900{:04}{:02}{:02}{:03}",
        born.year(),
        born.month() as u8,
        born.day(),
        200
    );
    let check = crate::domain::identity::id_check_character(&first17).context("ID number")?;
    let id = created["id"].as_str().context("user id")?;
    c.ok(
        reqwest::Method::PUT,
        &format!("/api/v1/users/{id}/identity"),
        Some(&admin),
        Some(json!({"real_name": "林确认", "id_number": format!("{first17}{check}")})),
    )
    .await?;
    Ok(user)
}

/// One complete flow on `unit`: draft, confirm, two buyers sign, seal, file, apply, four review
/// steps, certificate. `verbose` tells the story; `out` receives the PDFs.
/// A buyer account of a flow: the username, the real name and the ID number.
#[derive(Clone)]
struct Buyer {
    user: String,
    name: String,
    id_number: String,
}

fn demo_buyers() -> [Buyer; 2] {
    [
        Buyer {
            user: "buyer-zhang".into(),
            name: "张伟".into(),
            id_number: "44190019900101001X".into(),
        },
        Buyer {
            user: "buyer-li".into(),
            name: "李娜".into(),
            id_number: "441900198506150021".into(),
        },
    ]
}

async fn flow(
    c: &Client,
    unit: &crate::store::Unit,
    buyers: &[Buyer; 2],
    confirmer: &str,
    verbose: bool,
    out: Option<&Path>,
) -> anyhow::Result<Flow> {
    let mut n = 0usize;
    let mut say = |text: &str| {
        if verbose {
            step(&mut n, text);
        }
    };
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        if let Some(dir) = out {
            std::fs::write(dir.join(name), bytes)?;
        }
        Ok(())
    };
    say(&format!(
        "选择可售房屋 {}（不动产单元号 {}）",
        unit.room_no, unit.unit_number
    ));
    let drafter = c.login("yj-drafter").await?;
    let price = crate::domain::Money(unit.filed_price_fen);
    let total = price
        .times_area(crate::domain::Area(unit.gross_area))
        .context("price")?;
    let draft = json!({
        "unit_id": unit.id,
        "buyers": [
            {"name": buyers[0].name, "id_number": buyers[0].id_number, "share_percent": 50, "phone": "13800000001", "address": "广东省东莞市南城街道鸿福路 100 号"},
            {"name": buyers[1].name, "id_number": buyers[1].id_number, "share_percent": 50, "phone": "13800000002", "address": "广东省东莞市南城街道鸿福路 100 号"}
        ],
        "co_ownership": "按份共有",
        "unit_price": price.to_string(),
        "payment": {"mode": "一次性付款", "schedule": [{"item": "全部房价款", "due": "2026-12-31", "amount": total.to_string()}]},
        "delivery_date": "2028-06-30",
        "dispute": "依法向东莞市第三人民法院起诉",
        "property": {"company": "东莞市云境物业服务有限公司", "fee": "3.50"},
        "supplementary": ["本补充协议与合同正文不一致的，以合同正文为准。"],
        "seller": {"address": "广东省东莞市松山湖园区科技四路 1 号", "legal_representative": "陈建国", "qualification_no": "粤房开 441900-2024-0088"}
    });
    let contract = c
        .ok(
            reqwest::Method::POST,
            "/api/v1/contracts",
            Some(&drafter),
            Some(draft),
        )
        .await?;
    let id = contract["id"].as_str().context("contract id")?.to_owned();
    say(&format!(
        "起草人陈晓明起草合同 {}，房屋锁定（单价 {} 元/㎡，总价 {} 元）",
        contract["contract_no"].as_str().unwrap_or(""),
        price,
        total
    ));

    let confirmer = c.login(confirmer).await?;
    let v = c
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/contracts/{id}/confirm"),
            Some(&confirmer),
            None,
        )
        .await?;
    let confirmed = c
        .bytes(&format!("/api/v1/contracts/{id}/document"), &confirmer)
        .await?;
    write("contract-confirmed.pdf", &confirmed)?;
    say(&format!(
        "确认人林静确认合同，生成 PDF（SHA-256 {}…）",
        &v["document_sha256"].as_str().unwrap_or("")[..16]
    ));

    for b in buyers {
        let (user, name) = (b.user.as_str(), b.name.as_str());
        let t = c.login(user).await?;
        let current = c
            .ok(
                reqwest::Method::GET,
                &format!("/api/v1/contracts/{id}"),
                Some(&t),
                None,
            )
            .await?;
        let sha = current["document_sha256"]
            .as_str()
            .context("document")?
            .to_owned();
        // The buyer opens every chapter of the exact version before signing (the service
        // refuses a signature before that).
        let reading = c
            .ok(
                reqwest::Method::GET,
                &format!("/api/v1/contracts/{id}/reading"),
                Some(&t),
                None,
            )
            .await?;
        for ch in reading["chapters"].as_array().context("chapters")? {
            c.ok(
                reqwest::Method::GET,
                &format!("/api/v1/contracts/{id}/chapters/{}", ch["number"]),
                Some(&t),
                None,
            )
            .await?;
        }
        let intent = c.intent(&t, "sign_contract", &sha).await?;
        let v = c
            .ok(
                reqwest::Method::POST,
                &format!("/api/v1/contracts/{id}/sign"),
                Some(&t),
                Some(json!({"code_id": intent["code_id"], "code": intent["code"]})),
            )
            .await?;
        say(&format!(
            "买受人{name}完成实名与人脸核验（相似度 {}），以一次性验证码确认后签署 → {}",
            intent["similarity"],
            v["status"].as_str().unwrap_or("")
        ));
    }

    let current = c
        .ok(
            reqwest::Method::GET,
            &format!("/api/v1/contracts/{id}"),
            Some(&confirmer),
            None,
        )
        .await?;
    let sha = current["document_sha256"]
        .as_str()
        .context("document")?
        .to_owned();
    let intent = c.intent(&confirmer, "seal_contract", &sha).await?;
    let v = c
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/contracts/{id}/seal"),
            Some(&confirmer),
            Some(json!({"code_id": intent["code_id"], "code": intent["code"]})),
        )
        .await?;
    say(&format!(
        "出卖人确认人核验身份后加盖合同专用章，自动提交备案 → {}",
        v["status"].as_str().unwrap_or("")
    ));

    let reviewer = c.login("rc-first").await?;
    let v = c
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/contracts/{id}/filing/approve"),
            Some(&reviewer),
            None,
        )
        .await?;
    let filed = c
        .bytes(&format!("/api/v1/contracts/{id}/document"), &reviewer)
        .await?;
    write("contract-filed.pdf", &filed)?;
    say(&format!(
        "审核员赵敏核验全部签章后备案，备案号 {}，加盖不动产登记专用章并加入长期验证数据与文档时间戳",
        v["filing_no"].as_str().unwrap_or("")
    ));

    let zhang = c.login(&buyers[0].user).await?;
    let intent = c
        .intent(
            &zhang,
            "apply_registration",
            v["document_sha256"].as_str().context("document")?,
        )
        .await?;
    let reg = c
        .ok(
            reqwest::Method::POST,
            "/api/v1/registrations",
            Some(&zhang),
            Some(json!({"contract_id": id, "code_id": intent["code_id"], "code": intent["code"]})),
        )
        .await?;
    let reg_id = reg["id"].as_str().context("registration")?.to_owned();
    say("买受人张伟申请预告登记（已备案的合同从材料复用库引用，无需再次提交）");
    let mut last = Value::Null;
    for (user, action, who) in [
        ("rc-intake", "accept", "受理人孙丽受理"),
        ("rc-first", "first-review", "初审人赵敏初审"),
        ("rc-second", "second-review", "复审人周强复审"),
        ("rc-recorder", "record", "登簿人吴磊登簿并出具电子证明"),
    ] {
        let t = c.login(user).await?;
        last = c
            .ok(
                reqwest::Method::POST,
                &format!("/api/v1/registrations/{reg_id}/{action}"),
                Some(&t),
                Some(json!({"opinion": "材料齐全，符合登记条件。"})),
            )
            .await?;
        say(&format!(
            "{who} → {}",
            last["status"].as_str().unwrap_or("")
        ));
    }
    let certificate = c
        .bytes(
            &format!("/api/v1/registrations/{reg_id}/certificate"),
            &zhang,
        )
        .await?;
    write("certificate.pdf", &certificate)?;
    // The same certificate as an OFD package under the centre's GB/T 38540 seal (SM2/SM3).
    let ofd = c
        .bytes(
            &format!("/api/v1/registrations/{reg_id}/certificate?format=ofd"),
            &zhang,
        )
        .await?;
    write("certificate.ofd", &ofd)?;
    let number = last["certificate_no"].as_str().unwrap_or("").to_owned();
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let public = c
        .ok(reqwest::Method::GET, &format!("/c/{digits}"), None, None)
        .await?;
    say(&format!(
        "电子不动产登记证明 {number}，二维码公开页显示状态：{}",
        public["status"].as_str().unwrap_or("")
    ));

    Ok(Flow {
        contract_id: id,
        filing_no: v["filing_no"].clone(),
        registration_id: reg_id,
        certificate_no: number,
        certificate_status: public["status"].clone(),
    })
}

/// `flows` complete flows in all (the first one told and verified, the others timed one after
/// the other: they share the demo's buyers, whose verifications and codes are one at a time by
/// design); `database_url` to run on PostgreSQL instead of the embedded SQLite.
pub async fn run(
    out: &Path,
    flows: usize,
    concurrency: usize,
    database_url: Option<crate::config::Secret>,
) -> anyhow::Result<()> {
    let data = out.join("demo-data");
    if data.exists() {
        std::fs::remove_dir_all(&data).context("clearing the previous demo data")?;
    }
    std::fs::create_dir_all(&data)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut cfg = Config {
        data_dir: data.clone(),
        public_url: Some(format!("http://{addr}")),
        auto_seed: false,
        database_url,
        ..Config::default()
    };
    // The same two demo buyers sign every timed flow: the per-person hourly code limit, right
    // for people, is lifted for this in-process measurement only.
    if flows > 1 {
        cfg.identity.codes_per_hour = i64::MAX;
    }
    // The buyers open every chapter before signing, as the service requires; the minimum
    // reading time, right for people, would only make the tour wait.
    cfg.web.min_reading_secs = 0;
    let services = crate::server::prepare(Arc::new(cfg)).await?;
    crate::services::seed::load(&services).await?;
    let router = crate::app(crate::AppState::new(services.clone()));
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let mut c = Client {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        tokens: Default::default(),
        costs: None,
    };
    println!(
        "Virtual Window demo: an in-process server on http://{addr}, data in {}",
        data.display()
    );
    let projects = c
        .ok(reqwest::Method::GET, "/api/v1/projects", None, None)
        .await?;
    let project = projects[0]["id"].as_str().context("project")?.to_owned();
    let mut available: Vec<crate::store::Unit> = services
        .store
        .units(&project)
        .await?
        .into_iter()
        .filter(|u| {
            u.status == crate::domain::lifecycle::UnitStatus::Available
                && !u.seized
                && !u.objection
                && !u.manual_hold
        })
        .collect();
    if available.is_empty() {
        bail!("no available unit");
    }
    let first = available.remove(0);
    let done = flow(&c, &first, &demo_buyers(), "yj-confirmer", true, Some(out)).await?;
    let (id, reg_id, number) = (
        done.contract_id.clone(),
        done.registration_id.clone(),
        done.certificate_no.clone(),
    );
    let mut n = 13;

    // Every PDF verified against this installation's root, and the audit chain checked.
    let opts = Options {
        trust: vec![openssl::x509::X509::from_der(
            &services.pki.hierarchy.root.cert_der,
        )?],
        now: time::OffsetDateTime::now_utc(),
    };
    let mut verdicts = serde_json::Map::new();
    for file in [
        "contract-confirmed.pdf",
        "contract-filed.pdf",
        "certificate.pdf",
    ] {
        let bytes = std::fs::read(out.join(file))?;
        let r = crate::pdf::verify::verify(&bytes, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "    核验 {file}: {:?}，{} 个签名/时间戳",
            r.verdict,
            r.signatures.len()
        );
        if file != "contract-confirmed.pdf" && r.verdict != Verdict::Valid {
            bail!("{file} does not verify: {:?}", r.problems);
        }
        verdicts.insert(file.into(), serde_json::to_value(&r)?);
    }
    {
        // The OFD against the 国密 root.
        let bytes = std::fs::read(out.join("certificate.ofd"))?;
        let sm2_root = openssl::x509::X509::from_der(&services.pki.gm.root.cert_der)?;
        let r = crate::ofd::verify::verify(&bytes, &[sm2_root], time::OffsetDateTime::now_utc())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "    核验 certificate.ofd: {:?}，{} 个国密电子签章",
            r.verdict,
            r.signatures.len()
        );
        if r.verdict != Verdict::Valid {
            bail!("certificate.ofd does not verify: {:?}", r.problems);
        }
        verdicts.insert("certificate.ofd".into(), serde_json::to_value(&r)?);
    }
    let chain = crate::audit::verify_chain(services.store.as_ref()).await?;
    step(&mut n, &format!("审计日志哈希链校验：{chain:?}"));
    if !matches!(chain, crate::audit::ChainCheck::Intact { .. }) {
        bail!("the audit chain is broken");
    }
    // More flows, timed: the service's sustained complete flows per second on this machine.
    let mut throughput = Value::Null;
    if flows > 1 {
        let more = flows - 1;
        if available.len() < more {
            bail!(
                "only {} more available units for {more} flows",
                available.len()
            );
        }
        let units: Vec<crate::store::Unit> = available.drain(..more).collect();
        // Each concurrent worker has its own pair of buyers (accounts and identities made
        // through the API), as an opening day has many buyers; developer and centre staff are
        // shared, as they are in an office.
        let workers = concurrency.clamp(1, more);
        let mut pairs = Vec::new();
        for w in 0..workers {
            pairs.push(if w == 0 {
                (demo_buyers(), "yj-confirmer".to_owned())
            } else {
                (
                    [load_buyer(&c, w, 0).await?, load_buyer(&c, w, 1).await?],
                    load_confirmer(&c, w).await?,
                )
            });
        }
        let queue = Arc::new(std::sync::Mutex::new(units));
        if workers == 1 {
            c.costs = Some(Default::default());
        }
        // The timed flows' client on threads of its own, with connections of its own, so that
        // the CPU it spends (sending requests, reading answers) is counted apart from the
        // service's. Its own runtime: the server's tasks stay on this one.
        c.http = reqwest::Client::new();
        let client_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(CLIENT_THREADS)
            .enable_all()
            .build()?;
        let c = Arc::new(c);
        let started = std::time::Instant::now();
        let cpu_before = process_cpu_ms();
        let mut tasks = Vec::new();
        for (pair, confirmer) in pairs {
            let (c, queue) = (c.clone(), queue.clone());
            tasks.push(client_rt.spawn(async move {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some(unit) = next else {
                        return anyhow::Ok(());
                    };
                    flow(&c, &unit, &pair, &confirmer, false, None).await?;
                }
            }));
        }
        let mut failed = None;
        for t in tasks {
            if let Err(e) = t.await.map_err(anyhow::Error::from).and_then(|r| r) {
                failed.get_or_insert(e);
            }
        }
        if let Some(e) = failed {
            // A runtime may not be dropped inside another: shut it down before answering.
            client_rt.shutdown_background();
            return Err(e);
        }
        let secs = started.elapsed().as_secs_f64();
        let per_sec = more as f64 / secs;
        // The process's CPU over the timed flows: the service (and, on SQLite, the database)
        // and the demo's own HTTP client, whose share is counted by its threads. PostgreSQL's
        // own processes are not counted.
        let cpu_ms = (process_cpu_ms() - cpu_before) / more as f64;
        let client_ms = threads_cpu_ms(CLIENT_THREADS) / more as f64;
        client_rt.shutdown_background();
        let service_ms = cpu_ms - client_ms;
        // Where the process ran (the `cpus` setting, or taskset): the cost of a flow depends on
        // it (docs/operations.md), so a figure is never quoted without it.
        let cpus = crate::server::cpus_allowed();
        println!(
            "    {more} more complete flows on {}, {workers} at a time, on CPUs {cpus}: {secs:.1} s, {per_sec:.2} flows/s, {cpu_ms:.1} CPU-ms per flow (this process): the service {service_ms:.1}, the demo's HTTP client {client_ms:.1}",
            services.store.backend().as_str(),
        );
        // Where a flow's CPU goes, by request (one flow at a time only).
        let mut by_request = Vec::new();
        if let Some(costs) = c.costs.as_ref().and_then(|m| m.lock().ok()) {
            let mut rows: Vec<_> = costs.iter().collect();
            rows.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
            println!("    CPU per flow by request (process CPU while each request was in flight):");
            for (key, (n, ms)) in rows {
                let per_flow = ms / more as f64;
                println!(
                    "      {per_flow:>6.2} ms per flow  {:>5.2} × {:>5.2} ms  {key}",
                    *n as f64 / more as f64,
                    ms / *n as f64
                );
                by_request.push(json!({"request": key, "per_flow": *n as f64 / more as f64, "cpu_ms_each": ms / *n as f64, "cpu_ms_per_flow": per_flow}));
            }
        }
        throughput = json!({"flows": more, "concurrency": workers, "seconds": secs, "flows_per_second": per_sec, "cpu_ms_per_flow": cpu_ms, "service_cpu_ms_per_flow": service_ms, "client_cpu_ms_per_flow": client_ms, "cpus": cpus, "database": services.store.backend().as_str(), "cpu_by_request": by_request});
    }
    std::fs::write(out.join("root.pem"), services.pki.hierarchy.root.cert_pem())?;
    std::fs::write(out.join("root-sm2.pem"), services.pki.gm.root.cert_pem())?;
    let summary = json!({
        "contract_id": id,
        "filing_no": done.filing_no,
        "registration_id": reg_id,
        "certificate_no": number,
        "certificate_status": done.certificate_status,
        "files": ["contract-confirmed.pdf", "contract-filed.pdf", "certificate.pdf", "certificate.ofd", "root.pem", "root-sm2.pem"],
        "verification": verdicts,
        "throughput": throughput,
    });
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    println!(
        "Wrote the PDFs, the OFD certificate, the root certificates (root.pem, root-sm2.pem) and summary.json to {}",
        out.display()
    );
    Ok(())
}
