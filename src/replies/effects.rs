//! What each intent does to a case: events, status, employer flags and the
//! reply queued for the delivery worker. Everything happens in the caller's
//! transaction, together with the stored inbound message.

use super::outgoing::{self, Bills, Party};
use super::Understood;
use crate::audit::AuditEntry;
use crate::case_log::{self, Actor, EventKind, NewEvent};
use crate::config::Config;
use crate::conversation::{self, Intent};
use crate::messages::MessageContext;
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

/// Acts on one reply (and then on the second request of a two-part one).
pub(crate) async fn apply(
    tx: &mut Tx,
    config: &Config,
    employer_id: i64,
    case_id: Option<i64>,
    reply: &Reply<'_>,
    now: DateTime<Utc>,
) -> Result<Option<AfterCommit>> {
    let mut party = outgoing::load_party(tx, employer_id, case_id).await?;
    let Some(intent) = reply.understood.intent else {
        return Ok(None);
    };
    let reading = Reading::of(&party, reply, intent);
    note_reply_time(tx, &mut party, reply).await?;
    let mut turn = Turn::new(config, employer_id, reply, party, now);
    let unsure = (!reading.completes_date && !reply.secondary)
        .then(|| unsure(config, &reply.understood, reading.intent))
        .flatten();
    turn.reply_received(&reading, unsure.is_none());
    if let (Some(guesses), Some(case_id)) = (unsure, turn.open_case) {
        turn.hold_back(tx, case_id, guesses).await?;
        return Ok(None);
    }
    let mut after = turn.act(tx, &reading).await?;
    turn.flush(tx).await?;
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

/// What a reply is taken to say, once its context is known.
struct Reading {
    intent: Intent,
    promised_date: Option<NaiveDate>,
    /// A bare day answering "on which date?": a promise, never held back.
    completes_date: bool,
}

impl Reading {
    /// After "on which date?", a reply that only names a day ("tgl 10",
    /// "jumat depan") completes the promise.
    fn of(party: &Party, reply: &Reply<'_>, intent: Intent) -> Reading {
        let plain = Reading {
            intent,
            promised_date: reply.understood.promised_date,
            completes_date: false,
        };
        let (Some(c), Some(text)) = (&party.case, reply.text) else {
            return plain;
        };
        let asked = c
            .promise_date_asked_at
            .is_some_and(|t| reply.received_at < t + Duration::days(DATE_QUESTION_DAYS));
        let open_ended = matches!(
            intent,
            Intent::PromiseToPay | Intent::Unknown | Intent::Acknowledgement | Intent::Question
        );
        if !(asked && open_ended && plain.promised_date.is_none()) {
            return plain;
        }
        let again =
            conversation::classify(&format!("akan bayar {text}"), reply.received_at, party.tz);
        if again.intent == Intent::PromiseToPay && again.promised_date.is_some() {
            Reading {
                intent: Intent::PromiseToPay,
                promised_date: again.promised_date,
                completes_date: true,
            }
        } else {
            plain
        }
    }
}

/// Opening the 24-hour window: the employer's latest message counts.
async fn note_reply_time(tx: &mut Tx, party: &mut Party, reply: &Reply<'_>) -> Result<()> {
    let Some(c) = &mut party.case else {
        return Ok(());
    };
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
    Ok(())
}

/// One reply being acted on: what its steps share besides the transaction.
struct Turn<'a> {
    config: &'a Config,
    employer_id: i64,
    reply: &'a Reply<'a>,
    party: Party,
    /// The employer's unresolved case, if any.
    open_case: Option<i64>,
    /// Free-form replies only inside the window, and only while the
    /// employer's message is fresh (a late redelivery is not answered).
    window: bool,
    local_today: NaiveDate,
    now: DateTime<Utc>,
    /// Case events not yet written: written before each answer is queued,
    /// so the case log reads in the order things happened.
    events: Vec<NewEvent>,
    /// Set when an officer's correction applies the reading: nothing is
    /// said to the employer (the answers are listed in `withheld`), and the
    /// events stay pending for the caller to write after its own.
    officer: Option<Actor>,
    withheld: Vec<String>,
}

