//! `wa-smile import employers|bills|payments FILE`: the whole file is
//! validated first; any invalid row means nothing is written. Valid files are
//! upserted by natural key in one transaction, so a failure half-way rolls
//! everything back, and a re-import of the same file changes nothing.

mod rows;
mod write;

pub use rows::{contact_name, BillRow, EmployerRow, Kind, PaymentRow, RawRow, RowError};

use crate::domain::{Calendar, Npp, Period};
use crate::ledger::{self, NewPayment};
use crate::store::Db;
use anyhow::Context;
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Errors printed per import at most (the total is still reported).
pub const MAX_REPORTED_ERRORS: usize = 100;
const CHUNK: usize = 1000;

/// What an import did (CONTRACT's `--json` summary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is invalid; nothing was written. Holds the first
    /// `MAX_REPORTED_ERRORS` problems and the total count.
    #[error("{total} invalid value(s); nothing was written")]
    Invalid { errors: Vec<RowError>, total: usize },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What an import needs besides the database.
pub struct ImportContext {
    pub calendar: Calendar,
    pub default_tz: Tz,
    /// Who is importing, for the audit log (e.g. `import:bills.csv`).
    pub actor: String,
}

pub struct Options {
    pub dry_run: bool,
    pub progress: bool,
}

/// Imports a CSV file. With `dry_run`, everything is done in a transaction
/// that is rolled back, so the counts say what would happen.
pub async fn import_csv(
    db: &Db,
    ctx: &ImportContext,
    kind: Kind,
    path: &Path,
    opts: Options,
) -> Result<Counts, ImportError> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let employers = match kind {
        Kind::Employers => HashMap::new(),
        Kind::Bills | Kind::Payments => employer_ids(db).await?,
    };
    let open = || -> Result<RowReader<Box<dyn Read>>, ImportError> {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        RowReader::new(Box::new(BufReader::with_capacity(1 << 20, f)), kind)
    };

    let bar = progress_bar(opts.progress, size, "validating");
    let mut validator = Validator::new(kind, ctx, &employers);
    let mut rows = open()?;
    while let Some(row) = rows.next_row(&bar) {
        validator.check(&row);
    }
    bar.finish_and_clear();
    validator.finish(rows.structural_errors)?;

    // The second pass re-reads the file rather than keeping the first
    // pass's rows, so a million-row file costs one chunk of memory.
    let bar = progress_bar(
        opts.progress,
        size,
        if opts.dry_run { "dry run" } else { "importing" },
    );
    let mut tx = db.begin().await?;
    let mut counts = Counts::default();
    let mut batch = Batch::default();
    let mut rows = open()?;
    let mut n = 0;
    while let Some(row) = rows.next_row(&bar) {
        batch.push(kind, ctx, &employers, &row)?;
        n += 1;
        if n % CHUNK == 0 {
            counts.add(batch.write(&mut tx, ctx).await?);
            batch.clear();
            tx.flush_audit_if_large().await?;
        }
    }
    counts.add(batch.write(&mut tx, ctx).await?);
    bar.finish_and_clear();
    if opts.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await.context("failed to commit the import")?;
    }
    Ok(counts)
}

/// Validates and imports rows held in memory (the JSON API's arrays of CSV
/// rows), through the same validator and writers as a file: any invalid row
/// means nothing is written. A row's `line` in errors is its 1-based
/// position in the array.
pub async fn import_rows(
    db: &Db,
    ctx: &ImportContext,
    kind: Kind,
    rows: &[HashMap<String, String>],
    dry_run: bool,
) -> Result<Counts, ImportError> {
    let employers = match kind {
        Kind::Employers => HashMap::new(),
        Kind::Bills | Kind::Payments => employer_ids(db).await?,
    };
    fn raw(i: usize, r: &HashMap<String, String>) -> RawRow<'_> {
        RawRow {
            line: i as u64 + 1,
            cells: r.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        }
    }
    let mut validator = Validator::new(kind, ctx, &employers);
    for (i, r) in rows.iter().enumerate() {
        validator.check(&raw(i, r));
    }
    validator.finish(Vec::new())?;
    let mut tx = db.begin().await?;
    let mut counts = Counts::default();
    let mut batch = Batch::default();
    for (n, (i, r)) in rows.iter().enumerate().enumerate() {
        batch.push(kind, ctx, &employers, &raw(i, r))?;
        if (n + 1) % CHUNK == 0 {
            counts.add(batch.write(&mut tx, ctx).await?);
            batch.clear();
        }
    }
    counts.add(batch.write(&mut tx, ctx).await?);
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await.context("failed to commit the import")?;
    }
    Ok(counts)
}

/// Validated rows of one chunk, ready to write.
#[derive(Default)]
struct Batch {
    employers: Vec<EmployerRow>,
    bills: Vec<(i64, BillRow)>,
    payments: Vec<NewPayment>,
    /// Each payment's line, for the ledger's refusals.
    payment_lines: Vec<u64>,
}

impl Batch {
    fn clear(&mut self) {
        self.employers.clear();
        self.bills.clear();
        self.payments.clear();
        self.payment_lines.clear();
    }

