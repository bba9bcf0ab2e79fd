//! `wa-smile serve`: the HTTP server plus the scheduler, until SIGINT or
//! SIGTERM. Shutdown is graceful: the server stops accepting, in-flight
//! requests finish, scheduled jobs are stopped, then the pool is closed.
//! The scheduler and the delivery worker run supervised
//! (`crate::supervise`): restarted after a failure, reported by `/readyz`.

use crate::config::Config;
use crate::http::{self, AppState};
use crate::store::Db;
use crate::supervise::Supervisor;
use anyhow::{Context, Result};
use chrono::Utc;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How often the delivery worker looks for due messages when idle.
const DELIVERY_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs until a shutdown signal. `listener` lets tests and the demo bind
/// port 0 and learn the address first.
pub async fn run(config: Arc<Config>, db: Db, listener: TcpListener) -> Result<()> {
    let _ = crate::metrics::handle();
    let announced = crate::account_health::announced_limit(&db)
        .await
        .ok()
        .flatten()
        .map(|l| u32::try_from(l).unwrap_or(u32::MAX));
    tracing::info!("{}", crate::startup::summary(&config, announced));
    // A template that does not render stops start-up, not a send.
    let catalog = crate::messages::shared().context("message templates")?;
    let deliverer = Arc::new(crate::delivery::Deliverer::from_config(&config, catalog)?);
    // A new process may carry a new token; an account restriction stays
    // until an operator resumes.
    crate::delivery::resume(&db, Some(crate::delivery::FLAG_AUTH_EXPIRED)).await?;
    let workers = Arc::new(Supervisor::default());
    let worker = {
        let (db, stop) = (db.clone(), workers.stop_signal());
        workers.spawn("delivery worker", move || {
            let worker = crate::delivery::run_worker(
                db.clone(),
                deliverer.clone(),
                DELIVERY_POLL,
                stop.clone(),
            );
            async move {
                worker.await;
                Ok(())
            }
        })
    };
    // Planner statistics for the admin case list (SQLite); not fatal.
    if let Err(e) = crate::caselist::analyze(&db).await {
        tracing::warn!(error = %format!("{e:#}"), "ANALYZE failed");
    }
    // Statuses stored but not yet settled when a previous process stopped.
    if let Err(e) = crate::replies::apply_pending_statuses(&db).await {
        tracing::warn!(error = %format!("{e:#}"), "settling stored statuses failed");
    }
    let imports = tokio::spawn(finish_interrupted_imports(db.clone()));
    let scheduler = {
        let ctx = Arc::new(crate::scan::ScanContext::from_config(&config)?);
        let (config, db, stop) = (config.clone(), db.clone(), workers.stop_signal());
        workers.spawn("scheduler", move || {
            run_scheduler(config.clone(), db.clone(), ctx.clone(), stop.clone())
        })
    };
    crate::accounts::warm_up().await;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let state = AppState {
        db: db.clone(),
        config: config.clone(),
        workers: workers.clone(),
    };
    // On the signal the delivery worker stops at once, not after the HTTP
    // server has drained: its claimed rows that are still waiting for a
    // send slot go back to the queue for the other instances now.
    let stop_workers = {
        let workers = workers.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("stopping the delivery worker and the scheduler");
            workers.shutdown();
        })
    };
    let app = http::router(state.clone());
    // `/metrics` and `/status/delivery` on their own private listener.
    let ops = if config.server.metrics_bind.trim().is_empty() {
        None
    } else {
        let l = TcpListener::bind(&config.server.metrics_bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.metrics_bind))?;
        tracing::info!(addr = %l.local_addr()?, "metrics listening");
        Some(tokio::spawn(http::listen::serve(
            l,
            http::ops_router(state),
            http::listen::Limits::from_config(&config.server),
            shutdown_signal(),
        )))
    };
    http::listen::serve(
        listener,
        app,
        http::listen::Limits::from_config(&config.server),
        shutdown_signal(),
    )
    .await;
    tracing::info!("shutting down");
    if let Some(ops) = ops {
        ops.abort();
    }
    // In-flight sends finish; claimed rows not yet sent are released.
    stop_workers.abort();
    workers.shutdown();
    if let Err(e) = worker.await {
        tracing::error!(error = %e, "delivery worker supervisor failed");
    }
    // An import being finished stops between two batches' transactions;
    // the next start (or the next import) finishes it. A scan under way
    // stops likewise between its transactions; the next scan redoes it.
    imports.abort();
    scheduler.abort();
    let _ = scheduler.await;
    db.close().await;
    Ok(())
}

/// The longest the scheduler sleeps at once: the wall clock may be set
/// while it waits, and a scan is due by the clock, not by elapsed time.
const SCHEDULER_NAP: std::time::Duration = std::time::Duration::from_secs(30);

/// The overdue scan on `schedule.scan_cron`, read in `schedule.timezone`,
/// until `stop`. A failed scan is logged and the next one runs on time; a
/// panic ends this run and the supervisor starts another.
async fn run_scheduler(
    config: Arc<Config>,
    db: Db,
    ctx: Arc<crate::scan::ScanContext>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let tz = config.timezone();
    loop {
        let now = crate::time::now();
        let next = config
            .scan_schedule()
            .find_next_occurrence(&now.with_timezone(&tz), false)
            .with_context(|| {
                format!(
                    "schedule.scan_cron `{}` has no next run",
                    config.schedule.scan_cron
                )
            })?
            .with_timezone(&Utc);
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let Ok(left) = (next - crate::time::now()).to_std() else {
                break;
            };
            if left.is_zero() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(left.min(SCHEDULER_NAP)) => {}
                changed = stop.changed() => if changed.is_err() { return Ok(()) },
            }
        }
        // scan::run logs its own summary; only a failure needs saying here.
        if let Err(e) = crate::scan::run_tick(&db, &ctx, next, crate::time::now()).await {
            tracing::error!(error = %format!("{e:#}"), "scheduled scan failed");
        }
    }
}

/// Finishes (or discards) imports whose process died half-way: at start,
/// then every few seconds, so a killed import is not left half applied
/// until someone imports again.
async fn finish_interrupted_imports(db: Db) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        if let Err(e) = crate::import::finish_interrupted(&db).await {
            tracing::warn!(error = %format!("{e:#}"), "finishing an interrupted import failed");
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
