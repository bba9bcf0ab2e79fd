//! Configuration: built-in defaults (`config/default.toml`, embedded), an
//! optional file layered over them, then `WA_SMILE__SECTION__KEY` variables.
//! Everything is validated at start so a bad key fails with one clear line,
//! and parsed then: the calendar (with its holidays file), the policy, the
//! default zone and the scan schedule are built once at load and handed out,
//! so nothing reads a file or parses a setting while serving.

use crate::domain::{Calendar, Holiday, Policy, SendingWindow, Stage};
use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::{Table, Value};

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
const BUILTIN_HOLIDAYS: &str = include_str!("../config/holidays.toml");
const ENV_PREFIX: &str = "WA_SMILE__";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub whatsapp: WhatsappConfig,
    pub schedule: ScheduleConfig,
    pub payments: PaymentsConfig,
    pub policy: PolicyConfig,
    pub calendar: CalendarConfig,
    pub log: LogConfig,
    pub messages: MessagesConfig,
    pub retention: RetentionConfig,
    pub simulator: SimulatorConfig,
    pub pricing: PricingConfig,
    #[serde(default)]
    pub exports: ExportsConfig,
    /// What the sections above mean, parsed once by `validate` (the only
    /// way a `Config` is made is `from_sources`, which sets it).
    #[serde(skip)]
    parsed: Option<Arc<Parsed>>,
}

/// The settings the code uses, parsed from the text sections.
#[derive(Debug)]
struct Parsed {
    timezone: Tz,
    calendar: Calendar,
    policy: Policy,
    scan_schedule: croner::Cron,
}

/// Background exports started from the UI or the API (`crate::export::ExportJobs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportsConfig {
    /// Where finished export files (and CSV manifests) are kept.
    pub dir: PathBuf,
}

impl Default for ExportsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/exports"),
        }
    }
}

/// What Meta charges per delivered template message, by category, for the
/// dashboard's cost estimate (`crate::pricing`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// Dated rates: the one in force for a message is the latest `from` on
    /// or before its day, for its category.
    pub rate: Vec<RateConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// First day the rate applies (YYYY-MM-DD).
    pub from: String,
    /// Meta's pricing category: utility, marketing, authentication, service.
    pub category: String,
    /// Rupiah per billable message, a decimal written as a string.
    pub rupiah: String,
}

/// The built-in WhatsApp simulator (`crate::simulator`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Serves `/simulator`, the employers' phones (404 when false).
    pub enabled: bool,
}

/// How long personal data is kept (UU PDP); `wa-smile retention apply`
/// redacts what is older. See `crate::retention`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days after which reply texts, message bodies, names and WhatsApp
    /// numbers in the case log, the outbox and the audit payloads are
    /// redacted.
    pub personal_data_days: u32,
    /// Days after the resolution of an employer's last case after which its
    /// contact (contact name, WhatsApp number) is cleared, if no case is open.
    pub resolved_contact_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub public_url: String,
    /// Seconds a client has to send a request's whole header block
    /// (also how long an idle keep-alive connection stays open).
    pub header_read_timeout_secs: u64,
    /// Open connections served at once; connections beyond are closed.
    pub max_connections: u32,
    /// Header that carries the client address (e.g. `X-Forwarded-For`),
    /// believed only from a peer listed in `trusted_proxies`. Empty: off.
    pub trusted_proxy_header: String,
    /// Addresses of the reverse proxies allowed to set that header.
    pub trusted_proxies: Vec<String>,
    /// A second listener for `/metrics` and `/status/delivery` only
    /// (HOST:PORT); empty serves them on `bind` with the rest.
    #[serde(default)]
    pub metrics_bind: String,
    /// Secret: when set, `/metrics` and `/status/delivery` require
    /// `Authorization: Bearer <token>`.
    #[serde(default = "empty_secret")]
    pub metrics_token: SecretString,
}

