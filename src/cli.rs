//! The command line: `serve` (the default), `migrate`, `seed`, and `audit verify`. Later rooms add
//! `demo`, `verify`, `pki` and `render` here.

mod demo;
mod load;

use crate::config::{Config, Overrides};
use crate::server;
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "virtual-window",
    version,
    about = "虚拟窗口 Virtual Window: online pre-sale contracts, filing and registration"
)]
pub struct Cli {
    /// A TOML configuration file (see docs/configuration.md).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on [env: VW_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, global = true)]
    pub listen: Option<SocketAddr>,
    /// Data directory [env: VW_DATA_DIR] [default: ./data]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL, sqlite:// or postgres:// [env: VW_DATABASE_URL] [default: SQLite in the data directory]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load the development seed (sample development and demo accounts).
    Seed,
    /// Audit trail tools.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Render a contract PDF from a data file (TOML or JSON), to preview template changes.
    Render {
        /// The contract data, e.g. fixtures/sample-contract.toml.
        #[arg(long)]
        data: PathBuf,
        /// Where to write the PDF.
        #[arg(long)]
        out: PathBuf,
        /// A template file to use instead of the built-in one (templates/contract/gf-2014-0171.toml).
        #[arg(long)]
        template: Option<PathBuf>,
        /// The document time (ISO 8601); the same data, template and time give the same bytes.
        #[arg(long, default_value = "2026-01-01T00:00:00+08:00")]
        created: String,
    },
    /// Verify the signatures of a PDF, or the GB/T 38540 seals of an OFD package. Exit status: 0 valid, 1 invalid, 2 indeterminate,
    /// 3 not a readable PDF.
    Verify {
        /// A trusted root certificate (PEM); repeatable. Without it, the root of this
        /// installation's PKI is trusted when there is one.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// Print the full report as JSON (fields in docs/verification.md).
        #[arg(long)]
        json: bool,
        file: PathBuf,
    },
    /// A stand-in identity provider speaking the `http` provider protocol, with the sandbox's
    /// outcomes (docs/identity.md), for demos. Never a real identity check.
    IdentityStandin {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
        /// The key id the service signs with (identity.http.key_id).
        #[arg(long, default_value = "virtual-window")]
        key_id: String,
        /// The shared secret (identity.http.secret).
        #[arg(long, env = "VW_STANDIN_SECRET")]
        secret: String,
        /// Seconds before the result is posted back to the service.
        #[arg(long, default_value_t = 2)]
        callback_delay_secs: u64,
    },
    /// The one-command tour: runs the whole flow on a fresh embedded database through the API of
    /// an in-process server, verifies every PDF and the audit chain, and writes the PDFs and a
    /// summary to `--out`.
    Demo {
        #[arg(long, default_value = "./out")]
        out: PathBuf,
        /// Complete flows in all; beyond the first (told and verified) they are timed: the
        /// service's sustained flows per second (`--database-url` for PostgreSQL).
        #[arg(long, default_value_t = 1)]
        flows: usize,
        /// How many of the timed flows run at once, each with its own two buyers.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// An opening day against running instances (docs/operations.md): buyers race for units
    /// through the HTTP API; reports latency per step, errors, and (with `--database-url`) the
    /// outcome in the database. `--password-burst N` measures N password sign-ins at once instead.
    Load {
        /// The service's address (a load balancer, or one instance).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        target: String,
        #[arg(long, default_value_t = 300)]
        buyers: usize,
        #[arg(long, default_value_t = 50)]
        units: usize,
        /// Buyers acting at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// The buyers arrive over this many seconds.
        #[arg(long, default_value_t = 30)]
        arrival_secs: u64,
        /// Developer staff confirming and sealing (each seals one contract at a time).
        #[arg(long, default_value_t = 16)]
        confirmers: usize,
        /// A person's pause before each action (typing a code, choosing, deciding), mean seconds
        /// (each pause drawn between half and one and a half times it); 0: none, every request
        /// straight after the last (a stress test: the service saturated by `--concurrency`).
        #[arg(long, default_value_t = 0.0)]
        think_secs: f64,
        /// How long a buyer reads before signing: the chapters are opened over this many
        /// seconds (the service's `web.min_reading_secs` must not be larger).
        #[arg(long, default_value_t = 0)]
        reading_secs: u64,
        /// Public verification uploads during the run.
        #[arg(long, default_value_t = 20)]
        verifications: usize,
        /// JSON lines of injected faults (`fault`, `start_ms`, `end_ms`), read at the end.
        #[arg(long)]
        fault_log: Option<PathBuf>,
        /// Pid files of the instances, sampled for resident memory.
        #[arg(long)]
        pid_file: Vec<PathBuf>,
        /// Write the summary here (it is printed too).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write every timed request here (CSV: step, start in ms since the epoch, ms).
        #[arg(long)]
        samples: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        password_burst: usize,
    },
    /// The certificate authority: init, issue, revoke, crl, show.
    Pki {
        #[command(subcommand)]
        action: PkiCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum PkiCommand {
    /// Create the CA hierarchy (root, people, organisations, timestamping) if there is none, and
    /// print the root's fingerprint.
    Init,
    /// Show the CAs and the number of certificates issued.
    Show,
    /// Issue an organisation seal certificate; writes `seal.pem` and the encrypted `seal.key.pem`.
    /// With `--sm2`: an SM2 certificate and a GB/T 38540 seal instead, written as `seal-sm2.pem`,
    /// the encrypted PKCS#8 `seal-sm2.key.der` and the seal data `seal.esl`.
    Issue {
        /// The company's registered name.
        #[arg(long)]
        organisation: String,
        /// Unified social credit code (统一社会信用代码).
        #[arg(long)]
        uscc: String,
        /// The seal's name.
        #[arg(long, default_value = "合同专用章")]
        seal_name: String,
        /// An image of the seal (PNG or SVG); the certificate binds it by its SHA-256.
        #[arg(long)]
        seal_image: Option<PathBuf>,
        /// Directory for the certificate and key.
        #[arg(long)]
        out: PathBuf,
        /// 国密: an SM2 certificate from the SM2 organisations' CA and a GB/T 38540 seal.
        #[arg(long)]
        sm2: bool,
    },
    /// Revoke a certificate by serial number (hex).
    Revoke {
        serial: String,
        /// unspecified, key_compromise, affiliation_changed, superseded, cessation_of_operation
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Write the current CRL of a CA (DER) to a file, or PEM to standard output.
    Crl {
        /// root, people-ca, organisations-ca or timestamping-ca
        ca: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain from the first entry to the head.
    Verify,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
    };
    let cfg = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The tour prints its own story; request logs would drown it (VW_LOG still overrides).
    if matches!(cli.command, Some(Command::Demo { .. })) {
        server::init_logging_with(&cfg, "warn");
    } else {
        server::init_logging(&cfg);
    }
    if let Some(cpus) = &cfg.cpus {
        if let Err(e) = server::confine_to_cpus(cpus) {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
        tracing::info!(%cpus, "confined to the configured CPUs");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), cfg)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, cfg: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            server::serve(cfg).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let services = server::prepare(Arc::new(cfg)).await?;
            let status = services.store.ready().await?;
            println!(
                "migrations applied on {}: {} of {}",
                services.store.backend().as_str(),
                status.applied,
                status.known
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Seed => {
            let services = server::prepare(Arc::new(cfg)).await?;
            match crate::services::seed::load(&services).await? {
                crate::services::seed::SeedOutcome::Loaded { users, units } => {
                    println!(
                        "seeded the sample development: {units} units, {users} demo accounts (password `{}`)",
                        crate::config::DEV_DEMO_PASSWORD
                    )
                }
                crate::services::seed::SeedOutcome::AlreadyPresent => {
                    println!("the sample development is already present; nothing changed")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Pki { action } => pki(action, cfg).await,
        Command::Verify { trust, json, file } => verify(&cfg, &trust, json, &file),
        Command::Demo {
            out,
            flows,
            concurrency,
        } => {
            std::fs::create_dir_all(&out)?;
            demo::run(&out, flows, concurrency, cfg.database_url.clone()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Load {
            target,
            buyers,
            units,
            concurrency,
            arrival_secs,
            confirmers,
            think_secs,
            reading_secs,
            verifications,
            fault_log,
            pid_file,
            json,
            samples,
            password_burst,
        } => {
            let summary = load::run(load::Options {
                target,
                buyers,
                units,
                concurrency,
                arrival_secs,
                confirmers,
                think: std::time::Duration::from_secs_f64(think_secs.clamp(0.0, 600.0)),
                reading: std::time::Duration::from_secs(reading_secs),
                verifications,
                database_url: cfg.database_url.as_ref().map(|u| u.expose().to_owned()),
                fault_log,
                pid_files: pid_file,
                json,
                samples,
                password_burst,
            })
            .await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::IdentityStandin {
            listen,
            key_id,
            secret,
            callback_delay_secs,
        } => {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            eprintln!(
                "identity stand-in (sandbox outcomes, not a real check) on http://{}",
                listener.local_addr()?
            );
            crate::identity::standin::serve(
                listener,
                crate::identity::standin::StandinConfig {
                    key_id,
                    secret: secret.into_bytes(),
                    callback_delay: std::time::Duration::from_secs(callback_delay_secs),
                },
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            data,
            out,
            template,
            created,
        } => render(&cfg, &data, &out, template.as_deref(), &created),
        Command::Audit {
            action: AuditCommand::Verify,
        } => {
            let services = server::prepare(Arc::new(cfg)).await?;
            match crate::audit::verify_chain(services.store.as_ref()).await? {
                crate::audit::ChainCheck::Intact { entries, head } => {
                    println!("audit chain intact: {entries} entries, head {head}");
                    Ok(ExitCode::SUCCESS)
                }
                crate::audit::ChainCheck::Broken { seq, reason } => {
                    println!("audit chain BROKEN at entry {seq}: {reason}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

async fn pki(action: PkiCommand, cfg: Config) -> anyhow::Result<ExitCode> {
    use crate::services::pki as svc;
    let create = matches!(action, PkiCommand::Init);
    let services = server::prepare_with(Arc::new(cfg), create).await?;
    match action {
        PkiCommand::Init | PkiCommand::Show => {
            for a in std::iter::once(&services.pki.hierarchy.root)
                .chain(services.pki.hierarchy.issuing.iter())
            {
                let x = openssl::x509::X509::from_der(&a.cert_der)?;
                println!(
                    "{:<17} valid until {}  SHA-256 {}",
                    a.name,
                    x.not_after(),
                    svc::fingerprint(&a.cert_der)
                );
            }
            // The 国密 side: the SM2 hierarchy beside it (docs/pki.md).
            for a in services.pki.gm.authorities() {
                let x = openssl::x509::X509::from_der(&a.cert_der)?;
                println!(
                    "{:<20} valid until {}  SHA-256 {}  (SM2)",
                    a.name,
                    x.not_after(),
                    svc::fingerprint(&a.cert_der)
                );
            }
            println!("SM2 seals: {}", services.store.es_seals(1000).await?.len());
            println!("root fingerprint: {}", svc::root_fingerprint(&services));
            println!(
                "certificates in the log: {}",
                services.store.certificates(i64::MAX).await?.len()
            );
        }
        PkiCommand::Issue {
            organisation,
            uscc,
            seal_name,
            seal_image,
            out,
            sm2,
        } => {
            if sm2 {
                let (holder, seal) =
                    crate::services::gm::issue_external_seal(&services, &organisation, &seal_name)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                std::fs::create_dir_all(&out)?;
                std::fs::write(out.join("seal-sm2.pem"), holder.cert_pem())?;
                crate::pki::keys::write_private(
                    &out.join("seal-sm2.key.der"),
                    &holder.key.to_encrypted_pkcs8(services.pki.kek())?,
                )?;
                std::fs::write(out.join("seal.esl"), &seal.seal_der)?;
                println!(
                    "issued SM2 seal {} ({}) for {uscc}, valid until {}",
                    seal.es_id, seal.name, seal.valid_to
                );
                return Ok(ExitCode::SUCCESS);
            }
            let image = seal_image.map(std::fs::read).transpose()?;
            let (issued, key) = svc::issue_seal(
                &services,
                None,
                &organisation,
                &uscc,
                &seal_name,
                image.as_deref(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("seal.pem"), issued.pem())?;
            services.pki.save_key(&out.join("seal.key.pem"), &key)?;
            println!(
                "issued organisation seal certificate {} (valid until {})",
                issued.serial, issued.not_after
            );
        }
        PkiCommand::Revoke { serial, reason } => {
            let reason = svc::RevocationReason::parse(&reason)
                .ok_or_else(|| anyhow::anyhow!("unknown revocation reason `{reason}`"))?;
            let v = svc::revoke(&services, None, &serial, reason)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "revoked {} ({}); it is listed in the next CRL of {}",
                v.serial,
                reason_text(&v),
                v.issuer
            );
        }
        PkiCommand::Crl { ca, out } => {
            let der = svc::crl(&services, &ca)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            match out {
                Some(path) => std::fs::write(path, der)?,
                None => print!("{}", crate::pki::ca::pem("X509 CRL", &der)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn reason_text(v: &crate::services::pki::CertificateView) -> String {
    v.revocation_reason.clone().unwrap_or_default()
}

fn render(
    cfg: &Config,
    data: &std::path::Path,
    out: &std::path::Path,
    template: Option<&std::path::Path>,
    created: &str,
) -> anyhow::Result<ExitCode> {
    use crate::services::documents;
    let font = crate::pdf::font::Font::find(cfg.documents.font_path.as_deref())?;
    let text = std::fs::read_to_string(data)?;
    let contract: crate::domain::contract::ContractData =
        if data.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)?
        } else {
            toml::from_str(&text)?
        };
    let template_text = match template {
        Some(p) => std::fs::read_to_string(p)?,
        None => documents::CONTRACT_TEMPLATE.to_owned(),
    };
    match documents::render_contract(&font, &template_text, &contract, &cfg.public_url(), created) {
        Ok(r) => {
            std::fs::write(out, &r.pdf)?;
            println!(
                "wrote {} ({} pages, {} bytes; template {} {} sha256 {})",
                out.display(),
                r.pages,
                r.pdf.len(),
                r.template_id,
                r.template_version,
                r.template_hash
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(crate::services::Error::Invalid { fields, .. }) => {
            eprintln!("the contract data is not valid:");
            for f in fields {
                eprintln!("  {}: {} ({})", f.field, f.message, f.code);
            }
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

fn verify(cfg: &Config, trust: &[PathBuf], json: bool, file: &Path) -> anyhow::Result<ExitCode> {
    use crate::pdf::verify::{Options, Verdict};
    let mut anchors = Vec::new();
    let mut paths: Vec<PathBuf> = trust.to_vec();
    let own_root = cfg.pki_dir().join("root.pem");
    if paths.is_empty() && own_root.exists() {
        paths.push(own_root);
    }
    for p in &paths {
        let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        anchors.extend(
            openssl::x509::X509::stack_from_pem(&pem)
                .with_context(|| format!("{} holds no PEM certificate", p.display()))?,
        );
    }
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("无法读取 {}: {e}", file.display());
            return Ok(ExitCode::from(3));
        }
    };
    let opts = Options {
        trust: anchors,
        now: time::OffsetDateTime::now_utc(),
    };
    // An OFD package (a ZIP) sealed with GB/T 38540 seals, or a PDF.
    let report = if crate::ofd::is_zip(&bytes) {
        match crate::ofd::verify::verify(&bytes, &opts.trust, opts.now) {
            Ok(r) => Ok(r),
            Err(e) => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"code": "not_an_ofd", "message": e.to_string()})
                    );
                } else {
                    eprintln!("不是可读的 OFD 文件: {e}");
                }
                return Ok(ExitCode::from(3));
            }
        }
    } else {
        crate::pdf::verify::verify(&bytes, &opts)
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"code": "not_a_pdf", "message": e.to_string()})
                );
            } else {
                eprintln!("不是可读的 PDF 文件: {e}");
            }
            return Ok(ExitCode::from(3));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::pdf::verify::summary(&report));
    }
    Ok(ExitCode::from(match report.verdict {
        Verdict::Valid => 0,
        Verdict::Invalid => 1,
        Verdict::Indeterminate => 2,
    }))
}
