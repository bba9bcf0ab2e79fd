//! The bot's own answers: rendered from `templates/messages/` for the case
//! and queued as outbox rows for the delivery worker. Nothing here calls the
//! Cloud API.

use crate::case_log::{Actor, EventKind, NewEvent};
use crate::config::{parse_zone, Config};
use crate::domain::{Money, Period};
use crate::messages::{BillLine, Catalog, MessageContext};
use crate::store::Tx;
use crate::whatsapp::MessageContent;
use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::json;

/// The compiled catalog, checked once per process.
pub fn catalog() -> Result<&'static Catalog> {
    crate::messages::embedded().map_err(|e| anyhow!("message templates: {e}"))
}

/// An employer and (when there is one) its case, as the reply code needs them.
#[derive(Debug, Clone)]
pub struct Party {
    pub employer_id: i64,
    pub npp: String,
    pub name: String,
    pub contact_name: String,
    pub branch: String,
    pub wa_id: Option<String>,
    pub tz: Tz,
    pub opted_out: bool,
    pub contact_invalid: bool,
    pub case: Option<CaseRow>,
}

#[derive(Debug, Clone)]
pub struct CaseRow {
    pub id: i64,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub resolved: bool,
    pub promised_date: Option<NaiveDate>,
    pub promise_date_asked_at: Option<DateTime<Utc>>,
    pub last_inbound_at: Option<DateTime<Utc>>,
}

const PARTY_SQL: &str =
    "SELECT e.id, e.npp, e.name, e.contact_name, e.branch, e.wa_id, e.timezone, \
            e.opted_out_at, e.contact_invalid_at, \
            c.id AS case_id, c.status, c.opened_at, c.resolved_at, c.promised_date, \
            c.promise_date_asked_at, c.last_inbound_at \
     FROM employers e LEFT JOIN cases c ON c.id = $1 AND c.employer_id = e.id \
     WHERE e.id = $2";

/// Reads an employer and, when `case_id` is given and belongs to it, the case.
pub async fn load_party(tx: &mut Tx, employer_id: i64, case_id: Option<i64>) -> Result<Party> {
    let r = tx
        .query(PARTY_SQL)
        .bind(case_id.unwrap_or(-1))
        .bind(employer_id)
        .fetch_one(&mut *tx)
        .await
        .context("failed to read the employer")?;
    let zone: String = r.get("timezone")?;
    let case = match r.get::<Option<i64>>("case_id")? {
        Some(id) => Some(CaseRow {
            id,
            status: r.get("status")?,
            opened_at: r.get("opened_at")?,
            resolved: r.get::<Option<DateTime<Utc>>>("resolved_at")?.is_some(),
            promised_date: r.get("promised_date")?,
            promise_date_asked_at: r.get("promise_date_asked_at")?,
            last_inbound_at: r.get("last_inbound_at")?,
        }),
        None => None,
    };
    let contact_name: String = r.get("contact_name")?;
    Ok(Party {
        employer_id,
        npp: r.get("npp")?,
        name: r.get("name")?,
        contact_name,
        branch: r.get("branch")?,
        wa_id: r
            .get::<Option<String>>("wa_id")?
            .filter(|w| !w.trim().is_empty()),
        tz: parse_zone(&zone).unwrap_or(chrono_tz::Asia::Jakarta),
        opted_out: r.get::<Option<DateTime<Utc>>>("opted_out_at")?.is_some(),
        contact_invalid: r
            .get::<Option<DateTime<Utc>>>("contact_invalid_at")?
            .is_some(),
        case,
    })
}

/// Which bills a message lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bills {
    /// Unpaid overdue bills (reminders, breakdowns, links).
    Unpaid,
    /// Overdue bills unpaid or settled since the case opened (a thank-you).
    SinceCaseOpened,
}

