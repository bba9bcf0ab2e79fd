//! The supervisors' dashboard: open cases and arrears by stage and age,
//! promises and messages over a period, money collected after a reminder,
//! per branch and per officer.

use super::{render, ser, PageError, User};
use crate::domain::Money;
use crate::http::error::AppError;
use crate::http::AppState;
use crate::store::Db;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use minijinja::context;

#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Period {
    from: String,
    to: String,
}

#[derive(Debug, serde::Serialize)]
struct Line {
    key: String,
    cases: i64,
    arrears: Money,
    /// The case list filtered to this line's cases.
    href: String,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    k: Option<String>,
    n: i64,
    a: i64,
}

#[derive(sqlx::FromRow)]
struct FlowRow {
    k: Option<String>,
    kind: String,
    n: i64,
}

#[derive(sqlx::FromRow)]
struct PaidRow {
    a: i64,
    n: i64,
}

/// The case-list link of a grouped line (`param` is the filter's name).
fn href(param: &str, key: Option<&str>) -> String {
    let value = match (param, key) {
        ("assignee", None) => "-".to_owned(),
        (_, Some(k)) => k.to_owned(),
        (_, None) => String::new(),
    };
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair(param, &value);
    format!("/cases?{}", s.finish())
}

#[derive(Debug, Default, serde::Serialize)]
struct Flow {
    key: String,
    promise_to_pay: i64,
    promise_kept: i64,
    promise_broken: i64,
    message_sent: i64,
    message_delivered: i64,
    message_read: i64,
    message_failed: i64,
    notes: i64,
}

/// `c.branch = $1` for a confined caller, numbered from `first`.
fn scope_sql(scope: Option<&str>, first: usize) -> String {
    scope
        .map(|_| format!(" AND c.branch = ${first}"))
        .unwrap_or_default()
}

async fn grouped(
    db: &Db,
    scope: Option<&str>,
    key: &str,
    param: &str,
) -> anyhow::Result<Vec<Line>> {
    let sql = format!(
        "SELECT {key} AS k, COUNT(*) AS n, CAST(COALESCE(SUM(c.arrears_minor), 0) AS BIGINT) AS a FROM cases c \
         WHERE c.resolved_at IS NULL{} GROUP BY {key} ORDER BY {key}",
        scope_sql(scope, 1)
    );
    let mut q = db.query(&sql);
    if let Some(b) = scope {
        q = q.bind(b.to_owned());
    }
    Ok(q.fetch_all_as::<LineRow>(db)
        .await?
        .into_iter()
        .map(|r| Line {
            href: href(param, r.k.as_deref()),
            key: r.k.unwrap_or_else(|| "—".into()),
            cases: r.n,
            arrears: Money::from_minor(r.a),
        })
        .collect())
}

/// Stages in the order a case escalates through them, not alphabetical.
fn escalation_order(lines: &mut [Line]) {
    let rank = |k: &str| {
        crate::domain::Stage::ALL
            .iter()
            .position(|s| s.as_str() == k)
            .unwrap_or(usize::MAX)
    };
    lines.sort_by_key(|l| rank(&l.key));
}

/// Dates a dashboard period may start or end on: far enough for any real
/// question, near enough that the bounds of a day never overflow.
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 9999;

/// A period bound from the query string (`default` when empty).
fn period_date(raw: &str, default: NaiveDate) -> Result<NaiveDate, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(default);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|d| (FIRST_YEAR..=LAST_YEAR).contains(&d.year()))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "Tanggal periode tidak valid. Gunakan format YYYY-MM-DD antara tahun {FIRST_YEAR} dan {LAST_YEAR}."
            ))
        })
}

/// Everything the dashboard shows, for the page and its CSV.
struct Figures {
    from: NaiveDate,
    to: NaiveDate,
    by_stage: Vec<Line>,
    by_age: Vec<Line>,
    by_branch: Vec<Line>,
    by_officer: Vec<Line>,
    flow_branch: Vec<Flow>,
    flow_officer: Vec<Flow>,
    total: Flow,
    collected: Money,
    payments_after: i64,
    costs: crate::pricing::CostSummary,
    /// The officers' corrections of the bot's readings, the last weeks.
    corrections: Vec<crate::replies::corrections::WeekRate>,
}

/// How many weeks of the correction rate the dashboard shows.
const CORRECTION_WEEKS: usize = 8;

