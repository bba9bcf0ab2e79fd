//! One SQL text, two native backends. A `Query` is built against the backend
//! of the pool or transaction it will run on, binds values that both sqlx
//! drivers can encode (chrono dates and times stay native: `DATE` and
//! `TIMESTAMPTZ` on PostgreSQL, ISO text on SQLite), and returns `Row`s that
//! decode either way. Placeholders are `$1, $2…`, which both accept.

use super::error::{StoreError, StoreResult};
use anyhow::{Context, Result};
use futures::stream::{BoxStream, StreamExt};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous, SqliteTransactionManager,
};
use sqlx::{ConnectOptions, PgPool, Postgres, Row as _, Sqlite, SqlitePool, TransactionManager};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How long a statement waits for SQLite's writer before "database is locked".
const SQLITE_BUSY_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool on either backend.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// How long an SQLite write transaction waits for the writer.
    busy_wait: Duration,
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`); an SQLite file
    /// and its folder are created if missing, in WAL mode.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db> {
        Self::connect_with_busy_timeout(url, max_connections, SQLITE_BUSY_WAIT).await
    }

    /// [`Db::connect`] with SQLite's busy timeout (how long a statement
    /// waits for another connection's write lock) set; tests shorten it.
    pub async fn connect_with_busy_timeout(
        url: &str,
        max_connections: u32,
        busy_timeout: Duration,
    ) -> Result<Db> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .with_context(|| "invalid SQLite URL".to_string())?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                // SQLite's default page cache is 2 MiB: the scan's and the
                // import's writes to the case list's indexes then re-read
                // their pages from the file on every range. 32 MiB per
                // connection holds a range's index pages; statement
                // journals (multi-row statements inside a transaction) stay
                // in memory instead of temp files.
                .pragma("cache_size", "-32768")
                .pragma("temp_store", "MEMORY")
                .busy_timeout(busy_timeout)
                .disable_statement_logging();
            if let Some(parent) = opts.get_filename().parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).with_context(|| {
                        format!("cannot create the database folder {}", parent.display())
                    })?;
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .connect_with(opts)
                .await
                .context("cannot open the SQLite database")?;
            Ok(Db {
                pool: Pool::Sqlite(pool),
                busy_wait: busy_timeout,
            })
        } else {
            let opts = PgConnectOptions::from_str(url)
                .context("invalid PostgreSQL URL")?
                .disable_statement_logging();
            Self::connect_postgres(opts, max_connections).await
        }
    }

    pub async fn connect_postgres(opts: PgConnectOptions, max_connections: u32) -> Result<Db> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .context("cannot connect to PostgreSQL")?;
        Ok(Db {
            pool: Pool::Postgres(pool),
            busy_wait: SQLITE_BUSY_WAIT,
        })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the backend's embedded migrations.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await,
            Pool::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await,
        }
        .context("failed to apply database migrations")
    }

    /// A write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so a read-then-write never fails on a lock upgrade.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(SqliteTx::begin(p, self.busy_wait).await?),
            Pool::Postgres(p) => {
                TxInner::Postgres(p.begin().await.context("failed to begin a transaction")?)
            }
        };
        Ok(Tx {
            inner,
            audit: Vec::new(),
        })
    }

    pub fn query<'q>(&self, sql: &'q str) -> Query<'q> {
        Query::new(self.backend(), sql)
    }

    pub async fn ping(&self) -> bool {
        self.query("SELECT 1").execute(self).await.is_ok()
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    pub(crate) fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }
}

/// A write transaction. State changes push their audit entries here; the
/// chain is appended at commit, last, so the one lock that serialises the
/// audit chain is held only for the final statements of a transaction.
pub struct Tx {
    inner: TxInner,
    pub(crate) audit: Vec<crate::audit::AuditEntry>,
}

enum TxInner {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// An SQLite transaction that waits for the writer by polling every few
/// milliseconds. SQLite's own busy handler backs off to one try per 100 ms,
/// so a writer waiting behind a stream of short transactions (an import's
/// batches, from another process) would almost never find the lock free in
/// the moment between two of them; polling finds those moments.
struct SqliteTx {
    conn: sqlx::pool::PoolConnection<Sqlite>,
    open: bool,
}

impl SqliteTx {
    async fn begin(pool: &SqlitePool, busy_wait: Duration) -> Result<SqliteTx> {
        let mut conn = pool
            .acquire()
            .await
            .context("failed to begin a transaction")?;
        // The busy handler is off only for the BEGIN itself: statements run
        // outside a transaction keep waiting the usual way.
        let begin = format!(
            "PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; PRAGMA busy_timeout = {}",
            busy_wait.as_millis()
        );
        let deadline = Instant::now() + busy_wait;
        let mut pause = Duration::from_millis(1);
        loop {
            match SqliteTransactionManager::begin(&mut conn, Some(begin.clone().into())).await {
                Ok(()) => return Ok(SqliteTx { conn, open: true }),
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(4));
                }
                Err(e) => {
                    let restore = format!("PRAGMA busy_timeout = {}", busy_wait.as_millis());
                    let _ = sqlx::query(&restore).execute(&mut *conn).await;
                    return Err(anyhow::Error::new(e).context("failed to begin a transaction"));
                }
            }
        }
    }

    async fn commit(mut self) -> Result<(), sqlx::Error> {
        SqliteTransactionManager::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }

    async fn rollback(mut self) -> Result<(), sqlx::Error> {
        SqliteTransactionManager::rollback(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for SqliteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl Drop for SqliteTx {
    /// Like sqlx's own transactions: an unfinished one is rolled back
    /// before its connection serves anyone else.
    fn drop(&mut self) {
        if self.open {
            SqliteTransactionManager::start_rollback(&mut self.conn);
        }
    }
}

/// SQLITE_BUSY and its extended codes (the writer is taken).
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| c & 0xff == 5),
        _ => false,
    }
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn query<'q>(&self, sql: &'q str) -> Query<'q> {
        Query::new(self.backend(), sql)
    }

    /// Runs `sql` once per chunk of `rows`, its `{values}` replaced by the
    /// chunk's `($1,…),(…)` of `cols` placeholders a row (sized by
    /// [`rows_per_statement`]); `bind` binds one row's values in column
    /// order. Rows affected, all chunks together.
    pub async fn execute_chunked<R>(
        &mut self,
        sql: &str,
        cols: usize,
        rows: &[R],
        bind: impl for<'q, 'r> Fn(Query<'q>, &'r R) -> Query<'q>,
    ) -> StoreResult<u64> {
        let mut n = 0;
        for chunk in rows.chunks(rows_per_statement(self.backend(), cols)) {
            let sql = sql.replace("{values}", &values_placeholders(chunk.len(), cols, 1));
            let mut q = self.query(&sql);
            for r in chunk {
                q = bind(q, r);
            }
            n += q.execute(&mut *self).await?;
        }
        Ok(n)
    }

    /// Records an audit entry to be chained when this transaction commits.
    pub fn audit(&mut self, entry: crate::audit::AuditEntry) {
        self.audit.push(entry);
    }

    /// Appends the pending audit entries to the hash chain, then commits.
    pub async fn commit(mut self) -> Result<()> {
        let entries = std::mem::take(&mut self.audit);
        crate::audit::append(&mut self, entries).await?;
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        }
        .context("failed to commit")
    }

    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await,
            TxInner::Postgres(t) => t.rollback().await,
        }
        .context("failed to roll back")
    }
}

/// Where a query runs: the pool or an open transaction.
pub enum Conn<'a> {
    Db(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> From<&'a Db> for Conn<'a> {
    fn from(db: &'a Db) -> Self {
        Conn::Db(db)
    }
}

impl<'a> From<&'a mut Tx> for Conn<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Conn::Tx(tx)
    }
}

/// A value both drivers encode natively.
pub trait Param<'q>:
    sqlx::Encode<'q, Sqlite>
    + sqlx::Type<Sqlite>
    + sqlx::Encode<'q, Postgres>
    + sqlx::Type<Postgres>
    + Send
    + 'q
{
}
impl<'q, T> Param<'q> for T where
    T: sqlx::Encode<'q, Sqlite>
        + sqlx::Type<Sqlite>
        + sqlx::Encode<'q, Postgres>
        + sqlx::Type<Postgres>
        + Send
        + 'q
{
}

/// A value both drivers decode natively.
pub trait Column:
    for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
{
}
impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

pub enum Query<'q> {
    Sqlite(sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>),
    Postgres(sqlx::query::Query<'q, Postgres, PgArguments>),
}

macro_rules! dispatch {
    ($query:expr, $conn:expr, |$q:ident, $ex:ident| $body:expr) => {
        match ($query, $conn) {
            (
                Query::Sqlite($q),
                Conn::Db(Db {
                    pool: Pool::Sqlite($ex),
                    ..
                }),
            ) => $body,
            (
                Query::Sqlite($q),
                Conn::Tx(Tx {
                    inner: TxInner::Sqlite(t),
                    ..
                }),
            ) => {
                let $ex = &mut **t;
                $body
            }
            (
                Query::Postgres($q),
                Conn::Db(Db {
                    pool: Pool::Postgres($ex),
                    ..
                }),
            ) => $body,
            (
                Query::Postgres($q),
                Conn::Tx(Tx {
                    inner: TxInner::Postgres(t),
                    ..
                }),
            ) => {
                let $ex = &mut **t;
                $body
            }
            _ => return Err(StoreError::WrongBackend),
        }
    };
}

impl<'q> Query<'q> {
    pub fn new(backend: Backend, sql: &'q str) -> Self {
        match backend {
            Backend::Sqlite => Query::Sqlite(sqlx::query(sql)),
            Backend::Postgres => Query::Postgres(sqlx::query(sql)),
        }
    }

    pub fn bind<T: Param<'q>>(self, value: T) -> Self {
        match self {
            Query::Sqlite(q) => Query::Sqlite(q.bind(value)),
            Query::Postgres(q) => Query::Postgres(q.bind(value)),
        }
    }

    /// Rows affected. A unique-key violation is [`StoreError::Conflict`].
    pub async fn execute<'c>(self, conn: impl Into<Conn<'c>>) -> StoreResult<u64> {
        Ok(dispatch!(self, conn.into(), |q, ex| q
            .execute(ex)
            .await?
            .rows_affected()))
    }

    pub async fn fetch_all<'c>(self, conn: impl Into<Conn<'c>>) -> StoreResult<Vec<Row>> {
        Ok(dispatch!(self, conn.into(), |q, ex| q
            .fetch_all(ex)
            .await?
            .into_iter()
            .map(Row::from)
            .collect()))
    }

    pub async fn fetch_optional<'c>(self, conn: impl Into<Conn<'c>>) -> StoreResult<Option<Row>> {
        Ok(dispatch!(self, conn.into(), |q, ex| q
            .fetch_optional(ex)
            .await?
            .map(Row::from)))
    }

    /// Exactly one row; none is [`StoreError::NotFound`].
    pub async fn fetch_one<'c>(self, conn: impl Into<Conn<'c>>) -> StoreResult<Row> {
        Ok(dispatch!(self, conn.into(), |q, ex| Row::from(
            q.fetch_one(ex).await?
        )))
    }

    /// Every row, each decoded into its row struct.
    pub async fn fetch_all_as<'c, T: Record>(
        self,
        conn: impl Into<Conn<'c>>,
    ) -> StoreResult<Vec<T>> {
        self.fetch_all(conn)
            .await?
            .iter()
            .map(Row::decode)
            .collect()
    }

    pub async fn fetch_optional_as<'c, T: Record>(
        self,
        conn: impl Into<Conn<'c>>,
    ) -> StoreResult<Option<T>> {
        self.fetch_optional(conn)
            .await?
            .as_ref()
            .map(Row::decode)
            .transpose()
    }

    pub async fn fetch_one_as<'c, T: Record>(self, conn: impl Into<Conn<'c>>) -> StoreResult<T> {
        self.fetch_one(conn).await?.decode()
    }

    /// The first column of exactly one row (`SELECT count(*) …`).
    pub async fn fetch_scalar<'c, T: Column>(self, conn: impl Into<Conn<'c>>) -> StoreResult<T> {
        self.fetch_one(conn).await?.first()
    }

    /// The first column of the row, if there is one.
    pub async fn fetch_optional_scalar<'c, T: Column>(
        self,
        conn: impl Into<Conn<'c>>,
    ) -> StoreResult<Option<T>> {
        self.fetch_optional(conn)
            .await?
            .as_ref()
            .map(Row::first)
            .transpose()
    }

    /// Rows one at a time, for results too large to hold (exports, audit
    /// verification). Runs on the pool, outside any transaction.
    pub fn fetch<'a>(self, db: &'a Db) -> BoxStream<'a, StoreResult<Row>>
    where
        'q: 'a,
    {
        match (self, &db.pool) {
            (Query::Sqlite(q), Pool::Sqlite(p)) => q
                .fetch(p)
                .map(|r| r.map(Row::Sqlite).map_err(Into::into))
                .boxed(),
            (Query::Postgres(q), Pool::Postgres(p)) => q
                .fetch(p)
                .map(|r| r.map(Row::Postgres).map_err(Into::into))
                .boxed(),
            _ => futures::stream::once(async { Err(StoreError::WrongBackend) }).boxed(),
        }
    }

    /// [`Query::fetch`], each row decoded into its row struct.
    pub fn fetch_as<'a, T: Record + 'a>(self, db: &'a Db) -> BoxStream<'a, StoreResult<T>>
    where
        'q: 'a,
    {
        self.fetch(db)
            .map(|r| r.and_then(|row| row.decode()))
            .boxed()
    }
}

impl From<SqliteRow> for Row {
    fn from(r: SqliteRow) -> Self {
        Row::Sqlite(r)
    }
}

impl From<PgRow> for Row {
    fn from(r: PgRow) -> Self {
        Row::Postgres(r)
    }
}

/// A result row from either backend.
pub enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

/// A row struct: `#[derive(sqlx::FromRow)]` on a struct whose fields are
/// [`Column`]s gives it for both backends.
pub trait Record:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Record for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

