//! Media employers send (a photo of a transfer receipt, a PDF): noted with
//! the inbound message, fetched from the Cloud API later — on first view or
//! by whoever calls [`fetch`] — never on the webhook's path, and kept with
//! its SHA-256. This module owns `inbound_media`.

use crate::store::{Db, Tx};
use crate::webhook::MessageKind;
use crate::whatsapp::{MediaError, WhatsappClient};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Larger files are refused, not truncated (Meta's own image limit is 5 MB).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

/// A failed download is tried again on a later view, this many times.
pub const MAX_ATTEMPTS: i64 = 5;

/// Where a file is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaState {
    Pending,
    Stored,
    /// The last attempt failed; a later view tries again.
    Failed,
    /// Too large, or a type not kept: never fetched again.
    Refused,
}

impl MediaState {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaState::Pending => "pending",
            MediaState::Stored => "stored",
            MediaState::Failed => "failed",
            MediaState::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            MediaState::Pending,
            MediaState::Stored,
            MediaState::Failed,
            MediaState::Refused,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

impl crate::store::TextColumn for MediaState {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("`{s}` is not a media state"))
    }
}

crate::store_column!(text: MediaState);

/// A file's facts, without its bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct MediaInfo {
    pub id: i64,
    pub wamid: String,
    pub case_id: Option<i64>,
    /// `image` or `document`.
    pub kind: String,
    #[serde(serialize_with = "state_str")]
    pub state: MediaState,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub error: Option<String>,
}

