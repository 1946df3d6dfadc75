//! Lending the store's connections: a bounded set of open connections, handed to one statement
//! or one transaction at a time, the most recently returned first.
//!
//! Why not sqlx's pool: it pings every connection it takes back, unconditionally (a round trip
//! to SQLite's worker thread, or to the PostgreSQL server), and returns it from a task of its
//! own; with a checkout per statement that cost about as much as the statements themselves —
//! a buyer's chapter request (two statements) took 0.33 CPU-ms through the pool and 0.11 over a
//! held connection (docs/BENCHMARKS.md). The ping is sqlx's band-aid for a connection whose
//! statement was cancelled half-way or that broke; here a connection is checked only when that
//! may have happened:
//! - a statement that completed (with rows or with the database's refusal) leaves it clean;
//! - a statement or transaction cancelled half-way (the request's future dropped) leaves it
//!   unsure: pinged before it is lent again, or a transaction left open rolled back;
//! - an error that means the connection itself failed (I/O, protocol, TLS, a crashed worker,
//!   PostgreSQL ending the session) closes it;
//! - on PostgreSQL, a connection idle for more than a second, and every one for half a minute
//!   after this process found the database unreachable (`store::recent_trouble`), is pinged
//!   before it is lent, as the pool did before: connections that broke while idle (a primary
//!   failed over) are replaced, not lent.
//!
//! Waiting for a connection is bounded (`sqlx::Error::PoolTimedOut`, answered 503 with
//! `Retry-After`), and so is opening one.

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use sqlx::{Connection, Database, Either, Execute, Executor};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Opens one new connection.
pub type Open<DB> =
    Box<dyn Fn() -> BoxFuture<'static, sqlx::Result<<DB as Database>::Connection>> + Send + Sync>;

/// What is known of a connection when it comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Its last statement or transaction ran to the end.
    Clean,
    /// Lent and not seen to the end: a statement may have been cancelled half-way.
    Unsure,
    /// A transaction was begun on it and neither committed nor rolled back.
    InTransaction,
    /// It failed itself: closed, never lent again.
    Broken,
}

struct Idle<DB: Database> {
    conn: DB::Connection,
    since: Instant,
    state: State,
}

struct Inner<DB: Database> {
    idle: Mutex<Vec<Idle<DB>>>,
    slots: Arc<Semaphore>,
    open: Open<DB>,
    timeout: Duration,
    /// PostgreSQL: ping a connection idle longer than this before lending it.
    ping_idle: Option<Duration>,
    /// The statement that begins a transaction (`BEGIN IMMEDIATE` on SQLite: see sqlite.rs).
    begin: &'static str,
}

/// A bounded set of connections to one database.
pub struct Lender<DB: Database> {
    inner: Arc<Inner<DB>>,
}

impl<DB: Database> Clone for Lender<DB> {
    fn clone(&self) -> Self {
        Lender {
            inner: self.inner.clone(),
        }
    }
}

impl<DB: Database> std::fmt::Debug for Lender<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lender")
            .field("free", &self.inner.slots.available_permits())
            .finish()
    }
}

/// Whether an error means the connection itself is no longer usable (as opposed to the
/// database refusing a statement, after which the connection is fine).
fn breaks_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: 08 connection exception; 57P01–57P03 the server ending this session
        // (shut down, crashed, or not yet taking connections).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

impl<DB: Database> Lender<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// At most `max` connections, opened when first needed by `open`; a caller waits at most
    /// `timeout` for one.
    pub fn new(
        max: u32,
        timeout: Duration,
        ping_idle: Option<Duration>,
        begin: &'static str,
        open: Open<DB>,
    ) -> Self {
        Lender {
            inner: Arc::new(Inner {
                idle: Mutex::new(Vec::new()),
                slots: Arc::new(Semaphore::new(max.max(1) as usize)),
                open,
                timeout,
                ping_idle,
                begin,
            }),
        }
    }

    /// One connection, for one statement or one transaction; it goes back when dropped.
    pub async fn get(&self) -> sqlx::Result<Lent<DB>> {
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        let permit = tokio::time::timeout_at(deadline, self.inner.slots.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let next = self.inner.idle.lock().ok().and_then(|mut v| v.pop());
            let Some(mut idle) = next else {
                let conn = tokio::time::timeout_at(deadline, (self.inner.open)())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??;
                return Ok(self.lent(conn, permit));
            };
            // The check is bounded by the same deadline: a server that stopped answering
            // is not waited for.
            let check = async {
                match idle.state {
                    State::InTransaction => {
                        // A transaction left open (a request cancelled or failed half-way):
                        // its changes are undone. SQLite refuses a ROLLBACK with no
                        // transaction open (a COMMIT that went through before the
                        // cancellation): that refusal is fine, a broken connection is not.
                        match (&mut idle.conn).execute("ROLLBACK").await {
                            Ok(_) => true,
                            Err(e) => !breaks_connection(&e),
                        }
                    }
                    State::Unsure => idle.conn.ping().await.is_ok(),
                    State::Clean => {
                        let check = self.inner.ping_idle.is_some_and(|after| {
                            idle.since.elapsed() > after || crate::store::recent_trouble()
                        });
                        !check || idle.conn.ping().await.is_ok()
                    }
                    State::Broken => false,
                }
            };
            let usable = tokio::time::timeout_at(deadline, check)
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?;
            if usable {
                return Ok(self.lent(idle.conn, permit));
            }
            // Dropped: the connection is closed (its socket or worker thread goes with it)
            // and another is tried, or opened.
        }
    }

    fn lent(&self, conn: DB::Connection, permit: OwnedSemaphorePermit) -> Lent<DB> {
        Lent {
            conn: Some(conn),
            state: State::Unsure,
            inner: self.inner.clone(),
            _permit: permit,
        }
    }

    /// A transaction on one connection: committed by `commit`, rolled back by `rollback` or,
    /// if dropped, before the connection is lent again.
    pub async fn begin(&self) -> sqlx::Result<Tx<DB>> {
        let mut lent = self.get().await?;
        // Marked first: a BEGIN cancelled half-way may still have begun the transaction.
        lent.state = State::InTransaction;
        let r = lent.conn_mut().execute(self.inner.begin).await;
        if let Err(e) = &r
            && breaks_connection(e)
        {
            lent.state = State::Broken;
        }
        r?;
        Ok(Tx { lent })
    }
}

