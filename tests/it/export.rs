//! Exports on both backends: branch scoping, formula injection, typed XLSX,
//! manifests that catch edits, the export as an audit event, background
//! jobs.

use crate::export_support as support;

use calamine::{open_workbook, Data, Reader, Xlsx};
use std::path::Path;
use support::{day, seed, user_row};
use wa_smile::export::{
    self, read_export, verify_export, ExportFormat, ExportJobs, ExportKind, ExportRequest, JobState,
};
use wa_smile::store::Db;
use wa_smile::testing;

const EVIL: &str = "=HYPERLINK(\"http://evil.example\",\"klik\")";

fn policy() -> wa_smile::domain::Policy {
    wa_smile::config::Config::from_sources(None, Vec::<(String, String)>::new())
        .unwrap()
        .policy()
}

fn req(kind: ExportKind, format: ExportFormat, branch: Option<&str>) -> ExportRequest {
    ExportRequest::new(
        kind,
        format,
        day("2026-03-01"),
        day("2026-03-31"),
        "user:auditor",
    )
    .branch(branch.map(str::to_owned))
}

async fn two_branches(db: &Db) -> (support::Seeded, support::Seeded) {
    let a = seed(
        db,
        "00012345",
        "PT Sinar Jaya",
        "PEKANBARU",
        "2026-03-02T02:00:00Z",
    )
    .await;
    let b = seed(db, "00067890", EVIL, "DUMAI", "2026-03-03T02:00:00Z").await;
    user_row(db, "2026-03-04T02:00:00Z").await;
    (a, b)
}

fn col(rows: &[Vec<String>], header: &[String], name: &str) -> Vec<String> {
    let i = header.iter().position(|h| h == name).unwrap();
    rows.iter().map(|r| r[i].clone()).collect()
}

async fn export_file(db: &Db, r: &ExportRequest, path: &Path) -> export::Manifest {
    export::export_to_file(db, r, path, None).await.unwrap()
}

#[tokio::test]
async fn branch_scoping_keeps_other_branches_out() {
    for t in testing::all().await.unwrap() {
        let (a, b) = two_branches(&t.db).await;
        let dir = tempfile::tempdir().unwrap();

        let p = dir.path().join("audit.csv");
        let m = export_file(
            &t.db,
            &req(ExportKind::Audit, ExportFormat::Csv, Some("PEKANBARU")),
            &p,
        )
        .await;
        let r = read_export(&p, None).unwrap();
        let entities = col(&r.rows, &r.header, "entity");
        assert_eq!(m.row_count as usize, entities.len(), "{}", t.name);
        let allowed = [
            format!("employer:{}", a.npp),
            format!("bill:{}:2026-01", a.npp),
            format!("bill:{}:2026-01", a.employer_id),
            format!("payment:{}", a.reference),
            format!("case:{}", a.case_id),
        ];
        for e in &entities {
            assert!(allowed.contains(e), "{}: {e} is not PEKANBARU's", t.name);
        }
        // Every kind of entity of the branch is there: 4 + 8 case events.
        assert_eq!(entities.len(), 12, "{}", t.name);

        let p = dir.path().join("audit-all.csv");
        export_file(&t.db, &req(ExportKind::Audit, ExportFormat::Csv, None), &p).await;
        let all = read_export(&p, None).unwrap();
        let entities = col(&all.rows, &all.header, "entity");
        assert!(
            entities.contains(&format!("case:{}", b.case_id)),
            "{}",
            t.name
        );
        assert!(entities.contains(&"user:siti".to_owned()), "{}", t.name);

        let p = dir.path().join("cases.csv");
        export_file(
            &t.db,
            &req(ExportKind::Cases, ExportFormat::Csv, Some("DUMAI")),
            &p,
        )
        .await;
        let r = read_export(&p, None).unwrap();
        assert_eq!(r.rows.len(), 8, "{}", t.name);
        assert!(col(&r.rows, &r.header, "branch")
            .iter()
            .all(|x| x == "DUMAI"));
        assert!(col(&r.rows, &r.header, "npp").iter().all(|x| *x == b.npp));

        let p = dir.path().join("summary.csv");
        export_file(
            &t.db,
            &req(ExportKind::Summary, ExportFormat::Csv, Some("PEKANBARU")),
            &p,
        )
        .await;
        let r = read_export(&p, None).unwrap();
        assert_eq!(r.rows.len(), 1, "{}", t.name);
        assert_eq!(
            col(&r.rows, &r.header, "case_id"),
            vec![a.case_id.to_string()]
        );
        assert_eq!(col(&r.rows, &r.header, "promises_made"), vec!["1"]);
        assert_eq!(col(&r.rows, &r.header, "messages_delivered"), vec!["1"]);
        assert_eq!(col(&r.rows, &r.header, "arrears"), vec!["750000.50"]);

        // The API's JSON rows share the scoping.
        let rows = export::json_rows(
            &t.db,
            &req(ExportKind::Cases, ExportFormat::Json, Some("PEKANBARU")),
        )
        .await
        .unwrap();
        assert_eq!(rows.len(), 8, "{}", t.name);
        assert!(rows.iter().all(|r| r["branch"] == "PEKANBARU"));
    }
}

