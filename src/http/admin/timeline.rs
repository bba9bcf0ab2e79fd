//! The case log as officers read it: the conversation as it happened.
//! Outgoing messages show the exact text the employer saw (`outbox.text`),
//! their buttons and their ticks; replies show their text, the button
//! tapped and their media; promises, payments and officers' notes sit
//! inline. One page at a time, newest first, each message once (at its
//! first event). Everything here is data for auto-escaped templates;
//! nothing is marked safe.

use crate::case_log::{self, Event};
use crate::outbox::{OutboxState, Shown};
use crate::replies::InboundShown;
use crate::store::Db;
use anyhow::Result;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::{Environment, Value};
use serde_json::Value as Json;
use std::collections::HashMap;

/// Lines a page shows; older ones are a link away.
pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, serde::Serialize)]
pub struct Item {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `Selasa, 3 Maret 2026`, set on the first line of each day.
    pub day: Option<String>,
    /// `10.00 WIB`.
    pub time: String,
    /// `in` (employer), `out` (bot or officer message), `note`, `event`.
    pub side: &'static str,
    pub kind: String,
    pub actor: String,
    pub title: String,
    pub text: Option<String>,
    /// Quick-reply buttons the message carried (their titles).
    pub buttons: Vec<String>,
    /// The label of the button an employer tapped.
    pub tapped: Option<String>,
    /// How the bot read a reply.
    pub intent: Option<String>,
    /// Delivery state of an outgoing message: queued, sending, sent,
    /// delivered, read, failed, skipped or cancelled.
    pub state: Option<&'static str>,
    pub failure: Option<String>,
    pub media: Option<MediaView>,
    /// What an inbound message of a kind not shown here was.
    pub unshown: Option<String>,
    /// Only `https://` links are offered as links.
    pub link: Option<String>,
    /// An officer's correction of how the bot read a reply.
    pub corrected: Option<String>,
    /// What the correction form of a reply starts from.
    pub correct: Option<CorrectView>,
}

/// The correction form of one reply: its current reading.
#[derive(Debug, serde::Serialize)]
pub struct CorrectView {
    pub wamid: String,
    pub intent: String,
    /// `YYYY-MM-DD`, or empty.
    pub date: String,
}

#[derive(Debug, serde::Serialize)]
pub struct MediaView {
    pub id: i64,
    /// `image` or `document`.
    pub kind: String,
    pub state: &'static str,
    pub filename: Option<String>,
    pub size: Option<String>,
    pub sha256: Option<String>,
    pub error: Option<String>,
}

/// One page of the timeline, oldest line first (as a chat reads).
#[derive(Debug, serde::Serialize)]
pub struct Page {
    pub items: Vec<Item>,
    /// The event id to pass as `before` for the next older page.
    pub older: Option<i64>,
    /// The page this one was asked for (`None`: the newest).
    pub before: Option<i64>,
    /// The case's newest event id: the live poll asks whether it moved.
    pub version: i64,
    /// The readings a reply's correction form offers: (code, Indonesian).
    pub choices: Vec<(&'static str, &'static str)>,
}

/// Loads the page of case `case_id` older than event `before` (the newest
/// page when `None`): four queries whatever the case's length.
pub async fn load(db: &Db, case_id: i64, before: Option<i64>, tz: Tz) -> Result<Page> {
    let version = case_log::version(db, case_id).await?;
    let mut events = case_log::page(db, case_id, before, PAGE_SIZE + 1).await?;
    let older = if events.len() as i64 > PAGE_SIZE {
        events.truncate(PAGE_SIZE as usize);
        events.last().map(|e| e.id)
    } else {
        None
    };
    events.reverse();
    let ids: Vec<i64> = events.iter().filter_map(|e| outbox_id(&e.data)).collect();
    let wamids: Vec<String> = events
        .iter()
        .filter(|e| e.kind == "reply_received")
        .filter_map(|e| str_of(&e.data, &["wamid"]).map(str::to_owned))
        .collect();
    let messages: HashMap<i64, Shown> = crate::outbox::shown(db, &ids)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let inbound: HashMap<String, InboundShown> = crate::replies::shown(db, &wamids)
        .await?
        .into_iter()
        .map(|m| (m.wamid.clone(), m))
        .collect();
    let media: HashMap<String, crate::media::MediaInfo> = crate::media::for_wamids(db, &wamids)
        .await?
        .into_iter()
        .map(|m| (m.wamid.clone(), m))
        .collect();
    let found = Found {
        messages,
        inbound,
        media,
    };
    Ok(Page {
        items: build(&events, &found, tz),
        older,
        before,
        version,
        choices: crate::replies::corrections::CHOICES
            .iter()
            .map(|(i, l)| (i.as_str(), *l))
            .collect(),
    })
}