impl<'a> Turn<'a> {
    fn new(
        config: &'a Config,
        employer_id: i64,
        reply: &'a Reply<'a>,
        party: Party,
        now: DateTime<Utc>,
    ) -> Turn<'a> {
        let window =
            crate::outbox::window_open(party.case.as_ref().and_then(|c| c.last_inbound_at), now)
                && crate::outbox::window_open(Some(reply.received_at), now);
        Turn {
            config,
            employer_id,
            reply,
            open_case: party.case.as_ref().filter(|c| !c.resolved).map(|c| c.id),
            window,
            local_today: reply.received_at.with_timezone(&party.tz).date_naive(),
            party,
            now,
            events: Vec::new(),
            officer: None,
            withheld: Vec::new(),
        }
    }

    fn wamid(&self) -> &'a str {
        self.reply.wamid
    }

    fn push(&mut self, case_id: i64, kind: EventKind, data: serde_json::Value) {
        self.events.push(event(case_id, self.now, kind, data));
    }

    async fn flush(&mut self, tx: &mut Tx) -> Result<()> {
        if self.officer.is_some() {
            return Ok(());
        }
        case_log::record(tx, &self.events).await?;
        self.events.clear();
        Ok(())
    }

    /// `reply_received` on the open case (once for a two-part reply).
    fn reply_received(&mut self, reading: &Reading, acted: bool) {
        let (Some(case_id), false) = (self.open_case, self.reply.secondary) else {
            return;
        };
        let u = &self.reply.understood;
        self.events.push(NewEvent::new(
            case_id,
            self.now,
            EventKind::ReplyReceived,
            Actor::Employer,
            json!({
                "intent": reading.intent.as_str(),
                "text": self.reply.text,
                "wamid": self.reply.wamid,
                "promised_date": reading.promised_date.map(|d| d.to_string()),
                "button": u.button,
                "confidence": u.confidence,
                "also": u.also.map(Intent::as_str),
                "acted": acted,
            }),
        ));
    }

    /// Queues the reply `name` for this reply's case, rendered for its
    /// unpaid bills (`edit` adds what the message names besides), after the
    /// pending events. Returns the outbox id when a row was queued.
    async fn answer(
        &mut self,
        tx: &mut Tx,
        name: &str,
        edit: impl FnOnce(&mut MessageContext),
    ) -> Result<Option<i64>> {
        if self.officer.is_some() {
            self.withheld.push(name.to_owned());
            return Ok(None);
        }
        let mut ctx =
            outgoing::message_context(tx, self.config, &self.party, Bills::Unpaid, self.now)
                .await?;
        edit(&mut ctx);
        self.flush(tx).await?;
        outgoing::queue(
            tx,
            self.config,
            &self.party,
            &ctx,
            name,
            format!("reply:{}:{name}", self.reply.wamid),
            Some(self.reply.wamid),
            self.window,
            self.now,
        )
        .await
    }

    /// "An officer will contact you". A chatty thread does not get it after
    /// every line: `outgoing::queue` sends the same reply once per case state.
    async fn holding_reply(&mut self, tx: &mut Tx) -> Result<()> {
        if self.party.case.is_some() {
            self.answer(tx, "officer_will_contact", |_| {}).await?;
        }
        Ok(())
    }

    /// The case goes to an officer: the event, the flag, the holding reply.
    async fn hand_to_officer(
        &mut self,
        tx: &mut Tx,
        case_id: i64,
        kind: EventKind,
        reason: &str,
        data: serde_json::Value,
    ) -> Result<()> {
        self.push(case_id, kind, data);
        flag_officer(tx, case_id, reason, self.now).await?;
        self.flush(tx).await?;
        self.holding_reply(tx).await
    }

    /// Not acting on a guess: a paid-or-will-pay doubt is asked back inside
    /// the window (the buttons answer it); any other doubt, or one outside
    /// the window, goes to an officer with the two best guesses.
    async fn hold_back(
        &mut self,
        tx: &mut Tx,
        case_id: i64,
        (first, second): (Intent, Option<Intent>),
    ) -> Result<()> {
        let paid_or_promise = [Some(first), second]
            .iter()
            .flatten()
            .all(|i| matches!(i, Intent::PromiseToPay | Intent::AlreadyPaid));
        if paid_or_promise && self.window {
            self.answer(tx, "clarify_paid_or_promise", |_| {}).await?;
            return Ok(());
        }
        let guesses: Vec<&str> = [Some(first), second]
            .into_iter()
            .flatten()
            .map(Intent::as_str)
            .collect();
        let data = json!({"reason": "unsure_reply", "guesses": guesses,
                          "confidence": self.reply.understood.confidence, "wamid": self.wamid()});
        self.hand_to_officer(
            tx,
            case_id,
            EventKind::OfficerRequested,
            "unsure_reply",
            data,
        )
        .await
    }

    /// What the intent does. The pending events are written by the caller.
    async fn act(&mut self, tx: &mut Tx, reading: &Reading) -> Result<Option<AfterCommit>> {
        match (reading.intent, self.open_case) {
            (Intent::OptOut, _) => self.opt_out(tx).await?,
            (Intent::WrongNumber, _) => self.wrong_number(tx).await?,
            (_, None) => {
                // No open case: the reply is stored with its employer, and
                // there is nothing owed to act on.
            }
            (Intent::PromiseToPay, Some(case_id)) => {
                self.promise(tx, case_id, reading.promised_date).await?
            }
            (Intent::AlreadyPaid, Some(case_id)) => self.already_paid(tx, case_id).await?,
            (Intent::PaymentLinkRequest, Some(case_id)) => {
                return self.payment_link(tx, case_id).await
            }
            (Intent::AmountInquiry, Some(_)) => {
                self.answer(tx, "amount_breakdown", |_| {}).await?;
            }
            (Intent::Acknowledgement, Some(_)) => {}
            (
                intent @ (Intent::InstallmentRequest
                | Intent::Dispute
                | Intent::OfficerRequest
                | Intent::Complaint
                | Intent::Question
                | Intent::Unknown),
                Some(case_id),
            ) => {
                let (kind, reason) = officer_reason(intent);
                let data = json!({"reason": reason, "wamid": self.wamid()});
                self.hand_to_officer(tx, case_id, kind, reason, data)
                    .await?;
            }
        }
        Ok(None)
    }

    async fn opt_out(&mut self, tx: &mut Tx) -> Result<()> {
        let (employer_id, wamid, now) = (self.employer_id, self.wamid(), self.now);
        if !flag_employer(tx, employer_id, EmployerFlag::OptedOut, wamid, now).await? {
            return Ok(());
        }
        outgoing::cancel_queued(tx, employer_id, false, "opted_out", now).await?;
        if let Some(case_id) = self.open_case {
            self.push(case_id, EventKind::OptedOut, json!({"wamid": wamid}));
            flag_officer(tx, case_id, "opted_out", now).await?;
        }
        // The number opted out, not only this employer: any other
        // employer on the same number is silenced too.
        if let Some(wa_id) = self.party.wa_id.clone() {
            opt_out_others(tx, &wa_id, employer_id, wamid, now, &mut self.events).await?;
        }
        // The one confirmation; every later message is refused by
        // `outgoing::queue` because the employer is now opted out.
        self.party.opted_out = true;
        self.answer(tx, "opt_out_confirmed", |_| {}).await?;
        Ok(())
    }

    async fn wrong_number(&mut self, tx: &mut Tx) -> Result<()> {
        let (employer_id, wamid, now) = (self.employer_id, self.wamid(), self.now);
        if flag_employer(tx, employer_id, EmployerFlag::ContactInvalid, wamid, now).await? {
            outgoing::cancel_queued(tx, employer_id, false, "wrong_number", now).await?;
        }
        if let Some(case_id) = self.open_case {
            self.push(case_id, EventKind::WrongNumber, json!({"wamid": wamid}));
            flag_officer(tx, case_id, "wrong_number", now).await?;
        }
        // Whoever answered is not the employer: nothing is sent back.
        Ok(())
    }

    async fn promise(
        &mut self,
        tx: &mut Tx,
        case_id: i64,
        promised_date: Option<NaiveDate>,
    ) -> Result<()> {
        let horizon = self.config.policy.promise_horizon_days;
        match promised_date {
            Some(d) if (d - self.local_today).num_days() > horizon => {
                let data = json!({"reason": "promise_beyond_horizon", "promised_date": d.to_string(),
                                  "horizon_days": horizon, "wamid": self.wamid()});
                self.hand_to_officer(
                    tx,
                    case_id,
                    EventKind::OfficerRequested,
                    "promise_beyond_horizon",
                    data,
                )
                .await
            }
            Some(d) => {
                record_promise(tx, case_id, d, self.now).await?;
                let data = json!({"promised_date": d.to_string(), "wamid": self.wamid()});
                self.push(case_id, EventKind::PromiseToPay, data);
                outgoing::cancel_queued(tx, self.employer_id, true, "promised", self.now).await?;
                self.answer(tx, "promise_confirmed", |ctx| ctx.promised_date = Some(d))
                    .await?;
                Ok(())
            }
            None if self.officer.is_some() => {
                // A correction asks the employer nothing; without a date
                // there is no promise to record.
                self.withheld.push("ask_promise_date".into());
                Ok(())
            }
            None => {
                // No promise_to_pay event until a date is given.
                tx.query(
                    "UPDATE cases SET promise_date_asked_at = $2, updated_at = $2 WHERE id = $1",
                )
                .bind(case_id)
                .bind(self.now)
                .execute(&mut *tx)
                .await
                .context("failed to note the date question")?;
                self.answer(tx, "ask_promise_date", |_| {}).await?;
                Ok(())
            }
        }
    }

    async fn already_paid(&mut self, tx: &mut Tx, case_id: i64) -> Result<()> {
        let (config, now) = (self.config, self.now);
        let last_day = config.calendar().add_working_days(
            self.local_today,
            config.policy.paid_claim_pause_working_days,
        );
        let until = local_midnight_after(last_day, self.party.tz);
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
        let data = json!({"paused_until": until, "wamid": self.wamid()});
        self.push(case_id, EventKind::PaymentClaimed, data);
        outgoing::cancel_queued(tx, self.employer_id, true, "payment_claimed", now).await?;
        self.answer(tx, "payment_claim_ack", |_| {}).await?;
        Ok(())
    }

    async fn payment_link(&mut self, tx: &mut Tx, case_id: i64) -> Result<Option<AfterCommit>> {
        if self.officer.is_some() {
            // A link is a message to the employer: the officer sends one
            // from the case page if it is wanted.
            self.withheld.push("payment_link".into());
            return Ok(None);
        }
        let (config, now) = (self.config, self.now);
        let plan = match Provider::from_config(config) {
            Ok(provider) => Ok(payments::plan_link(tx, config, &provider, case_id, now).await?),
            Err(e) => Err(e),
        };
        let (employer_id, reply) = (self.employer_id, self.reply);
        match plan {
            Ok(LinkPlan::Nothing) => {
                // Nothing owed right now: the breakdown says so.
                self.answer(tx, "amount_breakdown", |_| {}).await?;
                Ok(None)
            }
            Ok(LinkPlan::Create(pending)) => Ok(Some(AfterCommit::CreateLink(pending))),
            Ok(LinkPlan::Ready(link)) => {
                self.flush(tx).await?;
                let superseded = link.superseded.clone();
                link_made(tx, config, employer_id, case_id, reply, Ok(link), now).await?;
                Ok(Some(AfterCommit::Expire(superseded)))
            }
            Err(e) => {
                self.flush(tx).await?;
                link_made(tx, config, employer_id, case_id, reply, Err(e), now).await?;
                Ok(None)
            }
        }
    }
}

