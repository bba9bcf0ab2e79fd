//! `wa-smile import employers|bills|payments FILE`: the whole file is
//! validated first, including its references to stored rows; any invalid
//! row means nothing is written. A valid file is then written in short
//! transactions through a staged run (see `run`), which keeps it all or
//! nothing without holding a lock for the whole file. Rows are upserted by
//! natural key, so re-importing the same file changes nothing.

mod rows;
mod run;
mod write;

pub use rows::{contact_name, BillRow, EmployerRow, Kind, PaymentRow, RawRow, RowError};
pub use run::{finish_interrupted, Recovered};

/// What an import did (CONTRACT's `--json` summary).
pub use crate::domain::Counts;
use crate::domain::{Calendar, Money, Npp, Period, WaId};
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
    /// Thanks an employer whose payment resolved its case (the same
    /// message a gateway callback sends); None sends nothing (a run
    /// finished after a crash, by a process without the configuration).
    pub thanks: Option<std::sync::Arc<crate::config::Config>>,
}

pub struct Options {
    pub dry_run: bool,
    pub progress: bool,
}

/// Rows to import, one at a time (a CSV file, or the API's array).
trait Rows: Send {
    fn next_row(&mut self) -> Option<RawRow<'_>>;
}

struct FileRows {
    reader: RowReader<Box<dyn Read + Send>>,
    bar: ProgressBar,
}

impl Rows for FileRows {
    fn next_row(&mut self) -> Option<RawRow<'_>> {
        self.reader.next_row(&self.bar)
    }
}

/// The JSON API's rows; a row's `line` is its 1-based position.
struct MemoryRows<'a> {
    rows: std::slice::Iter<'a, HashMap<String, String>>,
    line: u64,
}

impl Rows for MemoryRows<'_> {
    fn next_row(&mut self) -> Option<RawRow<'_>> {
        let r = self.rows.next()?;
        self.line += 1;
        Some(RawRow {
            line: self.line,
            cells: r.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        })
    }
}

/// Imports a CSV file. With `dry_run`, each batch is written in a
/// transaction that is rolled back, so the counts say what would happen.
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
    let open = |what: &'static str| -> Result<FileRows, ImportError> {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(FileRows {
            reader: RowReader::new(
                Box::new(BufReader::with_capacity(1 << 20, f)) as Box<dyn Read + Send>,
                kind,
            )?,
            bar: progress_bar(opts.progress, size, what),
        })
    };
    // An earlier import that died half-way is finished (or discarded)
    // first, so this one validates against what it really left.
    finish_interrupted(db).await?;
    let employers = match kind {
        Kind::Employers => HashMap::new(),
        Kind::Bills | Kind::Payments => employer_ids(db).await?,
    };
    let mut rows = open("validating")?;
    let mut validator = Validator::new(kind, ctx, &employers);
    while let Some(row) = rows.next_row() {
        validator.check(&row);
    }
    rows.bar.finish_and_clear();
    validator.finish(rows.reader.structural_errors)?;

    // The second pass re-reads the file rather than keeping the first
    // pass's rows, so a million-row file costs one batch of memory.
    let mut rows = open(if opts.dry_run { "dry run" } else { "importing" })?;
    let counts = write(db, ctx, kind, &employers, &mut rows, opts.dry_run).await;
    rows.bar.finish_and_clear();
    counts
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
    finish_interrupted(db).await?;
    let employers = match kind {
        Kind::Employers => HashMap::new(),
        Kind::Bills | Kind::Payments => employer_ids(db).await?,
    };
    let source = || MemoryRows {
        rows: rows.iter(),
        line: 0,
    };
    let mut validator = Validator::new(kind, ctx, &employers);
    let mut all = source();
    while let Some(row) = all.next_row() {
        validator.check(&row);
    }
    validator.finish(Vec::new())?;
    write(db, ctx, kind, &employers, &mut source(), dry_run).await
}

/// Writes validated rows: staged, then applied, in short transactions (a
/// dry run writes each batch and rolls it back).
async fn write(
    db: &Db,
    ctx: &ImportContext,
    kind: Kind,
    employers: &HashMap<Npp, i64>,
    rows: &mut dyn Rows,
    dry_run: bool,
) -> Result<Counts, ImportError> {
    let source = run::payment_source(&ctx.actor);
    let mut refused = Refused::default();
    if dry_run {
        let mut counts = Counts::default();
        let mut batch = Batch::default();
        loop {
            let more = batch.fill(kind, ctx, employers, rows, run::DRY_RUN_BATCH)?;
            refused.check(db, &batch).await?;
            if refused.total == 0 {
                let mut tx = db.begin().await?;
                counts.add(
                    batch
                        .write(&mut tx, &ctx.actor, source, ctx.thanks.as_deref())
                        .await?,
                );
                tx.rollback().await?;
            }
            batch.clear();
            if !more {
                return refused.into_result().map(|()| counts);
            }
        }
    }
    let mut run = run::Run::start(db, kind, &ctx.actor).await?;
    let staged = async {
        let mut batch = Batch::default();
        loop {
            let more = batch.fill(kind, ctx, employers, rows, run::stage_rows(db.backend()))?;
            refused.check(db, &batch).await?;
            if refused.total == 0 {
                run.stage(db, batch.staged(run::chunk_rows(db.backend())))
                    .await?;
            }
            batch.clear();
            if !more {
                return anyhow::Ok(());
            }
        }
    }
    .await;
    if staged.is_err() || refused.total > 0 {
        // Nothing of this run is visible yet; leave nothing behind either.
        if let Err(d) = run.discard(db).await {
            tracing::warn!(error = %format!("{d:#}"), "discarding a failed import run failed");
        }
        staged?;
        refused.into_result()?;
    }
    run.seal(db).await?;
    Ok(run.apply(db, ctx.thanks.as_deref()).await?)
}

