//! `timeline`: one case with 5,000 events (messages with their ticks,
//! replies, notes), then the case page's first page and the timeline
//! partial rendered through the real router, timed.
//! `live`: 50 open case pages polling `/cases/{id}/timeline?v=…` at once,
//! rounds of which are timed, idle (204) and with a change on every page;
//! then 50 open case lists polling `/cases/rows?…&v=…` the same way (a
//! change re-reads the page of 50 cases).
//!
//! `cargo run --bin wa-smile-bench -- timeline` / `-- live` (debug builds
//! are fine for the order of magnitude; add `--release` for the figure).

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;
use wa_smile::accounts::{self, Login, Role};
use wa_smile::case_log::{self, Actor, EventKind, NewEvent};
use wa_smile::config::Config;
use wa_smile::demo::{self, Synthetic};
use wa_smile::http::{self, AppState};
use wa_smile::store::Db;

const AT: &str = "2026-03-03T03:00:00Z";

/// A seeded SQLite database with `cases` open cases, an admin's session
/// cookie, the router, and the case ids.
async fn setup(dir: &Path, cases: usize) -> Result<(Db, axum::Router, String, Vec<i64>)> {
    let spec = Synthetic {
        employers: cases,
        bills_per_employer: 2,
        overdue_percent: 100,
        at: AT.parse()?,
        seed: 7,
    };
    let (emp, bills) = demo::write_csv(dir, &spec)?;
    let url = format!("sqlite://{}", dir.join("timeline.db").display());
    super::seed_and_scan("sqlite", &url, &emp, &bills).await?;
    let db = Db::connect(&url, 4).await?;
    accounts::add_user(&db, "bench", "rahasia-sekali-123", Role::Admin, None).await?;
    let Login::Ok { cookie } = accounts::login(&db, "bench", "rahasia-sekali-123", "bench").await?
    else {
        anyhow::bail!("bench login failed");
    };
    let config = Config::from_sources(None, Vec::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let router = http::router(AppState {
        db: db.clone(),
        config: Arc::new(config),
        workers: Default::default(),
    });
    let ids: Vec<i64> = db
        .query("SELECT id FROM cases ORDER BY id")
        .fetch_all_as::<(i64,)>(&db)
        .await?
        .into_iter()
        .map(|(i,)| i)
        .collect();
    Ok((db, router, cookie, ids))
}

async fn get(router: &axum::Router, cookie: &str, uri: &str) -> Result<(u16, usize)> {
    let req = Request::get(uri)
        .header(
            "cookie",
            format!("{}={cookie}", http::admin::SESSION_COOKIE),
        )
        .body(Body::empty())?;
    let res = router.clone().oneshot(req).await?;
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX).await?;
    Ok((status, body.len()))
}

/// `n` events on `case_id`: a third outgoing messages (queued, sent, read),
/// the rest replies and notes, one a minute from `from`.
async fn events(db: &Db, case_id: i64, n: usize, from: DateTime<Utc>) -> Result<()> {
    let employer: i64 = db
        .query("SELECT employer_id FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_scalar(db)
        .await?;
    let mut batch = Vec::new();
    let mut i = 0usize;
    while batch.len() < n {
        let at = from + Duration::minutes(i as i64);
        if i.is_multiple_of(3) {
            let outbox: i64 = db
                .query(
                    "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, body, state, \
                     due_at, created_at, updated_at, text, sent_at) \
                     VALUES ($1, $2, $3, 'reminder_1', 'template', '{}', 'read', $4, $4, $4, $5, $4) RETURNING id",
                )
                .bind(case_id)
                .bind(employer)
                .bind(format!("bench:{case_id}:{i}"))
                .bind(at)
                .bind(format!("Yth. Bapak/Ibu, iuran periode {i} belum kami terima."))
                .fetch_scalar(db)
                .await?;
            for kind in [
                EventKind::MessageQueued,
                EventKind::MessageSent,
                EventKind::MessageRead,
            ] {
                batch.push(NewEvent::new(
                    case_id,
                    at,
                    kind,
                    Actor::System,
                    json!({"outbox_id": outbox, "message": "reminder_1"}),
                ));
            }
        } else if i % 3 == 1 {
            batch.push(NewEvent::new(
                case_id,
                at,
                EventKind::ReplyReceived,
                Actor::Employer,
                json!({"intent": "promise_to_pay", "text": format!("besok kami bayar ({i})"),
                       "wamid": format!("wamid.bench{i}")}),
            ));
        } else {
            batch.push(NewEvent::new(
                case_id,
                at,
                EventKind::NoteAdded,
                Actor::Officer("bench".into()),
                json!({"text": format!("catatan {i}")}),
            ));
        }
        i += 1;
    }
    batch.truncate(n);
    let mut tx = db.begin().await?;
    case_log::record(&mut tx, &batch).await?;
    tx.commit().await?;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub async fn timeline(events_n: usize, runs: usize) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (db, router, cookie, ids) = setup(tmp.path(), 1).await?;
    let case_id = *ids.first().context("no case opened")?;
    events(&db, case_id, events_n, AT.parse()?).await?;
    let total: i64 = db
        .query("SELECT COUNT(*) FROM case_events WHERE case_id = $1")
        .bind(case_id)
        .fetch_scalar(&db)
        .await?;
    for (what, uri) in [
        ("case page, first page", format!("/cases/{case_id}")),
        ("timeline partial", format!("/cases/{case_id}/timeline")),
    ] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let (status, bytes) = get(&router, &cookie, &uri).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status == 200, "{uri} answered {status}");
            size = bytes;
        }
        let worst = times.iter().cloned().fold(0.0, f64::max);
        println!(
            "[sqlite] {what} of a case with {total} events: median {:.1} ms, worst {worst:.1} ms ({size} bytes, {runs} runs)",
            median(times)
        );
    }
    Ok(())
}

