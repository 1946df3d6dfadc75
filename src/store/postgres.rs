//! The PostgreSQL store, for production and for several service instances sharing one database.
//! Every invariant that must hold across instances is a constraint or a row lock in the database.

use super::lend::Lender;
use super::{Backend, StoreResult};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

type Db = sqlx::Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const HAS_MIGRATIONS_TABLE: &str = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'";

/// How long a connection may sit idle in the pool and still be lent without a ping.
const IDLE_PING: Duration = Duration::from_secs(1);

pub struct PgStore {
    /// sqlx's pool, for the migrations.
    pool: PgPool,
    /// The connections requests' statements and transactions run on (store::lend).
    lend: Lender<Db>,
    audit: crate::store::AuditQueue,
}

impl PgStore {
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        // Connected now, so that an unreachable database is reported at start.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        // The audit writer and chainer have their own connections: requests that wait for their
        // entry may hold the shared connections, and the writer must not queue behind them
        // (nor behind the chainer).
        let writer = Self::lender_with(options.clone(), 2, Duration::from_secs(10));
        // A connection used within the last second is lent without a ping; one idle longer
        // (perhaps to a primary that has since failed over) is pinged first, and so is every
        // one for half a minute after this process found the database unreachable
        // (connections that broke while idle are then replaced, not lent). A connection that
        // breaks while busy fails its statement (503, retried by the client) and is closed.
        let lend = Self::lender_with(options, max_connections, Duration::from_secs(10));
        let audit = Self::audit_writer(&writer);
        Ok(PgStore { pool, lend, audit })
    }

    /// The connections requests run on: at most `max`, waited for at most `timeout`.
    pub fn lender(url: &str, max: u32, timeout: Duration) -> StoreResult<Lender<Db>> {
        Ok(Self::lender_with(
            PgConnectOptions::from_str(url)?,
            max,
            timeout,
        ))
    }

    fn lender_with(options: PgConnectOptions, max: u32, timeout: Duration) -> Lender<Db> {
        Lender::new(
            max,
            timeout,
            Some(IDLE_PING),
            "BEGIN",
            Box::new(move || {
                let options = options.clone();
                Box::pin(async move { sqlx::ConnectOptions::connect(&options).await })
            }),
        )
    }

    pub fn migrations() -> Vec<(i64, String)> {
        MIGRATOR
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }
}

super::cases::impl_case_store!(PgStore);
super::people::impl_people_store!(PgStore);
super::sql::impl_audit_batch!(PgStore, true);
super::sql::impl_store!(PgStore, Backend::Postgres);