impl ServerConfig {
    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.header_read_timeout_secs)
    }

    /// The proxies whose `trusted_proxy_header` is believed (validated at load).
    pub fn trusted_proxy_addrs(&self) -> Vec<std::net::IpAddr> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappConfig {
    pub api_base: String,
    pub api_version: String,
    pub phone_number_id: String,
    pub access_token: SecretString,
    pub app_secret: SecretString,
    pub verify_token: SecretString,
    pub messages_per_second: u32,
    pub daily_unique_recipients: u32,
    pub template_language: String,
    /// The WhatsApp Business Account id (`templates sync`).
    #[serde(default)]
    pub waba_id: String,
    /// How long a message whose send outcome is unknown (a timeout, an
    /// instance that died mid-send) waits for its status webhook before it
    /// is sent again.
    #[serde(default = "default_unknown_outcome_grace_secs")]
    pub unknown_outcome_grace_secs: u64,
    /// A delivery worker (a `serve` instance) silent for this long is taken
    /// for dead by its peers: its claims not yet sent are released at once.
    #[serde(default = "default_worker_heartbeat_timeout_secs")]
    pub worker_heartbeat_timeout_secs: u64,
}

fn default_unknown_outcome_grace_secs() -> u64 {
    600
}

fn default_worker_heartbeat_timeout_secs() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub timezone: String,
    pub scan_cron: String,
    pub window_start: String,
    pub window_end: String,
    pub window_days: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    pub provider: String,
    pub link_template: String,
    pub callback_token: SecretString,
    /// Xendit's API root; tests point it at a local mock.
    #[serde(default = "default_xendit_api_base")]
    pub xendit_api_base: String,
    /// Secret: the Xendit secret API key (basic auth user name).
    #[serde(default = "empty_secret")]
    pub xendit_secret_key: SecretString,
    /// How long a payment link stays valid; an unexpired one is reused.
    #[serde(default = "default_link_validity_hours")]
    pub link_validity_hours: u32,
}

fn default_xendit_api_base() -> String {
    "https://api.xendit.co".to_owned()
}

fn empty_secret() -> SecretString {
    SecretString::from(String::new())
}

fn default_link_validity_hours() -> u32 {
    72
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub late_fee_percent_per_month: String,
    pub promise_horizon_days: i64,
    pub paid_claim_pause_working_days: u32,
    pub reminders_per_day: u32,
    /// Automated replies (answers to an employer's messages) per employer
    /// in 24 hours; beyond it a reply is withheld with its reason.
    #[serde(default = "default_replies_per_day")]
    pub replies_per_day: u32,
    /// Below this classifier confidence a typed reply is not acted on: the
    /// employer is asked, or an officer decides.
    #[serde(default = "default_reply_min_confidence")]
    pub reply_min_confidence: f64,
    pub stages: StagesConfig,
}

fn default_replies_per_day() -> u32 {
    6
}