// One query per figure, in order; splitting it would only pass the period
// and scope around.
async fn figures(
    state: &AppState,
    who: &crate::accounts::Principal,
    p: &Period,
) -> Result<Figures, AppError> {
    let tz = state.tz();
    let now = crate::time::now();
    let today = now.with_timezone(&tz).date_naive();
    let from = period_date(&p.from, today - Duration::days(30))?;
    let to = period_date(&p.to, today)?.max(from);
    let start = |d: NaiveDate| -> DateTime<Utc> {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now)
    };
    let (t0, t1) = (start(from), start(to + Duration::days(1)));
    let scope = who.branch_scope();
    let db = &state.db;

    let mut by_stage = grouped(db, scope, "c.stage", "stage").await?;
    escalation_order(&mut by_stage);
    let by_branch = grouped(db, scope, "c.branch", "branch").await?;
    let by_officer = grouped(db, scope, "c.assignee", "assignee").await?;
    // Age buckets by the oldest unpaid due date.
    let age_sql = format!(
        "SELECT CASE WHEN c.oldest_due_date >= $1 THEN '0–30' WHEN c.oldest_due_date >= $2 THEN '31–60' \
                     WHEN c.oldest_due_date >= $3 THEN '61–90' ELSE '> 90' END AS k, \
                COUNT(*) AS n, CAST(COALESCE(SUM(c.arrears_minor), 0) AS BIGINT) AS a \
         FROM cases c WHERE c.resolved_at IS NULL{} GROUP BY 1 ORDER BY 1",
        scope_sql(scope, 4)
    );
    let mut q = db
        .query(&age_sql)
        .bind(today - Duration::days(30))
        .bind(today - Duration::days(60))
        .bind(today - Duration::days(90));
    if let Some(b) = scope {
        q = q.bind(b.to_owned());
    }
    // The case list has no age filter: an age line opens it sorted by days
    // overdue, the oldest first.
    let mut by_age: Vec<Line> = q
        .fetch_all_as::<LineRow>(db)
        .await?
        .into_iter()
        .map(|r| Line {
            key: r.k.unwrap_or_default(),
            cases: r.n,
            arrears: Money::from_minor(r.a),
            href: "/cases?sort=days_overdue".into(),
        })
        .collect();
    let age_rank = |k: &str| {
        ["0–30", "31–60", "61–90", "> 90"]
            .iter()
            .position(|b| *b == k)
    };
    by_age.sort_by_key(|l| age_rank(&l.key));

    // Promises and messages in the period, per branch and per officer.
    let flow = |key: &'static str| {
        let scope_clause = scope_sql(scope, 3);
        async move {
            let sql = format!(
                "SELECT {key} AS k, ev.kind, COUNT(*) AS n FROM case_events ev JOIN cases c ON c.id = ev.case_id \
                 WHERE ev.at >= $1 AND ev.at < $2{scope_clause} AND ev.kind IN \
                 ('promise_to_pay','promise_kept','promise_broken','message_sent','message_delivered','message_read','message_failed','note_added') \
                 GROUP BY {key}, ev.kind"
            );
            let mut q = db.query(&sql).bind(t0).bind(t1);
            if let Some(b) = scope {
                q = q.bind(b.to_owned());
            }
            let mut out: Vec<Flow> = Vec::new();
            for r in q.fetch_all_as::<FlowRow>(db).await? {
                let k = r.k.unwrap_or_else(|| "—".into());
                let n = r.n;
                let i = match out.iter().position(|f| f.key == k) {
                    Some(i) => i,
                    None => {
                        out.push(Flow {
                            key: k,
                            ..Flow::default()
                        });
                        out.len() - 1
                    }
                };
                let f = &mut out[i];
                match r.kind.as_str() {
                    "promise_to_pay" => f.promise_to_pay += n,
                    "promise_kept" => f.promise_kept += n,
                    "promise_broken" => f.promise_broken += n,
                    "message_sent" => f.message_sent += n,
                    "message_delivered" => f.message_delivered += n,
                    "message_read" => f.message_read += n,
                    "message_failed" => f.message_failed += n,
                    _ => f.notes += n,
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            anyhow::Ok(out)
        }
    };
    let flow_branch = flow("c.branch").await?;
    // An officer's figures are what the officer did (notes, promises and
    // messages recorded by them), plus the bot's work on the cases assigned
    // to them.
    let flow_officer =
        flow("CASE WHEN ev.actor LIKE 'officer:%' THEN substr(ev.actor, 9) ELSE c.assignee END")
            .await?;
    let mut total = Flow {
        key: "Total".into(),
        ..Flow::default()
    };
    for f in &flow_branch {
        total.promise_to_pay += f.promise_to_pay;
        total.promise_kept += f.promise_kept;
        total.promise_broken += f.promise_broken;
        total.message_sent += f.message_sent;
        total.message_delivered += f.message_delivered;
        total.message_read += f.message_read;
        total.message_failed += f.message_failed;
        total.notes += f.notes;
    }

    // Money paid in the period by employers who had been sent a reminder
    // before paying.
    let paid_sql = format!(
        "SELECT CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT) AS a, COUNT(*) AS n FROM payments p \
         WHERE p.paid_at >= $1 AND p.paid_at < $2 AND EXISTS (\
           SELECT 1 FROM cases c JOIN case_events ev ON ev.case_id = c.id \
           WHERE c.employer_id = p.employer_id AND ev.kind = 'message_sent' AND ev.at < p.paid_at{})",
        scope_sql(scope, 3)
    );
    let mut q = db.query(&paid_sql).bind(t0).bind(t1);
    if let Some(b) = scope {
        q = q.bind(b.to_owned());
    }
    let r: PaidRow = q.fetch_one_as(db).await?;
    let collected = Money::from_minor(r.a);
    let payments_after = r.n;
    let rates = crate::pricing::Rates::from_config(&state.config.pricing);
    let costs = crate::pricing::summary(db, &rates, tz, scope, t0, t1, collected).await?;
    let corrections =
        crate::replies::corrections::weekly_rate(db, scope, tz, today, CORRECTION_WEEKS).await?;

    Ok(Figures {
        from,
        to,
        by_stage,
        by_age,
        by_branch,
        by_officer,
        flow_branch,
        flow_officer,
        total,
        collected,
        payments_after,
        costs,
        corrections,
    })
}

