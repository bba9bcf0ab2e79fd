//! `wa-smile-bench export-load`: a whole-trail audit export started from
//! `/exports` while an officer browses the case list.
//!
//! Per backend: seed as `caselist` does (synthetic employers and bills
//! through the real CSV import — about 1.2 audit rows per bill — then the
//! overdue scan), unless `--reuse` finds the database seeded. Start
//! `wa-smile serve` as its own process (delivery paced at 1 message a
//! second to the built-in simulator, so reminders do not drown the figures),
//! add an admin and a Medan officer, and log both in over HTTP as a browser
//! does (the login form's CSRF cookie and field, then the session's token
//! from a page). The admin posts the `/exports` form for an audit CSV of
//! every day up to today — a job stored in the database — and polls its row
//! every second as the page does. Meanwhile `--concurrency` officer loops
//! request `/cases` pages (sorts, filters, a deep page, a search) and
//! signed status webhooks arrive at `--webhook-rate` a second. Reported:
//! the job's wall time and rows, the case list's p50/p99/max during the
//! export and the webhooks' likewise. Then, with serve stopped, the same
//! rows read by `sqlite3 -csv` (or `psql \copy … CSV`) into a file, and the
//! ratio of the export to that baseline.

use super::import_load::{Latencies, Serve};
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wa_smile::accounts::Role;
use wa_smile::demo::{self, Synthetic};
use wa_smile::export::{ExportJobs, JobState};
use wa_smile::store::Db;

pub struct Spec {
    pub employers: usize,
    pub bills_per_employer: usize,
    pub overdue: u32,
    pub reuse: bool,
    pub concurrency: usize,
    pub webhook_rate: u32,
}

const PASSWORD: &str = "bench-password-123";
const ADMIN: &str = "bench-admin";
const OFFICER: &str = "bench-officer";
/// The officer's branch, one of `demo::write_csv`'s.
const OFFICER_BRANCH: &str = "Medan";
/// The case list pages the officer cycles through.
const PAGES: &[&str] = &[
    "/cases",
    "/cases?sort=days_overdue",
    "/cases?sort=last_activity",
    "/cases?page=40",
    "/cases?status=needs_officer",
    "/cases?stage=warning&sort=days_overdue",
    "/cases?q=jaya",
    "/cases?status=all&page=3",
];
/// The audit columns of the export, as stored.
const AUDIT_COLUMNS: &str =
    "seq, at, actor, action, entity, before, after, payload_digest, prev_hash, hash, redacted_at";

pub async fn run(spec: &Spec, postgres: Option<&str>, dir: &Path) -> Result<()> {
    let sqlite = dir.join("export-load.db");
    let mut targets = vec![("sqlite", format!("sqlite://{}", sqlite.display()))];
    if let Some(server) = postgres {
        targets.push(("postgres", pg_target(server, spec.reuse).await?));
    }
    let mut ok = true;
    for (name, url) in targets {
        seed(name, &url, spec, dir).await?;
        ok &= run_backend(name, &url, spec, dir).await?;
    }
    ensure!(
        ok,
        "a target was missed (case list p99 ≥ 200 ms, export > 3× the baseline, or a request failed)"
    );
    Ok(())
}

/// The PostgreSQL database of this bench: kept with `--reuse`, else made anew.
async fn pg_target(server: &str, reuse: bool) -> Result<String> {
    const NAME: &str = "wa_smile_export_load";
    if reuse {
        let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
        let url = format!("{base}/{NAME}");
        if Db::connect(&url, 1).await.is_ok() {
            return Ok(url);
        }
    }
    super::recreate_pg_named(server, NAME).await
}

async fn audit_rows(url: &str) -> Result<i64> {
    let db = Db::connect(url, 1).await?;
    db.migrate().await?;
    let n: i64 = db
        .query("SELECT COUNT(*) AS n FROM audit_log")
        .fetch_scalar(&db)
        .await?;
    db.close().await;
    Ok(n)
}

/// Seeds through the real import and scan, unless `--reuse` finds it done.
async fn seed(name: &str, url: &str, spec: &Spec, dir: &Path) -> Result<()> {
    if spec.reuse {
        let n = audit_rows(url).await.unwrap_or(0);
        if n > 0 {
            println!("[{name}] reusing the seeded database ({n} audit rows)");
            return Ok(());
        }
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{ext}"));
        }
    }
    let synthetic = Synthetic {
        employers: spec.employers,
        bills_per_employer: spec.bills_per_employer,
        overdue_percent: spec.overdue,
        at: super::SCAN_AT.parse()?,
        seed: 42,
    };
    let (emp_csv, bill_csv) = demo::write_csv(dir, &synthetic)?;
    super::seed_and_scan(name, url, &emp_csv, &bill_csv).await?;
    println!("[{name}] {} audit rows", audit_rows(url).await?);
    Ok(())
}

