//! The case list officers work from and `GET /api/v1/cases` returns:
//! filters, sorting, pagination and counts per status. Sorting reads the
//! figures kept on each case row by the code that changes them
//! (`super::figures`), so a page is an index walk, not an aggregate over
//! every bill.

use super::figures::days_overdue;
use crate::domain::{CaseStatus, Money, QuietReason, Stage};
use crate::store::{Backend, Db, Query};
use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};

pub const PER_PAGE: i64 = 50;
/// Up to this many matches, a page is filtered first and sorted after.
const SMALL_RESULT: i64 = 5_000;

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Filter {
    /// A status, `all`, or empty for every unresolved case.
    pub status: String,
    pub stage: String,
    pub branch: String,
    pub assignee: String,
    /// Company name, NPP, PIC name (case-insensitive substring) or
    /// WhatsApp number (`0812…`, `+62 812…` or `62812…`, digits only).
    pub q: String,
    pub promise_due_today: bool,
    pub promise_broken: bool,
    pub window_open: bool,
    /// The employer wrote last and no officer or bot answer followed.
    pub awaiting_reply: bool,
    /// Reminders held for an officer (`officer_hold`).
    pub held: bool,
    /// A message to the employer failed in the last [`FAILED_DAYS`] days.
    pub failed: bool,
    /// Cases carrying this label.
    pub label: String,
    pub sort: Sort,
    pub dir: Dir,
    pub page: i64,
}

/// How far back a failed message puts a case on the worklist.
pub const FAILED_DAYS: i64 = 7;

/// The direction of the shown column: `desc` is the largest arrears, the
/// most days overdue, the latest activity, the longest wait first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    #[default]
    Desc,
    Asc,
}

impl Dir {
    pub fn flip(self) -> Dir {
        match self {
            Dir::Desc => Dir::Asc,
            Dir::Asc => Dir::Desc,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Desc => "desc",
            Dir::Asc => "asc",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Arrears,
    DaysOverdue,
    LastActivity,
    /// Waiting for an answer, longest first; lists the waiting cases only.
    Awaiting,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Arrears => "arrears",
            Sort::DaysOverdue => "days_overdue",
            Sort::LastActivity => "last_activity",
            Sort::Awaiting => "awaiting",
        }
    }

    /// The ORDER BY for the shown column in direction `dir` (see [`Dir`]),
    /// each served by an index in both directions.
    fn order(self, dir: Dir) -> &'static str {
        match (self, dir) {
            (Sort::Arrears, Dir::Desc) => "c.arrears_minor DESC, c.id DESC",
            (Sort::Arrears, Dir::Asc) => "c.arrears_minor ASC, c.id ASC",
            (Sort::DaysOverdue, Dir::Desc) => "c.oldest_due_date ASC, c.id ASC",
            (Sort::DaysOverdue, Dir::Asc) => "c.oldest_due_date DESC, c.id DESC",
            (Sort::LastActivity, Dir::Desc) => "c.last_activity_at DESC, c.id DESC",
            (Sort::LastActivity, Dir::Asc) => "c.last_activity_at ASC, c.id ASC",
            (Sort::Awaiting, Dir::Desc) => "c.awaiting_since ASC, c.id ASC",
            (Sort::Awaiting, Dir::Asc) => "c.awaiting_since DESC, c.id DESC",
        }
    }
}

/// One line of the list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListRow {
    pub id: i64,
    pub npp: String,
    pub employer_name: String,
    pub branch: String,
    /// The employer's IANA zone: its times are shown in it, zone named.
    pub timezone: String,
    pub status: String,
    pub stage: String,
    pub assignee: Option<String>,
    pub arrears: Money,
    pub oldest_due_date: Option<NaiveDate>,
    pub days_overdue: Option<i64>,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub promised_date: Option<NaiveDate>,
    pub quiet_reason: Option<String>,
    /// The employer's own "already paid" claim, awaiting its payment.
    pub payment_claimed: bool,
    pub held: bool,
    pub window_open: bool,
    pub awaiting_since: Option<DateTime<Utc>>,
    /// The waiting message's first words.
    pub awaiting_preview: Option<String>,
    /// How long it has waited, in Indonesian ("3 jam").
    pub awaiting_age: Option<String>,
    pub labels: Vec<String>,
}

