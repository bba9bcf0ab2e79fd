//! Delivery throughput: N queued reminders drained by one `deliver_due`
//! pass against the built-in simulator answering after ~50 ms, with
//! `messages_per_second = 1000` (sustained rate) and `= 80` (no one-second
//! window above the limit, as the simulator saw the requests arrive).

use anyhow::Result;
use std::sync::Arc;
use std::time::Instant;
use wa_smile::config::Config;
use wa_smile::delivery::{deliver_due, Deliverer};
use wa_smile::messages::Catalog;
use wa_smile::simulator::{Simulator, SimulatorOptions};
use wa_smile::store::{rows_per_statement, values_placeholders, Db};

/// A Tuesday 10:00 WIB: inside every employer's sending window.
const AT: &str = "2026-03-03T03:00:00Z";

pub async fn run(
    messages: usize,
    paced: usize,
    latency_ms: u64,
    postgres: Option<String>,
) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut backends = vec![(
        "sqlite",
        format!("sqlite://{}", tmp.path().join("throughput.db").display()),
    )];
    if let Some(server) = postgres {
        backends.push(("postgres", super::recreate_pg(&server).await?));
    }
    let mut over = false;
    for (name, url) in backends {
        let db = Db::connect(&url, 8).await?;
        db.migrate().await?;
        // The sustained run, then the paced run on the same database (its
        // rows are due one second later, after the first run's are gone).
        seed(&db, 0, messages, AT.parse()?).await?;
        let (sent, secs, max_1s) = drain(&db, 1000, latency_ms, AT).await?;
        println!(
            "[{name}] messages_per_second=1000, {latency_ms} ms API latency: {sent} sent in {secs:.1}s = {:.0} msg/s sustained (max {max_1s} in any 1 s window)",
            sent as f64 / secs
        );
        let paced_at = "2026-03-03T03:30:00Z";
        seed(&db, messages, paced, paced_at.parse()?).await?;
        let (sent, secs, max_1s) = drain(&db, 80, latency_ms, paced_at).await?;
        println!(
            "[{name}] messages_per_second=80: {sent} sent in {secs:.1}s = {:.1} msg/s; max sent in any 1 s window: {max_1s} (limit 80)",
            sent as f64 / secs
        );
        over |= max_1s > 80;
        db.close().await;
    }
    anyhow::ensure!(!over, "pacing exceeded 80 in one second");
    Ok(())
}

/// `n` employers (ids from `first + 1`), each with an overdue bill, an open
/// case and its first reminder queued for `due`.
pub async fn seed(
    db: &Db,
    first: usize,
    n: usize,
    due: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let t = Instant::now();
    let created: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse()?;
    let tables: [(&str, usize); 4] = [
        ("employers (id, npp, name, branch, wa_id, contact_name, timezone, created_at, updated_at)", 9),
        ("bills (id, employer_id, period, amount_minor, due_date, payment_code, created_at, updated_at)", 8),
        ("cases (id, employer_id, status, stage, opened_at, updated_at)", 6),
        ("outbox (id, case_id, employer_id, idempotency_key, message, kind, wa_id, body, state, due_at, created_at, updated_at)", 12),
    ];
    let ids: Vec<i64> = (first as i64 + 1..=(first + n) as i64).collect();
    for (table, cols) in tables {
        let mut tx = db.begin().await?;
        for chunk in ids.chunks(rows_per_statement(db.backend(), cols)) {
            let sql = format!(
                "INSERT INTO {table} VALUES {}",
                values_placeholders(chunk.len(), cols, 1)
            );
            let mut q = tx.query(&sql);
            for &i in chunk {
                let wa = format!("62812{i:08}");
                q = match cols {
                    9 => q
                        .bind(i)
                        .bind(format!("{i:08}"))
                        .bind(format!("PT Bench {i}"))
                        .bind("PEKANBARU")
                        .bind(wa)
                        .bind("Ibu Sari")
                        .bind("Asia/Jakarta")
                        .bind(created)
                        .bind(created),
                    8 => q
                        .bind(i)
                        .bind(i)
                        .bind("2026-01")
                        .bind(100_000_000 + i)
                        .bind(chrono::NaiveDate::from_ymd_opt(2026, 2, 16).expect("date"))
                        .bind(format!("{:011}", i))
                        .bind(created)
                        .bind(created),
                    6 => q
                        .bind(i)
                        .bind(i)
                        .bind("open")
                        .bind("reminder_3")
                        .bind(created)
                        .bind(created),
                    _ => q
                        .bind(i)
                        .bind(i)
                        .bind(i)
                        .bind(format!("case:{i}:stage:reminder_3"))
                        .bind("reminder_3")
                        .bind("template")
                        .bind(wa)
                        .bind("{}")
                        .bind("queued")
                        .bind(due)
                        .bind(created)
                        .bind(created),
                };
            }
            q.execute(&mut tx).await?;
        }
        tx.commit().await?;
    }
    println!(
        "  seeded {n} queued reminders in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One pass at `at` with the given rate: (sent, seconds, max in any 1 s).
async fn drain(db: &Db, rate: u32, latency_ms: u64, at: &str) -> Result<(u64, f64, usize)> {
    let opts = SimulatorOptions {
        latency: std::time::Duration::from_millis(latency_ms),
        keep_bodies: false,
        ..Default::default()
    };
    let (base, sim) = Simulator::start(opts.clone()).await?;
    let env = vec![
        ("WA_SMILE__WHATSAPP__API_BASE".to_owned(), base),
        (
            "WA_SMILE__WHATSAPP__PHONE_NUMBER_ID".to_owned(),
            "100000000000001".to_owned(),
        ),
        (
            "WA_SMILE__WHATSAPP__ACCESS_TOKEN".to_owned(),
            opts.access_token.clone(),
        ),
        (
            "WA_SMILE__WHATSAPP__MESSAGES_PER_SECOND".to_owned(),
            rate.to_string(),
        ),
        (
            "WA_SMILE__WHATSAPP__DAILY_UNIQUE_RECIPIENTS".to_owned(),
            "10000000".to_owned(),
        ),
    ];
    let config = Config::from_sources(None, env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let d = Deliverer::from_config(&config, Arc::new(Catalog::load()?))?;
    let t = Instant::now();
    let s = deliver_due(db, &d, at.parse()?).await?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(s.failed == 0 && s.skipped == 0, "unexpected outcome: {s:?}");
    let times: Vec<u64> = sim.received().iter().map(|r| r.at_ms).collect();
    Ok((s.sent, secs, max_in_one_second(&times)))
}

/// The most arrivals in any window of 1,000 ms.
fn max_in_one_second(times: &[u64]) -> usize {
    let mut t = times.to_vec();
    t.sort_unstable();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..t.len() {
        while t[hi] - t[lo] >= 1000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}
