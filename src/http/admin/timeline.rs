//! The case log as officers read it: WhatsApp messages as chat bubbles with
//! their delivery ticks, replies on the other side, promises, payments and
//! officers' notes inline. Everything here is data for auto-escaped
//! templates; nothing is marked safe.

use crate::case_log::Event;
use chrono::{DateTime, Utc};
use minijinja::{Environment, Value};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};

#[derive(Debug, serde::Serialize)]
pub struct Item {
    pub at: DateTime<Utc>,
    /// `in` (employer), `out` (bot or officer message), `note`, `event`.
    pub side: &'static str,
    pub kind: String,
    pub actor: String,
    pub title: String,
    pub text: Option<String>,
    /// Delivery state of an outgoing message: queued, sent, delivered,
    /// read, failed, skipped or cancelled.
    pub state: Option<&'static str>,
    pub failure: Option<String>,
    /// Only `https://` links are offered as links.
    pub link: Option<String>,
}

fn str_of<'a>(d: &'a Json, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| d.get(*k).and_then(Json::as_str))
}

fn outbox_id(d: &Json) -> Option<i64> {
    d.get("outbox_id").and_then(Json::as_i64)
}

fn failure_of(d: &Json) -> Option<String> {
    let reason = str_of(
        d,
        &[
            "reason",
            "error",
            "title",
            "error_title",
            "message_text",
            "details",
        ],
    );
    let code = d
        .get("code")
        .or_else(|| d.get("error_code"))
        .map(|c| c.to_string().trim_matches('"').to_owned());
    match (code, reason) {
        (Some(c), Some(r)) => Some(format!("{r} (kode {c})")),
        (None, Some(r)) => Some(r.to_owned()),
        (Some(c), None) => Some(format!("kode {c}")),
        (None, None) => None,
    }
}

fn rank(state: &str) -> u8 {
    match state {
        "queued" => 0,
        "skipped" | "cancelled" => 1,
        "sent" => 2,
        "delivered" => 3,
        "read" => 4,
        "failed" => 5,
        _ => 0,
    }
}

fn actor_label(actor: &str) -> String {
    match actor {
        "system" => "Bot".into(),
        "employer" => "Pemberi kerja".into(),
        other => other.strip_prefix("officer:").unwrap_or(other).to_owned(),
    }
}

/// Builds the timeline, oldest first. Status events of a message are folded
/// into its bubble (the ticks) rather than shown as lines of their own.
pub fn build(events: &[Event]) -> Vec<Item> {
    let states = message_states(events);
    let mut shown = HashSet::new();
    events
        .iter()
        .filter_map(|e| item(e, &states, &mut shown))
        .collect()
}

/// Per outbox id: the furthest delivery state, and why it failed.
type States = HashMap<i64, (&'static str, Option<String>)>;

fn message_states(events: &[Event]) -> States {
    let mut states = States::new();
    for e in events {
        let Some(id) = outbox_id(&e.data) else {
            continue;
        };
        let s: &'static str = match e.kind.as_str() {
            "message_queued" => "queued",
            "message_sent" => "sent",
            "message_delivered" => "delivered",
            "message_read" => "read",
            "message_failed" => "failed",
            "message_skipped" => "skipped",
            _ => continue,
        };
        let entry = states.entry(id).or_insert(("queued", None));
        if rank(s) >= rank(entry.0) {
            entry.0 = s;
        }
        if s == "failed" {
            entry.1 = failure_of(&e.data);
        }
    }
    states
}

fn base_item(e: &Event, side: &'static str, title: String, text: Option<String>) -> Item {
    Item {
        at: e.at,
        side,
        kind: e.kind.clone(),
        actor: actor_label(&e.actor),
        title,
        text,
        state: None,
        failure: None,
        link: None,
    }
}

/// The line one event shows, if any (a message's later statuses show none).
fn item(e: &Event, states: &States, shown: &mut HashSet<i64>) -> Option<Item> {
    let d = &e.data;
    let base = |side, title: String, text: Option<String>| base_item(e, side, title, text);
    Some(match e.kind.as_str() {
        "message_queued" | "message_sent" | "message_delivered" | "message_read"
        | "message_failed" | "message_skipped" => return message_item(e, states, shown),
        "reply_received" => {
            let mut it = base(
                "in",
                str_of(d, &["intent"])
                    .map(label)
                    .unwrap_or("Balasan")
                    .to_owned(),
                str_of(d, &["text", "body", "button_text"]).map(str::to_owned),
            );
            it.actor = "Pemberi kerja".into();
            it
        }
        "note_added" => base(
            "note",
            "Catatan".into(),
            str_of(d, &["text"]).map(str::to_owned),
        ),
        "promise_to_pay" => base(
            "event",
            format!(
                "Janji bayar: {}",
                str_of(d, &["promised_date"]).unwrap_or("tanpa tanggal")
            ),
            str_of(d, &["note"])
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
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
                    .map(|p| format!(" — periode {p}"))
                    .unwrap_or_default()
            ),
            str_of(d, &["amount"]).map(|a| format!("Rp {a}")),
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
    })
}