/// A wait as officers say it: "baru saja", "12 menit", "3 jam", "2 hari".
pub fn age_text(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let m = (now - since).num_minutes().max(0);
    match m {
        0 => "baru saja".into(),
        1..=59 => format!("{m} menit"),
        60..=1439 => format!("{} jam", m / 60),
        _ => format!("{} hari", m / 1440),
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Page {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub pages: i64,
    /// Cases per status under every filter but the status one.
    pub counts: Vec<(String, i64)>,
    pub cases: Vec<ListRow>,
}

/// A list line as read.
#[derive(sqlx::FromRow)]
struct PageRow {
    id: i64,
    npp: String,
    name: String,
    timezone: String,
    branch: Option<String>,
    status: CaseStatus,
    stage: Stage,
    assignee: Option<String>,
    arrears_minor: Money,
    oldest_due_date: Option<NaiveDate>,
    last_activity_at: Option<DateTime<Utc>>,
    promised_date: Option<NaiveDate>,
    quiet_reason: Option<QuietReason>,
    last_inbound_at: Option<DateTime<Utc>>,
    payment_claimed_at: Option<DateTime<Utc>>,
    officer_hold: Option<String>,
    awaiting_since: Option<DateTime<Utc>>,
    awaiting_preview: Option<String>,
}

/// Builds the WHERE clause and its binds, numbering from `$1`.
struct Where {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

enum Bind {
    Text(String),
    Date(NaiveDate),
    Time(DateTime<Utc>),
}

impl Where {
    fn push(&mut self, clause: &str, bind: Bind) {
        let n = self.binds.len() + 1;
        self.clauses.push(clause.replace("$?", &format!("${n}")));
        self.binds.push(bind);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn bind<'q>(&self, mut q: Query<'q>) -> Query<'q> {
        for b in &self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Date(d) => q.bind(*d),
                Bind::Time(t) => q.bind(*t),
            };
        }
        q
    }
}

fn like_pattern(q: &str) -> String {
    let mut s = String::from("%");
    for c in q.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

/// A WhatsApp number as stored (`62812…`) from how officers type it
/// (`0812-3456`, `+62 812…`): digits only, a leading 0 read as 62.
fn wa_pattern(q: &str) -> Option<String> {
    let digits: String = q
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '+' | '(' | ')' | '.'))
        .collect();
    if digits.len() < 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = match digits.strip_prefix('0') {
        Some(rest) => format!("62{rest}"),
        None => digits,
    };
    Some(format!("%{digits}%"))
}

/// The search's condition on `employers`, binding the text as `$n` and a
/// number pattern as `$n+1` when the text reads as one.
fn employer_match(n: usize, q: &str) -> (String, Vec<String>) {
    let mut sql = format!(
        "LOWER(name) LIKE ${n} ESCAPE '\\' OR LOWER(npp) LIKE ${n} ESCAPE '\\' \
         OR LOWER(contact_name) LIKE ${n} ESCAPE '\\'"
    );
    let mut binds = vec![like_pattern(q)];
    if let Some(p) = wa_pattern(q) {
        sql.push_str(&format!(" OR wa_id LIKE ${}", n + 1));
        binds.push(p);
    }
    (sql, binds)
}

/// Hints to SQLite's planner that a filter matches few rows (its
/// statistics cannot tell, e.g. for a column that is mostly NULL);
/// PostgreSQL's statistics know.
fn rare(backend: Backend, clause: &str) -> String {
    match backend {
        Backend::Sqlite => format!("likelihood({clause}, 0.001)"),
        Backend::Postgres => clause.to_owned(),
    }
}