    fn push(
        &mut self,
        kind: Kind,
        ctx: &ImportContext,
        employers: &HashMap<Npp, i64>,
        raw: &RawRow,
    ) -> anyhow::Result<()> {
        let invalid = |e: Vec<RowError>| {
            anyhow::anyhow!("row changed between validation and import: {}", e[0])
        };
        match kind {
            Kind::Employers => self
                .employers
                .push(rows::employer(raw, ctx.default_tz).map_err(invalid)?),
            Kind::Bills => {
                let b = rows::bill(raw, &ctx.calendar).map_err(invalid)?;
                self.bills.push((employers[&b.npp], b));
            }
            Kind::Payments => {
                let p = rows::payment(raw).map_err(invalid)?;
                self.payments.push(NewPayment {
                    employer_id: employers[&p.npp],
                    period: p.period,
                    amount: p.amount,
                    paid_at: p.paid_at,
                    reference: p.reference,
                });
                self.payment_lines.push(raw.line);
            }
        }
        Ok(())
    }

    async fn write(
        &self,
        tx: &mut crate::store::Tx,
        ctx: &ImportContext,
    ) -> Result<Counts, ImportError> {
        let at = crate::time::now();
        if !self.employers.is_empty() {
            return Ok(write::upsert_employers(tx, &self.employers, &ctx.actor, at).await?);
        }
        if !self.bills.is_empty() {
            return Ok(write::upsert_bills(tx, &self.bills, &ctx.actor, at).await?);
        }
        if !self.payments.is_empty() {
            // CONTRACT's payment sources: the JSON API's actors are `api:…`.
            let source = if ctx.actor.starts_with("api:") {
                "api"
            } else {
                "import"
            };
            return match ledger::record_payments(tx, &self.payments, source, &ctx.actor, at).await {
                Ok(c) => Ok(c),
                // Only the database knows whose a reference is; the refusal
                // is still the row's input error, and nothing is written.
                Err(ledger::LedgerError::ReferenceTaken(taken)) => {
                    let total = taken.len();
                    let errors = taken
                        .iter()
                        .take(MAX_REPORTED_ERRORS)
                        .map(|t| RowError {
                            line: self.payment_lines[t.index],
                            column: "reference".into(),
                            reason: t.reason(),
                        })
                        .collect();
                    Err(ImportError::Invalid { errors, total })
                }
                Err(ledger::LedgerError::Failed(e)) => Err(ImportError::Failed(e)),
            };
        }
        Ok(Counts::default())
    }
}

/// Whole-file checks: every cell, unknown NPPs, duplicate keys.
struct Validator<'a> {
    kind: Kind,
    ctx: &'a ImportContext,
    employers: &'a HashMap<Npp, i64>,
    seen_npp: HashMap<Npp, u64>,
    seen_bill: HashMap<(i64, Period), u64>,
    seen_ref: HashMap<String, u64>,
    errors: Vec<RowError>,
    total: usize,
}

impl<'a> Validator<'a> {
    fn new(kind: Kind, ctx: &'a ImportContext, employers: &'a HashMap<Npp, i64>) -> Self {
        Self {
            kind,
            ctx,
            employers,
            seen_npp: HashMap::new(),
            seen_bill: HashMap::new(),
            seen_ref: HashMap::new(),
            errors: Vec::new(),
            total: 0,
        }
    }

    fn report(&mut self, e: RowError) {
        self.total += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(e);
        }
    }

    fn known(&mut self, line: u64, npp: &Npp) -> Option<i64> {
        let id = self.employers.get(npp).copied();
        if id.is_none() {
            self.report(RowError {
                line,
                column: "npp".into(),
                reason: format!("unknown employer `{npp}` (import employers first)"),
            });
        }
        id
    }

    /// The line that first had this key, if any.
    fn duplicate<K: std::hash::Hash + Eq>(
        seen: &mut HashMap<K, u64>,
        key: K,
        line: u64,
    ) -> Option<u64> {
        match seen.entry(key) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }

    fn check(&mut self, row: &RawRow) {
        let line = row.line;
        match self.kind {
            Kind::Employers => match rows::employer(row, self.ctx.default_tz) {
                Ok(e) => {
                    if let Some(first) = Self::duplicate(&mut self.seen_npp, e.npp.clone(), line) {
                        self.report(RowError {
                            line,
                            column: "npp".into(),
                            reason: format!("duplicate of line {first}"),
                        });
                    }
                }
                Err(errs) => errs.into_iter().for_each(|e| self.report(e)),
            },
            Kind::Bills => match rows::bill(row, &self.ctx.calendar) {
                Ok(b) => {
                    if let Some(id) = self.known(line, &b.npp) {
                        if let Some(first) =
                            Self::duplicate(&mut self.seen_bill, (id, b.period), line)
                        {
                            self.report(RowError {
                                line,
                                column: "period".into(),
                                reason: format!("duplicate of line {first} (same npp and period)"),
                            });
                        }
                    }
                }
                Err(errs) => errs.into_iter().for_each(|e| self.report(e)),
            },
            Kind::Payments => match rows::payment(row) {
                Ok(p) => {
                    self.known(line, &p.npp);
                    if let Some(first) =
                        Self::duplicate(&mut self.seen_ref, p.reference.clone(), line)
                    {
                        self.report(RowError {
                            line,
                            column: "reference".into(),
                            reason: format!("duplicate of line {first}"),
                        });
                    }
                }
                Err(errs) => errs.into_iter().for_each(|e| self.report(e)),
            },
        }
    }

    /// Merges the reader's structural errors in line order.
    fn finish(mut self, structural: Vec<RowError>) -> Result<(), ImportError> {
        let total = self.total + structural.len();
        if total == 0 {
            return Ok(());
        }
        self.errors.extend(structural);
        self.errors.sort_by_key(|e| e.line);
        self.errors.truncate(MAX_REPORTED_ERRORS);
        Err(ImportError::Invalid {
            errors: self.errors,
            total,
        })
    }
}

