//! The outbox owner's own rules: states only move forward, a key queues
//! once on both backends, and the 24-hour window at its edges.

use super::*;
use chrono::TimeZone;

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, h, m, s).unwrap()
}

#[test]
fn states_round_trip_through_their_text() {
    for st in OutboxState::ALL {
        assert_eq!(OutboxState::parse(st.as_str()), Some(st));
        assert_eq!(OutboxState::from_text(&st.to_text()), Ok(st));
    }
    assert!(OutboxState::from_text("claimed").is_err());
}

#[test]
fn status_only_moves_forward_and_failed_is_terminal() {
    use MessageStatus::*;
    // From every state, which statuses advance it.
    let cases = [
        (OutboxState::Queued, [true, true, true, true]),
        (OutboxState::Sending, [true, true, true, true]),
        (OutboxState::Sent, [false, true, true, true]),
        (OutboxState::Delivered, [false, false, true, true]),
        (OutboxState::Read, [false, false, false, true]),
        (OutboxState::Failed, [false, false, false, false]),
    ];
    for (state, want) in cases {
        let got = [Sent, Delivered, Read, Failed].map(|s| state.advanced_by(s));
        assert_eq!(got, want, "from {state}");
    }
    // Delivered never goes back to sent; read never back to delivered.
    assert!(!OutboxState::Delivered.advanced_by(Sent));
    assert!(!OutboxState::Read.advanced_by(Delivered));
    assert!(OutboxState::Read.reached() && OutboxState::Delivered.reached());
    assert!(OutboxState::Queued.is_unsent() && OutboxState::Sending.is_unsent());
    assert!(!OutboxState::Sent.is_unsent());
}

#[test]
fn meta_status_names_parse_in_any_case_and_played_is_read() {
    assert_eq!(MessageStatus::parse("sent"), Some(MessageStatus::Sent));
    assert_eq!(
        MessageStatus::parse(" DELIVERED "),
        Some(MessageStatus::Delivered)
    );
    assert_eq!(MessageStatus::parse("played"), Some(MessageStatus::Read));
    assert_eq!(MessageStatus::parse("failed"), Some(MessageStatus::Failed));
    assert_eq!(MessageStatus::parse("deleted"), None);
    assert_eq!(MessageStatus::Read.state(), OutboxState::Read);
}

#[test]
fn the_window_is_open_for_exactly_24_hours_after_the_last_message() {
    let last = t(10, 0, 0);
    let day = Duration::hours(24);
    let tick = Duration::microseconds(1);
    assert!(!window_open(None, last));
    assert!(window_open(Some(last), last), "opens with the message");
    assert!(
        window_open(Some(last), last + day - tick),
        "open to the last instant"
    );
    assert!(!window_open(Some(last), last + day), "closed at 24 h sharp");
    assert!(!window_open(Some(last), last + day + tick));
    assert!(
        !window_open(Some(last), last - tick),
        "not open before the message"
    );
    assert_eq!(window_closes_at(last), last + day);
    assert_eq!(window_start(last + day), last);
}

async fn employer(tx: &mut Tx) -> Result<i64> {
    Ok(tx
        .query(
            "INSERT INTO employers (npp, name, branch, wa_id, timezone, created_at, updated_at) \
             VALUES ('00012345', 'PT Uji', 'PEKANBARU', '6281234567890', 'Asia/Jakarta', $1, $1) RETURNING id",
        )
        .bind(t(8, 0, 0))
        .fetch_scalar(&mut *tx)
        .await?)
}

#[tokio::test]
async fn a_key_queues_once_on_both_backends() -> Result<()> {
    for tdb in crate::testing::all().await? {
        let db = &tdb.db;
        let name = tdb.name;
        let at = t(9, 0, 0);
        let mut tx = db.begin().await?;
        let employer_id = employer(&mut tx).await?;
        let m = |key: &str| {
            NewMessage::new(
                employer_id,
                key.to_owned(),
                "reminder_1",
                "template",
                "{}".into(),
                at,
            )
            .to(Some("6281234567890".into()))
        };
        let first = enqueue(&mut tx, &m("k:1").text(Some("Halo".into())), at).await?;
        assert!(first.is_some(), "{name}");
        assert_eq!(
            enqueue(&mut tx, &m("k:1"), at).await?,
            None,
            "{name}: same key"
        );
        let many = enqueue_many(&mut tx, &[m("k:1"), m("k:2"), m("k:2"), m("k:3")], at).await?;
        let mut keys: Vec<i64> = many.iter().map(|q| q.id).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 2, "{name}: only k:2 and k:3 are new");
        // Again: nothing new.
        assert!(
            enqueue_many(&mut tx, &[m("k:2"), m("k:3")], at)
                .await?
                .is_empty(),
            "{name}"
        );
        let withheld = NewMessage {
            withheld: Some("daily_reply_cap".into()),
            ..m("k:4")
        };
        let id = enqueue(&mut tx, &withheld, at).await?.expect("new key");
        tx.commit().await?;

        let row = get(db, id).await?.expect("row");
        assert_eq!(row.state, OutboxState::Skipped, "{name}");
        assert_eq!(row.last_error.as_deref(), Some("daily_reply_cap"), "{name}");
        let row = get(db, first.unwrap()).await?.expect("row");
        assert_eq!(row.state, OutboxState::Queued, "{name}");
        assert_eq!(row.text.as_deref(), Some("Halo"), "{name}");
        assert!(get(db, -1).await?.is_none(), "{name}");
        let depth = depth(db).await?;
        assert_eq!(
            depth,
            vec![(OutboxState::Queued, 3), (OutboxState::Skipped, 1)],
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn statuses_settle_forward_only_and_a_late_sent_changes_nothing() -> Result<()> {
    for tdb in crate::testing::all().await? {
        let db = &tdb.db;
        let name = tdb.name;
        let at = t(9, 0, 0);
        let mut tx = db.begin().await?;
        let employer_id = employer(&mut tx).await?;
        let m = NewMessage::new(
            employer_id,
            "k".into(),
            "reminder_1",
            "template",
            "{}".into(),
            at,
        );
        let id = enqueue(&mut tx, &m, at).await?.expect("new");
        tx.commit().await?;
        let status = |s, secs| StatusUpdate {
            wamid: "wamid.X".into(),
            status: s,
            timestamp: at + Duration::seconds(secs),
            recipient: None,
            callback_data: Some(id),
            error: None,
        };
        assert!(
            record_status(db, status(MessageStatus::Read, 30)).await?,
            "{name}"
        );
        assert_eq!(
            get(db, id).await?.unwrap().state,
            OutboxState::Read,
            "{name}"
        );
        // Out of order: recorded once each, but the row stays read.
        assert!(
            record_status(db, status(MessageStatus::Delivered, 20)).await?,
            "{name}"
        );
        assert!(
            record_status(db, status(MessageStatus::Sent, 10)).await?,
            "{name}"
        );
        assert_eq!(
            get(db, id).await?.unwrap().state,
            OutboxState::Read,
            "{name}"
        );
        // Redelivered: nothing recorded.
        assert!(
            !record_status(db, status(MessageStatus::Sent, 10)).await?,
            "{name}"
        );
        // A failed after read is recorded but does not undo the delivery.
        assert!(
            record_status(db, status(MessageStatus::Failed, 40)).await?,
            "{name}"
        );
        assert_eq!(
            get(db, id).await?.unwrap().state,
            OutboxState::Read,
            "{name}"
        );
    }
    Ok(())
}
