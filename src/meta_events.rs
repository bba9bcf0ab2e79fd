//! The webhook fields about the account rather than one conversation:
//! `message_template_status_update`, `message_template_quality_update`,
//! `phone_number_quality_update`, `account_update`, and the `pricing` of
//! status webhooks. Read from the verified body (the `messages` handling in
//! `crate::replies` ignores them) and stored before Meta is answered; each
//! write is an upsert, so a redelivered body changes nothing twice.

use crate::store::Db;
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Counter: webhook changes by `field` and `outcome` (`stored`, `ignored`,
/// `invalid`, and `signature` failures from the handler).
pub const WEBHOOKS_METRIC: &str = "wa_smile_webhooks_total";

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    time: Option<Value>,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    value: Value,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn unix(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let secs = match v? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    DateTime::from_timestamp(secs, 0)
}

/// Stores what the body says about templates, the account and prices.
pub async fn record(
    db: &Db,
    config: &crate::config::Config,
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<()> {
    let Ok(body) = serde_json::from_slice::<Body>(raw) else {
        return Ok(());
    };
    for entry in &body.entry {
        let said_at = unix(entry.time.as_ref()).unwrap_or(now);
        for change in &entry.changes {
            let field = change.field.as_deref().unwrap_or("messages");
            let v = &change.value;
            let outcome = match field {
                "messages" => {
                    record_pricing(db, v, now).await?;
                    "stored"
                }
                "message_template_status_update" | "message_template_quality_update" => {
                    template_event(db, field, v, said_at, now).await?
                }
                "phone_number_quality_update" | "account_update" => {
                    crate::account_health::record_event(db, config, field, v, said_at, now).await?
                }
                _ => "ignored",
            };
            metrics::counter!(WEBHOOKS_METRIC, "field" => known_field(field), "outcome" => outcome)
                .increment(1);
        }
    }
    Ok(())
}

/// Field names as labels: Meta's known ones, anything else as `other`
/// (a label per unknown string would grow without bound).
fn known_field(field: &str) -> &'static str {
    match field {
        "messages" => "messages",
        "message_template_status_update" => "message_template_status_update",
        "message_template_quality_update" => "message_template_quality_update",
        "phone_number_quality_update" => "phone_number_quality_update",
        "account_update" => "account_update",
        _ => "other",
    }
}

async fn template_event(
    db: &Db,
    field: &str,
    v: &Value,
    said_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<&'static str> {
    let (Some(name), Some(language)) = (
        text(v, "message_template_name"),
        text(v, "message_template_language"),
    ) else {
        return Ok("invalid");
    };
    let id = v.get("message_template_id").map(|i| match i {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let update = if field == "message_template_status_update" {
        let Some(event) = text(v, "event") else {
            return Ok("invalid");
        };
        crate::templates_status::Update {
            name,
            language,
            status: Some(event),
            reason: text(v, "reason"),
            meta_id: id.as_deref(),
            ..Default::default()
        }
    } else {
        crate::templates_status::Update {
            name,
            language,
            quality: text(v, "new_quality_score"),
            meta_id: id.as_deref(),
            ..Default::default()
        }
    };
    crate::templates_status::record(db, &update, said_at, now).await?;
    Ok("stored")
}

/// Each status's `pricing` object, stored with its message.
async fn record_pricing(db: &Db, v: &Value, now: DateTime<Utc>) -> Result<()> {
    let Some(statuses) = v.get("statuses").and_then(Value::as_array) else {
        return Ok(());
    };
    for s in statuses {
        let (Some(wamid), Some(p)) = (text(s, "id"), s.get("pricing")) else {
            continue;
        };
        let Some(category) = text(p, "category") else {
            continue;
        };
        let billable = p.get("billable").and_then(Value::as_bool).unwrap_or(false);
        crate::pricing::record(
            db,
            &crate::pricing::Priced {
                wamid,
                outbox_id: text(s, "biz_opaque_callback_data").and_then(|c| c.parse().ok()),
                billable,
                category,
                pricing_type: text(p, "type"),
                pricing_model: text(p, "pricing_model"),
                at: unix(s.get("timestamp")).unwrap_or(now),
            },
        )
        .await?;
    }
    Ok(())
}
