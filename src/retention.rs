//! Data retention (UU PDP): personal data older than the configured period
//! is redacted, while the audit chain stays verifiable and every figure an
//! audit needs stays.
//!
//! # What is personal, what is kept
//! Personal: names, contact names, WhatsApp ids / phone numbers, reply texts,
//! message bodies, notes and addresses — in JSON, the values of the keys in
//! [`PERSONAL_KEYS`], at any depth. Kept, always: amounts, dates and times,
//! NPPs, periods, payment references, case ids, event kinds, intents,
//! promised dates, stages, statuses, error codes, actors, and every hash.
//! The keys in [`PHONE_KEYS`] (`from`, `to`, …) are redacted only where
//! their value looks like a phone number, so an export's `from`/`to` dates
//! in the audit log stay.
//!
//! # What `apply` does, at `at`
//! With `cutoff = at - retention.personal_data_days`:
//! * **audit_log** rows older than the cutoff: the personal values in
//!   `before`/`after` become `"[redacted]"` and `redacted_at` is set.
//!   `payload_digest`, `hash` and `prev_hash` are kept: the chain hashes the
//!   digest, not the payload, so `audit verify` stays green (it skips the
//!   digest re-check of redacted rows only). A row with nothing personal is
//!   left as it is, digest-checked as before.
//! * **case_events** older than the cutoff: the same redaction of `data`,
//!   with `"redacted": true` added.
//! * **outbox** rows created before the cutoff and no longer pending
//!   (`state` not `queued`/`sending`): the body is redacted the same way and
//!   the recipient `wa_id` cleared.
//!
//! With `contact_cutoff = at - retention.resolved_contact_days`:
//! * **employers** with cases, none open and the last resolved before the
//!   contact cutoff: `contact_name` emptied and `wa_id` cleared (the company
//!   name and NPP stay). A later import from SMILE sets a current contact.
//!
//! Each run is one audit event `retention.apply` (entity `retention`) with
//! the cutoffs and counts, plus one `employer.contact_redacted` per employer
//! whose contact was cleared. Running it again changes nothing more.

use crate::audit::AuditEntry;
use crate::config::RetentionConfig;
use crate::domain::Npp;
use crate::store::Db;
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// JSON keys whose values are personal data.
pub const PERSONAL_KEYS: &[&str] = &[
    "name",
    "contact_name",
    "profile_name",
    "wa_id",
    "wa_phone",
    "phone",
    "text",
    "body",
    "caption",
    "reply",
    "reply_text",
    "message_text",
    "note",
    "address",
    "email",
];

/// JSON keys that hold a phone number in webhook and send payloads but mean
/// something else elsewhere (an export's `from`/`to` dates): their values are
/// redacted only when they look like a phone number.
pub const PHONE_KEYS: &[&str] = &["from", "to", "recipient", "recipient_id"];

/// `+62…`, `62…`, `08…`: 8 to 15 digits, optionally after a `+`.
fn looks_like_phone(v: &Value) -> bool {
    let Value::String(s) = v else { return false };
    let digits = s.strip_prefix('+').unwrap_or(s);
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// What replaces a personal value.
pub const REDACTED: &str = "[redacted]";

const BATCH: i64 = 1_000;

/// Replaces personal values in `v`, in place; true if anything changed.
pub fn redact_value(v: &mut Value) -> bool {
    let mut changed = false;
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if PERSONAL_KEYS.contains(&k.as_str()) {
                    let empty = match val {
                        Value::Null => true,
                        Value::String(s) => s.is_empty() || s == REDACTED,
                        _ => false,
                    };
                    if !empty {
                        *val = Value::String(REDACTED.to_owned());
                        changed = true;
                    }
                } else if PHONE_KEYS.contains(&k.as_str()) && looks_like_phone(val) {
                    *val = Value::String(REDACTED.to_owned());
                    changed = true;
                } else {
                    changed |= redact_value(val);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= redact_value(item);
            }
        }
        _ => {}
    }
    changed
}

/// Redacts a stored JSON text; None when there is nothing to redact (or it
/// is not JSON).
fn redact_text(raw: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(raw).ok()?;
    redact_value(&mut v).then(|| v.to_string())
}

/// What one run redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionSummary {
    pub personal_cutoff: DateTime<Utc>,
    pub contact_cutoff: DateTime<Utc>,
    pub audit_rows: u64,
    pub case_events: u64,
    pub outbox_rows: u64,
    pub employers: u64,
}

/// Redacts personal data older than the retention periods, as of `at`.
pub async fn apply(
    db: &Db,
    cfg: &RetentionConfig,
    at: DateTime<Utc>,
    actor: &str,
) -> Result<RetentionSummary> {
    let at = crate::time::truncate(at);
    let mut s = RetentionSummary {
        personal_cutoff: at - Duration::days(i64::from(cfg.personal_data_days)),
        contact_cutoff: at - Duration::days(i64::from(cfg.resolved_contact_days)),
        ..Default::default()
    };
    s.audit_rows = redact_audit(db, s.personal_cutoff, at).await?;
    s.case_events = redact_events(db, s.personal_cutoff).await?;
    s.outbox_rows = redact_outbox(db, s.personal_cutoff, at).await?;

    let mut tx = db.begin().await?;
    let rows: Vec<ContactRow> = tx
        .query(
            "SELECT e.id, e.npp FROM employers e \
             WHERE (e.wa_id IS NOT NULL OR e.contact_name <> '') \
               AND EXISTS (SELECT 1 FROM cases c WHERE c.employer_id = e.id) \
               AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.employer_id = e.id \
                               AND (c.resolved_at IS NULL OR c.resolved_at >= $1)) \
             ORDER BY e.id",
        )
        .bind(s.contact_cutoff)
        .fetch_all_as(&mut tx)
        .await?;
    for ContactRow { id, npp } in &rows {
        tx.query(
            "UPDATE employers SET contact_name = '', wa_id = NULL, updated_at = $1 WHERE id = $2",
        )
        .bind(at)
        .bind(*id)
        .execute(&mut tx)
        .await?;
        tx.audit(
            AuditEntry::new(at, actor, "employer.contact_redacted", format!("employer:{npp}")).after(
                serde_json::json!({"contact_name": "", "wa_id": null, "reason": "retention", "resolved_before": s.contact_cutoff}),
            ),
        );
    }
    s.employers = rows.len() as u64;
    tx.audit(
        AuditEntry::new(at, actor, "retention.apply", "retention")
            .after(serde_json::to_value(&s).expect("serialisable")),
    );
    tx.commit().await?;
    Ok(s)
}

