//! What `serve` checks and says before it starts: the secrets it cannot
//! run without, and one line naming the database, the Cloud API, the rate
//! and the tier it will use.

use crate::config::Config;
use secrecy::ExposeSecret;

/// One line per key `serve` needs and does not have. The built-in
/// simulator stands in for Meta, so with it enabled nothing is required.
pub fn missing_secrets(config: &Config) -> Vec<String> {
    if config.simulator.enabled {
        return Vec::new();
    }
    let w = &config.whatsapp;
    [
        ("access_token", w.access_token.expose_secret()),
        ("app_secret", w.app_secret.expose_secret()),
        ("verify_token", w.verify_token.expose_secret()),
        ("phone_number_id", w.phone_number_id.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| v.trim().is_empty())
    .map(|(key, _)| {
        format!(
            "config: whatsapp.{key} is not set (set WA_SMILE__WHATSAPP__{})",
            key.to_ascii_uppercase()
        )
    })
    .collect()
}

/// A database URL without its password (`postgres://user:***@host/db`).
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            // Query parameters may carry a password too (`?password=`).
            format!("{scheme}://{masked}@{host}{}", redact_query(tail))
        }
        None => format!("{scheme}://{authority}{}", redact_query(tail)),
    }
}

fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// The start line: which database, which Cloud API, which rate and tier
/// (`tier` is the daily limit in force: Meta's announced one, else config).
pub fn summary(config: &Config, tier: Option<u32>) -> String {
    let w = &config.whatsapp;
    let api = if config.simulator.enabled {
        format!("{} (simulator)", w.api_base)
    } else {
        format!("{}/{}", w.api_base.trim_end_matches('/'), w.api_version)
    };
    let tier = match tier {
        Some(t) => format!("{t} unique recipients/24 h (announced by Meta)"),
        None => format!(
            "{} unique recipients/24 h (config)",
            w.daily_unique_recipients
        ),
    };
    format!(
        "wa-smile {}: database {}, Cloud API {api}, {} msg/s, tier {tier}",
        env!("CARGO_PKG_VERSION"),
        redacted_url(&config.database.url),
        w.messages_per_second,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(env: &[(&str, &str)]) -> Config {
        Config::from_sources(
            None,
            env.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )
        .unwrap()
    }

    #[test]
    fn each_missing_secret_is_named_unless_the_simulator_plays_meta() {
        let lines = missing_secrets(&config(&[("WA_SMILE__WHATSAPP__APP_SECRET", "s")]));
        assert_eq!(lines.len(), 3, "{lines:?}");
        for key in ["access_token", "verify_token", "phone_number_id"] {
            assert!(lines
                .iter()
                .any(|l| l.contains(&format!("whatsapp.{key} "))));
        }
        assert!(missing_secrets(&config(&[("WA_SMILE__SIMULATOR__ENABLED", "true")])).is_empty());
    }

    #[test]
    fn the_summary_never_shows_a_database_password() {
        assert_eq!(
            redacted_url("postgres://wa:hunter2@db.internal:5432/wa?sslmode=require&password=x"),
            "postgres://wa:***@db.internal:5432/wa?sslmode=require&password=***"
        );
        assert_eq!(redacted_url("sqlite://data/wa.db"), "sqlite://data/wa.db");
        let line = summary(
            &config(&[(
                "WA_SMILE__DATABASE__URL",
                "postgres://wa:hunter2@db/wa_smile",
            )]),
            Some(10_000),
        );
        assert!(!line.contains("hunter2"), "{line}");
        assert!(
            line.contains("https://graph.facebook.com/v25.0")
                && line.contains("80 msg/s")
                && line.contains("10000 unique"),
            "{line}"
        );
    }
}
