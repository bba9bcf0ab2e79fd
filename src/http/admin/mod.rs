//! The officers' admin UI: server-rendered HTML (minijinja, auto-escaped
//! because every template name ends in `.html`) with a little htmx. Forms
//! work without JavaScript; htmx only boosts navigation and sends the CSRF
//! token as a header.

mod dashboard;
pub mod exceptions;
pub mod exports;
mod timeline;
mod users;
mod views;
mod words;
mod worklist;

pub use timeline::label;

use super::error::AppError;
use super::AppState;
use crate::accounts::{self, Login, Principal, Session};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::Environment;
use std::collections::HashMap;
use std::sync::OnceLock;

pub const SESSION_COOKIE: &str = "wa_smile_session";
/// The login form's double-submit CSRF cookie (there is no session yet).
pub const LOGIN_CSRF_COOKIE: &str = "wa_smile_login_csrf";

const CSS: &str = include_str!("../../../static/admin.css");
const HTMX: &str = include_str!("../../../static/htmx.min.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/cases") }))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
        .route("/cases", get(views::case_list))
        .route("/cases/version", get(views::cases_version))
        .route("/cases/rows", get(views::case_rows))
        .route("/cases/{id}", get(views::case_page))
        .route("/cases/{id}/timeline", get(views::case_timeline))
        .route("/cases/{id}/media/{media}", get(views::case_media))
        .route("/cases/{id}/actions/{action}", post(views::case_action))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard.csv", get(dashboard::csv))
        .merge(exports::router())
        .merge(users::router())
        .merge(exceptions::router())
        .route("/my-work", get(worklist::my_work))
        .route(
            "/canned",
            get(worklist::canned_page).post(worklist::canned_submit),
        )
        .route(
            "/static/admin.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/static/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HTMX) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The template environment, built once.
pub fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        crate::messages::filters::register(&mut env);
        timeline::register_filters(&mut env);
        env.add_function("ops_alerts", crate::http::alerts::current);
        words::register(&mut env);
        for (name, src) in [
            (
                "admin/base.html",
                include_str!("../../../templates/admin/base.html"),
            ),
            (
                "admin/login.html",
                include_str!("../../../templates/admin/login.html"),
            ),
            (
                "admin/cases.html",
                include_str!("../../../templates/admin/cases.html"),
            ),
            (
                "admin/case_rows.html",
                include_str!("../../../templates/admin/case_rows.html"),
            ),
            (
                "admin/case_rows_poll.html",
                include_str!("../../../templates/admin/case_rows_poll.html"),
            ),
            (
                "admin/case_counts.html",
                include_str!("../../../templates/admin/case_counts.html"),
            ),
            (
                "admin/nav_unread.html",
                include_str!("../../../templates/admin/nav_unread.html"),
            ),
            (
                "admin/case.html",
                include_str!("../../../templates/admin/case.html"),
            ),
            (
                "admin/timeline.html",
                include_str!("../../../templates/admin/timeline.html"),
            ),
            (
                "admin/dashboard.html",
                include_str!("../../../templates/admin/dashboard.html"),
            ),
            (
                "admin/exports.html",
                include_str!("../../../templates/admin/exports.html"),
            ),
            (
                "admin/export_row.html",
                include_str!("../../../templates/admin/export_row.html"),
            ),
            (
                "admin/users.html",
                include_str!("../../../templates/admin/users.html"),
            ),
            (
                "admin/exceptions.html",
                include_str!("../../../templates/admin/exceptions.html"),
            ),
            (
                "admin/my_work.html",
                include_str!("../../../templates/admin/my_work.html"),
            ),
            (
                "admin/canned.html",
                include_str!("../../../templates/admin/canned.html"),
            ),
            (
                "admin/error.html",
                include_str!("../../../templates/admin/error.html"),
            ),
            (
                "admin/_costs.html",
                include_str!("../../../templates/admin/_costs.html"),
            ),
        ] {
            env.add_template(name, src).expect("admin templates parse");
        }
        env
    })
}