#[tokio::test]
async fn csv_has_a_bom_and_formulas_are_neutralised() {
    for t in testing::all().await.unwrap() {
        two_branches(&t.db).await;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cases.csv");
        export_file(
            &t.db,
            &req(ExportKind::Cases, ExportFormat::Csv, Some("DUMAI")),
            &p,
        )
        .await;
        let bytes = std::fs::read(&p).unwrap();
        assert!(bytes.starts_with("\u{feff}".as_bytes()), "{}", t.name);
        let mut rd = csv::ReaderBuilder::new().from_reader(&bytes[3..]);
        let headers = rd.headers().unwrap().clone();
        let i = headers.iter().position(|h| h == "employer").unwrap();
        for rec in rd.records() {
            let rec = rec.unwrap();
            assert_eq!(&rec[i], format!("'{EVIL}"), "{}", t.name);
            for cell in rec.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{}: `{cell}` would be evaluated",
                    t.name
                );
            }
        }
        // Same in the workbook: a string, never a formula.
        let p = dir.path().join("cases.xlsx");
        export_file(
            &t.db,
            &req(ExportKind::Cases, ExportFormat::Xlsx, Some("DUMAI")),
            &p,
        )
        .await;
        let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
        let range = wb.worksheet_range("Case log").unwrap();
        let row = range.rows().nth(1).unwrap();
        assert_eq!(row[5], Data::String(format!("'{EVIL}")), "{}", t.name);
        assert!(wb
            .worksheet_formula("Case log")
            .unwrap()
            .used_cells()
            .next()
            .is_none());
    }
}

#[tokio::test]
async fn xlsx_has_typed_columns_and_a_manifest_sheet() {
    for t in testing::all().await.unwrap() {
        let (a, _) = two_branches(&t.db).await;
        let dir = tempfile::tempdir().unwrap();

        let p = dir.path().join("summary.xlsx");
        let m = export_file(
            &t.db,
            &req(ExportKind::Summary, ExportFormat::Xlsx, Some("PEKANBARU")),
            &p,
        )
        .await;
        let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
        // Issue 11: the codes are explained in Indonesian on a `Keterangan` sheet.
        assert_eq!(
            wb.sheet_names(),
            vec!["Summary", "Keterangan", "Manifest"],
            "{}",
            t.name
        );
        let range = wb.worksheet_range("Summary").unwrap();
        let header: Vec<String> = range
            .rows()
            .next()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        let row = range.rows().nth(1).unwrap();
        let cell = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
        assert_eq!(
            cell("case_id"),
            &Data::Float(a.case_id as f64),
            "{}",
            t.name
        );
        assert_eq!(cell("arrears"), &Data::Float(750000.5), "{}", t.name);
        assert!(matches!(cell("late_fees"), Data::Float(_)), "{}", t.name);
        match cell("opened_at_wib") {
            Data::DateTime(d) => {
                assert!(d.is_datetime());
                // 02:00 UTC is 09:00 WIB.
                assert_eq!(d.as_datetime().unwrap().to_string(), "2026-03-02 09:00:00");
            }
            other => panic!("{}: opened_at_wib is {other:?}", t.name),
        }
        assert_eq!(cell("npp"), &Data::String(a.npp.clone()));
        let manifest = wb.worksheet_range("Manifest").unwrap();
        let json = manifest
            .rows()
            .find(|r| r[0] == Data::String("manifest_json".into()))
            .map(|r| r[1].to_string())
            .unwrap();
        let embedded: export::Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(embedded, m, "{}", t.name);

        let p = dir.path().join("cases.xlsx");
        export_file(
            &t.db,
            &req(ExportKind::Cases, ExportFormat::Xlsx, Some("PEKANBARU")),
            &p,
        )
        .await;
        let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
        let range = wb.worksheet_range("Case log").unwrap();
        let header: Vec<String> = range
            .rows()
            .next()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        let idx = |name: &str| header.iter().position(|h| h == name).unwrap();
        let promise = range
            .rows()
            .find(|r| r[idx("kind")] == Data::String("promise_to_pay".into()))
            .unwrap();
        match &promise[idx("promised_date")] {
            Data::DateTime(d) => assert_eq!(d.as_datetime().unwrap().date(), day("2026-03-05")),
            other => panic!("{}: promised_date is {other:?}", t.name),
        }
        let paid = range
            .rows()
            .find(|r| r[idx("kind")] == Data::String("payment_received".into()))
            .unwrap();
        assert_eq!(paid[idx("amount")], Data::Float(500000.0), "{}", t.name);
        assert!(
            matches!(paid[idx("at_wib")], Data::DateTime(_)),
            "{}",
            t.name
        );
        let failed = range
            .rows()
            .find(|r| r[idx("kind")] == Data::String("message_failed".into()))
            .unwrap();
        assert_eq!(
            failed[idx("meta_error")],
            Data::String("131026: Message undeliverable".into())
        );
        assert_eq!(failed[idx("message_status")], Data::String("failed".into()));

        // And the XLSX verifies against its embedded manifest.
        let v = verify_export(&t.db, &p, None, &policy()).await.unwrap();
        assert!(v.ok(), "{}: {:?}", t.name, v.problems);
    }
}

