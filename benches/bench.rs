//! Benchmarks: `cargo run --release --bin wa-smile-bench -- scale` (import
//! and scan at scale), `-- throughput` (the delivery worker against the
//! built-in simulator) and `-- webhooks` (signed status webhooks over HTTP).
//!
//! `scale` generates employers and bills (a share of them overdue), imports them
//! through the real CSV import, then runs the overdue scan twice — each scan
//! in a child process, so the peak RSS reported is the scan's own. Runs on
//! SQLite, and on PostgreSQL when `--postgres URL` is given (a database
//! named `wa_smile_bench` is dropped and recreated there).
//!
//! `webhooks` is described in `benches/webhooks.rs`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wa_smile::config::Config;
use wa_smile::demo::{self, Synthetic};
use wa_smile::import::{import_csv, ImportContext, Kind, Options};
use wa_smile::scan::{self, ScanContext};
use wa_smile::store::Db;

mod throughput;
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
    /// (internal) run one scan and print its figures as JSON.
    ScanChild { url: String, at: String },
}

/// The instant every run scans at: a Tuesday 10:00 WIB, inside the window.
const SCAN_AT: &str = "2026-03-03T03:00:00Z";

#[tokio::main]
async fn main() -> Result<()> {
    match Args::parse().command {
        Cmd::ScanChild { url, at } => scan_child(&url, &at).await,
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
        Cmd::Scale {
            employers,
            bills_per_employer,
            overdue,
            postgres,
            dir,
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
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", sqlite.display()));
            }
            run_backend(
                "sqlite",
                &format!("sqlite://{}", sqlite.display()),
                &emp_csv,
                &bill_csv,
            )
            .await?;
            if let Some(server) = postgres {
                let url = recreate_pg(&server).await?;
                run_backend("postgres", &url, &emp_csv, &bill_csv).await?;
            }
            Ok(())
        }
    }
}

async fn recreate_pg(server: &str) -> Result<String> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .context("cannot reach PostgreSQL")?;
    sqlx::query("DROP DATABASE IF EXISTS wa_smile_bench")
        .execute(&mut admin)
        .await?;
    sqlx::query("CREATE DATABASE wa_smile_bench")
        .execute(&mut admin)
        .await?;
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
    Ok(format!("{base}/wa_smile_bench"))
}

async fn run_backend(name: &str, url: &str, emp_csv: &Path, bill_csv: &Path) -> Result<()> {
    let config = Config::from_sources(None, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = Db::connect(url, 4).await?;
    db.migrate().await?;
    let ctx = ImportContext {
        calendar: config.calendar(),
        default_tz: chrono_tz::Asia::Jakarta,
        actor: "bench".into(),
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
    for label in ["first scan", "second scan (no change)"] {
        let out = std::process::Command::new(std::env::current_exe()?)
            .args(["scan-child", url, SCAN_AT])
            .output()
            .context("failed to run the scan child")?;
        anyhow::ensure!(
            out.status.success(),
            "scan failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "[{name}] {label}: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
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
