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