/// Employer ids matching the search text, when there are few enough to
/// list in the query (`None`: too many; search with a subquery).
async fn matching_employers(db: &Db, q: &str, branch: Option<&str>) -> Result<Option<Vec<i64>>> {
    const MAX_IDS: usize = 10_000;
    // A case's branch is its employer's, so a branch narrows the employers
    // as well as the cases. One sequential pass over the employers beats
    // the branch index here, whose rows are scattered over the table.
    let (cond, binds) = employer_match(if branch.is_some() { 2 } else { 1 }, q);
    let sql = format!(
        "SELECT id FROM employers WHERE {}({cond}) LIMIT {}",
        if branch.is_some() {
            "branch || '' = $1 AND "
        } else {
            ""
        },
        MAX_IDS + 1
    );
    let mut query = db.query(&sql);
    if let Some(b) = branch {
        query = query.bind(b.to_owned());
    }
    for b in binds {
        query = query.bind(b);
    }
    let rows: Vec<(i64,)> = query.fetch_all_as(db).await?;
    if rows.len() > MAX_IDS {
        return Ok(None);
    }
    Ok(Some(rows.into_iter().map(|(id,)| id).collect()))
}

struct Ctx<'a> {
    backend: Backend,
    scope: Option<&'a str>,
    today: NaiveDate,
    now: DateTime<Utc>,
    /// The search's employers, when listed (see `matching_employers`).
    employers: Option<&'a [i64]>,
}

fn build(ctx: &Ctx, f: &Filter, with_status: bool, for_count: bool) -> Where {
    let (scope, today, now, backend) = (ctx.scope, ctx.today, ctx.now, ctx.backend);
    let mut w = Where {
        clauses: Vec::new(),
        binds: Vec::new(),
    };
    // A confined caller's own branch always wins over the filter; asking
    // for another branch simply finds nothing.
    if let Some(b) = scope {
        // With a short list of searched employers, that list is the index
        // to use; `|| ''` keeps the planners from preferring the branch's
        // (which would read every case of the branch).
        let clause = if ctx.employers.is_some() {
            "c.branch || '' = $?"
        } else {
            "c.branch = $?"
        };
        w.push(clause, Bind::Text(b.to_owned()));
    }
    if !f.branch.is_empty() {
        w.push("c.branch = $?", Bind::Text(f.branch.clone()));
    }
    if with_status {
        match f.status.as_str() {
            "" => w.clauses.push("c.status <> 'resolved'".into()),
            "all" => {}
            s => w.push("c.status = $?", Bind::Text(s.to_owned())),
        }
    }
    if !f.stage.is_empty() {
        w.push("c.stage = $?", Bind::Text(f.stage.clone()));
    }
    if f.assignee == "-" {
        // Most cases are unassigned. Counting reads the assignee index; a
        // page is written so that no index is chosen for it and the sort
        // order's index is walked instead, stopping after one page.
        w.clauses.push(if for_count {
            "c.assignee IS NULL".into()
        } else {
            "COALESCE(c.assignee, '') = ''".into()
        });
    } else if !f.assignee.is_empty() {
        w.push("c.assignee = $?", Bind::Text(f.assignee.clone()));
    }
    if f.promise_due_today {
        w.push(&rare(backend, "c.promised_date = $?"), Bind::Date(today));
    }
    if f.promise_broken {
        w.clauses.push(rare(
            backend,
            "c.id IN (SELECT ev.case_id FROM case_events ev WHERE ev.kind = 'promise_broken')",
        ));
    }
    if f.window_open {
        // Few employers wrote in the last day; without the hint SQLite
        // sometimes walked the whole sort index instead (~300 ms).
        w.push(
            &rare(backend, "c.last_inbound_at > $?"),
            Bind::Time(crate::outbox::window_start(now)),
        );
    }
    if f.awaiting_reply || f.sort == Sort::Awaiting {
        w.clauses
            .push(rare(backend, "c.awaiting_since IS NOT NULL"));
    }
    if f.held {
        w.clauses.push(rare(backend, "c.officer_hold IS NOT NULL"));
    }
    if f.failed {
        w.push(
            &rare(
                backend,
                &format!("c.id IN ({})", crate::outbox::failed_case_ids_sql("$?")),
            ),
            Bind::Time(now - chrono::Duration::days(FAILED_DAYS)),
        );
    }
    if !f.label.trim().is_empty() {
        w.push(
            &rare(
                backend,
                "c.id IN (SELECT l.case_id FROM case_labels l WHERE l.label = $?)",
            ),
            Bind::Text(f.label.trim().to_lowercase()),
        );
    }
    let q = f.q.trim();
    if !q.is_empty() {
        // Employers first: the matching names' cases are then looked up by
        // employer id, instead of testing every case's employer.
        match ctx.employers {
            Some([]) => w.clauses.push("1 = 0".into()),
            Some(ids) => {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                w.clauses.push(rare(
                    backend,
                    &format!("c.employer_id IN ({})", list.join(",")),
                ));
            }
            None => {
                let (cond, binds) = employer_match(w.binds.len() + 1, q);
                w.clauses.push(format!(
                    "c.employer_id IN (SELECT id FROM employers WHERE {cond})"
                ));
                w.binds.extend(binds.into_iter().map(Bind::Text));
            }
        }
    }
    w
}

