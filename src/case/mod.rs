//! The case: one employer's arrears episode from the scan that opens it to
//! its resolution. This module owns the case row ([`CaseRow`]), the figures
//! derived from its bills ([`figures`]), the case page ([`view`]) and the
//! case list ([`list`]). Its status, stage and quiet-reason enums are
//! domain types (`crate::domain`, used by the policy and the conversation
//! too), re-exported here.

pub mod figures;
pub mod labels;
pub mod list;
pub mod resolve;
pub mod view;
pub mod words;

pub use crate::domain::{CaseStatus, QuietReason, Stage};
pub use figures::{figures, BillLine, Figures};

use chrono::{DateTime, NaiveDate, Utc};

/// A row of `cases`, typed. Select the columns by name (`CASE_COLUMNS`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CaseRow {
    pub id: i64,
    pub employer_id: i64,
    pub status: CaseStatus,
    pub stage: Stage,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub assignee: Option<String>,
    pub paused_until: Option<DateTime<Utc>>,
    pub promised_date: Option<NaiveDate>,
    pub quiet_reason: Option<QuietReason>,
    pub next_action_at: Option<DateTime<Utc>>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// Set while an "already paid" claim awaits its payment record.
    pub payment_claimed_at: Option<DateTime<Utc>>,
    /// Set while the employer's reply waits for an officer.
    pub officer_hold: Option<String>,
}

/// The columns of [`CaseRow`], for `SELECT {CASE_COLUMNS} FROM cases c`.
pub const CASE_COLUMNS: &str =
    "c.id, c.employer_id, c.status, c.stage, c.opened_at, c.resolved_at, \
     c.resolution, c.assignee, c.paused_until, c.promised_date, c.quiet_reason, c.next_action_at, \
     c.last_inbound_at, c.payment_claimed_at, c.officer_hold";
