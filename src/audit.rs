//! The append-only, hash-chained audit log.
//!
//! Each row's `hash` is SHA-256 over a canonical JSON array of
//! `[prev_hash, seq, at, actor, action, entity, payload_digest]`, where
//! `payload_digest` is SHA-256 over the row's before/after JSON. Chaining the
//! digest rather than the payload is deliberate: retention may later redact
//! personal data from before/after (UU PDP) and the chain still verifies,
//! while an unredacted row's payload is still checked against its digest.

use crate::store::{Backend, Db, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One state change, as written to the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl AuditEntry {
    pub fn new(
        at: DateTime<Utc>,
        actor: impl Into<String>,
        action: impl Into<String>,
        entity: impl Into<String>,
    ) -> Self {
        Self {
            at: crate::time::truncate(at),
            actor: actor.into(),
            action: action.into(),
            entity: entity.into(),
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, v: Value) -> Self {
        self.before = Some(v);
        self
    }

    pub fn after(mut self, v: Value) -> Self {
        self.after = Some(v);
        self
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The digest of a row's payload as stored (the exact text).
pub fn payload_digest(before: Option<&str>, after: Option<&str>) -> String {
    let canonical = serde_json::json!([before, after]).to_string();
    sha256_hex(canonical.as_bytes())
}

fn format_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The chain hash of one row.
pub fn row_hash(
    prev_hash: &str,
    seq: i64,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    entity: &str,
    digest: &str,
) -> String {
    let canonical =
        serde_json::json!([prev_hash, seq, format_at(at), actor, action, entity, digest])
            .to_string();
    sha256_hex(canonical.as_bytes())
}

/// Appends entries to the chain inside `tx`. Called by `Tx::commit`, last,
/// so the head row's lock is held only until the commit that follows.
pub(crate) async fn append(tx: &mut Tx, entries: Vec<AuditEntry>) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let head_sql = match tx.backend() {
        Backend::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        Backend::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
    };
    let head: HeadRow = tx
        .query(head_sql)
        .fetch_one_as(&mut *tx)
        .await
        .context("failed to read the audit chain head")?;
    let mut seq = head.seq;
    let mut prev = head.hash;

    let mut rows = Vec::with_capacity(entries.len());
    for e in &entries {
        seq += 1;
        let before = e.before.as_ref().map(Value::to_string);
        let after = e.after.as_ref().map(Value::to_string);
        let digest = payload_digest(before.as_deref(), after.as_deref());
        let hash = row_hash(&prev, seq, e.at, &e.actor, &e.action, &e.entity, &digest);
        rows.push(ChainRow {
            seq,
            at: e.at,
            actor: &e.actor,
            action: &e.action,
            entity: &e.entity,
            before,
            after,
            digest,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    match tx.backend() {
        Backend::Sqlite => insert_sqlite(tx, &rows).await?,
        Backend::Postgres => insert_postgres(tx, &rows).await?,
    }
    tx.query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(prev)
        .execute(&mut *tx)
        .await
        .context("failed to move the audit chain head")?;
    Ok(())
}

/// One audit row as appended.
struct ChainRow<'a> {
    seq: i64,
    at: DateTime<Utc>,
    actor: &'a str,
    action: &'a str,
    entity: &'a str,
    before: Option<String>,
    after: Option<String>,
    digest: String,
    prev_hash: String,
    hash: String,
}

/// SQLite: the rows as one JSON parameter, unpacked by `json_each`. sqlx
/// binds SQLite parameters by name, which costs quadratically in the
/// parameters of one statement; a single parameter avoids that, and one
/// statement carries the whole batch. `at` is written as sqlx writes a
/// bound `DateTime<Utc>`, so the stored text is the same either way.
async fn insert_sqlite(tx: &mut Tx, rows: &[ChainRow<'_>]) -> Result<()> {
    let json: Vec<Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!([
                r.seq,
                r.at.to_rfc3339_opts(SecondsFormat::AutoSi, false),
                r.actor,
                r.action,
                r.entity,
                r.before,
                r.after,
                r.digest,
                r.prev_hash,
                r.hash
            ])
        })
        .collect();
    tx.query(
        "INSERT INTO audit_log (seq, at, actor, action, entity, before, after, payload_digest, prev_hash, hash) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
         value ->> 7, value ->> 8, value ->> 9 FROM json_each($1)",
    )
    .bind(Value::from(json).to_string())
    .execute(&mut *tx)
    .await
    .context("failed to append to the audit log")?;
    Ok(())
}

/// PostgreSQL binds by position, so multi-row `VALUES` cost nothing extra.
async fn insert_postgres(tx: &mut Tx, rows: &[ChainRow<'_>]) -> Result<()> {
    tx.execute_chunked(
        "INSERT INTO audit_log (seq, at, actor, action, entity, before, after, payload_digest, prev_hash, hash) VALUES {values}",
        10,
        rows,
        |q, r| {
            q.bind(r.seq)
                .bind(r.at)
                .bind(r.actor.to_owned())
                .bind(r.action.to_owned())
                .bind(r.entity.to_owned())
                .bind(r.before.clone())
                .bind(r.after.clone())
                .bind(r.digest.clone())
                .bind(r.prev_hash.clone())
                .bind(r.hash.clone())
        },
    )
    .await
    .context("failed to append to the audit log")?;
    Ok(())
}

/// The outcome of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    pub rows: i64,
    pub head_seq: i64,
    pub head_hash: String,
    /// The first row that does not verify, and why.
    pub broken: Option<(i64, String)>,
}

/// `audit_head`: the chain's last sequence number and hash.
#[derive(sqlx::FromRow)]
struct HeadRow {
    seq: i64,
    hash: String,
}

/// One `audit_log` row, as `verify` recomputes it and the audit export
/// writes it.
#[derive(sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub payload_digest: String,
    pub prev_hash: String,
    pub hash: String,
    pub redacted_at: Option<DateTime<Utc>>,
}

/// The current head of the chain (sequence number and hash).
pub async fn head(db: &Db) -> Result<(i64, String)> {
    let row: HeadRow = db
        .query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one_as(db)
        .await?;
    Ok((row.seq, row.hash))
}

/// Recomputes the whole chain, streaming, and names the first broken row.
pub async fn verify(db: &Db) -> Result<Verification> {
    let (head_seq, head_hash) = head(db).await?;
    let mut rows = db
        .query(
            "SELECT seq, at, actor, action, entity, before, after, payload_digest, prev_hash, hash, redacted_at \
             FROM audit_log ORDER BY seq",
        )
        .fetch_as::<AuditRow>(db);
    let mut expected_seq = 1i64;
    let mut prev = GENESIS_HASH.to_owned();
    let mut count = 0i64;
    let broken = |seq: i64, why: String| Some((seq, why));
    let mut result = None;
    while let Some(row) = rows.next().await {
        let row = row?;
        let seq = row.seq;
        count += 1;
        if seq != expected_seq {
            result = broken(
                expected_seq,
                format!("row {expected_seq} is missing (next row is {seq})"),
            );
            break;
        }
        if row.prev_hash != prev {
            result = broken(
                seq,
                "prev_hash does not match the previous row's hash".into(),
            );
            break;
        }
        let digest = row.payload_digest;
        if row.redacted_at.is_none()
            && payload_digest(row.before.as_deref(), row.after.as_deref()) != digest
        {
            result = broken(
                seq,
                "before/after were changed (payload digest mismatch)".into(),
            );
            break;
        }
        let hash = row.hash;
        if row_hash(
            &prev,
            seq,
            row.at,
            &row.actor,
            &row.action,
            &row.entity,
            &digest,
        ) != hash
        {
            result = broken(seq, "row content does not match its hash".into());
            break;
        }
        prev = hash;
        expected_seq += 1;
    }
    drop(rows);
    if result.is_none() {
        if expected_seq - 1 != head_seq {
            result = broken(
                expected_seq,
                format!(
                    "the chain ends at row {} but the head says {head_seq}",
                    expected_seq - 1
                ),
            );
        } else if prev != head_hash {
            result = broken(
                head_seq,
                "the last row's hash differs from the recorded head".into(),
            );
        }
    }
    Ok(Verification {
        rows: count,
        head_seq,
        head_hash,
        broken: result,
    })
}