fn state_str<S: serde::Serializer>(s: &MediaState, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

const INFO: &str = "id, wamid, case_id, kind, state, content_type, filename, size, sha256, error";

/// Types kept, each with the first bytes its files start with: a file is
/// served as what it is, never as what it claims.
const KEPT: &[(&str, &[u8])] = &[
    ("image/jpeg", b"\xFF\xD8\xFF"),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/webp", b"RIFF"),
    ("application/pdf", b"%PDF-"),
];

/// Whether `bytes` are a file of `content_type` this module keeps.
pub fn kept_type(content_type: &str, bytes: &[u8]) -> bool {
    KEPT.iter().any(|(t, magic)| {
        *t == content_type
            && bytes.starts_with(magic)
            && (*t != "image/webp" || bytes.get(8..12) == Some(b"WEBP"))
    })
}

/// Notes the file an inbound image or document carries, in the
/// transaction that stores the message. Other kinds carry nothing kept.
pub async fn note(
    tx: &mut Tx,
    inbound_id: i64,
    wamid: &str,
    case_id: Option<i64>,
    kind: &MessageKind,
    now: DateTime<Utc>,
) -> Result<()> {
    let (name, m) = match kind {
        MessageKind::Image(m) => ("image", m),
        MessageKind::Document(m) => ("document", m),
        _ => return Ok(()),
    };
    let Some(media_id) = m.id.clone().filter(|i| !i.trim().is_empty()) else {
        return Ok(());
    };
    tx.query(
        "INSERT INTO inbound_media (inbound_id, wamid, case_id, kind, media_id, declared_mime, declared_sha256, filename, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (wamid) DO NOTHING",
    )
    .bind(inbound_id)
    .bind(wamid.to_owned())
    .bind(case_id)
    .bind(name)
    .bind(media_id)
    .bind(m.mime_type.clone())
    .bind(m.sha256.clone())
    .bind(m.filename.clone())
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("failed to note an inbound media file")?;
    Ok(())
}

/// The files of these inbound messages (by wamid).
pub async fn for_wamids(db: &Db, wamids: &[String]) -> Result<Vec<MediaInfo>> {
    if wamids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=wamids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT {INFO} FROM inbound_media WHERE wamid IN ({})",
        marks.join(", ")
    );
    let mut q = db.query(&sql);
    for w in wamids {
        q = q.bind(w.clone());
    }
    Ok(q.fetch_all_as(db).await?)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<MediaInfo>> {
    let sql = format!("SELECT {INFO} FROM inbound_media WHERE id = $1");
    Ok(db.query(&sql).bind(id).fetch_optional_as(db).await?)
}

/// A stored file's bytes.
pub async fn content(db: &Db, id: i64) -> Result<Option<Vec<u8>>> {
    Ok(db
        .query("SELECT content FROM inbound_media WHERE id = $1 AND state = 'stored'")
        .bind(id)
        .fetch_optional_scalar::<Option<Vec<u8>>>(db)
        .await?
        .flatten())
}

#[derive(sqlx::FromRow)]
struct Pending {
    media_id: String,
    state: MediaState,
    attempts: i64,
}

/// Fetches file `id` from the Cloud API unless it is stored or refused (or
/// failed too often), checks its size and type, and keeps it with its hash.
/// Returns what the file is now. Two viewers racing both fetch; the second
/// write changes nothing a reader sees (same bytes, same hash).
pub async fn fetch(
    db: &Db,
    client: &WhatsappClient,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<MediaInfo>> {
    let Some(p) = db
        .query("SELECT media_id, state, attempts FROM inbound_media WHERE id = $1")
        .bind(id)
        .fetch_optional_as::<Pending>(db)
        .await?
    else {
        return Ok(None);
    };
    let due = match p.state {
        MediaState::Pending => true,
        MediaState::Failed => p.attempts < MAX_ATTEMPTS,
        MediaState::Stored | MediaState::Refused => false,
    };
    if due {
        match client.media(&p.media_id, MAX_BYTES).await {
            Ok(d) if kept_type(&d.content_type, &d.bytes) => {
                let sha = hex::encode(Sha256::digest(&d.bytes));
                db.query(
                    "UPDATE inbound_media SET state = 'stored', content_type = $2, size = $3, sha256 = $4, \
                     content = $5, attempts = attempts + 1, error = NULL, fetched_at = $6 \
                     WHERE id = $1 AND state <> 'stored'",
                )
                .bind(id)
                .bind(d.content_type.clone())
                .bind(d.bytes.len() as i64)
                .bind(sha)
                .bind(d.bytes)
                .bind(now)
                .execute(db)
                .await
                .context("failed to keep a media file")?;
            }
            Ok(d) => {
                let why = format!("jenis berkas tidak diterima ({})", d.content_type);
                settle(db, id, MediaState::Refused, &why, now).await?;
            }
            Err(MediaError::TooLarge(n)) => {
                let why = format!("berkas lebih besar dari {} MB", n / (1024 * 1024));
                settle(db, id, MediaState::Refused, &why, now).await?;
            }
            Err(e @ MediaError::BadId) => {
                settle(db, id, MediaState::Refused, &e.to_string(), now).await?;
            }
            Err(e) => {
                tracing::warn!(media = id, error = %e, "could not fetch an inbound media file");
                settle(
                    db,
                    id,
                    MediaState::Failed,
                    "gagal diunduh dari WhatsApp",
                    now,
                )
                .await?;
            }
        }
    }
    get(db, id).await
}

async fn settle(db: &Db, id: i64, state: MediaState, why: &str, now: DateTime<Utc>) -> Result<()> {
    db.query(
        "UPDATE inbound_media SET state = $2, error = $3, attempts = attempts + 1, fetched_at = $4 \
         WHERE id = $1 AND state <> 'stored'",
    )
    .bind(id)
    .bind(state)
    .bind(why.to_owned())
    .bind(now)
    .execute(db)
    .await
    .context("failed to record a media fetch")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_kept_only_as_what_its_bytes_are() {
        assert!(kept_type("image/png", b"\x89PNG\r\n\x1a\nrest"));
        assert!(!kept_type("image/png", b"<svg onload=alert(1)>"));
        assert!(!kept_type("image/svg+xml", b"<svg/>"));
        assert!(kept_type("application/pdf", b"%PDF-1.7"));
        assert!(!kept_type("image/jpeg", b"%PDF-1.7"));
        assert!(kept_type("image/webp", b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(!kept_type("image/webp", b"RIFF\0\0\0\0WAVEfmt "));
    }
}
