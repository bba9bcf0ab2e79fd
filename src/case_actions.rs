//! What an officer can do to a case, from the admin UI (and later the API).
//! Each action is one transaction that changes the case and records a case
//! event (which also writes the audit row).

use crate::accounts::Principal;
use crate::audit::AuditEntry;
use crate::case_log::{self, EventKind, NewEvent};
use crate::domain::WaId;
use crate::store::{Db, Tx, Zone};
use anyhow::Result;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::json;

/// Longest note or free-text message accepted.
pub const MAX_TEXT: usize = 4000;
/// The stage reminders: one a day per employer, the bot's and an
/// officer's together.
pub const REMINDER_MESSAGES: &[&str] = &["reminder_1", "reminder_2", "reminder_3", "warning"];

/// Longest label.
pub const MAX_LABEL: usize = 40;

/// Why an officer closes a case by hand: a fixed list, so reports can
/// count them (code, what the officer reads).
pub const RESOLVE_REASONS: &[(&str, &str)] = &[
    ("paid_outside", "Sudah dibayar (bukti diterima petugas)"),
    ("installment_agreed", "Disepakati cicilan di luar bot"),
    ("employer_closed", "Perusahaan tutup atau tidak aktif"),
    ("wrong_data", "Data tagihan salah (dikoreksi di SMILE)"),
    ("handed_over", "Diserahkan ke penagihan lanjutan"),
];

/// The Indonesian text of a resolution reason code.
pub fn resolve_reason_label(code: &str) -> Option<&'static str> {
    RESOLVE_REASONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| *l)
}

#[derive(Debug, Clone)]
pub enum Action {
    Note {
        text: String,
    },
    Assign {
        assignee: Option<String>,
    },
    Pause {
        until: NaiveDate,
    },
    Resume,
    Promise {
        date: NaiveDate,
        note: String,
    },
    Dispute {
        reason: String,
    },
    /// `reason` is one of [`RESOLVE_REASONS`]; a case that still owes
    /// needs `confirmed` (the officer ticked "masih ada tunggakan").
    Resolve {
        reason: String,
        note: String,
        confirmed: bool,
    },
    Reopen {
        reason: String,
    },
    /// `key` comes from the form, so a double submit queues once.
    SendTemplate {
        message: String,
        key: String,
    },
    Label {
        label: String,
        remove: bool,
    },
    SendText {
        text: String,
    },
    Contact {
        wa_phone: String,
        contact_name: String,
        consent: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The request makes no sense for this case now (shown to the officer).
    #[error("{0}")]
    Rejected(String),
    #[error("case not found")]
    NotFound,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for ActionError {
    fn from(e: crate::store::StoreError) -> Self {
        ActionError::Failed(e.into())
    }
}

fn reject<T>(why: impl Into<String>) -> Result<T, ActionError> {
    Err(ActionError::Rejected(why.into()))
}

fn text(s: &str, what: &str) -> Result<String, ActionError> {
    let t = s.trim();
    if t.is_empty() {
        return reject(format!("{what} wajib diisi."));
    }
    if t.chars().count() > MAX_TEXT {
        return reject(format!("{what} lebih dari {MAX_TEXT} karakter."));
    }
    Ok(t.to_owned())
}

struct CaseRow {
    employer_id: i64,
    status: String,
    resolved: bool,
    arrears: crate::domain::Money,
    paused: bool,
    held: bool,
    wa_id: Option<String>,
    tz: Tz,
    opted_out: bool,
    contact_invalid: bool,
    last_inbound_at: Option<DateTime<Utc>>,
    assignee: Option<String>,
    contact_name: String,
}

/// The case and employer columns an action reads, as stored.
#[derive(sqlx::FromRow)]
struct ReadRow {
    employer_id: i64,
    status: String,
    resolved_at: Option<DateTime<Utc>>,
    arrears_minor: crate::domain::Money,
    paused_until: Option<DateTime<Utc>>,
    officer_hold: Option<String>,
    last_inbound_at: Option<DateTime<Utc>>,
    assignee: Option<String>,
    wa_id: Option<String>,
    timezone: Zone,
    opted_out_at: Option<DateTime<Utc>>,
    contact_invalid_at: Option<DateTime<Utc>>,
    contact_name: String,
}

async fn read(tx: &mut Tx, case_id: i64) -> Result<Option<CaseRow>> {
    let Some(r) = tx
        .query(
            "SELECT c.employer_id, c.status, c.resolved_at, c.arrears_minor, c.paused_until, c.officer_hold, \
                    c.last_inbound_at, c.assignee, \
                    e.wa_id, e.timezone, e.opted_out_at, e.contact_invalid_at, e.contact_name \
             FROM cases c JOIN employers e ON e.id = c.employer_id WHERE c.id = $1",
        )
        .bind(case_id)
        .fetch_optional_as::<ReadRow>(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(CaseRow {
        employer_id: r.employer_id,
        status: r.status,
        resolved: r.resolved_at.is_some(),
        arrears: r.arrears_minor,
        paused: r.paused_until.is_some(),
        held: r.officer_hold.is_some(),
        wa_id: r.wa_id,
        tz: r.timezone.0,
        opted_out: r.opted_out_at.is_some(),
        contact_invalid: r.contact_invalid_at.is_some(),
        last_inbound_at: r.last_inbound_at,
        assignee: r.assignee,
        contact_name: r.contact_name,
    }))
}

/// Start of `d` in `tz`, as UTC.
fn local_midnight(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("valid")))
}

