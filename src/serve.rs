//! `wa-smile serve`: the HTTP server plus the scheduler, until SIGINT or
//! SIGTERM. Shutdown is graceful: the server stops accepting, in-flight
//! requests finish, scheduled jobs are stopped, then the pool is closed.

use crate::config::Config;
use crate::http::{self, AppState};
use crate::store::Db;
use anyhow::{Context, Result};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_cron_scheduler::{Job, JobScheduler};

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
    let catalog = Arc::new(crate::messages::Catalog::load().context("message templates")?);
    let deliverer = Arc::new(crate::delivery::Deliverer::from_config(&config, catalog)?);
    // A new process may carry a new token; an account restriction stays
    // until an operator resumes.
    crate::delivery::resume(&db, Some(crate::delivery::FLAG_AUTH_EXPIRED)).await?;
    let (stop_worker, worker_stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(crate::delivery::run_worker(
        db.clone(),
        deliverer,
        DELIVERY_POLL,
        worker_stop,
    ));
    // Planner statistics for the admin case list (SQLite); not fatal.
    if let Err(e) = crate::caselist::analyze(&db).await {
        tracing::warn!(error = %format!("{e:#}"), "ANALYZE failed");
    }
    // Statuses stored but not yet settled when a previous process stopped.
    if let Err(e) = crate::replies::apply_pending_statuses(&db).await {
        tracing::warn!(error = %format!("{e:#}"), "settling stored statuses failed");
    }
    let imports = tokio::spawn(finish_interrupted_imports(db.clone()));
    let mut scheduler = start_scheduler(&config, &db).await?;
    crate::accounts::warm_up().await;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let state = AppState {
        db: db.clone(),
        config: config.clone(),
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
    let _ = stop_worker.send(true);
    if let Err(e) = worker.await {
        tracing::error!(error = %e, "delivery worker panicked");
    }
    // An import being finished stops between two batches' transactions;
    // the next start (or the next import) finishes it.
    imports.abort();
    scheduler
        .shutdown()
        .await
        .context("failed to stop the scheduler")?;
    db.close().await;
    Ok(())
}

/// The overdue scan on `schedule.scan_cron`, read in `schedule.timezone`.
async fn start_scheduler(config: &Arc<Config>, db: &Db) -> Result<JobScheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("failed to create the scheduler")?;
    let tz = config.timezone().map_err(anyhow::Error::msg)?;
    let ctx = Arc::new(crate::scan::ScanContext::from_config(config)?);
    let db = db.clone();
    let job = Job::new_async_tz(config.schedule.scan_cron.as_str(), tz, move |_id, _lock| {
        let db = db.clone();
        let ctx = ctx.clone();
        Box::pin(async move {
            // scan::run logs its own summary; only a failure needs saying here.
            if let Err(e) = crate::scan::run(&db, &ctx, crate::time::now()).await {
                tracing::error!(error = %format!("{e:#}"), "scheduled scan failed");
            }
        })
    })
    .with_context(|| format!("invalid schedule.scan_cron `{}`", config.schedule.scan_cron))?;
    scheduler
        .add(job)
        .await
        .context("failed to schedule the scan")?;
    scheduler
        .start()
        .await
        .context("failed to start the scheduler")?;
    Ok(scheduler)
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
