//! The overdue scan on both backends: cases open at the stage the oldest
//! unpaid bill calls for, each stage's message is queued once for the next
//! opening of the employer's sending window, every silence has a reason, and
//! a second (or concurrent) scan changes nothing.

use crate::support::count_rows as count;
use crate::support::{fixtures, Fixtures};
use chrono::{DateTime, NaiveDate, Utc};
use wa_smile::audit;
use wa_smile::config::Config;
use wa_smile::scan::{self, ScanContext, ScanSummary};
use wa_smile::store::Db;
use wa_smile::testing;

const WIB: &str = "Asia/Jakarta";
const WITA: &str = "Asia/Makassar";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn ctx() -> ScanContext {
    let config = Config::from_sources(None, Vec::<(String, String)>::new()).unwrap();
    ScanContext::from_config(&config).unwrap()
}

/// Employers and bills are imported on 1 January 2026, before every scan.
fn setup(db: &Db) -> Fixtures<'_> {
    fixtures(db).at(at("2026-01-01T00:00:00Z"))
}

async fn employer(db: &Db, npp: &str, tz: &str, wa: Option<&str>) -> i64 {
    setup(db).employer(npp).tz(tz).wa_opt(wa).create().await
}

async fn bill(db: &Db, employer_id: i64, period: &str, amount_minor: i64, due: &str) {
    setup(db)
        .bill_of(employer_id, period, amount_minor)
        .due_on(due)
        .create()
        .await;
}

async fn settle_all(db: &Db, employer_id: i64, when: DateTime<Utc>) {
    db.query("UPDATE bills SET paid_minor = amount_minor, settled_at = $2 WHERE employer_id = $1")
        .bind(employer_id)
        .bind(when)
        .execute(db)
        .await
        .unwrap();
}

async fn exec(db: &Db, sql: &'static str, id: i64, when: DateTime<Utc>) {
    db.query(sql).bind(id).bind(when).execute(db).await.unwrap();
}

