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
use axum::response::Response;
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

async fn grouped(db: &Db, scope: Option<&str>, key: &str) -> anyhow::Result<Vec<Line>> {
    let sql = format!(
        "SELECT {key} AS k, COUNT(*) AS n, CAST(COALESCE(SUM(c.arrears_minor), 0) AS BIGINT) AS a FROM cases c \
         WHERE c.resolved_at IS NULL{} GROUP BY {key} ORDER BY {key}",
        scope_sql(scope, 1)
    );
    let mut q = db.query(&sql);
    if let Some(b) = scope {
        q = q.bind(b.to_owned());
    }
    q.fetch_all(db)
        .await?
        .iter()
        .map(|r| {
            Ok(Line {
                key: r.get::<Option<String>>("k")?.unwrap_or_else(|| "—".into()),
                cases: r.get("n")?,
                arrears: Money::from_minor(r.get("a")?),
            })
        })
        .collect()
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

pub async fn page(
    State(state): State<AppState>,
    user: User,
    Query(p): Query<Period>,
) -> Result<Response, PageError> {
    let who = user.principal();
    if !who.is_supervisor() {
        return Err(AppError::Forbidden.into());
    }
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

    let by_stage = grouped(db, scope, "c.stage").await?;
    let by_branch = grouped(db, scope, "c.branch").await?;
    let by_officer = grouped(db, scope, "c.assignee").await?;
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
    let by_age: Vec<Line> = q
        .fetch_all(db)
        .await?
        .iter()
        .map(|r| {
            Ok(Line {
                key: r.get("k")?,
                cases: r.get("n")?,
                arrears: Money::from_minor(r.get("a")?),
            })
        })
        .collect::<anyhow::Result<_>>()?;

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
            for r in q.fetch_all(db).await? {
                let k = r.get::<Option<String>>("k")?.unwrap_or_else(|| "—".into());
                let n: i64 = r.get("n")?;
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
                match r.get::<String>("kind")?.as_str() {
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
    let flow_officer = flow("c.assignee").await?;
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
    let r = q.fetch_one(db).await?;
    let collected = Money::from_minor(r.get("a")?);
    let payments_after: i64 = r.get("n")?;
    let rates = crate::pricing::Rates::from_config(&state.config.pricing);
    let costs = crate::pricing::summary(db, &rates, tz, scope, t0, t1, collected).await?;

    Ok(render(
        StatusCode::OK,
        "admin/dashboard.html",
        context! {
            user => ser(who), csrf => user.0.csrf_token.clone(), nav => "dashboard",
            from => from.to_string(), to => to.to_string(),
            by_stage => ser(&by_stage), by_age => ser(&by_age), by_branch => ser(&by_branch), by_officer => ser(&by_officer),
            flow_branch => ser(&flow_branch), flow_officer => ser(&flow_officer), total => ser(&total),
            collected => ser(&collected), payments_after => payments_after, costs => ser(&costs),
        },
    ))
}
