//! `/admin/users`, admins only: the logins (role, branch, last login,
//! locked or disabled) and the API tokens, with add, disable, enable,
//! unlock, reset password, create and revoke. Every change goes through
//! [`crate::accounts`], which audits it under `officer:<admin>`.

use super::exports::{actor_of, waktu};
use super::{render, ser, PageError, User};
use crate::accounts::{self, Role, TokenInfo, UserInfo};
use crate::http::error::AppError;
use crate::http::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(page).post(add))
        .route("/admin/users/{username}/{action}", post(user_action))
        .route("/admin/tokens", post(create_token))
        .route("/admin/tokens/{name}/revoke", post(revoke_token))
}

#[derive(serde::Serialize)]
struct UserView {
    username: String,
    role: &'static str,
    branch: String,
    created: String,
    last_login: String,
    disabled: Option<String>,
    locked: bool,
    recent_failures: i64,
}

#[derive(serde::Serialize)]
struct TokenView {
    name: String,
    role: &'static str,
    branch: String,
    created: String,
    revoked: Option<String>,
}

fn role_label(r: Role) -> &'static str {
    match r {
        Role::Officer => "Petugas",
        Role::Supervisor => "Supervisor",
        Role::Admin => "Admin",
    }
}

fn admin(user: &User) -> Result<(), PageError> {
    if user.principal().role == Role::Admin {
        Ok(())
    } else {
        Err(AppError::Forbidden.into())
    }
}

/// The page, with an outcome line (`notice`), an error, or a token shown once.
async fn show(
    state: &AppState,
    user: &User,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    new_token: Option<String>,
) -> Result<Response, PageError> {
    let tz = state.tz();
    let users: Vec<UserView> = accounts::list_users(&state.db)
        .await?
        .into_iter()
        .map(|u: UserInfo| UserView {
            role: role_label(u.role),
            branch: u.branch.unwrap_or_else(|| "—".into()),
            created: waktu(u.created_at, tz),
            last_login: u
                .last_login_at
                .map(|t| waktu(t, tz))
                .unwrap_or_else(|| "belum pernah".into()),
            disabled: u.disabled_at.map(|t| waktu(t, tz)),
            locked: u.locked,
            recent_failures: u.recent_failures,
            username: u.username,
        })
        .collect();
    let tokens: Vec<TokenView> = accounts::list_tokens(&state.db)
        .await?
        .into_iter()
        .map(|t: TokenInfo| TokenView {
            name: t.name,
            role: role_label(t.role),
            branch: t.branch.unwrap_or_else(|| "—".into()),
            created: waktu(t.created_at, tz),
            revoked: t.revoked_at.map(|x| waktu(x, tz)),
        })
        .collect();
    let branches = crate::branches::known(&state.db).await?;
    Ok(render(
        status,
        "admin/users.html",
        context! {
            user => ser(user.principal()), csrf => user.0.csrf_token.clone(), nav => "users",
            users => ser(&users), tokens => ser(&tokens), branches => branches,
            notice => notice, error => error, new_token => new_token,
        },
    ))
}

async fn page(State(state): State<AppState>, user: User) -> Result<Response, PageError> {
    admin(&user)?;
    show(&state, &user, StatusCode::OK, None, None, None).await
}

fn see_other() -> Response {
    let mut r = Redirect::to("/admin/users").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

/// A refused change: the page again, with the reason (422).
async fn refused(state: &AppState, user: &User, e: anyhow::Error) -> Result<Response, PageError> {
    show(
        state,
        user,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        Some(format!("{e:#}")),
        None,
    )
    .await
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(|s| s.trim()).unwrap_or("")
}

async fn add(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    admin(&user)?;
    user.check_csrf(&headers, &form)?;
    let role: Role = match field(&form, "role").parse() {
        Ok(r) => r,
        Err(e) => return refused(&state, &user, anyhow::anyhow!(e)).await,
    };
    let branch = Some(field(&form, "branch")).filter(|b| !b.is_empty());
    let password = form.get("password").map(String::as_str).unwrap_or("");
    match accounts::add_user_by(
        &state.db,
        field(&form, "username"),
        password,
        role,
        branch,
        &actor_of(user.principal()),
    )
    .await
    {
        Ok(_) => Ok(see_other()),
        Err(e) => refused(&state, &user, e).await,
    }
}

async fn user_action(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Path((username, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    admin(&user)?;
    user.check_csrf(&headers, &form)?;
    let actor = actor_of(user.principal());
    let db = &state.db;
    let outcome = match action.as_str() {
        "disable" if username == user.principal().name => Err(anyhow::anyhow!(
            "Anda tidak dapat menonaktifkan akun Anda sendiri."
        )),
        "disable" => accounts::disable_user(db, &username, &actor)
            .await
            .map(|_| format!("{username} dinonaktifkan; sesinya diakhiri.")),
        "enable" => accounts::enable_user(db, &username, &actor)
            .await
            .map(|_| format!("{username} diaktifkan kembali.")),
        "unlock" => accounts::unlock_user(db, &username, &actor)
            .await
            .map(|n| format!("{username} dibuka kuncinya ({n} percobaan gagal dihapus).")),
        "reset-password" => {
            let password = form.get("password").map(String::as_str).unwrap_or("");
            accounts::reset_password(db, &username, password, &actor)
                .await
                .map(|_| format!("Kata sandi {username} diganti; sesinya diakhiri."))
        }
        _ => return Err(AppError::NotFound.into()),
    };
    match outcome {
        Ok(notice) => show(&state, &user, StatusCode::OK, Some(notice), None, None).await,
        Err(e) => refused(&state, &user, e).await,
    }
}

async fn create_token(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    admin(&user)?;
    user.check_csrf(&headers, &form)?;
    let role: Role = match field(&form, "role").parse() {
        Ok(r) => r,
        Err(e) => return refused(&state, &user, anyhow::anyhow!(e)).await,
    };
    let branch = Some(field(&form, "branch")).filter(|b| !b.is_empty());
    match accounts::create_token_by(
        &state.db,
        field(&form, "name"),
        role,
        branch,
        &actor_of(user.principal()),
    )
    .await
    {
        Ok(token) => show(&state, &user, StatusCode::OK, None, None, Some(token)).await,
        Err(e) => refused(&state, &user, e).await,
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    admin(&user)?;
    user.check_csrf(&headers, &form)?;
    match accounts::revoke_token(&state.db, &name, &actor_of(user.principal())).await {
        Ok(()) => {
            show(
                &state,
                &user,
                StatusCode::OK,
                Some(format!("Token {name} dicabut.")),
                None,
                None,
            )
            .await
        }
        Err(e) => refused(&state, &user, e).await,
    }
}