#[derive(Debug, Clone, PartialEq)]
struct CaseView {
    id: i64,
    status: String,
    stage: String,
    quiet_reason: Option<String>,
    next_action_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

async fn cases_of(db: &Db, employer_id: i64) -> Vec<CaseView> {
    db.query(
        "SELECT id, status, stage, quiet_reason, next_action_at, resolved_at, updated_at \
         FROM cases WHERE employer_id = $1 ORDER BY id",
    )
    .bind(employer_id)
    .fetch_all(db)
    .await
    .unwrap()
    .iter()
    .map(|r| CaseView {
        id: r.get("id").unwrap(),
        status: r.get("status").unwrap(),
        stage: r.get("stage").unwrap(),
        quiet_reason: r.get("quiet_reason").unwrap(),
        next_action_at: r.get("next_action_at").unwrap(),
        resolved_at: r.get("resolved_at").unwrap(),
        updated_at: r.get("updated_at").unwrap(),
    })
    .collect()
}

async fn case_of(db: &Db, employer_id: i64) -> CaseView {
    let mut all = cases_of(db, employer_id).await;
    assert_eq!(all.len(), 1, "expected one case for employer {employer_id}");
    all.pop().unwrap()
}

#[derive(Debug, Clone, PartialEq)]
struct OutboxView {
    id: i64,
    case_id: Option<i64>,
    key: String,
    message: String,
    kind: String,
    wa_id: Option<String>,
    state: String,
    due_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

async fn outbox_of(db: &Db, employer_id: i64) -> Vec<OutboxView> {
    db.query(
        "SELECT id, case_id, idempotency_key, message, kind, wa_id, state, due_at, updated_at \
         FROM outbox WHERE employer_id = $1 ORDER BY id",
    )
    .bind(employer_id)
    .fetch_all(db)
    .await
    .unwrap()
    .iter()
    .map(|r| OutboxView {
        id: r.get("id").unwrap(),
        case_id: r.get("case_id").unwrap(),
        key: r.get("idempotency_key").unwrap(),
        message: r.get("message").unwrap(),
        kind: r.get("kind").unwrap(),
        wa_id: r.get("wa_id").unwrap(),
        state: r.get("state").unwrap(),
        due_at: r.get("due_at").unwrap(),
        updated_at: r.get("updated_at").unwrap(),
    })
    .collect()
}

async fn events(db: &Db, case_id: i64) -> Vec<(String, serde_json::Value)> {
    wa_smile::case_log::for_case(db, case_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.data))
        .collect()
}

async fn kinds(db: &Db, case_id: i64) -> Vec<String> {
    events(db, case_id).await.into_iter().map(|e| e.0).collect()
}

/// Everything a scan could write, for before/after comparisons.
async fn snapshot(db: &Db) -> (Vec<i64>, Vec<CaseView>, Vec<OutboxView>) {
    let mut counts = Vec::new();
    for t in ["cases", "case_events", "audit_log", "outbox"] {
        counts.push(count(db, t).await);
    }
    let ids: Vec<i64> = db
        .query("SELECT id FROM employers ORDER BY id")
        .fetch_all(db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("id").unwrap())
        .collect();
    let mut cases = Vec::new();
    let mut outbox = Vec::new();
    for id in ids {
        cases.extend(cases_of(db, id).await);
        outbox.extend(outbox_of(db, id).await);
    }
    (counts, cases, outbox)
}

async fn mark_sent(db: &Db, outbox_id: i64, when: DateTime<Utc>) {
    exec(
        db,
        "UPDATE outbox SET state = 'sent', sent_at = $2, updated_at = $2 WHERE id = $1",
        outbox_id,
        when,
    )
    .await;
}

async fn assert_chain_intact(db: &Db, name: &str) {
    let v = audit::verify(db).await.unwrap();
    assert_eq!(v.broken, None, "{name}: audit chain broken");
}

#[tokio::test]
async fn first_scan_opens_one_case_per_overdue_employer_and_queues_one_message_for_the_window_opening(
) {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let one_day = employer(db, "00011111", WIB, Some("6281200000001")).await;
        bill(db, one_day, "2026-01", 150_000_000, "2026-03-02").await;
        let week = employer(db, "00022222", WIB, Some("6281200000002")).await;
        bill(db, week, "2025-12", 100_000_050, "2026-02-24").await;
        bill(db, week, "2026-01", 200_000_000, "2026-03-02").await;
        let due_today = employer(db, "00033333", WIB, Some("6281200000003")).await;
        bill(db, due_today, "2026-02", 100_000_000, "2026-03-03").await;
        let paid = employer(db, "00044444", WIB, Some("6281200000004")).await;
        bill(db, paid, "2026-01", 100_000_000, "2026-03-02").await;
        settle_all(db, paid, at("2026-03-01T03:00:00Z")).await;

        // 07:30 WIB on Tuesday 3 March: the window opens at 08:00 WIB.
        let now = at("2026-03-03T00:30:00Z");
        let s = scan::run(db, &ctx, now).await.unwrap();
        assert_eq!(
            s,
            ScanSummary {
                cases_opened: 2,
                cases_updated: 0,
                cases_resolved: 0,
                messages_queued: 2
            },
            "{}",
            t.name
        );
        assert!(cases_of(db, due_today).await.is_empty(), "{}", t.name);
        assert!(cases_of(db, paid).await.is_empty(), "{}", t.name);

        let c = case_of(db, one_day).await;
        assert_eq!(
            (c.status.as_str(), c.stage.as_str()),
            ("open", "reminder_1")
        );
        assert_eq!(
            c.quiet_reason.as_deref(),
            Some("window_closed"),
            "{}",
            t.name
        );
        assert_eq!(c.next_action_at, Some(at("2026-03-03T01:00:00Z")));
        let out = outbox_of(db, one_day).await;
        assert_eq!(out.len(), 1, "{}", t.name);
        assert_eq!(out[0].key, format!("case:{}:stage:reminder_1", c.id));
        assert_eq!(out[0].message, "reminder_1");
        assert_eq!(out[0].kind, "template");
        assert_eq!(out[0].state, "queued");
        assert_eq!(out[0].wa_id.as_deref(), Some("6281200000001"));
        assert_eq!(out[0].case_id, Some(c.id));
        assert_eq!(out[0].due_at, at("2026-03-03T01:00:00Z"), "{}", t.name);

        let w = case_of(db, week).await;
        assert_eq!(
            w.stage, "reminder_2",
            "{}: 7 days after the oldest bill",
            t.name
        );
        let ev = events(db, w.id).await;
        assert_eq!(
            ev.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            ["case_opened", "message_queued"],
            "{}",
            t.name
        );
        assert_eq!(ev[0].1["bills"], 2);
        assert_eq!(ev[0].1["arrears"], "3000000.5");
        assert_eq!(ev[0].1["oldest_due_date"], "2026-02-24");
        assert_eq!(ev[1].1["message"], "reminder_2");
        assert_chain_intact(db, t.name).await;
    }
}