pub async fn live(pages: usize, rounds: usize) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (db, router, cookie, ids) = setup(tmp.path(), pages).await?;
    anyhow::ensure!(ids.len() >= pages, "only {} cases opened", ids.len());
    let ids = &ids[..pages];
    for &id in ids {
        events(&db, id, 200, AT.parse()?).await?;
    }
    let round = |changed: bool| {
        let (router, cookie, db) = (router.clone(), cookie.clone(), db.clone());
        let ids = ids.to_vec();
        async move {
            let mut polls = Vec::new();
            for id in ids {
                let v = case_log::version(&db, id).await?;
                let v = if changed { v - 1 } else { v };
                polls.push(format!("/cases/{id}/timeline?v={v}"));
            }
            let t = Instant::now();
            let answers =
                futures::future::join_all(polls.iter().map(|u| get(&router, &cookie, u))).await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let want = if changed { 200 } else { 204 };
            for a in answers {
                anyhow::ensure!(a?.0 == want, "a poll did not answer {want}");
            }
            anyhow::Ok(ms)
        }
    };
    for (what, changed) in [("idle (204)", false), ("every page changed (200)", true)] {
        let mut times = Vec::new();
        for _ in 0..rounds {
            times.push(round(changed).await?);
        }
        let m = median(times);
        println!(
            "[sqlite] {pages} open pages polling, {what}: a round of {pages} polls takes {m:.1} ms \
             ({:.2} ms a poll); at one poll per page every 3 s that is {:.1}% of one core",
            m / pages as f64,
            m / 3000.0 * 100.0
        );
    }
    // The list: every open list page polls the same version (the newest
    // event any case of the caller's scope has), so one change anywhere
    // re-reads every open page.
    let version = case_log::version_for_branch(&db, None).await?;
    let list_round = |v: i64, want: u16| {
        let (router, cookie) = (router.clone(), cookie.clone());
        async move {
            let uri = format!("/cases/rows?sort=arrears&dir=desc&page=1&v={v}");
            let t = Instant::now();
            let answers =
                futures::future::join_all((0..pages).map(|_| get(&router, &cookie, &uri))).await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            for a in answers {
                anyhow::ensure!(a?.0 == want, "a list poll did not answer {want}");
            }
            anyhow::Ok(ms)
        }
    };
    for (what, v, want) in [
        ("idle (204)", version, 204),
        ("something changed (200)", version - 1, 200),
    ] {
        let mut times = Vec::new();
        for _ in 0..rounds {
            times.push(list_round(v, want).await?);
        }
        let m = median(times);
        println!(
            "[sqlite] {pages} open case lists polling, {what}: a round of {pages} polls takes {m:.1} ms \
             ({:.2} ms a poll); at one poll per page every 3 s that is {:.1}% of one core",
            m / pages as f64,
            m / 3000.0 * 100.0
        );
    }
    Ok(())
}
