//! Builders for employers, bills, payments and cases that go through the
//! real code: the import (the API's in-memory rows, validated like a CSV
//! file) and, for payments, the ledger behind it; cases are opened by the
//! real scan. Rows are stamped with `now()`, under the app's clock when the
//! builders come from a `TestApp` (or `with_clock`).

use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use wa_smile::config::Config;
use wa_smile::import::{self, ImportContext, ImportError, Kind};
use wa_smile::scan::{self, ScanContext, ScanSummary};
use wa_smile::store::Db;
use wa_smile::time::TestClock;

pub struct Fixtures<'a> {
    db: &'a Db,
    import: ImportContext,
    scan: ScanContext,
    clock: TestClock,
}

/// Builders over `db` with the default configuration.
pub fn fixtures(db: &Db) -> Fixtures<'_> {
    Fixtures::new(db, &super::config())
}

/// An amount in sen as the import writes it (`1250000.50`).
pub fn amount(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

impl<'a> Fixtures<'a> {
    pub fn new(db: &'a Db, config: &Config) -> Self {
        Fixtures {
            db,
            import: ImportContext {
                calendar: config.calendar(),
                default_tz: config.timezone(),
                actor: "import:fixtures".into(),
                thanks: None,
            },
            scan: ScanContext::from_config(config).unwrap(),
            clock: TestClock::default(),
        }
    }

    /// Rows are written at `clock`'s time.
    pub fn with_clock(mut self, clock: &TestClock) -> Self {
        self.clock = clock.clone();
        self
    }

    /// Rows are written at `at` (a clock of its own, stopped there).
    pub fn at(self, at: DateTime<Utc>) -> Self {
        let clock = TestClock::default();
        clock.set(at);
        self.with_clock(&clock)
    }

    pub fn db(&self) -> &'a Db {
        self.db
    }

    /// Imports `rows` of `kind`; any invalid row fails the test with the
    /// import's own errors.
    pub async fn import(&self, kind: Kind, rows: &[HashMap<String, String>]) -> import::Counts {
        let r = self
            .clock
            .run(import::import_rows(
                self.db,
                &self.import,
                kind,
                rows,
                false,
            ))
            .await;
        match r {
            Ok(c) => c,
            Err(ImportError::Invalid { errors, .. }) => {
                let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                panic!("fixture rows are invalid: {}", lines.join("; "))
            }
            Err(ImportError::Failed(e)) => panic!("fixture import failed: {e:#}"),
        }
    }

    /// An employer `PT {npp}` of branch PEKANBARU, contact Ibu Sari, in the
    /// default zone, without a WhatsApp number until `.wa(…)`.
    pub fn employer(&self, npp: &str) -> EmployerBuilder<'_, 'a> {
        EmployerBuilder {
            f: self,
            npp: npp.to_owned(),
            name: format!("PT {npp}"),
            branch: "PEKANBARU".into(),
            wa: None,
            contact: "Ibu Sari".into(),
            tz: None,
        }
    }

    /// A bill of `npp` (imported already) for `period`, due `due`.
    pub fn bill(&self, npp: &str, period: &str, amount_minor: i64) -> BillBuilder<'_, 'a> {
        BillBuilder {
            f: self,
            npp: npp.to_owned(),
            period: period.to_owned(),
            amount_minor,
            employer_id: None,
            due: None,
            code: None,
            late_fee_minor: None,
        }
    }

    /// A bill of the employer with this id.
    pub fn bill_of(
        &self,
        employer_id: i64,
        period: &str,
        amount_minor: i64,
    ) -> BillBuilder<'_, 'a> {
        let mut b = self.bill("", period, amount_minor);
        b.employer_id = Some(employer_id);
        b
    }

    /// A payment through the ledger (as the payments import records it).
    pub fn payment(
        &self,
        npp: &str,
        period: &str,
        amount_minor: i64,
        reference: &str,
    ) -> PaymentBuilder<'_, 'a> {
        PaymentBuilder {
            f: self,
            npp: npp.to_owned(),
            period: period.to_owned(),
            amount_minor,
            reference: reference.to_owned(),
            paid_at: None,
        }
    }

    /// Many employers in one import.
    pub async fn employers(&self, list: Vec<EmployerBuilder<'_, 'a>>) {
        let rows: Vec<_> = list.into_iter().map(EmployerBuilder::into_row).collect();
        self.import(Kind::Employers, &rows).await;
    }

    /// Many bills in one import.
    pub async fn bills(&self, list: Vec<BillBuilder<'_, 'a>>) {
        let mut rows = Vec::new();
        for mut b in list {
            b.resolve().await;
            rows.push(b.into_row());
        }
        self.import(Kind::Bills, &rows).await;
    }

    /// The real scan at `at`: opens (and moves on) cases for overdue bills.
    pub async fn scan(&self, at: DateTime<Utc>) -> ScanSummary {
        self.clock
            .run(scan::run(self.db, &self.scan, at))
            .await
            .unwrap()
    }

    /// The employer's id by NPP.
    pub async fn employer_id(&self, npp: &str) -> i64 {
        self.db
            .query("SELECT id FROM employers WHERE npp = $1")
            .bind(npp.to_owned())
            .fetch_scalar::<i64>(self.db)
            .await
            .unwrap()
    }

    /// The open case of `npp`.
    pub async fn case_of(&self, npp: &str) -> i64 {
        wa_smile::cases::case_id_for_npp(self.db, npp)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no case for {npp}"))
    }
}

