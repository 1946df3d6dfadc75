//! The real binary: `serve` on a fresh data directory seeds itself and answers; SIGTERM stops it
//! cleanly; a restart keeps the data; production refuses development defaults and names them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_virtual-window");

/// Runs a command that must finish by itself; a hang fails the test instead of blocking the run.
fn output_within(mut c: Command, limit: Duration) -> std::process::Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

struct Server {
    child: Child,
    base: String,
    /// Everything the server wrote (logs on both streams).
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn start(data_dir: &std::path::Path) -> Server {
    start_logging(data_dir, "warn")
}

fn start_logging(data_dir: &std::path::Path, level: &str) -> Server {
    let mut c = Command::new(BIN);
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("VW_DATABASE_URL")
        .env("VW_LOG", level);
    start_command(c)
}

/// Starts a prepared `serve` command and waits for its address.
fn start_command(mut c: Command) -> Server {
    let mut child = c
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stdout = child.stdout.take().unwrap();
    let out2 = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            out2.lock().unwrap().push(line);
        }
    });
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out3 = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Virtual Window is serving on ") {
                let _ = tx.send(rest.split(' ').next().unwrap_or("").to_owned());
            }
            out3.lock().unwrap().push(line);
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server announces its address");
    Server {
        child,
        base,
        output,
    }
}

