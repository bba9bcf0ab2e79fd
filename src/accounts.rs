//! Who may do what: logins (argon2 via `password-auth`), database sessions,
//! API bearer tokens and login throttling. Roles per CONTRACT: an `officer`
//! sees its own branch, a `supervisor` its own branch plus exports and the
//! dashboard, an `admin` everything.

use crate::audit::AuditEntry;
use crate::store::{Db, StoreError, TextColumn};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, Utc};
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

impl TextColumn for Role {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

crate::store_column!(text: Role);

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

/// The branch a login or token of `role` works in: required unless admin,
/// and one of the branches that exist (see [`crate::branches`]).
async fn validate_branch(db: &Db, role: Role, branch: Option<&str>) -> Result<Option<String>> {
    let branch = branch.map(str::trim).filter(|b| !b.is_empty());
    let branch = match (role, branch) {
        (Role::Admin, None) => return Ok(None),
        (_, None) => bail!("role {role} needs --branch"),
        (_, Some(b)) => b,
    };
    match crate::branches::check(db, branch).await? {
        Ok(b) => Ok(Some(b)),
        Err(unknown) => bail!(unknown),
    }
}

/// Creates a login. The password is hashed with argon2 (`password-auth`).
/// Recorded in the audit trail as done by `cli`; see [`add_user_by`].
pub async fn add_user(
    db: &Db,
    username: &str,
    password: &str,
    role: Role,
    branch: Option<&str>,
) -> Result<i64> {
    add_user_by(db, username, password, role, branch, "cli").await
}

#[derive(sqlx::FromRow)]
struct IdRow {
    id: i64,
}

fn check_username(username: &str) -> Result<()> {
    if username.is_empty()
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        bail!("username must be 1–64 letters, digits, `.`, `_` or `-`");
    }
    Ok(())
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        bail!("password must have at least 8 characters");
    }
    Ok(())
}

async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    Ok(tokio::task::spawn_blocking(move || password_auth::generate_hash(password)).await?)
}

