//! Supervisors and admins in the browser and the API (issue 11), on both
//! backends: the branch-scoped audit trail, role checks on `/exports` and
//! `/admin/users`, export jobs that survive a restart and verify, token
//! revocation and disabled users taking effect at once, unknown branches
//! refused, the exception queues and the dashboard's links.

use crate::support;

use axum::http::StatusCode;
use chrono::Duration;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use support::*;
use wa_smile::accounts::{self, Role};
use wa_smile::audit::AuditEntry;
use wa_smile::http::{self as app_http, AppState};
use wa_smile::store::Db;
use wa_smile::testing;

/// The app with its export files in `dir` (a new router on the same
/// database is what a restarted process is).
fn app_in(db: &Db, dir: &Path) -> Client {
    let mut config = config();
    config.exports.dir = dir.to_path_buf();
    Client {
        app: app_http::router(AppState {
            db: db.clone(),
            config: Arc::new(config),
            workers: Default::default(),
        }),
        cookies: Vec::new(),
    }
}

/// WIB calendar days around now, as the export routes take them.
fn days() -> (String, String) {
    let today = now().with_timezone(&chrono_tz::Asia::Jakarta).date_naive();
    (
        (today - Duration::days(1)).to_string(),
        (today + Duration::days(1)).to_string(),
    )
}

/// One audit row about each branch's employer, as the real writers make.
async fn audit_both_branches(db: &Db) {
    let mut tx = db.begin().await.unwrap();
    for (npp, name) in [("10000001", "a"), ("20000001", "b")] {
        tx.audit(
            AuditEntry::new(
                now(),
                "system",
                "employer.updated",
                format!("employer:{npp}"),
            )
            .after(json!({"name": name})),
        );
    }
    tx.commit().await.unwrap();
}

