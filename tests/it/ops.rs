//! Running it for a province (issue 15): start-up honesty, Meta's template
//! lifecycle, the account's health, what messages cost, and operations.

use std::process::Command;

/// `serve` with none of Meta's secrets names each one and exits 2 before
/// touching the database.
#[test]
fn serve_without_secrets_exits_2_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_wa-smile"))
        .arg("serve")
        .env("WA_SMILE__DATABASE__URL", &url)
        .env("WA_SMILE__SERVER__BIND", "127.0.0.1:0")
        .env("WA_SMILE__WHATSAPP__APP_SECRET", "only-this-one")
        .env_remove("WA_SMILE_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    for key in ["access_token", "verify_token", "phone_number_id"] {
        assert!(
            lines.iter().any(|l| l.contains(&format!("whatsapp.{key} is not set"))),
            "{key} not named: {stderr}"
        );
    }
    assert!(!stderr.contains("app_secret"), "{stderr}");
    assert!(
        !dir.path().join("ops.db").exists(),
        "refused before creating the database"
    );
}