pub struct EmployerBuilder<'f, 'a> {
    f: &'f Fixtures<'a>,
    npp: String,
    name: String,
    branch: String,
    wa: Option<String>,
    contact: String,
    tz: Option<String>,
}

impl EmployerBuilder<'_, '_> {
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    pub fn branch(mut self, branch: &str) -> Self {
        self.branch = branch.to_owned();
        self
    }

    pub fn wa(mut self, wa: &str) -> Self {
        self.wa = Some(wa.to_owned());
        self
    }

    pub fn wa_opt(mut self, wa: Option<&str>) -> Self {
        self.wa = wa.map(str::to_owned);
        self
    }

    pub fn contact(mut self, contact: &str) -> Self {
        self.contact = contact.to_owned();
        self
    }

    pub fn tz(mut self, tz: &str) -> Self {
        self.tz = Some(tz.to_owned());
        self
    }

    /// Imports the employer; returns its id.
    pub async fn create(self) -> i64 {
        let (f, npp) = (self.f, self.npp.clone());
        f.import(Kind::Employers, &[self.into_row()]).await;
        f.employer_id(&npp).await
    }

    fn into_row(self) -> HashMap<String, String> {
        let mut row = HashMap::from([
            ("npp".to_owned(), self.npp),
            ("name".to_owned(), self.name),
            ("branch".to_owned(), self.branch),
            ("wa_phone".to_owned(), self.wa.unwrap_or_default()),
            ("contact_name".to_owned(), self.contact),
        ]);
        if let Some(tz) = self.tz {
            row.insert("timezone".into(), tz);
        }
        row
    }
}

pub struct BillBuilder<'f, 'a> {
    f: &'f Fixtures<'a>,
    npp: String,
    period: String,
    amount_minor: i64,
    /// Instead of `npp` (looked up when the bill is created).
    employer_id: Option<i64>,
    due: Option<NaiveDate>,
    code: Option<String>,
    late_fee_minor: Option<i64>,
}

impl BillBuilder<'_, '_> {
    /// The due date (without one, the import's default for the period).
    pub fn due(mut self, due: NaiveDate) -> Self {
        self.due = Some(due);
        self
    }

    /// `due` as `YYYY-MM-DD`.
    pub fn due_on(self, due: &str) -> Self {
        let d = due.parse().unwrap();
        self.due(d)
    }

    pub fn payment_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    pub fn late_fee(mut self, minor: i64) -> Self {
        self.late_fee_minor = Some(minor);
        self
    }

    pub async fn create(mut self) {
        let f = self.f;
        self.resolve().await;
        f.import(Kind::Bills, &[self.into_row()]).await;
    }

    async fn resolve(&mut self) {
        if let Some(id) = self.employer_id.take() {
            self.npp = self
                .f
                .db
                .query("SELECT npp FROM employers WHERE id = $1")
                .bind(id)
                .fetch_scalar::<String>(self.f.db)
                .await
                .unwrap();
        }
    }

    fn into_row(self) -> HashMap<String, String> {
        let mut row = HashMap::from([
            ("npp".to_owned(), self.npp),
            ("period".to_owned(), self.period),
            ("amount".to_owned(), amount(self.amount_minor)),
        ]);
        if let Some(d) = self.due {
            row.insert("due_date".into(), d.to_string());
        }
        if let Some(c) = self.code {
            row.insert("payment_code".into(), c);
        }
        if let Some(l) = self.late_fee_minor {
            row.insert("late_fee".into(), amount(l));
        }
        row
    }
}

pub struct PaymentBuilder<'f, 'a> {
    f: &'f Fixtures<'a>,
    npp: String,
    period: String,
    amount_minor: i64,
    reference: String,
    paid_at: Option<DateTime<Utc>>,
}

impl PaymentBuilder<'_, '_> {
    pub fn paid_at(mut self, at: DateTime<Utc>) -> Self {
        self.paid_at = Some(at);
        self
    }

    pub async fn create(self) -> import::Counts {
        let paid_at = self.paid_at.unwrap_or_else(|| self.f.clock.now());
        let row = HashMap::from([
            ("npp".to_owned(), self.npp),
            ("period".to_owned(), self.period),
            ("amount".to_owned(), amount(self.amount_minor)),
            ("paid_at".to_owned(), paid_at.to_rfc3339()),
            ("reference".to_owned(), self.reference),
        ]);
        self.f.import(Kind::Payments, &[row]).await
    }
}
