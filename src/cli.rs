//! The `wa-smile` command line. Exit status per CONTRACT: 0 success, 2
//! invalid input, 1 any other failure; errors go to stderr one per line.

use crate::config::Config;
use crate::import::{self, ImportContext, ImportError, Kind};
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
    /// Write an export (with its manifest) for supervisors and auditors.
    Export {
        #[arg(value_enum)]
        kind: crate::export::ExportKind,
        /// First day included (YYYY-MM-DD, WIB).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day included (YYYY-MM-DD, WIB).
        #[arg(long)]
        to: chrono::NaiveDate,
        /// Only this branch's employers and cases.
        #[arg(long)]
        branch: Option<String>,
        #[arg(long, value_enum)]
        format: CliExportFormat,
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

fn parse_at(s: &str) -> Result<DateTime<Utc>, String> {
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

fn one_line(s: &str) -> String {
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

/// `classify --eval`: every row needs a time, its own or `--at` (a dev set
/// scored against today's clock would be meaningless).
fn classify_eval(
    file: &std::path::Path,
    at: Option<DateTime<Utc>>,
    tz: chrono_tz::Tz,
    json: bool,
) -> Result<(), Failure> {
    use crate::conversation::eval;
    let name = file.display().to_string();
    let input =
        std::fs::File::open(file).map_err(|e| Failure::invalid(vec![format!("{name}: {e}")]))?;
    let rows = eval::read_labelled(std::io::BufReader::new(input)).map_err(|errors| {
        let mut lines: Vec<String> = errors
            .iter()
            .take(100)
            .map(|e| format!("{name}: {e}"))
            .collect();
        if errors.len() > 100 {
            lines.push(format!(
                "{name}: … and {} more error(s)",
                errors.len() - 100
            ));
        }
        Failure::invalid(lines)
    })?;
    let default_at = match (at, rows.iter().find(|r| r.received_at.is_none())) {
        (Some(at), _) => at,
        (None, Some(row)) => {
            return Err(Failure::invalid(vec![format!(
                "{name}: line {}: no received_at; pass --at for the rows without one",
                row.line
            )]))
        }
        (None, None) => crate::time::now(),
    };
    let report = eval::score(&rows, default_at, tz);
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(anyhow::Error::from)?
        );
    } else {
        print!("{}", report.render(&name));
    }
    Ok(())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let config = Arc::new(Config::load(cli.config.as_deref()).map_err(|e| Failure::invalid(e.0))?);
    crate::telemetry::init(
        &config,
        matches!(cli.command, Command::Serve | Command::Demo { .. }),
    );
    let connect = || Db::connect(&config.database.url, config.database.max_connections);
    let existing = || async {
        database_must_exist(&config.database.url)?;
        connect().await.map_err(Failure::from)
    };
    match cli.command {
        Command::Demo { data, at } => {
            crate::demo::run((*config).clone(), data, at).await?;
        }
        Command::Migrate => {
            let db = connect().await?;
            db.migrate().await?;
            println!("migrations applied");
        }
        Command::Serve => {
            let missing = crate::startup::missing_secrets(&config);
            if !missing.is_empty() {
                return Err(Failure::invalid(missing));
            }
            let db = connect().await?;
            db.migrate().await?;
            let listener = tokio::net::TcpListener::bind(&config.server.bind)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.bind))?;
            crate::serve::run(config, db, listener).await?;
        }
        Command::Import {
            kind,
            file,
            dry_run,
            json,
        } => {
            let db = connect().await?;
            db.migrate().await?;
            let kind = match kind {
                ImportKind::Employers => Kind::Employers,
                ImportKind::Bills => Kind::Bills,
                ImportKind::Payments => Kind::Payments,
            };
            let ctx = ImportContext {
                calendar: config.calendar(),
                default_tz: config.timezone().map_err(anyhow::Error::msg)?,
                actor: format!(
                    "import:{}",
                    file.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
            };
            let progress = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
            match import::import_csv(
                &db,
                &ctx,
                kind,
                &file,
                import::Options { dry_run, progress },
            )
            .await
            {
                Ok(c) if json => println!("{}", serde_json::to_string(&c).expect("serialisable")),
                Ok(c) => println!(
                    "{}{} {}: inserted {}, updated {}, unchanged {}",
                    if dry_run {
                        "dry run, nothing written — "
                    } else {
                        ""
                    },
                    kind.as_str(),
                    file.display(),
                    c.inserted,
                    c.updated,
                    c.unchanged
                ),
                Err(ImportError::Invalid { errors, total }) => {
                    let mut lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    if total > errors.len() {
                        lines.push(format!("… and {} more error(s)", total - errors.len()));
                    }
                    lines.push(format!(
                        "{}: {total} error(s); nothing was written",
                        file.display()
                    ));
                    return Err(Failure::invalid(lines));
                }
                Err(ImportError::Failed(e)) => return Err(e.into()),
            }
        }
        Command::Classify {
            at,
            timezone,
            eval,
            json,
            text,
        } => {
            let tz = match timezone {
                Some(z) => crate::config::parse_zone(&z)
                    .map_err(|e| Failure::invalid(vec![format!("--timezone: {e}")]))?,
                None => config.timezone().map_err(anyhow::Error::msg)?,
            };
            if let Some(file) = eval {
                return classify_eval(&file, at, tz, json);
            }
            let text = text.unwrap_or_default();
            let c = crate::conversation::classify(&text, at.unwrap_or_else(crate::time::now), tz);
            println!(
                "{}",
                serde_json::json!({"intent": c.intent.as_str(), "promised_date": c.promised_date.map(|d| d.to_string()), "confidence": c.confidence})
            );
        }
        Command::Scan { at, json } => {
            let db = connect().await?;
            db.migrate().await?;
            let ctx = crate::scan::ScanContext::from_config(&config)?;
            let s = crate::scan::run(&db, &ctx, at.unwrap_or_else(crate::time::now)).await?;
            if json {
                println!("{}", serde_json::to_string(&s).expect("serialisable"));
            } else {
                println!(
                    "scan: {} case(s) opened, {} updated, {} resolved; {} message(s) queued",
                    s.cases_opened, s.cases_updated, s.cases_resolved, s.messages_queued
                );
            }
        }
        Command::Deliver {
            once,
            at,
            json,
            resume,
        } => {
            let db = connect().await?;
            db.migrate().await?;
            if resume {
                let n = crate::delivery::resume(&db, None).await?;
                println!("delivery resumed ({n} flag(s) cleared)");
                return Ok(());
            }
            if !once {
                return Err(Failure::invalid(vec![
                    "error: `deliver` needs --once (or --resume); `serve` runs the worker continuously".into(),
                ]));
            }
            let catalog = Arc::new(
                crate::messages::Catalog::load()
                    .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?,
            );
            let flags = crate::delivery::halted(&db).await?;
            if !flags.is_empty() {
                return Err(Failure {
                    code: 1,
                    lines: flags
                        .iter()
                        .map(|(f, r)| format!("error: delivery is halted ({f}: {r}); fix it, then run `wa-smile deliver --resume`"))
                        .collect(),
                });
            }
            let d = crate::delivery::Deliverer::from_config(&config, catalog)?;
            // SIGTERM/SIGINT stop the pass as they stop `serve`: claims not
            // yet sent are released, sends in flight finish and are recorded.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let signals = tokio::spawn(async move {
                crate::serve::shutdown_signal().await;
                let _ = stop.send(true);
            });
            let result = crate::delivery::deliver_until(
                &db,
                &d,
                at.unwrap_or_else(crate::time::now),
                stopped.clone(),
            )
            .await;
            signals.abort();
            let s = result?;
            if json {
                println!("{}", serde_json::to_string(&s).expect("serialisable"));
            } else {
                println!(
                    "deliver: {} sent, {} failed, {} retried, {} skipped{}",
                    s.sent,
                    s.failed,
                    s.retried,
                    s.skipped,
                    s.halted
                        .map(|f| format!("; halted ({f})"))
                        .unwrap_or_default()
                );
            }
            if let Some(flag) = s.halted {
                let reason = crate::delivery::halted(&db)
                    .await?
                    .into_iter()
                    .find(|(f, _)| f == flag)
                    .map_or_else(String::new, |(_, r)| format!(": {r}"));
                return Err(Failure {
                    code: 1,
                    lines: vec![one_line(&format!(
                        "error: delivery halted ({flag}{reason}); fix it, then run `wa-smile deliver --resume`"
                    ))],
                });
            }
            if *stopped.borrow() {
                return Err(Failure {
                    code: 1,
                    lines: vec![
                        "error: deliver stopped by a signal; messages not yet sent were released"
                            .into(),
                    ],
                });
            }
        }
        Command::Templates {
            command: TemplatesCommand::Sync { dry_run },
        } => {
            let db = if dry_run {
                None
            } else {
                Some(connect().await?)
            };
            if let Some(db) = &db {
                db.migrate().await?;
            }
            crate::templates_sync::cli_sync(&config, db.as_ref(), dry_run).await?;
        }
        Command::Templates {
            command: TemplatesCommand::Status { json },
        } => crate::templates_sync::cli_status(&existing().await?, json).await?,
        Command::Templates {
            command: TemplatesCommand::Check,
        } => match crate::messages::Catalog::load() {
            Ok(c) => println!("{} message template(s) OK", c.names().count()),
            Err(e) => return Err(Failure::invalid(vec![one_line(&e.to_string())])),
        },
        Command::Templates {
            command: TemplatesCommand::Preview { name, case_id, at },
        } => {
            let catalog = crate::messages::Catalog::load()
                .map_err(|e| Failure::invalid(vec![one_line(&e.to_string())]))?;
            if catalog.get(&name).is_none() {
                return Err(Failure::invalid(vec![format!(
                    "error: no message template named `{name}`"
                )]));
            }
            let db = existing().await?;
            let src = crate::delivery::ContextSource::from_config(&config)?;
            let Some(ctx) = crate::delivery::load_context(
                &db,
                &src,
                case_id,
                at.unwrap_or_else(crate::time::now),
            )
            .await?
            else {
                return Err(Failure {
                    code: 1,
                    lines: vec![format!("error: no case {case_id}")],
                });
            };
            let text = catalog
                .render_text(&name, &ctx)
                .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?;
            println!("{text}");
        }
        Command::Audit {
            command: AuditCommand::Verify { export, manifest },
        } => {
            let db = existing().await?;
            let v = crate::audit::verify(&db).await?;
            match v.broken {
                None => println!(
                    "audit chain intact: {} row(s), head {} {}",
                    v.rows, v.head_seq, v.head_hash
                ),
                Some((seq, why)) => {
                    return Err(Failure {
                        code: 1,
                        lines: vec![format!("audit chain broken at row {seq}: {why}")],
                    });
                }
            }
            if let Some(file) = export {
                let r =
                    crate::export::verify_export(&db, &file, manifest.as_deref(), &config.policy())
                        .await?;
                if !r.ok() {
                    let mut lines: Vec<String> = r
                        .problems
                        .iter()
                        .map(|p| format!("{}: {p}", file.display()))
                        .collect();
                    lines.push(format!("{}: export verification failed", file.display()));
                    return Err(Failure { code: 1, lines });
                }
                println!(
                    "export {} intact: {} row(s) match its manifest and the database",
                    file.display(),
                    r.rows_in_file
                );
            }
        }
        Command::Export {
            kind,
            from,
            to,
            branch,
            format,
            out,
            actor,
        } => {
            let format = match format {
                CliExportFormat::Csv => crate::export::ExportFormat::Csv,
                CliExportFormat::Xlsx => crate::export::ExportFormat::Xlsx,
            };
            let actor = actor.unwrap_or_else(|| {
                format!(
                    "cli:{}",
                    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
                )
            });
            let req = crate::export::ExportRequest::new(kind, format, from, to, actor)
                .branch(branch)
                .policy(config.policy());
            req.validate()
                .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?;
            let db = connect().await?;
            db.migrate().await?;
            let m = crate::export::export_to_file(&db, &req, &out, None).await?;
            println!(
                "export {}: {} row(s) to {} (data sha256 {}, audit head {})",
                kind.as_str(),
                m.row_count,
                out.display(),
                m.data_sha256,
                m.audit_head_seq
            );
        }
        Command::Retention {
            command: RetentionCommand::Apply { at, json },
        } => {
            let db = connect().await?;
            db.migrate().await?;
            let s = crate::retention::apply(
                &db,
                &config.retention,
                at.unwrap_or_else(crate::time::now),
                "system:retention",
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string(&s).expect("serialisable"));
            } else {
                println!(
                    "retention: redacted {} audit row(s), {} case event(s), {} outbox message(s), {} employer contact(s)",
                    s.audit_rows, s.case_events, s.outbox_rows, s.employers
                );
            }
        }
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    branch,
                },
        } => {
            let role: crate::accounts::Role = role
                .parse()
                .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']);
            let db = connect().await?;
            db.migrate().await?;
            crate::accounts::add_user(&db, &username, password, role, branch.as_deref())
                .await
                .map_err(|e| Failure::invalid(vec![format!("error: {e:#}")]))?;
            println!("user {username} created ({role})");
        }
        Command::User {
            command: UserCommand::Unlock { username },
        } => {
            let db = connect().await?;
            db.migrate().await?;
            let cleared = crate::accounts::unlock_user(&db, &username, "cli")
                .await
                .map_err(|e| Failure::invalid(vec![format!("error: {e:#}")]))?;
            println!("user {username} unlocked ({cleared} failed login(s) cleared)");
        }
        Command::Token {
            command: TokenCommand::Create { name, role, branch },
        } => {
            let role: crate::accounts::Role = role
                .parse()
                .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?;
            let db = connect().await?;
            db.migrate().await?;
            let token = crate::accounts::create_token(&db, &name, role, branch.as_deref())
                .await
                .map_err(|e| Failure::invalid(vec![format!("error: {e:#}")]))?;
            println!("{token}");
        }
        Command::Case {
            command: CaseCommand::Show { npp, json },
        } => {
            let npp = crate::domain::Npp::parse(&npp)
                .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?;
            let db = existing().await?;
            let Some(id) = crate::cases::case_id_for_npp(&db, npp.as_str()).await? else {
                return Err(Failure {
                    code: 1,
                    lines: vec![format!("error: employer {npp} has no case")],
                });
            };
            let view = crate::cases::load(&db, &config.policy(), id, crate::time::now())
                .await?
                .ok_or_else(|| anyhow::anyhow!("case {id} disappeared"))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&view).expect("serialisable")
                );
            } else {
                print_case(&view);
            }
        }
    }
    Ok(())
}

