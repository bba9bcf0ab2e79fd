//! Benchmarks: `cargo run --release --bin wa-smile-bench -- scale` (import
//! and scan at scale), `-- throughput` (the delivery worker against the
//! built-in simulator), `-- webhooks` (signed status webhooks over HTTP) and
//! `-- export` (1M audit rows to CSV in a child process; time and peak RSS).
//!
//! `scale` generates employers and bills (a share of them overdue), imports them
//! through the real CSV import, then runs the overdue scan twice — each scan
//! in a child process, so the peak RSS reported is the scan's own. Runs on
//! SQLite, and on PostgreSQL when `--postgres URL` is given (a database
//! named `wa_smile_bench` is dropped and recreated there).
//!
//! `timeline` and `live` (the case page's conversation and its poll) are
//! described in `benches/timeline.rs`.
//! `webhooks` is described in `benches/webhooks.rs`, `import-load` in
//! `benches/import_load.rs`, `export-load` in `benches/export_load.rs`.
//! `caselist` seeds the same way (200,000 employers by default), then times
//! the admin case list's queries — each filter and sort an officer uses —
//! against the 100 ms per page budget:
//! `cargo run --release --bin wa-smile-bench -- caselist`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wa_smile::config::Config;
use wa_smile::demo::{self, Synthetic};
use wa_smile::import::{import_csv, ImportContext, Kind, Options};
use wa_smile::scan::{self, ScanContext};
use wa_smile::store::Db;

