//! The case list's figures (arrears, oldest unpaid due date, last
//! activity, branch) agree with the case's own events and its page, for the
//! scan's time and the employer's zone, on both backends — whoever wrote
//! last: the scan, a payment, an import.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use wa_smile::caselist::{self, Filter, ListRow};
use wa_smile::config::Config;
use wa_smile::domain::{Money, Period};
use wa_smile::import::{import_rows, ImportContext, Kind};
use wa_smile::ledger::{self, NewPayment};
use wa_smile::scan::{self, ScanContext};
use wa_smile::store::Db;
use wa_smile::testing;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn config() -> Config {
    Config::from_sources(None, Vec::<(String, String)>::new()).unwrap()
}

fn import_ctx() -> ImportContext {
    ImportContext {
        calendar: config().calendar(),
        default_tz: chrono_tz::Asia::Jakarta,
        actor: "import:test".into(),
        thanks: None,
    }
}

fn rows(csv: &str) -> Vec<HashMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

async fn import(db: &Db, kind: Kind, csv: &str) {
    import_rows(db, &import_ctx(), kind, &rows(csv), false)
        .await
        .unwrap();
}

async fn list_row(db: &Db, npp: &str, now: DateTime<Utc>) -> ListRow {
    let tz = chrono_tz::Asia::Jayapura;
    let page = caselist::list(
        db,
        None,
        &Filter::default(),
        now.with_timezone(&tz).date_naive(),
        now,
    )
    .await
    .unwrap();
    page.cases.into_iter().find(|c| c.npp == npp).unwrap()
}

/// The case page's figures at `when`, and the latest event's time.
async fn page_figures(db: &Db, case_id: i64, when: DateTime<Utc>) -> (Money, DateTime<Utc>) {
    let view = wa_smile::cases::load(db, &config().policy(), case_id, when)
        .await
        .unwrap()
        .unwrap();
    let latest = view.events.iter().map(|e| e.at).max().unwrap();
    (view.totals.arrears, latest)
}

#[tokio::test]
async fn list_figures_follow_the_scan_time_and_the_employer_zone() {
    for t in testing::all().await.unwrap() {
        let db = &t.db;
        import(
            db,
            Kind::Employers,
            "npp,name,branch,wa_phone,contact_name,timezone\n\
             00012345,PT Timur,PEKANBARU,081234567890,Ibu Sari,Asia/Jayapura",
        )
        .await;
        // Due dates on working days, so the import keeps them.
        import(
            db,
            Kind::Bills,
            "npp,period,amount,due_date,payment_code,late_fee\n\
             00012345,2026-01,1000000,2026-02-10,,\n\
             00012345,2026-02,2000000,2026-03-03,,\n\
             00012345,2026-03,4000000,2026-03-10,,",
        )
        .await;

        // 15:30 UTC on 3 March is 00:30 on 4 March in Jayapura: the
        // February bill is overdue there, not yet in UTC; the March bill
        // is not due at the scan's time (though it is by the wall clock).
        let scan_at = at("2026-03-03T15:30:00Z");
        let ctx = ScanContext::from_config(&config()).unwrap();
        let s = scan::run(db, &ctx, scan_at).await.unwrap();
        assert_eq!(s.cases_opened, 1, "{}", t.name);
        let row = list_row(db, "00012345", scan_at).await;
        let view = wa_smile::cases::load(db, &config().policy(), row.id, scan_at)
            .await
            .unwrap()
            .unwrap();
        let opened = view
            .events
            .iter()
            .find(|e| e.kind == "case_opened")
            .unwrap();
        assert_eq!(opened.data["arrears"], "3000000", "{}", t.name);
        assert_eq!(
            row.arrears,
            Money::from_minor(300_000_000),
            "{}: the list disagrees with the case's own event",
            t.name
        );
        assert_eq!(row.arrears, view.totals.arrears, "{}", t.name);
        assert_eq!(
            row.oldest_due_date,
            Some("2026-02-10".parse().unwrap()),
            "{}",
            t.name
        );
        assert_eq!(row.days_overdue, Some(22), "{}", t.name);
        assert_eq!(row.branch, "PEKANBARU", "{}", t.name);
        let latest = view.events.iter().map(|e| e.at).max().unwrap();
        assert_eq!(row.last_activity_at, Some(latest), "{}", t.name);

        // A payment of the oldest bill through the ledger: the list follows,
        // for the payment's time.
        let paid_at = at("2026-03-05T01:00:00Z");
        let mut tx = db.begin().await.unwrap();
        let employer_id = {
            let r = db
                .query("SELECT employer_id FROM cases WHERE id = $1")
                .bind(row.id)
                .fetch_scalar::<i64>(db)
                .await
                .unwrap();
            r
        };
        ledger::record_payments(
            &mut tx,
            &[NewPayment {
                employer_id,
                period: Period::parse("2026-01").unwrap(),
                amount: Money::from_minor(100_000_000),
                paid_at,
                reference: "PAY-1".into(),
            }],
            "api",
            "api:test",
            paid_at,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let row = list_row(db, "00012345", paid_at).await;
        let (arrears, latest) = page_figures(db, row.id, paid_at).await;
        assert_eq!(row.arrears, Money::from_minor(200_000_000), "{}", t.name);
        assert_eq!(row.arrears, arrears, "{}", t.name);
        assert_eq!(
            row.oldest_due_date,
            Some("2026-03-03".parse().unwrap()),
            "{}",
            t.name
        );
        assert_eq!(row.last_activity_at, Some(latest), "{}", t.name);
        assert_eq!(latest, paid_at, "{}", t.name);

        // The employer moves branch: its case moves with it.
        import(
            db,
            Kind::Employers,
            "npp,name,branch,wa_phone,contact_name,timezone\n\
             00012345,PT Timur,DUMAI,081234567890,Ibu Sari,Asia/Jayapura",
        )
        .await;
        assert_eq!(list_row(db, "00012345", paid_at).await.branch, "DUMAI");

        // A later scan, when the March bill is due too, rewrites the figure.
        let later = at("2026-03-12T01:00:00Z");
        scan::run(db, &ctx, later).await.unwrap();
        let row = list_row(db, "00012345", later).await;
        let (arrears, latest) = page_figures(db, row.id, later).await;
        assert_eq!(row.arrears, Money::from_minor(600_000_000), "{}", t.name);
        assert_eq!(row.arrears, arrears, "{}", t.name);
        assert_eq!(row.last_activity_at, Some(latest), "{}", t.name);
    }
}