#[tokio::test]
async fn due_at_respects_the_window_edges_in_the_employers_own_zone() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        // (zone, scan instant, expected due_at, expected quiet reason)
        let samples = [
            // 07:59:59 WIB waits for 08:00 WIB.
            (
                WIB,
                "2026-03-03T00:59:59Z",
                "2026-03-03T01:00:00Z",
                Some("window_closed"),
            ),
            // 08:00 WIB is inside.
            (WIB, "2026-03-03T01:00:00Z", "2026-03-03T01:00:00Z", None),
            // 08:30 WITA is inside although it is 07:30 in Jakarta.
            (WITA, "2026-03-03T00:30:00Z", "2026-03-03T00:30:00Z", None),
            // 19:59 WIB is inside.
            (WIB, "2026-03-03T12:59:00Z", "2026-03-03T12:59:00Z", None),
            // 20:00 WIB waits for Wednesday 08:00 WIB.
            (
                WIB,
                "2026-03-03T13:00:00Z",
                "2026-03-04T01:00:00Z",
                Some("window_closed"),
            ),
            // 20:00 WITA waits for Wednesday 08:00 WITA.
            (
                WITA,
                "2026-03-03T12:00:00Z",
                "2026-03-04T00:00:00Z",
                Some("window_closed"),
            ),
        ];
        let mut sorted = samples.to_vec();
        sorted.sort_by_key(|s| s.1);
        for (i, (zone, when, due, quiet)) in sorted.into_iter().enumerate() {
            let e = employer(db, &format!("EDGE{i:04}"), zone, Some("6281300000000")).await;
            bill(db, e, "2026-01", 100_000_000, "2026-03-02").await;
            let s = scan::run(db, &ctx, at(when)).await.unwrap();
            assert_eq!(s.messages_queued, 1, "{}: {zone} at {when}", t.name);
            let out = outbox_of(db, e).await;
            assert_eq!(out[0].due_at, at(due), "{}: {zone} at {when}", t.name);
            let c = case_of(db, e).await;
            assert_eq!(
                c.quiet_reason.as_deref(),
                quiet,
                "{}: {zone} at {when}",
                t.name
            );
            let expected_next = quiet.map(|_| at(due));
            assert_eq!(
                c.next_action_at, expected_next,
                "{}: {zone} at {when}",
                t.name
            );
        }
        assert_chain_intact(db, t.name).await;
    }
}

#[tokio::test]
async fn a_holiday_or_a_sunday_pushes_due_at_and_records_the_reason() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        // Sunday 8 March 2026, 10:00 WIB: Monday 9 March 08:00 WIB.
        let sunday = employer(db, "SUN00001", WIB, Some("6281400000001")).await;
        bill(db, sunday, "2026-01", 100_000_000, "2026-03-05").await;
        scan::run(db, &ctx, at("2026-03-08T03:00:00Z"))
            .await
            .unwrap();
        let c = case_of(db, sunday).await;
        assert_eq!(
            c.quiet_reason.as_deref(),
            Some("non_sending_day"),
            "{}",
            t.name
        );
        assert_eq!(c.next_action_at, Some(at("2026-03-09T01:00:00Z")));
        assert_eq!(
            outbox_of(db, sunday).await[0].due_at,
            at("2026-03-09T01:00:00Z")
        );

        // Nyepi (Thursday 19 March 2026) starts a run of holidays and
        // collective leave up to Tuesday 24 March: the message waits for
        // Wednesday 25 March 08:00 WIB.
        let nyepi = employer(db, "HOL00001", WIB, Some("6281400000002")).await;
        bill(db, nyepi, "2026-02", 100_000_000, "2026-03-16").await;
        scan::run(db, &ctx, at("2026-03-19T03:00:00Z"))
            .await
            .unwrap();
        let c = case_of(db, nyepi).await;
        assert_eq!(c.quiet_reason.as_deref(), Some("holiday"), "{}", t.name);
        assert_eq!(c.next_action_at, Some(at("2026-03-25T01:00:00Z")));
        assert_eq!(
            outbox_of(db, nyepi).await[0].due_at,
            at("2026-03-25T01:00:00Z")
        );
        assert_chain_intact(db, t.name).await;
    }
}

