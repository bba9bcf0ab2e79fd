//! Canned replies: short texts officers write once and send as free text
//! inside the 24-hour window (`crate::outbox::window_open` decides, in the
//! case action). Officers edit them; every change is audited.

use crate::audit::AuditEntry;
use crate::store::Db;
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;

pub const MAX_TITLE: usize = 80;
pub const MAX_BODY: usize = 1000;

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct Canned {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// Every canned reply, by title.
pub async fn list(db: &Db) -> Result<Vec<Canned>> {
    Ok(db
        .query(
            "SELECT id, title, body, updated_by, updated_at FROM canned_replies ORDER BY title, id",
        )
        .fetch_all_as(db)
        .await?)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Canned>> {
    Ok(db
        .query("SELECT id, title, body, updated_by, updated_at FROM canned_replies WHERE id = $1")
        .bind(id)
        .fetch_optional_as(db)
        .await?)
}

/// Checks a title and body; the officer reads the error.
pub fn check(title: &str, body: &str) -> Result<(String, String), String> {
    let (t, b) = (title.trim(), body.trim());
    if t.is_empty() || b.is_empty() {
        return Err("Judul dan isi balasan cepat wajib diisi.".into());
    }
    if t.chars().count() > MAX_TITLE || b.chars().count() > MAX_BODY {
        return Err(format!(
            "Judul paling banyak {MAX_TITLE} karakter, isi paling banyak {MAX_BODY} karakter."
        ));
    }
    Ok((t.to_owned(), b.to_owned()))
}

/// Creates (`id` None) or updates a canned reply, audited in one
/// transaction.
pub async fn save(
    db: &Db,
    id: Option<i64>,
    title: &str,
    body: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<i64> {
    let mut tx = db.begin().await?;
    let id = match id {
        Some(id) => {
            tx.query("UPDATE canned_replies SET title = $2, body = $3, updated_by = $4, updated_at = $5 WHERE id = $1")
                .bind(id)
                .bind(title.to_owned())
                .bind(body.to_owned())
                .bind(by.to_owned())
                .bind(at)
                .execute(&mut tx)
                .await?;
            id
        }
        None => tx
            .query("INSERT INTO canned_replies (title, body, updated_by, updated_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(title.to_owned())
            .bind(body.to_owned())
            .bind(by.to_owned())
            .bind(at)
            .fetch_scalar(&mut tx)
            .await?,
    };
    tx.audit(
        AuditEntry::new(at, by, "canned_reply.save", format!("canned_reply:{id}"))
            .after(json!({"title": title, "body": body})),
    );
    tx.commit().await?;
    Ok(id)
}

pub async fn delete(db: &Db, id: i64, by: &str, at: DateTime<Utc>) -> Result<()> {
    let mut tx = db.begin().await?;
    tx.query("DELETE FROM canned_replies WHERE id = $1")
        .bind(id)
        .execute(&mut tx)
        .await?;
    tx.audit(AuditEntry::new(
        at,
        by,
        "canned_reply.delete",
        format!("canned_reply:{id}"),
    ));
    tx.commit().await?;
    Ok(())
}