/// The render context for `party` at `at`.
pub async fn message_context(
    tx: &mut Tx,
    config: &Config,
    party: &Party,
    which: Bills,
    at: DateTime<Utc>,
) -> Result<MessageContext> {
    let today = at.with_timezone(&party.tz).date_naive();
    let since = match (which, &party.case) {
        (Bills::SinceCaseOpened, Some(c)) => Some(c.opened_at),
        _ => None,
    };
    const COLS: &str = "SELECT period, amount_minor, due_date, payment_code, late_fee_minor, paid_minor, settled_at \
                        FROM bills WHERE employer_id = $1 AND due_date < $2";
    let sql = match since {
        Some(_) => format!("{COLS} AND (settled_at IS NULL OR settled_at >= $3) ORDER BY period"),
        None => format!("{COLS} AND settled_at IS NULL ORDER BY period"),
    };
    let mut q = tx.query(&sql).bind(party.employer_id).bind(today);
    if let Some(since) = since {
        q = q.bind(since);
    }
    let rows = q
        .fetch_all(&mut *tx)
        .await
        .context("failed to read bills for a message")?;
    let policy = config.policy();
    let mut bills = Vec::with_capacity(rows.len());
    let mut payment_code = None;
    for r in rows {
        let amount = Money::from_minor(r.get("amount_minor")?);
        let paid = Money::from_minor(r.get("paid_minor")?);
        let due_date: NaiveDate = r.get("due_date")?;
        let settled_at: Option<DateTime<Utc>> = r.get("settled_at")?;
        let fee_until = settled_at
            .map(|s| s.with_timezone(&party.tz).date_naive())
            .unwrap_or(today);
        let (late_fee, late_fee_estimated) = match r.get::<Option<i64>>("late_fee_minor")? {
            Some(f) => (Money::from_minor(f), false),
            None => (
                policy.late_fee(amount.saturating_sub(paid), due_date, fee_until),
                true,
            ),
        };
        let period: String = r.get("period")?;
        if payment_code.is_none() && settled_at.is_none() {
            payment_code = r.get::<Option<String>>("payment_code")?;
        }
        bills.push(BillLine {
            period: Period::parse(&period).map_err(|e| anyhow!("bill period: {e}"))?,
            amount,
            late_fee,
            late_fee_estimated,
            due_date,
            paid,
        });
    }
    let contact_name = party.contact_name.trim();
    Ok(MessageContext {
        today,
        case_id: party.case.as_ref().map_or(0, |c| c.id),
        employer_name: party.name.clone(),
        contact_name: (!contact_name.is_empty()).then(|| contact_name.to_owned()),
        npp: party.npp.clone(),
        branch: config.messages.contact_for(&party.branch).into(),
        bills,
        payment_code,
        payment_link: None,
        promised_date: None,
    })
}

/// Free-form messages are allowed within 24 hours of the employer's last
/// message; after that only approved templates.
pub fn window_open(last_inbound_at: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    last_inbound_at.is_some_and(|t| at < t + Duration::hours(24))
}