async fn wait_finished(c: &mut Client, token: &str, id: i64) -> Value {
    for _ in 0..500 {
        let r = c
            .send(api(
                &format!("/api/v1/exports/{id}"),
                "GET",
                Some(token),
                None,
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v = r.json();
        if v["state"] != "running" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("export {id} did not finish");
}

#[tokio::test]
async fn a_branch_supervisor_gets_only_its_branch_audit_rows() {
    for t in testing::all().await.unwrap() {
        seed(&t.db).await;
        audit_both_branches(&t.db).await;
        let super_a = accounts::create_token(&t.db, "cabang-a", Role::Supervisor, Some(BRANCH_A))
            .await
            .unwrap();
        let admin = accounts::create_token(&t.db, "pusat", Role::Admin, None)
            .await
            .unwrap();
        let mut c = Client::new(&t.db);
        let (from, to) = days();
        let uri = format!("/api/v1/audit?from={from}&to={to}&format=json");
        let r = c.send(api(&uri, "GET", Some(&super_a), None)).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", t.name, r.body);
        let rows = r.json();
        let entities: Vec<&str> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["entity"].as_str().unwrap())
            .collect();
        assert!(
            entities.contains(&"employer:10000001"),
            "{}: {entities:?}",
            t.name
        );
        assert!(
            !entities.contains(&"employer:20000001"),
            "{}: {entities:?}",
            t.name
        );
        // Every row is about one of the branch's employers or cases.
        let case_b = format!("case:{}", case_of(&t.db, "20000001").await);
        assert!(!entities
            .iter()
            .any(|e| *e == case_b || e.starts_with("user:")));

        // The admin sees both branches; CSV is streamed with its header.
        let r = c.send(api(&uri, "GET", Some(&admin), None)).await;
        let all = r.json();
        let all: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["entity"].as_str().unwrap())
            .collect();
        assert!(all.contains(&"employer:20000001") && all.contains(&"employer:10000001"));
        let r = c
            .send(api(
                &uri.replace("json", "csv"),
                "GET",
                Some(&super_a),
                None,
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r
            .body
            .trim_start_matches('\u{feff}')
            .starts_with("seq,at_utc,at_wib,actor"));
        assert!(r.body.contains("employer:10000001") && !r.body.contains("employer:20000001"));

        // Another branch is 403; a branch that does not exist is 422.
        let r = c
            .send(api(
                &format!("{uri}&branch={BRANCH_B}"),
                "GET",
                Some(&super_a),
                None,
            ))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .send(api(
                &format!("{uri}&branch=Medna"),
                "GET",
                Some(&admin),
                None,
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert!(r.body.contains("Medna") && r.body.contains(BRANCH_A) && r.body.contains(BRANCH_B));
        // Without a token: 401.
        let r = c.send(api(&uri, "GET", None, None)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn an_officer_gets_403_on_exports_and_admin_users() {
    for t in testing::all().await.unwrap() {
        seed(&t.db).await;
        let dir = tempfile::tempdir().unwrap();
        let mut officer = app_in(&t.db, dir.path());
        let csrf = officer.login_ok("officer_a").await;
        for uri in ["/exports", "/admin/users"] {
            let r = officer.get(uri).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {uri}", t.name);
        }
        let (from, to) = days();
        let r = officer
            .post_form(
                "/exports",
                &[
                    ("csrf", &csrf),
                    ("kind", "audit"),
                    ("format", "csv"),
                    ("from", &from),
                    ("to", &to),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // The navigation offers an officer neither.
        let page = officer.get("/cases").await;
        assert!(
            !page.body.contains("href=\"/exports\"")
                && !page.body.contains("href=\"/admin/users\"")
        );

        let mut sup = app_in(&t.db, dir.path());
        sup.login_ok("super_a").await;
        assert_eq!(sup.get("/exports").await.status, StatusCode::OK);
        assert_eq!(sup.get("/admin/users").await.status, StatusCode::FORBIDDEN);
        let mut admin = app_in(&t.db, dir.path());
        admin.login_ok("admin").await;
        assert_eq!(admin.get("/exports").await.status, StatusCode::OK);
        let users = admin.get("/admin/users").await;
        assert_eq!(users.status, StatusCode::OK);
        assert!(users.body.contains("officer_a") && users.body.contains("Supervisor"));
    }
}

#[tokio::test]
async fn an_export_job_survives_a_restart_and_its_file_verifies() {
    for t in testing::all().await.unwrap() {
        seed(&t.db).await;
        audit_both_branches(&t.db).await;
        let dir = tempfile::tempdir().unwrap();
        let token = accounts::create_token(&t.db, "cabang-a", Role::Supervisor, Some(BRANCH_A))
            .await
            .unwrap();
        let (from, to) = days();
        let mut c = app_in(&t.db, dir.path());
        let body = json!({"kind": "audit", "from": from, "to": to, "format": "csv"}).to_string();
        let r = c
            .send(api("/api/v1/exports", "POST", Some(&token), Some(&body)))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", t.name, r.body);
        let id = r.json()["id"].as_i64().unwrap();
        let done = wait_finished(&mut c, &token, id).await;
        assert_eq!(done["state"], "finished", "{}: {done}", t.name);
        assert_eq!(done["manifest"]["generated_by"], "api:token:cabang-a");
        assert_eq!(done["manifest"]["filters"]["branch"], BRANCH_A);
        assert!(done["rows_written"].as_u64().unwrap() >= 1);

        // A restarted process (a new pool and router on the same database)
        // still lists the job and serves its file.
        let db2 = t.connect_again().await.unwrap();
        let mut c2 = app_in(&db2, dir.path());
        let again = wait_finished(&mut c2, &token, id).await;
        assert_eq!(again["manifest"], done["manifest"]);
        let file = c2
            .send(api(
                &format!("/api/v1/exports/{id}/file"),
                "GET",
                Some(&token),
                None,
            ))
            .await;
        assert_eq!(file.status, StatusCode::OK);
        let out = dir.path().join("downloaded.csv");
        std::fs::write(&out, file.body.as_bytes()).unwrap();
        std::fs::write(
            wa_smile::export::sidecar_path(&out),
            serde_json::to_vec(&again["manifest"]).unwrap(),
        )
        .unwrap();
        let policy = config().policy();
        let v = wa_smile::export::verify_export(&db2, &out, None, &policy)
            .await
            .unwrap();
        assert!(v.ok(), "{}: {:?}", t.name, v.problems);
        assert_eq!(v.rows_in_file, again["rows_written"].as_u64().unwrap());

        // A job that was running when its process died shows as failed and
        // can be started again from the page.
        let stale = now() - Duration::minutes(5);
        let dead: i64 = t
            .db
            .query(
                "INSERT INTO export_jobs (kind, format, from_date, to_date, branch, actor, state, rows_written, created_at, heartbeat_at) \
                 VALUES ('summary', 'xlsx', $1, $2, $3, 'officer:super_a', 'running', 40, $4, $4) RETURNING id",
            )
            .bind(from.parse::<chrono::NaiveDate>().unwrap())
            .bind(to.parse::<chrono::NaiveDate>().unwrap())
            .bind(BRANCH_A)
            .bind(stale)
            .fetch_scalar(&t.db)
            .await
            .unwrap();
        let s = c2
            .send(api(
                &format!("/api/v1/exports/{dead}"),
                "GET",
                Some(&token),
                None,
            ))
            .await
            .json();
        assert_eq!(s["state"], "failed", "{}: {s}", t.name);
        let mut sup = app_in(&db2, dir.path());
        let csrf = sup.login_ok("super_a").await;
        let page = sup.get("/exports").await;
        assert!(
            page.body.contains(&format!("/exports/{dead}/restart")),
            "{}",
            page.body
        );
        let r = sup
            .post_form(&format!("/exports/{dead}/restart"), &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let s = wait_finished(&mut c2, &token, dead).await;
        assert_eq!(s["state"], "finished", "{s}");
        assert_eq!(s["manifest"]["generated_by"], "officer:super_a");
        // The XLSX explains its codes in Indonesian.
        let xlsx = sup.get(&format!("/exports/{dead}/file")).await;
        assert_eq!(xlsx.status, StatusCode::OK);
        let manifest = sup.get(&format!("/exports/{dead}/manifest")).await;
        assert_eq!(manifest.json()["kind"], "summary");
        // Another branch's supervisor may not see the job.
        let other = accounts::create_token(&t.db, "cabang-b", Role::Supervisor, Some(BRANCH_B))
            .await
            .unwrap();
        let r = c2
            .send(api(
                &format!("/api/v1/exports/{id}"),
                "GET",
                Some(&other),
                None,
            ))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        db2.close().await;
    }
}

#[tokio::test]
async fn an_xlsx_job_has_a_keterangan_sheet_in_indonesian() {
    use calamine::{open_workbook, Reader, Xlsx};
    let t = testing::sqlite().await.unwrap();
    seed(&t.db).await;
    let dir = tempfile::tempdir().unwrap();
    let token = accounts::create_token(&t.db, "pusat", Role::Admin, None)
        .await
        .unwrap();
    let (from, to) = days();
    let mut c = app_in(&t.db, dir.path());
    let body =
        json!({"kind": "summary", "from": from, "to": to, "format": "xlsx", "branch": BRANCH_B})
            .to_string();
    let r = c
        .send(api("/api/v1/exports", "POST", Some(&token), Some(&body)))
        .await;
    let id = r.json()["id"].as_i64().unwrap();
    let done = wait_finished(&mut c, &token, id).await;
    assert_eq!(done["state"], "finished", "{done}");
    assert_eq!(done["manifest"]["row_count"], 1);
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "xlsx"))
        .unwrap();
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let k = wb.worksheet_range("Keterangan").unwrap();
    let text: Vec<String> = k
        .rows()
        .flat_map(|r| r.iter().map(|c| c.to_string()))
        .collect();
    for expected in [
        "Status kasus",
        "Tunggakan (Rp)",
        "Pengingat 1",
        "Eskalasi",
        "Perlu petugas",
    ] {
        assert!(text.iter().any(|t| t == expected), "{expected} in {text:?}");
    }
    let v = wa_smile::export::verify_export(&t.db, &path, None, &config().policy())
        .await
        .unwrap();
    assert!(v.ok(), "{:?}", v.problems);
}

#[tokio::test]
async fn revoking_a_token_and_disabling_a_user_take_effect_on_the_next_request() {
    for t in testing::all().await.unwrap() {
        seed(&t.db).await;
        let dir = tempfile::tempdir().unwrap();
        let token = accounts::create_token(&t.db, "laporan", Role::Supervisor, Some(BRANCH_A))
            .await
            .unwrap();
        let mut admin = app_in(&t.db, dir.path());
        let csrf = admin.login_ok("admin").await;
        let mut officer = app_in(&t.db, dir.path());
        officer.login_ok("officer_a").await;
        assert_eq!(officer.get("/cases").await.status, StatusCode::OK);
        let r = admin
            .send(api("/api/v1/cases", "GET", Some(&token), None))
            .await;
        assert_eq!(r.status, StatusCode::OK);

        let r = admin
            .post_form("/admin/tokens/laporan/revoke", &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", t.name, r.body);
        let r = admin
            .send(api("/api/v1/cases", "GET", Some(&token), None))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", t.name);

        let r = admin
            .post_form("/admin/users/officer_a/disable", &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("Nonaktif"));
        let r = officer.get("/cases").await;
        assert!(
            r.status.is_redirection() && r.location() == "/login",
            "{}: {}",
            t.name,
            r.status
        );
        let r = officer.login("officer_a", PASSWORD).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // Enabled again, the same password works; a reset one replaces it.
        admin
            .post_form("/admin/users/officer_a/enable", &[("csrf", &csrf)])
            .await;
        assert_eq!(
            officer.login("officer_a", PASSWORD).await.status,
            StatusCode::SEE_OTHER
        );
        admin
            .post_form(
                "/admin/users/officer_a/reset-password",
                &[("csrf", &csrf), ("password", "sandi-baru-456")],
            )
            .await;
        assert!(officer.get("/cases").await.status.is_redirection());
        assert_eq!(
            officer.login("officer_a", "sandi-baru-456").await.status,
            StatusCode::SEE_OTHER
        );

        // Every change is in the audit trail under the admin who made it.
        let actions: Vec<(String, String)> = t
            .db
            .query("SELECT actor, action FROM audit_log WHERE action LIKE 'user.%' OR action LIKE 'api_token.%' ORDER BY seq")
            .fetch_all_as(&t.db)
            .await
            .unwrap();
        for a in [
            "api_token.revoked",
            "user.disabled",
            "user.enabled",
            "user.password_reset",
        ] {
            assert!(
                actions
                    .iter()
                    .any(|(actor, action)| action == a && actor == "officer:admin"),
                "{a} in {actions:?}"
            );
        }
        let users = admin.get("/admin/users").await;
        assert!(users.body.contains("Dicabut"));
    }
}

#[tokio::test]
async fn an_unknown_branch_is_refused_naming_the_known_ones() {
    for t in testing::all().await.unwrap() {
        seed(&t.db).await;
        let e = accounts::add_user(&t.db, "siti", PASSWORD, Role::Officer, Some("Medna"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Medna") && e.contains(BRANCH_A) && e.contains(BRANCH_B),
            "{e}"
        );
        let e = accounts::create_token(&t.db, "x", Role::Supervisor, Some("Medna"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(BRANCH_A));
        // A duplicate username is the unique key's conflict, reported.
        let e = accounts::add_user(&t.db, "officer_a", PASSWORD, Role::Officer, Some(BRANCH_A))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let mut admin = app_in(&t.db, dir.path());
        let csrf = admin.login_ok("admin").await;
        let r = admin
            .post_form(
                "/admin/users",
                &[
                    ("csrf", &csrf),
                    ("username", "siti"),
                    ("password", PASSWORD),
                    ("role", "officer"),
                    ("branch", "Medna"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", t.name);
        assert!(r.body.contains("Medna") && r.body.contains(BRANCH_A));
        let (from, to) = days();
        let r = admin
            .post_form(
                "/exports",
                &[
                    ("csrf", &csrf),
                    ("kind", "cases"),
                    ("format", "csv"),
                    ("from", &from),
                    ("to", &to),
                    ("branch", "Medna"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let token = accounts::create_token(&t.db, "pusat", Role::Admin, None)
            .await
            .unwrap();
        let body =
            json!({"kind": "cases", "from": from, "to": to, "format": "csv", "branch": "Medna"})
                .to_string();
        let r = admin
            .send(api("/api/v1/exports", "POST", Some(&token), Some(&body)))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let n: i64 =
            t.db.query("SELECT COUNT(*) FROM export_jobs")
                .fetch_scalar(&t.db)
                .await
                .unwrap();
        assert_eq!(n, 0, "nothing was started");
    }
}

/// The CLI on an SQLite file: user and token management, and the same
/// refusals (exit 2) for an unknown branch.
#[tokio::test]
async fn the_cli_manages_users_and_tokens_and_refuses_an_unknown_branch() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let db = Db::connect(&url, 2).await.unwrap();
    db.migrate().await.unwrap();
    seed(&db).await;
    db.close().await;
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wa-smile"))
            .args(args)
            .env("WA_SMILE__DATABASE__URL", &url)
            .env("WA_SMILE__LOG__LEVEL", "error")
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let o = run(
        &[
            "user",
            "add",
            "--username",
            "siti",
            "--role",
            "officer",
            "--branch",
            "Medna",
        ],
        "rahasia-sekali-1\n",
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Medna") && err.contains(BRANCH_A) && err.contains(BRANCH_B),
        "{err}"
    );
    let o = run(
        &[
            "export",
            "audit",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--branch",
            "Medna",
            "--format",
            "csv",
            "--out",
            "x.csv",
        ],
        "",
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!dir.path().join("x.csv").exists());

    let o = run(&["user", "disable", "officer_a"], "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["user", "list", "--json"], "");
    let users: Value = serde_json::from_slice(&o.stdout).unwrap();
    let officer = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "officer_a")
        .unwrap();
    assert!(officer["disabled_at"].is_string());
    assert!(run(&["user", "enable", "officer_a"], "").status.success());
    assert!(
        run(&["user", "reset-password", "officer_a"], "sandi-baru-456\n")
            .status
            .success()
    );
    assert!(run(&["user", "unlock", "officer_a"], "").status.success());
    let o = run(
        &[
            "token",
            "create",
            "--name",
            "laporan",
            "--role",
            "supervisor",
            "--branch",
            BRANCH_A,
        ],
        "",
    );
    assert!(o.status.success());
    assert!(run(&["token", "revoke", "laporan"], "").status.success());
    let o = run(&["token", "list", "--json"], "");
    let tokens: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(tokens[0]["revoked_at"].is_string(), "{tokens}");
    assert_eq!(
        run(&["token", "revoke", "laporan"], "").status.code(),
        Some(2)
    );

    // The file a job wrote verifies with the CLI.
    let db = Db::connect(&url, 2).await.unwrap();
    audit_both_branches(&db).await;
    let jobs = wa_smile::export::ExportJobs::new(db.clone(), dir.path().join("exports"));
    let (from, to) = days();
    let id = jobs
        .start(wa_smile::export::ExportRequest::new(
            wa_smile::export::ExportKind::Audit,
            wa_smile::export::ExportFormat::Csv,
            from.parse().unwrap(),
            to.parse().unwrap(),
            "officer:super_a",
        ))
        .await
        .unwrap();
    let job = loop {
        let s = jobs.status(id).await.unwrap().unwrap();
        if s.state != wa_smile::export::JobState::Running {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    db.close().await;
    let path = job.path.expect("a file");
    let o = run(&["audit", "verify", "--export", path.to_str().unwrap()], "");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test]
async fn the_exception_queues_settle_items_into_the_case_log_and_the_audit() {
    for t in testing::all().await.unwrap() {
        let s = seed(&t.db).await;
        let at = now();
        t.db.query(
            "INSERT INTO inbound_messages (wamid, wa_id, kind, body, received_at, created_at) \
             VALUES ('wamid.x1', '6289999000111', 'text', 'Ini dari PT Sinar, sudah transfer', $1, $1), \
                    ('wamid.x2', '6289999000222', 'text', 'Promo pulsa murah', $1, $1)",
        )
        .bind(at)
        .execute(&t.db)
        .await
        .unwrap();
        let mut tx = t.db.begin().await.unwrap();
        wa_smile::ledger::raise_exception(
            &mut tx,
            &wa_smile::ledger::PaymentException {
                reference: "REF-DOUBLE",
                reason: "bill_already_settled",
                case_id: Some(s.case_a),
                employer_id: None,
                expected_minor: Some(125_000_000),
                paid_minor: Some(125_000_000),
                payload: &json!({}),
            },
            "system",
            at,
            false,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut officer = app_in(&t.db, dir.path());
        let csrf = officer.login_ok("officer_a").await;
        assert_eq!(
            officer.get("/exceptions/count").await.body,
            "3",
            "{}",
            t.name
        );
        let page = officer.get("/exceptions").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Promo pulsa murah") && page.body.contains("REF-DOUBLE"));
        assert!(page.body.contains("Rp1.250.000"), "{}", page.body);
        let ids: Vec<(i64,)> = t
            .db
            .query("SELECT id FROM inbound_messages WHERE wamid IN ('wamid.x1', 'wamid.x2') ORDER BY wamid")
            .fetch_all_as(&t.db)
            .await
            .unwrap();
        // Another branch's employer cannot be linked by this officer.
        let r = officer
            .post_form(
                &format!("/exceptions/inbound/{}/link", ids[0].0),
                &[("csrf", &csrf), ("npp", &s.npp_b)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = officer
            .post_form(
                &format!("/exceptions/inbound/{}/link", ids[0].0),
                &[("csrf", &csrf), ("npp", &s.npp_a)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let r = officer
            .post_form(
                &format!("/exceptions/inbound/{}/spam", ids[1].0),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let pid: i64 =
            t.db.query("SELECT id FROM payment_exceptions WHERE reference = 'REF-DOUBLE'")
                .fetch_scalar(&t.db)
                .await
                .unwrap();
        let r = officer
            .post_form(
                &format!("/exceptions/payments/{pid}/resolve"),
                &[
                    ("csrf", &csrf),
                    ("resolution", "refund"),
                    ("note", "Dikembalikan via bank"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        // Settled once: a second try is refused, nothing changes.
        let r = officer
            .post_form(
                &format!("/exceptions/payments/{pid}/resolve"),
                &[("csrf", &csrf), ("resolution", "dismissed")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(officer.get("/exceptions/count").await.body, "");

        let notes: Vec<(String, String)> = t
            .db
            .query("SELECT actor, data FROM case_events WHERE case_id = $1 AND kind = 'note_added' ORDER BY id")
            .bind(s.case_a)
            .fetch_all_as(&t.db)
            .await
            .unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().all(|(a, _)| a == "officer:officer_a"));
        assert!(notes[0].1.contains("sudah transfer") && notes[1].1.contains("refund"));
        let audit: Vec<(String,)> = t
            .db
            .query("SELECT action FROM audit_log WHERE actor = 'officer:officer_a' ORDER BY seq")
            .fetch_all_as(&t.db)
            .await
            .unwrap();
        let audit: Vec<&str> = audit
            .iter()
            .map(|(a,)| a.as_str())
            .filter(|a| !a.starts_with("case."))
            .collect();
        assert_eq!(
            audit,
            [
                "inbound.linked",
                "inbound.spam",
                "payment_exception.resolved"
            ]
        );
    }
}

#[tokio::test]
async fn the_dashboard_orders_stages_links_figures_and_downloads_them() {
    let t = testing::sqlite().await.unwrap();
    seed(&t.db).await;
    seed_more(&t.db, 30).await;
    let mut c = Client::new(&t.db);
    c.login_ok("admin").await;
    let page = c.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::OK);
    let at = |s: &str| page.body.find(s);
    let stages: Vec<usize> = [
        "stage=reminder_1",
        "stage=reminder_2",
        "stage=reminder_3",
        "stage=warning",
        "stage=escalated",
    ]
    .iter()
    .filter_map(|s| at(s))
    .collect();
    assert!(stages.len() >= 2, "{}", page.body);
    assert!(
        stages.windows(2).all(|w| w[0] < w[1]),
        "stages in escalation order"
    );
    // (minijinja escapes the `/` of an attribute; browsers read it back.)
    assert!(
        page.body.contains(&format!("cases?branch={BRANCH_A}\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("<th class=\"num\">Kasus</th>"));
    let csv = c.get("/dashboard.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.body.starts_with("table,key,cases,arrears"),
        "{}",
        csv.body
    );
    assert!(csv.body.contains(&format!("branch,{BRANCH_A},")));
}
