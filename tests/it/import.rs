//! CSV imports on both backends: whole-file validation, natural-key upserts,
//! due-date rolling and payment settlement.

use crate::support::count_rows as count;
use std::io::Write;
use std::path::PathBuf;
use wa_smile::import::{import_csv, Counts, ImportContext, ImportError, Kind, Options};
use wa_smile::store::Db;
use wa_smile::testing;

fn ctx() -> ImportContext {
    let config = crate::support::config();
    ImportContext {
        calendar: config.calendar(),
        default_tz: chrono_tz::Asia::Jakarta,
        actor: "import:test".into(),
        thanks: None,
    }
}

fn csv_file(dir: &tempfile::TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    path
}

async fn import(
    db: &Db,
    kind: Kind,
    dir: &tempfile::TempDir,
    body: &str,
) -> Result<Counts, ImportError> {
    let path = csv_file(dir, "in.csv", body);
    import_csv(
        db,
        &ctx(),
        kind,
        &path,
        Options {
            dry_run: false,
            progress: false,
        },
    )
    .await
}

const EMPLOYERS: &str = "npp,name,branch,wa_phone,contact_name,timezone\n\
00012345,PT Maju Jaya,Pekanbaru,081234567890,Ibu Sari,\n\
AB123456-01,\"CV Sinar, Abadi\",Pekanbaru,+6281298765432,Bapak Budi,Asia/Makassar\n\
99887766,Toko Tanpa WA,Medan,,Pak Joko,\n";