fn default_reply_min_confidence() -> f64 {
    0.6
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagesConfig {
    pub reminder_1: i64,
    pub reminder_2: i64,
    pub reminder_3: i64,
    pub warning: i64,
    pub escalated: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    pub holidays_file: String,
    pub cuti_bersama_is_holiday: bool,
    pub saturday_is_working_day: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: String,
    pub level: String,
}

/// What the message templates need that is not in the case: whom the
/// employer should contact at their branch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    pub default_contact: ContactConfig,
    /// Per-branch contacts; an array (not a table keyed by code) so a config
    /// file can list branches the built-in defaults do not know.
    pub branch: Vec<BranchContactConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactConfig {
    pub name: String,
    pub phone: String,
    pub address: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchContactConfig {
    /// The branch code exactly as `employers.csv` writes it.
    pub code: String,
    pub name: String,
    pub phone: String,
    #[serde(default)]
    pub address: String,
}

impl MessagesConfig {
    /// The contact shown to an employer of `branch`, falling back to the
    /// default contact for branches without an entry.
    pub fn contact_for(&self, branch: &str) -> ContactConfig {
        self.branch
            .iter()
            .find(|b| b.code.eq_ignore_ascii_case(branch.trim()))
            .map(|b| ContactConfig {
                name: b.name.clone(),
                phone: b.phone.clone(),
                address: b.address.clone(),
            })
            .unwrap_or_else(|| self.default_contact.clone())
    }
}

/// A configuration problem, one line per bad key.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Resolves the file per CONTRACT (`--config`, `$WA_SMILE_CONFIG`,
    /// `config/local.toml`), layers it and the environment over the defaults
    /// and validates the result.
    pub fn load(cli_path: Option<&Path>) -> Result<Config, ConfigError> {
        let path = cli_path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("WA_SMILE_CONFIG").map(PathBuf::from))
            .or_else(|| {
                let local = PathBuf::from("config/local.toml");
                local.exists().then_some(local)
            });
        let file = match &path {
            Some(p) => Some(std::fs::read_to_string(p).map_err(|e| {
                ConfigError(vec![format!("config: cannot read {}: {e}", p.display())])
            })?),
            None => None,
        };
        Self::from_sources(file.as_deref(), std::env::vars())
    }

    /// The same layering from explicit sources (tests, embedding).
    pub fn from_sources(
        file: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut merged: Table = DEFAULT_TOML.parse().expect("built-in defaults parse");
        let mut errors = Vec::new();
        if let Some(text) = file {
            match text.parse::<Table>() {
                Ok(layer) => merge(&mut merged, layer, "", &mut errors),
                Err(e) => errors.push(format!(
                    "config: the file is not valid TOML: {}",
                    one_line(&e.to_string())
                )),
            }
        }
        for (name, raw) in env {
            if let Some(path) = name.strip_prefix(ENV_PREFIX) {
                apply_env(&mut merged, &name, path, &raw, &mut errors);
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        let mut config: Config =
            Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    ConfigError(vec![format!("config: {}", one_line(&e.to_string()))])
                })?;
        config.parsed = Some(Arc::new(config.validate()?));
        Ok(config)
    }

    /// Every key checked (all problems reported at once), then the parsed
    /// values built from the checked text.
    // The checks are one flat list on purpose: one line per key.
    fn validate(&self) -> Result<Parsed, ConfigError> {
        let mut errors = Vec::new();
        let mut check = |key: &str, r: Result<(), String>| {
            if let Err(e) = r {
                errors.push(format!("config: {key}: {e}"));
            }
        };
        let db = &self.database.url;
        check(
            "database.url",
            if db.starts_with("sqlite:")
                || db.starts_with("postgres://")
                || db.starts_with("postgresql://")
            {
                Ok(())
            } else {
                Err(format!("`{db}` must start with sqlite:// or postgres://"))
            },
        );
        check(
            "database.max_connections",
            positive(self.database.max_connections as i64),
        );
        check(
            "retention.personal_data_days",
            positive(i64::from(self.retention.personal_data_days)),
        );
        check(
            "retention.resolved_contact_days",
            positive(i64::from(self.retention.resolved_contact_days)),
        );
        check(
            "server.bind",
            self.server
                .bind
                .parse::<std::net::SocketAddr>()
                .map(|_| ())
                .map_err(|_| format!("`{}` is not HOST:PORT", self.server.bind)),
        );
        check("server.public_url", url_like(&self.server.public_url));
        check(
            "server.header_read_timeout_secs",
            positive(self.server.header_read_timeout_secs as i64),
        );
        check(
            "server.max_connections",
            positive(i64::from(self.server.max_connections)),
        );
        for p in &self.server.trusted_proxies {
            check(
                "server.trusted_proxies",
                p.trim()
                    .parse::<std::net::IpAddr>()
                    .map(|_| ())
                    .map_err(|_| format!("`{p}` is not an IP address")),
            );
        }
        let header = self.server.trusted_proxy_header.trim();
        check(
            "server.trusted_proxy_header",
            if !header.is_empty() && axum::http::HeaderName::try_from(header).is_err() {
                Err(format!("`{header}` is not a header name"))
            } else if !header.is_empty() && self.server.trusted_proxies.is_empty() {
                Err("needs server.trusted_proxies (the proxies allowed to set it)".into())
            } else {
                Ok(())
            },
        );
        check("whatsapp.api_base", url_like(&self.whatsapp.api_base));
        check(
            "server.metrics_bind",
            if self.server.metrics_bind.trim().is_empty()
                || self
                    .server
                    .metrics_bind
                    .parse::<std::net::SocketAddr>()
                    .is_ok()
            {
                Ok(())
            } else {
                Err(format!("`{}` is not HOST:PORT", self.server.metrics_bind))
            },
        );
        for (i, r) in self.pricing.rate.iter().enumerate() {
            check(
                &format!("pricing.rate[{i}]"),
                if chrono::NaiveDate::parse_from_str(&r.from, "%Y-%m-%d").is_err() {
                    Err(format!("from `{}` is not a date (YYYY-MM-DD)", r.from))
                } else if !matches!(r.rupiah.parse::<Decimal>(), Ok(d) if d >= Decimal::ZERO) {
                    Err(format!("rupiah `{}` is not a decimal amount", r.rupiah))
                } else if r.category.trim().is_empty() {
                    Err("category must not be empty".into())
                } else {
                    Ok(())
                },
            );
        }
        check(
            "whatsapp.messages_per_second",
            positive(self.whatsapp.messages_per_second as i64),
        );
        check(
            "whatsapp.daily_unique_recipients",
            positive(self.whatsapp.daily_unique_recipients as i64),
        );
        check(
            "whatsapp.worker_heartbeat_timeout_secs",
            positive(self.whatsapp.worker_heartbeat_timeout_secs as i64),
        );
        let timezone = parse_zone(&self.schedule.timezone);
        check(
            "schedule.timezone",
            timezone.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        check(
            "schedule.window_start",
            parse_time(&self.schedule.window_start).map(|_| ()),
        );
        check(
            "schedule.window_end",
            parse_time(&self.schedule.window_end).map(|_| ()),
        );
        if let (Ok(s), Ok(e)) = (
            parse_time(&self.schedule.window_start),
            parse_time(&self.schedule.window_end),
        ) {
            check(
                "schedule.window_end",
                if e > s {
                    Ok(())
                } else {
                    Err("must be after window_start".into())
                },
            );
        }
        check(
            "schedule.window_days",
            parse_days(&self.schedule.window_days).map(|_| ()),
        );
        let scan_schedule = parse_cron(&self.schedule.scan_cron);
        check(
            "schedule.scan_cron",
            scan_schedule.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        check(
            "payments.provider",
            match self.payments.provider.as_str() {
                "static" | "xendit" => Ok(()),
                other => Err(format!("`{other}` must be \"static\" or \"xendit\"")),
            },
        );
        check(
            "payments.xendit_api_base",
            url_like(&self.payments.xendit_api_base),
        );
        check(
            "payments.link_validity_hours",
            positive(self.payments.link_validity_hours as i64),
        );
        check(
            "policy.late_fee_percent_per_month",
            self.late_fee_percent().map(|_| ()),
        );
        check(
            "policy.promise_horizon_days",
            positive(self.policy.promise_horizon_days),
        );
        check(
            "policy.reply_min_confidence",
            if (0.0..=1.0).contains(&self.policy.reply_min_confidence) {
                Ok(())
            } else {
                Err(format!(
                    "must be between 0 and 1, got {}",
                    self.policy.reply_min_confidence
                ))
            },
        );
        check(
            "policy.reminders_per_day",
            positive(self.policy.reminders_per_day as i64),
        );
        let s = &self.policy.stages;
        let days = [
            s.reminder_1,
            s.reminder_2,
            s.reminder_3,
            s.warning,
            s.escalated,
        ];
        check(
            "policy.stages",
            if days[0] >= 1 && days.windows(2).all(|w| w[0] < w[1]) {
                Ok(())
            } else {
                Err("stage days must start at 1 or more and strictly increase".into())
            },
        );
        let holidays = self.holidays();
        check(
            "calendar.holidays_file",
            holidays.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        check(
            "messages.default_contact",
            if self.messages.default_contact.name.trim().is_empty()
                || self.messages.default_contact.phone.trim().is_empty()
            {
                Err("name and phone must not be empty".into())
            } else {
                Ok(())
            },
        );
        let mut codes = std::collections::HashSet::new();
        for (i, b) in self.messages.branch.iter().enumerate() {
            check(
                &format!("messages.branch[{i}]"),
                if b.code.trim().is_empty() || b.name.trim().is_empty() || b.phone.trim().is_empty()
                {
                    Err("code, name and phone must not be empty".into())
                } else if !codes.insert(b.code.trim().to_ascii_uppercase()) {
                    Err(format!("branch `{}` is listed twice", b.code))
                } else {
                    Ok(())
                },
            );
        }
        check(
            "log.format",
            match self.log.format.as_str() {
                "pretty" | "json" => Ok(()),
                other => Err(format!("`{other}` must be \"pretty\" or \"json\"")),
            },
        );
        match (timezone, scan_schedule, holidays) {
            (Ok(timezone), Ok(scan_schedule), Ok(holidays)) if errors.is_empty() => Ok(Parsed {
                timezone,
                calendar: Calendar::new(
                    holidays,
                    self.calendar.cuti_bersama_is_holiday,
                    self.calendar.saturday_is_working_day,
                ),
                policy: self.build_policy(),
                scan_schedule,
            }),
            _ => Err(ConfigError(errors)),
        }
    }

    fn parsed(&self) -> &Parsed {
        self.parsed
            .as_deref()
            .expect("a Config is only made by from_sources, which parses it")
    }

    /// The branch offices' zone (`schedule.timezone`): the default for an
    /// employer without one, and the zone the scan's schedule is read in.
    pub fn timezone(&self) -> Tz {
        self.parsed().timezone
    }

    /// When the overdue scan runs (`schedule.scan_cron`, seconds first,
    /// read in `timezone()`).
    pub fn scan_schedule(&self) -> &croner::Cron {
        &self.parsed().scan_schedule
    }

    fn late_fee_percent(&self) -> Result<Decimal, String> {
        let raw = &self.policy.late_fee_percent_per_month;
        match raw.parse::<Decimal>() {
            Ok(d) if d >= Decimal::ZERO && d <= Decimal::ONE_HUNDRED => Ok(d),
            _ => Err(format!(
                "`{raw}` must be a decimal percentage between 0 and 100"
            )),
        }
    }

    fn holidays(&self) -> Result<Vec<Holiday>, String> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            holiday: Vec<Holiday>,
        }
        let path = &self.calendar.holidays_file;
        let text = if path.is_empty() {
            BUILTIN_HOLIDAYS.to_owned()
        } else {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))?
        };
        let file: File =
            toml::from_str(&text).map_err(|e| format!("`{path}`: {}", one_line(&e.to_string())))?;
        Ok(file.holiday)
    }

    /// The working-day calendar, holidays read once at load (a clone
    /// shares them).
    pub fn calendar(&self) -> Calendar {
        self.parsed().calendar.clone()
    }

    /// The collection policy, built once at load.
    pub fn policy(&self) -> Policy {
        self.parsed().policy.clone()
    }

    /// Called by `validate` once every key it reads has been checked.
    fn build_policy(&self) -> Policy {
        let s = &self.policy.stages;
        Policy {
            stage_days: vec![
                (Stage::Reminder1, s.reminder_1),
                (Stage::Reminder2, s.reminder_2),
                (Stage::Reminder3, s.reminder_3),
                (Stage::Warning, s.warning),
                (Stage::Escalated, s.escalated),
            ],
            window: SendingWindow {
                start: parse_time(&self.schedule.window_start).expect("validated"),
                end: parse_time(&self.schedule.window_end).expect("validated"),
                days: parse_days(&self.schedule.window_days).expect("validated"),
            },
            late_fee_percent_per_month: self.late_fee_percent().expect("validated"),
            promise_horizon_days: self.policy.promise_horizon_days,
            paid_claim_pause_working_days: self.policy.paid_claim_pause_working_days,
            reminders_per_day: self.policy.reminders_per_day,
        }
    }
}