fn print_case(c: &crate::cases::CaseView) {
    println!(
        "case {} — {} {} ({}), branch {}",
        c.id, c.employer.npp, c.employer.name, c.status, c.employer.branch
    );
    println!(
        "stage {}, opened {}",
        c.stage,
        c.opened_at.format("%Y-%m-%d %H:%M UTC")
    );
    if let Some(q) = &c.quiet_reason {
        let next = c
            .next_action_at
            .map(|t| t.format(" until %Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        println!("bot is silent: {q}{next}");
    }
    println!("bills:");
    for b in &c.bills {
        println!(
            "  {}  {:>16}  due {}  paid {:>16}  late fee {:>12}{}{}",
            b.period,
            b.amount.to_rupiah_string(),
            b.due_date,
            b.paid.to_rupiah_string(),
            b.late_fee.to_rupiah_string(),
            if b.late_fee_estimated {
                " (perkiraan)"
            } else {
                ""
            },
            if b.overdue { "  OVERDUE" } else { "" }
        );
    }
    println!(
        "arrears {}, late fees {}, total due {}",
        c.totals.arrears.to_rupiah_string(),
        c.totals.late_fees.to_rupiah_string(),
        c.totals.total_due.to_rupiah_string()
    );
    println!("case log:");
    for e in &c.events {
        println!(
            "  {}  {:<18} {:<16} {}",
            e.at.format("%Y-%m-%d %H:%M"),
            e.kind,
            e.actor,
            e.data
        );
    }
}
