//! The exception queues officers work through: *unmatched inbound*
//! (messages from numbers no employer has, kept by `crate::replies`) and
//! *payment exceptions* (callbacks and imports the ledger would not settle
//! by itself: unknown references, amounts that differ, overpayments, a bill
//! paid twice — raised by `crate::ledger::raise_exception`). This module
//! lists them and records how an officer settled each one, in the audit
//! trail and, when a case is concerned, in its case log.

use crate::audit::AuditEntry;
use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::domain::Money;
use crate::store::Db;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;

/// An inbound message from a number no employer has.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct Unmatched {
    pub id: i64,
    pub wa_id: Option<String>,
    pub kind: String,
    pub body: Option<String>,
    pub payload: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// A payment the ledger left for an officer.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct PaymentIssue {
    pub id: i64,
    pub reference: String,
    pub reason: String,
    pub case_id: Option<i64>,
    pub expected_minor: Option<Money>,
    pub paid_minor: Option<Money>,
    pub created_at: DateTime<Utc>,
    pub npp: Option<String>,
    pub employer: Option<String>,
    pub branch: Option<String>,
}

/// How an officer settles an unmatched message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundResolution {
    Spam,
    Ignored,
}

impl InboundResolution {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "spam" => Some(Self::Spam),
            "ignore" | "ignored" => Some(Self::Ignored),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Spam => "spam",
            Self::Ignored => "ignored",
        }
    }
}

/// How an officer settles a payment exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentResolution {
    /// Recorded by hand in SMILE (the payment is real and belongs here).
    Recorded,
    /// To be returned to the payer (overpaid, paid twice).
    Refund,
    /// Not a contribution payment (a test, another payee).
    Dismissed,
}

impl PaymentResolution {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "recorded" => Some(Self::Recorded),
            "refund" => Some(Self::Refund),
            "dismissed" => Some(Self::Dismissed),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Refund => "refund",
            Self::Dismissed => "dismissed",
        }
    }
}

/// `AND (e.branch IS NULL OR e.branch = $n)`: a branch's officer sees its
/// own employers' exceptions and the ones that belong to no employer yet.
fn scope_clause(scope: Option<&str>, n: usize) -> String {
    scope
        .map(|_| format!(" AND (e.branch IS NULL OR e.branch = ${n})"))
        .unwrap_or_default()
}