fn invalid(r: Result<Counts, ImportError>) -> Vec<String> {
    match r {
        Err(ImportError::Invalid { errors, .. }) => {
            errors.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[tokio::test]
async fn employers_import_then_reimport_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for t in testing::all().await.unwrap() {
        let c = import(&t.db, Kind::Employers, &dir, EMPLOYERS)
            .await
            .unwrap();
        assert_eq!(
            c,
            Counts {
                inserted: 3,
                updated: 0,
                unchanged: 0
            },
            "{}",
            t.name
        );
        let audit_rows = count(&t.db, "audit_log").await;
        let c = import(&t.db, Kind::Employers, &dir, EMPLOYERS)
            .await
            .unwrap();
        assert_eq!(
            c,
            Counts {
                inserted: 0,
                updated: 0,
                unchanged: 3
            },
            "{}",
            t.name
        );
        assert_eq!(
            count(&t.db, "audit_log").await,
            audit_rows,
            "{}: a no-op re-import wrote audit rows",
            t.name
        );

        let row =
            t.db.query("SELECT wa_id, timezone, name FROM employers WHERE npp = $1")
                .bind("AB123456-01")
                .fetch_one(&t.db)
                .await
                .unwrap();
        assert_eq!(row.get::<String>("wa_id").unwrap(), "6281298765432");
        assert_eq!(row.get::<String>("timezone").unwrap(), "Asia/Makassar");
        assert_eq!(row.get::<String>("name").unwrap(), "CV Sinar, Abadi");
        let row =
            t.db.query("SELECT wa_id, timezone FROM employers WHERE npp = $1")
                .bind("00012345")
                .fetch_one(&t.db)
                .await
                .unwrap();
        assert_eq!(
            row.get::<String>("timezone").unwrap(),
            "Asia/Jakarta",
            "default zone"
        );
        let none: Option<String> =
            t.db.query("SELECT wa_id FROM employers WHERE npp = $1")
                .bind("99887766")
                .fetch_one(&t.db)
                .await
                .unwrap()
                .get("wa_id")
                .unwrap();
        assert_eq!(none, None);

        let changed = EMPLOYERS.replace("Ibu Sari", "Ibu Sari Dewi");
        let c = import(&t.db, Kind::Employers, &dir, &changed)
            .await
            .unwrap();
        assert_eq!(
            c,
            Counts {
                inserted: 0,
                updated: 1,
                unchanged: 2
            },
            "{}",
            t.name
        );
        assert!(wa_smile::audit::verify(&t.db)
            .await
            .unwrap()
            .broken
            .is_none());
    }
}

#[tokio::test]
async fn every_error_class_names_its_line_and_column_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for t in testing::all().await.unwrap() {
        let bad_employers = "npp,name,branch,wa_phone,contact_name,timezone\n\
00012345,PT Maju Jaya,Pekanbaru,081234567890,Ibu Sari,\n\
abc,PT Kecil,Pekanbaru,081234567891,Ibu A,\n\
11112222,PT Telepon Kantor,Pekanbaru,0215551234,Ibu B,\n\
33334444,PT Zona,Pekanbaru,081234567892,Ibu C,Asia/Singapore2\n\
00012345,PT Maju Jaya Lagi,Pekanbaru,081234567890,Ibu Sari,\n\
55556666,,Pekanbaru,081234567893,Ibu D,\n\
77778888,PT Kurang Kolom,Pekanbaru\n";
        let errs = invalid(import(&t.db, Kind::Employers, &dir, bad_employers).await);
        let expect = [
            "line 3, column npp:",
            "line 4, column wa_phone:",
            "line 5, column timezone:",
            "line 6, column npp: duplicate of line 2",
            "line 7, column name: required value is empty",
            "line 8, column *: expected 6 fields",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|l| l.starts_with(e)),
                "{}: missing `{e}` in {errs:#?}",
                t.name
            );
        }
        assert_eq!(errs.len(), expect.len(), "{errs:#?}");
        assert_eq!(
            count(&t.db, "employers").await,
            0,
            "{}: an invalid file wrote rows",
            t.name
        );
        assert_eq!(count(&t.db, "audit_log").await, 0);

        import(&t.db, Kind::Employers, &dir, EMPLOYERS)
            .await
            .unwrap();
        let bad_bills = "npp,period,amount,due_date,payment_code,late_fee\n\
00012345,2026-01,1500000,,,\n\
00012345,2026-13,1500000,,,\n\
00012345,2026-02,\"1.500.000\",,,\n\
00012345,2026-03,1500000,15-04-2026,,\n\
00012345,2026-04,1500000,,12345,\n\
55555555,2026-01,1500000,,,\n\
00012345,2026-01,1600000,,,\n\
00012345,2026-05,1500000,,,1,5\n";
        let errs = invalid(import(&t.db, Kind::Bills, &dir, bad_bills).await);
        let expect = [
            "line 3, column period:",
            "line 4, column amount:",
            "line 5, column due_date:",
            "line 6, column payment_code:",
            "line 7, column npp: unknown employer",
            "line 8, column period: duplicate of line 2",
            "line 9, column *: expected 6 fields",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|l| l.starts_with(e)),
                "{}: missing `{e}` in {errs:#?}",
                t.name
            );
        }
        assert_eq!(count(&t.db, "bills").await, 0, "{}", t.name);

        let bad_payments = "npp,period,amount,paid_at,reference\n\
00012345,2026-01,1500000,2026-02-20,REF-1\n\
00012345,2026-01,-5,2026-02-20T10:00:00+07:00,REF-2\n\
00012345,2026-01,100,2026-02-20T10:00:00+07:00,REF-3\n\
00012345,2026-01,100,2026-02-20T10:00:00+07:00,REF-3\n";
        let errs = invalid(import(&t.db, Kind::Payments, &dir, bad_payments).await);
        for e in [
            "line 2, column paid_at:",
            "line 3, column amount:",
            "line 5, column reference: duplicate of line 4",
        ] {
            assert!(
                errs.iter().any(|l| l.starts_with(e)),
                "{}: missing `{e}` in {errs:#?}",
                t.name
            );
        }
        assert_eq!(count(&t.db, "payments").await, 0);

        let errs = invalid(import(&t.db, Kind::Bills, &dir, "npp,amount\n00012345,100\n").await);
        assert_eq!(
            errs,
            vec!["line 1, column period: missing required column in the header"]
        );
        let path = dir.path().join("latin1.csv");
        std::fs::write(
            &path,
            b"npp,name,branch,wa_phone,contact_name\n12345678,PT Caf\xe9,Medan,,x\n",
        )
        .unwrap();
        let errs = invalid(
            import_csv(
                &t.db,
                &ctx(),
                Kind::Employers,
                &path,
                Options {
                    dry_run: false,
                    progress: false,
                },
            )
            .await,
        );
        assert!(
            errs[0].starts_with("line 2, column *: not valid UTF-8"),
            "{errs:?}"
        );
    }
}