impl Row {
    /// The row as its row struct.
    pub fn decode<T: Record>(&self) -> StoreResult<T> {
        match self {
            Row::Sqlite(r) => T::from_row(r),
            Row::Postgres(r) => T::from_row(r),
        }
        .map_err(StoreError::from)
    }

    /// The first column.
    pub fn first<T: Column>(&self) -> StoreResult<T> {
        match self {
            Row::Sqlite(r) => r.try_get(0),
            Row::Postgres(r) => r.try_get(0),
        }
        .map_err(StoreError::from)
    }

    /// One column by name, for the integration tests' checks of what was
    /// stored. The library decodes a [`Record`] or uses
    /// [`Query::fetch_scalar`] instead (`clippy.toml` forbids this there).
    pub fn get<T: Column>(&self, column: &str) -> Result<T> {
        match self {
            Row::Sqlite(r) => r.try_get(column),
            Row::Postgres(r) => r.try_get(column),
        }
        .with_context(|| format!("failed to read column `{column}`"))
    }
}

/// `($1,$2,$3),($4,$5,$6)…` for a multi-row insert of `rows` rows of `cols`
/// columns, numbering from `$first`.
pub fn values_placeholders(rows: usize, cols: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&n.to_string());
            n += 1;
        }
        s.push(')');
    }
    s
}

/// How many rows of `cols` columns one multi-row statement should carry.
/// SQLite looks up each `$N` parameter's name with a linear scan (sqlx binds
/// by name), so binding is quadratic in the parameters of one statement: a
/// few hundred per statement keeps that negligible. PostgreSQL has no such
/// cost and gains from fewer round trips, up to its 65,535-parameter limit.
pub fn rows_per_statement(backend: Backend, cols: usize) -> usize {
    let params = match backend {
        Backend::Sqlite => 200,
        Backend::Postgres => 30_000,
    };
    (params / cols.max(1)).clamp(1, 1_000)
}

/// `$first,$first+1,…` for an `IN (…)` list of `n` values.
pub fn list_placeholders(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}
