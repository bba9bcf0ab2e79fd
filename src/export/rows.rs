//! The rows of each export, derived from the database by streaming.

use super::{wib, Cell, ColType, Column, Consumer, ExportKind, Filters};
use crate::case::figures::{figures, BillLine};
use crate::domain::{Money, Policy};
use crate::store::{list_placeholders, Db, Row};
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::HashMap;
use tokio::io::{AsyncWrite, AsyncWriteExt};

const fn col(name: &'static str, ty: ColType) -> Column {
    Column { name, ty }
}

pub(crate) const AUDIT_COLUMNS: &[Column] = &[
    col("seq", ColType::Int),
    col("at_utc", ColType::Text),
    col("at_wib", ColType::DateTime),
    col("actor", ColType::Text),
    col("action", ColType::Text),
    col("entity", ColType::Text),
    col("before", ColType::Text),
    col("after", ColType::Text),
    col("payload_digest", ColType::Text),
    col("prev_hash", ColType::Text),
    col("hash", ColType::Text),
    col("redacted_at", ColType::Text),
];

pub(crate) const CASE_COLUMNS: &[Column] = &[
    col("event_id", ColType::Int),
    col("at_utc", ColType::Text),
    col("at_wib", ColType::DateTime),
    col("case_id", ColType::Int),
    col("npp", ColType::Text),
    col("employer", ColType::Text),
    col("branch", ColType::Text),
    col("kind", ColType::Text),
    col("actor", ColType::Text),
    col("intent", ColType::Text),
    col("promised_date", ColType::Date),
    col("amount", ColType::Money),
    col("message_status", ColType::Text),
    col("meta_error", ColType::Text),
    col("details", ColType::Text),
];

pub(crate) const SUMMARY_COLUMNS: &[Column] = &[
    col("case_id", ColType::Int),
    col("npp", ColType::Text),
    col("employer", ColType::Text),
    col("branch", ColType::Text),
    col("status", ColType::Text),
    col("stage", ColType::Text),
    col("assignee", ColType::Text),
    col("arrears", ColType::Money),
    col("late_fees", ColType::Money),
    col("total_due", ColType::Money),
    col("promises_made", ColType::Int),
    col("promises_kept", ColType::Int),
    col("promises_broken", ColType::Int),
    col("messages_sent", ColType::Int),
    col("messages_delivered", ColType::Int),
    col("messages_read", ColType::Int),
    col("opened_at_wib", ColType::DateTime),
    col("resolved_at_wib", ColType::DateTime),
    col("resolution", ColType::Text),
];

/// Entities that belong to the employers of branch `$N`: the audit trail's
/// branch scope. Each use of the branch gets its own placeholder.
fn branch_entities(first: usize) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "SELECT 'employer:' || e.npp FROM employers e WHERE e.branch = {} \
         UNION ALL SELECT 'case:' || c.id FROM cases c JOIN employers e ON e.id = c.employer_id WHERE e.branch = {} \
         UNION ALL SELECT 'bill:' || e.npp || ':' || b.period FROM bills b JOIN employers e ON e.id = b.employer_id WHERE e.branch = {} \
         UNION ALL SELECT 'bill:' || e.id || ':' || b.period FROM bills b JOIN employers e ON e.id = b.employer_id WHERE e.branch = {} \
         UNION ALL SELECT 'payment:' || p.reference FROM payments p JOIN employers e ON e.id = p.employer_id WHERE e.branch = {}",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4)
    )
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn drain<C: Consumer, W: AsyncWrite + Unpin + Send>(c: &mut C, out: &mut W) -> Result<()> {
    if let Some(bytes) = c.take_output(false) {
        out.write_all(&bytes).await?;
    }
    Ok(())
}

pub(crate) async fn produce<C: Consumer, W: AsyncWrite + Unpin + Send>(
    db: &Db,
    f: &Filters,
    policy: &Policy,
    c: &mut C,
    out: &mut W,
) -> Result<()> {
    match f.kind {
        ExportKind::Audit => audit_rows(db, f, c, out).await,
        ExportKind::Cases => case_rows(db, f, c, out).await,
        ExportKind::Summary => summary_rows(db, f, policy, c, out).await,
    }
}