/// Applies `action` to case `case_id` as `who`, at `now`. `templates` are
/// the message names an officer may send.
pub async fn apply(
    db: &Db,
    case_id: i64,
    who: &Principal,
    action: Action,
    templates: &[String],
    now: DateTime<Utc>,
) -> Result<(), ActionError> {
    let mut tx = db.begin().await?;
    let Some(c) = read(&mut tx, case_id).await? else {
        return Err(ActionError::NotFound);
    };
    let changes_state = !matches!(
        action,
        Action::Note { .. } | Action::Assign { .. } | Action::Reopen { .. } | Action::Label { .. }
    );
    if c.resolved && changes_state {
        return reject("Kasus sudah selesai. Buka kembali kasus ini terlebih dahulu.");
    }
    let on = On {
        case_id,
        c: &c,
        actor: who.actor(),
        now,
    };
    let ev = match action {
        Action::Note { text: t } => {
            Some(on.event(EventKind::NoteAdded, json!({"text": text(&t, "Catatan")?})))
        }
        Action::Assign { assignee } => Some(on.assign(&mut tx, assignee).await?),
        Action::Pause { until } => Some(on.pause(&mut tx, until).await?),
        Action::Resume => Some(on.resume(&mut tx).await?),
        Action::Promise { date, note } => Some(on.promise(&mut tx, date, note).await?),
        Action::Dispute { reason } => Some(on.dispute(&mut tx, reason).await?),
        Action::Resolve {
            reason,
            note,
            confirmed,
        } => Some(on.resolve(&mut tx, reason, note, confirmed).await?),
        Action::Reopen { reason } => Some(on.reopen(&mut tx, reason).await?),
        Action::Label { label, remove } => on.label(&mut tx, label, remove).await?,
        Action::SendTemplate { message, key } => {
            on.send_template(&mut tx, templates, message, key).await?
        }
        Action::SendText { text: t } => Some(on.send_text(&mut tx, t).await?),
        Action::Contact {
            wa_phone,
            contact_name,
            consent,
        } => Some(on.contact(&mut tx, wa_phone, contact_name, consent).await?),
    };
    // None: nothing changed (a label already so, a form sent twice).
    let Some(ev) = ev else {
        tx.rollback().await?;
        return Ok(());
    };
    case_log::record(&mut tx, &[ev]).await?;
    tx.commit().await?;
    Ok(())
}

/// One action on one case: what each step needs to change it and record it.
struct On<'a> {
    case_id: i64,
    c: &'a CaseRow,
    actor: case_log::Actor,
    now: DateTime<Utc>,
}

