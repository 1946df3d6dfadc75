//! The PostgreSQL store, for production and for several service instances sharing one database.
//! Every invariant that must hold across instances is a constraint or a row lock in the database.

use super::{Backend, StoreResult};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

type Db = sqlx::Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const HAS_MIGRATIONS_TABLE: &str = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'";

/// How long a connection may sit idle in the pool and still be lent without a ping.
const IDLE_PING: Duration = Duration::from_secs(1);

pub struct PgStore {
    pool: PgPool,
    audit: crate::store::AuditQueue,
}

impl PgStore {
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every connection before lending it (and again when it comes back): a
            // round trip to the server per checkout, about one per statement. A connection used
            // within the last second is lent without it; one idle longer (perhaps to a
            // primary that has since failed over) is still pinged, and so is every one for
            // half a minute after this process found the database unreachable (connections
            // that broke while idle in the pool are then replaced, not lent). A connection
            // that breaks while busy fails its statement (503, retried by the client) and is
            // closed when its release ping fails.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_PING || crate::store::recent_trouble() {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        // The audit writer and chainer have their own connections: requests that wait for their
        // entry may hold the shared pool's connections, and the writer must not queue behind
        // them (nor behind the chainer).
        let writer = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy(url)?;
        let audit = Self::audit_writer(&writer);
        Ok(PgStore { pool, audit })
    }

    pub(crate) async fn begin(
        pool: &PgPool,
    ) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        pool.begin().await
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
super::sql::impl_audit_batch!(PgStore, sqlx::PgPool, true);
super::sql::impl_store!(PgStore, Backend::Postgres);