/// [`add_user`], audited under `actor` (`cli`, `officer:<admin>`). The
/// username's unique key decides a duplicate, so two concurrent adds of one
/// name cannot both succeed.
pub async fn add_user_by(
    db: &Db,
    username: &str,
    password: &str,
    role: Role,
    branch: Option<&str>,
    actor: &str,
) -> Result<i64> {
    let username = username.trim();
    check_username(username)?;
    check_password(password)?;
    let branch = validate_branch(db, role, branch).await?;
    let hash = hash_password(password).await?;
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let inserted = tx
        .query(
            "INSERT INTO users (username, password_hash, role, branch, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(username.to_owned())
        .bind(hash)
        .bind(role)
        .bind(branch.clone())
        .bind(at)
        .fetch_one_as::<IdRow>(&mut tx)
        .await;
    let id = match inserted {
        Ok(r) => r.id,
        Err(StoreError::Conflict { .. }) => bail!("user `{username}` already exists"),
        Err(e) => return Err(anyhow::Error::from(e).context("failed to create the user")),
    };
    tx.audit(
        AuditEntry::new(at, actor, "user.created", format!("user:{id}"))
            .after(json!({"username": username, "role": role.as_str(), "branch": branch})),
    );
    tx.commit().await?;
    Ok(id)
}

/// Creates an API token and returns it; only its hash is stored. Audited
/// as done by `cli`; see [`create_token_by`].
pub async fn create_token(db: &Db, name: &str, role: Role, branch: Option<&str>) -> Result<String> {
    create_token_by(db, name, role, branch, "cli").await
}

/// [`create_token`], audited under `actor`. One active token per name (a
/// unique key), so `token revoke NAME` revokes exactly that one.
pub async fn create_token_by(
    db: &Db,
    name: &str,
    role: Role,
    branch: Option<&str>,
    actor: &str,
) -> Result<String> {
    if role == Role::Officer {
        bail!("API tokens are for supervisor or admin roles");
    }
    let name = name.trim();
    if name.is_empty() {
        bail!("token name must not be empty");
    }
    let branch = validate_branch(db, role, branch).await?;
    let token = format!("wsk_{}", random_secret());
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let inserted = tx
        .query(
            "INSERT INTO api_tokens (name, token_hash, role, branch, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name.to_owned())
        .bind(sha256_hex(&token))
        .bind(role)
        .bind(branch.clone())
        .bind(at)
        .fetch_one_as::<IdRow>(&mut tx)
        .await;
    let id = match inserted {
        Ok(r) => r.id,
        Err(StoreError::Conflict { .. }) => {
            bail!("an active token named `{name}` already exists (revoke it first)")
        }
        Err(e) => return Err(anyhow::Error::from(e).context("failed to create the token")),
    };
    tx.audit(
        AuditEntry::new(at, actor, "api_token.created", format!("api_token:{id}"))
            .after(json!({"name": name, "role": role.as_str(), "branch": branch})),
    );
    tx.commit().await?;
    Ok(token)
}

#[derive(sqlx::FromRow)]
struct PrincipalRow {
    name: String,
    role: Role,
    branch: Option<String>,
}

/// The caller a bearer token stands for, if it is valid.
pub async fn token_principal(db: &Db, token: &str) -> Result<Option<Principal>> {
    let row = db
        .query(
            "SELECT name, role, branch FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(sha256_hex(token))
        .fetch_optional_as::<PrincipalRow>(db)
        .await?;
    Ok(row.map(|r| Principal {
        name: format!("token:{}", r.name),
        role: r.role,
        branch: r.branch,
    }))
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
    #[derive(sqlx::FromRow)]
    struct Credentials {
        id: i64,
        password_hash: String,
    }
    let user = db
        .query("SELECT id, password_hash FROM users WHERE username = $1 AND disabled_at IS NULL")
        .bind(username.to_owned())
        .fetch_optional_as::<Credentials>(db)
        .await?;
    let (user_id, hash) = match user {
        Some(r) => (Some(r.id), r.password_hash),
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
    db.query("UPDATE users SET last_login_at = $2 WHERE id = $1")
        .bind(user_id)
        .bind(now)
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
    #[derive(sqlx::FromRow)]
    struct Failures {
        by_pair: i64,
        by_user: i64,
        by_client: i64,
    }
    let Failures {
        by_pair,
        by_user,
        by_client,
    } = tx
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
        .fetch_one_as(&mut tx)
        .await?;
    if by_pair >= MAX_FAILED_LOGINS
        || by_user >= MAX_FAILED_LOGINS_PER_USER
        || by_client >= MAX_FAILED_LOGINS_PER_CLIENT
    {
        tx.rollback().await?;
        return Ok(None);
    }
    let id = tx
        .query(
            "INSERT INTO login_attempts (username, client, at, success) VALUES ($1, $2, $3, 0) RETURNING id",
        )
        .bind(username.to_owned())
        .bind(client.to_owned())
        .bind(now)
        .fetch_one_as::<IdRow>(&mut tx)
        .await?
        .id;
    tx.commit().await?;
    Ok(Some(id))
}

/// Clears a username's failed logins, so it is no longer throttled from
/// anywhere. Returns how many failures were cleared.
pub async fn unlock_user(db: &Db, username: &str, actor: &str) -> Result<u64> {
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let Some(IdRow { id }) = tx
        .query("SELECT id FROM users WHERE username = $1")
        .bind(username.to_owned())
        .fetch_optional_as(&mut tx)
        .await?
    else {
        bail!("no user `{username}`");
    };
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
    #[derive(sqlx::FromRow)]
    struct SessionRow {
        username: String,
        role: Role,
        branch: Option<String>,
        csrf_token: String,
    }
    let row = db
        .query(
            "SELECT u.username, u.role, u.branch, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(sha256_hex(cookie))
        .bind(crate::time::now())
        .fetch_optional_as::<SessionRow>(db)
        .await?;
    Ok(row.map(|r| Session {
        principal: Principal {
            name: r.username,
            role: r.role,
            branch: r.branch,
        },
        csrf_token: r.csrf_token,
    }))
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
    let rows: Vec<(String,)> = match branch {
        Some(b) => {
            db.query("SELECT username FROM users WHERE disabled_at IS NULL AND branch = $1 ORDER BY username")
                .bind(b.to_owned())
                .fetch_all_as(db)
                .await?
        }
        None => {
            db.query("SELECT username FROM users WHERE disabled_at IS NULL ORDER BY username")
                .fetch_all_as(db)
                .await?
        }
    };
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

/// A login as the admin page and `user list` show it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
    pub branch: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Failed logins in the last [`THROTTLE_WINDOW`].
    pub recent_failures: i64,
    /// Throttled now: [`MAX_FAILED_LOGINS`] failures in the window from
    /// some client, or [`MAX_FAILED_LOGINS_PER_USER`] from all.
    #[sqlx(skip)]
    pub locked: bool,
}

/// Every login, by username.
pub async fn list_users(db: &Db) -> Result<Vec<UserInfo>> {
    let now = crate::time::now();
    #[derive(sqlx::FromRow)]
    struct Locked {
        username: String,
    }
    let mut users: Vec<UserInfo> = db
        .query(
            "SELECT u.username, u.role, u.branch, u.created_at, u.last_login_at, u.disabled_at, \
               (SELECT COUNT(*) FROM login_attempts a WHERE a.username = u.username AND a.at > $1 AND a.success = 0) AS recent_failures \
             FROM users u ORDER BY u.username",
        )
        .bind(now - THROTTLE_WINDOW)
        .fetch_all_as(db)
        .await?;
    let locked: Vec<Locked> = db
        .query(
            "SELECT username FROM login_attempts WHERE at > $1 AND success = 0 \
             GROUP BY username, client HAVING COUNT(*) >= $2 \
             UNION SELECT username FROM login_attempts WHERE at > $3 AND success = 0 \
             GROUP BY username HAVING COUNT(*) >= $4",
        )
        .bind(now - THROTTLE_WINDOW)
        .bind(MAX_FAILED_LOGINS)
        .bind(now - USER_THROTTLE_WINDOW)
        .bind(MAX_FAILED_LOGINS_PER_USER)
        .fetch_all_as(db)
        .await?;
    for u in &mut users {
        u.locked = locked.iter().any(|l| l.username == u.username);
    }
    Ok(users)
}

/// Logs user `id` out everywhere; how many sessions ended.
async fn end_sessions(tx: &mut crate::store::Tx, id: i64) -> Result<u64> {
    Ok(tx
        .query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?)
}

/// Looks a user up for a change, in the change's transaction.
async fn user_id(tx: &mut crate::store::Tx, username: &str) -> Result<i64> {
    match tx
        .query("SELECT id FROM users WHERE username = $1")
        .bind(username.to_owned())
        .fetch_optional_as::<IdRow>(tx)
        .await?
    {
        Some(r) => Ok(r.id),
        None => bail!("no user `{username}`"),
    }
}

/// Disables a login and ends its sessions at once (the next request of an
/// open browser goes to the login page). Returns false if it already was.
pub async fn disable_user(db: &Db, username: &str, actor: &str) -> Result<bool> {
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let id = user_id(&mut tx, username).await?;
    let changed = tx
        .query("UPDATE users SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(&mut tx)
        .await?;
    let sessions = end_sessions(&mut tx, id).await?;
    if changed > 0 {
        tx.audit(
            AuditEntry::new(at, actor, "user.disabled", format!("user:{id}"))
                .after(json!({"username": username, "sessions_ended": sessions})),
        );
    }
    tx.commit().await?;
    Ok(changed > 0)
}

/// Enables a disabled login. Returns false if it was not disabled.
pub async fn enable_user(db: &Db, username: &str, actor: &str) -> Result<bool> {
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let id = user_id(&mut tx, username).await?;
    let changed = tx
        .query("UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL")
        .bind(id)
        .execute(&mut tx)
        .await?;
    if changed > 0 {
        tx.audit(
            AuditEntry::new(at, actor, "user.enabled", format!("user:{id}"))
                .after(json!({"username": username})),
        );
    }
    tx.commit().await?;
    Ok(changed > 0)
}

/// Sets a new password and ends the user's sessions (whoever knew the old
/// one is logged out).
pub async fn reset_password(db: &Db, username: &str, password: &str, actor: &str) -> Result<()> {
    check_password(password)?;
    let hash = hash_password(password).await?;
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let id = user_id(&mut tx, username).await?;
    tx.query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(&mut tx)
        .await?;
    let sessions = end_sessions(&mut tx, id).await?;
    tx.audit(
        AuditEntry::new(at, actor, "user.password_reset", format!("user:{id}"))
            .after(json!({"username": username, "sessions_ended": sessions})),
    );
    tx.commit().await?;
    Ok(())
}

/// An API token as `token list` and the admin page show it (never the secret).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub branch: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Every token, active first, then by name.
pub async fn list_tokens(db: &Db) -> Result<Vec<TokenInfo>> {
    Ok(db
        .query(
            "SELECT id, name, role, branch, created_at, revoked_at FROM api_tokens \
             ORDER BY CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END, name, id",
        )
        .fetch_all_as(db)
        .await?)
}

/// Revokes the active token named `name`: its next request gets 401.
pub async fn revoke_token(db: &Db, name: &str, actor: &str) -> Result<()> {
    let at = crate::time::now();
    let mut tx = db.begin().await?;
    let Some(IdRow { id }) = tx
        .query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING id",
        )
        .bind(name.trim().to_owned())
        .bind(at)
        .fetch_optional_as(&mut tx)
        .await?
    else {
        bail!("no active token named `{name}`");
    };
    tx.audit(
        AuditEntry::new(at, actor, "api_token.revoked", format!("api_token:{id}"))
            .after(json!({"name": name.trim()})),
    );
    tx.commit().await?;
    Ok(())
}

/// Constant-time string comparison for CSRF tokens.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