/// A connection on loan.
pub struct Lent<DB: Database> {
    conn: Option<DB::Connection>,
    state: State,
    inner: Arc<Inner<DB>>,
    _permit: OwnedSemaphorePermit,
}

impl<DB: Database> Lent<DB> {
    fn conn_mut(&mut self) -> &mut DB::Connection {
        self.conn.as_mut().expect("a lent connection")
    }

    /// What a finished statement's outcome says of the connection: fine after rows or the
    /// database's refusal, closed after a failure of the connection itself.
    fn settle<T>(&mut self, outcome: &sqlx::Result<T>) {
        self.state = match outcome {
            Err(e) if breaks_connection(e) => State::Broken,
            _ => State::Clean,
        };
    }
}

impl<DB: Database> std::ops::Deref for Lent<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        self.conn.as_ref().expect("a lent connection")
    }
}

impl<DB: Database> std::ops::DerefMut for Lent<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        self.conn_mut()
    }
}

impl<DB: Database> Drop for Lent<DB> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.state == State::Broken {
            return;
        }
        if let Ok(mut idle) = self.inner.idle.lock() {
            idle.push(Idle {
                conn,
                since: Instant::now(),
                state: self.state,
            });
        }
    }
}

/// A transaction on a lent connection. Statements run on `&mut *tx`.
pub struct Tx<DB: Database> {
    lent: Lent<DB>,
}

impl<DB: Database> Tx<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    async fn end(mut self, statement: &'static str) -> sqlx::Result<()> {
        let r = self.lent.conn_mut().execute(statement).await.map(|_| ());
        self.lent.state = match &r {
            Ok(()) => State::Clean,
            Err(e) if breaks_connection(e) => State::Broken,
            // Still open (a COMMIT refused, say): rolled back before the next loan.
            Err(_) => State::InTransaction,
        };
        r
    }

    pub async fn commit(self) -> sqlx::Result<()> {
        self.end("COMMIT").await
    }

    pub async fn rollback(self) -> sqlx::Result<()> {
        self.end("ROLLBACK").await
    }
}

impl<DB: Database> std::ops::Deref for Tx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.lent
    }
}

impl<DB: Database> std::ops::DerefMut for Tx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.lent
    }
}

/// Statements outside a transaction run on `&lender` as on `&pool`: each on a connection of
/// its own loan.
impl<'p, DB> Executor<'p> for &'p Lender<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, sqlx::Result<Either<DB::QueryResult, DB::Row>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        // Collected before they are handed on: the stream cannot own the loan and borrow it.
        // The store's queries return a handful of rows.
        let all = async move {
            let mut lent = self.get().await?;
            let r: sqlx::Result<Vec<_>> = lent.conn_mut().fetch_many(query).try_collect().await;
            lent.settle(&r);
            r
        };
        all.map(|r| match r {
            Ok(items) => futures_util::stream::iter(items.into_iter().map(Ok)).left_stream(),
            Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
        })
        .flatten_stream()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, sqlx::Result<Option<DB::Row>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        async move {
            let mut lent = self.get().await?;
            let r = lent.conn_mut().fetch_optional(query).await;
            lent.settle(&r);
            r
        }
        .boxed()
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<DB::Statement>>
    where
        'p: 'e,
    {
        async move {
            let mut lent = self.get().await?;
            let r = lent.conn_mut().prepare_with(sql, parameters).await;
            lent.settle(&r);
            r
        }
        .boxed()
    }

    fn describe<'e>(self, sql: sqlx::SqlStr) -> BoxFuture<'e, sqlx::Result<sqlx::Describe<DB>>>
    where
        'p: 'e,
    {
        async move {
            let mut lent = self.get().await?;
            let r = lent.conn_mut().describe(sql).await;
            lent.settle(&r);
            r
        }
        .boxed()
    }
}
