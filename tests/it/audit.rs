//! The audit chain on both backends: appends verify, tampering is caught.

use chrono::{TimeZone, Utc};
use wa_smile::audit::{self, AuditEntry};
use wa_smile::testing;

async fn write_rows(db: &wa_smile::store::Db, n: usize) {
    let mut tx = db.begin().await.unwrap();
    for i in 0..n {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 3, 3, 0, i as u32 % 60)
            .unwrap();
        tx.audit(
            AuditEntry::new(at, "system", "test.write", format!("thing:{i}"))
                .after(serde_json::json!({"i": i, "name": "PT Maju Jaya"})),
        );
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn an_intact_chain_verifies() {
    for t in testing::all().await.unwrap() {
        write_rows(&t.db, 3).await;
        write_rows(&t.db, 2).await;
        let v = audit::verify(&t.db).await.unwrap();
        assert_eq!(v.rows, 5, "{}", t.name);
        assert_eq!(v.head_seq, 5, "{}", t.name);
        assert_eq!(v.broken, None, "{}", t.name);
    }
}

#[tokio::test]
async fn tampering_with_one_row_is_detected_and_named() {
    for t in testing::all().await.unwrap() {
        write_rows(&t.db, 5).await;
        t.db.query("UPDATE audit_log SET after = $1 WHERE seq = 3")
            .bind(r#"{"i":3,"name":"PT Lain"}"#)
            .execute(&t.db)
            .await
            .unwrap();
        let v = audit::verify(&t.db).await.unwrap();
        assert_eq!(v.broken.as_ref().map(|b| b.0), Some(3), "{}: {v:?}", t.name);

        // Rewriting the digest too does not help: the hash covers it.
        let digest = audit::payload_digest(None, Some(r#"{"i":3,"name":"PT Lain"}"#));
        t.db.query("UPDATE audit_log SET payload_digest = $1 WHERE seq = 3")
            .bind(digest)
            .execute(&t.db)
            .await
            .unwrap();
        let v = audit::verify(&t.db).await.unwrap();
        assert_eq!(v.broken.as_ref().map(|b| b.0), Some(3), "{}: {v:?}", t.name);
    }
}

#[tokio::test]
async fn deleting_a_row_or_the_tail_is_detected() {
    for t in testing::all().await.unwrap() {
        write_rows(&t.db, 5).await;
        t.db.query("DELETE FROM audit_log WHERE seq = 5")
            .execute(&t.db)
            .await
            .unwrap();
        let v = audit::verify(&t.db).await.unwrap();
        assert!(
            v.broken.is_some(),
            "{}: truncated tail not detected",
            t.name
        );
        t.db.query("DELETE FROM audit_log WHERE seq = 2")
            .execute(&t.db)
            .await
            .unwrap();
        let v = audit::verify(&t.db).await.unwrap();
        assert_eq!(v.broken.as_ref().map(|b| b.0), Some(2), "{}: {v:?}", t.name);
    }
}
