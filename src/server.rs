//! Start-up and shutdown: logging, the database and its migrations, keys, the production safety
//! checks, the development seed, and a server that finishes in-flight requests on SIGTERM/SIGINT.

use crate::config::{Config, LogFormat, Mode};
use crate::services::{Services, pki::PkiState, seed, tokens::Keyring};
use crate::store;
use crate::{AppState, app};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

pub fn init_logging(cfg: &Config) {
    init_logging_with(cfg, "info,sqlx=warn,tower_http=info")
}

/// As `init_logging`, with another filter when `VW_LOG` is not set.
pub fn init_logging_with(cfg: &Config, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("VW_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests, or a command that logs twice) is harmless: the first subscriber stays.
    let _ = match cfg.log_format() {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The CPUs this process may run on now, as Linux lists them (`0-1`); empty where /proc does
/// not say. A CPU-time figure is quoted with it: the cost depends on it (docs/operations.md).
pub fn cpus_allowed() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_default()
}

/// Confines this process to `cpus`: every thread it has now, and so (by inheritance) every
/// thread it starts later — the runtime's workers, the blocking pool, SQLite's connection
/// threads. Called before the runtime starts, so the runtime also sizes itself to them.
///
/// Why: on a virtual machine, a thread that wakes a thread on another, idle core pays for the
/// interrupt and the other core's wake-up; sqlx hands every SQLite statement to a thread of its
/// connection and back, and a statement cost about 45 µs of CPU that way against 3 µs with both
/// threads on one core (docs/BENCHMARKS.md). An instance kept on one core avoids that; a
/// machine runs one instance per core.
pub fn confine_to_cpus(cpus: &crate::config::CpuList) -> anyhow::Result<()> {
    // SAFETY: `cpu_set_t` is plain data; zeroed is its empty set.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `allowed` is a valid `cpu_set_t` of `size` bytes; pid 0 is the calling thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 {
        bail!(
            "cpus: reading the CPUs allowed to this process: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: as above; `CPU_ZERO`/`CPU_SET`/`CPU_ISSET` stay within the set for numbers below
    // `MAX_CPUS` (the set's size in bits), which the configuration guarantees.
    let mut wanted: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_ZERO(&mut wanted) };
    for &cpu in cpus.cpus() {
        if !unsafe { libc::CPU_ISSET(cpu, &allowed) } {
            bail!(
                "cpus: CPU {cpu} is not available to this process (available: {})",
                cpus_allowed()
            );
        }
        unsafe { libc::CPU_SET(cpu, &mut wanted) };
    }
    let tasks =
        std::fs::read_dir("/proc/self/task").context("cpus: listing this process's threads")?;
    for task in tasks {
        let tid: libc::pid_t = match task?.file_name().to_str().and_then(|t| t.parse().ok()) {
            Some(t) => t,
            None => continue,
        };
        // SAFETY: `wanted` is a valid `cpu_set_t` of `size` bytes.
        if unsafe { libc::sched_setaffinity(tid, size, &wanted) } != 0 {
            let e = std::io::Error::last_os_error();
            // A thread that ended since the listing has nothing left to confine.
            if e.raw_os_error() != Some(libc::ESRCH) {
                bail!("cpus: confining thread {tid} to CPUs {cpus}: {e}");
            }
        }
    }
    Ok(())
}

/// Opens the store, applies migrations, loads keys and checks production safety. In development
/// a missing CA hierarchy is created; in production only `pki init` creates one.
pub async fn prepare(cfg: Arc<Config>) -> anyhow::Result<Services> {
    let create = cfg.mode == Mode::Development;
    prepare_with(cfg, create).await
}

pub async fn prepare_with(cfg: Arc<Config>, create_pki: bool) -> anyhow::Result<Services> {
    cfg.check_production()?;
    if cfg.database_url.is_none() {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    }
    let store = store::open(&cfg.database_url(), cfg.database_max_connections)
        .await
        .context("opening the database")?;
    store.migrate().await.context("applying migrations")?;
    let keyring = Keyring::load(&cfg).context("loading token signing keys")?;
    let (pki, created) = PkiState::open(&cfg, store.as_ref(), create_pki).await?;
    let services = Services::new(cfg.clone(), store, keyring, pki)?;
    // Contracts made before the buyers' index existed become findable in the lists.
    let indexed = crate::services::contracts::index_buyers(&services)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if indexed > 0 {
        tracing::info!(
            contracts = indexed,
            "indexed the buyers of earlier contracts"
        );
    }
    if created {
        crate::services::pki::bootstrap(&services).await?;
        eprintln!(
            "Created the CA hierarchy ({:?} key custody, kept in the database; certificates also in {}); root certificate SHA-256 fingerprint {}",
            cfg.pki.custody,
            services.pki.dir.display(),
            crate::services::pki::root_fingerprint(&services)
        );
    }
    crate::services::pki::load_units(&services).await?;
    if cfg.mode == Mode::Production {
        let demo = services.store.count_active_demo_users().await?;
        if demo > 0 {
            bail!(
                "unsafe configuration for production: accounts: {demo} demo account(s) with the development password are active; disable them first"
            );
        }
    }
    Ok(services)
}

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let services = prepare(cfg.clone()).await?;
    if cfg.mode == Mode::Development && cfg.auto_seed && services.store.count_users().await? == 0 {
        let outcome = seed::load(&services).await?;
        tracing::info!(?outcome, "loaded the development seed");
        print_demo_accounts(&cfg);
    }
    if let Some(font) = services.font.clone() {
        // Before the instance answers: otherwise its first contract (after a start, or the
        // restart of a killed instance on an opening day) takes ~0.1 s more than the others.
        let started = std::time::Instant::now();
        let warmed = tokio::task::spawn_blocking(move || {
            crate::services::documents::warm_up(&font).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match warmed {
            Ok(()) => tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "document caches warmed"
            ),
            Err(error) => tracing::warn!(
                %error,
                "warming the document caches failed; the first documents make them"
            ),
        }
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, mode = ?cfg.mode, database = services.store.backend().as_str(), "serving");
    eprintln!("Virtual Window is serving on http://{local} (API docs: http://{local}/docs)");
    tokio::spawn(crate::services::scheduler::run_forever(services.clone()));
    tokio::spawn(crate::services::notifications::run_forever(
        services.clone(),
    ));
    let router = app(AppState::new(services));
    let grace = Duration::from_secs(cfg.http.shutdown_grace_secs);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut graceful = stop_rx.clone();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|stop| *stop).await;
    });
    // In-flight requests get the grace period; after that the process exits anyway.
    let mut deadline = stop_rx;
    tokio::select! {
        res = server => res.context("server")?,
        _ = async { let _ = deadline.wait_for(|stop| *stop).await; tokio::time::sleep(grace).await } => {
            tracing::warn!("grace period over; exiting with requests still running");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

fn print_demo_accounts(cfg: &Config) {
    eprintln!(
        "Demo accounts (password `{}`): admin, yj-drafter, yj-confirmer, buyer-zhang, buyer-li, buyer-wang, rc-first, rc-second, rc-recorder — sign in at {}/docs",
        crate::config::DEV_DEMO_PASSWORD,
        cfg.public_url()
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
