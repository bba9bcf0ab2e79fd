//! The bot's own answers: rendered from `templates/messages/` for the case
//! and queued as outbox rows for the delivery worker. Nothing here calls the
//! Cloud API.

use crate::case_log::{Actor, EventKind, NewEvent};
use crate::config::Config;
use crate::messages::{Catalog, MessageContext, StoredBill};
use crate::outbox::{self, NewMessage};
use crate::store::{Tx, Zone};
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

#[derive(sqlx::FromRow)]
struct PartyRow {
    npp: String,
    name: String,
    contact_name: String,
    branch: String,
    wa_id: Option<String>,
    timezone: Zone,
    opted_out_at: Option<DateTime<Utc>>,
    contact_invalid_at: Option<DateTime<Utc>>,
    case_id: Option<i64>,
    status: Option<String>,
    opened_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    promised_date: Option<NaiveDate>,
    promise_date_asked_at: Option<DateTime<Utc>>,
    last_inbound_at: Option<DateTime<Utc>>,
}

/// Reads an employer and, when `case_id` is given and belongs to it, the case.
pub async fn load_party(tx: &mut Tx, employer_id: i64, case_id: Option<i64>) -> Result<Party> {
    let r: PartyRow = tx
        .query(PARTY_SQL)
        .bind(case_id.unwrap_or(-1))
        .bind(employer_id)
        .fetch_one_as(&mut *tx)
        .await
        .context("failed to read the employer")?;
    let case = match r.case_id {
        Some(id) => Some(CaseRow {
            id,
            status: r.status.context("a case without a status")?,
            opened_at: r.opened_at.context("a case without an opening time")?,
            resolved: r.resolved_at.is_some(),
            promised_date: r.promised_date,
            promise_date_asked_at: r.promise_date_asked_at,
            last_inbound_at: r.last_inbound_at,
        }),
        None => None,
    };
    Ok(Party {
        employer_id,
        npp: r.npp,
        name: r.name,
        contact_name: r.contact_name,
        branch: r.branch,
        wa_id: r.wa_id.filter(|w| !w.trim().is_empty()),
        tz: r.timezone.0,
        opted_out: r.opted_out_at.is_some(),
        contact_invalid: r.contact_invalid_at.is_some(),
        case,
    })
}

/// Which bills a message lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bills {
    /// Unpaid overdue bills (reminders, breakdowns, links).
    Unpaid,
    /// Overdue bills unpaid, or settled or paid by a payment recorded since
    /// the case opened (a thank-you).
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
    let cols = format!(
        "SELECT {} FROM bills WHERE employer_id = $1 AND due_date < $2",
        StoredBill::COLUMNS
    );
    let sql = match since {
        // A payment recorded since the case opened counts whenever it was
        // made: bank files and the API carry the day of the transfer,
        // which may precede the scan that opened the case.
        Some(_) => format!(
            "{cols} AND (settled_at IS NULL OR settled_at >= $3 OR EXISTS (\
                 SELECT 1 FROM payments p WHERE p.employer_id = bills.employer_id \
                 AND p.period = bills.period AND p.created_at >= $3)) ORDER BY period"
        ),
        None => format!("{cols} AND settled_at IS NULL ORDER BY period"),
    };
    let mut q = tx.query(&sql).bind(party.employer_id).bind(today);
    if let Some(since) = since {
        q = q.bind(since);
    }
    let rows: Vec<StoredBill> = q
        .fetch_all_as(&mut *tx)
        .await
        .context("failed to read bills for a message")?;
    let policy = config.policy();
    let bills = rows
        .iter()
        .map(|r| r.line(&policy, party.tz, today))
        .collect();
    // The oldest unpaid bill's kode iuran is the one to quote.
    let payment_code = rows
        .into_iter()
        .filter(|r| r.settled_at.is_none())
        .find_map(|r| r.payment_code);
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
    let text = crate::outbox::employer_text(catalog, &content);
    let message = NewMessage {
        withheld: withheld.map(str::to_owned),
        reply_state,
        ..NewMessage::new(party.employer_id, key, name, kind, body.to_string(), at)
            .case(case_id)
            .to(Some(wa_id))
            .text(text)
    };
    let Some(id) = outbox::enqueue(tx, &message, at)
        .await
        .context("failed to queue a reply")?
    else {
        return Ok(None);
    };
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
    #[derive(sqlx::FromRow)]
    struct CaseState {
        status: String,
        stage: String,
        quiet_reason: Option<String>,
        promised_date: Option<NaiveDate>,
        paused_until: Option<DateTime<Utc>>,
    }
    let case: Option<CaseState> = match party.case.as_ref() {
        Some(c) => tx
            .query(
                "SELECT status, stage, quiet_reason, promised_date, paused_until \
                 FROM cases WHERE id = $1",
            )
            .bind(c.id)
            .fetch_optional_as(&mut *tx)
            .await
            .context("failed to read the case state for a reply")?,
        None => None,
    };
    let case_state = match case {
        Some(r) => json!([
            party.case.as_ref().map(|c| c.id),
            r.status,
            r.stage,
            r.quiet_reason,
            r.promised_date,
            r.paused_until,
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
    if outbox::has_reply(tx, employer_id, name, state).await? {
        return Ok(Some("reply_already_sent"));
    }
    let sent = outbox::replies_since(tx, employer_id, at - Duration::hours(24)).await?;
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
    let which = if reminders_only {
        outbox::Which::Reminders
    } else {
        outbox::Which::All
    };
    let at = crate::time::truncate(at);
    let rows = outbox::cancel_for_employer(tx, employer_id, which, at).await?;
    let mut events = Vec::new();
    for r in rows {
        if let Some(case_id) = r.case_id {
            events.push(NewEvent::new(
                case_id,
                at,
                EventKind::MessageSkipped,
                Actor::System,
                json!({"outbox_id": r.id, "message": r.message, "reason": reason}),
            ));
        }
    }
    crate::case_log::record(tx, &events).await
}

/// The `payment_thanks` message to an employer whose payment resolved its
/// case, queued after the resolution (which cancels the case's queued
/// rows). Every payment path calls this one — a gateway callback, a CSV
/// import, the API — and its key makes it once per case.
pub async fn thank_for_payment(
    tx: &mut Tx,
    config: &Config,
    employer_id: i64,
    case_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let party = load_party(tx, employer_id, Some(case_id)).await?;
    let ctx = message_context(tx, config, &party, Bills::SinceCaseOpened, now).await?;
    if ctx.bills.is_empty() {
        // Nothing to name as paid; the payment itself must still be
        // recorded, so this thanks nobody rather than failing its write.
        tracing::warn!(case_id, "a paid case has no bills to thank for");
        return Ok(());
    }
    let window =
        crate::outbox::window_open(party.case.as_ref().and_then(|c| c.last_inbound_at), now);
    queue(
        tx,
        config,
        &party,
        &ctx,
        "payment_thanks",
        format!("case:{case_id}:payment_thanks"),
        None,
        window,
        now,
    )
    .await?;
    Ok(())
}