#[tokio::test]
async fn catch_up_after_a_40_day_gap_queues_the_warning_only_not_four_messages() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let e = employer(db, "LATE0001", WIB, Some("6281500000001")).await;
        bill(db, e, "2025-12", 100_000_000, "2026-01-22").await;
        // 40 days after 22 January.
        let s = scan::run(db, &ctx, at("2026-03-03T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.messages_queued, 1, "{}", t.name);
        let c = case_of(db, e).await;
        assert_eq!(c.stage, "warning", "{}", t.name);
        assert_eq!(
            c.status, "needs_officer",
            "{}: an officer follows up",
            t.name
        );
        assert_eq!(c.quiet_reason, None, "{}: the warning goes out now", t.name);
        let out = outbox_of(db, e).await;
        assert_eq!(out.len(), 1, "{}", t.name);
        assert_eq!(out[0].message, "warning");
        assert_eq!(out[0].due_at, at("2026-03-03T03:00:00Z"));
        assert_eq!(kinds(db, c.id).await, ["case_opened", "message_queued"]);

        // Once the warning is out, the case waits for its officer, and says so.
        mark_sent(db, out[0].id, at("2026-03-03T03:01:00Z")).await;
        let s = scan::run(db, &ctx, at("2026-03-04T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.messages_queued, 0, "{}", t.name);
        let c = case_of(db, e).await;
        assert_eq!(
            c.quiet_reason.as_deref(),
            Some("awaiting_officer"),
            "{}",
            t.name
        );
    }
}

#[tokio::test]
async fn stages_progress_across_scans_with_stage_changed_events_and_superseded_reminders_cancelled()
{
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let e = employer(db, "PROG0001", WIB, Some("6281600000001")).await;
        bill(db, e, "2026-01", 100_000_000, "2026-03-02").await;

        scan::run(db, &ctx, at("2026-03-03T03:00:00Z"))
            .await
            .unwrap();
        let c = case_of(db, e).await;
        assert_eq!(c.stage, "reminder_1");
        let first = outbox_of(db, e).await;
        mark_sent(db, first[0].id, at("2026-03-03T03:01:00Z")).await;

        // Day 6: nothing new.
        let s = scan::run(db, &ctx, at("2026-03-08T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s, ScanSummary::default(), "{}", t.name);

        // Day 7 (Monday 9 March): reminder_2.
        let s = scan::run(db, &ctx, at("2026-03-09T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!((s.cases_updated, s.messages_queued), (1, 1), "{}", t.name);
        assert_eq!(case_of(db, e).await.stage, "reminder_2");
        let out = outbox_of(db, e).await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].message, "reminder_2");

        // Day 14, reminder_2 still unsent: it is cancelled and only
        // reminder_3 stays queued, so the employer never gets two.
        scan::run(db, &ctx, at("2026-03-16T03:00:00Z"))
            .await
            .unwrap();
        let c = case_of(db, e).await;
        assert_eq!(c.stage, "reminder_3", "{}", t.name);
        let out = outbox_of(db, e).await;
        let states: Vec<(&str, &str)> = out
            .iter()
            .map(|o| (o.message.as_str(), o.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("reminder_1", "sent"),
                ("reminder_2", "cancelled"),
                ("reminder_3", "queued")
            ],
            "{}",
            t.name
        );
        let ev = events(db, c.id).await;
        let names: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "case_opened",
                "message_queued",
                "stage_changed",
                "message_queued",
                "stage_changed",
                "message_skipped",
                "message_queued"
            ],
            "{}",
            t.name
        );
        assert_eq!(ev[2].1["from"], "reminder_1");
        assert_eq!(ev[2].1["to"], "reminder_2");
        assert_eq!(ev[5].1["reason"], "superseded");
        assert_chain_intact(db, t.name).await;
    }
}

#[tokio::test]
async fn one_reminder_a_day_pushes_a_second_stage_message_to_the_next_opening() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let e = employer(db, "CAP00001", WIB, Some("6281700000001")).await;
        bill(db, e, "2026-01", 100_000_000, "2026-03-02").await;
        scan::run(db, &ctx, at("2026-03-03T03:00:00Z"))
            .await
            .unwrap();
        let first = outbox_of(db, e).await;
        mark_sent(db, first[0].id, at("2026-03-03T03:05:00Z")).await;

        // An older bill arrives the same day: the case moves to reminder_2,
        // but reminder_1 already went out today.
        bill(db, e, "2025-12", 100_000_000, "2026-02-20").await;
        scan::run(db, &ctx, at("2026-03-03T05:00:00Z"))
            .await
            .unwrap();
        let c = case_of(db, e).await;
        assert_eq!(c.stage, "reminder_2", "{}", t.name);
        assert_eq!(c.quiet_reason.as_deref(), Some("daily_cap"), "{}", t.name);
        assert_eq!(c.next_action_at, Some(at("2026-03-04T01:00:00Z")));
        let out = outbox_of(db, e).await;
        assert_eq!(out[1].due_at, at("2026-03-04T01:00:00Z"), "{}", t.name);
    }
}