fn terminate(mut s: Server) {
    let status = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(code) = s.child.try_wait().unwrap() {
            assert!(code.success(), "clean exit after SIGTERM: {code:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_seeds_answers_stops_and_restarts_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let docs = http
        .get(format!("{}/docs", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("虚拟窗口"));
    for name in [
        "admin",
        "yj-drafter",
        "yj-confirmer",
        "buyer-zhang",
        "buyer-li",
        "buyer-wang",
        "rc-first",
        "rc-second",
        "rc-recorder",
    ] {
        let r = http
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&serde_json::json!({"username": name, "password": virtual_window::config::DEV_DEMO_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
    }
    // Create something that only exists in this database.
    let admin: serde_json::Value = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&serde_json::json!({"username": "admin", "password": virtual_window::config::DEV_DEMO_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = admin["access_token"].as_str().unwrap();
    let created = http
        .post(format!("{}/api/v1/users", server.base))
        .bearer_auth(token)
        .json(&serde_json::json!({"username": "survivor", "display_name": "留存", "password": "survives restarts", "role": "buyer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    terminate(server);
    assert!(
        dir.path().join("virtual-window.db").exists(),
        "SQLite file under the data directory"
    );

    let server = start(dir.path());
    let r = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&serde_json::json!({"username": "survivor", "password": "survives restarts"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "data survives a restart");
    let ready: serde_json::Value = http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    terminate(server);

    let mut c = Command::new(BIN);
    c.args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .env("VW_LOG", "warn");
    let out = output_within(c, Duration::from_secs(30));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit chain intact"));
}

#[test]
fn production_refuses_development_defaults_and_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[(&str, &str)]| {
        let mut c = Command::new(BIN);
        c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("VW_MODE", "production")
            .env("VW_LOG", "error");
        for (k, v) in extra {
            c.env(k, v);
        }
        let out = output_within(c, Duration::from_secs(30));
        assert!(!out.status.success(), "production must refuse");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&[]).contains("auth.jwt_keys"));
    let key = dir.path().join("prod.pem");
    let pkey = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::write(&key, pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let keys = format!(
        "[{{kid=\"prod-1\",private_key_file=\"{}\"}}]",
        key.display()
    );
    let err = run(&[("VW_AUTH__JWT_KEYS", &keys)]);
    assert!(err.contains("auto_seed"), "{err}");
    let err = run(&[("VW_AUTH__JWT_KEYS", &keys), ("VW_AUTO_SEED", "false")]);
    assert!(err.contains("database_url"), "{err}");
    let dev_keys = format!(
        "[{{kid=\"dev-abc\",private_key_file=\"{}\"}}]",
        key.display()
    );
    let err = run(&[("VW_AUTH__JWT_KEYS", &dev_keys), ("VW_AUTO_SEED", "false")]);
    assert!(err.contains("development key"), "{err}");
}

/// The CPUs a thread may run on, as Linux writes them (`0-1`).
fn cpus_allowed(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("a Cpus_allowed_list line")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_every_thread_on_the_configured_cpus() {
    // The last CPU this test may use: not the first, so that the default (all of them) and
    // the confinement differ wherever the machine has more than one.
    let mine = cpus_allowed(&std::fs::read_to_string("/proc/self/status").unwrap());
    let last = mine
        .rsplit([',', '-'])
        .next()
        .unwrap()
        .parse::<usize>()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(BIN);
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("VW_DATABASE_URL")
        .env("VW_LOG", "warn")
        .env("VW_CPUS", last.to_string());
    let server = start_command(c);
    // A request, so that the database's connection threads and the runtime's workers exist.
    let health = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let tasks = format!("/proc/{}/task", server.child.id());
    let mut threads = 0;
    for task in std::fs::read_dir(&tasks).unwrap() {
        let path = task.unwrap().path();
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue; // ended since the listing
        };
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        assert_eq!(
            cpus_allowed(&status),
            last.to_string(),
            "thread {} ({}) may run elsewhere",
            path.display(),
            name.trim()
        );
        threads += 1;
    }
    assert!(threads > 3, "only {threads} threads seen");
    terminate(server);

    // A CPU the process may not use is refused at start, naming the setting.
    for (cpus, said) in [
        ("1023", "cpus: CPU 1023 is not available to this process"),
        ("2-1", "cpus: the range `2-1` runs backwards"),
    ] {
        let mut c = Command::new(BIN);
        c.args(["migrate", "--data-dir"])
            .arg(dir.path())
            .env_remove("VW_DATABASE_URL")
            .env("VW_CPUS", cpus);
        let out = output_within(c, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "VW_CPUS={cpus}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "VW_CPUS={cpus}: {err}");
    }
}

#[test]
fn unknown_configuration_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vw.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nlisten_adress = \"typo\"\n",
    )
    .unwrap();
    let mut c = Command::new(BIN);
    c.args(["migrate", "--data-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&file);
    let out = output_within(c, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_adress"));
}

#[test]
fn pki_commands_init_issue_revoke_and_publish() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("VW_LOG", "warn");
        let out = output_within(c, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let init = run(&["pki", "init"]);
    assert!(init.contains("root fingerprint:"), "{init}");
    let again = run(&["pki", "init"]);
    assert_eq!(
        init.lines().find(|l| l.starts_with("root fingerprint")),
        again.lines().find(|l| l.starts_with("root fingerprint")),
        "init twice keeps the same root"
    );
    let out_dir = dir.path().join("seal");
    let issued = run(&[
        "pki",
        "issue",
        "--organisation",
        "东莞市云境置业有限公司",
        "--uscc",
        "91441900MA4W0L7N36",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let serial = issued.split_whitespace().nth(4).unwrap().to_owned();
    assert!(
        std::fs::read_to_string(out_dir.join("seal.key.pem"))
            .unwrap()
            .contains("ENCRYPTED PRIVATE KEY")
    );
    // Revokes `serial`, writes `ca`'s CRL and reads it back with OpenSSL (upper case).
    let revoke_and_read_crl = |serial: &str, ca: &str| {
        run(&["pki", "revoke", serial, "--reason", "key_compromise"]);
        let crl_path = dir.path().join(format!("{ca}.crl"));
        run(&["pki", "crl", ca, "--out", crl_path.to_str().unwrap()]);
        let out = Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&crl_path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_uppercase()
    };
    let text = revoke_and_read_crl(&serial, "organisations-ca");
    assert!(text.contains(&serial.to_uppercase()), "{text}");
    assert!(text.contains("KEY COMPROMISE"), "{text}");

    // The 国密 side: `pki show` lists the SM2 hierarchy; `pki issue --sm2` hands out an SM2
    // certificate, its encrypted key and a GB/T 38540 seal naming it; revoking that certificate
    // puts it on the SM2 organisations' CA's CRL, signed SM2-with-SM3.
    let shown = run(&["pki", "show"]);
    assert!(
        shown.contains("sm2-root") && shown.contains("(SM2)"),
        "{shown}"
    );
    let sm2_dir = dir.path().join("seal-sm2");
    let issued = run(&[
        "pki",
        "issue",
        "--sm2",
        "--organisation",
        "东莞市云境置业有限公司",
        "--uscc",
        "91441900MA4W0L7N36",
        "--out",
        sm2_dir.to_str().unwrap(),
    ]);
    assert!(issued.contains("issued SM2 seal 4419"), "{issued}");
    let cert_pem = std::fs::read(sm2_dir.join("seal-sm2.pem")).unwrap();
    let cert = openssl::x509::X509::from_pem(&cert_pem).unwrap();
    let key = virtual_window::pki::sm2::Sm2Key::from_encrypted_pkcs8(
        &std::fs::read(sm2_dir.join("seal-sm2.key.der")).unwrap(),
        std::fs::read(dir.path().join("keys/dev-pki-kek"))
            .unwrap()
            .trim_ascii(),
    )
    .unwrap();
    assert_eq!(
        cert.public_key().unwrap().public_key_to_der().unwrap(),
        key.public_key_der()
    );
    let seal_der = std::fs::read(sm2_dir.join("seal.esl")).unwrap();
    let seal = virtual_window::pki::ses::parse_seal(
        virtual_window::pki::der::Reader::new(&seal_der)
            .read()
            .unwrap(),
    )
    .unwrap();
    assert!(virtual_window::pki::ses::allows(
        &seal,
        &cert.to_der().unwrap()
    ));
    assert!(virtual_window::pki::ses::seal_signed(&seal));
    let serial = virtual_window::audit::hex(&cert.serial_number().to_bn().unwrap().to_vec());
    let text = revoke_and_read_crl(&serial, "sm2-organisations-ca");
    assert!(text.contains("SM2-WITH-SM3"), "{text}");
    assert!(text.contains(&serial.to_uppercase()), "{text}");
}

/// After a whole identity flow through the real binary with debug logging, no ID number appears
/// in the clear anywhere in the data directory (database, write-ahead log, keys) or in the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_id_number_in_the_clear_in_the_database_or_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_logging(dir.path(), "debug");
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let call = |method: reqwest::Method,
                path: &str,
                token: Option<&str>,
                body: Option<serde_json::Value>| {
        let mut r = http.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    let login = |u: &'static str| {
        let c = call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(
                serde_json::json!({"username": u, "password": virtual_window::config::DEV_DEMO_PASSWORD}),
            ),
        );
        async move {
            let v: serde_json::Value = c.await.unwrap().json().await.unwrap();
            v["access_token"].as_str().unwrap().to_owned()
        }
    };
    let zhang = login("buyer-zhang").await;
    let admin = login("admin").await;
    // A new buyer registers an identity (and first gets one wrong).
    let r = call(
        reqwest::Method::POST,
        "/api/v1/users",
        Some(&admin),
        Some(serde_json::json!({"username": "newbuyer", "display_name": "王五", "password": virtual_window::config::DEV_DEMO_PASSWORD, "role": "buyer"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let newbuyer = login("newbuyer").await;
    let extra = crate::identity::id_with_sequence("777");
    let r = call(
        reqwest::Method::PUT,
        "/api/v1/me/identity",
        Some(&newbuyer),
        Some(serde_json::json!({"real_name": "王五", "id_number": "441900199001010011"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let r = call(
        reqwest::Method::PUT,
        "/api/v1/me/identity",
        Some(&newbuyer),
        Some(serde_json::json!({"real_name": "王五", "id_number": extra})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    for token in [&zhang, &newbuyer] {
        let v: serde_json::Value = call(
            reqwest::Method::POST,
            "/api/v1/identity/verifications",
            Some(token),
            Some(serde_json::json!({"purpose": "sign_contract"})),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let id = v["id"].as_str().unwrap();
        let v: serde_json::Value = call(
            reqwest::Method::GET,
            &format!("/api/v1/identity/verifications/{id}"),
            Some(token),
            None,
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(v["status"], "passed");
        let r = call(
            reqwest::Method::POST,
            "/api/v1/identity/codes",
            Some(token),
            Some(
                serde_json::json!({"purpose": "sign_contract", "document_sha256": "ab".repeat(32)}),
            ),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let me: serde_json::Value = call(
            reqwest::Method::GET,
            "/api/v1/me/identity",
            Some(token),
            None,
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert!(me["id_number"].as_str().unwrap().starts_with("4419"));
    }
    let output = server.output.clone();
    terminate(server);
    let logs = output.lock().unwrap().join("\n");
    assert!(logs.len() > 1000, "debug logging produced output");
    let numbers = [
        "44190019900101001X",
        "441900198506150021",
        "441900199202280032",
        "44190020000101004X",
        extra.as_str(),
        "441900199001010011",
    ];
    for n in numbers {
        assert!(!logs.contains(n), "{n} appears in the logs");
        assert!(
            !logs.to_ascii_lowercase().contains(&n.to_ascii_lowercase()),
            "{n} appears in the logs"
        );
    }
    let mut files = vec![dir.path().to_path_buf()];
    let mut scanned = 0;
    let mut saw_name = false;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        scanned += 1;
        // The scan reads the stored rows: the real name (kept in the clear) is found.
        saw_name |= bytes.windows("王五".len()).any(|w| w == "王五".as_bytes());
        for n in numbers {
            assert!(
                !bytes
                    .windows(n.len())
                    .any(|w| w.eq_ignore_ascii_case(n.as_bytes())),
                "{n} in the clear in {}",
                p.display()
            );
        }
    }
    assert!(scanned >= 3, "the database and keys were scanned");
    assert!(saw_name, "the scan reaches the stored account rows");
}

/// `virtual-window demo` on a fresh directory: the whole flow, and its PDFs accepted by pyHanko
/// and poppler's pdfsig against the demo's root.
#[test]
fn the_demo_runs_the_whole_flow_and_its_pdfs_validate_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut c = Command::new(BIN);
    // Three more flows, two at a time: the concurrent path with distinct buyers works too.
    c.args(["demo", "--flows", "4", "--concurrency", "2", "--out"])
        .arg(&out)
        .env_remove("VW_DATABASE_URL");
    let o = output_within(c, Duration::from_secs(240));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for line in [
        "买受人张伟",
        "买受人李娜",
        "合同专用章",
        "备案号",
        "复审",
        "登簿",
        "Intact",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["certificate_status"], "valid");
    assert_eq!(summary["throughput"]["flows"], 3);
    assert_eq!(summary["throughput"]["concurrency"], 2);
    // The OFD certificate: the independent checker, and our verifier against the 国密 root.
    let ofd = out.join("certificate.ofd");
    let o = Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/gm/ofd_ses_check.py"))
        .arg(&ofd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = Command::new(BIN)
        .args(["verify", "--json", "--trust"])
        .arg(out.join("root-sm2.pem"))
        .arg(&ofd)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(o.status.code(), Some(0), "{report:#}");
    assert_eq!(report["verdict"], "valid");
    assert_eq!(report["signatures"][0]["kind"], "seal");
    assert_eq!(report["signatures"][0]["verdict"], "valid");
    // Against the P-256 root only: not trusted (exit 2, indeterminate).
    let o = Command::new(BIN)
        .args(["verify", "--json", "--trust"])
        .arg(out.join("root.pem"))
        .arg(&ofd)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let root = out.join("root.pem");
    let Some(pyhanko) = crate::pdf::signing::pyhanko() else {
        return;
    };
    let db = crate::pdf::signing::nss_trusting(dir.path(), &root);
    for (file, signatures) in [("contract-filed.pdf", 4), ("certificate.pdf", 1)] {
        let path = out.join(file);
        let o = crate::pdf::signing::pyhanko_validate(&pyhanko, &root, &path, false);
        let report = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{file}: {report}");
        assert_eq!(
            report.matches(":INTACT:TRUSTED").count(),
            signatures,
            "{file}: {report}"
        );
        let o = Command::new("pdfsig")
            .args(["-nssdir", &db])
            .arg(&path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            report.matches("Signature is Valid.").count() >= signatures
                && !report.contains("Signature is Invalid"),
            "{file}: {report}"
        );
    }
}

/// Wraps `BIN args` so that it runs in a private mount namespace where every font folder is an
/// empty tmpfs: a machine with no font installed. `None` where namespaces are not available (not
/// root); scripts/test sets VW_REQUIRE_NAMESPACES=1, and then that fails the test instead.
fn without_fonts(args: &[&str]) -> Option<Command> {
    let works = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        assert!(
            std::env::var("VW_REQUIRE_NAMESPACES").as_deref() != Ok("1"),
            "unshare --mount is not available"
        );
        return None;
    }
    let script = r#"set -e
for d in /usr/share/fonts /usr/local/share/fonts /usr/share/texmf/fonts /var/cache/fontconfig "$HOME/.fonts" "$HOME/.local/share/fonts"; do
  if [ -d "$d" ]; then mount -t tmpfs -o size=1m vw-no-fonts "$d"; fi
done
echo "font files visible: $(find /usr/share/fonts /usr/local/share/fonts -type f 2>/dev/null | wc -l)" >&2
exec "$@""#;
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        BIN,
    ])
    .args(args)
    .env_remove("VW_DATABASE_URL");
    Some(c)
}

/// Every font of a PDF embedded and subset (pdffonts: emb, sub and uni all "yes").
fn assert_fonts_embedded(path: &std::path::Path) {
    let fonts = crate::pdf::tool("pdffonts", &[path.to_str().unwrap()]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{}: no fonts\n{fonts}", path.display());
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cols[cols.len() - 5..cols.len() - 2],
            ["yes", "yes", "yes"],
            "{}: {fonts}",
            path.display()
        );
    }
}

/// On a machine without any font, the service started as a new user starts it drafts and
/// confirms a contract through the API, and the demo runs the whole flow: every PDF carries its
/// embedded subset font.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_system_fonts_the_service_and_the_demo_make_documents() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let Some(mut c) = without_fonts(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &data_arg])
    else {
        return;
    };
    c.env("VW_LOG", "warn");
    let server = start_command(c);
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let ready: serde_json::Value = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    let login = |name: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r: serde_json::Value = http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&serde_json::json!({"username": name, "password": virtual_window::config::DEV_DEMO_PASSWORD}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["access_token"].as_str().unwrap().to_owned()
        }
    };
    let (drafter, confirmer) = (login("yj-drafter").await, login("yj-confirmer").await);
    let projects: serde_json::Value = http
        .get(format!("{base}/api/v1/projects"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let units: serde_json::Value = http
        .get(format!(
            "{base}/api/v1/projects/{}/units",
            projects[0]["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let unit = units
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["for_sale"] == true)
        .unwrap();
    let price =
        virtual_window::domain::Money::parse_yuan(unit["filed_price"].as_str().unwrap()).unwrap();
    let area = virtual_window::domain::Area::parse(unit["gross_area"].as_str().unwrap()).unwrap();
    let body = crate::contracts::draft_priced(
        unit["id"].as_str().unwrap(),
        &price.to_string(),
        &price.times_area(area).unwrap().to_string(),
    );
    let r = http
        .post(format!("{base}/api/v1/contracts"))
        .bearer_auth(&drafter)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .post(format!("{base}/api/v1/contracts/{id}/confirm"))
        .bearer_auth(&confirmer)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let pdf = http
        .get(format!("{base}/api/v1/contracts/{id}/document"))
        .bearer_auth(&confirmer)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let path = dir.path().join("contract.pdf");
    std::fs::write(&path, &pdf).unwrap();
    assert_fonts_embedded(&path);
    let said = server.output.lock().unwrap().join("\n");
    assert!(said.contains("font files visible: 0"), "{said}");
    terminate(server);

    let out = dir.path().join("out");
    let mut c = without_fonts(&["demo", "--out", out.to_str().unwrap()]).unwrap();
    c.env("VW_LOG", "warn");
    let o = output_within(c, Duration::from_secs(240));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(stderr.contains("font files visible: 0"), "{stderr}");
    for file in [
        "contract-confirmed.pdf",
        "contract-filed.pdf",
        "certificate.pdf",
    ] {
        assert_fonts_embedded(&out.join(file));
    }
}