/// One page of cases visible to a caller confined to `scope` (None: all).
pub async fn list(
    db: &Db,
    scope: Option<&str>,
    f: &Filter,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Page> {
    let ids = match f.q.trim() {
        "" => None,
        q => {
            let branch = scope.or(Some(f.branch.as_str()).filter(|b| !b.is_empty()));
            matching_employers(db, q, branch).await?
        }
    };
    let ctx = Ctx {
        backend: db.backend(),
        scope,
        today,
        now,
        employers: ids.as_deref(),
    };
    // Counts per status, under every other filter: one grouped scan that
    // also gives the page total, so the list costs two queries.
    let cw = build(&ctx, f, false, true);
    let count_sql = format!(
        "SELECT c.status, COUNT(*) AS n FROM cases c{} GROUP BY c.status",
        cw.sql()
    );
    let mut by_status = std::collections::HashMap::new();
    let status_counts: Vec<(String, i64)> = cw.bind(db.query(&count_sql)).fetch_all_as(db).await?;
    for (status, n) in status_counts {
        by_status.insert(status, n);
    }
    let counts: Vec<(String, i64)> = CaseStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_owned(),
                by_status.get(s.as_str()).copied().unwrap_or(0),
            )
        })
        .collect();
    let total = match f.status.as_str() {
        "" => counts
            .iter()
            .filter(|(s, _)| s != "resolved")
            .map(|(_, n)| n)
            .sum(),
        "all" => counts.iter().map(|(_, n)| n).sum(),
        s => by_status.get(s).copied().unwrap_or(0),
    };

    // A page past the end shows the last one, labelled truly.
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let page = f.page.clamp(1, pages);
    let w = build(&ctx, f, true, false);
    let order = f.sort.order(f.dir);
    // The page's ids from `cases` alone, then employers for those 50 rows.
    // A large result walks the sort order's index and stops after the page;
    // a small one (known from the counts) is filtered first and then sorted
    // — the `LIMIT` on the inner query keeps the planners from merging the
    // two and walking the whole index for a handful of rows.
    let inner = if total <= SMALL_RESULT {
        format!(
            "SELECT * FROM (SELECT * FROM cases c{} LIMIT {}) c",
            w.sql(),
            SMALL_RESULT * 2
        )
    } else {
        format!("SELECT * FROM cases c{}", w.sql())
    };
    let sql = format!(
        "SELECT c.id, e.npp, e.name, e.timezone, c.branch, c.status, c.stage, c.assignee, c.arrears_minor, \
                c.oldest_due_date, c.last_activity_at, c.promised_date, c.quiet_reason, c.last_inbound_at, \
                c.payment_claimed_at, c.officer_hold, c.awaiting_since, c.awaiting_preview \
         FROM ({inner} ORDER BY {order} LIMIT {PER_PAGE} OFFSET {}) c \
         JOIN employers e ON e.id = c.employer_id ORDER BY {order}",
        (page - 1) * PER_PAGE
    );
    let window_from = crate::outbox::window_start(now);
    let rows: Vec<PageRow> = w.bind(db.query(&sql)).fetch_all_as(db).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut labels: std::collections::HashMap<i64, Vec<String>> = Default::default();
    for (id, l) in super::labels::for_cases(db, &ids).await? {
        labels.entry(id).or_default().push(l);
    }
    let cases = rows
        .into_iter()
        .map(|r| ListRow {
            id: r.id,
            npp: r.npp,
            employer_name: r.name,
            timezone: r.timezone,
            branch: r.branch.unwrap_or_default(),
            status: r.status.as_str().to_owned(),
            stage: r.stage.as_str().to_owned(),
            assignee: r.assignee,
            arrears: r.arrears_minor,
            oldest_due_date: r.oldest_due_date,
            days_overdue: days_overdue(r.oldest_due_date, today),
            last_activity_at: r.last_activity_at,
            promised_date: r.promised_date,
            quiet_reason: r.quiet_reason.map(|q| q.as_str().to_owned()),
            payment_claimed: r.payment_claimed_at.is_some(),
            held: r.officer_hold.is_some(),
            window_open: r.last_inbound_at.is_some_and(|t| t > window_from),
            awaiting_since: r.awaiting_since,
            awaiting_preview: r.awaiting_preview,
            awaiting_age: r.awaiting_since.map(|t| age_text(t, now)),
            labels: labels.remove(&r.id).unwrap_or_default(),
        })
        .collect();
    Ok(Page {
        page,
        per_page: PER_PAGE,
        total,
        pages,
        counts,
        cases,
    })
}

