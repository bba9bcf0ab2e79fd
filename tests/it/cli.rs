//! The binary as operators use it: exit codes, one-line errors, JSON output.

use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
    url: String,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cli.db").display());
        Env { dir, url }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wa-smile"))
            .args(args)
            .env("WA_SMILE__DATABASE__URL", &self.url)
            .env_remove("WA_SMILE_CONFIG")
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    fn file(&self, name: &str, body: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_configuration_exits_2_with_one_line_per_bad_key() {
    let env = Env::new();
    let out = Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["migrate"])
        .env("WA_SMILE__SCHEDULE__WINDOW_START", "25:00")
        .env("WA_SMILE__PAYMENTS__PROVIDER", "cash")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("config: schedule.window_start:")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("config: payments.provider:")),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["migrate"])
        .env("WA_SMILE__WHATSAP__ACCESS_TOKEN", "x")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("WA_SMILE__WHATSAP__ACCESS_TOKEN names no setting"),
        "{}",
        stderr(&out)
    );

    let cfg = env.file("bad.toml", "[whatsapp]\nmessages_per_second = \"fast\"\n");
    let out = env.run(&["--config", &cfg, "migrate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("config: whatsapp.messages_per_second: expected integer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn scan_case_show_and_audit_verify_work_end_to_end() {
    let env = Env::new();
    let employers = env.file("e.csv", "npp,name,branch,wa_phone,contact_name\n00012345,PT Maju Jaya,Pekanbaru,081234567890,Ibu Sari\n");
    let bills = env.file(
        "b.csv",
        "npp,period,amount\n00012345,2026-01,1500000\n00012345,2026-02,1250000.50\n",
    );
    assert!(env
        .run(&["import", "employers", &employers])
        .status
        .success());
    assert!(env.run(&["import", "bills", &bills]).status.success());

    // January's contribution fell due 18 February 2026; 3 March is 13 days later.
    let out = env.run(&["scan", "--at", "2026-03-03T10:15:00+07:00", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({"cases_opened": 1, "cases_updated": 0, "cases_resolved": 0, "messages_queued": 1})
    );
    let again = env.run(&["scan", "--at", "2026-03-03T10:15:00+07:00", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        summary["messages_queued"], 0,
        "a second scan queues nothing"
    );

    let out = env.run(&["case", "show", "00012345", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let case: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(case["employer"]["npp"], "00012345");
    assert_eq!(case["stage"], "reminder_2");
    assert_eq!(case["bills"][0]["amount"], "1500000");
    assert_eq!(case["bills"][1]["amount"], "1250000.5");
    let kinds: Vec<&str> = case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["case_opened", "message_queued"]);

    let out = env.run(&["case", "show", "99999999"]);
    assert_eq!(out.status.code(), Some(1), "no case → exit 1");
    let out = env.run(&["case", "show", "not an npp"]);
    assert_eq!(out.status.code(), Some(2));

    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = wa_smile::store::Db::connect(&env.url, 1).await.unwrap();
        db.query("UPDATE audit_log SET actor = 'officer:mallory' WHERE seq = 2")
            .execute(&db)
            .await
            .unwrap();
        db.close().await;
    });
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("audit chain broken at row 2:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_answers_health_checks_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let env = Env::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .arg("serve")
        .env("WA_SMILE__DATABASE__URL", &env.url)
        .env("WA_SMILE__SERVER__BIND", "127.0.0.1:0")
        .env("WA_SMILE__WHATSAPP__ACCESS_TOKEN", "token")
        .env("WA_SMILE__WHATSAPP__APP_SECRET", "secret")
        .env("WA_SMILE__WHATSAPP__VERIFY_TOKEN", "verify")
        .env("WA_SMILE__WHATSAPP__PHONE_NUMBER_ID", "106540352242922")
        .env("WA_SMILE__LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .current_dir(env.dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).ok()?;
            (v["fields"]["message"] == "listening")
                .then(|| v["fields"]["addr"].as_str().unwrap().to_owned())
        })
        .expect("serve logs the address it listens on");
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "serve exited with {code:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn user_unlock_clears_a_lockout_and_names_an_unknown_user() {
    let env = Env::new();
    assert!(env.run(&["migrate"]).status.success());
    let out = env.run(&["user", "unlock", "siapa"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no user `siapa`"), "{}", stderr(&out));
    let mut add = Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["user", "add", "--username", "petugas", "--role", "admin"])
        .env("WA_SMILE__DATABASE__URL", &env.url)
        .env_remove("WA_SMILE_CONFIG")
        .current_dir(env.dir.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    add.stdin
        .take()
        .unwrap()
        .write_all(b"rahasia-sekali-123\n")
        .unwrap();
    assert!(add.wait().unwrap().success());
    let out = env.run(&["user", "unlock", "petugas"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("petugas unlocked"));
}

#[test]
fn a_missing_database_is_named_instead_of_created_empty() {
    let env = Env::new();
    let db_file = env.dir.path().join("cli.db");
    for args in [
        &["case", "show", "00012345"][..],
        &["audit", "verify"][..],
        &["templates", "preview", "reminder_1", "--case", "1"][..],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(
            err.trim(),
            format!(
                "error: no database at {}; run `wa-smile migrate` or pass --config",
                db_file.display()
            ),
            "{args:?}"
        );
        assert!(!db_file.exists(), "{args:?} created the database");
    }
    // `migrate` creates it; then the same command answers from it.
    let out = env.run(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db_file.exists());
    let out = env.run(&["case", "show", "00012345"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no case"), "{}", stderr(&out));
}

/// A file small enough to score by hand: two promises (one with the date
/// outside the labelled range), a payment claim, an `a|b` label, a thank-you
/// labelled as a payment claim (a miss), and a row without `received_at`.
const HAND_CHECKED: &str = "text,intent,promised_date,received_at
besok kami bayar,promise_to_pay,2026-03-04,2026-03-03T10:15:00+07:00
minggu depan ya,promise_to_pay,2026-03-20..2026-03-25,2026-03-03T10:15:00+07:00
sudah transfer tadi pagi,already_paid,,2026-03-03T10:15:00+07:00
stop,opt_out|complaint,,2026-03-03T10:15:00+07:00
terima kasih,already_paid,,2026-03-03T10:15:00+07:00
minta kode bayar,payment_link_request,
";

#[test]
fn classify_eval_figures_match_a_hand_checked_file() {
    let env = Env::new();
    let file = env.file("small.csv", HAND_CHECKED);
    let out = env.run(&[
        "classify",
        "--eval",
        &file,
        "--json",
        "--at",
        "2026-03-03T10:15:00+07:00",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["total"], 6);
    assert_eq!(r["correct"], 4);
    assert!((r["accuracy"].as_f64().unwrap() - 4.0 / 6.0).abs() < 1e-9);
    assert_eq!(
        r["confusion"],
        serde_json::json!({
            "promise_to_pay": {"promise_to_pay": 2},
            "already_paid": {"already_paid": 1, "acknowledgement": 1},
            "payment_link_request": {"payment_link_request": 1},
            "opt_out": {"opt_out": 1},
        })
    );
    let score = |intent: &str| {
        r["intents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["intent"] == intent)
            .cloned()
            .unwrap_or_else(|| panic!("no figures for {intent}: {r}"))
    };
    let paid = score("already_paid");
    assert_eq!(
        (&paid["support"], &paid["predicted"], &paid["hits"]),
        (&2.into(), &1.into(), &1.into())
    );
    assert_eq!(paid["precision"], 1.0);
    assert_eq!(paid["recall"], 0.5);
    let ack = score("acknowledgement");
    assert_eq!(ack["precision"], 0.0);
    assert!(ack["recall"].is_null(), "nothing was labelled a thank-you");
    assert_eq!(score("promise_to_pay")["recall"], 1.0);
    let misses: Vec<(i64, &str, &str)> = r["misses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["line"].as_i64().unwrap(),
                m["wrong"].as_str().unwrap(),
                m["got"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        misses,
        [
            (3, "date", "promise_to_pay"),
            (6, "intent", "acknowledgement")
        ]
    );

    // The text report carries the same figures and names every miss.
    let out = env.run(&[
        "classify",
        "--eval",
        &file,
        "--at",
        "2026-03-03T10:15:00+07:00",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("4 of 6 right, accuracy 66.7%"), "{text}");
    assert!(text.contains("line 3: \"minggu depan ya\""), "{text}");
    assert!(text.contains("line 6: \"terima kasih\""), "{text}");
}

#[test]
fn classify_eval_rejects_a_bad_file_with_one_line_per_error() {
    let env = Env::new();
    let file = env.file(
        "bad.csv",
        "text,intent,promised_date\nbesok,promise,2026-03-04\nlusa,promise_to_pay,5 maret\n",
    );
    let out = env.run(&[
        "classify",
        "--eval",
        &file,
        "--at",
        "2026-03-03T10:15:00+07:00",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("line 2, column intent: unknown intent `promise`"),
        "{err}"
    );
    assert!(err.contains("line 3, column promised_date:"), "{err}");
    assert!(out.stdout.is_empty());
    // Rows without a time need --at: a dev set scored against today's
    // clock would be wrong without saying so.
    let file = env.file(
        "no-time.csv",
        "text,intent,promised_date\nbesok,promise_to_pay,\n",
    );
    let out = env.run(&["classify", "--eval", &file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 2: no received_at; pass --at"),
        "{}",
        stderr(&out)
    );
}

/// Issue 9, item 16: `deliver --once` against a local Cloud API mock.
mod deliver_once {
    use super::{stderr, Env};
    use std::process::{Command, Output, Stdio};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const AT: &str = "2026-03-03T10:15:00+07:00";

    /// `n` employers with an overdue January bill, scanned at AT.
    fn overdue(env: &Env, n: usize) {
        let mut employers = "npp,name,branch,wa_phone,contact_name\n".to_owned();
        let mut bills = "npp,period,amount\n".to_owned();
        for i in 0..n {
            employers.push_str(&format!(
                "{:08},PT Maju {i},Pekanbaru,0812345678{i:02},Ibu Sari\n",
                100 + i
            ));
            bills.push_str(&format!("{:08},2026-01,1500000\n", 100 + i));
        }
        let e = env.file("e.csv", &employers);
        let b = env.file("b.csv", &bills);
        assert!(env.run(&["import", "employers", &e]).status.success());
        assert!(env.run(&["import", "bills", &b]).status.success());
        let out = env.run(&["scan", "--at", AT, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    fn deliver(env: &Env, server: &MockServer, per_second: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wa-smile"));
        c.args(["deliver", "--once", "--at", AT, "--json"])
            .env("WA_SMILE__DATABASE__URL", &env.url)
            .env("WA_SMILE__WHATSAPP__API_BASE", server.uri())
            .env("WA_SMILE__WHATSAPP__PHONE_NUMBER_ID", "106540352242922")
            .env("WA_SMILE__WHATSAPP__ACCESS_TOKEN", "test-access-token")
            .env("WA_SMILE__WHATSAPP__MESSAGES_PER_SECOND", per_second)
            .env_remove("WA_SMILE_CONFIG")
            .current_dir(env.dir.path());
        c
    }

    async fn states(env: &Env) -> Vec<(String, i64)> {
        let db = wa_smile::store::Db::connect(&env.url, 1).await.unwrap();
        let rows = db
            .query("SELECT state, attempts FROM outbox ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
        let out = rows
            .iter()
            .map(|r| (r.get("state").unwrap(), r.get("attempts").unwrap()))
            .collect();
        db.close().await;
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_halted_by_an_expired_token_exits_1_and_its_json_says_so() {
        let env = Env::new();
        overdue(&env, 3);
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v25.0/106540352242922/messages"))
            .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
                "error": {"message": "Error validating access token: Session has expired",
                          "type": "OAuthException", "code": 190, "fbtrace_id": "Ftest"}
            })))
            .mount(&server)
            .await;
        let mut cmd = deliver(&env, &server, "80");
        let out: Output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for key in ["sent", "failed", "retried", "skipped"] {
            assert_eq!(json[key], 0, "{key} in {json}");
        }
        assert_eq!(json["halted"], "auth_expired", "{json}");
        let err = stderr(&out);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(
            errors[0].contains("halted (auth_expired") && errors[0].contains("--resume"),
            "{err}"
        );
        // Nothing failed or stays claimed: the rows wait for a new token.
        assert!(states(&env)
            .await
            .iter()
            .all(|s| s == &("queued".to_owned(), 0)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_releases_unsent_claims_and_records_what_was_sent() {
        let env = Env::new();
        overdue(&env, 6);
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v25.0/106540352242922/messages"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": "6281234567800", "wa_id": "6281234567800"}],
                        "messages": [{"id": "wamid.CLI1"}],
                    }))
                    .set_delay(std::time::Duration::from_millis(500)),
            )
            .mount(&server)
            .await;
        // One a second: most messages are waiting for a pacing slot.
        let mut child = deliver(&env, &server, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while server.received_requests().await.unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no request arrived");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deliver did not stop within 10 s of SIGTERM"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let out = child.wait_with_output().unwrap();
        assert_eq!(status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("stopped by a signal"),
            "{}",
            stderr(&out)
        );
        let requests = server.received_requests().await.unwrap().len();
        let states = states(&env).await;
        let sent = states.iter().filter(|s| s.0 == "sent").count();
        assert_eq!(sent, requests, "every request is recorded: {states:?}");
        assert!(
            states
                .iter()
                .all(|s| s == &("sent".to_owned(), 1) || s == &("queued".to_owned(), 0)),
            "nothing left claimed: {states:?}"
        );
        assert!(states.len() == 6 && sent < 6, "{states:?}");
    }
}

#[test]
fn a_closed_stdout_ends_case_show_cleanly() {
    let env = Env::new();
    let employers = env.file("e.csv", "npp,name,branch,wa_phone,contact_name\n00012345,PT Maju Jaya,Pekanbaru,081234567890,Ibu Sari\n");
    let bills = env.file("b.csv", "npp,period,amount\n00012345,2026-01,1500000\n");
    assert!(env
        .run(&["import", "employers", &employers])
        .status
        .success());
    assert!(env.run(&["import", "bills", &bills]).status.success());
    assert!(env
        .run(&["scan", "--at", "2026-03-03T10:15:00+07:00"])
        .status
        .success());
    // `case show … | head -0`: the reader is gone before the first line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .args(["case", "show", "00012345"])
        .env("WA_SMILE__DATABASE__URL", &env.url)
        .env_remove("WA_SMILE_CONFIG")
        .current_dir(env.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