#[tokio::test]
async fn manifest_verification_catches_a_changed_cell_and_a_removed_row() {
    for t in testing::all().await.unwrap() {
        two_branches(&t.db).await;
        let dir = tempfile::tempdir().unwrap();
        for kind in [ExportKind::Audit, ExportKind::Cases, ExportKind::Summary] {
            let p = dir.path().join(format!("{}.csv", kind.as_str()));
            let m = export_file(&t.db, &req(kind, ExportFormat::Csv, None), &p).await;
            assert!(m.row_count > 0);
            assert_eq!(
                m.file_sha256.as_deref(),
                Some(export::file_sha256(&p).unwrap().as_str())
            );
            let v = verify_export(&t.db, &p, None, &policy()).await.unwrap();
            assert!(v.ok(), "{} {}: {:?}", t.name, kind.as_str(), v.problems);
            assert_eq!(v.rows_in_database, m.row_count);
        }
        // A later change to the database does not disturb an earlier export:
        // the manifest fixes the last audit row and case event.
        two_branches_more(&t.db).await;
        let p = dir.path().join("audit.csv");
        let v = verify_export(&t.db, &p, None, &policy()).await.unwrap();
        assert!(v.ok(), "{}: {:?}", t.name, v.problems);

        let text = std::fs::read_to_string(&p).unwrap();
        let side = export::sidecar_path(&p);

        // A changed cell.
        let edited = dir.path().join("edited.csv");
        std::fs::write(
            &edited,
            text.replacen("employer.insert", "employer.update", 1),
        )
        .unwrap();
        std::fs::copy(&side, export::sidecar_path(&edited)).unwrap();
        let v = verify_export(&t.db, &edited, None, &policy())
            .await
            .unwrap();
        assert!(!v.ok(), "{}", t.name);
        assert!(
            v.problems.iter().any(|p| p.contains("data_sha256")),
            "{}: {:?}",
            t.name,
            v.problems
        );
        assert!(
            v.problems.iter().any(|p| p.contains("column `action`")),
            "{}: {:?}",
            t.name,
            v.problems
        );

        // A removed row.
        let lines: Vec<&str> = text.split("\r\n").collect();
        let mut kept = lines.clone();
        kept.remove(3);
        let removed = dir.path().join("removed.csv");
        std::fs::write(&removed, kept.join("\r\n")).unwrap();
        let v = verify_export(&t.db, &removed, Some(&side), &policy())
            .await
            .unwrap();
        assert!(!v.ok(), "{}", t.name);
        assert!(
            v.problems.iter().any(|p| p.contains("manifest says")),
            "{}: {:?}",
            t.name,
            v.problems
        );
        assert!(
            v.problems.iter().any(|p| p.contains("removed or added")),
            "{}: {:?}",
            t.name,
            v.problems
        );

        // No manifest at all.
        let bare = dir.path().join("bare.csv");
        std::fs::write(&bare, &text).unwrap();
        let v = verify_export(&t.db, &bare, None, &policy()).await.unwrap();
        assert!(
            v.problems.iter().any(|p| p.contains("no manifest")),
            "{}",
            t.name
        );

        // The chain itself stays intact through all of this.
        assert_eq!(wa_smile::audit::verify(&t.db).await.unwrap().broken, None);
    }
}

