//! Officers' corrections of how the bot read a reply (issue 14): the
//! correction itself (the wrong reading's effects undone where safe, the
//! right one's applied, one `intent_corrected` event), the labelled file
//! `wa-smile export corrections` writes for `classify --eval`, and the
//! weekly correction rate the dashboard shows.
//!
//! The bot's own reading stays in `inbound_messages.intent` and
//! `promised_date`; the officer's is kept beside it (`corrected_*`).

use super::effects::{self, Reply};
use super::Understood;
use crate::accounts::Principal;
use crate::case_actions::ActionError;
use crate::case_log::{self, EventKind, NewEvent};
use crate::config::Config;
use crate::conversation::Intent;
use crate::store::Db;
use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde_json::json;

/// The readings an officer picks from, in Indonesian, in the contract's
/// order.
pub const CHOICES: [(Intent, &str); 13] = [
    (Intent::PromiseToPay, "Janji bayar"),
    (Intent::AlreadyPaid, "Sudah bayar"),
    (Intent::PaymentLinkRequest, "Minta tautan/kode bayar"),
    (Intent::AmountInquiry, "Tanya jumlah tagihan"),
    (Intent::InstallmentRequest, "Minta cicilan"),
    (Intent::Dispute, "Sengketa tagihan"),
    (Intent::OfficerRequest, "Minta dihubungi petugas"),
    (Intent::OptOut, "Berhenti berlangganan"),
    (Intent::WrongNumber, "Salah nomor"),
    (Intent::Complaint, "Keluhan"),
    (Intent::Question, "Pertanyaan"),
    (Intent::Acknowledgement, "Terima kasih / oke"),
    (Intent::Unknown, "Tidak jelas"),
];

/// The Indonesian name of a reading.
pub fn intent_label(intent: Intent) -> &'static str {
    CHOICES
        .iter()
        .find(|(i, _)| *i == intent)
        .map_or("Tidak jelas", |(_, l)| l)
}

/// What an officer says reply `wamid` meant.
#[derive(Debug, Clone)]
pub struct Correction {
    pub wamid: String,
    pub intent: Intent,
    /// Only for `promise_to_pay`.
    pub promised_date: Option<NaiveDate>,
}

