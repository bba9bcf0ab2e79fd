//! What each intent does to a case: events, status, employer flags and the
//! reply queued for the delivery worker. Everything happens in the caller's
//! transaction, together with the stored inbound message.

use super::outgoing::{self, Bills, Party};
use super::Understood;
use crate::audit::AuditEntry;
use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::config::Config;
use crate::conversation::{self, Intent};
use crate::payments::{self, LinkPlan, PaymentLink, PendingLink, Provider, Superseded};
use crate::store::Tx;
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde_json::json;

/// A reply as the effects see it.
pub(crate) struct Reply<'a> {
    pub wamid: &'a str,
    pub text: Option<&'a str>,
    pub received_at: DateTime<Utc>,
    pub understood: Understood,
    /// The second request of a two-part reply: its `reply_received` is
    /// already recorded.
    pub secondary: bool,
}

/// Work an inbound message leaves for after its transaction commits: a
/// provider's network calls, which must hold no lock.
#[derive(Debug)]
pub(crate) enum AfterCommit {
    /// Make the reserved link, then send it (`finish_pending_link`).
    CreateLink(PendingLink),
    /// Retire the links a new one superseded, at the provider.
    Expire(Vec<Superseded>),
}

/// How long an unanswered "on which date?" keeps a bare date meaning a promise.
const DATE_QUESTION_DAYS: i64 = 7;

