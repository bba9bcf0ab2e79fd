//! Retention on both backends: personal data older than the period is gone
//! from the case log, the outbox, the audit payloads and long-resolved
//! employers' contacts; amounts, dates and NPPs stay; the audit chain still
//! verifies; running it again changes nothing.

use crate::export_support as support;

use crate::support::config;
use support::{at, seed, PHONE, REPLY};
use wa_smile::retention;
use wa_smile::store::Db;
use wa_smile::testing;

async fn all_text(db: &Db, sql: &'static str) -> String {
    let rows = db.query(sql).fetch_all(db).await.unwrap();
    rows.iter()
        .map(|r| r.get::<Option<String>>("t").unwrap().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn old_personal_data_is_redacted_and_the_chain_still_verifies() {
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        // Old: March 2025, its case resolved in April 2025 (long ago).
        let old = seed(
            db,
            "00011111",
            "PT Lama",
            "PEKANBARU",
            "2025-03-02T02:00:00Z",
        )
        .await;
        db.query("UPDATE cases SET status = 'resolved', resolved_at = $1, resolution = 'paid' WHERE id = $2")
            .bind(at("2025-04-01T00:00:00Z"))
            .bind(old.case_id)
            .execute(db)
            .await
            .unwrap();
        // Recent: March 2026, still open.
        let new = seed(
            db,
            "00022222",
            "PT Baru",
            "PEKANBARU",
            "2026-03-02T02:00:00Z",
        )
        .await;
        assert_eq!(wa_smile::audit::verify(db).await.unwrap().broken, None);

        let mut cfg = config().retention;
        cfg.personal_data_days = 180;
        cfg.resolved_contact_days = 180;
        let s = retention::apply(db, &cfg, at("2026-03-10T00:00:00Z"), "system:retention")
            .await
            .unwrap();
        assert!(s.audit_rows >= 2, "{}: {s:?}", t.name);
        assert_eq!(s.case_events, 1, "{}: {s:?}", t.name);
        assert_eq!(s.outbox_rows, 1, "{}: {s:?}", t.name);
        assert_eq!(s.employers, 1, "{}: {s:?}", t.name);

        // The chain verifies; redacted rows are marked.
        let v = wa_smile::audit::verify(db).await.unwrap();
        assert_eq!(v.broken, None, "{}", t.name);
        let redacted: i64 = db
            .query("SELECT COUNT(*) AS n FROM audit_log WHERE redacted_at IS NOT NULL")
            .fetch_one(db)
            .await
            .unwrap()
            .get("n")
            .unwrap();
        assert_eq!(redacted as u64, s.audit_rows, "{}", t.name);

        // The old reply text and number are gone everywhere…
        let old_events = db
            .query("SELECT data FROM case_events WHERE case_id = $1 AND kind = 'reply_received'")
            .bind(old.case_id)
            .fetch_one(db)
            .await
            .unwrap()
            .get::<String>("data")
            .unwrap();
        assert!(
            !old_events.contains(REPLY) && !old_events.contains(PHONE),
            "{}",
            t.name
        );
        let ev: serde_json::Value = serde_json::from_str(&old_events).unwrap();
        assert_eq!(ev["intent"], "promise_to_pay", "{}: intents stay", t.name);
        assert_eq!(ev["redacted"], true);
        let old_audit = all_text(db, "SELECT COALESCE(before, '') || COALESCE(after, '') AS t FROM audit_log WHERE at < '2026-01-01'").await;
        assert!(!old_audit.contains(REPLY), "{}", t.name);
        assert!(!old_audit.contains(PHONE), "{}", t.name);
        assert!(!old_audit.contains("Ibu Sari"), "{}", t.name);
        // …amounts, dates and NPPs stay (the bill as the import audits it:
        // `Money` writes its shortest decimal).
        assert!(old_audit.contains(r#""amount":"1250000.5""#), "{}", t.name);
        assert!(old_audit.contains("2026-02-16"), "{}", t.name);
        assert!(
            old_audit.contains("2025-03-05") || old_audit.contains("2026-03-05"),
            "{}",
            t.name
        );
        let paid = db
            .query("SELECT data FROM case_events WHERE case_id = $1 AND kind = 'payment_received'")
            .bind(old.case_id)
            .fetch_one(db)
            .await
            .unwrap()
            .get::<String>("data")
            .unwrap();
        assert!(
            paid.contains("500000.00") && paid.contains(&old.reference),
            "{}",
            t.name
        );

        // The outbox of the old case: no body text, no number.
        let ob = db
            .query("SELECT body, wa_id FROM outbox WHERE case_id = $1")
            .bind(old.case_id)
            .fetch_one(db)
            .await
            .unwrap();
        assert_eq!(
            ob.get::<Option<String>>("wa_id").unwrap(),
            None,
            "{}",
            t.name
        );
        assert!(
            !ob.get::<String>("body").unwrap().contains("Ibu Sari"),
            "{}",
            t.name
        );

        // The long-resolved employer's contact is cleared, its identity kept.
        let e = db
            .query("SELECT npp, name, wa_id, contact_name FROM employers WHERE id = $1")
            .bind(old.employer_id)
            .fetch_one(db)
            .await
            .unwrap();
        assert_eq!(e.get::<Option<String>>("wa_id").unwrap(), None);
        assert_eq!(e.get::<String>("contact_name").unwrap(), "");
        assert_eq!(e.get::<String>("npp").unwrap(), old.npp);
        assert_eq!(e.get::<String>("name").unwrap(), "PT Lama");

        // Recent data is untouched.
        let recent = all_text(
            db,
            "SELECT data AS t FROM case_events WHERE at >= '2026-01-01'",
        )
        .await;
        assert!(recent.contains(REPLY), "{}", t.name);
        let e = db
            .query("SELECT wa_id FROM employers WHERE id = $1")
            .bind(new.employer_id)
            .fetch_one(db)
            .await
            .unwrap();
        assert_eq!(
            e.get::<Option<String>>("wa_id").unwrap().as_deref(),
            Some(PHONE)
        );

        // Redaction is itself audited.
        let actions = all_text(db, "SELECT action AS t FROM audit_log ORDER BY seq").await;
        assert!(actions.contains("retention.apply"), "{}", t.name);
        assert!(actions.contains("employer.contact_redacted"), "{}", t.name);

        // Again: nothing more to do, and the chain still verifies.
        let again = retention::apply(db, &cfg, at("2026-03-10T00:00:00Z"), "system:retention")
            .await
            .unwrap();
        assert_eq!(
            (
                again.audit_rows,
                again.case_events,
                again.outbox_rows,
                again.employers
            ),
            (0, 0, 0, 0),
            "{}",
            t.name
        );
        assert_eq!(wa_smile::audit::verify(db).await.unwrap().broken, None);

        // Tampering with a redacted row's chained fields is still caught.
        db.query("UPDATE audit_log SET actor = 'someone' WHERE redacted_at IS NOT NULL AND seq = (SELECT MIN(seq) FROM audit_log WHERE redacted_at IS NOT NULL)")
            .execute(db)
            .await
            .unwrap();
        assert!(
            wa_smile::audit::verify(db).await.unwrap().broken.is_some(),
            "{}",
            t.name
        );
    }
}

#[test]
fn redaction_keeps_everything_but_personal_values() {
    let mut v = serde_json::json!({
        "name": "PT X", "wa_id": "628123", "amount": "100.00", "npp": "00012345",
        "nested": [{"text": "halo", "promised_date": "2026-03-05"}], "contact_name": "",
        "from": "6281234567890", "filters": {"from": "2026-03-01", "to": "2026-03-31"}
    });
    assert!(retention::redact_value(&mut v));
    assert_eq!(
        v,
        serde_json::json!({
            "name": "[redacted]", "wa_id": "[redacted]", "amount": "100.00", "npp": "00012345",
            "nested": [{"text": "[redacted]", "promised_date": "2026-03-05"}], "contact_name": "",
            "from": "[redacted]", "filters": {"from": "2026-03-01", "to": "2026-03-31"}
        })
    );
    assert!(!retention::redact_value(&mut v));
}