/// Queues message `name` for the party, once per `key`. Inside the 24-hour
/// window it is free-form (`interactive` when the message has 1–3 buttons,
/// else `text`); outside, the approved `template`. Nothing goes to an
/// opted-out or invalid number, except the opt-out confirmation itself.
///
/// An automated reply to the employer (a `reply:` key) is also bounded
/// here, for every intent alike: the same reply at most once per case
/// state, and at most `policy.replies_per_day` replies to one employer in
/// 24 hours. A withheld reply is kept as a `skipped` row with its reason
/// and a `message_skipped` event, so an officer sees why the bot was quiet.
/// Returns the outbox id when a row was queued.
#[allow(clippy::too_many_arguments)]
pub async fn queue(
    tx: &mut Tx,
    config: &Config,
    party: &Party,
    ctx: &MessageContext,
    name: &str,
    key: String,
    in_reply_to: Option<&str>,
    window: bool,
    at: DateTime<Utc>,
) -> Result<Option<i64>> {
    let Some(wa_id) = party.wa_id.clone() else {
        return Ok(None);
    };
    if party.contact_invalid || (party.opted_out && name != "opt_out_confirmed") {
        return Ok(None);
    }
    let catalog = catalog()?;
    let buttons = catalog.get(name).map_or(0, |d| d.whatsapp.buttons.len());
    let (kind, content) = if !window {
        (
            "template",
            MessageContent::template(catalog.whatsapp_template(
                name,
                ctx,
                &config.whatsapp.template_language,
            )?),
        )
    } else if (1..=3).contains(&buttons) && ctx.case_id > 0 {
        (
            "interactive",
            MessageContent::interactive(catalog.interactive(name, ctx)?),
        )
    } else {
        (
            "text",
            MessageContent::text(catalog.render_text(name, ctx)?),
        )
    };
    let case_id = party.case.as_ref().map(|c| c.id);
    let body = json!({
        "case_id": case_id,
        "in_reply_to": in_reply_to,
        "content": content,
    });
    let at = crate::time::truncate(at);
    // The opt-out confirmation is exempt: it goes once anyway, and whoever
    // said STOP must hear that it worked.
    let automated = key.starts_with("reply:") && name != "opt_out_confirmed";
    let (reply_state, withheld) = if automated {
        let state = reply_state(tx, party, ctx).await?;
        let why = withheld(tx, config, party.employer_id, name, &state, at).await?;
        (Some(state), why)
    } else {
        (None, None)
    };
    let row = tx
        .query(
            "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, wa_id, body, state, due_at, created_at, updated_at, last_error, reply_state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9, $10, $11) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(case_id)
        .bind(party.employer_id)
        .bind(key)
        .bind(name.to_owned())
        .bind(kind)
        .bind(wa_id)
        .bind(body.to_string())
        .bind(if withheld.is_some() { "skipped" } else { "queued" })
        .bind(at)
        .bind(withheld)
        .bind(reply_state)
        .fetch_optional(&mut *tx)
        .await
        .context("failed to queue a reply")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: i64 = row.get("id")?;
    if let Some(case_id) = case_id {
        let event = match withheld {
            Some(reason) => NewEvent::new(
                case_id,
                at,
                EventKind::MessageSkipped,
                Actor::System,
                json!({"outbox_id": id, "message": name, "reason": reason}),
            ),
            None => NewEvent::new(
                case_id,
                at,
                EventKind::MessageQueued,
                Actor::System,
                json!({
                    "outbox_id": id,
                    "message": name,
                    "kind": kind,
                    "due_at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }),
            ),
        };
        crate::case_log::record(tx, &[event]).await?;
    }
    Ok(withheld.is_none().then_some(id))
}

/// What the employer would be told, and about which case state: the same
/// reply in the same state says nothing new. The amount owed and the link
/// are part of it, so a breakdown after a payment or a new link is news;
/// why an officer holds the case is not (the employer hears the same
/// "an officer will contact you" whatever the reason).
async fn reply_state(tx: &mut Tx, party: &Party, ctx: &MessageContext) -> Result<String> {
    let owed: i64 = ctx
        .bills
        .iter()
        .map(|b| b.amount.saturating_sub(b.paid).minor())
        .sum();
    // Read afresh: the reply's own effects may have just changed the case.
    let case = match party.case.as_ref() {
        Some(c) => tx
            .query(
                "SELECT status, stage, quiet_reason, promised_date, paused_until \
                 FROM cases WHERE id = $1",
            )
            .bind(c.id)
            .fetch_optional(&mut *tx)
            .await
            .context("failed to read the case state for a reply")?,
        None => None,
    };
    let case_state = match case {
        Some(r) => json!([
            party.case.as_ref().map(|c| c.id),
            r.get::<String>("status")?,
            r.get::<String>("stage")?,
            r.get::<Option<String>>("quiet_reason")?,
            r.get::<Option<NaiveDate>>("promised_date")?,
            r.get::<Option<DateTime<Utc>>>("paused_until")?,
        ]),
        None => json!(null),
    };
    Ok(json!([case_state, owed, ctx.payment_link, ctx.promised_date]).to_string())
}

/// Why an automated reply in `state` is withheld, if it is.
async fn withheld(
    tx: &mut Tx,
    config: &Config,
    employer_id: i64,
    name: &str,
    state: &str,
    at: DateTime<Utc>,
) -> Result<Option<&'static str>> {
    // Replies to one employer are decided one at a time (a row lock on
    // PostgreSQL; SQLite has one writer), so concurrent messages cannot
    // both pass the checks below.
    tx.query("UPDATE employers SET updated_at = updated_at WHERE id = $1")
        .bind(employer_id)
        .execute(&mut *tx)
        .await
        .context("failed to take the employer's reply lock")?;
    let same = tx
        .query(
            "SELECT 1 AS one FROM outbox WHERE employer_id = $1 AND message = $2 AND reply_state = $3 \
               AND state NOT IN ('cancelled', 'skipped', 'failed') LIMIT 1",
        )
        .bind(employer_id)
        .bind(name.to_owned())
        .bind(state.to_owned())
        .fetch_optional(&mut *tx)
        .await
        .context("failed to look for the same reply")?;
    if same.is_some() {
        return Ok(Some("reply_already_sent"));
    }
    let sent: i64 = tx
        .query(
            "SELECT COUNT(*) AS n FROM outbox WHERE employer_id = $1 AND due_at > $2 \
               AND reply_state IS NOT NULL AND state NOT IN ('cancelled', 'skipped', 'failed')",
        )
        .bind(employer_id)
        .bind(at - Duration::hours(24))
        .fetch_one(&mut *tx)
        .await
        .context("failed to count today's replies")?
        .get("n")?;
    if sent >= i64::from(config.policy.replies_per_day) {
        return Ok(Some("daily_reply_cap"));
    }
    Ok(None)
}

/// Cancels the employer's queued messages (all of them, or only the
/// scan's stage reminders), each with a `message_skipped` event saying why.
pub async fn cancel_queued(
    tx: &mut Tx,
    employer_id: i64,
    reminders_only: bool,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let sql = if reminders_only {
        "UPDATE outbox SET state = 'cancelled', updated_at = $2 \
         WHERE employer_id = $1 AND state = 'queued' AND idempotency_key LIKE 'case:%:stage:%' \
         RETURNING id, case_id, message"
    } else {
        "UPDATE outbox SET state = 'cancelled', updated_at = $2 \
         WHERE employer_id = $1 AND state = 'queued' RETURNING id, case_id, message"
    };
    let at = crate::time::truncate(at);
    let rows = tx
        .query(sql)
        .bind(employer_id)
        .bind(at)
        .fetch_all(&mut *tx)
        .await
        .context("failed to cancel queued messages")?;
    let mut events = Vec::new();
    for r in rows {
        if let Some(case_id) = r.get::<Option<i64>>("case_id")? {
            events.push(NewEvent::new(
                case_id,
                at,
                EventKind::MessageSkipped,
                Actor::System,
                json!({"outbox_id": r.get::<i64>("id")?, "message": r.get::<String>("message")?, "reason": reason}),
            ));
        }
    }
    crate::case_log::record(tx, &events).await
}