/// All employers' ids by NPP (for bills and payments).
async fn employer_ids(db: &Db) -> anyhow::Result<HashMap<Npp, i64>> {
    let rows = db
        .query("SELECT id, npp FROM employers")
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|r| {
            let npp: String = r.get("npp")?;
            Ok((
                Npp::parse(&npp)
                    .map_err(|e| anyhow::anyhow!("stored NPP `{npp}` is invalid: {e}"))?,
                r.get("id")?,
            ))
        })
        .collect()
}

/// Reads CSV rows with their line numbers, checking the header once.
/// Structural problems (bad UTF-8, wrong field counts) are collected as
/// input errors with a line, like any other, and the row is skipped.
struct RowReader<R: Read> {
    reader: csv::Reader<R>,
    headers: Vec<String>,
    record: csv::StringRecord,
    structural_errors: Vec<RowError>,
    done: bool,
}

impl<R: Read> RowReader<R> {
    fn new(input: R, kind: Kind) -> Result<Self, ImportError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(input);
        let headers: Vec<String> = match reader.headers() {
            Ok(h) => h
                .iter()
                .map(|s| s.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
                .collect(),
            Err(e) => return Err(invalid(1, "*", &format!("cannot read the header row: {e}"))),
        };
        if headers.iter().all(|h| h.is_empty()) {
            return Err(invalid(
                1,
                "*",
                "the file is empty (a header row is required)",
            ));
        }
        let missing: Vec<RowError> = kind
            .required_columns()
            .iter()
            .filter(|c| !headers.iter().any(|h| h == *c))
            .map(|c| RowError {
                line: 1,
                column: c.to_string(),
                reason: "missing required column in the header".into(),
            })
            .collect();
        if !missing.is_empty() {
            let total = missing.len();
            return Err(ImportError::Invalid {
                errors: missing,
                total,
            });
        }
        Ok(Self {
            reader,
            headers,
            record: csv::StringRecord::new(),
            structural_errors: Vec::new(),
            done: false,
        })
    }

    fn next_row(&mut self, bar: &ProgressBar) -> Option<RawRow<'_>> {
        while !self.done {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => self.done = true,
                Ok(true) => {
                    let pos = self
                        .record
                        .position()
                        .cloned()
                        .unwrap_or_else(csv::Position::new);
                    if pos.line() % 1024 == 0 {
                        bar.set_position(pos.byte());
                    }
                    if self.record.iter().all(|v| v.trim().is_empty()) {
                        continue;
                    }
                    if self.record.len() != self.headers.len() {
                        let reason = format!(
                            "expected {} fields as in the header, found {}",
                            self.headers.len(),
                            self.record.len()
                        );
                        self.structural(pos.line(), reason);
                        continue;
                    }
                    let cells = self
                        .headers
                        .iter()
                        .map(String::as_str)
                        .zip(self.record.iter())
                        .collect();
                    return Some(RawRow {
                        line: pos.line(),
                        cells,
                    });
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    let utf8 = matches!(e.kind(), csv::ErrorKind::Utf8 { .. });
                    let reason = match e.kind() {
                        csv::ErrorKind::Utf8 { err, .. } => {
                            format!("not valid UTF-8 (field {})", err.field() + 1)
                        }
                        _ => e.to_string(),
                    };
                    self.structural(line, reason);
                    // After an I/O error the reader cannot continue; a bad
                    // UTF-8 row is skipped and the rest still validated.
                    self.done = !utf8;
                }
            }
        }
        None
    }

    fn structural(&mut self, line: u64, reason: String) {
        if self.structural_errors.len() < MAX_REPORTED_ERRORS {
            self.structural_errors.push(RowError {
                line,
                column: "*".into(),
                reason,
            });
        }
    }
}

fn invalid(line: u64, column: &str, reason: &str) -> ImportError {
    ImportError::Invalid {
        errors: vec![RowError {
            line,
            column: column.into(),
            reason: reason.into(),
        }],
        total: 1,
    }
}

fn progress_bar(enabled: bool, len: u64, what: &'static str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}