/// An IANA zone name, as employers' rows and the schedule carry them
/// (`crate::domain::parse_zone`, its reason as text).
pub fn parse_zone(raw: &str) -> Result<Tz, String> {
    crate::domain::parse_zone(raw).map_err(|e| e.0)
}

/// A six-field cron expression, seconds first (`0 0 7 * * *`), parsed as
/// the scheduler always has (day-of-month and day-of-week both apply).
fn parse_cron(raw: &str) -> Result<croner::Cron, String> {
    if raw.split_whitespace().count() != 6 {
        return Err(format!("`{raw}` must have six fields, seconds first"));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(raw)
        .map_err(|e| format!("`{raw}` is not a cron expression: {e}"))
}

fn parse_time(raw: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(raw, "%H:%M").map_err(|_| format!("`{raw}` is not a time (HH:MM)"))
}

fn parse_days(raw: &[String]) -> Result<Vec<Weekday>, String> {
    if raw.is_empty() {
        return Err("needs at least one day".into());
    }
    raw.iter()
        .map(|d| {
            d.parse::<Weekday>()
                .map_err(|_| format!("`{d}` is not a day (Mon…Sun)"))
        })
        .collect()
}

fn positive(n: i64) -> Result<(), String> {
    if n > 0 {
        Ok(())
    } else {
        Err(format!("must be positive, got {n}"))
    }
}

fn url_like(raw: &str) -> Result<(), String> {
    if raw.starts_with("http://") || raw.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("`{raw}` must be an http(s) URL"))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Layers `layer` over `base`, refusing keys the defaults do not know.
fn merge(base: &mut Table, layer: Table, prefix: &str, errors: &mut Vec<String>) {
    for (key, value) in layer {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(l)) => merge(b, l, &path, errors),
            (Some(Value::Table(_)), _) => errors.push(format!("config: {path}: must be a table")),
            (Some(slot), v) => {
                if same_kind(slot, &v) {
                    *slot = v;
                } else {
                    errors.push(format!(
                        "config: {path}: expected {}, got {}",
                        slot.type_str(),
                        v.type_str()
                    ));
                }
            }
            (None, _) => errors.push(format!("config: unknown key `{path}`")),
        }
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Sets one key from `WA_SMILE__SECTION__KEY`, parsed by the type its
/// default has (so a numeric-looking token stays a string).
fn apply_env(root: &mut Table, var: &str, path: &str, raw: &str, errors: &mut Vec<String>) {
    let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let dotted = parts.join(".");
    let Some(slot) = lookup(root, &parts).filter(|v| !v.is_table()) else {
        errors.push(format!("config: {var} names no setting (`{dotted}`)"));
        return;
    };
    let parsed = match slot {
        Value::String(_) => Ok(Value::String(raw.to_owned())),
        Value::Integer(_) => raw
            .trim()
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| "an integer"),
        Value::Boolean(_) => raw
            .trim()
            .parse::<bool>()
            .map(Value::Boolean)
            .map_err(|_| "true or false"),
        Value::Array(_) => Ok(parse_env_list(raw)),
        _ => Err("a supported value"),
    };
    match parsed {
        Ok(v) => *slot = v,
        Err(what) => errors.push(format!(
            "config: {var} ({dotted}): expected {what}, got `{raw}`"
        )),
    }
}

