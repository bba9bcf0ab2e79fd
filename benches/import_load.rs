//! `wa-smile-bench import-load`: a large bills import while `serve` works.
//!
//! Per backend: import the employers, then time the bills import alone
//! (file A). Then start `wa-smile serve` as its own process, with 2,000
//! reminders due and the built-in simulator as the Cloud API (it also sends
//! each message's sent/delivered/read webhooks), post signed status
//! webhooks at `--webhook-rate` a second (open loop, each timed from its
//! scheduled send), and time the same-sized import of file B (the same
//! employers, later periods). Reported: both import times and their ratio,
//! webhook p50/p99/max and any non-200 answer, and the messages the
//! simulator accepted, counted by outbox id, so a message sent twice shows.

use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wa_smile::config::Config;
use wa_smile::import::{import_csv, ImportContext, Kind, Options};
use wa_smile::simulator::{Simulator, SimulatorOptions};
use wa_smile::store::Db;

pub struct Spec {
    pub employers: usize,
    pub bills_per_employer: usize,
    pub messages: usize,
    pub webhook_rate: u32,
}

/// Ids (and NPPs) of the seeded reminders' employers start above this, far
/// from the imported employers'.
const SEEDED_FIRST: usize = 90_000_000;

pub async fn run(spec: &Spec, postgres: Option<&str>, dir: &Path) -> Result<()> {
    let t = Instant::now();
    let (employers, file_a, file_b) = write_files(dir, spec)?;
    println!(
        "generated {} employers and 2 × {} bills in {:.1}s",
        spec.employers,
        spec.employers * spec.bills_per_employer,
        t.elapsed().as_secs_f64()
    );
    let sqlite = dir.join("import-load.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", sqlite.display()));
    }
    let mut targets = vec![("sqlite", format!("sqlite://{}", sqlite.display()))];
    if let Some(server) = postgres {
        targets.push((
            "postgres",
            super::recreate_pg_named(server, "wa_smile_import_bench").await?,
        ));
    }
    let mut ok = true;
    for (name, url) in targets {
        ok &= run_backend(name, &url, spec, dir, &employers, &file_a, &file_b).await?;
    }
    ensure!(
        ok,
        "a target was missed (duplicates, webhook p99 ≥ 1 s, non-200 answers, or import > 1.3× alone)"
    );
    Ok(())
}

fn write_files(dir: &Path, spec: &Spec) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let npp = |i: usize| format!("{:08}", 10_000_000 + i);
    let path = |name: &str| dir.join(name);
    let mut e = std::io::BufWriter::new(std::fs::File::create(path("load-employers.csv"))?);
    writeln!(e, "npp,name,branch,wa_phone,contact_name")?;
    for i in 0..spec.employers {
        writeln!(e, "{},PT Beban {i},PEKANBARU,0813{:08},Ibu Sari", npp(i), i)?;
    }
    e.flush()?;
    for (file, first_month) in [("load-bills-a.csv", 0), ("load-bills-b.csv", 12)] {
        let mut b = std::io::BufWriter::new(std::fs::File::create(path(file))?);
        writeln!(b, "npp,period,amount")?;
        for i in 0..spec.employers {
            for m in 0..spec.bills_per_employer {
                let m = first_month + m;
                writeln!(
                    b,
                    "{},{}-{:02},{}",
                    npp(i),
                    2020 + m / 12,
                    m % 12 + 1,
                    1_000_000 + (i % 1000) * 1000
                )?;
            }
        }
        b.flush()?;
    }
    Ok((
        path("load-employers.csv"),
        path("load-bills-a.csv"),
        path("load-bills-b.csv"),
    ))
}