#[tokio::test]
async fn bills_default_due_date_rolls_past_sundays_and_holidays() {
    let dir = tempfile::tempdir().unwrap();
    for t in testing::all().await.unwrap() {
        import(&t.db, Kind::Employers, &dir, EMPLOYERS)
            .await
            .unwrap();
        // 2026-01 → 15 Feb 2026 is a Sunday, 16 Feb cuti bersama, 17 Feb Imlek → Wednesday 18 Feb.
        // 2026-07 → 15 Aug 2026 is a Saturday (working) → stays.
        // 2026-11 → 15 Dec 2026 is a Tuesday → stays; 2026-04 → 15 May is cuti bersama → Saturday 16 May.
        let bills = "npp,period,amount,due_date,payment_code,late_fee\n\
00012345,2026-01,1500000.50,,12345678901,\n\
00012345,2026-07,1500000,,,\n\
00012345,2026-04,1500000,,,30000\n\
00012345,2026-11,1500000,2026-12-20,,\n";
        let c = import(&t.db, Kind::Bills, &dir, bills).await.unwrap();
        assert_eq!(c.inserted, 4);
        let due = |p: &'static str| {
            let db = t.db.clone();
            async move {
                let r = db.query("SELECT due_date, amount_minor, late_fee_minor FROM bills WHERE period = $1").bind(p).fetch_one(&db).await.unwrap();
                (
                    r.get::<chrono::NaiveDate>("due_date").unwrap().to_string(),
                    r.get::<i64>("amount_minor").unwrap(),
                    r.get::<Option<i64>>("late_fee_minor").unwrap(),
                )
            }
        };
        assert_eq!(
            due("2026-01").await,
            ("2026-02-18".into(), 150_000_050, None),
            "{}",
            t.name
        );
        assert_eq!(due("2026-07").await.0, "2026-08-15");
        assert_eq!(
            due("2026-04").await,
            ("2026-05-16".into(), 150_000_000, Some(3_000_000))
        );
        assert_eq!(
            due("2026-11").await.0,
            "2026-12-20",
            "an explicit due date wins"
        );
        let c = import(&t.db, Kind::Bills, &dir, bills).await.unwrap();
        assert_eq!(
            c,
            Counts {
                inserted: 0,
                updated: 0,
                unchanged: 4
            }
        );
    }
}

#[tokio::test]
async fn payments_settle_bills_only_when_covered_and_reimport_is_a_noop() {
    let dir = tempfile::tempdir().unwrap();
    for t in testing::all().await.unwrap() {
        import(&t.db, Kind::Employers, &dir, EMPLOYERS)
            .await
            .unwrap();
        import(
            &t.db,
            Kind::Bills,
            &dir,
            "npp,period,amount\n00012345,2026-01,1000000\n00012345,2026-02,1000000\n",
        )
        .await
        .unwrap();
        // A payment for a period whose bill arrives later still counts.
        let payments = "npp,period,amount,paid_at,reference\n\
00012345,2026-01,600000,2026-02-20T10:00:00+07:00,REF-1\n\
00012345,2026-01,400000,2026-02-21T10:00:00+07:00,REF-2\n\
00012345,2026-02,500000,2026-03-20T10:00:00+07:00,REF-3\n\
00012345,2026-03,1000000,2026-04-01T10:00:00+07:00,REF-4\n";
        let c = import(&t.db, Kind::Payments, &dir, payments).await.unwrap();
        assert_eq!(c.inserted, 4, "{}", t.name);
        let bill = |p: &'static str| {
            let db = t.db.clone();
            async move {
                let r = db
                    .query("SELECT paid_minor, settled_at FROM bills WHERE period = $1")
                    .bind(p)
                    .fetch_one(&db)
                    .await
                    .unwrap();
                (
                    r.get::<i64>("paid_minor").unwrap(),
                    r.get::<Option<chrono::DateTime<chrono::Utc>>>("settled_at")
                        .unwrap()
                        .map(|t| t.to_rfc3339()),
                )
            }
        };
        assert_eq!(
            bill("2026-01").await,
            (100_000_000, Some("2026-02-21T03:00:00+00:00".into())),
            "{}",
            t.name
        );
        assert_eq!(
            bill("2026-02").await,
            (50_000_000, None),
            "a partial payment does not settle"
        );
        import(
            &t.db,
            Kind::Bills,
            &dir,
            "npp,period,amount\n00012345,2026-03,1000000\n",
        )
        .await
        .unwrap();
        assert_eq!(
            bill("2026-03").await.0,
            100_000_000,
            "{}: bill after payment",
            t.name
        );
        assert!(bill("2026-03").await.1.is_some());
        let c = import(&t.db, Kind::Payments, &dir, payments).await.unwrap();
        assert_eq!(
            c,
            Counts {
                inserted: 0,
                updated: 0,
                unchanged: 4
            },
            "{}",
            t.name
        );
        assert!(wa_smile::audit::verify(&t.db)
            .await
            .unwrap()
            .broken
            .is_none());
    }
}