pub(crate) async fn apply(
    tx: &mut Tx,
    config: &Config,
    employer_id: i64,
    case_id: Option<i64>,
    reply: &Reply<'_>,
    now: DateTime<Utc>,
) -> Result<Option<AfterCommit>> {
    let mut party = outgoing::load_party(tx, employer_id, case_id).await?;
    let Some(mut intent) = reply.understood.intent else {
        return Ok(None);
    };
    let mut after = None;
    let mut promised_date = reply.understood.promised_date;
    let mut completes_date = false;

    // After "on which date?", a reply that only names a day ("tgl 10",
    // "jumat depan") completes the promise.
    if let (Some(c), Some(text)) = (&party.case, reply.text) {
        let asked = c
            .promise_date_asked_at
            .is_some_and(|t| reply.received_at < t + Duration::days(DATE_QUESTION_DAYS));
        let open_ended = matches!(
            intent,
            Intent::PromiseToPay | Intent::Unknown | Intent::Acknowledgement | Intent::Question
        );
        if asked && open_ended && promised_date.is_none() {
            let again =
                conversation::classify(&format!("akan bayar {text}"), reply.received_at, party.tz);
            if again.intent == Intent::PromiseToPay && again.promised_date.is_some() {
                intent = Intent::PromiseToPay;
                promised_date = again.promised_date;
                completes_date = true;
            }
        }
    }

    // Opening the 24-hour window: the employer's latest message counts.
    if let Some(c) = &mut party.case {
        tx.query(
            "UPDATE cases SET last_inbound_at = $2 \
             WHERE id = $1 AND (last_inbound_at IS NULL OR last_inbound_at < $2)",
        )
        .bind(c.id)
        .bind(reply.received_at)
        .execute(&mut *tx)
        .await
        .context("failed to record the reply time on the case")?;
        if c.last_inbound_at.is_none_or(|t| t < reply.received_at) {
            c.last_inbound_at = Some(reply.received_at);
        }
    }
    let open_case = party.case.as_ref().filter(|c| !c.resolved).map(|c| c.id);
    let mut events = Vec::new();
    let unsure = (!completes_date && !reply.secondary)
        .then(|| unsure(config, &reply.understood, intent))
        .flatten();
    if let (Some(case_id), false) = (open_case, reply.secondary) {
        events.push(NewEvent::new(
            case_id,
            now,
            EventKind::ReplyReceived,
            Actor::Employer,
            json!({
                "intent": intent.as_str(),
                "text": reply.text,
                "wamid": reply.wamid,
                "promised_date": promised_date.map(|d| d.to_string()),
                "button": reply.understood.button,
                "confidence": reply.understood.confidence,
                "also": reply.understood.also.map(Intent::as_str),
                "acted": unsure.is_none(),
            }),
        ));
    }
    // Free-form replies only inside the window, and only while the
    // employer's message is fresh (a late redelivery is not answered).
    let window =
        crate::outbox::window_open(party.case.as_ref().and_then(|c| c.last_inbound_at), now)
            && crate::outbox::window_open(Some(reply.received_at), now);
    let key = |name: &str| format!("reply:{}:{name}", reply.wamid);
    let local_today = reply.received_at.with_timezone(&party.tz).date_naive();

    // Not acting on a guess: a paid-or-will-pay doubt is asked back inside
    // the window (the buttons answer it); any other doubt, or one outside
    // the window, goes to an officer with the two best guesses.
    if let (Some((first, second)), Some(case_id)) = (unsure, open_case) {
        let paid_or_promise = [Some(first), second]
            .iter()
            .flatten()
            .all(|i| matches!(i, Intent::PromiseToPay | Intent::AlreadyPaid));
        case_log::record(tx, &events).await?;
        events.clear();
        if paid_or_promise && window {
            let ctx = outgoing::message_context(tx, config, &party, Bills::Unpaid, now).await?;
            outgoing::queue(
                tx,
                config,
                &party,
                &ctx,
                "clarify_paid_or_promise",
                key("clarify_paid_or_promise"),
                Some(reply.wamid),
                window,
                now,
            )
            .await?;
        } else {
            let guesses: Vec<&str> = [Some(first), second]
                .into_iter()
                .flatten()
                .map(Intent::as_str)
                .collect();
            case_log::record(
                tx,
                &[event(
                    case_id,
                    now,
                    EventKind::OfficerRequested,
                    json!({"reason": "unsure_reply", "guesses": guesses,
                           "confidence": reply.understood.confidence, "wamid": reply.wamid}),
                )],
            )
            .await?;
            flag_officer(tx, case_id, "unsure_reply", now).await?;
            holding_reply(
                tx,
                config,
                &party,
                &key("officer_will_contact"),
                reply.wamid,
                window,
                now,
            )
            .await?;
        }
        return Ok(None);
    }

    match (intent, open_case) {
        (Intent::OptOut, _) => {
            let changed =
                flag_employer(tx, employer_id, EmployerFlag::OptedOut, reply.wamid, now).await?;
            if changed {
                outgoing::cancel_queued(tx, employer_id, false, "opted_out", now).await?;
                if let Some(case_id) = open_case {
                    events.push(event(
                        case_id,
                        now,
                        EventKind::OptedOut,
                        json!({"wamid": reply.wamid}),
                    ));
                    flag_officer(tx, case_id, "opted_out", now).await?;
                }
                // The number opted out, not only this employer: any other
                // employer on the same number is silenced too.
                if let Some(wa_id) = party.wa_id.clone() {
                    opt_out_others(tx, &wa_id, employer_id, reply.wamid, now, &mut events).await?;
                }
                // The one confirmation; every later message is refused by
                // `outgoing::queue` because the employer is now opted out.
                party.opted_out = true;
                let ctx = outgoing::message_context(tx, config, &party, Bills::Unpaid, now).await?;
                case_log::record(tx, &events).await?;
                events.clear();
                outgoing::queue(
                    tx,
                    config,
                    &party,
                    &ctx,
                    "opt_out_confirmed",
                    key("opt_out_confirmed"),
                    Some(reply.wamid),
                    window,
                    now,
                )
                .await?;
            }
        }
        (Intent::WrongNumber, _) => {
            let changed = flag_employer(
                tx,
                employer_id,
                EmployerFlag::ContactInvalid,
                reply.wamid,
                now,
            )
            .await?;
            if changed {
                outgoing::cancel_queued(tx, employer_id, false, "wrong_number", now).await?;
            }
            if let Some(case_id) = open_case {
                events.push(event(
                    case_id,
                    now,
                    EventKind::WrongNumber,
                    json!({"wamid": reply.wamid}),
                ));
                flag_officer(tx, case_id, "wrong_number", now).await?;
            }
            // Whoever answered is not the employer: nothing is sent back.
        }
        (_, None) => {
            // No open case: the reply is stored with its employer, and there
            // is nothing owed to act on.
        }
        (Intent::PromiseToPay, Some(case_id)) => match promised_date {
            Some(d) if (d - local_today).num_days() > config.policy.promise_horizon_days => {
                events.push(event(
                    case_id,
                    now,
                    EventKind::OfficerRequested,
                    json!({"reason": "promise_beyond_horizon", "promised_date": d.to_string(),
                           "horizon_days": config.policy.promise_horizon_days}),
                ));
                flag_officer(tx, case_id, "promise_beyond_horizon", now).await?;
                case_log::record(tx, &events).await?;
                events.clear();
                holding_reply(
                    tx,
                    config,
                    &party,
                    &key("officer_will_contact"),
                    reply.wamid,
                    window,
                    now,
                )
                .await?;
            }
            Some(d) => {
                record_promise(tx, case_id, d, now).await?;
                events.push(event(
                    case_id,
                    now,
                    EventKind::PromiseToPay,
                    json!({"promised_date": d.to_string(), "wamid": reply.wamid}),
                ));
                outgoing::cancel_queued(tx, employer_id, true, "promised", now).await?;
                let mut ctx =
                    outgoing::message_context(tx, config, &party, Bills::Unpaid, now).await?;
                ctx.promised_date = Some(d);
                case_log::record(tx, &events).await?;
                events.clear();
                outgoing::queue(
                    tx,
                    config,
                    &party,
                    &ctx,
                    "promise_confirmed",
                    key("promise_confirmed"),
                    Some(reply.wamid),
                    window,
                    now,
                )
                .await?;
            }
            None => {
                // No promise_to_pay event until a date is given.
                tx.query(
                    "UPDATE cases SET promise_date_asked_at = $2, updated_at = $2 WHERE id = $1",
                )
                .bind(case_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("failed to note the date question")?;
                let ctx = outgoing::message_context(tx, config, &party, Bills::Unpaid, now).await?;
                case_log::record(tx, &events).await?;
                events.clear();
                outgoing::queue(
                    tx,
                    config,
                    &party,
                    &ctx,
                    "ask_promise_date",
                    key("ask_promise_date"),
                    Some(reply.wamid),
                    window,
                    now,
                )
                .await?;
            }
        },
        (Intent::AlreadyPaid, Some(case_id)) => {
            let calendar = config.calendar();
            let last_day =
                calendar.add_working_days(local_today, config.policy.paid_claim_pause_working_days);
            let until = local_midnight_after(last_day, party.tz);
            tx.query(
                "UPDATE cases SET paused_until = $2, payment_claimed_at = $3, quiet_reason = 'paused', \
                        next_action_at = $2, updated_at = $3 \
                 WHERE id = $1 AND (paused_until IS NULL OR paused_until < $2)",
            )
            .bind(case_id)
            .bind(until)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("failed to pause the case for a payment claim")?;
            events.push(event(
                case_id,
                now,
                EventKind::PaymentClaimed,
                json!({"paused_until": until, "wamid": reply.wamid}),
            ));
            outgoing::cancel_queued(tx, employer_id, true, "payment_claimed", now).await?;
            let ctx = outgoing::message_context(tx, config, &party, Bills::Unpaid, now).await?;
            case_log::record(tx, &events).await?;
            events.clear();
            outgoing::queue(
                tx,
                config,
                &party,
                &ctx,
                "payment_claim_ack",
                key("payment_claim_ack"),
                Some(reply.wamid),
                window,
                now,
            )
            .await?;
        }
        (Intent::PaymentLinkRequest, Some(case_id)) => {
            let plan = match Provider::from_config(config) {
                Ok(provider) => Ok(payments::plan_link(tx, config, &provider, case_id, now).await?),
                Err(e) => Err(e),
            };
            match plan {
                Ok(LinkPlan::Nothing) => {
                    // Nothing owed right now: the breakdown says so.
                    let ctx =
                        outgoing::message_context(tx, config, &party, Bills::Unpaid, now).await?;
                    case_log::record(tx, &events).await?;
                    events.clear();
                    outgoing::queue(
                        tx,
                        config,
                        &party,
                        &ctx,
                        "amount_breakdown",
                        key("amount_breakdown"),
                        Some(reply.wamid),
                        window,
                        now,
                    )
                    .await?;
                }
                Ok(LinkPlan::Create(pending)) => after = Some(AfterCommit::CreateLink(pending)),
                Ok(LinkPlan::Ready(link)) => {
                    case_log::record(tx, &events).await?;
                    events.clear();
                    let superseded = link.superseded.clone();
                    link_made(tx, config, employer_id, case_id, reply, Ok(link), now).await?;
                    after = Some(AfterCommit::Expire(superseded));
                }
                Err(e) => {
                    case_log::record(tx, &events).await?;
                    events.clear();
                    link_made(tx, config, employer_id, case_id, reply, Err(e), now).await?;
                }
            }
        }
        (Intent::AmountInquiry, Some(_)) => {
            let ctx = outgoing::message_context(tx, config, &party, Bills::Unpaid, now).await?;
            case_log::record(tx, &events).await?;
            events.clear();
            outgoing::queue(
                tx,
                config,
                &party,
                &ctx,
                "amount_breakdown",
                key("amount_breakdown"),
                Some(reply.wamid),
                window,
                now,
            )
            .await?;
        }
        (Intent::Acknowledgement, Some(_)) => {}
        (
            Intent::InstallmentRequest
            | Intent::Dispute
            | Intent::OfficerRequest
            | Intent::Complaint
            | Intent::Question
            | Intent::Unknown,
            Some(case_id),
        ) => {
            let (kind, reason) = match intent {
                Intent::InstallmentRequest => {
                    (EventKind::InstallmentRequested, "installment_requested")
                }
                Intent::Dispute => (EventKind::DisputeRaised, "dispute_raised"),
                Intent::OfficerRequest => (EventKind::OfficerRequested, "officer_requested"),
                Intent::Complaint => (EventKind::OfficerRequested, "complaint"),
                Intent::Question => (EventKind::OfficerRequested, "question"),
                _ => (EventKind::OfficerRequested, "unrecognised_reply"),
            };
            events.push(event(
                case_id,
                now,
                kind,
                json!({"reason": reason, "wamid": reply.wamid}),
            ));
            flag_officer(tx, case_id, reason, now).await?;
            case_log::record(tx, &events).await?;
            events.clear();
            holding_reply(
                tx,
                config,
                &party,
                &key("officer_will_contact"),
                reply.wamid,
                window,
                now,
            )
            .await?;
        }
    }
    case_log::record(tx, &events).await?;
    // The second request of a two-part reply ("sudah bayar september, yg
    // oktober tgl 30"): its own effect, after the first.
    if let (Some(second), false) = (reply.understood.also, reply.secondary) {
        let next = Reply {
            wamid: reply.wamid,
            text: reply.text,
            received_at: reply.received_at,
            understood: Understood {
                intent: Some(second),
                promised_date: None,
                also: None,
                runner_up: None,
                ..reply.understood.clone()
            },
            secondary: true,
        };
        let second = Box::pin(apply(tx, config, employer_id, case_id, &next, now)).await?;
        after = after.or(second);
    }
    Ok(after)
}

/// Sends a payment link the case got (or says an officer will help when
/// none could be made): the `payment_link` reply and its
/// `payment_link_sent` event, naming the links it superseded.
pub(crate) async fn link_made(
    tx: &mut Tx,
    config: &Config,
    employer_id: i64,
    case_id: i64,
    reply: &Reply<'_>,
    link: Result<PaymentLink>,
    now: DateTime<Utc>,
) -> Result<()> {
    let party = outgoing::load_party(tx, employer_id, Some(case_id)).await?;
    let window =
        crate::outbox::window_open(party.case.as_ref().and_then(|c| c.last_inbound_at), now)
            && crate::outbox::window_open(Some(reply.received_at), now);
    let key = |name: &str| format!("reply:{}:{name}", reply.wamid);
    match link {
        Ok(link) => {
            let mut ctx = outgoing::message_context(tx, config, &party, Bills::Unpaid, now).await?;
            ctx.payment_link = Some(link.url.clone());
            let queued = outgoing::queue(
                tx,
                config,
                &party,
                &ctx,
                "payment_link",
                key("payment_link"),
                Some(reply.wamid),
                window,
                now,
            )
            .await?;
            // A new link is news on the case even if the reply is withheld.
            if queued.is_some() || link.created {
                let supersedes: Vec<&str> = link
                    .superseded
                    .iter()
                    .map(|s| s.reference.as_str())
                    .collect();
                case_log::record(
                    tx,
                    &[event(
                        case_id,
                        now,
                        EventKind::PaymentLinkSent,
                        json!({"reference": link.reference, "url": link.url, "amount": link.amount,
                               "expires_at": link.expires_at, "reused": !link.created,
                               "outbox_id": queued, "supersedes": supersedes}),
                    )],
                )
                .await?;
            }
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), case_id, "payment link could not be made");
            case_log::record(
                tx,
                &[event(
                    case_id,
                    now,
                    EventKind::OfficerRequested,
                    json!({"reason": "payment_link_failed"}),
                )],
            )
            .await?;
            flag_officer(tx, case_id, "payment_link_failed", now).await?;
            holding_reply(
                tx,
                config,
                &party,
                &key("officer_will_contact"),
                reply.wamid,
                window,
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// The two readings the bot will not choose between itself: a typed reply
/// below `policy.reply_min_confidence`, or one where a reading with another
/// consequence competes — promise against payment claim, opt-out against
/// complaint. Readings that change nothing (a question, a thank-you) are
/// never held back.
fn unsure(config: &Config, u: &Understood, intent: Intent) -> Option<(Intent, Option<Intent>)> {
    if u.button
        || matches!(
            intent,
            Intent::Question | Intent::Acknowledgement | Intent::Unknown
        )
    {
        return None;
    }
    let competing = |a: Intent, b: Intent| {
        let pair = |x, y| (a == x && b == y) || (a == y && b == x);
        pair(Intent::PromiseToPay, Intent::AlreadyPaid) || pair(Intent::OptOut, Intent::Complaint)
    };
    let torn = u.runner_up.is_some_and(|r| competing(intent, r));
    (torn || u.confidence < config.policy.reply_min_confidence).then_some((intent, u.runner_up))
}

/// Opts out the other employers sharing the number, each with its audit
/// row, cancelled messages and (for an open case) an event and officer flag.
async fn opt_out_others(
    tx: &mut Tx,
    wa_id: &str,
    employer_id: i64,
    wamid: &str,
    now: DateTime<Utc>,
    events: &mut Vec<NewEvent>,
) -> Result<()> {
    let others = tx
        .query(
            "UPDATE employers SET opted_out_at = $2, updated_at = $2 \
             WHERE wa_id = $1 AND id <> $3 AND opted_out_at IS NULL RETURNING id",
        )
        .bind(wa_id.to_owned())
        .bind(now)
        .bind(employer_id)
        .fetch_all(&mut *tx)
        .await
        .context("failed to opt out the number's other employers")?;
    for r in others {
        let other: i64 = r.get("id")?;
        tx.audit(
            AuditEntry::new(
                now,
                "employer",
                "employer.opt_out",
                format!("employer:{other}"),
            )
            .before(json!({"opted_out_at": null}))
            .after(json!({"opted_out_at": now, "wamid": wamid, "shared_number": true})),
        );
        outgoing::cancel_queued(tx, other, false, "opted_out", now).await?;
        let case = tx
            .query("SELECT id FROM cases WHERE employer_id = $1 AND resolved_at IS NULL")
            .bind(other)
            .fetch_optional(&mut *tx)
            .await
            .context("failed to read a sharing employer's case")?;
        if let Some(c) = case {
            let case_id: i64 = c.get("id")?;
            events.push(event(
                case_id,
                now,
                EventKind::OptedOut,
                json!({"wamid": wamid, "shared_number": true}),
            ));
            flag_officer(tx, case_id, "opted_out", now).await?;
        }
    }
    Ok(())
}

fn event(case_id: i64, at: DateTime<Utc>, kind: EventKind, data: serde_json::Value) -> NewEvent {
    let actor = match kind {
        EventKind::OfficerRequested | EventKind::PromiseBroken => Actor::System,
        _ => Actor::Employer,
    };
    NewEvent::new(case_id, at, kind, actor, data)
}

/// The case goes to an officer with `reason` as what the bot is waiting
/// for; an escalated case already is an officer's and keeps its status.
/// What an employer's reply can say about its contact.
#[derive(Clone, Copy)]
enum EmployerFlag {
    /// "STOP": no automated message to this number again.
    OptedOut,
    /// "salah nomor": the number is not the employer's.
    ContactInvalid,
}

impl EmployerFlag {
    fn column(self) -> &'static str {
        match self {
            EmployerFlag::OptedOut => "opted_out_at",
            EmployerFlag::ContactInvalid => "contact_invalid_at",
        }
    }

    fn action(self) -> &'static str {
        match self {
            EmployerFlag::OptedOut => "employer.opt_out",
            EmployerFlag::ContactInvalid => "employer.contact_invalid",
        }
    }
}

/// Sets the flag's timestamp once (a redelivered or repeated reply changes
/// nothing) and audits it. Returns whether it was newly set.
async fn flag_employer(
    tx: &mut Tx,
    employer_id: i64,
    flag: EmployerFlag,
    wamid: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let column = flag.column();
    let sql = format!(
        "UPDATE employers SET {column} = $2, updated_at = $2 WHERE id = $1 AND {column} IS NULL"
    );
    let changed = tx
        .query(&sql)
        .bind(employer_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("failed to set {column}"))?;
    if changed > 0 {
        tx.audit(
            AuditEntry::new(
                now,
                "employer",
                flag.action(),
                format!("employer:{employer_id}"),
            )
            .before(json!({ column: null }))
            .after(json!({ column: now, "wamid": wamid })),
        );
    }
    Ok(changed > 0)
}

async fn flag_officer(tx: &mut Tx, case_id: i64, reason: &str, at: DateTime<Utc>) -> Result<()> {
    let quiet = match reason {
        "opted_out" => "opted_out",
        "wrong_number" => "wrong_number",
        _ => "awaiting_officer",
    };
    // What the employer said needs a person before the bot speaks again:
    // reminding someone who disputes the bill, or asked to be called, is
    // worse than silence. Questions and unrecognised replies do not hold.
    let hold = match reason {
        "dispute_raised"
        | "complaint"
        | "installment_requested"
        | "officer_requested"
        | "promise_beyond_horizon" => Some(reason.to_owned()),
        _ => None,
    };
    tx.query(
        "UPDATE cases SET status = CASE WHEN status = 'escalated' THEN status ELSE 'needs_officer' END, \
                quiet_reason = CASE WHEN status = 'escalated' THEN quiet_reason ELSE $2 END, \
                officer_hold = COALESCE($4, officer_hold), \
                updated_at = $3 \
         WHERE id = $1 AND resolved_at IS NULL",
    )
    .bind(case_id)
    .bind(quiet)
    .bind(at)
    .bind(hold)
    .execute(&mut *tx)
    .await
    .with_context(|| format!("failed to hand the case to an officer ({reason})"))?;
    Ok(())
}

/// A dated promise: the case waits until the day (an escalated case stays
/// with its officer but the promise is noted).
async fn record_promise(tx: &mut Tx, case_id: i64, d: NaiveDate, at: DateTime<Utc>) -> Result<()> {
    tx.query(
        "UPDATE cases SET status = CASE WHEN status = 'escalated' THEN status ELSE 'promised' END, \
                promised_date = $2, promise_date_asked_at = NULL, \
                quiet_reason = CASE WHEN status = 'escalated' THEN quiet_reason ELSE 'promised' END, \
                next_action_at = NULL, updated_at = $3 \
         WHERE id = $1 AND resolved_at IS NULL",
    )
    .bind(case_id)
    .bind(d)
    .bind(at)
    .execute(&mut *tx)
    .await
    .context("failed to record the promise")?;
    Ok(())
}

/// "An officer will contact you". A chatty thread does not get it after
/// every line: `outgoing::queue` sends the same reply once per case state.
#[allow(clippy::too_many_arguments)]
async fn holding_reply(
    tx: &mut Tx,
    config: &Config,
    party: &Party,
    key: &str,
    wamid: &str,
    window: bool,
    at: DateTime<Utc>,
) -> Result<()> {
    if party.case.is_none() {
        return Ok(());
    }
    let ctx = outgoing::message_context(tx, config, party, Bills::Unpaid, at).await?;
    outgoing::queue(
        tx,
        config,
        party,
        &ctx,
        "officer_will_contact",
        key.to_owned(),
        Some(wamid),
        window,
        at,
    )
    .await?;
    Ok(())
}

/// 00:00 local time on the day after `day`, as an instant.
fn local_midnight_after(day: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let next = day.succ_opt().unwrap_or(day);
    let midnight = next.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}
