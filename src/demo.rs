//! `wa-smile demo`: a self-contained tour on a fresh SQLite database with
//! synthetic branch data, imported through the real CSV import, scanned,
//! then served. The same generator feeds the scale benchmark.

use crate::config::Config;
use crate::import::{import_csv, ImportContext, Kind, Options};
use crate::store::Db;
use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Duration, Utc};
use rand::{Rng, SeedableRng};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to generate.
pub struct Synthetic {
    pub employers: usize,
    pub bills_per_employer: usize,
    /// Share of bills already overdue at `at`, in percent.
    pub overdue_percent: u32,
    pub at: DateTime<Utc>,
    pub seed: u64,
}

const PREFIXES: [&str; 4] = ["PT", "PT", "CV", "UD"];
const WORDS: [&str; 24] = [
    "Sinar",
    "Maju",
    "Jaya",
    "Abadi",
    "Mandiri",
    "Sejahtera",
    "Riau",
    "Lancar",
    "Berkah",
    "Karya",
    "Sentosa",
    "Makmur",
    "Bintang",
    "Samudra",
    "Nusantara",
    "Mulia",
    "Prima",
    "Agung",
    "Cahaya",
    "Harapan",
    "Sumber",
    "Rezeki",
    "Tunas",
    "Perkasa",
];
const CONTACTS: [&str; 12] = [
    "Ibu Sari",
    "Bapak Budi",
    "Ibu Dewi",
    "Bapak Agus",
    "Ibu Rina",
    "Bapak Hendra",
    "Ibu Wulan",
    "Bapak Fajar",
    "Ibu Nurul",
    "Bapak Yusuf",
    "Ibu Lestari",
    "Bapak Rahmat",
];
const BRANCHES: [(&str, &str); 4] = [
    ("Pekanbaru", "Asia/Jakarta"),
    ("Medan", "Asia/Jakarta"),
    ("Makassar", "Asia/Makassar"),
    ("Jayapura", "Asia/Jayapura"),
];

/// Writes `employers.csv` and `bills.csv` into `dir` in CONTRACT's format.
/// Every 50th employer has no WhatsApp number (their case goes to an officer).
pub fn write_csv(dir: &Path, spec: &Synthetic) -> Result<(PathBuf, PathBuf)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    let emp_path = dir.join("employers.csv");
    let mut w = BufWriter::new(std::fs::File::create(&emp_path)?);
    writeln!(w, "npp,name,branch,wa_phone,contact_name,timezone")?;
    for i in 0..spec.employers {
        let name = format!(
            "{} {} {}",
            PREFIXES[i % PREFIXES.len()],
            WORDS[rng.random_range(0..WORDS.len())],
            WORDS[rng.random_range(0..WORDS.len())]
        );
        let (branch, zone) = BRANCHES[i % BRANCHES.len()];
        let phone = if i % 50 == 49 {
            String::new()
        } else {
            format!("0812{:08}", i)
        };
        writeln!(
            w,
            "{:08},{name},{branch},{phone},{},{zone}",
            i + 1,
            CONTACTS[i % CONTACTS.len()]
        )?;
    }
    w.flush()?;

    let bill_path = dir.join("bills.csv");
    let mut w = BufWriter::new(std::fs::File::create(&bill_path)?);
    writeln!(w, "npp,period,amount,due_date,payment_code")?;
    let today = spec.at.date_naive();
    let first =
        crate::domain::Period::of_date(today - Duration::days(31 * spec.bills_per_employer as i64));
    for i in 0..spec.employers {
        let mut period = first;
        for _ in 0..spec.bills_per_employer {
            // Contributions in thousands of rupiah, as payroll produces them.
            let amount = rng.random_range(500..60_000) * 1000;
            // Overdue bills fell due 1–90 days ago; the rest fall due soon.
            let due = if rng.random_range(0..100) < spec.overdue_percent {
                today - Duration::days(rng.random_range(1..=90))
            } else {
                today + Duration::days(rng.random_range(1..=60))
            };
            let code = format!(
                "{:011}",
                (i as u64 + 1) * 100 + u64::from(period.month()) + u64::from(due.day())
            );
            writeln!(w, "{:08},{period},{amount},{due},{code}", i + 1)?;
            period = period.next();
        }
    }
    w.flush()?;
    Ok((emp_path, bill_path))
}