async fn audit_rows<C: Consumer, W: AsyncWrite + Unpin + Send>(
    db: &Db,
    f: &Filters,
    c: &mut C,
    out: &mut W,
) -> Result<()> {
    let (start, end) = f.range_utc();
    let mut sql = String::from(
        "SELECT a.seq, a.at, a.actor, a.action, a.entity, a.before, a.after, a.payload_digest, a.prev_hash, a.hash, a.redacted_at \
         FROM audit_log a WHERE a.at >= $1 AND a.at < $2 AND a.seq <= $3",
    );
    if f.branch.is_some() {
        sql.push_str(&format!(" AND a.entity IN ({})", branch_entities(4)));
    }
    sql.push_str(" ORDER BY a.seq");
    let mut q = db.query(&sql).bind(start).bind(end).bind(f.max_audit_seq);
    if let Some(b) = &f.branch {
        for _ in 0..5 {
            q = q.bind(b.clone());
        }
    }
    let mut rows = q.fetch(db);
    while let Some(r) = rows.next().await {
        let r = r.context("failed to read the audit log")?;
        let at: DateTime<Utc> = r.get("at")?;
        let redacted: Option<DateTime<Utc>> = r.get("redacted_at")?;
        let cells = [
            Cell::Int(r.get("seq")?),
            Cell::Text(rfc3339(at)),
            Cell::DateTime(wib(at)),
            Cell::Text(r.get("actor")?),
            Cell::Text(r.get("action")?),
            Cell::Text(r.get("entity")?),
            Cell::opt_text(r.get("before")?),
            Cell::opt_text(r.get("after")?),
            Cell::Text(r.get("payload_digest")?),
            Cell::Text(r.get("prev_hash")?),
            Cell::Text(r.get("hash")?),
            Cell::opt_text(redacted.map(rfc3339)),
        ];
        c.push(&cells)?;
        drain(c, out).await?;
    }
    Ok(())
}