/// The open unmatched messages, newest first. They belong to no branch, so
/// every officer sees them (and may link them to an employer of their own).
pub async fn unmatched(db: &Db, limit: i64) -> Result<Vec<Unmatched>> {
    db.query(
            "SELECT id, wa_id, kind, body, payload, received_at FROM inbound_messages \
             WHERE employer_id IS NULL AND resolved_at IS NULL ORDER BY received_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all_as(db)
        .await
        .context("failed to list unmatched messages")
}

/// The open payment exceptions a caller of `scope` may see, newest first.
pub async fn payment_issues(db: &Db, scope: Option<&str>, limit: i64) -> Result<Vec<PaymentIssue>> {
    let sql = format!(
        "SELECT x.id, x.reference, x.reason, x.case_id, x.expected_minor, x.paid_minor, x.created_at, \
                e.npp, e.name AS employer, e.branch \
         FROM payment_exceptions x LEFT JOIN cases c ON c.id = x.case_id \
         LEFT JOIN employers e ON e.id = COALESCE(x.employer_id, c.employer_id) \
         WHERE x.resolved_at IS NULL{} ORDER BY x.created_at DESC, x.id DESC LIMIT $1",
        scope_clause(scope, 2)
    );
    let mut q = db.query(&sql).bind(limit);
    if let Some(b) = scope {
        q = q.bind(b.to_owned());
    }
    q.fetch_all_as(db)
        .await
        .context("failed to list payment exceptions")
}

/// Open exceptions a caller of `scope` would see (the navigation's count).
pub async fn open_count(db: &Db, scope: Option<&str>) -> Result<i64> {
    let unmatched: i64 = db
        .query("SELECT COUNT(*) FROM inbound_messages WHERE employer_id IS NULL AND resolved_at IS NULL")
        .fetch_scalar(db)
        .await?;
    let sql = format!(
        "SELECT COUNT(*) FROM payment_exceptions x LEFT JOIN cases c ON c.id = x.case_id \
         LEFT JOIN employers e ON e.id = COALESCE(x.employer_id, c.employer_id) \
         WHERE x.resolved_at IS NULL{}",
        scope_clause(scope, 1)
    );
    let mut q = db.query(&sql);
    if let Some(b) = scope {
        q = q.bind(b.to_owned());
    }
    let payments: i64 = q.fetch_scalar(db).await?;
    Ok(unmatched + payments)
}

#[derive(sqlx::FromRow)]
struct EmployerRef {
    id: i64,
    branch: String,
}

/// Links an unmatched message to the employer `npp` (of the officer's
/// branch when `scope` is Some): the message joins the employer's current
/// case, whose log records it. Returns the case id, if the employer has one.
pub async fn link_inbound(
    db: &Db,
    id: i64,
    npp: &str,
    scope: Option<&str>,
    officer: &str,
) -> Result<Option<i64>> {
    let npp = npp.trim();
    let at = crate::time::now();
    let Some(employer) = db
        .query("SELECT id, branch FROM employers WHERE npp = $1")
        .bind(npp.to_owned())
        .fetch_optional_as::<EmployerRef>(db)
        .await?
    else {
        bail!("Tidak ada pemberi kerja dengan NPP {npp}.");
    };
    if scope.is_some_and(|b| b != employer.branch) {
        bail!("Pemberi kerja {npp} milik cabang lain.");
    }
    let case_id = crate::cases::case_id_for_npp(db, npp).await?;
    let mut tx = db.begin().await?;
    let Some(msg) = tx
        .query(
            "UPDATE inbound_messages SET employer_id = $2, case_id = $3, resolution = 'linked', resolved_at = $4, resolved_by = $5 \
             WHERE id = $1 AND employer_id IS NULL AND resolved_at IS NULL \
             RETURNING id, wa_id, kind, body, payload, received_at",
        )
        .bind(id)
        .bind(employer.id)
        .bind(case_id)
        .bind(at)
        .bind(officer.to_owned())
        .fetch_optional_as::<Unmatched>(&mut tx)
        .await?
    else {
        bail!("Pesan ini sudah ditangani.");
    };
    if let Some(case_id) = case_id {
        case_log::record(
            &mut tx,
            &[NewEvent::new(
                case_id,
                at,
                EventKind::NoteAdded,
                Actor::Officer(officer.to_owned()),
                json!({"note": "Pesan dari nomor yang tidak terdaftar ditautkan ke kasus ini",
                       "exception": "unmatched_inbound", "inbound_id": msg.id,
                       "wa_id": msg.wa_id, "text": msg.body, "received_at": msg.received_at}),
            )],
        )
        .await?;
    }
    tx.audit(
        AuditEntry::new(
            at,
            format!("officer:{officer}"),
            "inbound.linked",
            format!("employer:{npp}"),
        )
        .after(json!({"inbound_id": id, "case_id": case_id})),
    );
    tx.commit().await?;
    Ok(case_id)
}

/// Marks an unmatched message spam or ignored (it leaves the queue, kept).
pub async fn dismiss_inbound(
    db: &Db,
    id: i64,
    resolution: InboundResolution,
    officer: &str,
) -> Result<()> {
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let changed = tx
        .query(
            "UPDATE inbound_messages SET resolution = $2, resolved_at = $3, resolved_by = $4 \
             WHERE id = $1 AND employer_id IS NULL AND resolved_at IS NULL",
        )
        .bind(id)
        .bind(resolution.as_str())
        .bind(at)
        .bind(officer.to_owned())
        .execute(&mut tx)
        .await?;
    if changed == 0 {
        bail!("Pesan ini sudah ditangani.");
    }
    tx.audit(
        AuditEntry::new(
            at,
            format!("officer:{officer}"),
            format!("inbound.{}", resolution.as_str()),
            format!("inbound:{id}"),
        )
        .after(json!({"resolution": resolution.as_str()})),
    );
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct IssueRef {
    reference: String,
    reason: String,
    case_id: Option<i64>,
    branch: Option<String>,
}

/// Settles a payment exception (of the officer's branch when `scope` is
/// Some), with the officer's note, in the audit trail and the case log.
pub async fn resolve_payment(
    db: &Db,
    id: i64,
    resolution: PaymentResolution,
    note: &str,
    scope: Option<&str>,
    officer: &str,
) -> Result<()> {
    let at = crate::time::now();
    let Some(issue) = db
        .query(
            "SELECT x.reference, x.reason, x.case_id, e.branch FROM payment_exceptions x \
             LEFT JOIN cases c ON c.id = x.case_id \
             LEFT JOIN employers e ON e.id = COALESCE(x.employer_id, c.employer_id) WHERE x.id = $1",
        )
        .bind(id)
        .fetch_optional_as::<IssueRef>(db)
        .await?
    else {
        bail!("Tidak ada pengecualian pembayaran {id}.");
    };
    if let (Some(own), Some(b)) = (scope, issue.branch.as_deref()) {
        if own != b {
            bail!("Pengecualian ini milik cabang lain.");
        }
    }
    let note = note.trim();
    let mut tx = db.begin().await?;
    let changed = tx
        .query(
            "UPDATE payment_exceptions SET resolution = $2, note = $3, resolved_at = $4, resolved_by = $5 \
             WHERE id = $1 AND resolved_at IS NULL",
        )
        .bind(id)
        .bind(resolution.as_str())
        .bind(Some(note.to_owned()).filter(|n| !n.is_empty()))
        .bind(at)
        .bind(officer.to_owned())
        .execute(&mut tx)
        .await?;
    if changed == 0 {
        bail!("Pengecualian ini sudah ditangani.");
    }
    if let Some(case_id) = issue.case_id {
        case_log::record(
            &mut tx,
            &[NewEvent::new(
                case_id,
                at,
                EventKind::NoteAdded,
                Actor::Officer(officer.to_owned()),
                json!({"note": format!("Pengecualian pembayaran {} ({}) ditangani: {}{}", issue.reference, issue.reason,
                                       resolution.as_str(), if note.is_empty() { String::new() } else { format!(" — {note}") }),
                       "exception": "payment", "reference": issue.reference,
                       "reason": issue.reason, "resolution": resolution.as_str()}),
            )],
        )
        .await?;
    }
    tx.audit(
        AuditEntry::new(
            at,
            format!("officer:{officer}"),
            "payment_exception.resolved",
            format!("payment:{}", issue.reference),
        )
        .after(json!({"exception_id": id, "reason": issue.reason, "resolution": resolution.as_str(), "note": note})),
    );
    tx.commit().await?;
    Ok(())
}