/// Creates a login unless a previous run on this database did.
async fn user(db: &Db, username: &str, role: Role, branch: Option<&str>) -> Result<()> {
    match wa_smile::accounts::add_user(db, username, PASSWORD, role, branch).await {
        Ok(_) => Ok(()),
        Err(e) if format!("{e:#}").contains("already exists") => Ok(()),
        Err(e) => Err(e),
    }
}

/// A browser's session: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn csrf_field(html: &str) -> Result<String> {
    let marker = "name=\"csrf\" value=\"";
    let i = html.find(marker).context("no csrf field")? + marker.len();
    let rest = &html[i..];
    Ok(rest[..rest.find('"').context("unterminated csrf field")?].to_owned())
}

const FORM: &str = "application/x-www-form-urlencoded";

fn form(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The value of cookie `name` among a response's `Set-Cookie` headers.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// Logs in through `/login` as the browser does, then reads the session's
/// CSRF token from `page`.
async fn login(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    page: &str,
) -> Result<Session> {
    let answer = client.get(format!("{base}/login")).send().await?;
    let login_csrf = set_cookie(&answer, "wa_smile_login_csrf").context("no login CSRF cookie")?;
    let field = csrf_field(&answer.text().await?)?;
    let resp = client
        .post(format!("{base}/login"))
        .header(
            reqwest::header::COOKIE,
            format!("wa_smile_login_csrf={login_csrf}"),
        )
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(form(&[
            ("csrf", field.as_str()),
            ("username", username),
            ("password", PASSWORD),
        ]))
        .send()
        .await?;
    ensure!(
        resp.status() == reqwest::StatusCode::SEE_OTHER,
        "login of {username} answered {}",
        resp.status()
    );
    let cookie = format!(
        "wa_smile_session={}",
        set_cookie(&resp, "wa_smile_session").context("no session cookie")?
    );
    let html = client
        .get(format!("{base}{page}"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(Session {
        csrf: csrf_field(&html)?,
        cookie,
    })
}

/// An officer clicking through the case list until `stop`: each page timed.
async fn browse(
    client: reqwest::Client,
    base: String,
    cookie: String,
    offset: usize,
    stop: Arc<AtomicBool>,
) -> Latencies {
    let mut lat = Latencies {
        answered: Vec::new(),
        failed: 0,
    };
    let mut i = offset;
    while !stop.load(Ordering::SeqCst) {
        let url = format!("{base}{}", PAGES[i % PAGES.len()]);
        i += 1;
        let t = Instant::now();
        let ok = match client
            .get(&url)
            .header(reqwest::header::COOKIE, &cookie)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        };
        if ok {
            lat.answered.push(t.elapsed());
        } else {
            lat.failed += 1;
        }
    }
    lat
}

fn merge(all: Vec<Latencies>) -> Latencies {
    let mut m = Latencies {
        answered: Vec::new(),
        failed: 0,
    };
    for l in all {
        m.answered.extend(l.answered);
        m.failed += l.failed;
    }
    m.answered.sort();
    m
}

/// Starts the export through the `/exports` form; returns the job's id
/// (the newest row of the page it redirects to).
async fn start_export(client: &reqwest::Client, base: &str, admin: &Session) -> Result<i64> {
    let today = wa_smile::time::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    let resp = client
        .post(format!("{base}/exports"))
        .header(reqwest::header::COOKIE, &admin.cookie)
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(form(&[
            ("csrf", admin.csrf.as_str()),
            ("kind", "audit"),
            ("from", "2000-01-01"),
            ("to", &today.to_string()),
            ("format", "csv"),
            ("branch", ""),
        ]))
        .send()
        .await?;
    ensure!(
        resp.status() == reqwest::StatusCode::SEE_OTHER,
        "POST /exports answered {}: {}",
        resp.status(),
        resp.text().await.unwrap_or_default()
    );
    let html = client
        .get(format!("{base}/exports"))
        .header(reqwest::header::COOKIE, &admin.cookie)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let i = html.find("id=\"job-").context("no job on /exports")? + "id=\"job-".len();
    let digits: String = html[i..].chars().take_while(char::is_ascii_digit).collect();
    Ok(digits.parse()?)
}

/// Polls the job's row as the page does (every second) until it is done.
async fn wait_for_job(
    client: &reqwest::Client,
    base: &str,
    admin: &Session,
    id: i64,
) -> Result<()> {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let row = client
            .get(format!("{base}/exports/{id}/row"))
            .header(reqwest::header::COOKIE, &admin.cookie)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        if row.contains("job-finished") {
            return Ok(());
        }
        if row.contains("job-failed") {
            bail!("export job {id} failed: {row}");
        }
    }
}

async fn run_backend(name: &str, url: &str, spec: &Spec, dir: &Path) -> Result<bool> {
    let db = Db::connect(url, 2).await?;
    user(&db, ADMIN, Role::Admin, None).await?;
    user(&db, OFFICER, Role::Officer, Some(OFFICER_BRANCH)).await?;
    let exports = dir.join(format!("exports-{name}"));
    let serve = Serve::start(
        &format!("export-load-{name}"),
        url,
        dir,
        "messages_per_second = 1",
        &format!("[exports]\ndir = \"{}\"\n", exports.display()),
        false,
    )
    .await?;
    let base = serve.base();
    let client = serve.client.clone();
    let admin = login(&client, &base, ADMIN, "/exports").await?;
    let officer = login(&client, &base, OFFICER, "/cases").await?;
    // The delivery worker's first pass reads the whole backlog of due
    // reminders; the figures are of the server at work, not starting.
    tokio::time::sleep(Duration::from_secs(5)).await;

    // The officer's pages before the export, for comparison.
    let stop = Arc::new(AtomicBool::new(false));
    let spawn_browsers = |stop: &Arc<AtomicBool>| {
        (0..spec.concurrency)
            .map(|i| {
                tokio::spawn(browse(
                    client.clone(),
                    base.clone(),
                    officer.cookie.clone(),
                    i * 3,
                    stop.clone(),
                ))
            })
            .collect::<Vec<_>>()
    };
    let before = spawn_browsers(&stop);
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::SeqCst);
    let mut idle = Vec::new();
    for b in before {
        idle.push(b.await?);
    }
    let idle = merge(idle);

    let stop = Arc::new(AtomicBool::new(false));
    let browsers = spawn_browsers(&stop);
    let hooks = (spec.webhook_rate > 0).then(|| {
        tokio::spawn(super::webhooks::open_loop(
            client.clone(),
            format!("{base}/webhooks/whatsapp"),
            spec.webhook_rate,
            stop.clone(),
        ))
    });
    let t = Instant::now();
    let id = start_export(&client, &base, &admin).await?;
    let waited = wait_for_job(&client, &base, &admin, id).await;
    let polled = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let mut lists = Vec::new();
    for b in browsers {
        lists.push(b.await?);
    }
    let list = merge(lists);
    let hooks = match hooks {
        Some(h) => Some(h.await??),
        None => None,
    };
    let _ = serve.stop()?;
    waited?;

    let job = ExportJobs::new(db.clone(), &exports)
        .status(id)
        .await?
        .context("the export job vanished")?;
    ensure!(
        job.state == JobState::Finished,
        "export job {id} did not finish"
    );
    let m = job.manifest.context("a finished job has a manifest")?;
    let secs = job
        .finished_at
        .map(|f| (f - job.created_at).num_milliseconds() as f64 / 1000.0)
        .unwrap_or(polled);
    let file = job.path.context("a finished job has a file")?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "[{name}] export from /exports: {} rows in {secs:.1}s ({:.0} rows/s, {} MB; seen finished by the page's poll after {polled:.1}s)",
        m.row_count,
        m.row_count as f64 / secs,
        size / 1_048_576
    );
    println!(
        "[{name}] case list before the export: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        idle.answered.len(),
        idle.pct(0.50),
        idle.pct(0.99),
        idle.max()
    );
    println!(
        "[{name}] case list during the export ({} officer loops): {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} failed",
        spec.concurrency,
        list.answered.len(),
        list.pct(0.50),
        list.pct(0.99),
        list.max(),
        list.failed
    );
    let hooks_ok = match &hooks {
        Some(h) => {
            println!(
                "[{name}] status webhooks at {}/s during the export: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} not 200",
                spec.webhook_rate,
                h.answered.len() + h.failed,
                h.pct(0.50),
                h.pct(0.99),
                h.max(),
                h.failed
            );
            h.failed == 0
        }
        None => true,
    };

    let base_file = dir.join(format!("baseline-{name}.csv"));
    let baseline = baseline(url, m.filters.max_audit_seq, &base_file)?;
    let ratio = secs / baseline;
    println!(
        "[{name}] baseline ({}) reading the same rows into a file: {baseline:.2}s, {} MB; export / baseline = {ratio:.2}×",
        if url.starts_with("sqlite:") {
            "sqlite3 -csv"
        } else {
            "psql \\copy … CSV"
        },
        std::fs::metadata(&base_file)?.len() / 1_048_576
    );
    db.close().await;
    Ok(list.failed == 0 && list.pct(0.99) < 200.0 && ratio <= 3.0 && hooks_ok)
}

/// Times the database's own CLI writing the audit rows up to `max_seq` as
/// CSV into `out`.
fn baseline(url: &str, max_seq: i64, out: &Path) -> Result<f64> {
    let select =
        format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq <= {max_seq} ORDER BY seq");
    let t = Instant::now();
    let status = if let Some(path) = url.strip_prefix("sqlite://") {
        std::process::Command::new("sqlite3")
            .arg("-csv")
            .arg(path)
            .arg(&select)
            .stdout(std::fs::File::create(out)?)
            .status()
            .context("cannot run sqlite3 (apt-get install sqlite3)")?
    } else {
        std::process::Command::new("psql")
            .arg(url)
            .arg("-q")
            .arg("-c")
            .arg(format!("\\copy ({select}) TO '{}' CSV", out.display()))
            .status()
            .context("cannot run psql")?
    };
    let secs = t.elapsed().as_secs_f64();
    ensure!(status.success(), "the baseline failed: {status}");
    Ok(secs)
}