mod export_load;
mod import_load;
mod throughput;
mod timeline;
mod webhooks;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate, import and scan at scale on SQLite (and PostgreSQL).
    Scale {
        #[arg(long, default_value_t = 200_000)]
        employers: usize,
        #[arg(long, default_value_t = 5)]
        bills_per_employer: usize,
        /// Percent of bills that are overdue at scan time.
        #[arg(long, default_value_t = 30)]
        overdue: u32,
        /// Also run on PostgreSQL (server URL; a bench database is created).
        #[arg(long)]
        postgres: Option<String>,
        /// Where to keep the generated files and the SQLite database.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Import only: skip the two scans.
        #[arg(long)]
        import_only: bool,
    },
    /// Delivery throughput against the built-in WhatsApp simulator.
    Throughput {
        /// Queued messages for the sustained-rate run.
        #[arg(long, default_value_t = 50_000)]
        messages: usize,
        /// Messages for the 80/s pacing check.
        #[arg(long, default_value_t = 800)]
        paced_messages: usize,
        /// The simulator's answer latency.
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
        /// Also run on PostgreSQL (server URL; a bench database is created).
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Signed status webhooks over loopback HTTP: throughput, then latency at a fixed rate.
    Webhooks {
        /// Status webhooks for the throughput phase.
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        /// Concurrent keep-alive connections in the throughput phase.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Requests a second in the latency phase.
        #[arg(long, default_value_t = 1_000)]
        rate: u32,
        /// Length of the latency phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Also run on PostgreSQL (server URL; a bench database is created).
        #[arg(long)]
        postgres: Option<String>,
    },
    /// One case with 5,000 events: its case page's first page, timed.
    Timeline {
        #[arg(long, default_value_t = 5_000)]
        events: usize,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// 50 open case pages, then 50 open case lists, polling for changes at
    /// once, timed.
    Live {
        #[arg(long, default_value_t = 50)]
        pages: usize,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
    /// Seed at scale, scan, then time the case list's queries.
    Caselist {
        #[arg(long, default_value_t = 200_000)]
        employers: usize,
        #[arg(long, default_value_t = 5)]
        bills_per_employer: usize,
        #[arg(long, default_value_t = 30)]
        overdue: u32,
        /// Also run on PostgreSQL (server URL; a bench database is created).
        #[arg(long)]
        postgres: Option<String>,
        /// Where to keep the generated files and the SQLite database.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Reuse the database already seeded in `--dir` (SQLite only).
        #[arg(long)]
        reuse: bool,
        /// Timed runs per query (the median and the worst are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// A bills import (1.5M by default) while `wa-smile serve` delivers
    /// reminders and receives status webhooks: import time against the
    /// same import alone, webhook latency, messages sent twice.
    ImportLoad {
        #[arg(long, default_value_t = 300_000)]
        employers: usize,
        #[arg(long, default_value_t = 5)]
        bills_per_employer: usize,
        /// Reminders `serve` delivers during the import.
        #[arg(long, default_value_t = 2_000)]
        messages: usize,
        /// Signed status webhooks a second during the import.
        #[arg(long, default_value_t = 1_000)]
        webhook_rate: u32,
        /// Also run on PostgreSQL (server URL; a bench database is created).
        #[arg(long)]
        postgres: Option<String>,
        /// Where to keep the generated files, the SQLite database and serve's logs.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A whole-trail audit CSV export started from `/exports` on `wa-smile
    /// serve` while an officer browses the case list: export time against
    /// `sqlite3 -csv` (or `psql \copy`) reading the same rows, case list
    /// p50/p99/max during the export.
    ExportLoad {
        #[arg(long, default_value_t = 200_000)]
        employers: usize,
        #[arg(long, default_value_t = 5)]
        bills_per_employer: usize,
        #[arg(long, default_value_t = 30)]
        overdue: u32,
        /// Also run on PostgreSQL (server URL; a bench database is created).
        #[arg(long)]
        postgres: Option<String>,
        /// Where to keep the generated files, the SQLite database, serve's
        /// logs and the exports.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Reuse the database a previous run seeded (in `--dir`, and
        /// `wa_smile_export_load` on PostgreSQL).
        #[arg(long)]
        reuse: bool,
        /// Officer browsing loops during the export.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Signed status webhooks a second during the export (0: none).
        #[arg(long, default_value_t = 20)]
        webhook_rate: u32,
    },
    /// (internal) run one scan and print its figures as JSON.
    ScanChild {
        url: String,
        at: String,
    },
    PlainChild {
        scanned: String,
        copy: String,
    },
    /// Seed audit rows (a valid chain), then export them all to CSV in a
    /// child process and report its time and peak RSS.
    Export {
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Also run on PostgreSQL (server URL; a bench database is created).
        #[arg(long)]
        postgres: Option<String>,
        /// Where to keep the SQLite database and the export.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Also export XLSX (slower; the sheet limit is 1,048,575 rows).
        #[arg(long)]
        xlsx: bool,
    },
    /// (internal) run one export and print its figures.
    ExportChild {
        url: String,
        out: PathBuf,
        format: String,
    },
    /// (internal) verify one export against its manifest and the database.
    VerifyChild {
        url: String,
        file: PathBuf,
    },
}

/// The instant every run scans at: a Tuesday 10:00 WIB, inside the window.
const SCAN_AT: &str = "2026-03-03T03:00:00Z";

#[tokio::main]
async fn main() -> Result<()> {
    match Args::parse().command {
        Cmd::ScanChild { url, at } => scan_child(&url, &at).await,
        Cmd::PlainChild { scanned, copy } => plain_child(&scanned, &copy).await,
        Cmd::Throughput {
            messages,
            paced_messages,
            latency_ms,
            postgres,
        } => throughput::run(messages, paced_messages, latency_ms, postgres).await,
        Cmd::Webhooks {
            count,
            concurrency,
            rate,
            seconds,
            postgres,
        } => {
            let opts = webhooks::Options {
                count,
                concurrency,
                rate,
                seconds,
            };
            webhooks::run(&opts, postgres.as_deref()).await
        }
        Cmd::ImportLoad {
            employers,
            bills_per_employer,
            messages,
            webhook_rate,
            postgres,
            dir,
        } => {
            let tmp = tempfile::tempdir()?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
            std::fs::create_dir_all(&dir)?;
            let spec = import_load::Spec {
                employers,
                bills_per_employer,
                messages,
                webhook_rate,
            };
            import_load::run(&spec, postgres.as_deref(), &dir).await
        }
        Cmd::ExportLoad {
            employers,
            bills_per_employer,
            overdue,
            postgres,
            dir,
            reuse,
            concurrency,
            webhook_rate,
        } => {
            let tmp = tempfile::tempdir()?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
            std::fs::create_dir_all(&dir)?;
            let spec = export_load::Spec {
                employers,
                bills_per_employer,
                overdue,
                reuse,
                concurrency,
                webhook_rate,
            };
            export_load::run(&spec, postgres.as_deref(), &dir).await
        }
        Cmd::ExportChild { url, out, format } => export_child(&url, &out, &format).await,
        Cmd::VerifyChild { url, file } => verify_child(&url, &file).await,
        Cmd::Export {
            rows,
            postgres,
            dir,
            xlsx,
        } => {
            let tmp = tempfile::tempdir()?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
            std::fs::create_dir_all(&dir)?;
            let sqlite = dir.join("export-bench.db");
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", sqlite.display()));
            }
            let mut targets = vec![("sqlite", format!("sqlite://{}", sqlite.display()))];
            if let Some(server) = postgres {
                // Its own database, so it never collides with `scale`.
                targets.push((
                    "postgres",
                    recreate_pg_named(&server, "wa_smile_bench_export").await?,
                ));
            }
            for (name, url) in targets {
                seed_audit(name, &url, rows).await?;
                let mut formats = vec!["csv"];
                if xlsx {
                    formats.push("xlsx");
                }
                for format in formats {
                    let out_file = dir.join(format!("audit-{name}.{format}"));
                    let file = out_file.display().to_string();
                    let figures = child(&["export-child", &url, &file, format])?;
                    println!("[{name}] export {format}: {figures}");
                    let figures = child(&["verify-child", &url, &file])?;
                    println!("[{name}] audit verify --export {format}: {figures}");
                }
            }
            Ok(())
        }
        Cmd::Timeline { events, runs } => timeline::timeline(events, runs).await,
        Cmd::Live { pages, rounds } => timeline::live(pages, rounds).await,
        Cmd::Caselist {
            employers,
            bills_per_employer,
            overdue,
            postgres,
            dir,
            reuse,
            runs,
        } => {
            let tmp = tempfile::tempdir()?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
            std::fs::create_dir_all(&dir)?;
            let sqlite = dir.join("caselist.db");
            let sqlite_url = format!("sqlite://{}", sqlite.display());
            let spec = Synthetic {
                employers,
                bills_per_employer,
                overdue_percent: overdue,
                at: SCAN_AT.parse()?,
                seed: 42,
            };
            let mut targets = vec![("sqlite", sqlite_url.clone())];
            if !(reuse && sqlite.exists()) || postgres.is_some() {
                let (emp_csv, bill_csv) = demo::write_csv(&dir, &spec)?;
                if !(reuse && sqlite.exists()) {
                    for ext in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{ext}", sqlite.display()));
                    }
                    seed_and_scan("sqlite", &sqlite_url, &emp_csv, &bill_csv).await?;
                }
                if let Some(server) = &postgres {
                    let url = recreate_pg(server).await?;
                    seed_and_scan("postgres", &url, &emp_csv, &bill_csv).await?;
                    targets.push(("postgres", url));
                }
            }
            let mut ok = true;
            for (name, url) in targets {
                ok &= time_caselist(name, &url, runs).await?;
            }
            anyhow::ensure!(ok, "some case list queries took longer than 100 ms");
            Ok(())
        }
        Cmd::Scale {
            employers,
            bills_per_employer,
            overdue,
            postgres,
            dir,
            import_only,
        } => {
            let tmp = tempfile::tempdir()?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
            std::fs::create_dir_all(&dir)?;
            let started = Instant::now();
            let spec = Synthetic {
                employers,
                bills_per_employer,
                overdue_percent: overdue,
                at: SCAN_AT.parse()?,
                seed: 42,
            };
            let (emp_csv, bill_csv) = demo::write_csv(&dir, &spec)?;
            println!(
                "generated {employers} employers and {} bills ({overdue}% overdue) in {:.1}s",
                employers * bills_per_employer,
                started.elapsed().as_secs_f64()
            );
            let sqlite = dir.join("bench.db");
            let plain = dir.join("bench-plain.db");
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", sqlite.display()));
                let _ = std::fs::remove_file(format!("{}{ext}", plain.display()));
            }
            let sqlite_url = format!("sqlite://{}", sqlite.display());
            if import_only {
                run_import("sqlite", &sqlite_url, &emp_csv, &bill_csv).await?;
            } else {
                let copy = Copy::Sqlite(sqlite.clone(), plain.clone());
                run_backend("sqlite", &sqlite_url, &copy, &emp_csv, &bill_csv).await?;
            }
            if let Some(server) = postgres {
                let url = recreate_pg(&server).await?;
                if import_only {
                    run_import("postgres", &url, &emp_csv, &bill_csv).await?;
                } else {
                    let copy = Copy::Postgres(server.clone());
                    run_backend("postgres", &url, &copy, &emp_csv, &bill_csv).await?;
                }
            }
            Ok(())
        }
    }
}

async fn recreate_pg(server: &str) -> Result<String> {
    recreate_pg_named(server, "wa_smile_bench").await
}

/// Drops and recreates database `name` on `server`; returns its URL.
async fn recreate_pg_named(server: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .context("cannot reach PostgreSQL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
    Ok(format!("{base}/{name}"))
}

/// Where `scale` keeps an untouched copy of the imported database, for the
/// plain-SQL baseline.
enum Copy {
    /// The database file and its copy.
    Sqlite(PathBuf, PathBuf),
    /// The server; the copy is `wa_smile_bench_plain`.
    Postgres(String),
}

impl Copy {
    /// Copies the imported database; returns the copy's URL.
    async fn make(&self) -> Result<String> {
        match self {
            Copy::Sqlite(from, to) => {
                for ext in ["", "-wal", "-shm"] {
                    let src = format!("{}{ext}", from.display());
                    if Path::new(&src).exists() {
                        std::fs::copy(&src, format!("{}{ext}", to.display()))?;
                    }
                }
                Ok(format!("sqlite://{}", to.display()))
            }
            Copy::Postgres(server) => {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(server).await?;
                sqlx::query("DROP DATABASE IF EXISTS wa_smile_bench_plain")
                    .execute(&mut admin)
                    .await?;
                sqlx::query("CREATE DATABASE wa_smile_bench_plain TEMPLATE wa_smile_bench")
                    .execute(&mut admin)
                    .await?;
                let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
                Ok(format!("{base}/wa_smile_bench_plain"))
            }
        }
    }
}

/// The leading `12.3s` of a child's figures, in seconds.
fn seconds(figures: &str) -> Option<f64> {
    figures.split('s').next()?.parse().ok()
}

async fn run_backend(
    name: &str,
    url: &str,
    copy: &Copy,
    emp_csv: &Path,
    bill_csv: &Path,
) -> Result<()> {
    run_import(name, url, emp_csv, bill_csv).await?;
    let copy_url = copy.make().await?;
    let first = child(&["scan-child", url, SCAN_AT])?;
    println!("[{name}] first scan: {first}");
    println!(
        "[{name}] second scan (no change): {}",
        child(&["scan-child", url, SCAN_AT])?
    );
    let plain = child(&["plain-child", url, &copy_url])?;
    println!("[{name}] plain SQL inserting the same cases and outbox rows: {plain}");
    if let (Some(scan), Some(base)) = (seconds(&first), seconds(&plain)) {
        println!("[{name}] first scan / plain SQL: {:.2}×", scan / base);
    }
    Ok(())
}

/// The baseline the scan is held to: the cases and outbox rows the first
/// scan wrote into `scanned`, inserted into `copy` (the same imported
/// database, before any scan) with plain multi-row INSERTs, in one
/// transaction per range of employers as the scan does — no reads, no
/// decisions, no case log.
async fn plain_child(scanned: &str, copy: &str) -> Result<()> {
    use chrono::{DateTime, NaiveDate, Utc};
    use std::collections::HashMap;
    use wa_smile::store::{rows_per_statement, values_placeholders};

    #[derive(sqlx::FromRow)]
    struct Case {
        employer_id: i64,
        status: String,
        stage: String,
        opened_at: DateTime<Utc>,
        quiet_reason: Option<String>,
        next_action_at: Option<DateTime<Utc>>,
        updated_at: DateTime<Utc>,
        branch: Option<String>,
        arrears_minor: i64,
        oldest_due_date: Option<NaiveDate>,
        last_activity_at: Option<DateTime<Utc>>,
    }
    #[derive(sqlx::FromRow)]
    struct Outbox {
        employer_id: i64,
        idempotency_key: String,
        message: String,
        kind: String,
        wa_id: Option<String>,
        body: String,
        state: String,
        due_at: DateTime<Utc>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }
    const RANGE: i64 = 2_000;

    let src = Db::connect(scanned, 2).await?;
    let cases: Vec<Case> = src
        .query(
            "SELECT employer_id, status, stage, opened_at, quiet_reason, next_action_at, updated_at, \
                    branch, arrears_minor, oldest_due_date, last_activity_at FROM cases ORDER BY employer_id",
        )
        .fetch_all_as(&src)
        .await?;
    let outbox: Vec<Outbox> = src
        .query(
            "SELECT employer_id, idempotency_key, message, kind, wa_id, body, state, due_at, created_at, updated_at \
             FROM outbox ORDER BY employer_id",
        )
        .fetch_all_as(&src)
        .await?;
    src.close().await;

    let db = Db::connect(copy, 4).await?;
    let t = Instant::now();
    let (mut ci, mut oi) = (0, 0);
    while ci < cases.len() {
        let range = cases[ci].employer_id / RANGE;
        let cend = ci
            + cases[ci..]
                .iter()
                .take_while(|c| c.employer_id / RANGE == range)
                .count();
        let mut tx = db.begin().await?;
        let mut ids: HashMap<i64, i64> = HashMap::new();
        for chunk in cases[ci..cend].chunks(rows_per_statement(db.backend(), 11)) {
            let sql = format!(
                "INSERT INTO cases (employer_id, status, stage, opened_at, quiet_reason, next_action_at, updated_at, \
                                    branch, arrears_minor, oldest_due_date, last_activity_at) VALUES {} \
                 RETURNING id, employer_id",
                values_placeholders(chunk.len(), 11, 1)
            );
            let mut q = tx.query(&sql);
            for c in chunk {
                q = q
                    .bind(c.employer_id)
                    .bind(c.status.clone())
                    .bind(c.stage.clone())
                    .bind(c.opened_at)
                    .bind(c.quiet_reason.clone())
                    .bind(c.next_action_at)
                    .bind(c.updated_at)
                    .bind(c.branch.clone())
                    .bind(c.arrears_minor)
                    .bind(c.oldest_due_date)
                    .bind(c.last_activity_at);
            }
            let rows: Vec<(i64, i64)> = q.fetch_all_as(&mut tx).await?;
            ids.extend(rows.into_iter().map(|(id, employer)| (employer, id)));
        }
        let oend = oi
            + outbox[oi..]
                .iter()
                .take_while(|o| o.employer_id / RANGE <= range)
                .count();
        for chunk in outbox[oi..oend].chunks(rows_per_statement(db.backend(), 11)) {
            let sql = format!(
                "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, wa_id, body, state, due_at, \
                                     created_at, updated_at) VALUES {}",
                values_placeholders(chunk.len(), 11, 1)
            );
            let mut q = tx.query(&sql);
            for o in chunk {
                q = q
                    .bind(ids.get(&o.employer_id).copied())
                    .bind(o.employer_id)
                    .bind(o.idempotency_key.clone())
                    .bind(o.message.clone())
                    .bind(o.kind.clone())
                    .bind(o.wa_id.clone())
                    .bind(o.body.clone())
                    .bind(o.state.clone())
                    .bind(o.due_at)
                    .bind(o.created_at)
                    .bind(o.updated_at);
            }
            q.execute(&mut tx).await?;
        }
        tx.commit().await?;
        (ci, oi) = (cend, oend);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{:.1}s, peak RSS {} MB — {} cases, {} outbox rows",
        secs,
        peak_rss_kb() / 1024,
        cases.len(),
        outbox.len()
    );
    db.close().await;
    Ok(())
}

/// Runs this binary's internal subcommand in a child process — so its peak
/// RSS is its own — and returns the figures it printed.
fn child(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(args)
        .output()
        .with_context(|| format!("failed to run `{}`", args[0]))?;
    anyhow::ensure!(
        out.status.success(),
        "`{}` failed: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn run_import(name: &str, url: &str, emp_csv: &Path, bill_csv: &Path) -> Result<()> {
    let config = Config::from_sources(None, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = Db::connect(url, 4).await?;
    db.migrate().await?;
    let ctx = ImportContext {
        calendar: config.calendar(),
        default_tz: config.timezone(),
        actor: "bench".into(),
        thanks: None,
    };
    for (kind, path) in [(Kind::Employers, emp_csv), (Kind::Bills, bill_csv)] {
        let t = Instant::now();
        let c = import_csv(
            &db,
            &ctx,
            kind,
            path,
            Options {
                dry_run: false,
                progress: false,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "[{name}] import {}: {} rows in {:.1}s",
            kind.as_str(),
            c.inserted,
            t.elapsed().as_secs_f64()
        );
    }
    db.close().await;
    Ok(())
}

async fn scan_child(url: &str, at: &str) -> Result<()> {
    let config = Config::from_sources(None, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = Db::connect(url, 4).await?;
    let ctx = ScanContext::from_config(&config)?;
    let t = Instant::now();
    let s = scan::run(&db, &ctx, at.parse()?).await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{:.1}s, peak RSS {} MB — opened {}, updated {}, resolved {}, queued {}",
        secs,
        peak_rss_kb() / 1024,
        s.cases_opened,
        s.cases_updated,
        s.cases_resolved,
        s.messages_queued
    );
    Ok(())
}

/// Appends `rows` audit rows through the real chain writer, in
/// transactions of 5,000, spread over Jan–Mar 2026.
async fn seed_audit(name: &str, url: &str, rows: usize) -> Result<()> {
    use wa_smile::audit::AuditEntry;
    let db = Db::connect(url, 4).await?;
    db.migrate().await?;
    let t = Instant::now();
    let start: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse()?;
    let step = chrono::Duration::seconds((90 * 86_400 / rows.max(1)) as i64)
        .max(chrono::Duration::milliseconds(1));
    let mut written = 0usize;
    while written < rows {
        let n = (rows - written).min(5_000);
        let mut tx = db.begin().await?;
        for i in written..written + n {
            let npp = format!("{:08}", i % 200_000);
            tx.audit(
                AuditEntry::new(
                    start + step * i as i32,
                    "import:employers.csv",
                    "employer.update",
                    format!("employer:{npp}"),
                )
                .before(serde_json::json!({"name": format!("PT Sinar Jaya {i}"), "branch": "PEKANBARU", "wa_id": "6281234567890", "contact_name": "Ibu Sari", "timezone": "Asia/Jakarta"}))
                .after(serde_json::json!({"name": format!("PT Sinar Jaya Abadi {i}"), "branch": "PEKANBARU", "wa_id": "6281234567890", "contact_name": "Ibu Sari", "timezone": "Asia/Jakarta"})),
            );
        }
        tx.commit().await?;
        written += n;
    }
    println!(
        "[{name}] seeded {rows} audit rows in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    db.close().await;
    Ok(())
}

async fn export_child(url: &str, out: &Path, format: &str) -> Result<()> {
    use wa_smile::export::{export_to_file, ExportFormat, ExportKind, ExportRequest};
    let db = Db::connect(url, 4).await?;
    let format = if format == "xlsx" {
        ExportFormat::Xlsx
    } else {
        ExportFormat::Csv
    };
    let req = ExportRequest::new(
        ExportKind::Audit,
        format,
        "2026-01-01".parse()?,
        "2026-12-31".parse()?,
        "bench",
    );
    let t = Instant::now();
    let m = export_to_file(&db, &req, out, None).await?;
    let secs = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(out)?.len();
    println!(
        "{} rows in {:.1}s ({:.0} rows/s), {} MB file, peak RSS {} MB",
        m.row_count,
        secs,
        m.row_count as f64 / secs,
        size / 1_048_576,
        peak_rss_kb() / 1024
    );
    Ok(())
}

async fn verify_child(url: &str, file: &Path) -> Result<()> {
    let config = Config::from_sources(None, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = Db::connect(url, 4).await?;
    let t = Instant::now();
    let v = wa_smile::export::verify_export(&db, file, None, &config.policy()).await?;
    anyhow::ensure!(v.ok(), "{:?}", v.problems);
    println!(
        "{} rows checked against the manifest and the database in {:.1}s, peak RSS {} MB",
        v.rows_in_file,
        t.elapsed().as_secs_f64(),
        peak_rss_kb() / 1024
    );
    Ok(())
}

/// The process's peak resident set (VmHWM), in kB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn seed_and_scan(name: &str, url: &str, emp_csv: &Path, bill_csv: &Path) -> Result<()> {
    run_import(name, url, emp_csv, bill_csv).await?;
    let config = Config::from_sources(None, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = Db::connect(url, 4).await?;
    let t = Instant::now();
    let s = scan::run(&db, &ScanContext::from_config(&config)?, SCAN_AT.parse()?).await?;
    println!(
        "[{name}] scan: {} cases opened in {:.1}s",
        s.cases_opened,
        t.elapsed().as_secs_f64()
    );
    db.close().await;
    Ok(())
}

/// Times each list query an officer's clicks produce; true when every
/// page came back within the 100 ms budget.
async fn time_caselist(name: &str, url: &str, runs: usize) -> Result<bool> {
    use wa_smile::caselist::{self, Filter, Sort};
    let db = Db::connect(url, 4).await?;
    db.migrate().await?;
    // What `serve` does at start.
    let t = Instant::now();
    caselist::analyze(&db).await?;
    println!(
        "[{name}] planner statistics in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    // The scan's instant, so that "today" matches the seeded data.
    let now: chrono::DateTime<chrono::Utc> = SCAN_AT.parse()?;
    let today = now.with_timezone(&chrono_tz::Asia::Jakarta).date_naive();
    let f = |edit: &dyn Fn(&mut Filter)| {
        let mut f = Filter::default();
        edit(&mut f);
        f
    };
    let cases: Vec<(&str, Option<&str>, Filter)> = vec![
        ("admin: all open, by arrears", None, f(&|_| {})),
        (
            "admin: by days overdue",
            None,
            f(&|f| f.sort = Sort::DaysOverdue),
        ),
        (
            "admin: by last activity",
            None,
            f(&|f| f.sort = Sort::LastActivity),
        ),
        ("admin: page 200", None, f(&|f| f.page = 200)),
        (
            "admin: status needs_officer",
            None,
            f(&|f| f.status = "needs_officer".into()),
        ),
        (
            "admin: stage warning, by overdue",
            None,
            f(&|f| {
                f.stage = "warning".into();
                f.sort = Sort::DaysOverdue;
            }),
        ),
        (
            "admin: everything incl. resolved",
            None,
            f(&|f| f.status = "all".into()),
        ),
        (
            "admin: search name `sinar maju`",
            None,
            f(&|f| f.q = "sinar maju".into()),
        ),
        (
            "admin: search NPP prefix",
            None,
            f(&|f| f.q = "0001234".into()),
        ),
        ("admin: unassigned", None, f(&|f| f.assignee = "-".into())),
        (
            "admin: promise due today",
            None,
            f(&|f| f.promise_due_today = true),
        ),
        (
            "admin: promise broken",
            None,
            f(&|f| f.promise_broken = true),
        ),
        (
            "admin: 24-hour window open",
            None,
            f(&|f| f.window_open = true),
        ),
        (
            "officer (Medan): open, by arrears",
            Some("Medan"),
            f(&|_| {}),
        ),
        (
            "officer (Medan): by days overdue",
            Some("Medan"),
            f(&|f| f.sort = Sort::DaysOverdue),
        ),
        (
            "officer (Medan): by last activity",
            Some("Medan"),
            f(&|f| f.sort = Sort::LastActivity),
        ),
        (
            "officer (Medan): search",
            Some("Medan"),
            f(&|f| f.q = "jaya".into()),
        ),
    ];
    let mut ok = true;
    println!("[{name}] case list, {runs} runs each (median / worst):");
    for (label, scope, filter) in &cases {
        let mut times = Vec::with_capacity(runs);
        let mut total = 0;
        // One untimed run warms the cache as a working server's would be.
        caselist::list(&db, *scope, filter, today, now).await?;
        for _ in 0..runs {
            let t = Instant::now();
            let page = caselist::list(&db, *scope, filter, today, now).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            total = page.total;
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let (median, worst) = (times[times.len() / 2], times[times.len() - 1]);
        let pass = worst < 100.0;
        ok &= pass;
        println!(
            "  {:<38} {:>8.1} ms / {:>8.1} ms  ({total} cases){}",
            label,
            median,
            worst,
            if pass { "" } else { "  OVER BUDGET" }
        );
    }
    db.close().await;
    Ok(ok)
}