/// Payment rows whose reference already belongs to another employer. Only
/// the database knows whose a reference is, and a payment is never moved,
/// so such a row is the file's input error, found before anything of the
/// file becomes visible.
#[derive(Default)]
struct Refused {
    errors: Vec<RowError>,
    total: usize,
}

impl Refused {
    async fn check(&mut self, db: &Db, batch: &Batch) -> anyhow::Result<()> {
        if batch.payments.is_empty() {
            return Ok(());
        }
        let mut tx = db.begin().await?;
        let taken = ledger::refused_references(&mut tx, &batch.payments).await?;
        tx.rollback().await?;
        self.total += taken.len();
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors
            .extend(taken.iter().take(room).map(|t| RowError {
                line: batch.payment_lines[t.index],
                column: "reference".into(),
                reason: t.reason(),
            }));
        Ok(())
    }

    fn into_result(self) -> Result<(), ImportError> {
        if self.total == 0 {
            return Ok(());
        }
        Err(ImportError::Invalid {
            errors: self.errors,
            total: self.total,
        })
    }
}

/// A staged employer: NPP, name, branch, WhatsApp id, contact name, zone.
type StagedEmployer = (String, String, String, Option<String>, String, String);
/// A staged bill: employer id, NPP, period, amount (sen), due date, payment
/// code, late fee (sen).
type StagedBill = (
    i64,
    String,
    String,
    i64,
    chrono::NaiveDate,
    Option<String>,
    Option<i64>,
);
/// A staged payment: employer id, period, amount (sen), paid at, reference.
type StagedPayment = (i64, String, i64, chrono::DateTime<chrono::Utc>, String);