async fn two_branches_more(db: &Db) {
    seed(
        db,
        "00099999",
        "CV Baru",
        "PEKANBARU",
        "2026-03-20T02:00:00Z",
    )
    .await;
}

#[tokio::test]
async fn every_export_is_an_audit_event() {
    for t in testing::all().await.unwrap() {
        two_branches(&t.db).await;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let m = export_file(
            &t.db,
            &req(ExportKind::Audit, ExportFormat::Csv, Some("DUMAI")),
            &p,
        )
        .await;
        let row = t
            .db
            .query("SELECT actor, action, entity, after FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_one(&t.db)
            .await
            .unwrap();
        assert_eq!(row.get::<String>("actor").unwrap(), "user:auditor");
        assert_eq!(row.get::<String>("action").unwrap(), "export.audit");
        assert_eq!(row.get::<String>("entity").unwrap(), "export:audit");
        let after: serde_json::Value =
            serde_json::from_str(&row.get::<String>("after").unwrap()).unwrap();
        assert_eq!(after["data_sha256"], m.data_sha256.as_str());
        assert_eq!(after["filters"]["branch"], "DUMAI");
        assert_eq!(after["row_count"], m.row_count);
    }
}

#[tokio::test]
async fn background_jobs_report_progress_and_a_file() {
    for t in testing::all().await.unwrap() {
        two_branches(&t.db).await;
        let dir = tempfile::tempdir().unwrap();
        let jobs = ExportJobs::new(t.db.clone(), dir.path().join("exports"));
        let id = jobs
            .start(req(ExportKind::Cases, ExportFormat::Xlsx, None))
            .await
            .unwrap();
        let status = loop {
            let s = jobs.status(id).await.unwrap().unwrap();
            if s.state != JobState::Running {
                break s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(
            status.state,
            JobState::Finished,
            "{}: {:?}",
            t.name,
            status.error
        );
        assert_eq!(status.rows_written, 16);
        let path = status.path.unwrap();
        assert!(path.exists());
        assert_eq!(status.manifest.unwrap().row_count, 16);
        assert!(jobs.status(id + 100).await.unwrap().is_none());
        assert!(jobs.remove(id).await.unwrap());
        assert!(!path.exists());
    }
}

#[tokio::test]
async fn the_http_body_streams_the_same_csv() {
    use futures::StreamExt;
    for t in testing::all().await.unwrap() {
        two_branches(&t.db).await;
        let mut s = Box::pin(export::byte_stream(
            t.db.clone(),
            req(ExportKind::Audit, ExportFormat::Csv, Some("PEKANBARU")),
        ));
        let mut bytes = Vec::new();
        while let Some(chunk) = s.next().await {
            bytes.extend(chunk.unwrap());
        }
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert_eq!(text.trim_end().split("\r\n").count(), 13, "{}", t.name);
        let resp = export::respond(
            t.db.clone(),
            req(ExportKind::Audit, ExportFormat::Json, None),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
    }
}

#[tokio::test]
async fn the_cli_exports_and_verify_exits_1_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let db = Db::connect(&url, 2).await.unwrap();
    db.migrate().await.unwrap();
    two_branches(&db).await;
    db.close().await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
            .args(args)
            .env("WA_SMILE__DATABASE__URL", &url)
            .env("WA_SMILE__LOG__LEVEL", "error")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    for format in ["csv", "xlsx"] {
        let out = format!("cases.{format}");
        let o = run(&[
            "export",
            "cases",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--branch",
            "DUMAI",
            "--format",
            format,
            "--out",
            &out,
            "--actor",
            "user:auditor",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = run(&["audit", "verify", "--export", &out]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(dir.path().join("cases.csv.manifest.json").exists());
    let p = dir.path().join("cases.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replacen("DUMAI", "PEKANBARU", 1)).unwrap();
    let o = run(&["audit", "verify", "--export", "cases.csv"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("column `branch`"), "{err}");
    // Bad input is exit 2.
    let o = run(&[
        "export",
        "audit",
        "--from",
        "2026-03-31",
        "--to",
        "2026-03-01",
        "--format",
        "csv",
        "--out",
        "x.csv",
    ]);
    assert_eq!(o.status.code(), Some(2));
}