#[tokio::test]
async fn dry_run_reports_counts_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for t in testing::all().await.unwrap() {
        let path = csv_file(&dir, "e.csv", EMPLOYERS);
        let c = import_csv(
            &t.db,
            &ctx(),
            Kind::Employers,
            &path,
            Options {
                dry_run: true,
                progress: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(c.inserted, 3);
        assert_eq!(count(&t.db, "employers").await, 0, "{}", t.name);
        assert_eq!(count(&t.db, "audit_log").await, 0, "{}", t.name);
    }
}

#[test]
fn cli_prints_one_line_per_error_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let file = csv_file(
        &dir,
        "e.csv",
        "npp,name,branch,wa_phone,contact_name\n12,PT A,Medan,08123,x\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["import", "employers"])
        .arg(&file)
        .env("WA_SMILE__DATABASE__URL", &db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("line 2, column npp: ")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("line 2, column wa_phone: ")),
        "{stderr}"
    );

    let good = csv_file(&dir, "g.csv", EMPLOYERS);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["import", "employers", "--json"])
        .arg(&good)
        .env("WA_SMILE__DATABASE__URL", &db)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"inserted": 3, "updated": 0, "unchanged": 0})
    );
}

/// A zone whose clocks jump forward skips local times the sending window
/// needs: refused with its line, like a zone that is not IANA at all, and
/// the file writes nothing (exit 2 from the command line).
#[test]
fn an_employer_zone_that_cannot_be_scheduled_is_refused_with_its_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("zones.db");
    let db = format!("sqlite://{}", db_path.display());
    let file = csv_file(
        &dir,
        "e.csv",
        "npp,name,branch,wa_phone,contact_name,timezone\n\
00012345,PT Maju Jaya,Pekanbaru,081234567890,Ibu Sari,Asia/Makassar\n\
22223333,PT London,Pekanbaru,081234567891,Ibu A,Europe/London\n\
44445555,PT Mars,Pekanbaru,081234567892,Ibu B,Mars/Olympus\n\
66667777,PT Dulu,Pekanbaru,081234567893,Ibu C,Europe/Moscow\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["import", "employers"])
        .arg(&file)
        .env("WA_SMILE__DATABASE__URL", &db)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors[0].starts_with("line 3, column timezone: `Europe/London` skips local times"),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with("line 4, column timezone: `Mars/Olympus` is not an IANA time zone"),
        "{stderr}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = Db::connect(&db, 1).await.unwrap();
        assert_eq!(
            count(&db, "employers").await,
            0,
            "an invalid file wrote rows"
        );
        assert_eq!(count(&db, "audit_log").await, 0);
    });
}

#[tokio::test]
async fn a_duplicate_header_column_is_refused_and_names_the_column() {
    let dir = tempfile::tempdir().unwrap();
    for t in testing::all().await.unwrap() {
        import(&t.db, Kind::Employers, &dir, EMPLOYERS)
            .await
            .unwrap();
        // The last `amount` used to win: 999999 stored instead of 100.
        let errs = invalid(
            import(
                &t.db,
                Kind::Bills,
                &dir,
                "npp,period,amount,Amount\n00012345,2026-01,100,999999\n",
            )
            .await,
        );
        assert_eq!(
            errs,
            vec!["line 1, column amount: the header has this column twice (columns 3 and 4)"],
            "{}",
            t.name
        );
        assert_eq!(count(&t.db, "bills").await, 0, "{}", t.name);
        // A repeated column the import does not read stays harmless.
        let c = import(
            &t.db,
            Kind::Bills,
            &dir,
            "npp,period,amount,note,note\n00012345,2026-01,100,a,b\n",
        )
        .await
        .unwrap();
        assert_eq!(c.inserted, 1, "{}", t.name);
    }
}

#[tokio::test]
async fn a_bill_of_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for t in testing::all().await.unwrap() {
        import(&t.db, Kind::Employers, &dir, EMPLOYERS)
            .await
            .unwrap();
        let errs = invalid(
            import(
                &t.db,
                Kind::Bills,
                &dir,
                "npp,period,amount\n00012345,2026-01,100\n00012345,2026-02,0.00\n",
            )
            .await,
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("line 3, column amount: "),
            "{}: {errs:?}",
            t.name
        );
        assert_eq!(count(&t.db, "bills").await, 0, "{}", t.name);
    }
}

