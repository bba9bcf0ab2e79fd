//! Labels officers put on cases ("alamat baru", "tunggu transfer"): free
//! words, lower-cased, at most one of each per case. The case action
//! records the event; this module owns the `case_labels` table.

use crate::store::{Db, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

/// Adds `label` to the case; false when it already had it.
pub async fn add(
    tx: &mut Tx,
    case_id: i64,
    label: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let n = tx
        .query(
            "INSERT INTO case_labels (case_id, label, created_by, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (case_id, label) DO NOTHING",
        )
        .bind(case_id)
        .bind(label.to_owned())
        .bind(by.to_owned())
        .bind(at)
        .execute(&mut *tx)
        .await
        .context("failed to add the label")?;
    Ok(n > 0)
}

/// Removes `label` from the case; false when it did not have it.
pub async fn remove(tx: &mut Tx, case_id: i64, label: &str) -> Result<bool> {
    let n = tx
        .query("DELETE FROM case_labels WHERE case_id = $1 AND label = $2")
        .bind(case_id)
        .bind(label.to_owned())
        .execute(&mut *tx)
        .await
        .context("failed to remove the label")?;
    Ok(n > 0)
}

/// The case's labels, sorted.
pub async fn for_case(db: &Db, case_id: i64) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = db
        .query("SELECT label FROM case_labels WHERE case_id = $1 ORDER BY label")
        .bind(case_id)
        .fetch_all_as(db)
        .await?;
    Ok(rows.into_iter().map(|(l,)| l).collect())
}

/// Labels of these cases (for a list page), as (case id, label).
pub async fn for_cases(db: &Db, case_ids: &[i64]) -> Result<Vec<(i64, String)>> {
    if case_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = case_ids.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT case_id, label FROM case_labels WHERE case_id IN ({}) ORDER BY case_id, label",
        ids.join(",")
    );
    Ok(db.query(&sql).fetch_all_as(db).await?)
}
