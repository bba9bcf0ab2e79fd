//! The business number's standing with Meta: its messaging tier (how many
//! unique users business-initiated messages may reach in 24 h), its quality
//! and any restriction, as `phone_number_quality_update` and
//! `account_update` webhooks announce them. Owns `meta_account`.
//!
//! The daily limit delivery plans with is the tier Meta announced last,
//! `whatsapp.daily_unique_recipients` until Meta has said one. A
//! restriction on business-initiated messaging halts all sending the way a
//! 368/131031 send error does (`delivery::FLAG_SENDING_PAUSED`), with the
//! restriction as the visible reason, until the operator resumes.

use crate::store::Db;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Gauge: the daily unique-recipient limit in force.
pub const DAILY_LIMIT_METRIC: &str = "wa_smile_daily_recipient_limit";

#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct AccountState {
    pub phone: String,
    pub tier: Option<String>,
    pub daily_limit: Option<i64>,
    pub quality: Option<String>,
    pub restriction: Option<String>,
    pub restricted_until: Option<DateTime<Utc>>,
    pub event: Option<String>,
    pub event_at: DateTime<Utc>,
}

/// Meta's tier names (and plain numbers) as a daily limit; None for
/// unlimited or a tier not yet set.
pub fn tier_limit(tier: &str) -> Option<Option<i64>> {
    let t = tier.trim().to_ascii_uppercase();
    if let Ok(n) = t.parse::<i64>() {
        return Some(Some(n));
    }
    let n = match t.as_str() {
        "TIER_50" => 50,
        "TIER_250" => 250,
        "TIER_1K" => 1_000,
        "TIER_2K" => 2_000,
        "TIER_10K" => 10_000,
        "TIER_100K" => 100_000,
        "TIER_UNLIMITED" | "UNLIMITED" => return Some(None),
        _ => return None,
    };
    Some(Some(n))
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// What one event says about the account (None: it does not say it).
#[derive(Default)]
struct Change {
    tier: Option<String>,
    limit: Option<i64>,
    quality: Option<String>,
    restriction: Option<String>,
    until: Option<DateTime<Utc>>,
}

/// A `phone_number_quality_update`: the tier and the quality signal; None
/// when the tier is not one Meta names.
fn quality_change(v: &Value, event: Option<&str>) -> Option<Change> {
    let mut c = Change::default();
    // `max_daily_conversations_per_business` replaces `current_limit`
    // (removed 2026); either may carry the tier.
    let raw = text(v, "max_daily_conversations_per_business").or(text(v, "current_limit"));
    if let Some(raw) = raw {
        let l = tier_limit(raw)?;
        c.tier = Some(raw.to_owned());
        c.limit = l.or(Some(i64::MAX));
    }
    // FLAGGED / UNFLAGGED / UPGRADE / DOWNGRADE: the quality signal.
    c.quality = event.map(str::to_owned);
    Some(c)
}

/// An `account_update`: a restriction on business-initiated messaging or
/// a ban, and until when.
fn account_change(v: &Value) -> Change {
    let infos = v
        .get("restriction_info")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let halting: Vec<String> = infos
        .iter()
        .filter_map(|i| text(i, "restriction_type"))
        .filter(|t| t.contains("INITIATED_MESSAGING"))
        .map(str::to_owned)
        .collect();
    let until = infos
        .iter()
        .filter_map(|i| i.get("expiration"))
        .filter_map(|e| match e {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .max()
        .and_then(|s| DateTime::from_timestamp(s, 0));
    let banned = v
        .get("ban_info")
        .and_then(|b| text(b, "waba_ban_state"))
        .is_some_and(|s| s == "DISABLE");
    let restriction = if banned {
        Some("akun WhatsApp Business dinonaktifkan oleh Meta".to_owned())
    } else if !halting.is_empty() {
        Some(format!(
            "akun dibatasi oleh Meta ({}){}",
            halting.join(", "),
            until
                .map(|u| format!(" sampai {}", u.to_rfc3339()))
                .unwrap_or_default()
        ))
    } else {
        None
    };
    Change {
        restriction,
        until,
        ..Change::default()
    }
}

/// One `phone_number_quality_update` or `account_update` change.
pub async fn record_event(
    db: &Db,
    _config: &crate::config::Config,
    field: &str,
    v: &Value,
    said_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<&'static str> {
    let event = text(v, "event");
    let change = if field == "phone_number_quality_update" {
        match quality_change(v, event) {
            Some(c) => c,
            None => return Ok("invalid"),
        }
    } else {
        account_change(v)
    };
    let Change {
        tier,
        limit,
        quality,
        restriction,
        until,
    } = change;
    if tier.is_none() && quality.is_none() && restriction.is_none() && event.is_none() {
        return Ok("ignored");
    }
    let before = state(db).await?;
    if before.as_ref().is_some_and(|b| b.event_at > said_at) {
        return Ok("stale");
    }
    db.query(
        "INSERT INTO meta_account \
           (phone, tier, daily_limit, quality, restriction, restricted_until, event, event_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (phone) DO UPDATE SET \
           tier = COALESCE(excluded.tier, meta_account.tier), \
           daily_limit = COALESCE(excluded.daily_limit, meta_account.daily_limit), \
           quality = COALESCE(excluded.quality, meta_account.quality), \
           restriction = CASE WHEN $10 THEN excluded.restriction ELSE meta_account.restriction END, \
           restricted_until = CASE WHEN $10 THEN excluded.restricted_until ELSE meta_account.restricted_until END, \
           event = excluded.event, event_at = excluded.event_at, updated_at = excluded.updated_at",
    )
    .bind(ACCOUNT_ROW.to_owned())
    .bind(tier.clone())
    .bind(limit)
    .bind(quality.clone())
    .bind(restriction.clone())
    .bind(until)
    .bind(event.map(|e| format!("{field}:{e}")))
    .bind(crate::time::truncate(said_at))
    .bind(crate::time::truncate(now))
    .bind(field == "account_update")
    .execute(db)
    .await
    .context("failed to store the account's state")?;
    if let Some(l) = limit {
        metrics::gauge!(DAILY_LIMIT_METRIC).set(l as f64);
        if before.as_ref().and_then(|b| b.daily_limit) != Some(l) {
            tracing::warn!(
                tier = tier.as_deref().unwrap_or(""),
                limit = l,
                "Meta changed the messaging tier; the daily limit follows it"
            );
        }
    }
    if quality.as_deref() == Some("FLAGGED") {
        metrics::counter!(crate::metrics::OPERATOR_ALERTS, "kind" => "number_flagged").increment(1);
        tracing::error!("Meta flagged the business number's quality: the tier may drop");
    }
    if let Some(reason) = &restriction {
        if crate::delivery::halt_for_restriction(db, reason, now).await? {
            tracing::error!(reason = %reason, "delivery halted: Meta restricted the account (`wa-smile deliver --resume` once lifted)");
            metrics::counter!(crate::metrics::OPERATOR_ALERTS, "kind" => "account_restricted")
                .increment(1);
        }
    }
    // A redelivered event changes nothing and is not audited twice.
    let facts = |s: &AccountState| {
        (
            s.tier.clone(),
            s.daily_limit,
            s.quality.clone(),
            s.restriction.clone(),
        )
    };
    let after = state(db).await?;
    if before.as_ref().map(facts) == after.as_ref().map(facts) {
        return Ok("stored");
    }
    let mut tx = db.begin().await?;
    tx.audit(
        crate::audit::AuditEntry::new(now, "meta", "account.update", "account").after(json!({
            "field": field, "event": event, "tier": tier, "quality": quality,
            "restriction": restriction,
        })),
    );
    tx.commit().await?;
    Ok("stored")
}

/// The account's facts are one row: the tier is the portfolio's, and one
/// instance serves one number.
const ACCOUNT_ROW: &str = "";

pub async fn state(db: &Db) -> Result<Option<AccountState>> {
    db.query(
        "SELECT phone, tier, daily_limit, quality, restriction, restricted_until, event, event_at \
         FROM meta_account WHERE phone = $1",
    )
    .bind(ACCOUNT_ROW.to_owned())
    .fetch_optional_as(db)
    .await
    .context("failed to read the account's state")
}

/// The tier Meta announced, if any.
pub async fn announced_limit(db: &Db) -> Result<Option<i64>> {
    Ok(state(db).await?.and_then(|s| s.daily_limit))
}

/// The daily unique-recipient limit to plan with: Meta's, else `fallback`.
pub async fn daily_limit(db: &Db, fallback: u32) -> Result<i64> {
    let limit = announced_limit(db)
        .await?
        .unwrap_or_else(|| i64::from(fallback));
    metrics::gauge!(DAILY_LIMIT_METRIC).set(limit as f64);
    Ok(limit)
}