fn str_field(data: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match data.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn money_field(data: &Value, keys: &[&str]) -> Option<Money> {
    keys.iter().find_map(|k| {
        let d: Decimal = match data.get(*k)? {
            Value::String(s) => s.parse().ok()?,
            Value::Number(n) => n.to_string().parse().ok()?,
            _ => return None,
        };
        Some(Money::from_decimal(d))
    })
}

/// The case log row of one event.
fn case_cells(r: &Row) -> Result<Vec<Cell>> {
    let at: DateTime<Utc> = r.get("at")?;
    let kind: String = r.get("kind")?;
    let raw: String = r.get("data")?;
    let data: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let promised = str_field(&data, &["promised_date"])
        .and_then(|s| s.parse::<NaiveDate>().ok())
        .map(Cell::Date)
        .unwrap_or(Cell::Empty);
    let amount = money_field(
        &data,
        &[
            "amount",
            "paid_amount",
            "total_due",
            "arrears",
            "claimed_amount",
        ],
    )
    .map(Cell::Money)
    .unwrap_or(Cell::Empty);
    // Only message events have a message status (a case's `status` in
    // other events' data is the case's).
    let status = kind
        .strip_prefix("message_")
        .map(|suffix| str_field(&data, &["status"]).unwrap_or_else(|| suffix.to_owned()));
    let meta_error = match (
        str_field(&data, &["error_code", "code"]),
        str_field(&data, &["error", "error_title", "title"]),
    ) {
        (Some(c), Some(t)) => Some(format!("{c}: {t}")),
        (Some(c), None) => Some(c),
        (None, t) => t,
    };
    Ok(vec![
        Cell::Int(r.get("id")?),
        Cell::Text(rfc3339(at)),
        Cell::DateTime(wib(at)),
        Cell::Int(r.get("case_id")?),
        Cell::Text(r.get("npp")?),
        Cell::Text(r.get("name")?),
        Cell::Text(r.get("branch")?),
        Cell::Text(kind.clone()),
        Cell::Text(r.get("actor")?),
        Cell::opt_text(str_field(&data, &["intent"])),
        promised,
        amount,
        Cell::opt_text(status),
        Cell::opt_text(meta_error),
        Cell::Text(raw),
    ])
}

async fn case_rows<C: Consumer, W: AsyncWrite + Unpin + Send>(
    db: &Db,
    f: &Filters,
    c: &mut C,
    out: &mut W,
) -> Result<()> {
    let (start, end) = f.range_utc();
    let mut sql = String::from(
        "SELECT v.id, v.case_id, v.at, v.kind, v.actor, v.data, e.npp, e.name, e.branch \
         FROM case_events v JOIN cases c ON c.id = v.case_id JOIN employers e ON e.id = c.employer_id \
         WHERE v.at >= $1 AND v.at < $2 AND v.id <= $3",
    );
    if f.branch.is_some() {
        sql.push_str(" AND e.branch = $4");
    }
    sql.push_str(" ORDER BY v.id");
    let mut q = db.query(&sql).bind(start).bind(end).bind(f.max_event_id);
    if let Some(b) = &f.branch {
        q = q.bind(b.clone());
    }
    let mut rows = q.fetch(db);
    while let Some(r) = rows.next().await {
        let r = r.context("failed to read the case log")?;
        c.push(&case_cells(&r)?)?;
        drain(c, out).await?;
    }
    Ok(())
}

/// Cases open at any time in the range, a page at a time (each page's bills
/// in one query), with the case log counted up to `max_event_id`. Amounts are
/// as of `as_of`, or of the resolution for a resolved case, computed like
/// `cases::load`.
async fn summary_rows<C: Consumer, W: AsyncWrite + Unpin + Send>(
    db: &Db,
    f: &Filters,
    policy: &Policy,
    c: &mut C,
    out: &mut W,
) -> Result<()> {
    const PAGE: i64 = 500;
    let (start, end) = f.range_utc();
    let count = |kind: &str| {
        format!("(SELECT COUNT(*) FROM case_events v WHERE v.case_id = c.id AND v.kind = '{kind}' AND v.id <= $3) AS {kind}")
    };
    let mut sql = format!(
        "SELECT c.id, c.employer_id, c.status, c.stage, c.assignee, c.opened_at, c.resolved_at, c.resolution, \
                e.npp, e.name, e.branch, e.timezone, {}, {}, {}, {}, {}, {} \
         FROM cases c JOIN employers e ON e.id = c.employer_id \
         WHERE c.opened_at < $2 AND (c.resolved_at IS NULL OR c.resolved_at >= $1) AND c.id > $4",
        count("promise_to_pay"),
        count("promise_kept"),
        count("promise_broken"),
        count("message_sent"),
        count("message_delivered"),
        count("message_read"),
    );
    if f.branch.is_some() {
        sql.push_str(" AND e.branch = $6");
    }
    sql.push_str(" ORDER BY c.id LIMIT $5");
    let mut after = 0i64;
    loop {
        let mut q = db
            .query(&sql)
            .bind(start)
            .bind(end)
            .bind(f.max_event_id)
            .bind(after)
            .bind(PAGE);
        if let Some(b) = &f.branch {
            q = q.bind(b.clone());
        }
        let page = q.fetch_all(db).await.context("failed to read cases")?;
        let Some(last) = page.last() else { break };
        after = last.get("id")?;
        let mut employer_ids: Vec<i64> = page
            .iter()
            .map(|r| r.get("employer_id"))
            .collect::<Result<_>>()?;
        employer_ids.sort_unstable();
        employer_ids.dedup();
        let bill_sql = format!(
            "SELECT employer_id, amount_minor, paid_minor, due_date, settled_at, late_fee_minor FROM bills \
             WHERE employer_id IN ({}) ORDER BY employer_id, period",
            list_placeholders(employer_ids.len(), 1)
        );
        let mut bq = db.query(&bill_sql);
        for id in &employer_ids {
            bq = bq.bind(*id);
        }
        let mut bills: HashMap<i64, Vec<BillLine>> = HashMap::new();
        for b in bq.fetch_all(db).await? {
            bills
                .entry(b.get("employer_id")?)
                .or_default()
                .push(b.decode::<BillLine>()?);
        }
        for r in &page {
            let resolved: Option<DateTime<Utc>> = r.get("resolved_at")?;
            let opened: DateTime<Utc> = r.get("opened_at")?;
            let tz: Tz = r
                .get::<String>("timezone")?
                .parse()
                .unwrap_or(chrono_tz::Asia::Jakarta);
            let at = resolved.map_or(f.as_of, |t| t.min(f.as_of));
            let lines = bills
                .get(&r.get::<i64>("employer_id")?)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let (figures, _) = figures(lines, at, tz, Some(policy));
            let (arrears, fees) = (figures.arrears, figures.late_fees);
            let n = |k: &str| -> Result<Cell> { Ok(Cell::Int(r.get(k)?)) };
            let cells = [
                Cell::Int(r.get("id")?),
                Cell::Text(r.get("npp")?),
                Cell::Text(r.get("name")?),
                Cell::Text(r.get("branch")?),
                Cell::Text(r.get("status")?),
                Cell::Text(r.get("stage")?),
                Cell::opt_text(r.get("assignee")?),
                Cell::Money(arrears),
                Cell::Money(fees),
                Cell::Money(arrears + fees),
                n("promise_to_pay")?,
                n("promise_kept")?,
                n("promise_broken")?,
                n("message_sent")?,
                n("message_delivered")?,
                n("message_read")?,
                Cell::DateTime(wib(opened)),
                resolved
                    .map(|t| Cell::DateTime(wib(t)))
                    .unwrap_or(Cell::Empty),
                Cell::opt_text(r.get("resolution")?),
            ];
            c.push(&cells)?;
            drain(c, out).await?;
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    Ok(())
}
