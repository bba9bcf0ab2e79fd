//! `wa-smile-bench webhooks`: signed status webhooks over loopback HTTP
//! against the real router served on 127.0.0.1, in the same process.
//!
//! Phase 1 (throughput): `--count` distinct status webhooks, each one
//! signed request with one status, sent by `--concurrency` keep-alive
//! connections as fast as they are answered; then the stored rows are
//! counted, so the figure is statuses recorded, not requests answered.
//! Phase 2 (latency): an open loop at `--rate` requests a second for
//! `--seconds`, each request timed from its scheduled send to its answer
//! (so queueing delay counts); p50/p99/max are reported.

use anyhow::{bail, Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wa_smile::config::Config;
use wa_smile::http::{router, AppState};
use wa_smile::store::Db;

pub use super::import_load::Latencies;

pub const SECRET: &str = "bench-app-secret";

pub struct Options {
    pub count: usize,
    pub concurrency: usize,
    pub rate: u32,
    pub seconds: u64,
}

pub async fn run(opts: &Options, postgres: Option<&str>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", tmp.path().join("webhooks.db").display());
    run_backend("sqlite", &sqlite, opts).await?;
    if let Some(server) = postgres {
        let url = recreate_pg(server).await?;
        run_backend("postgres", &url, opts).await?;
    }
    Ok(())
}

async fn recreate_pg(server: &str) -> Result<String> {
    use sqlx::Connection;
    const NAME: &str = "wa_smile_bench_webhooks";
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .context("cannot reach PostgreSQL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {NAME} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {NAME}"))
        .execute(&mut admin)
        .await?;
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    Ok(format!("{base}/{NAME}"))
}

fn status_body(wamid: &str, ts: i64) -> Vec<u8> {
    serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [
        {"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "6281100000000", "phone_number_id": "PNID"},
            "statuses": [{"id": wamid, "status": "delivered", "timestamp": ts.to_string(),
                          "recipient_id": "6281234567890", "biz_opaque_callback_data": "1",
                          "conversation": {"id": "c1", "origin": {"type": "utility"}},
                          "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility"}}]
        }}
    ]}]})
    .to_string()
    .into_bytes()
}

struct Signed {
    body: Vec<u8>,
    signature: String,
}

fn signed(prefix: &str, n: usize) -> Vec<Signed> {
    let ts = chrono::Utc::now().timestamp();
    (0..n)
        .map(|i| {
            let body = status_body(&format!("wamid.{prefix}.{i:08}"), ts);
            let signature = wa_smile::webhook::sign(SECRET.as_bytes(), &body);
            Signed { body, signature }
        })
        .collect()
}

async fn post(client: &reqwest::Client, url: &str, s: &Signed) -> Result<()> {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", &s.signature)
        .body(s.body.clone())
        .send()
        .await?;
    if resp.status() != reqwest::StatusCode::OK {
        bail!("webhook answered {}", resp.status());
    }
    Ok(())
}

/// Posts distinct signed status webhooks at `rate` a second until `stop`,
/// without waiting for answers (open loop), each timed from its scheduled
/// send, so queueing delay counts.
pub async fn open_loop(
    client: reqwest::Client,
    endpoint: String,
    rate: u32,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Latencies> {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    let ts = chrono::Utc::now().timestamp();
    let prefix = format!("loop{}", rand::random::<u32>());
    let mut tasks = Vec::new();
    let mut i = 0u32;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let due = start + interval * i;
        tokio::time::sleep_until(due).await;
        let body = status_body(&format!("wamid.{prefix}.{i:08}"), ts);
        let signature = wa_smile::webhook::sign(SECRET.as_bytes(), &body);
        let (client, endpoint) = (client.clone(), endpoint.clone());
        tasks.push(tokio::spawn(async move {
            post(&client, &endpoint, &Signed { body, signature })
                .await
                .map(|()| due.elapsed())
        }));
        i += 1;
    }
    let mut lat = Latencies {
        answered: Vec::with_capacity(tasks.len()),
        failed: 0,
    };
    for t in tasks {
        match t.await? {
            Ok(d) => lat.answered.push(d),
            Err(_) => lat.failed += 1,
        }
    }
    lat.answered.sort();
    Ok(lat)
}

async fn run_backend(name: &str, url: &str, opts: &Options) -> Result<()> {
    let config = Config::from_sources(
        None,
        vec![(
            "WA_SMILE__WHATSAPP__APP_SECRET".to_owned(),
            SECRET.to_owned(),
        )],
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = Db::connect(url, 8).await?;
    db.migrate().await?;
    let app = router(AppState {
        db: db.clone(),
        config: Arc::new(config),
        workers: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let endpoint = format!("http://{addr}/webhooks/whatsapp");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;

    // Phase 1: throughput.
    let bodies = Arc::new(signed("tput", opts.count));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency {
        let (bodies, next, client, endpoint) = (
            bodies.clone(),
            next.clone(),
            client.clone(),
            endpoint.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= bodies.len() {
                    return Ok::<(), anyhow::Error>(());
                }
                post(&client, &endpoint, &bodies[i]).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored: i64 = db
        .query("SELECT COUNT(*) AS n FROM webhook_statuses")
        .fetch_scalar(&db)
        .await?;
    if stored as usize != opts.count {
        bail!("{name}: {stored} statuses stored for {} sent", opts.count);
    }
    println!(
        "{name}: throughput {} signed status webhooks in {elapsed:.2}s = {:.0}/s recorded ({} connections)",
        opts.count,
        opts.count as f64 / elapsed,
        opts.concurrency
    );

    // Phase 2: latency at a fixed rate, open loop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let timer = {
        let stop = stop.clone();
        let seconds = opts.seconds;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let lat = open_loop(client.clone(), endpoint.clone(), opts.rate, stop).await?;
    timer.await?;
    if lat.failed > 0 {
        bail!("{name}: {} webhooks were not answered 200", lat.failed);
    }
    println!(
        "{name}: latency at {}/s for {}s ({} requests): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        opts.rate,
        opts.seconds,
        lat.answered.len(),
        lat.pct(0.50),
        lat.pct(0.99),
        lat.max(),
    );
    server.abort();
    db.close().await;
    Ok(())
}