/// What a page's events refer to, read in one query each.
#[derive(Default)]
pub struct Found {
    pub messages: HashMap<i64, Shown>,
    pub inbound: HashMap<String, InboundShown>,
    pub media: HashMap<String, crate::media::MediaInfo>,
}

/// The lines of `events` (oldest first), with day headers.
pub fn build(events: &[Event], found: &Found, tz: Tz) -> Vec<Item> {
    let mut last_day = None;
    events
        .iter()
        .map(|e| {
            let mut it = item(e, found);
            let local = e.at.with_timezone(&tz);
            let day = local.date_naive();
            if last_day != Some(day) {
                it.day = Some(crate::messages::filters::format_tanggal(day));
                last_day = Some(day);
            }
            it.time = crate::messages::filters::format_jam(e.at, tz);
            it
        })
        .collect()
}

fn str_of<'a>(d: &'a Json, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| d.get(*k).and_then(Json::as_str))
}

fn outbox_id(d: &Json) -> Option<i64> {
    d.get("outbox_id").and_then(Json::as_i64)
}

/// A failure as an officer reads it: Meta's code explained in Indonesian.
fn failure_text(code: Option<i64>, fallback: Option<&str>) -> Option<String> {
    match (code, fallback) {
        (Some(c), _) => Some(format!("{} (kode {c})", crate::whatsapp::explain_code(c))),
        (None, Some(r)) if !r.trim().is_empty() => Some(label(r).to_owned()),
        _ => None,
    }
}

fn actor_label(actor: &str) -> String {
    match actor {
        "system" => "Bot".into(),
        "employer" => "Pemberi kerja".into(),
        other => other.strip_prefix("officer:").unwrap_or(other).to_owned(),
    }
}

fn base_item(e: &Event, side: &'static str, title: String, text: Option<String>) -> Item {
    Item {
        id: e.id,
        at: e.at,
        day: None,
        time: String::new(),
        side,
        kind: e.kind.clone(),
        actor: actor_label(&e.actor),
        title,
        text,
        buttons: Vec::new(),
        tapped: None,
        intent: None,
        state: None,
        failure: None,
        media: None,
        unshown: None,
        link: None,
        corrected: None,
        correct: None,
    }
}

/// Money as `Rp1.234.567` from an event's decimal string.
fn money(a: &str) -> String {
    crate::messages::filters::rupiah(&Value::from(a)).unwrap_or_else(|_| a.to_owned())
}

