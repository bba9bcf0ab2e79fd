//! Seeding shared by the export and retention tests: two branches, each
//! with an employer, bills, a payment, a case with its case log, and the
//! audit rows the real writers produce for them.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use wa_smile::audit::AuditEntry;
use wa_smile::case_log::{self, Actor, EventKind, NewEvent};
use wa_smile::store::Db;

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub struct Seeded {
    pub npp: String,
    pub employer_id: i64,
    pub case_id: i64,
    pub reference: String,
}

pub const PHONE: &str = "6281234567890";
pub const REPLY: &str = "Besok kami bayar ya pak, hubungi Ibu Sari 081234567890";

/// One employer of `branch` with a bill, a payment and a case whose log is
/// written at `when` (an RFC 3339 instant) and the following minutes.
pub async fn seed(db: &Db, npp: &str, name: &str, branch: &str, when: &str) -> Seeded {
    let t0 = at(when);
    // The employer, its bill and the payment go through the real import
    // and ledger at `when`; they write the audit rows for them.
    let f = crate::support::fixtures(db).at(t0);
    let employer_id = f
        .employer(npp)
        .name(name)
        .branch(branch)
        .wa(PHONE)
        .tz("Asia/Jakarta")
        .create()
        .await;
    f.bill(npp, "2026-01", 125_000_050)
        .due(day("2026-02-16"))
        .create()
        .await;
    let reference = format!("REF-{npp}");
    f.payment(npp, "2026-01", 50_000_000, &reference)
        .paid_at(t0)
        .create()
        .await;
    // The case with a whole history at fixed instants, one event of each
    // kind the exports read: a scan and delivery would add events, outbox
    // rows and audit rows of their own, which the export tests count.
    let case_id: i64 = db
        .query(
            "INSERT INTO cases (employer_id, status, stage, opened_at, updated_at) \
             VALUES ($1, 'promised', 'reminder_1', $2, $2) RETURNING id",
        )
        .bind(employer_id)
        .bind(t0)
        .fetch_one(db)
        .await
        .unwrap()
        .get("id")
        .unwrap();
    db.query(
        "INSERT INTO outbox (case_id, employer_id, idempotency_key, message, kind, wa_id, body, state, due_at, created_at, updated_at, sent_at) \
         VALUES ($1, $2, $3, 'reminder_1', 'text', $4, $5, 'sent', $6, $6, $6, $6)",
    )
    .bind(case_id)
    .bind(employer_id)
    .bind(format!("case:{case_id}:test"))
    .bind(PHONE.to_owned())
    .bind(json!({"text": {"body": format!("Yth. Ibu Sari, tagihan {name}")}, "to": PHONE}).to_string())
    .bind(t0)
    .execute(db)
    .await
    .unwrap();

    let mut tx = db.begin().await.unwrap();
    let m = |n: i64| t0 + chrono::Duration::minutes(n);
    let events = vec![
        NewEvent::new(
            case_id,
            m(0),
            EventKind::CaseOpened,
            Actor::System,
            json!({"stage": "reminder_1"}),
        ),
        NewEvent::new(
            case_id,
            m(1),
            EventKind::MessageSent,
            Actor::System,
            json!({"outbox_id": 1, "wamid": "wamid.X"}),
        ),
        NewEvent::new(
            case_id,
            m(2),
            EventKind::MessageDelivered,
            Actor::System,
            json!({"wamid": "wamid.X"}),
        ),
        NewEvent::new(
            case_id,
            m(3),
            EventKind::MessageRead,
            Actor::System,
            json!({"wamid": "wamid.X"}),
        ),
        NewEvent::new(
            case_id,
            m(4),
            EventKind::ReplyReceived,
            Actor::Employer,
            json!({"intent": "promise_to_pay", "text": REPLY, "from": PHONE}),
        ),
        NewEvent::new(
            case_id,
            m(5),
            EventKind::PromiseToPay,
            Actor::Employer,
            json!({"promised_date": "2026-03-05"}),
        ),
        NewEvent::new(
            case_id,
            m(6),
            EventKind::MessageFailed,
            Actor::System,
            json!({"error_code": 131026, "error": "Message undeliverable"}),
        ),
        NewEvent::new(
            case_id,
            m(7),
            EventKind::PaymentReceived,
            Actor::System,
            json!({"amount": "500000.00", "reference": reference}),
        ),
    ];
    case_log::record(&mut tx, &events).await.unwrap();
    tx.commit().await.unwrap();
    Seeded {
        npp: npp.to_owned(),
        employer_id,
        case_id,
        reference,
    }
}

/// An audit row with no branch (a user change).
pub async fn user_row(db: &Db, when: &str) {
    let mut tx = db.begin().await.unwrap();
    tx.audit(
        AuditEntry::new(at(when), "admin", "user.add", "user:siti")
            .after(json!({"role": "supervisor"})),
    );
    tx.commit().await.unwrap();
}