#[tokio::test]
async fn a_second_scan_changes_nothing() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let now = at("2026-03-03T00:30:00Z");
        for (i, (due, wa)) in [
            ("2026-03-02", Some("6281800000001")),
            ("2026-02-24", Some("6281800000002")),
            ("2026-02-15", Some("6281800000003")),
            ("2026-01-22", Some("6281800000004")),
            ("2025-12-20", Some("6281800000005")),
            ("2026-02-24", None),
        ]
        .into_iter()
        .enumerate()
        {
            let e = employer(db, &format!("SAME{i:04}"), WIB, wa).await;
            bill(db, e, "2026-01", 100_000_000, due).await;
        }
        let opted = employer(db, "SAME0100", WITA, Some("6281800000006")).await;
        bill(db, opted, "2026-01", 100_000_000, "2026-02-24").await;
        exec(
            db,
            "UPDATE employers SET opted_out_at = $2 WHERE id = $1",
            opted,
            now,
        )
        .await;
        let resolved = employer(db, "SAME0200", WIB, Some("6281800000007")).await;
        bill(db, resolved, "2026-01", 100_000_000, "2026-02-24").await;

        let first = scan::run(db, &ctx, now).await.unwrap();
        assert_eq!(first.cases_opened, 8, "{}", t.name);
        settle_all(db, resolved, now).await;
        let resolving = scan::run(db, &ctx, now).await.unwrap();
        assert_eq!(resolving.cases_resolved, 1, "{}", t.name);

        let before = snapshot(db).await;
        let again = scan::run(db, &ctx, now).await.unwrap();
        assert_eq!(again, ScanSummary::default(), "{}", t.name);
        assert_eq!(snapshot(db).await, before, "{}", t.name);

        // Later the same morning nothing changes either (the reasons were
        // already right), until the window opens.
        let later = scan::run(db, &ctx, at("2026-03-03T00:45:00Z"))
            .await
            .unwrap();
        assert_eq!(later, ScanSummary::default(), "{}", t.name);
        assert_eq!(snapshot(db).await, before, "{}", t.name);
        assert_chain_intact(db, t.name).await;
    }
}

#[tokio::test]
async fn paid_bills_resolve_the_case_and_cancel_the_queued_reminder() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let e = employer(db, "PAID0001", WIB, Some("6281900000001")).await;
        bill(db, e, "2026-01", 100_000_000, "2026-03-02").await;
        scan::run(db, &ctx, at("2026-03-03T00:30:00Z"))
            .await
            .unwrap();
        settle_all(db, e, at("2026-03-03T00:35:00Z")).await;

        let s = scan::run(db, &ctx, at("2026-03-03T00:40:00Z"))
            .await
            .unwrap();
        assert_eq!(s.cases_resolved, 1, "{}", t.name);
        let c = case_of(db, e).await;
        assert_eq!(c.status, "resolved", "{}", t.name);
        assert_eq!(c.resolved_at, Some(at("2026-03-03T00:40:00Z")));
        assert_eq!(c.quiet_reason, None);
        let out = outbox_of(db, e).await;
        assert_eq!(out[0].state, "cancelled", "{}", t.name);
        let ev = events(db, c.id).await;
        let names: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "case_opened",
                "message_queued",
                "case_resolved",
                "message_skipped"
            ],
            "{}",
            t.name
        );
        assert_eq!(ev[2].1["reason"], "paid");
        assert_eq!(ev[3].1["reason"], "case_resolved");

        // A later overdue bill opens a new case.
        bill(db, e, "2026-02", 100_000_000, "2026-03-16").await;
        let s = scan::run(db, &ctx, at("2026-03-17T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.cases_opened, 1, "{}", t.name);
        assert_eq!(cases_of(db, e).await.len(), 2, "{}", t.name);
        assert_chain_intact(db, t.name).await;
    }
}

#[tokio::test]
async fn resolve_if_settled_resolves_only_when_no_overdue_bill_is_unpaid() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let e = employer(db, "RSLV0001", WIB, Some("6282000000001")).await;
        bill(db, e, "2026-01", 100_000_000, "2026-03-02").await;
        scan::run(db, &ctx, at("2026-03-03T03:00:00Z"))
            .await
            .unwrap();
        let now = at("2026-03-03T04:00:00Z");

        let mut tx = db.begin().await.unwrap();
        assert!(!scan::resolve_if_settled(&mut tx, e, now).await.unwrap());
        tx.commit().await.unwrap();

        // A bill not yet due does not hold the case open.
        bill(db, e, "2026-02", 100_000_000, "2026-03-16").await;
        settle_all_period(db, e, "2026-01", now).await;
        let mut tx = db.begin().await.unwrap();
        assert!(scan::resolve_if_settled(&mut tx, e, now).await.unwrap());
        assert!(!scan::resolve_if_settled(&mut tx, e, now).await.unwrap());
        tx.commit().await.unwrap();
        let c = case_of(db, e).await;
        assert_eq!(c.status, "resolved", "{}", t.name);
        assert_eq!(
            kinds(db, c.id).await,
            [
                "case_opened",
                "message_queued",
                "case_resolved",
                "message_skipped"
            ],
            "{}",
            t.name
        );
        // No employer case at all: nothing to do.
        let none = employer(db, "RSLV0002", WIB, None).await;
        let mut tx = db.begin().await.unwrap();
        assert!(!scan::resolve_if_settled(&mut tx, none, now).await.unwrap());
        tx.rollback().await.unwrap();
        assert_chain_intact(db, t.name).await;
    }
}

