//! The rows of each export, derived from the database by streaming.

use super::{wib, Cell, ColType, Column, Consumer, ExportKind, Filters};
use crate::case::figures::{figures, BillLine};
use crate::domain::{Money, Policy};
use crate::store::{list_placeholders, Backend, Db, Zone};
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

/// The `WHERE` clause of the audit export from `$4` on (after the range
/// and the chain bound), and how many times it binds the branch.
fn audit_branch_clause(f: &Filters, first: usize) -> (String, usize) {
    match f.branch {
        Some(_) => (format!(" AND a.entity IN ({})", branch_entities(first)), 5),
        None => (String::new(), 0),
    }
}

/// The first and last sequence number (or event id) of the rows in the
/// time range, found on the `at` index alone. Reading the rows between them
/// in key order then needs no sort: rows are appended in time order, so the
/// key range is (nearly) exactly the time range, and the `at` test on each
/// row keeps it exact whatever the clock did.
async fn key_bounds(
    db: &Db,
    table: &str,
    key: &str,
    f: &Filters,
    max_key: i64,
) -> Result<Option<(i64, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Bounds {
        lo: Option<i64>,
        hi: Option<i64>,
    }
    let (start, end) = f.range_utc();
    let sql = format!("SELECT MIN({key}) AS lo, MAX({key}) AS hi FROM {table} WHERE at >= $1 AND at < $2 AND {key} <= $3");
    let b: Bounds = db
        .query(&sql)
        .bind(start)
        .bind(end)
        .bind(max_key)
        .fetch_one_as(db)
        .await?;
    Ok(b.lo.zip(b.hi))
}

/// `a.at` as the row filter of a key-ordered scan. On SQLite the unary `+`
/// keeps the planner off the `at` index (which would make it sort a million
/// rows through temporary files); PostgreSQL walks the primary key anyway.
fn at_filter(db: &Db, alias: &str) -> String {
    match db.backend() {
        Backend::Sqlite => format!("+{alias}.at"),
        Backend::Postgres => format!("{alias}.at"),
    }
}

async fn audit_rows<C: Consumer, W: AsyncWrite + Unpin + Send>(
    db: &Db,
    f: &Filters,
    c: &mut C,
    out: &mut W,
) -> Result<()> {
    let Some((lo, hi)) = key_bounds(db, "audit_log", "seq", f, f.max_audit_seq).await? else {
        return Ok(());
    };
    let (start, end) = f.range_utc();
    let at = at_filter(db, "a");
    let (branch, n) = audit_branch_clause(f, 5);
    let sql = format!(
        "SELECT a.seq, a.at, a.actor, a.action, a.entity, a.before, a.after, a.payload_digest, a.prev_hash, a.hash, a.redacted_at \
         FROM audit_log a WHERE a.seq >= $1 AND a.seq <= $2 AND {at} >= $3 AND {at} < $4{branch} ORDER BY a.seq"
    );
    let mut q = db.query(&sql).bind(lo).bind(hi).bind(start).bind(end);
    if let Some(b) = &f.branch {
        for _ in 0..n {
            q = q.bind(b.clone());
        }
    }
    let mut rows = q.fetch_as::<crate::audit::AuditRow>(db);
    while let Some(r) = rows.next().await {
        let r = r.context("failed to read the audit log")?;
        let cells = [
            Cell::Int(r.seq),
            Cell::Text(rfc3339(r.at)),
            Cell::DateTime(wib(r.at)),
            Cell::Text(r.actor),
            Cell::Text(r.action),
            Cell::Text(r.entity),
            Cell::opt_text(r.before),
            Cell::opt_text(r.after),
            Cell::Text(r.payload_digest),
            Cell::Text(r.prev_hash),
            Cell::Text(r.hash),
            Cell::opt_text(r.redacted_at.map(rfc3339)),
        ];
        c.push(&cells)?;
        drain(c, out).await?;
    }
    Ok(())
}

