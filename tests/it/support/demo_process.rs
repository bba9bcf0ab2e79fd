//! The real `wa-smile demo` binary in the background, waited for until it
//! prints its tour; shared by the demo and browser tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The demo process; killed however the test ends.
pub struct Demo {
    child: Child,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub password: String,
    /// Every line the demo printed up to "ready".
    pub lines: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line of the tour: (NPP, wa_id) of the employer it names.
pub fn tour_employer(line: &str) -> (String, String) {
    let npp = line
        .split("(NPP ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("tour line names an NPP")
        .to_owned();
    let wa_id = line
        .split("/simulator/")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .expect("tour line links a chat")
        .to_owned();
    (npp, wa_id)
}

impl Demo {
    /// Starts the demo (at `at`, RFC 3339) and waits for its tour.
    pub fn start(at: Option<&str>) -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wa-smile"));
        cmd.arg("demo")
            .arg("--data")
            .arg(dir.path())
            .env("WA_SMILE__SERVER__BIND", "127.0.0.1:0")
            .env("WA_SMILE__LOG__LEVEL", "warn")
            .env_remove("WA_SMILE_CONFIG")
            .env_remove("RUST_LOG")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(at) = at {
            cmd.args(["--at", at]);
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.starts_with("ready") => break,
                Ok(l) => lines.push(l),
                Err(_) => panic!(
                    "the demo did not get ready; it printed:\n{}",
                    lines.join("\n")
                ),
            }
        }
        let admin = lines
            .iter()
            .find(|l| l.trim_start().starts_with("admin UI:"))
            .expect("the tour prints the admin URL");
        let base = admin
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .trim_end_matches("/cases")
            .to_owned();
        let password = admin.split_whitespace().last().unwrap().to_owned();
        Demo {
            child,
            dir,
            base,
            password,
            lines,
        }
    }

    /// The tour's numbered suggestion `n` ("1.", "2.", "3.").
    pub fn suggestion(&self, n: u32) -> String {
        let prefix = format!("{n}. ");
        self.lines
            .iter()
            .find(|l| l.trim_start().starts_with(&prefix))
            .unwrap_or_else(|| panic!("no suggestion {n} in:\n{}", self.lines.join("\n")))
            .clone()
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wa-smile"))
            .args(args)
            .env(
                "WA_SMILE__DATABASE__URL",
                format!(
                    "sqlite://{}",
                    self.dir.path().join("wa-smile-demo.db").display()
                ),
            )
            .env_remove("WA_SMILE_CONFIG")
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    pub fn case(&self, npp: &str) -> serde_json::Value {
        let out = self.cli(&["case", "show", npp, "--json"]);
        assert!(
            out.status.success(),
            "case show {npp}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls the employer's case until `done` holds (or 15 s pass).
    pub fn case_until(
        &self,
        npp: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let case = self.case(npp);
            if done(&case) || Instant::now() > deadline {
                return case;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