async fn settle_all_period(db: &Db, employer_id: i64, period: &str, when: DateTime<Utc>) {
    db.query(
        "UPDATE bills SET paid_minor = amount_minor, settled_at = $3 WHERE employer_id = $1 AND period = $2",
    )
    .bind(employer_id)
    .bind(period.to_owned())
    .bind(when)
    .execute(db)
    .await
    .unwrap();
}

#[tokio::test]
async fn no_whatsapp_number_sends_the_case_to_an_officer_with_the_reason() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let e = employer(db, "NOWA0001", WIB, None).await;
        bill(db, e, "2026-01", 100_000_000, "2026-03-02").await;
        let s = scan::run(db, &ctx, at("2026-03-03T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!((s.cases_opened, s.messages_queued), (1, 0), "{}", t.name);
        let c = case_of(db, e).await;
        assert_eq!(c.status, "needs_officer", "{}", t.name);
        assert_eq!(c.quiet_reason.as_deref(), Some("no_whatsapp_number"));
        assert_eq!(c.next_action_at, None);
        assert!(outbox_of(db, e).await.is_empty(), "{}", t.name);
    }
}

#[tokio::test]
async fn opted_out_wrong_number_and_paused_cases_stay_silent_with_the_reason() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let earlier = at("2026-03-01T00:00:00Z");
        let opted = employer(db, "SIL00001", WIB, Some("6282100000001")).await;
        exec(
            db,
            "UPDATE employers SET opted_out_at = $2 WHERE id = $1",
            opted,
            earlier,
        )
        .await;
        let wrong = employer(db, "SIL00002", WIB, Some("6282100000002")).await;
        exec(
            db,
            "UPDATE employers SET contact_invalid_at = $2 WHERE id = $1",
            wrong,
            earlier,
        )
        .await;
        let paused = employer(db, "SIL00003", WIB, Some("6282100000003")).await;
        for e in [opted, wrong, paused] {
            bill(db, e, "2026-01", 100_000_000, "2026-03-02").await;
        }
        scan::run(db, &ctx, at("2026-03-03T03:00:00Z"))
            .await
            .unwrap();
        let c = case_of(db, opted).await;
        assert_eq!(c.quiet_reason.as_deref(), Some("opted_out"), "{}", t.name);
        assert!(outbox_of(db, opted).await.is_empty(), "{}", t.name);
        let c = case_of(db, wrong).await;
        assert_eq!(
            c.quiet_reason.as_deref(),
            Some("wrong_number"),
            "{}",
            t.name
        );
        assert!(outbox_of(db, wrong).await.is_empty(), "{}", t.name);

        // An officer pauses the case after reminder_1 went out; reminder_2's
        // day comes and goes in silence, with the reason and the end date.
        let out = outbox_of(db, paused).await;
        mark_sent(db, out[0].id, at("2026-03-03T03:01:00Z")).await;
        let until = at("2026-03-12T01:00:00Z");
        exec(
            db,
            "UPDATE cases SET paused_until = $2 WHERE employer_id = $1",
            paused,
            until,
        )
        .await;
        scan::run(db, &ctx, at("2026-03-09T03:00:00Z"))
            .await
            .unwrap();
        let c = case_of(db, paused).await;
        assert_eq!(c.stage, "reminder_2", "{}", t.name);
        assert_eq!(c.quiet_reason.as_deref(), Some("paused"), "{}", t.name);
        assert_eq!(c.next_action_at, Some(until));
        assert_eq!(outbox_of(db, paused).await.len(), 1, "{}", t.name);

        // After the pause the stage's message goes out.
        let s = scan::run(db, &ctx, at("2026-03-12T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.messages_queued, 1, "{}", t.name);
        let c = case_of(db, paused).await;
        assert_eq!(c.quiet_reason, None, "{}", t.name);
        assert_eq!(outbox_of(db, paused).await[1].message, "reminder_2");
        assert_chain_intact(db, t.name).await;
    }
}