/// The branch of a case, to check a caller's access before anything else.
pub async fn case_branch(db: &Db, case_id: i64) -> Result<Option<String>> {
    Ok(db
        .query(
            "SELECT e.branch FROM cases c JOIN employers e ON e.id = c.employer_id WHERE c.id = $1",
        )
        .bind(case_id)
        .fetch_optional_scalar(db)
        .await?)
}

/// Branches that have employers (for the filter drop-down).
pub async fn branches(db: &Db) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = db
        .query("SELECT DISTINCT branch FROM employers ORDER BY branch")
        .fetch_all_as(db)
        .await?;
    Ok(rows.into_iter().map(|(b,)| b).collect())
}

/// Refreshes SQLite's planner statistics. Without them SQLite cannot tell
/// a filter matching ten cases from one matching all of them, and walks a
/// sort index through 200,000 rows for a handful; PostgreSQL's autovacuum
/// keeps its own. Bounded by `analysis_limit`, so it takes well under a
/// second at 200,000 cases.
pub async fn analyze(db: &Db) -> Result<()> {
    if db.backend() == crate::store::Backend::Sqlite {
        db.query("PRAGMA analysis_limit = 2000").execute(db).await?;
        db.query("ANALYZE").execute(db).await?;
    }
    Ok(())
}

/// Cases assigned to `assignee` whose employer waits for an answer (the
/// navigation's unread count).
pub async fn awaiting_count(db: &Db, assignee: &str) -> Result<i64> {
    Ok(db
        .query(
            "SELECT COUNT(*) AS n FROM cases c WHERE c.assignee = $1 \
             AND c.awaiting_since IS NOT NULL AND c.resolved_at IS NULL",
        )
        .bind(assignee.to_owned())
        .fetch_scalar(db)
        .await?)
}
