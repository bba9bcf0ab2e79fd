//! The admin UI's words for instants: one Indonesian format everywhere
//! (`Selasa, 3 Maret 2026 10.00 WIB`), the zone always named. Registered
//! after the timeline's filters, so `dt` and `time` here are the ones every
//! page uses; an optional argument names another zone
//! (`{{ t | dt(c.employer.timezone) }}`).

use crate::messages::filters::{format_jam, format_waktu};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::{Environment, Value};

fn instant(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn zone(z: Option<String>) -> Tz {
    z.and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::Asia::Jakarta)
}

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("dt", |v: Value, z: Option<String>| -> String {
        match instant(&v) {
            Some(t) => format_waktu(t, zone(z)),
            None => v.as_str().unwrap_or_default().to_owned(),
        }
    });
    env.add_filter("time", |v: Value, z: Option<String>| -> String {
        match instant(&v) {
            Some(t) => format_jam(t, zone(z)),
            None => v.as_str().unwrap_or_default().to_owned(),
        }
    });
    // A value put into a link's query string (`/cases?label=…`): a label
    // with `&` or `#` would otherwise end the parameter or the URL.
    env.add_filter("q", |v: String| -> String {
        form_urlencoded::byte_serialize(v.as_bytes()).collect()
    });
    env.add_filter("role", |v: String| -> String {
        match v.as_str() {
            "officer" => "petugas",
            "supervisor" => "supervisor",
            "admin" => "admin",
            other => return other.to_owned(),
        }
        .to_owned()
    });
    env.add_filter("zona", |v: String| -> String {
        match v.parse::<Tz>() {
            Ok(tz) => format!("{} ({v})", crate::messages::filters::zone_name(tz)),
            Err(_) => v,
        }
    });
    // Message names as officers call them, then every other code.
    env.add_filter("label", |v: String| -> String {
        match (super::views::template_label(&v), v.as_str()) {
            (Some(l), _) => l.to_owned(),
            (None, "paused") => "Dijeda".to_owned(),
            (None, other) => super::timeline::label(other).to_owned(),
        }
    });
}

/// A case's resolution as officers read it: `paid`, or an officer's reason
/// code (`officer: paid_outside`; older rows hold free text).
pub fn resolution_text(resolution: &str) -> String {
    match resolution {
        "paid" => "lunas dibayar".to_owned(),
        other => {
            let reason = other.strip_prefix("officer: ").unwrap_or(other);
            match crate::case_actions::resolve_reason_label(reason) {
                Some(l) => format!("diselesaikan petugas: {l}"),
                None => format!("diselesaikan petugas: {reason}"),
            }
        }
    }
}