/// The line one event shows.
fn item(e: &Event, found: &Found) -> Item {
    let d = &e.data;
    let base = |side, title: String, text: Option<String>| base_item(e, side, title, text);
    match e.kind.as_str() {
        "message_queued" | "message_sent" | "message_delivered" | "message_read"
        | "message_failed" | "message_skipped" => message_item(e, found),
        "reply_received" => reply_item(e, found),
        "note_added" => base(
            "note",
            "Catatan".into(),
            str_of(d, &["text"]).map(str::to_owned),
        ),
        "promise_to_pay" => base(
            "event",
            format!(
                "Janji bayar: {}",
                str_of(d, &["promised_date"])
                    .and_then(|s| s.parse().ok())
                    .map(crate::messages::filters::format_tanggal)
                    .unwrap_or_else(|| "tanpa tanggal".into())
            ),
            str_of(d, &["note"])
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        ),
        "intent_corrected" => {
            let reading = |intent: &str, date: &str| {
                let name = intent
                    .parse()
                    .map(crate::replies::corrections::intent_label)
                    .unwrap_or("—");
                match str_of(d, &[date]).and_then(|s| s.parse().ok()) {
                    Some(day) => {
                        format!("{name} ({})", crate::messages::filters::format_tanggal(day))
                    }
                    None => name.to_owned(),
                }
            };
            base(
                "event",
                format!(
                    "Pembacaan balasan dikoreksi: {} → {}",
                    reading(
                        str_of(d, &["old_intent"]).unwrap_or(""),
                        "old_promised_date"
                    ),
                    reading(
                        str_of(d, &["new_intent"]).unwrap_or(""),
                        "new_promised_date"
                    )
                ),
                Some(crate::replies::corrections::describe(d)).filter(|t| !t.is_empty()),
            )
        }
        "paused" => base(
            "event",
            match str_of(d, &["until"]).and_then(|s| s.parse().ok()) {
                Some(day) => format!(
                    "Dijeda sampai {}",
                    crate::messages::filters::format_tanggal(day)
                ),
                None => "Dijeda".into(),
            },
            None,
        ),
        "payment_link_sent" => {
            let mut it = base("event", "Tautan pembayaran dikirim".into(), None);
            it.link = str_of(d, &["link", "url", "payment_link"])
                .filter(|l| l.starts_with("https://"))
                .map(str::to_owned);
            it
        }
        "payment_received" => base(
            "event",
            format!(
                "Pembayaran diterima{}",
                str_of(d, &["period"])
                    .and_then(|p| crate::domain::Period::parse(p).ok())
                    .map(|p| format!(" — periode {}", crate::messages::filters::format_bulan(p)))
                    .unwrap_or_default()
            ),
            str_of(d, &["amount"]).map(money),
        ),
        other => base(
            "event",
            label(other).to_owned(),
            str_of(
                d,
                &["reason", "text", "note", "assignee", "until", "stage", "to"],
            )
            .map(|v| label(v).to_owned()),
        ),
    }
}

/// A message's bubble: its words, buttons and furthest state, from its
/// outbox row (the event only says which row).
fn message_item(e: &Event, found: &Found) -> Item {
    let d = &e.data;
    let row = outbox_id(d).and_then(|id| found.messages.get(&id));
    let message = row
        .map(|r| r.message.as_str())
        .or_else(|| str_of(d, &["message", "template"]))
        .unwrap_or("pesan");
    let title = if message == "free_text" {
        "Pesan petugas".to_owned()
    } else {
        label(message).to_owned()
    };
    let text = row
        .and_then(|r| r.text.clone())
        .or_else(|| str_of(d, &["text"]).map(str::to_owned));
    let mut it = base_item(e, "out", title, text);
    if message != "free_text" {
        if let Ok(c) = crate::messages::embedded() {
            if let Some(def) = c.get(message) {
                it.buttons = def
                    .whatsapp
                    .buttons
                    .iter()
                    .map(|b| b.title.clone())
                    .collect();
            }
        }
    }
    let state = match row.map(|r| r.state) {
        Some(s) => s.as_str(),
        None => match e.kind.as_str() {
            "message_failed" => "failed",
            "message_skipped" => "skipped",
            _ => "queued",
        },
    };
    it.state = OutboxState::parse(state).map(OutboxState::as_str);
    it.failure = match state {
        "failed" => failure_text(
            row.and_then(|r| r.error_code)
                .or_else(|| d.get("code").and_then(Json::as_i64)),
            str_of(d, &["reason"]),
        )
        .or_else(|| Some("gagal dikirim".into())),
        "skipped" | "cancelled" => str_of(d, &["reason"]).map(|r| label(r).to_owned()),
        _ => None,
    };
    if it.text.is_none() && matches!(state, "queued" | "sending") {
        it.text = Some("Teks lengkap disusun saat pesan dikirim.".into());
    }
    it
}