fn lookup<'a>(table: &'a mut Table, parts: &[String]) -> Option<&'a mut Value> {
    let (first, rest) = parts.split_first()?;
    let value = table.get_mut(first)?;
    match (rest.is_empty(), value) {
        (true, v) => Some(v),
        (false, Value::Table(inner)) => lookup(inner, rest),
        (false, _) => None,
    }
}

/// A list from the environment: a TOML array (`["Mon","Tue"]`) or a plain
/// comma-separated list (`Mon,Tue`).
fn parse_env_list(raw: &str) -> Value {
    if let Ok(t) = format!("v = {raw}").parse::<Table>() {
        if let Some(v @ Value::Array(_)) = t.get("v") {
            return v.clone();
        }
    }
    Value::Array(
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_match_contract() {
        let c = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(c.database.url, "sqlite://data/wa-smile.db");
        assert_eq!(c.whatsapp.api_version, "v25.0");
        assert_eq!(c.whatsapp.messages_per_second, 80);
        assert_eq!(c.schedule.scan_cron, "0 0 7 * * *");
        assert_eq!(c.policy().stage_for(30), Some(Stage::Warning));
        assert!(c
            .calendar()
            .holiday("2026-08-17".parse().unwrap())
            .is_some());
    }

    #[test]
    fn a_proxy_header_is_believed_only_with_the_proxies_named() {
        let c = Config::from_sources(None, env(&[])).unwrap();
        assert!(c.server.trusted_proxy_header.is_empty() && c.server.trusted_proxies.is_empty());
        let err = Config::from_sources(
            None,
            env(&[("WA_SMILE__SERVER__TRUSTED_PROXY_HEADER", "X-Forwarded-For")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("config: server.trusted_proxy_header: needs server.trusted_proxies"),
            "{err}"
        );
        let err = Config::from_sources(
            None,
            env(&[("WA_SMILE__SERVER__TRUSTED_PROXIES", "10.0.0.1,proxy.local")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`proxy.local` is not an IP address"),
            "{err}"
        );
        let c = Config::from_sources(
            None,
            env(&[
                ("WA_SMILE__SERVER__TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
                ("WA_SMILE__SERVER__TRUSTED_PROXIES", "10.0.0.1, ::1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.trusted_proxy_addrs().len(), 2);
    }

    #[test]
    fn file_layers_and_env_wins() {
        let file = "[whatsapp]\nmessages_per_second = 1000\naccess_token = \"from-file\"\n";
        let c = Config::from_sources(
            Some(file),
            env(&[
                ("WA_SMILE__WHATSAPP__ACCESS_TOKEN", "12345"),
                ("WA_SMILE__SCHEDULE__WINDOW_DAYS", "Mon,Tue"),
                ("WA_SMILE__POLICY__STAGES__WARNING", "45"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.whatsapp.messages_per_second, 1000);
        assert_eq!(c.whatsapp.access_token.expose_secret(), "12345");
        assert_eq!(c.schedule.window_days, vec!["Mon", "Tue"]);
        assert_eq!(c.policy.stages.warning, 45);
    }

    #[test]
    fn each_bad_key_gets_its_own_line() {
        let file = "[whatsapp]\nacess_token = \"x\"\n[schedule]\nwindow_start = \"25:00\"\ntimezone = \"Mars/Base\"\n";
        let err = Config::from_sources(Some(file), env(&[])).unwrap_err();
        assert!(
            err.0
                .iter()
                .any(|l| l.contains("unknown key `whatsapp.acess_token`")),
            "{err}"
        );
        let file = "[schedule]\nwindow_start = \"25:00\"\ntimezone = \"Mars/Base\"\n";
        let err = Config::from_sources(
            Some(file),
            env(&[("WA_SMILE__WHATSAPP__MESSAGES_PER_SECOND", "lots")]),
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 1, "env errors stop before validation: {err}");
        let err = Config::from_sources(Some(file), env(&[])).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.0.iter().all(|l| !l.contains('\n')));
    }

    #[test]
    fn secrets_never_print() {
        let c = Config::from_sources(
            None,
            env(&[("WA_SMILE__WHATSAPP__APP_SECRET", "hunter2-secret")]),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2-secret"));
    }

    #[test]
    fn branch_contacts_come_from_the_file_with_a_default() {
        let file = "[[messages.branch]]\ncode = \"PKU\"\nname = \"Cabang Pekanbaru Kota\"\nphone = \"0761-123456\"\n";
        let c = Config::from_sources(Some(file), env(&[])).unwrap();
        assert_eq!(c.messages.contact_for("pku").name, "Cabang Pekanbaru Kota");
        assert_eq!(
            c.messages.contact_for("XYZ").name,
            c.messages.default_contact.name
        );
        let dup = format!("{file}{file}");
        let err = Config::from_sources(Some(&dup), env(&[])).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }

    #[test]
    fn the_holidays_file_is_read_once_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("holidays.toml");
        std::fs::write(
            &file,
            "[[holiday]]\ndate = \"2026-03-20\"\nkind = \"libur\"\nname = \"Idul Fitri\"\n",
        )
        .unwrap();
        let c = Config::from_sources(
            None,
            env(&[("WA_SMILE__CALENDAR__HOLIDAYS_FILE", file.to_str().unwrap())]),
        )
        .unwrap();
        // Edited (here: broken) after start: what was loaded stays.
        std::fs::write(&file, "not toml [").unwrap();
        let day = "2026-03-20".parse().unwrap();
        assert_eq!(c.calendar().holiday(day).unwrap().name, "Idul Fitri");
        std::fs::remove_file(&file).unwrap();
        assert!(!c.clone().calendar().is_working_day(day));
    }

    #[test]
    fn zone_policy_and_schedule_are_parsed_at_load() {
        let c = Config::from_sources(
            None,
            env(&[("WA_SMILE__SCHEDULE__TIMEZONE", "Asia/Makassar")]),
        )
        .unwrap();
        assert_eq!(c.timezone(), chrono_tz::Asia::Makassar);
        assert_eq!(
            c.policy().window.start,
            NaiveTime::from_hms_opt(8, 0, 0).unwrap()
        );
        let from = "2026-03-03T00:00:00+08:00"
            .parse::<chrono::DateTime<chrono::FixedOffset>>()
            .unwrap()
            .with_timezone(&c.timezone());
        assert_eq!(
            c.scan_schedule()
                .find_next_occurrence(&from, false)
                .unwrap()
                .to_rfc3339(),
            "2026-03-03T07:00:00+08:00"
        );
        // A cron expression that does not parse fails the load, not `serve`.
        let err = Config::from_sources(
            None,
            env(&[("WA_SMILE__SCHEDULE__SCAN_CRON", "0 0 25 * * *")]),
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert!(
            err.0[0]
                .starts_with("config: schedule.scan_cron: `0 0 25 * * *` is not a cron expression"),
            "{err}"
        );
    }
}