#[derive(sqlx::FromRow)]
struct InboundRow {
    id: i64,
    body: Option<String>,
    intent: Option<String>,
    promised_date: Option<NaiveDate>,
    corrected_intent: Option<String>,
    corrected_date: Option<NaiveDate>,
    corrections: i64,
    received_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct CaseRow {
    employer_id: i64,
    resolved_at: Option<DateTime<Utc>>,
    timezone: String,
}

fn reject<T>(why: impl Into<String>) -> Result<T, ActionError> {
    Err(ActionError::Rejected(why.into()))
}

/// Corrects how reply `c.wamid` of case `case_id` was read, as `who`, in one
/// transaction: the reading is stored, the wrong one's effects undone where
/// safe (`effects::undo`), the right one's applied without a word to the
/// employer (`effects::apply_corrected`), and one `intent_corrected` event
/// (with its audit row) says what was done. A correction that names the
/// reading the reply already has — the same form sent twice — changes
/// nothing; returns whether anything changed. A resolved case keeps its
/// state: only the reading is corrected (the export still learns from it).
pub async fn apply(
    db: &Db,
    config: &Config,
    case_id: i64,
    who: &Principal,
    c: Correction,
    now: DateTime<Utc>,
) -> Result<bool, ActionError> {
    if c.promised_date.is_some() && c.intent != Intent::PromiseToPay {
        return reject("Tanggal hanya diisi untuk pembacaan \u{201c}Janji bayar\u{201d}.");
    }
    let mut tx = db.begin().await?;
    let Some(case) = tx
        .query(
            "SELECT c.employer_id, c.resolved_at, e.timezone FROM cases c \
             JOIN employers e ON e.id = c.employer_id WHERE c.id = $1",
        )
        .bind(case_id)
        .fetch_optional_as::<CaseRow>(&mut tx)
        .await?
    else {
        return Err(ActionError::NotFound);
    };
    // Only a reply on this case: the case's branch is what the caller was
    // checked against.
    let Some(row) = tx
        .query(
            "SELECT id, body, intent, promised_date, corrected_intent, corrected_date, corrections, received_at \
             FROM inbound_messages WHERE wamid = $1 AND case_id = $2",
        )
        .bind(c.wamid.clone())
        .bind(case_id)
        .fetch_optional_as::<InboundRow>(&mut tx)
        .await?
    else {
        return Err(ActionError::NotFound);
    };
    let tz = crate::config::parse_zone(&case.timezone).unwrap_or(chrono_tz::Asia::Jakarta);
    let received_day = row.received_at.with_timezone(&tz).date_naive();
    if let Some(d) = c.promised_date {
        if d < received_day {
            return reject(format!(
                "Tanggal janji bayar tidak boleh sebelum tanggal balasan ({}).",
                crate::messages::filters::format_tanggal(received_day)
            ));
        }
    }
    let (old_intent, old_date) = if row.corrections > 0 {
        (row.corrected_intent.as_deref(), row.corrected_date)
    } else {
        (row.intent.as_deref(), row.promised_date)
    };
    let old_intent: Option<Intent> = old_intent.and_then(|i| i.parse().ok());
    if old_intent == Some(c.intent) && old_date == c.promised_date {
        tx.rollback().await?;
        return Ok(false);
    }
    // Against the reading read above: of two identical forms racing, the
    // second finds the count moved and changes nothing.
    let changed = tx
        .query(
            "UPDATE inbound_messages SET corrected_intent = $2, corrected_date = $3, corrected_at = $4, \
             corrected_by = $5, corrections = corrections + 1 WHERE id = $1 AND corrections = $6",
        )
        .bind(row.id)
        .bind(c.intent.as_str())
        .bind(c.promised_date)
        .bind(now)
        .bind(who.name.clone())
        .bind(row.corrections)
        .execute(&mut tx)
        .await
        .context("failed to store the corrected reading")?;
    if changed == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    let officer = who.actor();
    let resolved = case.resolved_at.is_some();
    let (mut undone, mut effects_events, mut withheld) = (Vec::new(), Vec::new(), Vec::new());
    if !resolved {
        if let Some(old) = old_intent {
            undone = effects::undo(
                &mut tx,
                case_id,
                &c.wamid,
                (old, old_date),
                (c.intent, c.promised_date),
                now,
            )
            .await?;
        }
        let reply = Reply {
            wamid: &c.wamid,
            text: row.body.as_deref(),
            received_at: row.received_at,
            understood: Understood {
                intent: Some(c.intent),
                promised_date: c.promised_date,
                button: false,
                confidence: 1.0,
                runner_up: None,
                also: None,
            },
            secondary: false,
        };
        let done = effects::apply_corrected(
            &mut tx,
            config,
            case.employer_id,
            case_id,
            &reply,
            &officer,
            now,
        )
        .await?;
        effects_events = done.events;
        withheld = done.withheld;
    }
    let applied: Vec<&str> = effects_events.iter().map(|e| e.kind.as_str()).collect();
    let event = NewEvent::new(
        case_id,
        now,
        EventKind::IntentCorrected,
        officer,
        json!({
            "wamid": c.wamid,
            "old_intent": old_intent.map(Intent::as_str),
            "old_promised_date": old_date.map(|d| d.to_string()),
            "new_intent": c.intent.as_str(),
            "new_promised_date": c.promised_date.map(|d| d.to_string()),
            "officer": who.name,
            "undone": undone,
            "applied": applied,
            "withheld": withheld,
            "case_resolved": resolved,
        }),
    );
    let mut events = vec![event];
    events.extend(effects_events);
    case_log::record(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(true)
}

/// What the case log's `intent_corrected` event says was done, in
/// Indonesian, for the timeline.
pub fn describe(data: &serde_json::Value) -> String {
    let list = |k: &str| -> Vec<String> {
        data.get(k)
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut parts: Vec<String> = Vec::new();
    for u in list("undone") {
        parts.push(
            match u.as_str() {
                "pause_lifted" => "jeda karena \u{201c}sudah bayar\u{201d} dicabut",
                "pause_kept" => "jeda pengingat tetap (diubah sesudah balasan ini)",
                "promise_withdrawn" => "janji bayar yang salah dibatalkan",
                "promise_kept" => "janji bayar tetap (sudah diganti sesudah balasan ini)",
                "date_question_withdrawn" => "pertanyaan tanggal janji bayar diabaikan",
                "hold_released" => "penahanan untuk petugas dilepas",
                "opt_out_kept" => {
                    "status berhenti berlangganan tetap (catat persetujuan lewat Kontak)"
                }
                "wrong_number_kept" => "tanda nomor salah tetap (perbarui lewat Kontak)",
                other => other,
            }
            .to_owned(),
        );
    }
    for a in list("applied") {
        let text = match a.as_str() {
            "promise_to_pay" => "janji bayar dicatat".to_owned(),
            "payment_claimed" => "pengingat dijeda (sudah bayar)".to_owned(),
            "message_skipped" => continue,
            other => format!(
                "{} dicatat",
                crate::http::admin::label(other).to_lowercase()
            ),
        };
        parts.push(text);
    }
    let withheld = list("withheld");
    if !withheld.is_empty() {
        let names: Vec<String> = withheld
            .iter()
            .map(|w| format!("\u{201c}{}\u{201d}", crate::http::admin::label(w.as_str())))
            .collect();
        parts.push(format!(
            "tidak ada pesan otomatis ke pemberi kerja ({} tidak dikirim)",
            names.join(", ")
        ));
    }
    if data
        .get("case_resolved")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        parts.push("kasus sudah selesai: hanya pembacaannya yang dikoreksi".into());
    }
    let mut s = parts.join("; ");
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s
}

#[derive(sqlx::FromRow)]
struct LabelledRow {
    body: String,
    corrected_intent: String,
    corrected_date: Option<NaiveDate>,
    received_at: DateTime<Utc>,
    timezone: String,
}

/// Writes every reply with text whose reading an officer corrected on a
/// day `from..=to` (in `tz`; open ends when `None`), oldest correction
/// first, as the labelled CSV `classify --eval` reads:
/// `text,intent,promised_date,received_at`, the time in the employer's own
/// zone. The replies' texts leave the system: the export is audited as
/// `actor`'s. Returns the number of rows.
pub async fn export<W: std::io::Write>(
    db: &Db,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    tz: chrono_tz::Tz,
    actor: &str,
    out: W,
) -> Result<usize> {
    let start = |d: NaiveDate| local_midnight(tz, d);
    let rows: Vec<LabelledRow> = db
        .query(
            "SELECT i.body, i.corrected_intent, i.corrected_date, i.received_at, e.timezone \
             FROM inbound_messages i JOIN employers e ON e.id = i.employer_id \
             WHERE i.corrections > 0 AND i.corrected_intent IS NOT NULL AND i.body IS NOT NULL \
               AND ($1 IS NULL OR i.corrected_at >= $1) AND ($2 IS NULL OR i.corrected_at < $2) \
             ORDER BY i.corrected_at, i.id",
        )
        .bind(from.map(start))
        .bind(to.map(|d| start(d + Duration::days(1))))
        .fetch_all_as(db)
        .await
        .context("failed to read the corrected replies")?;
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["text", "intent", "promised_date", "received_at"])?;
    let mut n = 0;
    for r in rows {
        if r.body.trim().is_empty() {
            continue;
        }
        let zone = crate::config::parse_zone(&r.timezone).unwrap_or(tz);
        w.write_record([
            r.body.as_str(),
            r.corrected_intent.as_str(),
            &r.corrected_date.map(|d| d.to_string()).unwrap_or_default(),
            &r.received_at
                .with_timezone(&zone)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        ])?;
        n += 1;
    }
    w.flush()?;
    let mut tx = db.begin().await?;
    tx.audit(
        crate::audit::AuditEntry::new(
            crate::time::now(),
            actor,
            "export.corrections",
            "inbound_messages",
        )
        .after(json!({"from": from, "to": to, "rows": n})),
    );
    tx.commit().await?;
    Ok(n)
}

fn local_midnight(tz: chrono_tz::Tz, d: NaiveDate) -> DateTime<Utc> {
    let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// One week of the correction rate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WeekRate {
    /// Monday.
    pub start: NaiveDate,
    /// Sunday.
    pub end: NaiveDate,
    /// Typed replies on a case the bot read (button taps are not guesses).
    pub classified: i64,
    /// Of those, the ones an officer corrected.
    pub corrected: i64,
    /// `corrected / classified` as `4,2%`; `None` for a week with no replies.
    pub rate: Option<String>,
}

#[derive(sqlx::FromRow)]
struct WeekRow {
    w: i64,
    n: i64,
    k: i64,
}

/// The correction rate of the `weeks` weeks (Monday to Sunday in `tz`)
/// up to the one holding `today`, oldest first, by the week each reply
/// came in; `branch` confines it to one branch's cases.
pub async fn weekly_rate(
    db: &Db,
    branch: Option<&str>,
    tz: chrono_tz::Tz,
    today: NaiveDate,
    weeks: usize,
) -> Result<Vec<WeekRate>> {
    let weeks = weeks.max(1);
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let first = monday - Duration::weeks(weeks as i64 - 1);
    let starts: Vec<NaiveDate> = (0..=weeks)
        .map(|k| first + Duration::weeks(k as i64))
        .collect();
    // The week of a reply, as the index of the latest start before it.
    let mut bucket = String::from("CASE");
    for k in (1..weeks).rev() {
        bucket.push_str(&format!(" WHEN i.received_at >= ${} THEN {k}", k + 1));
    }
    bucket.push_str(" ELSE 0 END");
    let scope = branch
        .map(|_| format!(" AND c.branch = ${}", weeks + 2))
        .unwrap_or_default();
    let sql = format!(
        "SELECT CAST({bucket} AS BIGINT) AS w, COUNT(*) AS n, \
                CAST(COALESCE(SUM(CASE WHEN i.corrections > 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS k \
         FROM inbound_messages i JOIN cases c ON c.id = i.case_id \
         WHERE i.received_at >= $1 AND i.received_at < ${} AND i.intent IS NOT NULL AND i.payload IS NULL{scope} \
         GROUP BY 1",
        weeks + 1
    );
    let mut q = db.query(&sql);
    for d in &starts {
        q = q.bind(local_midnight(tz, *d));
    }
    if let Some(b) = branch {
        q = q.bind(b.to_owned());
    }
    let rows: Vec<WeekRow> = q
        .fetch_all_as(db)
        .await
        .context("failed to count corrected replies")?;
    Ok((0..weeks)
        .map(|k| {
            let (n, c) = rows
                .iter()
                .find(|r| r.w == k as i64)
                .map_or((0, 0), |r| (r.n, r.k));
            WeekRate {
                start: starts[k],
                end: starts[k + 1] - Duration::days(1),
                classified: n,
                corrected: c,
                rate: (n > 0).then(|| percent(c, n)),
            }
        })
        .collect())
}

/// `4,2%`: one decimal, the Indonesian comma.
fn percent(part: i64, whole: i64) -> String {
    format!("{:.1}%", part as f64 * 100.0 / whole as f64).replace('.', ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_use_the_indonesian_comma() {
        assert_eq!(percent(1, 24), "4,2%");
        assert_eq!(percent(0, 5), "0,0%");
        assert_eq!(percent(3, 3), "100,0%");
    }

    #[test]
    fn every_intent_has_an_indonesian_choice() {
        for i in Intent::ALL {
            assert!(CHOICES.iter().any(|(c, _)| *c == i), "{i}");
        }
    }
}