#[tokio::test]
async fn an_error_message_cuts_a_long_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    for t in testing::all().await.unwrap() {
        let npp = "X".repeat(1_000_000);
        let body = format!("npp,name,branch,wa_phone,contact_name\n{npp},PT A,Medan,,x\n");
        let errs = invalid(import(&t.db, Kind::Employers, &dir, &body).await);
        assert_eq!(errs.len(), 1, "{}", t.name);
        assert!(
            errs[0].starts_with("line 2, column npp: `XXXX"),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains('…'), "{}", errs[0]);
        assert!(errs[0].len() < 200, "{} chars", errs[0].len());
    }
}

/// `n` employers `1000000`, `1000001`… and their bills for `periods`
/// months from `first_year`-01.
fn big_files(
    dir: &tempfile::TempDir,
    n: usize,
    first_year: i32,
    periods: i32,
) -> (PathBuf, PathBuf) {
    let mut e = String::from("npp,name,branch,wa_phone,contact_name\n");
    let mut b = String::from("npp,period,amount\n");
    for i in 0..n {
        e.push_str(&format!(
            "{},PT Uji {i},Pekanbaru,0812{:08},Ibu Uji\n",
            1_000_000 + i,
            i
        ));
        for m in 0..periods {
            let (y, mo) = (first_year + m / 12, m % 12 + 1);
            b.push_str(&format!("{},{y}-{mo:02},{}\n", 1_000_000 + i, 100_000 + i));
        }
    }
    let tag = format!("{first_year}-{periods}");
    (
        csv_file(dir, &format!("e-{tag}.csv"), &e),
        csv_file(dir, &format!("b-{tag}.csv"), &b),
    )
}

fn options() -> Options {
    Options {
        dry_run: false,
        progress: false,
    }
}