/// What an officer's correction applied: the right reading's events (not
/// yet written) and the answers the bot would have sent, which were not.
pub(crate) struct Corrected {
    pub events: Vec<NewEvent>,
    pub withheld: Vec<String>,
}

/// Acts on the reading an officer says is right, with the code the bot
/// acts with, but says nothing to the employer and asks nothing (no
/// clarifying question, no hold-back: the officer is sure). The events are
/// the officer's and marked `"correction": true`.
pub(crate) async fn apply_corrected(
    tx: &mut Tx,
    config: &Config,
    employer_id: i64,
    case_id: i64,
    reply: &Reply<'_>,
    officer: &Actor,
    now: DateTime<Utc>,
) -> Result<Corrected> {
    let party = outgoing::load_party(tx, employer_id, Some(case_id)).await?;
    let Some(intent) = reply.understood.intent else {
        return Ok(Corrected {
            events: Vec::new(),
            withheld: Vec::new(),
        });
    };
    let mut turn = Turn::new(config, employer_id, reply, party, now);
    turn.officer = Some(officer.clone());
    let reading = Reading {
        intent,
        promised_date: reply.understood.promised_date,
        completes_date: false,
    };
    // Nothing is left for after the commit: `payment_link` withholds.
    let _ = turn.act(tx, &reading).await?;
    let mut events = std::mem::take(&mut turn.events);
    for e in &mut events {
        e.actor = officer.clone();
        if let Some(o) = e.data.as_object_mut() {
            o.insert("correction".into(), json!(true));
        }
    }
    Ok(Corrected {
        events,
        withheld: turn.withheld,
    })
}

