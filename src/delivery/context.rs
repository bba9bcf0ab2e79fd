//! The `MessageContext` of a case, read from the database: the employer, its
//! overdue bills with late fees, the payment code and the branch contact.
//! Delivery renders from it at send time (so a message quotes the figures of
//! the moment it leaves, not of the scan), and `templates preview` shows the
//! same text.

use crate::config::{Config, MessagesConfig};
use crate::domain::Policy;
use crate::messages::{MessageContext, StoredBill};
use crate::store::{list_placeholders, rows_per_statement, Db};
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

/// What rendering needs from configuration.
#[derive(Debug, Clone)]
pub struct ContextSource {
    pub policy: Policy,
    pub messages: MessagesConfig,
    /// `payments.link_template` for the static provider (`{npp}`,
    /// `{reference}`); None when links come from a gateway.
    pub link_template: Option<String>,
    pub default_tz: Tz,
}

impl ContextSource {
    pub fn from_config(config: &Config) -> Result<Self> {
        Ok(Self {
            policy: config.policy(),
            messages: config.messages.clone(),
            link_template: (config.payments.provider == "static")
                .then(|| config.payments.link_template.clone()),
            default_tz: config.timezone(),
        })
    }
}

/// The context of one case as of `at`, or None if the case does not exist.
pub async fn load_one(
    db: &Db,
    src: &ContextSource,
    case_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<MessageContext>> {
    Ok(load_many(db, src, &[case_id], at).await?.remove(&case_id))
}

/// The contexts of many cases in a few queries (the delivery worker renders
/// a claimed batch at once).
pub async fn load_many(
    db: &Db,
    src: &ContextSource,
    case_ids: &[i64],
    at: DateTime<Utc>,
) -> Result<HashMap<i64, MessageContext>> {
    if case_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut heads = load_heads(db, src, case_ids, at).await?;
    add_bills(db, src, &mut heads).await?;
    Ok(heads.into_iter().map(|(id, h)| (id, h.ctx)).collect())
}

/// A case's context before its bills.
struct Head {
    employer_id: i64,
    opened_at: DateTime<Utc>,
    ctx: MessageContext,
    tz: Tz,
}

#[derive(sqlx::FromRow)]
struct HeadRow {
    id: i64,
    opened_at: DateTime<Utc>,
    promised_date: Option<NaiveDate>,
    employer_id: i64,
    npp: String,
    name: String,
    branch: String,
    contact_name: String,
    /// Parsed leniently: an unusable zone falls back to the default.
    timezone: String,
}

/// The cases and their employers.
async fn load_heads(
    db: &Db,
    src: &ContextSource,
    case_ids: &[i64],
    at: DateTime<Utc>,
) -> Result<HashMap<i64, Head>> {
    let mut heads: HashMap<i64, Head> = HashMap::new();
    for chunk in case_ids.chunks(rows_per_statement(db.backend(), 1)) {
        let sql = format!(
            "SELECT c.id, c.opened_at, c.promised_date, e.id AS employer_id, e.npp, e.name, e.branch, \
                    e.contact_name, e.timezone \
             FROM cases c JOIN employers e ON e.id = c.employer_id WHERE c.id IN ({})",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = db.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q
            .fetch_all_as::<HeadRow>(db)
            .await
            .context("failed to read cases to render")?
        {
            let tz: Tz = r.timezone.parse().unwrap_or(src.default_tz);
            let id = r.id;
            let link = src.link_template.as_ref().map(|t| {
                t.replace("{npp}", &r.npp)
                    .replace("{reference}", &format!("C{id}"))
            });
            heads.insert(
                id,
                Head {
                    employer_id: r.employer_id,
                    opened_at: r.opened_at,
                    tz,
                    ctx: MessageContext {
                        today: at.with_timezone(&tz).date_naive(),
                        case_id: id,
                        employer_name: r.name,
                        contact_name: Some(r.contact_name).filter(|c| !c.trim().is_empty()),
                        npp: r.npp,
                        branch: src.messages.contact_for(&r.branch).into(),
                        bills: Vec::new(),
                        payment_code: None,
                        payment_link: link,
                        promised_date: r.promised_date,
                    },
                },
            );
        }
    }
    Ok(heads)
}

#[derive(sqlx::FromRow)]
struct BillRow {
    employer_id: i64,
    #[sqlx(flatten)]
    bill: StoredBill,
}

/// Each case's bills: the unpaid overdue ones, and those settled while the
/// case ran (a thank-you lists them).
async fn add_bills(db: &Db, src: &ContextSource, heads: &mut HashMap<i64, Head>) -> Result<()> {
    let by_employer: HashMap<i64, i64> = heads.iter().map(|(c, h)| (h.employer_id, *c)).collect();
    let employer_ids: Vec<i64> = by_employer.keys().copied().collect();
    for chunk in employer_ids.chunks(rows_per_statement(db.backend(), 1)) {
        let sql = format!(
            "SELECT employer_id, {} FROM bills WHERE employer_id IN ({}) ORDER BY employer_id, period",
            StoredBill::COLUMNS,
            list_placeholders(chunk.len(), 1)
        );
        let mut q = db.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q
            .fetch_all_as::<BillRow>(db)
            .await
            .context("failed to read bills to render")?
        {
            let Some(head) = by_employer
                .get(&r.employer_id)
                .and_then(|c| heads.get_mut(c))
            else {
                continue;
            };
            let today = head.ctx.today;
            let r = r.bill;
            let in_case = match r.settled_at {
                None => r.due_date < today,
                Some(s) => s >= head.opened_at && r.due_date < today,
            };
            if !in_case {
                continue;
            }
            let line = r.line(&src.policy, head.tz, today);
            // The oldest unpaid bill's kode iuran is the one to quote.
            if r.settled_at.is_none() && head.ctx.payment_code.is_none() {
                head.ctx.payment_code = r.payment_code;
            }
            head.ctx.bills.push(line);
        }
    }
    Ok(())
}