/// A short write another process makes, with an audit row (so it needs the
/// chain head too): like a delivery outcome or a status webhook.
async fn short_write(db: &Db) -> std::time::Duration {
    let t = std::time::Instant::now();
    let mut tx = db.begin().await.unwrap();
    let at = wa_smile::time::now();
    tx.query("INSERT INTO webhook_other (kind, detail, created_at) VALUES ('test', '{}', $1)")
        .bind(at)
        .execute(&mut tx)
        .await
        .unwrap();
    tx.audit(wa_smile::audit::AuditEntry::new(
        at,
        "test",
        "test.write",
        "test:1",
    ));
    tx.commit().await.unwrap();
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_writers_commit_within_a_second_during_a_large_import() {
    let dir = tempfile::tempdir().unwrap();
    let (employers, bills) = big_files(&dir, 1_000, 2024, 12);
    for t in testing::all().await.unwrap() {
        import_csv(&t.db, &ctx(), Kind::Employers, &employers, options())
            .await
            .unwrap();
        let other = t.connect_again().await.unwrap();
        // The writer runs on its own task, as another process would.
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = tokio::spawn({
            let done = done.clone();
            async move {
                let mut waits = Vec::new();
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    waits.push(short_write(&other).await);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                other.close().await;
                waits
            }
        });
        let started = std::time::Instant::now();
        let counts = import_csv(&t.db, &ctx(), Kind::Bills, &bills, options()).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let took = started.elapsed();
        let waits = writer.await.unwrap();
        let counts = counts.unwrap();
        assert_eq!(
            counts,
            Counts {
                inserted: 12_000,
                updated: 0,
                unchanged: 0
            },
            "{}",
            t.name
        );
        let slowest = waits.iter().max().copied().unwrap_or_default();
        eprintln!(
            "{}: import {took:?}, {} other writes, slowest {slowest:?}",
            t.name,
            waits.len()
        );
        assert!(
            waits.len() >= 10,
            "{}: {} writes during the import",
            t.name,
            waits.len()
        );
        // One long transaction made a write wait for most of the import.
        assert!(
            slowest < std::time::Duration::from_secs(1) && slowest * 3 < took,
            "{}: a short write waited {slowest:?} behind the import ({took:?})",
            t.name
        );
        assert_eq!(count(&t.db, "webhook_other").await, waits.len() as i64);
        let v = wa_smile::audit::verify(&t.db).await.unwrap();
        assert!(v.broken.is_none(), "{}: {:?}", t.name, v.broken);
    }
}

async fn last_run(db: &Db) -> Option<(i64, String, i64)> {
    db.query("SELECT id, state, applied_through FROM import_runs ORDER BY id DESC LIMIT 1")
        .fetch_optional(db)
        .await
        .unwrap()
        .map(|r| {
            (
                r.get("id").unwrap(),
                r.get("state").unwrap(),
                r.get("applied_through").unwrap(),
            )
        })
}

async fn staged_rows(db: &Db) -> i64 {
    count(db, "import_staged").await
}

/// Starts `wa-smile import bills FILE` and SIGKILLs it once `ready` says so.
async fn kill_import_when(
    t: &testing::TestDb,
    file: &std::path::Path,
    ready: impl Fn(Option<(i64, String, i64)>, i64) -> bool,
) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["import", "bills", "--json"])
        .arg(file)
        .env("WA_SMILE__DATABASE__URL", &t.url)
        .env_remove("WA_SMILE_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if ready(last_run(&t.db).await, staged_rows(&t.db).await) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}: the import ended before it could be killed",
            t.name
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{}: the import never got there",
            t.name
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_write_is_finished_or_discarded_never_left_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let (employers, bills) = big_files(&dir, 1_000, 2024, 8);
    // Three times the rows: several staging transactions on both backends,
    // so the kill lands while the run is still staging even when the
    // import is fast.
    let (_, later_bills) = big_files(&dir, 1_000, 2026, 24);
    for t in testing::all().await.unwrap() {
        import_csv(&t.db, &ctx(), Kind::Employers, &employers, options())
            .await
            .unwrap();
        let audit_before = count(&t.db, "audit_log").await;

        // Killed while applying: some batches are visible, the rest is
        // staged, and the next import finishes the run first.
        kill_import_when(
            &t,
            &bills,
            |run, _| matches!(run, Some((_, ref s, applied)) if s == "applying" && applied > 0),
        )
        .await;
        let (killed, state, _) = last_run(&t.db).await.unwrap();
        assert_eq!(state, "applying", "{}", t.name);
        let visible = count(&t.db, "bills").await;
        assert!(
            visible > 0 && visible < 8_000,
            "{}: {visible} bills",
            t.name
        );
        let again = import_csv(&t.db, &ctx(), Kind::Bills, &bills, options())
            .await
            .unwrap();
        assert_eq!(
            again,
            Counts {
                inserted: 0,
                updated: 0,
                unchanged: 8_000
            },
            "{}: the interrupted run was finished before the re-run",
            t.name
        );
        let r =
            t.db.query("SELECT state, inserted, updated, unchanged FROM import_runs WHERE id = $1")
                .bind(killed)
                .fetch_one(&t.db)
                .await
                .unwrap();
        assert_eq!(r.get::<String>("state").unwrap(), "done");
        assert_eq!(
            (
                r.get::<i64>("inserted").unwrap(),
                r.get::<i64>("updated").unwrap(),
                r.get::<i64>("unchanged").unwrap()
            ),
            (8_000, 0, 0),
            "{}: the killed run's counts are exact across the crash",
            t.name
        );
        assert_eq!(count(&t.db, "bills").await, 8_000);
        assert_eq!(
            count(&t.db, "audit_log").await - audit_before,
            8_000,
            "{}: one audit row per inserted bill, none twice",
            t.name
        );
        assert_eq!(staged_rows(&t.db).await, 0);

        // Killed while staging: nothing is visible, and the next import
        // discards the run's staged rows before doing its own.
        kill_import_when(&t, &later_bills, |run, staged| {
            matches!(run, Some((_, ref s, _)) if s == "staging") && staged > 0
        })
        .await;
        let (killed, state, _) = last_run(&t.db).await.unwrap();
        assert_eq!(state, "staging", "{}", t.name);
        assert_eq!(count(&t.db, "bills").await, 8_000, "{}", t.name);
        let recovered = wa_smile::import::finish_interrupted(&t.db).await.unwrap();
        assert_eq!(
            recovered,
            vec![wa_smile::import::Recovered::Discarded { run: killed }],
            "{}",
            t.name
        );
        assert_eq!(staged_rows(&t.db).await, 0, "{}", t.name);
        assert_eq!(count(&t.db, "bills").await, 8_000, "{}", t.name);
        let c = import_csv(&t.db, &ctx(), Kind::Bills, &later_bills, options())
            .await
            .unwrap();
        assert_eq!(c.inserted, 24_000, "{}", t.name);
        let v = wa_smile::audit::verify(&t.db).await.unwrap();
        assert!(v.broken.is_none(), "{}: {:?}", t.name, v.broken);
    }
}