/// The readings whose effect is handing the case to an officer.
fn hands_to_officer(intent: Intent) -> bool {
    matches!(
        intent,
        Intent::InstallmentRequest
            | Intent::Dispute
            | Intent::OfficerRequest
            | Intent::Complaint
            | Intent::Question
            | Intent::Unknown
    )
}

/// The case columns a wrong reading may have set.
#[derive(sqlx::FromRow)]
struct Applied {
    paused_until: Option<DateTime<Utc>>,
    promised_date: Option<NaiveDate>,
    officer_hold: Option<String>,
    promise_date_asked_at: Option<DateTime<Utc>>,
}

/// Undoes what reply `wamid`, read as `old` (promise date `old_date`), did
/// to the case, where that is safe, before `new` is applied: the pause of a
/// payment claim is lifted and a promise withdrawn only while the case
/// still carries exactly what this reply set (an officer's later pause or
/// another promise is left alone), and a hold for an officer is released
/// only when the right reading needs no officer. An opt-out or a wrong
/// number is not undone by a correction: the officer records consent or a
/// new contact. Returns what was done and what was kept, as codes.
pub(crate) async fn undo(
    tx: &mut Tx,
    case_id: i64,
    wamid: &str,
    (old, old_date): (Intent, Option<NaiveDate>),
    (new, new_date): (Intent, Option<NaiveDate>),
    now: DateTime<Utc>,
) -> Result<Vec<&'static str>> {
    let events = case_log::for_case(&mut *tx, case_id).await?;
    let latest = |kinds: &[&str]| {
        events.iter().rev().find(|e| {
            kinds.contains(&e.kind.as_str())
                && e.data.get("wamid").and_then(serde_json::Value::as_str) == Some(wamid)
        })
    };
    let state: Applied = tx
        .query(
            "SELECT paused_until, promised_date, officer_hold, promise_date_asked_at              FROM cases WHERE id = $1",
        )
        .bind(case_id)
        .fetch_one_as(&mut *tx)
        .await
        .context("failed to read the case for a correction")?;
    let mut done = Vec::new();
    match old {
        Intent::AlreadyPaid if new != Intent::AlreadyPaid => {
            let until = latest(&["payment_claimed"])
                .and_then(|e| e.data.get("paused_until"))
                .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok());
            if until.is_some() && state.paused_until == until {
                tx.query(
                    "UPDATE cases SET paused_until = NULL, payment_claimed_at = NULL,                      quiet_reason = CASE WHEN quiet_reason = 'paused' THEN NULL ELSE quiet_reason END,                      next_action_at = CASE WHEN quiet_reason = 'paused' THEN $2 ELSE next_action_at END,                      updated_at = $2 WHERE id = $1",
                )
                .bind(case_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("failed to lift a payment claim's pause")?;
                done.push("pause_lifted");
            } else if state.paused_until.is_some() {
                done.push("pause_kept");
            }
        }
        Intent::PromiseToPay if new != Intent::PromiseToPay || new_date != old_date => {
            let promised = latest(&["promise_to_pay"])
                .and_then(|e| e.data.get("promised_date"))
                .and_then(serde_json::Value::as_str)
                .and_then(|d| d.parse::<NaiveDate>().ok());
            if promised.is_some() && state.promised_date == promised {
                tx.query(
                    "UPDATE cases SET promised_date = NULL,                      status = CASE WHEN status = 'promised' THEN 'open' ELSE status END,                      quiet_reason = CASE WHEN quiet_reason = 'promised' THEN NULL ELSE quiet_reason END,                      next_action_at = CASE WHEN quiet_reason = 'promised' THEN $2 ELSE next_action_at END,                      updated_at = $2 WHERE id = $1",
                )
                .bind(case_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("failed to withdraw a promise")?;
                done.push("promise_withdrawn");
            } else if promised.is_some() {
                done.push("promise_kept");
            } else if old_date.is_none() && state.promise_date_asked_at.is_some() {
                // "On which date?" was asked: a bare date must no longer
                // complete a promise the employer never made.
                tx.query(
                    "UPDATE cases SET promise_date_asked_at = NULL, updated_at = $2 WHERE id = $1",
                )
                .bind(case_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("failed to withdraw the date question")?;
                done.push("date_question_withdrawn");
            }
        }
        Intent::OptOut if new != Intent::OptOut => done.push("opt_out_kept"),
        Intent::WrongNumber if new != Intent::WrongNumber => done.push("wrong_number_kept"),
        _ => {}
    }
    if !hands_to_officer(new) {
        let reason = latest(&[
            "installment_requested",
            "dispute_raised",
            "officer_requested",
        ])
        .and_then(|e| e.data.get("reason"))
        .and_then(serde_json::Value::as_str);
        if reason.is_some() && state.officer_hold.as_deref() == reason {
            tx.query(
                "UPDATE cases SET officer_hold = NULL,                  status = CASE WHEN status = 'needs_officer' THEN 'open' ELSE status END,                  quiet_reason = CASE WHEN quiet_reason = 'awaiting_officer' THEN NULL ELSE quiet_reason END,                  next_action_at = CASE WHEN quiet_reason = 'awaiting_officer' THEN $2 ELSE next_action_at END,                  updated_at = $2 WHERE id = $1",
            )
            .bind(case_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("failed to release a hold for an officer")?;
            done.push("hold_released");
        }
    }
    Ok(done)
}

/// The event and the officer's reason for a reply only a person can answer.
fn officer_reason(intent: Intent) -> (EventKind, &'static str) {
    match intent {
        Intent::InstallmentRequest => (EventKind::InstallmentRequested, "installment_requested"),
        Intent::Dispute => (EventKind::DisputeRaised, "dispute_raised"),
        Intent::OfficerRequest => (EventKind::OfficerRequested, "officer_requested"),
        Intent::Complaint => (EventKind::OfficerRequested, "complaint"),
        Intent::Question => (EventKind::OfficerRequested, "question"),
        _ => (EventKind::OfficerRequested, "unrecognised_reply"),
    }
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
    let mut turn = Turn::new(config, employer_id, reply, party, now);
    match link {
        Ok(link) => {
            let url = link.url.clone();
            let queued = turn
                .answer(tx, "payment_link", |ctx| ctx.payment_link = Some(url))
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
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), case_id, "payment link could not be made");
            let data = json!({"reason": "payment_link_failed"});
            turn.hand_to_officer(
                tx,
                case_id,
                EventKind::OfficerRequested,
                "payment_link_failed",
                data,
            )
            .await
        }
    }
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

#[derive(sqlx::FromRow)]
struct EmployerId {
    id: i64,
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
    let others: Vec<EmployerId> = tx
        .query(
            "UPDATE employers SET opted_out_at = $2, updated_at = $2 \
             WHERE wa_id = $1 AND id <> $3 AND opted_out_at IS NULL RETURNING id",
        )
        .bind(wa_id.to_owned())
        .bind(now)
        .bind(employer_id)
        .fetch_all_as(&mut *tx)
        .await
        .context("failed to opt out the number's other employers")?;
    for EmployerId { id: other } in others {
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
        let case: Option<i64> = tx
            .query("SELECT id FROM cases WHERE employer_id = $1 AND resolved_at IS NULL")
            .bind(other)
            .fetch_optional_scalar(&mut *tx)
            .await
            .context("failed to read a sharing employer's case")?;
        if let Some(case_id) = case {
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

/// The case goes to an officer with `reason` as what the bot is waiting
/// for; an escalated case already is an officer's and keeps its status.
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

/// 00:00 local time on the day after `day`, as an instant.
fn local_midnight_after(day: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let next = day.succ_opt().unwrap_or(day);
    let midnight = next.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}
