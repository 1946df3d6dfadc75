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

/// The audit writer, its chainer and the migrations: sqlx's pool, apart from the requests'.
const AUDIT_CONNECTIONS: u32 = 3;

pub struct SqliteStore {
    /// sqlx's pool, for the migrations and the audit writer (store::AuditQueue).
    pool: SqlitePool,
    /// The connections requests' statements and transactions run on (store::lend).
    lend: super::lend::Lender<Db>,
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
        let pool = SqlitePoolOptions::new()
            .max_connections(AUDIT_CONNECTIONS)
            // The pool pings a connection before lending it by default, to find one whose
            // server hung up; a file has no server, and each ping is a round trip to the
            // connection's worker thread (two thread switches).
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        // sqlx's default wait, which this store had before it lent its own connections.
        let lend = Self::lender_with(options, max_connections, Duration::from_secs(30));
        let audit = Self::audit_writer(&pool);
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
            "BEGIN IMMEDIATE",
            Box::new(move || {
                let options = options.clone();
                Box::pin(async move { sqlx::ConnectOptions::connect(&options).await })
            }),
        )
    }

    /// Every transaction that writes starts IMMEDIATE (the audit writer's here; the requests'
    /// through `Lender::begin`): it takes the write lock at its start,
    /// waiting under the busy timeout. A deferred transaction that reads and then writes fails
    /// at once (SQLITE_BUSY, no waiting) when another connection wrote in between — which the
    /// audit chainer, writing in the background, makes likely.
    pub(crate) async fn begin(
        pool: &SqlitePool,
    ) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        pool.begin_with("BEGIN IMMEDIATE").await
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
super::sql::impl_audit_batch!(SqliteStore, sqlx::SqlitePool, false);
super::sql::impl_store!(SqliteStore, Backend::Sqlite);
