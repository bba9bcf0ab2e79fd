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
/// Failed logins per username (or per client) in `THROTTLE_WINDOW` before
/// further attempts are refused without checking the password.
pub const MAX_FAILED_LOGINS: i64 = 5;
pub const THROTTLE_WINDOW: Duration = Duration::minutes(15);

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

/// Checks a password, throttled per username and per client, and on success
/// opens a session.
pub async fn login(db: &Db, username: &str, password: &str, client: &str) -> Result<Login> {
    let now = crate::time::now();
    let since = now - THROTTLE_WINDOW;
    let failures = db
        .query(
            "SELECT \
               (SELECT COUNT(*) FROM login_attempts WHERE username = $1 AND at > $3 AND success = 0) AS by_user, \
               (SELECT COUNT(*) FROM login_attempts WHERE client = $2 AND at > $3 AND success = 0) AS by_client",
        )
        .bind(username.to_owned())
        .bind(client.to_owned())
        .bind(since)
        .fetch_one(db)
        .await?;
    let by_user: i64 = failures.get("by_user")?;
    let by_client: i64 = failures.get("by_client")?;
    // Per client is looser: an office behind one NAT address shares it.
    if by_user >= MAX_FAILED_LOGINS || by_client >= MAX_FAILED_LOGINS * 4 {
        return Ok(Login::Throttled);
    }
    let user = db
        .query("SELECT id, password_hash FROM users WHERE username = $1 AND disabled_at IS NULL")
        .bind(username.to_owned())
        .fetch_optional(db)
        .await?;
    let ok_id = match user {
        Some(r) => {
            let hash: String = r.get("password_hash")?;
            let password = password.to_owned();
            let ok = tokio::task::spawn_blocking(move || {
                password_auth::verify_password(password, &hash).is_ok()
            })
            .await?;
            ok.then(|| r.get::<i64>("id")).transpose()?
        }
        None => None,
    };
    db.query("INSERT INTO login_attempts (username, client, at, success) VALUES ($1, $2, $3, $4)")
        .bind(username.to_owned())
        .bind(client.to_owned())
        .bind(now)
        .bind(i64::from(ok_id.is_some()))
        .execute(db)
        .await?;
    let Some(user_id) = ok_id else {
        return Ok(Login::Invalid);
    };
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
