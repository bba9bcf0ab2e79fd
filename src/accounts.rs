//! Who may do what: logins (argon2 via `password-auth`), database sessions,
//! API bearer tokens and login throttling. Roles per CONTRACT: an `officer`
//! sees its own branch, a `supervisor` its own branch plus exports and the
//! dashboard, an `admin` everything.

use crate::audit::AuditEntry;
use crate::store::Db;
use anyhow::{bail, Context, Result};
use chrono::Duration;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// How long a session lives without a new login.
pub const SESSION_TTL: Duration = Duration::hours(12);
/// Failed logins of one username from one client in `THROTTLE_WINDOW`
/// before further attempts are refused without checking the password.
pub const MAX_FAILED_LOGINS: i64 = 5;
pub const THROTTLE_WINDOW: Duration = Duration::minutes(15);
/// The slower bound on one username from every client together, in
/// `USER_THROTTLE_WINDOW`: many addresses guessing one password.
pub const MAX_FAILED_LOGINS_PER_USER: i64 = 50;
pub const USER_THROTTLE_WINDOW: Duration = Duration::hours(1);
/// One client over every username (an office behind one NAT shares it).
pub const MAX_FAILED_LOGINS_PER_CLIENT: i64 = MAX_FAILED_LOGINS * 4;
/// First key of the PostgreSQL advisory lock that serialises counting.
const LOGIN_LOCK_KEY: i32 = 0x4c4f_4749;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Officer,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "officer" => Ok(Role::Officer),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}` (officer, supervisor or admin)"
            )),
        }
    }
}

/// An authenticated caller: a logged-in user or an API token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    /// The username, or `token:<name>` for an API token.
    pub name: String,
    pub role: Role,
    /// The branch a non-admin is confined to. An admin has none.
    pub branch: Option<String>,
}

impl Principal {
    /// The case-log actor for this caller.
    pub fn actor(&self) -> crate::case_log::Actor {
        crate::case_log::Actor::Officer(self.name.clone())
    }

    /// The one branch this caller is confined to, if any. Non-admins
    /// without a branch see nothing rather than everything.
    pub fn branch_scope(&self) -> Option<&str> {
        match self.role {
            Role::Admin => None,
            _ => Some(self.branch.as_deref().unwrap_or("")),
        }
    }

    pub fn may_see_branch(&self, branch: &str) -> bool {
        self.branch_scope().is_none_or(|b| b == branch)
    }

    pub fn is_supervisor(&self) -> bool {
        self.role >= Role::Supervisor
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A random URL-safe secret of 32 bytes, hex encoded.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn validate_branch(role: Role, branch: Option<&str>) -> Result<Option<String>> {
    let branch = branch.map(str::trim).filter(|b| !b.is_empty());
    match (role, branch) {
        (Role::Admin, _) => Ok(branch.map(str::to_owned)),
        (_, None) => bail!("role {role} needs --branch"),
        (_, Some(b)) => Ok(Some(b.to_owned())),
    }
}

/// Creates a login. The password is hashed with argon2 (`password-auth`).
pub async fn add_user(
    db: &Db,
    username: &str,
    password: &str,
    role: Role,
    branch: Option<&str>,
) -> Result<i64> {
    let username = username.trim();
    if username.is_empty()
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        bail!("username must be 1–64 letters, digits, `.`, `_` or `-`");
    }
    if password.chars().count() < 8 {
        bail!("password must have at least 8 characters");
    }
    let branch = validate_branch(role, branch)?;
    let hash = {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || password_auth::generate_hash(password)).await?
    };
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let exists = tx
        .query("SELECT id FROM users WHERE username = $1")
        .bind(username.to_owned())
        .fetch_optional(&mut tx)
        .await?;
    if exists.is_some() {
        bail!("user `{username}` already exists");
    }
    let id: i64 = tx
        .query(
            "INSERT INTO users (username, password_hash, role, branch, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(username.to_owned())
        .bind(hash)
        .bind(role.as_str())
        .bind(branch.clone())
        .bind(at)
        .fetch_one(&mut tx)
        .await
        .context("failed to create the user")?
        .get("id")?;
    tx.audit(
        AuditEntry::new(at, "cli", "user.created", format!("user:{id}"))
            .after(json!({"username": username, "role": role.as_str(), "branch": branch})),
    );
    tx.commit().await?;
    Ok(id)
}

/// Creates an API token and returns it; only its hash is stored.
pub async fn create_token(db: &Db, name: &str, role: Role, branch: Option<&str>) -> Result<String> {
    if role == Role::Officer {
        bail!("API tokens are for supervisor or admin roles");
    }
    let name = name.trim();
    if name.is_empty() {
        bail!("token name must not be empty");
    }
    let branch = validate_branch(role, branch)?;
    let token = format!("wsk_{}", random_secret());
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let id: i64 = tx
        .query(
            "INSERT INTO api_tokens (name, token_hash, role, branch, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name.to_owned())
        .bind(sha256_hex(&token))
        .bind(role.as_str())
        .bind(branch.clone())
        .bind(at)
        .fetch_one(&mut tx)
        .await
        .context("failed to create the token")?
        .get("id")?;
    tx.audit(
        AuditEntry::new(at, "cli", "api_token.created", format!("api_token:{id}"))
            .after(json!({"name": name, "role": role.as_str(), "branch": branch})),
    );
    tx.commit().await?;
    Ok(token)
}

/// The caller a bearer token stands for, if it is valid.
pub async fn token_principal(db: &Db, token: &str) -> Result<Option<Principal>> {
    let row = db
        .query(
            "SELECT name, role, branch FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(sha256_hex(token))
        .fetch_optional(db)
        .await?;
    row.map(|r| {
        Ok(Principal {
            name: format!("token:{}", r.get::<String>("name")?),
            role: r
                .get::<String>("role")?
                .parse()
                .map_err(anyhow::Error::msg)?,
            branch: r.get("branch")?,
        })
    })
    .transpose()
}

/// The outcome of a login attempt.
#[derive(Debug)]
pub enum Login {
    /// The session cookie value (give it to the browser; never store it).
    Ok {
        cookie: String,
    },
    Invalid,
    Throttled,
}

/// Counts this attempt, then checks the password, and on success opens a
/// session. Throttled per (username, client), with looser bounds per
/// username from every client and per client over every username, so one
/// client cannot lock an officer out everywhere.
pub async fn login(db: &Db, username: &str, password: &str, client: &str) -> Result<Login> {
    let now = crate::time::now();
    let Some(attempt) = count_attempt(db, username, client, now).await? else {
        return Ok(Login::Throttled);
    };
    let user = db
        .query("SELECT id, password_hash FROM users WHERE username = $1 AND disabled_at IS NULL")
        .bind(username.to_owned())
        .fetch_optional(db)
        .await?;
    let (user_id, hash) = match user {
        Some(r) => (Some(r.get::<i64>("id")?), r.get::<String>("password_hash")?),
        None => (None, String::new()),
    };
    let password = password.to_owned();
    // An unknown or disabled username is checked against a dummy hash, so
    // it costs the same time as a wrong password and names no one.
    let ok = tokio::task::spawn_blocking(move || {
        let hash = if hash.is_empty() { dummy_hash() } else { &hash };
        password_auth::verify_password(password, hash).is_ok()
    })
    .await?;
    let Some(user_id) = user_id.filter(|_| ok) else {
        return Ok(Login::Invalid);
    };
    db.query("UPDATE login_attempts SET success = 1 WHERE id = $1")
        .bind(attempt)
        .execute(db)
        .await?;
    let cookie = random_secret();
    db.query(
        "INSERT INTO sessions (id, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(sha256_hex(&cookie))
    .bind(user_id)
    .bind(random_secret())
    .bind(now)
    .bind(now + SESSION_TTL)
    .execute(db)
    .await?;
    Ok(Login::Ok { cookie })
}

/// The hash an unknown username is verified against (same parameters as a
/// real one), made once per process.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| password_auth::generate_hash(random_secret()))
}

/// Hashes the dummy password ahead of the first login, so the first
/// unknown username does not take twice as long as a wrong password.
pub async fn warm_up() {
    let _ = tokio::task::spawn_blocking(dummy_hash).await;
}

/// Records the attempt as a failure before its password is checked, unless
/// a bound is already reached (`None`). Counting and recording are one
/// serialised step, so concurrent guesses cannot all pass the count while
/// the slow hash runs. A successful check later marks the row a success.
async fn count_attempt(
    db: &Db,
    username: &str,
    client: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<i64>> {
    let mut tx = db.begin().await?;
    // SQLite's `BEGIN IMMEDIATE` already serialises writers; PostgreSQL
    // needs the lock (per schema, so test schemas do not wait on each other).
    if tx.backend() == crate::store::Backend::Postgres {
        tx.query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
            .bind(LOGIN_LOCK_KEY)
            .execute(&mut tx)
            .await
            .context("failed to lock the login attempts")?;
    }
    let since = now - THROTTLE_WINDOW;
    let failures = tx
        .query(
            "SELECT \
               (SELECT COUNT(*) FROM login_attempts WHERE username = $1 AND client = $2 AND at > $3 AND success = 0) AS by_pair, \
               (SELECT COUNT(*) FROM login_attempts WHERE username = $1 AND at > $4 AND success = 0) AS by_user, \
               (SELECT COUNT(*) FROM login_attempts WHERE client = $2 AND at > $3 AND success = 0) AS by_client",
        )
        .bind(username.to_owned())
        .bind(client.to_owned())
        .bind(since)
        .bind(now - USER_THROTTLE_WINDOW)
        .fetch_one(&mut tx)
        .await?;
    let by_pair: i64 = failures.get("by_pair")?;
    let by_user: i64 = failures.get("by_user")?;
    let by_client: i64 = failures.get("by_client")?;
    if by_pair >= MAX_FAILED_LOGINS
        || by_user >= MAX_FAILED_LOGINS_PER_USER
        || by_client >= MAX_FAILED_LOGINS_PER_CLIENT
    {
        tx.rollback().await?;
        return Ok(None);
    }
    let id: i64 = tx
        .query(
            "INSERT INTO login_attempts (username, client, at, success) VALUES ($1, $2, $3, 0) RETURNING id",
        )
        .bind(username.to_owned())
        .bind(client.to_owned())
        .bind(now)
        .fetch_one(&mut tx)
        .await?
        .get("id")?;
    tx.commit().await?;
    Ok(Some(id))
}

/// Clears a username's failed logins, so it is no longer throttled from
/// anywhere. Returns how many failures were cleared.
pub async fn unlock_user(db: &Db, username: &str, actor: &str) -> Result<u64> {
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let Some(user) = tx
        .query("SELECT id FROM users WHERE username = $1")
        .bind(username.to_owned())
        .fetch_optional(&mut tx)
        .await?
    else {
        bail!("no user `{username}`");
    };
    let id: i64 = user.get("id")?;
    let cleared = tx
        .query("DELETE FROM login_attempts WHERE username = $1 AND success = 0")
        .bind(username.to_owned())
        .execute(&mut tx)
        .await
        .context("failed to clear the failed logins")?;
    tx.audit(
        AuditEntry::new(at, actor, "user.unlocked", format!("user:{id}"))
            .after(json!({"username": username, "cleared_failures": cleared})),
    );
    tx.commit().await?;
    Ok(cleared)
}

/// A live session: who and the CSRF token its forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf_token: String,
}

pub async fn session(db: &Db, cookie: &str) -> Result<Option<Session>> {
    let row = db
        .query(
            "SELECT u.username, u.role, u.branch, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(sha256_hex(cookie))
        .bind(crate::time::now())
        .fetch_optional(db)
        .await?;
    row.map(|r| {
        Ok(Session {
            principal: Principal {
                name: r.get("username")?,
                role: r
                    .get::<String>("role")?
                    .parse()
                    .map_err(anyhow::Error::msg)?,
                branch: r.get("branch")?,
            },
            csrf_token: r.get("csrf_token")?,
        })
    })
    .transpose()
}

pub async fn logout(db: &Db, cookie: &str) -> Result<()> {
    db.query("DELETE FROM sessions WHERE id = $1")
        .bind(sha256_hex(cookie))
        .execute(db)
        .await?;
    Ok(())
}

/// Users of a branch (for the assign drop-down).
pub async fn usernames(db: &Db, branch: Option<&str>) -> Result<Vec<String>> {
    let rows = match branch {
        Some(b) => {
            db.query("SELECT username FROM users WHERE disabled_at IS NULL AND branch = $1 ORDER BY username")
                .bind(b.to_owned())
                .fetch_all(db)
                .await?
        }
        None => {
            db.query("SELECT username FROM users WHERE disabled_at IS NULL ORDER BY username")
                .fetch_all(db)
                .await?
        }
    };
    rows.iter().map(|r| r.get("username")).collect()
}

/// Constant-time string comparison for CSRF tokens.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
