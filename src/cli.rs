//! The command line: `serve` (the default), `migrate`, `seed`, and `audit verify`. Later rooms add
//! `demo`, `verify`, `pki` and `render` here.

use crate::config::{Config, Overrides};
use crate::server;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
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
    server::init_logging(&cfg);
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