impl On<'_> {
    fn event(&self, kind: EventKind, data: serde_json::Value) -> NewEvent {
        NewEvent::new(self.case_id, self.now, kind, self.actor.clone(), data)
    }

    async fn assign(&self, tx: &mut Tx, assignee: Option<String>) -> Result<NewEvent, ActionError> {
        let assignee = assignee
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty());
        if let Some(a) = &assignee {
            let known = tx
                .query("SELECT 1 AS x FROM users WHERE username = $1 AND disabled_at IS NULL")
                .bind(a.clone())
                .fetch_optional(&mut *tx)
                .await?;
            if known.is_none() {
                return reject(format!("Pengguna \u{201c}{a}\u{201d} tidak ditemukan."));
            }
        }
        tx.query("UPDATE cases SET assignee = $2, updated_at = $3 WHERE id = $1")
            .bind(self.case_id)
            .bind(assignee.clone())
            .bind(self.now)
            .execute(&mut *tx)
            .await?;
        Ok(self.event(
            EventKind::Assigned,
            json!({"assignee": assignee, "previous": self.c.assignee}),
        ))
    }

    async fn pause(&self, tx: &mut Tx, until: NaiveDate) -> Result<NewEvent, ActionError> {
        let until_at = local_midnight(self.c.tz, until);
        if until_at <= self.now {
            return reject("Tanggal jeda harus setelah hari ini.");
        }
        tx.query(
            "UPDATE cases SET paused_until = $2, quiet_reason = 'paused', next_action_at = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(self.case_id)
        .bind(until_at)
        .bind(self.now)
        .execute(&mut *tx)
        .await?;
        Ok(self.event(EventKind::Paused, json!({"until": until})))
    }

    async fn resume(&self, tx: &mut Tx) -> Result<NewEvent, ActionError> {
        let c = self.c;
        if !c.paused && !c.held {
            return reject("Pengingat tidak sedang dijeda atau ditahan.");
        }
        tx.query(
            // Resuming also releases a hold from the employer's reply:
            // the officer has dealt with it and lets the bot speak.
            // A case held for an officer goes back to the bot as open.
            "UPDATE cases SET paused_until = NULL, officer_hold = NULL, payment_claimed_at = NULL, \
             status = CASE WHEN status = 'needs_officer' THEN 'open' ELSE status END, \
             quiet_reason = CASE WHEN quiet_reason IN ('paused', 'awaiting_officer') THEN NULL ELSE quiet_reason END, \
             next_action_at = CASE WHEN quiet_reason IN ('paused', 'awaiting_officer') THEN $2 ELSE next_action_at END, \
             updated_at = $2 WHERE id = $1",
        )
        .bind(self.case_id)
        .bind(self.now)
        .execute(&mut *tx)
        .await?;
        Ok(self.event(
            EventKind::Resumed,
            json!({"was_paused": c.paused, "was_held": c.held}),
        ))
    }

    async fn promise(
        &self,
        tx: &mut Tx,
        date: NaiveDate,
        note: String,
    ) -> Result<NewEvent, ActionError> {
        let today = self.now.with_timezone(&self.c.tz).date_naive();
        if date < today {
            return reject("Tanggal janji bayar tidak boleh sebelum hari ini.");
        }
        let next = local_midnight(self.c.tz, date + Duration::days(1));
        tx.query(
            "UPDATE cases SET status = 'promised', promised_date = $2, quiet_reason = 'promised', \
             officer_hold = NULL, next_action_at = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(self.case_id)
        .bind(date)
        .bind(next)
        .bind(self.now)
        .execute(&mut *tx)
        .await?;
        let note = note.trim().to_owned();
        if note.chars().count() > MAX_TEXT {
            return reject(format!("Keterangan lebih dari {MAX_TEXT} karakter."));
        }
        Ok(self.event(
            EventKind::PromiseToPay,
            json!({"promised_date": date, "source": "phone_call", "note": note}),
        ))
    }

    async fn dispute(&self, tx: &mut Tx, reason: String) -> Result<NewEvent, ActionError> {
        let reason = text(&reason, "Alasan")?;
        tx.query(
            "UPDATE cases SET status = 'needs_officer', quiet_reason = 'awaiting_officer', \
             officer_hold = 'dispute_raised', updated_at = $2 WHERE id = $1",
        )
        .bind(self.case_id)
        .bind(self.now)
        .execute(&mut *tx)
        .await?;
        Ok(self.event(
            EventKind::DisputeRaised,
            json!({"reason": reason, "previous_status": self.c.status}),
        ))
    }

    async fn resolve(
        &self,
        tx: &mut Tx,
        reason: String,
        note: String,
        confirmed: bool,
    ) -> Result<NewEvent, ActionError> {
        let c = self.c;
        let Some(label) = resolve_reason_label(&reason) else {
            return reject("Pilih alasan penyelesaian dari daftar.");
        };
        if !c.arrears.is_zero() && !confirmed {
            return reject(format!(
                "Kasus ini masih memiliki tunggakan {}. Centang konfirmasi untuk tetap menyelesaikannya.",
                c.arrears.to_rupiah_string()
            ));
        }
        let note = note.trim().to_owned();
        if note.chars().count() > MAX_TEXT {
            return reject(format!("Keterangan lebih dari {MAX_TEXT} karakter."));
        }
        tx.query(
            "UPDATE cases SET status = 'resolved', resolved_at = $2, resolution = $3, quiet_reason = NULL, \
             next_action_at = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(self.case_id)
        .bind(self.now)
        .bind(format!("officer: {reason}"))
        .execute(&mut *tx)
        .await?;
        // Nothing queued for a closed case may still go out.
        crate::outbox::cancel_for_case(&mut *tx, self.case_id, self.now).await?;
        Ok(self.event(
            EventKind::CaseResolved,
            json!({"reason": reason, "reason_text": label, "note": note,
                   "arrears": c.arrears, "confirmed": confirmed, "previous_status": c.status}),
        ))
    }

    async fn reopen(&self, tx: &mut Tx, reason: String) -> Result<NewEvent, ActionError> {
        if !self.c.resolved {
            return reject("Kasus ini belum selesai.");
        }
        let reason = text(&reason, "Alasan membuka kembali")?;
        // At most one open case per employer (`cases_one_open`).
        let other: Option<i64> = tx
            .query("SELECT id FROM cases WHERE employer_id = $1 AND resolved_at IS NULL")
            .bind(self.c.employer_id)
            .fetch_optional_scalar(&mut *tx)
            .await?;
        if let Some(other) = other {
            return reject(format!(
                "Pemberi kerja ini sudah memiliki kasus terbuka (#{other})."
            ));
        }
        tx.query(
            "UPDATE cases SET status = 'open', resolved_at = NULL, resolution = NULL, \
             quiet_reason = NULL, next_action_at = $2, updated_at = $2 WHERE id = $1",
        )
        .bind(self.case_id)
        .bind(self.now)
        .execute(&mut *tx)
        .await?;
        Ok(self.event(
            EventKind::CaseReopened,
            json!({"reason": reason, "previous_status": self.c.status}),
        ))
    }

    /// None when the label was already so.
    async fn label(
        &self,
        tx: &mut Tx,
        label: String,
        remove: bool,
    ) -> Result<Option<NewEvent>, ActionError> {
        let label = label.trim().to_lowercase();
        if label.is_empty() || label.chars().count() > MAX_LABEL {
            return reject(format!(
                "Label wajib diisi, paling banyak {MAX_LABEL} karakter."
            ));
        }
        let changed = if remove {
            crate::case::labels::remove(&mut *tx, self.case_id, &label).await?
        } else {
            let by = self.actor.to_string();
            crate::case::labels::add(&mut *tx, self.case_id, &label, &by, self.now).await?
        };
        let kind = if remove {
            EventKind::LabelRemoved
        } else {
            EventKind::LabelAdded
        };
        Ok(changed.then(|| self.event(kind, json!({"label": label}))))
    }

    /// None when the same form was sent twice: the first one queued it.
    async fn send_template(
        &self,
        tx: &mut Tx,
        templates: &[String],
        message: String,
        key: String,
    ) -> Result<Option<NewEvent>, ActionError> {
        let c = self.c;
        if !templates.contains(&message) {
            return reject("Template ini tidak tersedia untuk kasus ini.");
        }
        let wa = sendable(c)?;
        if REMINDER_MESSAGES.contains(&message.as_str()) {
            let today = self.now.with_timezone(&c.tz).date_naive();
            let since = local_midnight(c.tz, today);
            if crate::outbox::reminder_since(&mut *tx, c.employer_id, REMINDER_MESSAGES, since)
                .await?
            {
                return reject(
                    "Pemberi kerja ini sudah menerima pengingat hari ini (paling banyak satu pengingat sehari).",
                );
            }
        }
        let key = form_key(&key)?;
        let body = json!({"case_id": self.case_id, "manual": true});
        let queued = self
            .queue(tx, &wa, &message, "template", body, Some(&key))
            .await?;
        Ok(queued.map(|id| {
            self.event(
                EventKind::MessageQueued,
                json!({"outbox_id": id, "message": message, "manual": true}),
            )
        }))
    }

    async fn send_text(&self, tx: &mut Tx, t: String) -> Result<NewEvent, ActionError> {
        let t = text(&t, "Pesan")?;
        if !crate::outbox::window_open(self.c.last_inbound_at, self.now) {
            return reject(
                "Jendela 24 jam sudah tertutup: hanya template resmi yang dapat dikirim.",
            );
        }
        let wa = sendable(self.c)?;
        let body = json!({"case_id": self.case_id, "text": t});
        let id = self
            .queue(tx, &wa, "free_text", "text", body, None)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a manual message key was already taken"))?;
        Ok(self.event(
            EventKind::MessageQueued,
            json!({"outbox_id": id, "message": "free_text", "text": t, "manual": true}),
        ))
    }

    async fn contact(
        &self,
        tx: &mut Tx,
        wa_phone: String,
        contact_name: String,
        consent: bool,
    ) -> Result<NewEvent, ActionError> {
        let c = self.c;
        let wa = match wa_phone.trim() {
            "" => None,
            raw => Some(WaId::parse(raw).map_err(|e| ActionError::Rejected(e.0))?),
        };
        let name = match contact_name.trim() {
            "" => String::new(),
            raw => crate::import::contact_name(raw).map_err(|e| ActionError::Rejected(e.0))?,
        };
        if wa.is_none() && name.is_empty() && !consent {
            return reject("Isi nomor baru, nama PIC, atau catat persetujuan.");
        }
        let new_wa = wa.as_ref().map(|w| w.as_str().to_owned());
        tx.query(
            "UPDATE employers SET \
               wa_id = COALESCE($2, wa_id), \
               contact_invalid_at = CASE WHEN $2 IS NULL THEN contact_invalid_at ELSE NULL END, \
               contact_name = CASE WHEN $3 = '' THEN contact_name ELSE $3 END, \
               opted_out_at = CASE WHEN $4 = 1 THEN NULL ELSE opted_out_at END, \
               updated_at = $5 WHERE id = $1",
        )
        .bind(c.employer_id)
        .bind(new_wa.clone())
        .bind(name.clone())
        .bind(i64::from(consent))
        .bind(self.now)
        .execute(&mut *tx)
        .await?;
        tx.audit(
            AuditEntry::new(self.now, self.actor.to_string(), "employer.contact_updated", format!("employer:{}", c.employer_id))
                .before(json!({"wa_id": c.wa_id, "contact_name": c.contact_name, "opted_out": c.opted_out, "contact_invalid": c.contact_invalid}))
                .after(json!({"wa_id": new_wa.clone().or(c.wa_id.clone()), "contact_name": if name.is_empty() { c.contact_name.clone() } else { name.clone() }, "consent": consent})),
        );
        Ok(self.event(
            EventKind::ContactUpdated,
            json!({"new_number": new_wa.is_some(), "contact_name": name, "consent": consent}),
        ))
    }

    /// Queues one manual outbox row, due now; the delivery worker sends it
    /// within the sending window.
    async fn queue(
        &self,
        tx: &mut Tx,
        wa_id: &str,
        message: &str,
        kind: &str,
        body: serde_json::Value,
        form_key: Option<&str>,
    ) -> Result<Option<i64>> {
        let case_id = self.case_id;
        let key = match form_key {
            Some(k) => format!("case:{case_id}:manual:{k}"),
            None => format!("case:{case_id}:manual:{}", crate::accounts::random_secret()),
        };
        let text = body
            .get("text")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let m = crate::outbox::NewMessage::new(
            self.c.employer_id,
            key,
            message,
            kind,
            body.to_string(),
            self.now,
        )
        .case(Some(case_id))
        .to(Some(wa_id.to_owned()))
        .text(text);
        crate::outbox::enqueue(tx, &m, self.now).await
    }
}

fn sendable(c: &CaseRow) -> Result<String, ActionError> {
    if c.opted_out {
        return reject(
            "Pemberi kerja sudah berhenti berlangganan: catat persetujuannya terlebih dahulu.",
        );
    }
    if c.contact_invalid {
        return reject("Nomor ini ditandai salah: catat kontak baru terlebih dahulu.");
    }
    match &c.wa_id {
        Some(w) => Ok(w.clone()),
        None => reject("Pemberi kerja belum memiliki nomor WhatsApp."),
    }
}

/// The form's one-time key (`crate::accounts::random_secret`, hex): a
/// double submit carries the same one.
fn form_key(key: &str) -> Result<String, ActionError> {
    let k = key.trim();
    if k.len() < 16 || k.len() > 64 || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return reject("Formulir ini sudah kedaluwarsa. Muat ulang halaman, lalu coba lagi.");
    }
    Ok(k.to_owned())
}