/// A serde value for a template context.
pub fn ser<T: serde::Serialize>(v: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

/// Renders `name` with `ctx` as an HTML response.
pub fn render(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    render_in(templates(), status, name, ctx)
}

/// Renders `name` from `env` with `ctx` as an HTML response; a template
/// that fails is logged and answered 500.
pub fn render_in(
    env: &minijinja::Environment<'_>,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
) -> Response {
    let html = env.get_template(name).and_then(|t| t.render(ctx));
    match html {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, template = name, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// An error shown as a page (the API's errors are JSON).
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        e.log();
        if matches!(e, AppError::Unauthorized) {
            return Redirect::to("/login").into_response();
        }
        render(
            e.status(),
            "admin/error.html",
            minijinja::context! { status => e.status().as_u16(), message => page_message(&e) },
        )
    }
}

/// What an officer reads on an error page: the handler's own words for a
/// bad request, otherwise a fixed Indonesian sentence per kind.
fn page_message(e: &AppError) -> String {
    match e {
        AppError::BadRequest(m) | AppError::Unprocessable { message: m, .. } => m.clone(),
        AppError::Csrf => {
            "Formulir ini sudah kedaluwarsa atau tidak sah. Muat ulang halaman, lalu coba lagi."
                .into()
        }
        AppError::Throttled => "Terlalu banyak percobaan. Silakan coba lagi nanti.".into(),
        AppError::Unauthorized => "Silakan masuk terlebih dahulu.".into(),
        AppError::Forbidden => "Anda tidak berhak mengakses halaman ini.".into(),
        AppError::NotFound => "Halaman atau kasus tidak ditemukan.".into(),
        AppError::Internal(_) => {
            "Maaf, terjadi kesalahan di server. Silakan coba lagi beberapa saat lagi.".into()
        }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A logged-in user; without a session, a redirect to `/login`.
pub struct User(pub Session);

impl User {
    pub fn principal(&self) -> &Principal {
        &self.0.principal
    }

    /// State-changing requests carry the session's token in the `csrf`
    /// field or the `X-CSRF-Token` header (htmx).
    pub fn check_csrf(
        &self,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
    ) -> Result<(), AppError> {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .or(form.get("csrf").map(String::as_str))
            .unwrap_or("");
        if accounts::same_secret(sent, &self.0.csrf_token) {
            Ok(())
        } else {
            Err(AppError::Csrf)
        }
    }
}

impl FromRequestParts<AppState> for User {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Some(c) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(PageError(AppError::Unauthorized));
        };
        accounts::session(&state.db, &c)
            .await?
            .map(User)
            .ok_or(PageError(AppError::Unauthorized))
    }
}

fn secure(state: &AppState) -> &'static str {
    if state.config.server.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        secure(state)
    ))
    .expect("cookie values are hex")
}

fn login_page(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let token = accounts::random_secret();
    let mut res = render(
        status,
        "admin/login.html",
        minijinja::context! { csrf => token.clone(), error => error },
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_CSRF_COOKIE, &token, 3600),
    );
    res
}

async fn login_form(State(state): State<AppState>) -> Response {
    login_page(&state, StatusCode::OK, None)
}

async fn login_submit(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let sent = form.get("csrf").map(String::as_str).unwrap_or("");
    if expected.is_empty() || !accounts::same_secret(sent, &expected) {
        return Err(PageError(AppError::Csrf));
    }
    let username = form.get("username").map(|s| s.trim()).unwrap_or("");
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let client = crate::http::client_address(&ext, &headers, &state.config.server);
    match accounts::login(&state.db, username, password, &client).await? {
        Login::Ok { cookie } => {
            let mut res = Redirect::to("/cases").into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    &state,
                    SESSION_COOKIE,
                    &cookie,
                    accounts::SESSION_TTL.num_seconds(),
                ),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
            );
            Ok(res)
        }
        Login::Invalid => Ok(login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("Nama pengguna atau kata sandi salah."),
        )),
        Login::Throttled => Ok(login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Terlalu banyak percobaan gagal. Coba lagi dalam 15 menit."),
        )),
    }
}

async fn logout(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    user.check_csrf(&headers, &form)?;
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        accounts::logout(&state.db, &c).await?;
    }
    let mut res = Redirect::to("/login").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    Ok(res)
}
