//! Test support shared by the integration tests and the benchmark: fresh
//! databases on both backends.

use crate::store::Db;
use anyhow::{Context, Result};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;

/// A fresh, migrated database; the SQLite file lives as long as this value.
pub struct TestDb {
    pub db: Db,
    pub name: &'static str,
    /// The database's URL, for a child process (`WA_SMILE__DATABASE__URL`).
    pub url: String,
    target: Target,
    _dir: Option<tempfile::TempDir>,
}

/// How to reach the same database again.
enum Target {
    Sqlite(String),
    Postgres(Box<PgConnectOptions>),
}

impl TestDb {
    /// A second, independent pool onto the same database (the same file or
    /// schema), as another process would have: for concurrency tests.
    pub async fn connect_again(&self) -> Result<Db> {
        match &self.target {
            Target::Sqlite(url) => Db::connect(url, 4).await,
            Target::Postgres(opts) => Db::connect_postgres((**opts).clone(), 8).await,
        }
    }
}

/// A new SQLite database in a temporary folder.
pub async fn sqlite() -> Result<TestDb> {
    sqlite_with_busy_timeout(std::time::Duration::from_secs(30)).await
}

/// A new SQLite database whose pool gives up waiting for another
/// connection's write lock after `busy_timeout` ("database is locked").
pub async fn sqlite_with_busy_timeout(busy_timeout: std::time::Duration) -> Result<TestDb> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let db = Db::connect_with_busy_timeout(&url, 4, busy_timeout).await?;
    db.migrate().await?;
    Ok(TestDb {
        db,
        name: "sqlite",
        url: url.clone(),
        target: Target::Sqlite(url),
        _dir: Some(dir),
    })
}

/// A new PostgreSQL schema (named uniquely) in `WA_SMILE_TEST_POSTGRES_URL`,
/// or None with a printed notice when the variable is not set.
pub async fn postgres() -> Result<Option<TestDb>> {
    let Ok(url) = std::env::var("WA_SMILE_TEST_POSTGRES_URL") else {
        eprintln!("notice: WA_SMILE_TEST_POSTGRES_URL is not set; skipping the PostgreSQL run of this test");
        return Ok(None);
    };
    let schema = format!("t_{}", uuid_like());
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .context("cannot reach the test PostgreSQL")?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let opts = PgConnectOptions::from_str(&url)?
        .options([("search_path", schema.as_str())])
        .disable_statement_logging();
    let db = Db::connect_postgres(opts.clone(), 8).await?;
    db.migrate().await?;
    Ok(Some(TestDb {
        db,
        name: "postgres",
        url: format!(
            "{url}{}options[search_path]={schema}",
            if url.contains('?') { '&' } else { '?' }
        ),
        target: Target::Postgres(Box::new(opts)),
        _dir: None,
    }))
}

/// SQLite always, PostgreSQL when configured.
pub async fn all() -> Result<Vec<TestDb>> {
    let mut dbs = vec![sqlite().await?];
    dbs.extend(postgres().await?);
    Ok(dbs)
}

fn uuid_like() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{:x}{:x}", std::process::id(), n)
}
