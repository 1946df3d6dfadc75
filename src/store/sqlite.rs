//! The embedded store: one SQLite file under the data directory, in WAL mode so readers never
//! wait for the writer, with a busy timeout so concurrent writers queue instead of failing.

use super::lend::Lender;
use super::{Backend, StoreResult};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

type Db = sqlx::Sqlite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

const HAS_MIGRATIONS_TABLE: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";

/// The audit writer and its chainer, apart from the requests' connections.
const AUDIT_CONNECTIONS: u32 = 2;

pub struct SqliteStore {
    /// sqlx's pool, for the migrations.
    pool: SqlitePool,
    /// The connections requests' statements and transactions run on (store::lend).
    lend: Lender<Db>,
    audit: crate::store::AuditQueue,
}

impl SqliteStore {
    fn options(url: &str) -> StoreResult<SqliteConnectOptions> {
        Ok(SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10)))
    }

    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = Self::options(url)?;
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| super::StoreError::Database(e.into()))?;
        }
        // For the migrations only; opened now, so that a file that cannot be opened is
        // reported at start.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        // sqlx's default wait, which this store had before it lent its own connections.
        let wait = Duration::from_secs(30);
        let lend = Self::lender_with(options.clone(), max_connections, wait);
        // The audit writer and chainer have connections of their own, so that they never
        // queue behind requests that wait for their entries.
        let audit = Self::audit_writer(&Self::lender_with(options, AUDIT_CONNECTIONS, wait));
        Ok(SqliteStore { pool, lend, audit })
    }

    /// The connections requests run on: at most `max`, waited for at most `timeout`.
    pub fn lender(url: &str, max: u32, timeout: Duration) -> StoreResult<Lender<Db>> {
        Ok(Self::lender_with(Self::options(url)?, max, timeout))
    }

    fn lender_with(options: SqliteConnectOptions, max: u32, timeout: Duration) -> Lender<Db> {
        Lender::new(
            max,
            timeout,
            // A file has no server that could have hung up while the connection was idle.
            None,
            // Every transaction starts IMMEDIATE: it takes the write lock at its start,
            // waiting under the busy timeout. A deferred transaction that reads and then
            // writes fails at once (SQLITE_BUSY, no waiting) when another connection wrote in
            // between — which the audit chainer, writing in the background, makes likely.
            "BEGIN IMMEDIATE",
            Box::new(move || {
                let options = options.clone();
                Box::pin(async move { sqlx::ConnectOptions::connect(&options).await })
            }),
        )
    }

    /// The migration files this build embeds, for the test that compares the two databases.
    pub fn migrations() -> Vec<(i64, String)> {
        MIGRATOR
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }
}

super::cases::impl_case_store!(SqliteStore);
super::people::impl_people_store!(SqliteStore);
super::sql::impl_audit_batch!(SqliteStore, false);
super::sql::impl_store!(SqliteStore, Backend::Sqlite);