pub async fn page(
    State(state): State<AppState>,
    user: User,
    Query(p): Query<Period>,
) -> Result<Response, PageError> {
    let who = user.principal();
    if !who.is_supervisor() {
        return Err(AppError::Forbidden.into());
    }
    let Figures {
        from,
        to,
        by_stage,
        by_age,
        by_branch,
        by_officer,
        flow_branch,
        flow_officer,
        total,
        collected,
        payments_after,
        costs,
        corrections,
    } = figures(&state, who, &p).await?;
    Ok(render(
        StatusCode::OK,
        "admin/dashboard.html",
        context! {
            user => ser(who), csrf => user.0.csrf_token.clone(), nav => "dashboard",
            from => from.to_string(), to => to.to_string(),
            by_stage => ser(&by_stage), by_age => ser(&by_age), by_branch => ser(&by_branch), by_officer => ser(&by_officer),
            flow_branch => ser(&flow_branch), flow_officer => ser(&flow_officer), total => ser(&total),
            collected => ser(&collected), payments_after => payments_after, costs => ser(&costs),
            corrections => ser(&corrections),
        },
    ))
}

/// The figures the dashboard shows for the period, as CSV (the "Unduh"
/// button): one section per table, machine codes and plain numbers.
pub async fn csv(
    State(state): State<AppState>,
    user: User,
    Query(p): Query<Period>,
) -> Result<Response, PageError> {
    let who = user.principal();
    if !who.is_supervisor() {
        return Err(AppError::Forbidden.into());
    }
    let f = figures(&state, who, &p).await?;
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let mut write = |rec: &[String]| w.write_record(rec).map_err(anyhow::Error::from);
    write(&[
        "table".into(),
        "key".into(),
        "cases".into(),
        "arrears".into(),
    ])?;
    for (table, lines) in [
        ("stage", &f.by_stage),
        ("age_days", &f.by_age),
        ("branch", &f.by_branch),
        ("officer", &f.by_officer),
    ] {
        for l in lines {
            write(&[
                table.into(),
                l.key.clone(),
                l.cases.to_string(),
                crate::export::money_text(l.arrears),
            ])?;
        }
    }
    write(&[])?;
    write(
        &[
            "table",
            "key",
            "promise_to_pay",
            "promise_kept",
            "promise_broken",
            "message_sent",
            "message_delivered",
            "message_read",
            "message_failed",
            "notes",
        ]
        .map(String::from),
    )?;
    for (table, flows) in [
        ("activity_branch", &f.flow_branch),
        ("activity_officer", &f.flow_officer),
    ] {
        for x in flows
            .iter()
            .chain((table == "activity_branch").then_some(&f.total))
        {
            write(&[
                table.into(),
                x.key.clone(),
                x.promise_to_pay.to_string(),
                x.promise_kept.to_string(),
                x.promise_broken.to_string(),
                x.message_sent.to_string(),
                x.message_delivered.to_string(),
                x.message_read.to_string(),
                x.message_failed.to_string(),
                x.notes.to_string(),
            ])?;
        }
    }
    write(&[])?;
    write(&[
        "collected_after_reminder".into(),
        crate::export::money_text(f.collected),
        f.payments_after.to_string(),
    ])?;
    write(&[])?;
    write(&["table", "week_start", "week_end", "classified", "corrected"].map(String::from))?;
    for wk in &f.corrections {
        write(&[
            "correction_rate".into(),
            wk.start.to_string(),
            wk.end.to_string(),
            wk.classified.to_string(),
            wk.corrected.to_string(),
        ])?;
    }
    let body = w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"wa-smile-dasbor-{}-{}.csv\"",
                    f.from, f.to
                ),
            ),
        ],
        body,
    )
        .into_response())
}
