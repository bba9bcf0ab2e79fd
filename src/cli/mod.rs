//! The `wa-smile` command line. Exit status per CONTRACT: 0 success, 2
//! invalid input, 1 any other failure; errors go to stderr one per line.

mod accounts;
mod audit;
mod case;
mod classify;
mod deliver;
mod export;
mod import;
mod retention;
mod scan;
mod serve;
mod templates;

use crate::config::Config;
use crate::store::Db;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "wa-smile",
    version,
    about = "WhatsApp collections bot for BPJS Ketenagakerjaan contribution arrears"
)]
pub struct Cli {
    /// Configuration file layered over the built-in defaults (else
    /// $WA_SMILE_CONFIG, else config/local.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations, then run the HTTP server and the scheduler until SIGINT/SIGTERM.
    Serve,
    /// A self-contained tour: fresh SQLite database, synthetic branch data, a scan, then serve.
    Demo {
        /// Keep the demo's database and files in this folder (default: a temporary one).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Pretend the demo starts at this instant (RFC 3339); outside the
        /// sending window the demo's clock starts on the next working morning.
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate a whole CSV file, then upsert it (nothing is written if any row is invalid).
    Import {
        #[arg(value_enum)]
        kind: ImportKind,
        file: PathBuf,
        /// Validate and report what would change, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run one overdue scan as the scheduler would.
    Scan {
        /// Evaluate at this instant (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
        #[arg(long)]
        json: bool,
    },
    /// Send the outbox messages that are due, within the sending window.
    Deliver {
        /// One pass over everything due, then exit (the worker in `serve`
        /// runs continuously).
        #[arg(long)]
        once: bool,
        /// Evaluate at this instant (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
        #[arg(long)]
        json: bool,
        /// Clear the halt flags (an expired token replaced, an account
        /// restriction lifted) and exit.
        #[arg(long, conflicts_with = "once")]
        resume: bool,
    },
    /// Message templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Admin UI logins.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Cases.
    Case {
        #[command(subcommand)]
        command: CaseCommand,
    },
    /// What the bot would make of an employer's reply: one JSON line
    /// `{"intent": …, "promised_date": "YYYY-MM-DD" | null, "confidence": 0..1}`.
    /// With --eval, scores the classifier on a labelled file instead.
    Classify {
        /// When the reply was received (RFC 3339); relative dates resolve
        /// against it. With --eval, the time of rows without `received_at`.
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
        /// The employer's IANA time zone (default `schedule.timezone`).
        #[arg(long, value_name = "ZONE")]
        timezone: Option<String>,
        /// A labelled CSV file (`text,intent,promised_date[,received_at]`):
        /// accuracy, per-intent precision and recall, the confusion matrix
        /// and every miss.
        #[arg(long, value_name = "FILE.csv", conflicts_with = "text")]
        eval: Option<PathBuf>,
        /// With --eval: print the report as one JSON object.
        #[arg(long, requires = "eval")]
        json: bool,
        /// The reply's text.
        #[arg(required_unless_present = "eval")]
        text: Option<String>,
    },
    /// Write an export (with its manifest) for supervisors and auditors;
    /// `corrections` writes the replies officers corrected as a labelled
    /// file for `classify --eval`.
    Export {
        #[arg(value_enum)]
        kind: CliExportKind,
        /// First day included (YYYY-MM-DD, WIB); for `corrections`, the day
        /// of the correction, optional.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last day included (YYYY-MM-DD, WIB); optional for `corrections`.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// Only this branch's employers and cases.
        #[arg(long)]
        branch: Option<String>,
        /// `csv` or `xlsx` (not for `corrections`, always CSV).
        #[arg(long, value_enum)]
        format: Option<CliExportFormat>,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Who is exporting, as recorded in the audit log (default `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Data retention (UU PDP).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CliExportKind {
    /// The hash-chained audit trail.
    Audit,
    /// The case log: one row per case event.
    Cases,
    /// One row per case: amounts, stage, status, promises and messages.
    Summary,
    /// Replies whose reading an officer corrected, as a labelled CSV.
    Corrections,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CliExportFormat {
    Csv,
    Xlsx,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Redact personal data older than the configured retention periods.
    Apply {
        /// Evaluate at this instant (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; exit 1 naming the first broken row. With
    /// --export, also check an export against its manifest and the database.
    Verify {
        /// An export file (CSV or XLSX) to check.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// The manifest (default: FILE.manifest.json, or the XLSX's Manifest sheet).
        #[arg(long, value_name = "FILE", requires = "export")]
        manifest: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a login; the password is read from stdin (one line).
    Add {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = ["officer", "supervisor", "admin"])]
        role: String,
        /// The branch an officer or supervisor works in.
        #[arg(long)]
        branch: Option<String>,
    },
    /// Clear a login's failed attempts, so it is no longer throttled.
    Unlock { username: String },
    /// Every login: role, branch, last login, locked or disabled.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a login; its sessions end at once.
    Disable { username: String },
    /// Enable a disabled login.
    Enable { username: String },
    /// Set a new password (read from stdin, one line); the user's sessions end.
    ResetPassword { username: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API bearer token and print it once (only its hash is kept).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["supervisor", "admin"])]
        role: String,
        #[arg(long)]
        branch: Option<String>,
    },
    /// Every API token (never the secret): name, role, branch, revoked.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke the active token named NAME; its next request gets 401.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// The employer's current (or latest) case with its bills and case log.
    Show {
        npp: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Load and check every message template; exit 2 naming each problem.
    Check,
    /// Register with Meta every template it does not have yet, read back
    /// each one's review status, print a table.
    Sync {
        /// Only show what would be registered.
        #[arg(long)]
        dry_run: bool,
    },
    /// Each template's last known Meta status and quality.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The text a template renders for a case, from the database.
    Preview {
        name: String,
        #[arg(long = "case", value_name = "ID")]
        case_id: i64,
        /// Render as of this instant (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportKind {
    Employers,
    Bills,
    Payments,
}

pub(crate) fn parse_at(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| crate::time::truncate(t.with_timezone(&Utc)))
        .map_err(|_| format!("`{s}` is not an RFC 3339 time (e.g. 2026-03-03T10:15:00+07:00)"))
}

/// A failure with its exit status and the lines to print.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub lines: Vec<String>,
}

impl Failure {
    pub fn invalid(lines: Vec<String>) -> Self {
        Self { code: 2, lines }
    }

    pub fn other(e: anyhow::Error) -> Self {
        Self {
            code: 1,
            lines: vec![format!("error: {}", one_line(&format!("{e:#}")))],
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::other(e)
    }
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Commands that only read refuse a SQLite file that is not there, instead
/// of creating an empty one and failing on a missing table; `migrate`,
/// `serve`, `demo` (and the commands that write, which migrate first)
/// create it.
fn database_must_exist(url: &str) -> Result<(), Failure> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    let Ok(opts) = sqlx::sqlite::SqliteConnectOptions::from_str(url) else {
        return Ok(());
    };
    let path = opts.get_filename();
    if path.exists() {
        return Ok(());
    }
    Err(Failure::invalid(vec![format!(
        "error: no database at {}; run `wa-smile migrate` or pass --config",
        path.display()
    )]))
}

/// What every subcommand starts from: the loaded configuration and the
/// ways to reach its database.
pub(crate) struct Ctx {
    pub config: Arc<Config>,
}

impl Ctx {
    /// Connects, creating a SQLite file that is not there.
    pub async fn connect(&self) -> Result<Db, Failure> {
        Db::connect(
            &self.config.database.url,
            self.config.database.max_connections,
        )
        .await
        .map_err(Failure::from)
    }

    /// Connects and applies pending migrations (the commands that write).
    pub async fn migrated(&self) -> Result<Db, Failure> {
        let db = self.connect().await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects to a database that must already exist (the commands that
    /// only read).
    pub async fn existing(&self) -> Result<Db, Failure> {
        database_must_exist(&self.config.database.url)?;
        self.connect().await
    }
}

/// Runs a parsed command line: one function per subcommand.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let config = Arc::new(Config::load(cli.config.as_deref()).map_err(|e| Failure::invalid(e.0))?);
    crate::telemetry::init(
        &config,
        matches!(cli.command, Command::Serve | Command::Demo { .. }),
    );
    let ctx = Ctx { config };
    match cli.command {
        Command::Demo { data, at } => serve::demo(&ctx, data, at).await,
        Command::Migrate => serve::migrate(&ctx).await,
        Command::Serve => serve::serve(&ctx).await,
        Command::Import {
            kind,
            file,
            dry_run,
            json,
        } => import::import(&ctx, kind, &file, dry_run, json).await,
        Command::Classify {
            at,
            timezone,
            eval,
            json,
            text,
        } => classify::classify(&ctx, at, timezone, eval, json, text),
        Command::Scan { at, json } => scan::scan(&ctx, at, json).await,
        Command::Deliver {
            once,
            at,
            json,
            resume,
        } => deliver::deliver(&ctx, once, at, json, resume).await,
        Command::Templates { command } => templates::templates(&ctx, command).await,
        Command::Audit { command } => audit::audit(&ctx, command).await,
        Command::Export {
            kind,
            from,
            to,
            branch,
            format,
            out,
            actor,
        } => {
            export::run(
                &ctx,
                export::Request {
                    kind,
                    from,
                    to,
                    branch,
                    format,
                    actor,
                },
                &out,
            )
            .await
        }
        Command::Retention { command } => retention::retention(&ctx, command).await,
        Command::User { command } => accounts::user(&ctx, command).await,
        Command::Token { command } => accounts::token(&ctx, command).await,
        Command::Case { command } => case::case(&ctx, command).await,
    }
}