/// What an inbound message of this kind is, when it is not shown as text.
fn kind_words(kind: &str) -> Option<String> {
    Some(match kind {
        "text" | "button" | "button_reply" | "list_reply" | "image" | "document" => return None,
        "audio" => "Pesan suara (tidak diputar di sini)".into(),
        "video" => "Video (tidak ditampilkan di sini)".into(),
        "sticker" => "Stiker".into(),
        "location" => "Lokasi yang dibagikan".into(),
        "reaction" => "Reaksi pada pesan".into(),
        "system" => "Pemberitahuan WhatsApp (mis. ganti nomor)".into(),
        "unsupported" => "Jenis pesan yang tidak didukung WhatsApp".into(),
        other => format!(
            "Jenis pesan tidak dikenal: {}",
            other.strip_prefix("other:").unwrap_or(other)
        ),
    })
}

fn size_words(n: i64) -> String {
    if n >= 1024 * 1024 {
        format!(
            "{},{} MB",
            n / (1024 * 1024),
            (n % (1024 * 1024)) * 10 / (1024 * 1024)
        )
    } else {
        format!("{} KB", (n + 1023) / 1024)
    }
}

fn reply_item(e: &Event, found: &Found) -> Item {
    let d = &e.data;
    let inbound = str_of(d, &["wamid"]).and_then(|w| found.inbound.get(w));
    let text = inbound
        .and_then(|m| m.body.clone())
        .or_else(|| str_of(d, &["text", "body", "button_text"]).map(str::to_owned));
    let kind = inbound.map_or("text", |m| m.kind.as_str());
    let mut it = base_item(e, "in", "Pemberi kerja".into(), None);
    match kind {
        "button" | "button_reply" | "list_reply" => it.tapped = text,
        _ => it.text = text,
    }
    if d.get("button").and_then(Json::as_bool) == Some(true) && it.tapped.is_none() {
        it.tapped = it.text.take();
    }
    it.unshown = kind_words(kind);
    if let Some(m) = inbound {
        let (intent, date) = if m.corrections > 0 {
            (m.corrected_intent.clone(), m.corrected_date)
        } else {
            (m.intent.clone(), m.promised_date)
        };
        it.correct = Some(CorrectView {
            wamid: m.wamid.clone(),
            intent: intent.unwrap_or_else(|| "unknown".into()),
            date: date.map(|d| d.to_string()).unwrap_or_default(),
        });
        if m.corrections > 0 {
            let name = m
                .corrected_intent
                .as_deref()
                .and_then(|i| i.parse().ok())
                .map_or("—", crate::replies::corrections::intent_label);
            let day = m
                .corrected_date
                .map(|d| format!(", {}", crate::messages::filters::format_tanggal(d)))
                .unwrap_or_default();
            let by = m.corrected_by.as_deref().unwrap_or("petugas");
            it.corrected = Some(format!("{name}{day} (oleh {by})"));
        }
    }
    it.intent = str_of(d, &["intent"])
        .filter(|i| *i != "unknown")
        .map(|i| label(i).to_owned());
    it.media = str_of(d, &["wamid"])
        .and_then(|w| found.media.get(w))
        .map(|m| MediaView {
            id: m.id,
            kind: m.kind.clone(),
            state: m.state.as_str(),
            filename: m.filename.clone(),
            size: m.size.map(size_words),
            sha256: m.sha256.clone(),
            error: m.error.clone(),
        });
    it
}

pub use crate::case::words::label;

pub fn register_filters(env: &mut Environment<'static>) {
    env.add_filter("label", |v: String| -> String {
        match v.as_str() {
            "paused" => "Dijeda".to_owned(),
            other => label(other).to_owned(),
        }
    });
    env.add_filter("quiet", |v: String| -> String {
        match v.as_str() {
            "escalated" => "dieskalasi ke petugas".to_owned(),
            "paused" => "dijeda petugas".to_owned(),
            "promised" => "menunggu janji bayar".to_owned(),
            other => label(other).to_owned(),
        }
    });
    // `dt` and `time` are the admin UI's words (`words.rs`), registered after.
    env.add_filter("num", |v: i64| -> String {
        let s = v.abs().to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push('.');
            }
            out.push(c);
        }
        if v < 0 {
            format!("-{out}")
        } else {
            out
        }
    });
}