/// An employer whose contact retention clears.
#[derive(sqlx::FromRow)]
struct ContactRow {
    id: i64,
    npp: Npp,
}

/// An audit row's payload, as retention reads it.
#[derive(sqlx::FromRow)]
struct AuditPayloadRow {
    seq: i64,
    before: Option<String>,
    after: Option<String>,
}

/// A case event's data, as retention reads it.
#[derive(sqlx::FromRow)]
struct EventDataRow {
    id: i64,
    data: String,
}

async fn redact_audit(db: &Db, cutoff: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
    let mut after_seq = 0i64;
    let mut n = 0u64;
    loop {
        let rows: Vec<AuditPayloadRow> = db
            .query(
                "SELECT seq, before, after FROM audit_log \
                 WHERE at < $1 AND redacted_at IS NULL AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(cutoff)
            .bind(after_seq)
            .bind(BATCH)
            .fetch_all_as(db)
            .await
            .context("failed to read the audit log")?;
        let Some(last) = rows.last() else { break };
        after_seq = last.seq;
        let batch_len = rows.len() as i64;
        let mut updates = Vec::new();
        for AuditPayloadRow { seq, before, after } in rows {
            let rb = before.as_deref().and_then(redact_text);
            let ra = after.as_deref().and_then(redact_text);
            if rb.is_some() || ra.is_some() {
                updates.push((seq, rb.or(before), ra.or(after)));
            }
        }
        if !updates.is_empty() {
            let mut tx = db.begin().await?;
            for (seq, before, after) in &updates {
                tx.query(
                    "UPDATE audit_log SET before = $1, after = $2, redacted_at = $3 WHERE seq = $4",
                )
                .bind(before.clone())
                .bind(after.clone())
                .bind(at)
                .bind(*seq)
                .execute(&mut tx)
                .await?;
            }
            tx.commit().await?;
            n += updates.len() as u64;
        }
        if batch_len < BATCH {
            break;
        }
    }
    Ok(n)
}

async fn redact_events(db: &Db, cutoff: DateTime<Utc>) -> Result<u64> {
    let mut after_id = 0i64;
    let mut n = 0u64;
    loop {
        let rows: Vec<EventDataRow> = db
            .query(
                "SELECT id, data FROM case_events WHERE at < $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(cutoff)
            .bind(after_id)
            .bind(BATCH)
            .fetch_all_as(db)
            .await
            .context("failed to read the case log")?;
        let Some(last) = rows.last() else { break };
        after_id = last.id;
        let mut updates = Vec::new();
        for r in &rows {
            let Ok(mut v) = serde_json::from_str::<Value>(&r.data) else {
                continue;
            };
            if redact_value(&mut v) {
                if let Value::Object(m) = &mut v {
                    m.insert("redacted".into(), Value::Bool(true));
                }
                updates.push((r.id, v.to_string()));
            }
        }
        if !updates.is_empty() {
            let mut tx = db.begin().await?;
            for (id, data) in &updates {
                tx.query("UPDATE case_events SET data = $1 WHERE id = $2")
                    .bind(data.clone())
                    .bind(*id)
                    .execute(&mut tx)
                    .await?;
            }
            tx.commit().await?;
            n += updates.len() as u64;
        }
        if (rows.len() as i64) < BATCH {
            break;
        }
    }
    Ok(n)
}

async fn redact_outbox(db: &Db, cutoff: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
    let mut after_id = 0i64;
    let mut n = 0u64;
    loop {
        let rows = crate::outbox::settled_before(db, cutoff, after_id, BATCH).await?;
        let Some(last) = rows.last() else { break };
        after_id = last.id;
        let mut updates = Vec::new();
        for r in &rows {
            let redacted = redact_text(&r.body);
            // The text the employer saw names them: it goes with the rest.
            let text_personal = r.text.as_deref().is_some_and(|t| t != REDACTED);
            if redacted.is_some() || r.wa_id.is_some() || text_personal {
                let text = r.text.as_ref().map(|_| REDACTED);
                updates.push((r.id, redacted.unwrap_or_else(|| r.body.clone()), text));
            }
        }
        if !updates.is_empty() {
            let mut tx = db.begin().await?;
            for (id, body, text) in &updates {
                crate::outbox::redact(&mut tx, *id, body, *text, at).await?;
            }
            tx.commit().await?;
            n += updates.len() as u64;
        }
        if (rows.len() as i64) < BATCH {
            break;
        }
    }
    Ok(n)
}