/// A message's bubble, at its first event, with the furthest state it
/// reached; its later status events add no line.
fn message_item(e: &Event, states: &States, shown: &mut HashSet<i64>) -> Option<Item> {
    let d = &e.data;
    let id = outbox_id(d);
    if let Some(id) = id {
        if !shown.insert(id) {
            return None;
        }
    }
    let message = str_of(d, &["message", "template"]).unwrap_or("pesan");
    let text = str_of(d, &["text", "body", "preview"]).map(str::to_owned);
    let title = if message == "free_text" {
        "Pesan bebas".to_owned()
    } else {
        format!("Template: {}", label(message))
    };
    let mut it = base_item(e, "out", title, text);
    let (s, f) = id
        .and_then(|id| states.get(&id).cloned())
        .unwrap_or_else(|| {
            let s = match e.kind.as_str() {
                "message_failed" => "failed",
                "message_skipped" => "skipped",
                _ => "queued",
            };
            (s, failure_of(d))
        });
    it.state = Some(s);
    it.failure = f.or_else(|| {
        (s == "skipped")
            .then(|| str_of(d, &["reason"]).map(str::to_owned))
            .flatten()
    });
    Some(it)
}

/// Indonesian labels for the codes the UI shows.
pub fn label(code: &str) -> &str {
    match code {
        "open" => "Terbuka",
        "promised" => "Janji bayar",
        "needs_officer" => "Perlu petugas",
        "escalated" => "Eskalasi",
        "resolved" => "Selesai",
        "reminder_1" => "Pengingat 1",
        "reminder_2" => "Pengingat 2",
        "reminder_3" => "Pengingat 3",
        "warning" => "Peringatan",
        "window_closed" => "di luar jam kirim (08.00–20.00)",
        "non_sending_day" => "bukan hari kirim (Minggu)",
        "holiday" => "hari libur nasional",
        "daily_cap" => "sudah diingatkan hari ini",
        "paused" => "dijeda petugas",
        "opted_out" => "pemberi kerja berhenti berlangganan",
        "no_whatsapp_number" => "tidak ada nomor WhatsApp",
        "wrong_number" => "nomor salah",
        "awaiting_officer" => "menunggu tindakan petugas",
        "case_opened" => "Kasus dibuka",
        "stage_changed" => "Tahap berubah",
        "promise_kept" => "Janji ditepati",
        "promise_broken" => "Janji diingkari",
        "payment_claimed" => "Mengaku sudah bayar",
        "officer_requested" => "Minta dihubungi petugas",
        "installment_requested" => "Minta cicilan",
        "dispute_raised" => "Sengketa",
        "assigned" => "Ditugaskan",
        "paused_event" => "Dijeda",
        "resumed" => "Dilanjutkan",
        "case_resolved" => "Kasus selesai",
        "contact_updated" => "Kontak diperbarui",
        "payment_corrected" => "Pembayaran dikoreksi",
        "payment_exception" => "Pembayaran perlu diperiksa petugas",
        "reply_already_sent" => "balasan yang sama sudah dikirim",
        "daily_reply_cap" => "batas balasan otomatis hari ini tercapai",
        "promise_to_pay" => "Janji bayar",
        "already_paid" => "Sudah bayar",
        "payment_link_request" => "Minta tautan bayar",
        "amount_inquiry" => "Tanya jumlah",
        "installment_request" => "Minta cicilan",
        "dispute" => "Sengketa",
        "officer_request" => "Minta petugas",
        "opt_out" => "Berhenti",
        "complaint" => "Keluhan",
        "question" => "Pertanyaan",
        "acknowledgement" => "Terima kasih / oke",
        "unknown" => "Balasan",
        other => other,
    }
}

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
    // RFC 3339 instants in WIB, as officers in the branch read them.
    env.add_filter("dt", |v: Value| -> String {
        let Some(s) = v.as_str() else {
            return String::new();
        };
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t
                .with_timezone(&chrono_tz::Asia::Jakarta)
                .format("%d/%m/%Y %H.%M")
                .to_string(),
            Err(_) => s.to_owned(),
        }
    });
    env.add_filter("time", |v: Value| -> String {
        let Some(s) = v.as_str() else {
            return String::new();
        };
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t
                .with_timezone(&chrono_tz::Asia::Jakarta)
                .format("%H.%M")
                .to_string(),
            Err(_) => s.to_owned(),
        }
    });
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