/// How many rows the export of `f` holds (for the progress bar).
pub(crate) async fn count(db: &Db, f: &Filters) -> Result<u64> {
    let (start, end) = f.range_utc();
    let n: i64 = match f.kind {
        ExportKind::Audit => {
            let (branch, n) = audit_branch_clause(f, 4);
            let sql = format!(
                "SELECT COUNT(*) FROM audit_log a WHERE a.at >= $1 AND a.at < $2 AND a.seq <= $3{branch}"
            );
            let mut q = db.query(&sql).bind(start).bind(end).bind(f.max_audit_seq);
            if let Some(b) = &f.branch {
                for _ in 0..n {
                    q = q.bind(b.clone());
                }
            }
            q.fetch_scalar(db).await?
        }
        ExportKind::Cases => {
            let mut sql = String::from(
                "SELECT COUNT(*) FROM case_events v JOIN cases c ON c.id = v.case_id JOIN employers e ON e.id = c.employer_id \
                 WHERE v.at >= $1 AND v.at < $2 AND v.id <= $3",
            );
            if f.branch.is_some() {
                sql.push_str(" AND e.branch = $4");
            }
            let mut q = db.query(&sql).bind(start).bind(end).bind(f.max_event_id);
            if let Some(b) = &f.branch {
                q = q.bind(b.clone());
            }
            q.fetch_scalar(db).await?
        }
        ExportKind::Summary => {
            let mut sql = String::from(
                "SELECT COUNT(*) FROM cases c JOIN employers e ON e.id = c.employer_id \
                 WHERE c.opened_at < $2 AND (c.resolved_at IS NULL OR c.resolved_at >= $1)",
            );
            if f.branch.is_some() {
                sql.push_str(" AND e.branch = $3");
            }
            let mut q = db.query(&sql).bind(start).bind(end);
            if let Some(b) = &f.branch {
                q = q.bind(b.clone());
            }
            q.fetch_scalar(db).await?
        }
    };
    Ok(n.max(0) as u64)
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

#[derive(sqlx::FromRow)]
struct CaseEventRow {
    id: i64,
    case_id: i64,
    at: DateTime<Utc>,
    kind: String,
    actor: String,
    data: String,
    npp: String,
    name: String,
    branch: String,
}

/// The case log row of one event.
fn case_cells(r: CaseEventRow) -> Vec<Cell> {
    let data: Value = serde_json::from_str(&r.data).unwrap_or(Value::Null);
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
    let status = r
        .kind
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
    vec![
        Cell::Int(r.id),
        Cell::Text(rfc3339(r.at)),
        Cell::DateTime(wib(r.at)),
        Cell::Int(r.case_id),
        Cell::Text(r.npp),
        Cell::Text(r.name),
        Cell::Text(r.branch),
        Cell::Text(r.kind),
        Cell::Text(r.actor),
        Cell::opt_text(str_field(&data, &["intent"])),
        promised,
        amount,
        Cell::opt_text(status),
        Cell::opt_text(meta_error),
        Cell::Text(r.data),
    ]
}

async fn case_rows<C: Consumer, W: AsyncWrite + Unpin + Send>(
    db: &Db,
    f: &Filters,
    c: &mut C,
    out: &mut W,
) -> Result<()> {
    let Some((lo, hi)) = key_bounds(db, "case_events", "id", f, f.max_event_id).await? else {
        return Ok(());
    };
    let (start, end) = f.range_utc();
    let at = at_filter(db, "v");
    let mut sql = format!(
        "SELECT v.id, v.case_id, v.at, v.kind, v.actor, v.data, e.npp, e.name, e.branch \
         FROM case_events v JOIN cases c ON c.id = v.case_id JOIN employers e ON e.id = c.employer_id \
         WHERE v.id >= $1 AND v.id <= $2 AND {at} >= $3 AND {at} < $4",
    );
    if f.branch.is_some() {
        sql.push_str(" AND e.branch = $5");
    }
    sql.push_str(" ORDER BY v.id");
    let mut q = db.query(&sql).bind(lo).bind(hi).bind(start).bind(end);
    if let Some(b) = &f.branch {
        q = q.bind(b.clone());
    }
    let mut rows = q.fetch_as::<CaseEventRow>(db);
    while let Some(r) = rows.next().await {
        let r = r.context("failed to read the case log")?;
        c.push(&case_cells(r))?;
        drain(c, out).await?;
    }
    Ok(())
}

/// A bill line with its employer, for the case summary's figures.
#[derive(sqlx::FromRow)]
struct BillOf {
    employer_id: i64,
    #[sqlx(flatten)]
    line: BillLine,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    employer_id: i64,
    status: String,
    stage: String,
    assignee: Option<String>,
    opened_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    resolution: Option<String>,
    npp: String,
    name: String,
    branch: String,
    timezone: Zone,
    promise_to_pay: i64,
    promise_kept: i64,
    promise_broken: i64,
    message_sent: i64,
    message_delivered: i64,
    message_read: i64,
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
        let page: Vec<SummaryRow> = q.fetch_all_as(db).await.context("failed to read cases")?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let mut employer_ids: Vec<i64> = page.iter().map(|r| r.employer_id).collect();
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
        for b in bq.fetch_all_as::<BillOf>(db).await? {
            bills.entry(b.employer_id).or_default().push(b.line);
        }
        for r in &page {
            let tz: Tz = r.timezone.0;
            let at = r.resolved_at.map_or(f.as_of, |t| t.min(f.as_of));
            let lines = bills.get(&r.employer_id).map(Vec::as_slice).unwrap_or(&[]);
            let (figures, _) = figures(lines, at, tz, Some(policy));
            let (arrears, fees) = (figures.arrears, figures.late_fees);
            let cells = [
                Cell::Int(r.id),
                Cell::Text(r.npp.clone()),
                Cell::Text(r.name.clone()),
                Cell::Text(r.branch.clone()),
                Cell::Text(r.status.clone()),
                Cell::Text(r.stage.clone()),
                Cell::opt_text(r.assignee.clone()),
                Cell::Money(arrears),
                Cell::Money(fees),
                Cell::Money(arrears + fees),
                Cell::Int(r.promise_to_pay),
                Cell::Int(r.promise_kept),
                Cell::Int(r.promise_broken),
                Cell::Int(r.message_sent),
                Cell::Int(r.message_delivered),
                Cell::Int(r.message_read),
                Cell::DateTime(wib(r.opened_at)),
                r.resolved_at
                    .map(|t| Cell::DateTime(wib(t)))
                    .unwrap_or(Cell::Empty),
                Cell::opt_text(r.resolution.clone()),
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

/// The Indonesian heading and meaning of each column, for the XLSX's
/// `Keterangan` sheet (the data keeps the machine names and codes, which
/// the manifest hashes and `audit verify --export` re-derives).
pub(crate) fn column_label(name: &str) -> (&'static str, &'static str) {
    match name {
        "seq" => ("No. urut", "Nomor urut baris jejak audit (rantai hash)"),
        "at_utc" => ("Waktu (UTC)", "Waktu kejadian, RFC 3339 dalam UTC"),
        "at_wib" => ("Waktu (WIB)", "Waktu kejadian menurut jam Jakarta (WIB)"),
        "actor" => ("Pelaku", "system = bot, employer = pemberi kerja, officer:<nama> = petugas, api:token:<nama> = integrasi"),
        "action" => ("Tindakan", "Jenis perubahan yang dicatat"),
        "entity" => ("Objek", "Yang diubah: employer:<NPP>, case:<id>, bill:<NPP>:<periode>, payment:<referensi>, user:<id>"),
        "before" => ("Sebelum", "Nilai sebelum perubahan (JSON)"),
        "after" => ("Sesudah", "Nilai sesudah perubahan (JSON)"),
        "payload_digest" => ("Sidik isi", "SHA-256 isi perubahan"),
        "prev_hash" => ("Hash sebelumnya", "Hash baris sebelumnya dalam rantai"),
        "hash" => ("Hash", "Hash baris ini"),
        "redacted_at" => ("Disamarkan pada", "Kapan data pribadi baris ini disamarkan (retensi UU PDP)"),
        "event_id" => ("No. kejadian", "Nomor kejadian dalam log kasus"),
        "case_id" => ("No. kasus", "Nomor kasus"),
        "npp" => ("NPP", "Nomor pendaftaran perusahaan"),
        "employer" => ("Pemberi kerja", "Nama perusahaan"),
        "branch" => ("Cabang", "Kantor cabang"),
        "kind" => ("Jenis kejadian", "Lihat daftar kode jenis kejadian di bawah"),
        "intent" => ("Maksud balasan", "Maksud balasan pemberi kerja; lihat daftar kode di bawah"),
        "promised_date" => ("Tanggal janji bayar", "Tanggal yang dijanjikan"),
        "amount" => ("Jumlah (Rp)", "Jumlah uang pada kejadian"),
        "message_status" => ("Status pesan", "sent = terkirim, delivered = sampai, read = dibaca, failed = gagal"),
        "meta_error" => ("Galat WhatsApp", "Kode dan keterangan galat dari Meta"),
        "details" => ("Rincian", "Data lengkap kejadian (JSON)"),
        "status" => ("Status kasus", "Lihat daftar kode status di bawah"),
        "stage" => ("Tahap", "Lihat daftar kode tahap di bawah"),
        "assignee" => ("Petugas", "Petugas yang ditugaskan"),
        "arrears" => ("Tunggakan (Rp)", "Iuran belum dibayar yang sudah jatuh tempo"),
        "late_fees" => ("Denda (Rp)", "Denda keterlambatan"),
        "total_due" => ("Total tagihan (Rp)", "Tunggakan ditambah denda"),
        "promises_made" => ("Janji bayar", "Jumlah janji bayar"),
        "promises_kept" => ("Janji ditepati", "Jumlah janji yang ditepati"),
        "promises_broken" => ("Janji diingkari", "Jumlah janji yang diingkari"),
        "messages_sent" => ("Pesan terkirim", "Jumlah pesan WhatsApp terkirim"),
        "messages_delivered" => ("Pesan sampai", "Jumlah pesan yang sampai"),
        "messages_read" => ("Pesan dibaca", "Jumlah pesan yang dibaca"),
        "opened_at_wib" => ("Dibuka (WIB)", "Kapan kasus dibuka"),
        "resolved_at_wib" => ("Selesai (WIB)", "Kapan kasus selesai"),
        "resolution" => ("Penyelesaian", "Cara kasus selesai"),
        _ => ("", ""),
    }
}

/// Codes that appear as values, with their Indonesian labels, per column.
pub(crate) fn code_labels(
    kind: ExportKind,
) -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let statuses: Vec<(&str, &str)> = crate::domain::CaseStatus::ALL
        .iter()
        .map(|s| (s.as_str(), crate::case::words::label(s.as_str())))
        .collect();
    let stages: Vec<(&str, &str)> = crate::domain::Stage::ALL
        .iter()
        .map(|s| (s.as_str(), crate::case::words::label(s.as_str())))
        .collect();
    let events: Vec<(&str, &str)> = crate::case_log::EventKind::ALL
        .iter()
        .map(|k| (k.as_str(), crate::case::words::label(k.as_str())))
        .collect();
    let intents: Vec<(&str, &str)> = [
        "promise_to_pay",
        "already_paid",
        "payment_link_request",
        "amount_inquiry",
        "installment_request",
        "dispute",
        "officer_request",
        "opt_out",
        "wrong_number",
        "complaint",
        "question",
        "acknowledgement",
        "unknown",
    ]
    .into_iter()
    .map(|c| (c, crate::case::words::label(c)))
    .collect();
    match kind {
        ExportKind::Audit => vec![],
        ExportKind::Cases => vec![("kind", events), ("intent", intents)],
        ExportKind::Summary => vec![("status", statuses), ("stage", stages)],
    }
}
