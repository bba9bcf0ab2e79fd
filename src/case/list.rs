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
    /// Employer name or NPP, case-insensitive substring.
    pub q: String,
    pub promise_due_today: bool,
    pub promise_broken: bool,
    pub window_open: bool,
    pub sort: Sort,
    pub page: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Arrears,
    DaysOverdue,
    LastActivity,
}

/// One line of the list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListRow {
    pub id: i64,
    pub npp: String,
    pub employer_name: String,
    pub branch: String,
    pub status: String,
    pub stage: String,
    pub assignee: Option<String>,
    pub arrears: Money,
    pub oldest_due_date: Option<NaiveDate>,
    pub days_overdue: Option<i64>,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub promised_date: Option<NaiveDate>,
    pub quiet_reason: Option<String>,
    pub window_open: bool,
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
    let sql = format!(
        "SELECT id FROM employers WHERE {}(LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(npp) LIKE $1 ESCAPE '\\') LIMIT {}",
        if branch.is_some() { "branch || '' = $2 AND " } else { "" },
        MAX_IDS + 1
    );
    let mut query = db.query(&sql).bind(like_pattern(q));
    if let Some(b) = branch {
        query = query.bind(b.to_owned());
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
                let n = w.binds.len() + 1;
                w.clauses.push(format!(
                    "c.employer_id IN (SELECT id FROM employers WHERE LOWER(name) LIKE ${n} ESCAPE '\\' OR LOWER(npp) LIKE ${n} ESCAPE '\\')"
                ));
                w.binds.push(Bind::Text(like_pattern(q)));
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
    let order = match f.sort {
        Sort::Arrears => "c.arrears_minor DESC, c.id DESC",
        Sort::DaysOverdue => "c.oldest_due_date ASC, c.id ASC",
        Sort::LastActivity => "c.last_activity_at DESC, c.id DESC",
    };
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
        "SELECT c.id, e.npp, e.name, c.branch, c.status, c.stage, c.assignee, c.arrears_minor, \
                c.oldest_due_date, c.last_activity_at, c.promised_date, c.quiet_reason, c.last_inbound_at \
         FROM ({inner} ORDER BY {order} LIMIT {PER_PAGE} OFFSET {}) c \
         JOIN employers e ON e.id = c.employer_id ORDER BY {order}",
        (page - 1) * PER_PAGE
    );
    let window_from = crate::outbox::window_start(now);
    let rows: Vec<PageRow> = w.bind(db.query(&sql)).fetch_all_as(db).await?;
    let cases = rows
        .into_iter()
        .map(|r| ListRow {
            id: r.id,
            npp: r.npp,
            employer_name: r.name,
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
            window_open: r.last_inbound_at.is_some_and(|t| t > window_from),
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