/// Validated rows of one batch, ready to write.
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

    fn len(&self) -> usize {
        self.employers.len() + self.bills.len() + self.payments.len()
    }

    /// Reads up to `n` rows; false once the rows are exhausted.
    fn fill(
        &mut self,
        kind: Kind,
        ctx: &ImportContext,
        employers: &HashMap<Npp, i64>,
        rows: &mut dyn Rows,
        n: usize,
    ) -> anyhow::Result<bool> {
        while self.len() < n {
            match rows.next_row() {
                Some(row) => self.push(kind, ctx, employers, &row)?,
                None => return Ok(false),
            }
        }
        Ok(true)
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
                let id = employers.get(&b.npp).copied().ok_or_else(|| {
                    anyhow::anyhow!(
                        "row changed between validation and import: line {}",
                        raw.line
                    )
                })?;
                self.bills.push((id, b));
            }
            Kind::Payments => {
                let p = rows::payment(raw).map_err(invalid)?;
                let id = employers.get(&p.npp).copied().ok_or_else(|| {
                    anyhow::anyhow!(
                        "row changed between validation and import: line {}",
                        raw.line
                    )
                })?;
                self.payments.push(NewPayment {
                    employer_id: id,
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

    /// The batch's rows as staged: their parsed values, so applying them
    /// later needs neither the file nor the configuration (default zone,
    /// due-date calendar) that parsed them. Each record is a JSON array of
    /// up to `chunk` rows, with its row count.
    fn staged(&self, chunk: usize) -> Vec<(String, usize)> {
        fn records<T: serde::Serialize>(rows: &[T], chunk: usize) -> Vec<(String, usize)> {
            rows.chunks(chunk.max(1))
                .map(|c| (serde_json::to_string(c).expect("serialisable"), c.len()))
                .collect()
        }
        let employers: Vec<_> = self
            .employers
            .iter()
            .map(|e| {
                (
                    e.npp.as_str(),
                    &e.name,
                    &e.branch,
                    e.wa_id.as_ref().map(|w| w.as_str()),
                    &e.contact_name,
                    e.timezone.name(),
                )
            })
            .collect();
        let bills: Vec<_> = self
            .bills
            .iter()
            .map(|(id, b)| {
                (
                    id,
                    b.npp.as_str(),
                    b.period.to_string(),
                    b.amount.minor(),
                    b.due_date,
                    &b.payment_code,
                    b.late_fee.map(|m| m.minor()),
                )
            })
            .collect();
        let payments: Vec<_> = self
            .payments
            .iter()
            .map(|p| {
                (
                    p.employer_id,
                    p.period.to_string(),
                    p.amount.minor(),
                    p.paid_at,
                    &p.reference,
                )
            })
            .collect();
        let mut out = records(&employers, chunk);
        out.extend(records(&bills, chunk));
        out.extend(records(&payments, chunk));
        out
    }

    /// Adds the rows of one staged record (see `staged`).
    fn push_staged_chunk(&mut self, kind: Kind, record: &str) -> anyhow::Result<()> {
        match kind {
            Kind::Employers => serde_json::from_str::<Vec<StagedEmployer>>(record)?
                .into_iter()
                .try_for_each(|r| self.push_employer(r)),
            Kind::Bills => serde_json::from_str::<Vec<StagedBill>>(record)?
                .into_iter()
                .try_for_each(|r| self.push_bill(r)),
            Kind::Payments => serde_json::from_str::<Vec<StagedPayment>>(record)?
                .into_iter()
                .try_for_each(|r| self.push_payment(r)),
        }
    }

    /// Adds a record staged before chunks: one row, not in an array.
    fn push_staged(&mut self, kind: Kind, row: &str) -> anyhow::Result<()> {
        match kind {
            Kind::Employers => self.push_employer(serde_json::from_str(row)?),
            Kind::Bills => self.push_bill(serde_json::from_str(row)?),
            Kind::Payments => self.push_payment(serde_json::from_str(row)?),
        }
    }

    fn push_employer(&mut self, r: StagedEmployer) -> anyhow::Result<()> {
        let (npp, name, branch, wa_id, contact_name, timezone) = r;
        self.employers.push(EmployerRow {
            npp: Npp::parse(&npp)?,
            name,
            branch,
            wa_id: wa_id.as_deref().map(WaId::parse).transpose()?,
            contact_name,
            timezone: timezone.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
        });
        Ok(())
    }

    fn push_bill(&mut self, r: StagedBill) -> anyhow::Result<()> {
        let (employer_id, npp, period, amount, due_date, payment_code, late_fee) = r;
        self.bills.push((
            employer_id,
            BillRow {
                npp: Npp::parse(&npp)?,
                period: Period::parse(&period)?,
                amount: Money::from_minor(amount),
                due_date,
                payment_code,
                late_fee: late_fee.map(Money::from_minor),
            },
        ));
        Ok(())
    }

    fn push_payment(&mut self, r: StagedPayment) -> anyhow::Result<()> {
        let (employer_id, period, amount, paid_at, reference) = r;
        self.payments.push(NewPayment {
            employer_id,
            period: Period::parse(&period)?,
            amount: Money::from_minor(amount),
            paid_at,
            reference,
        });
        Ok(())
    }

    async fn write(
        &self,
        tx: &mut crate::store::Tx,
        actor: &str,
        payment_source: &str,
        thanks: Option<&crate::config::Config>,
    ) -> anyhow::Result<Counts> {
        let at = crate::time::now();
        if !self.employers.is_empty() {
            return write::upsert_employers(tx, &self.employers, actor, at).await;
        }
        if !self.bills.is_empty() {
            return write::upsert_bills(tx, &self.bills, actor, at).await;
        }
        if !self.payments.is_empty() {
            // A reference another employer holds was refused before staging
            // (`refused_references`); one taken since then fails the batch
            // rather than moving the payment.
            let employers: Vec<i64> = self
                .payments
                .iter()
                .map(|p| p.employer_id)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let open = match thanks {
                Some(_) => crate::case::resolve::open_cases(tx, &employers).await?,
                None => Vec::new(),
            };
            let counts = ledger::record_payments(tx, &self.payments, payment_source, actor, at)
                .await
                .map_err(|e| match e {
                    ledger::LedgerError::Failed(e) => e,
                    taken => anyhow::anyhow!("{taken} since the file was validated"),
                })?;
            if let Some(config) = thanks {
                for (employer_id, case_id) in crate::case::resolve::paid_off(tx, &open).await? {
                    crate::replies::outgoing::thank_for_payment(
                        tx,
                        config,
                        employer_id,
                        case_id,
                        at,
                    )
                    .await?;
                }
            }
            return Ok(counts);
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

#[derive(sqlx::FromRow)]
struct EmployerId {
    id: i64,
    npp: Npp,
}

/// All employers' ids by NPP (for bills and payments).
async fn employer_ids(db: &Db) -> anyhow::Result<HashMap<Npp, i64>> {
    let rows: Vec<EmployerId> = db
        .query("SELECT id, npp FROM employers")
        .fetch_all_as(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.npp, r.id)).collect())
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
        // A column given twice is ambiguous (which amount is meant?), so
        // the file is refused rather than one of them silently winning.
        for column in kind.read_columns() {
            let at: Vec<usize> = (0..headers.len())
                .filter(|&i| headers[i] == *column)
                .map(|i| i + 1)
                .collect();
            if at.len() > 1 {
                let list = at.iter().map(|i| i.to_string()).collect::<Vec<_>>();
                let reason = format!(
                    "the header has this column twice (columns {})",
                    list.join(" and ")
                );
                return Err(invalid(1, column, &reason));
            }
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
