//! Meta's verdict on each message template: review status (`APPROVED`,
//! `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`) and quality, as `templates
//! sync` read it back and as `message_template_status_update` /
//! `message_template_quality_update` webhooks announce it. Owns
//! `meta_templates`.
//!
//! A template Meta has paused, disabled or rejected is not sent: delivery
//! asks [`blocked`] at send time, and the messages that need it wait with
//! [`REASON`] until Meta approves the template again.

use crate::store::Db;
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::collections::HashSet;

/// Statuses under which a template is not sent.
pub const BLOCKING: [&str; 3] = ["PAUSED", "DISABLED", "REJECTED"];

/// What a waiting message's case shows.
pub const REASON: &str = "template dijeda oleh Meta";

/// How long a message held back for its template waits before delivery
/// looks again (Meta's approval arrives by webhook at any time).
pub const RECHECK: Duration = Duration::minutes(5);

/// Gauge: templates by Meta status.
pub const TEMPLATES_METRIC: &str = "wa_smile_templates";

#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct TemplateStatus {
    pub name: String,
    pub language: String,
    pub category: Option<String>,
    pub meta_id: Option<String>,
    pub status: String,
    pub quality: Option<String>,
    pub reason: Option<String>,
    pub status_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TemplateStatus {
    pub fn is_blocking(&self) -> bool {
        is_blocking(&self.status)
    }
}

pub fn is_blocking(status: &str) -> bool {
    BLOCKING.contains(&status)
}

/// What Meta said about one template.
#[derive(Debug, Clone, Default)]
pub struct Update<'a> {
    pub name: &'a str,
    pub language: &'a str,
    pub status: Option<&'a str>,
    pub quality: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub meta_id: Option<&'a str>,
    pub category: Option<&'a str>,
}

/// Stores what Meta said at `said_at` (an older event arriving after a
/// newer one changes nothing). Returns the status before and after, so the
/// caller can tell a change (and alert) from a redelivery.
pub async fn record(
    db: &Db,
    u: &Update<'_>,
    said_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<(Option<String>, String)>> {
    let said_at = crate::time::truncate(said_at);
    let before = get(db, u.name, u.language).await?;
    if before.as_ref().is_some_and(|b| b.status_at > said_at) {
        return Ok(None);
    }
    let status = u
        .status
        .map(|s| s.trim().to_ascii_uppercase())
        .or_else(|| before.as_ref().map(|b| b.status.clone()))
        .unwrap_or_else(|| "PENDING".into());
    let quality = u.quality.map(|q| q.trim().to_ascii_uppercase());
    let mut tx = db.begin().await?;
    tx.query(
        "INSERT INTO meta_templates \
           (name, language, category, meta_id, status, quality, reason, status_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (name, language) DO UPDATE SET \
           category = COALESCE(excluded.category, meta_templates.category), \
           meta_id = COALESCE(excluded.meta_id, meta_templates.meta_id), \
           status = excluded.status, \
           quality = COALESCE(excluded.quality, meta_templates.quality), \
           reason = CASE WHEN $10 THEN excluded.reason ELSE meta_templates.reason END, \
           status_at = excluded.status_at, updated_at = excluded.updated_at",
    )
    .bind(u.name.to_owned())
    .bind(u.language.to_owned())
    .bind(u.category.map(|c| c.to_ascii_uppercase()))
    .bind(u.meta_id.map(str::to_owned))
    .bind(status.clone())
    .bind(quality)
    .bind(u.reason.map(str::to_owned).filter(|r| r != "NONE"))
    .bind(said_at)
    .bind(crate::time::truncate(now))
    .bind(u.status.is_some())
    .execute(&mut tx)
    .await
    .context("failed to store a template's status")?;
    let before_status = before.map(|b| b.status);
    if before_status.as_deref() != Some(status.as_str()) {
        tx.audit(
            crate::audit::AuditEntry::new(now, "meta", "template.status", "template")
                .before(json!({"name": u.name, "language": u.language, "status": before_status}))
                .after(
                    json!({"name": u.name, "language": u.language, "status": status,
                              "reason": u.reason}),
                ),
        );
    }
    tx.commit().await?;
    let was_blocking = before_status.as_deref().is_some_and(is_blocking);
    if is_blocking(&status) && !was_blocking {
        // The operator must act: Meta paused (or refused) a template the
        // bot relies on; its messages wait.
        metrics::counter!(crate::metrics::OPERATOR_ALERTS, "kind" => "template_blocked")
            .increment(1);
        tracing::error!(
            template = u.name,
            language = u.language,
            status = %status,
            reason = u.reason.unwrap_or("NONE"),
            "Meta stopped a message template; its messages wait until it is approved again"
        );
    } else if was_blocking && !is_blocking(&status) {
        tracing::warn!(template = u.name, language = u.language, status = %status, "message template usable again; its messages resume");
    }
    Ok(Some((before_status, status)))
}

pub async fn get(db: &Db, name: &str, language: &str) -> Result<Option<TemplateStatus>> {
    db.query(
        "SELECT name, language, category, meta_id, status, quality, reason, status_at, updated_at \
         FROM meta_templates WHERE name = $1 AND language = $2",
    )
    .bind(name.to_owned())
    .bind(language.to_owned())
    .fetch_optional_as(db)
    .await
    .context("failed to read a template's status")
}

/// Every template Meta told us about, by name.
pub async fn list(db: &Db) -> Result<Vec<TemplateStatus>> {
    db.query(
        "SELECT name, language, category, meta_id, status, quality, reason, status_at, updated_at \
         FROM meta_templates ORDER BY name, language",
    )
    .fetch_all_as(db)
    .await
    .context("failed to read template statuses")
}

/// The WhatsApp template names in `language` that must not be sent now.
/// Delivery asks this once per claimed batch.
pub async fn blocked(db: &Db, language: &str) -> Result<HashSet<String>> {
    let names: Vec<(String,)> = db
        .query(
            "SELECT name FROM meta_templates WHERE language = $1 \
             AND status IN ('PAUSED', 'DISABLED', 'REJECTED')",
        )
        .bind(language.to_owned())
        .fetch_all_as(db)
        .await
        .context("failed to read blocked templates")?;
    Ok(names.into_iter().map(|(n,)| n).collect())
}

/// Refreshes the `wa_smile_templates{status}` gauge (on each scrape).
pub async fn refresh_gauge(db: &Db) -> Result<()> {
    let all = list(db).await?;
    for status in crate::simulator::TEMPLATE_STATUSES {
        let n = all.iter().filter(|t| t.status == status).count();
        metrics::gauge!(TEMPLATES_METRIC, "status" => status).set(n as f64);
    }
    Ok(())
}

/// Whether `content` is a template message whose template is in `blocked`.
pub fn holds(content: &crate::whatsapp::MessageContent, blocked: &HashSet<String>) -> bool {
    matches!(content, crate::whatsapp::MessageContent::Template { template } if blocked.contains(&template.name))
}