/// Imports the synthetic files through the real CSV import.
pub async fn import(db: &Db, config: &Config, employers: &Path, bills: &Path) -> Result<()> {
    let ctx = ImportContext {
        calendar: config.calendar(),
        default_tz: config.timezone().map_err(anyhow::Error::msg)?,
        actor: "demo".into(),
    };
    for (kind, path) in [(Kind::Employers, employers), (Kind::Bills, bills)] {
        import_csv(
            db,
            &ctx,
            kind,
            path,
            Options {
                dry_run: false,
                progress: false,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo data failed to import: {e}"))?;
    }
    Ok(())
}

/// The whole tour: data, a scan, then the server until Ctrl-C.
pub async fn run(config: Config, data: Option<PathBuf>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = data.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db_path = dir.join("wa-smile-demo.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db_path.display()));
    }
    let mut config = config;
    config.database.url = format!("sqlite://{}", db_path.display());
    // Bound before anything is sent: the simulator's status webhooks may
    // arrive while the tour is still delivering, and wait in the backlog.
    let listener = tokio::net::TcpListener::bind(&config.server.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set WA_SMILE__SERVER__BIND)",
                config.server.bind
            )
        })?;
    let addr = listener.local_addr()?;
    // The simulator signs its webhooks with the same app secret the webhook
    // route checks; a tour without one gets its own random secret.
    if secrecy::ExposeSecret::expose_secret(&config.whatsapp.app_secret).is_empty() {
        config.whatsapp.app_secret = crate::accounts::random_secret().into();
    }
    // The built-in simulator plays the Cloud API, and posts signed status
    // webhooks back to this server.
    let sim_opts = crate::simulator::SimulatorOptions {
        webhook_url: Some(format!("http://{addr}/webhooks/whatsapp")),
        app_secret: secrecy::ExposeSecret::expose_secret(&config.whatsapp.app_secret).to_owned(),
        ..Default::default()
    };
    let (sim_url, simulator) = crate::simulator::Simulator::start(sim_opts.clone()).await?;
    config.whatsapp.api_base = sim_url.clone();
    config.whatsapp.access_token = sim_opts.access_token.clone().into();
    if config.whatsapp.phone_number_id.is_empty() {
        config.whatsapp.phone_number_id = "100000000000001".into();
    }
    println!("WhatsApp simulator (Cloud API stand-in) on {sim_url}");
    let config = Arc::new(config);
    let db = Db::connect(&config.database.url, config.database.max_connections).await?;
    db.migrate().await?;

    let at = crate::time::now();
    let spec = Synthetic {
        employers: 120,
        bills_per_employer: 4,
        overdue_percent: 35,
        at,
        seed: 7,
    };
    let (employers, bills) = write_csv(&dir, &spec)?;
    import(&db, &config, &employers, &bills).await?;
    println!(
        "demo data: {} employers, {} bills in {}",
        spec.employers,
        spec.employers * spec.bills_per_employer,
        dir.display()
    );

    let scan = crate::scan::run(&db, &crate::scan::ScanContext::from_config(&config)?, at).await?;
    println!(
        "scan: {} case(s) opened, {} message(s) queued (each waits for its employer's sending window)",
        scan.cases_opened, scan.messages_queued
    );
    let catalog = Arc::new(crate::messages::Catalog::load().context("message templates")?);
    let deliverer = crate::delivery::Deliverer::from_config(&config, catalog)?;
    let sent = crate::delivery::deliver_due(&db, &deliverer, at).await?;
    println!(
        "deliver: {} sent, {} failed, {} retried, {} skipped (messages due later wait for their window)",
        sent.sent, sent.failed, sent.retried, sent.skipped
    );
    for r in simulator.received().iter().take(5) {
        if let Some(body) = &r.body {
            let name = body["template"]["name"].as_str().unwrap_or("(free-form)");
            println!("  {} {name}", r.wamid);
        }
    }
    // A login for the tour; the password is random and shown once.
    let password = crate::accounts::random_secret()[..16].to_owned();
    crate::accounts::add_user(&db, "admin", &password, crate::accounts::Role::Admin, None).await?;
    println!("serving on http://{addr} — try http://{addr}/readyz ; Ctrl-C to stop");
    println!("admin UI: http://{addr}/cases — log in as `admin` with password {password}");
    println!(
        "inspect a case: wa-smile case show 00000001 (with WA_SMILE__DATABASE__URL={})",
        config.database.url
    );
    let result = crate::serve::run(config, db, listener).await;
    drop(simulator);
    result
}