async fn import(db: &Db, kind: Kind, file: &Path) -> Result<(u64, f64)> {
    let config = Config::from_sources(None, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = ImportContext {
        calendar: config.calendar(),
        default_tz: chrono_tz::Asia::Jakarta,
        actor: "bench".into(),
        thanks: None,
    };
    let t = Instant::now();
    let c = import_csv(
        db,
        &ctx,
        kind,
        file,
        Options {
            dry_run: false,
            progress: false,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((c.inserted, t.elapsed().as_secs_f64()))
}

async fn count(db: &Db, sql: &str) -> Result<i64> {
    Ok(db.query(sql).fetch_scalar(db).await?)
}

#[allow(clippy::too_many_arguments)]
async fn run_backend(
    name: &str,
    url: &str,
    spec: &Spec,
    dir: &Path,
    employers: &Path,
    file_a: &Path,
    file_b: &Path,
) -> Result<bool> {
    let db = Db::connect(url, 4).await?;
    db.migrate().await?;
    let (n, secs) = import(&db, Kind::Employers, employers).await?;
    println!("[{name}] import employers: {n} rows in {secs:.1}s");
    let (n, alone) = import(&db, Kind::Bills, file_a).await?;
    println!("[{name}] import bills alone: {n} rows in {alone:.1}s");

    // The reminders are due now, in a window open all day (the bench runs
    // whenever it runs), at the default 80 messages a second.
    super::throughput::seed(
        &db,
        SEEDED_FIRST,
        spec.messages,
        wa_smile::time::now() - chrono::TimeDelta::minutes(1),
    )
    .await?;
    let serve = Serve::start(&format!("import-load-{name}"), url, dir, "", "", true).await?;
    let (port, client) = (serve.port, serve.client.clone());
    let webhook_url = format!("http://127.0.0.1:{port}/webhooks/whatsapp");

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(super::webhooks::open_loop(
        client.clone(),
        webhook_url,
        spec.webhook_rate,
        stop.clone(),
    ));
    let (n, loaded) = import(&db, Kind::Bills, file_b).await?;
    stop.store(true, Ordering::SeqCst);
    let lat = load.await??;
    println!(
        "[{name}] import bills under load: {n} rows in {loaded:.1}s = {:.2}× alone",
        loaded / alone
    );

    // Delivery has long finished at 80/s; wait for its last outcomes.
    let settle = Instant::now();
    while count(
        &db,
        "SELECT COUNT(*) AS n FROM outbox WHERE state IN ('queued', 'sending')",
    )
    .await?
        > 0
        && settle.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sim = serve.stop()?;
    let mut by_outbox: HashMap<String, usize> = HashMap::new();
    for r in sim.received() {
        let id = r
            .body
            .as_ref()
            .and_then(|b| b["biz_opaque_callback_data"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("to:{:?}", r.body.as_ref().map(|b| b["to"].clone())));
        *by_outbox.entry(id).or_default() += 1;
    }
    sim.stop();
    let twice = by_outbox.values().filter(|&&n| n > 1).count();
    let recorded = count(
        &db,
        "SELECT COUNT(*) AS n FROM outbox WHERE state IN ('sent', 'delivered', 'read')",
    )
    .await?;
    println!(
        "[{name}] delivery: {} messages accepted by the simulator for {} outbox rows, {twice} sent twice; {recorded} outcomes recorded",
        by_outbox.values().sum::<usize>(),
        by_outbox.len()
    );
    println!(
        "[{name}] status webhooks at {}/s during the import: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} not 200",
        spec.webhook_rate,
        lat.answered.len() + lat.failed,
        lat.pct(0.50),
        lat.pct(0.99),
        lat.max(),
        lat.failed
    );
    let v = wa_smile::audit::verify(&db).await?;
    println!(
        "[{name}] audit chain: {} rows, {}",
        v.rows,
        if v.broken.is_none() {
            "verifies"
        } else {
            "BROKEN"
        }
    );
    db.close().await;
    Ok(twice == 0
        && by_outbox.len() == spec.messages
        && recorded == spec.messages as i64
        && lat.failed == 0
        && lat.pct(0.99) < 1000.0
        && loaded <= alone * 1.3
        && v.broken.is_none())
}

/// Webhook answers: latencies of the 200s, and how many were not 200.
pub struct Latencies {
    pub answered: Vec<Duration>,
    pub failed: usize,
}

impl Latencies {
    pub fn pct(&self, p: f64) -> f64 {
        let n = self.answered.len();
        if n == 0 {
            return f64::INFINITY;
        }
        self.answered[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1000.0
    }

    pub fn max(&self) -> f64 {
        self.answered
            .last()
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// `wa-smile serve` (the release binary beside this one) as its own
/// process on a free loopback port, with the built-in simulator as its
/// Cloud API (webhooks signed with [`super::webhooks::SECRET`] and posted
/// back to it) and a sending window open all day, every day. `tag` names
/// its config and log files in `dir`; `whatsapp` is added to its
/// `[whatsapp]` section and `extra` appended to its config.
pub struct Serve {
    child: std::process::Child,
    pub port: u16,
    pub client: reqwest::Client,
    sim: Option<wa_smile::simulator::SimulatorHandle>,
}

impl Serve {
    pub async fn start(
        tag: &str,
        url: &str,
        dir: &Path,
        whatsapp: &str,
        extra: &str,
        keep_bodies: bool,
    ) -> Result<Serve> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let sim_opts = SimulatorOptions {
            latency: Duration::from_millis(50),
            webhook_url: Some(format!("http://127.0.0.1:{port}/webhooks/whatsapp")),
            app_secret: super::webhooks::SECRET.to_owned(),
            keep_bodies,
            ..Default::default()
        };
        let (api_base, sim) = Simulator::start(sim_opts.clone()).await?;
        let config = dir.join(format!("{tag}.toml"));
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{url}\"\n\
                 [server]\nbind = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
                 [whatsapp]\napi_base = \"{api_base}\"\nphone_number_id = \"100000000000001\"\n\
                 access_token = \"{}\"\napp_secret = \"{}\"\nverify_token = \"bench-verify-token\"\ndaily_unique_recipients = 10000000\n{whatsapp}\n\
                 [schedule]\nscan_cron = \"0 0 7 1 1 *\"\nwindow_start = \"00:00\"\nwindow_end = \"23:59\"\n\
                 window_days = [\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\", \"Sat\", \"Sun\"]\n{extra}",
                sim_opts.access_token,
                super::webhooks::SECRET
            ),
        )?;
        let log = std::fs::File::create(dir.join(format!("{tag}-serve.log")))?;
        let child = std::process::Command::new(std::env::current_exe()?.with_file_name("wa-smile"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env_remove("WA_SMILE_CONFIG")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start `wa-smile serve` (build it: cargo build --release --bins)")?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let mut serve = Serve {
            child,
            port,
            client,
            sim: Some(sim),
        };
        let ready = Instant::now();
        while serve
            .client
            .get(format!("{}/healthz", serve.base()))
            .send()
            .await
            .map_or(true, |r| !r.status().is_success())
        {
            let log = dir.join(format!("{tag}-serve.log"));
            if let Some(status) = serve.child.try_wait()? {
                bail!("serve exited ({status}); see {}", log.display());
            }
            ensure!(
                ready.elapsed() < Duration::from_secs(60),
                "serve did not start (see {})",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(serve)
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops serve gracefully (SIGTERM) and waits for it; returns the
    /// simulator, which saw every message sent.
    pub fn stop(mut self) -> Result<wa_smile::simulator::SimulatorHandle> {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait()?;
        self.sim.take().context("serve stopped twice")
    }
}

/// A bench that fails midway does not leave serve running.
impl Drop for Serve {
    fn drop(&mut self) {
        if self.sim.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