#[tokio::test]
async fn a_running_promise_keeps_the_case_silent_until_the_day_after() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let e = employer(db, "PROM0001", WIB, Some("6282200000001")).await;
        bill(db, e, "2026-01", 100_000_000, "2026-03-02").await;
        scan::run(db, &ctx, at("2026-03-03T03:00:00Z"))
            .await
            .unwrap();
        db.query("UPDATE cases SET status = 'promised', promised_date = $2 WHERE employer_id = $1")
            .bind(e)
            .bind("2026-03-10".parse::<NaiveDate>().unwrap())
            .execute(db)
            .await
            .unwrap();
        let s = scan::run(db, &ctx, at("2026-03-09T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.messages_queued, 0, "{}", t.name);
        let c = case_of(db, e).await;
        assert_eq!(c.quiet_reason.as_deref(), Some("promised"), "{}", t.name);
        assert_eq!(c.next_action_at, Some(at("2026-03-11T01:00:00Z")));
    }
}

#[tokio::test]
async fn escalated_after_60_days_cancels_queued_reminders_and_sends_nothing_more() {
    let ctx = ctx();
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let e = employer(db, "ESC00001", WIB, Some("6282300000001")).await;
        bill(db, e, "2025-12", 100_000_000, "2026-01-22").await;
        // Day 40, 07:30 WIB: the warning waits for 08:00.
        scan::run(db, &ctx, at("2026-03-03T00:30:00Z"))
            .await
            .unwrap();
        assert_eq!(outbox_of(db, e).await[0].state, "queued");

        // Day 61 (still unsent: the worker was down).
        let s = scan::run(db, &ctx, at("2026-03-24T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s.messages_queued, 0, "{}", t.name);
        let c = case_of(db, e).await;
        assert_eq!(
            (c.status.as_str(), c.stage.as_str()),
            ("escalated", "escalated")
        );
        assert_eq!(c.quiet_reason.as_deref(), Some("escalated"), "{}", t.name);
        let out = outbox_of(db, e).await;
        assert_eq!(out.len(), 1, "{}", t.name);
        assert_eq!(out[0].state, "cancelled", "{}", t.name);
        let ev = events(db, c.id).await;
        assert_eq!(ev[2].0, "stage_changed");
        assert_eq!(ev[2].1["status"], "escalated");
        assert_eq!(ev[3].0, "message_skipped");
        assert_eq!(ev[3].1["reason"], "escalated");

        // Months later, nothing.
        let before = snapshot(db).await;
        let s = scan::run(db, &ctx, at("2026-05-04T03:00:00Z"))
            .await
            .unwrap();
        assert_eq!(s, ScanSummary::default(), "{}", t.name);
        assert_eq!(snapshot(db).await, before, "{}", t.name);
        assert_chain_intact(db, t.name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_scans_queue_each_message_once() {
    let ctx = std::sync::Arc::new(ctx());
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        for i in 0..60 {
            let e = employer(db, &format!("CONC{i:04}"), WIB, Some("6282400000000")).await;
            bill(db, e, "2026-01", 100_000_000, "2026-03-02").await;
            if i % 3 == 0 {
                bill(db, e, "2025-12", 100_000_000, "2026-02-10").await;
            }
        }
        // The imports above wrote their own audit rows.
        let audit_before = count(db, "audit_log").await;
        let other = t.connect_again().await.unwrap();
        let now = at("2026-03-03T03:00:00Z");
        let runs = [db.clone(), other.clone()].map(|pool| {
            let ctx = ctx.clone();
            tokio::spawn(async move { scan::run(&pool, &ctx, now).await })
        });
        let mut total = ScanSummary::default();
        for r in runs {
            let s = r.await.unwrap().unwrap();
            total.cases_opened += s.cases_opened;
            total.messages_queued += s.messages_queued;
        }
        assert_eq!(total.cases_opened, 60, "{}", t.name);
        assert_eq!(total.messages_queued, 60, "{}", t.name);
        assert_eq!(count(db, "cases").await, 60, "{}", t.name);
        assert_eq!(count(db, "outbox").await, 60, "{}", t.name);
        assert_eq!(count(db, "case_events").await, 120, "{}", t.name);
        assert_eq!(
            count(db, "audit_log").await - audit_before,
            120,
            "{}",
            t.name
        );
        assert_chain_intact(db, t.name).await;
        other.close().await;
    }
}

/// 200,000 employers with five bills each (1,000,000 bills, 30% unpaid and
/// overdue), seeded set-based on the server side: raw SQL on purpose, as
/// the fixtures' import would spend minutes on the seeding alone. Run in release:
/// `cargo test --release --test scan -- --ignored --nocapture`.
async fn seed_scale(db: &Db, employers: i64) {
    use wa_smile::store::Backend;
    let created = at("2026-01-01T00:00:00Z");
    let (employers_sql, bills_sql) = match db.backend() {
        Backend::Sqlite => (
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $1) \
             INSERT INTO employers (npp, name, branch, wa_id, contact_name, timezone, created_at, updated_at) \
             SELECT printf('%08d', n), 'PT ' || n, 'B' || (n % 20), \
                    CASE WHEN n % 50 = 0 THEN NULL ELSE '6281' || printf('%09d', n) END, '', \
                    CASE WHEN n % 10 = 0 THEN 'Asia/Makassar' ELSE 'Asia/Jakarta' END, $2, $2 FROM seq",
            "WITH RECURSIVE k(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM k WHERE k < 4) \
             INSERT INTO bills (employer_id, period, amount_minor, due_date, paid_minor, settled_at, created_at, updated_at) \
             SELECT e.id, '2025-' || printf('%02d', k.k + 8), 100000000 + e.id, \
                    CASE k.k WHEN 0 THEN '2025-12-15' WHEN 1 THEN '2026-01-30' WHEN 2 THEN '2026-02-16' \
                             WHEN 3 THEN '2026-02-24' ELSE '2026-03-02' END, 0, \
                    CASE WHEN (e.id * 7 + k.k * 3) % 10 < 3 THEN NULL ELSE $1 END, $1, $1 \
             FROM employers e CROSS JOIN k",
        ),
        Backend::Postgres => (
            "INSERT INTO employers (npp, name, branch, wa_id, contact_name, timezone, created_at, updated_at) \
             SELECT lpad(n::text, 8, '0'), 'PT ' || n, 'B' || (n % 20), \
                    CASE WHEN n % 50 = 0 THEN NULL ELSE '6281' || lpad(n::text, 9, '0') END, '', \
                    CASE WHEN n % 10 = 0 THEN 'Asia/Makassar' ELSE 'Asia/Jakarta' END, $2, $2 \
             FROM generate_series(1, $1) AS n",
            "INSERT INTO bills (employer_id, period, amount_minor, due_date, paid_minor, settled_at, created_at, updated_at) \
             SELECT e.id, '2025-' || lpad((k + 8)::text, 2, '0'), 100000000 + e.id, \
                    (CASE k WHEN 0 THEN '2025-12-15' WHEN 1 THEN '2026-01-30' WHEN 2 THEN '2026-02-16' \
                            WHEN 3 THEN '2026-02-24' ELSE '2026-03-02' END)::date, 0, \
                    CASE WHEN (e.id * 7 + k * 3) % 10 < 3 THEN NULL ELSE $1 END, $1, $1 \
             FROM employers e CROSS JOIN generate_series(0, 4) AS k",
        ),
    };
    db.query(employers_sql)
        .bind(employers)
        .bind(created)
        .execute(db)
        .await
        .unwrap();
    db.query(bills_sql).bind(created).execute(db).await.unwrap();
    if db.backend() == Backend::Postgres {
        db.query("ANALYZE").execute(db).await.unwrap();
    }
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

#[tokio::test]
#[ignore = "scale check: 200k employers, 1M bills; run in release"]
async fn scale_first_scan_of_200k_employers_and_a_no_change_rescan_are_fast() {
    let ctx = ctx();
    let employers: i64 = std::env::var("SCAN_SCALE_EMPLOYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        let seeding = std::time::Instant::now();
        seed_scale(db, employers).await;
        eprintln!(
            "{}: seeded {} employers, {} bills in {:?}",
            t.name,
            count(db, "employers").await,
            count(db, "bills").await,
            seeding.elapsed()
        );
        let now = at("2026-03-03T03:00:00Z");
        let started = std::time::Instant::now();
        let first = scan::run(db, &ctx, now).await.unwrap();
        let first_took = started.elapsed();
        let started = std::time::Instant::now();
        let second = scan::run(db, &ctx, now).await.unwrap();
        let second_took = started.elapsed();
        eprintln!(
            "{}: first scan {first:?} in {first_took:?}; second {second:?} in {second_took:?}; peak RSS {} MB",
            t.name,
            peak_rss_mb()
        );
        assert_eq!(second, ScanSummary::default(), "{}", t.name);
        assert!(first_took.as_secs() < 30, "{}: first scan too slow", t.name);
        assert!(second_took.as_secs() < 10, "{}: rescan too slow", t.name);
        assert!(peak_rss_mb() < 300, "{}: peak RSS too high", t.name);
    }
}
