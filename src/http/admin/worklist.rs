//! An officer's own day ("Pekerjaan saya hari ini"): the cases assigned to
//! them that need them today, each section one case-list query; and the
//! canned replies officers keep.

use super::{render, ser, views, PageError, User};
use crate::caselist::{self, Filter};
use crate::http::error::AppError;
use crate::http::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use std::collections::HashMap;

#[derive(serde::Serialize)]
struct Section {
    key: &'static str,
    title: &'static str,
    /// The full list behind the section.
    href: String,
    page: caselist::Page,
}

/// A section: its key, its title and the filter it adds.
type Sec = (&'static str, &'static str, fn(&mut Filter));

pub async fn my_work(State(state): State<AppState>, user: User) -> Result<Response, PageError> {
    let who = user.principal();
    let now = crate::time::now();
    let today = now.with_timezone(&state.tz()).date_naive();
    let mine = Filter {
        assignee: who.name.clone(),
        ..Filter::default()
    };
    let sections: [Sec; 5] = [
        ("awaiting", "Menunggu balasan", |f| {
            f.awaiting_reply = true;
            f.sort = caselist::Sort::Awaiting;
        }),
        ("due_today", "Janji bayar jatuh tempo hari ini", |f| {
            f.promise_due_today = true
        }),
        ("broken", "Janji diingkari", |f| f.promise_broken = true),
        ("held", "Ditahan untuk petugas", |f| f.held = true),
        ("failed", "Pesan gagal terkirim (7 hari terakhir)", |f| {
            f.failed = true
        }),
    ];
    let mut out = Vec::new();
    for (key, title, set) in sections {
        let mut f = mine.clone();
        set(&mut f);
        let page = caselist::list(&state.db, who.branch_scope(), &f, today, now).await?;
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("assignee", &f.assignee);
        for (k, on) in [
            ("awaiting_reply", f.awaiting_reply),
            ("promise_due_today", f.promise_due_today),
            ("promise_broken", f.promise_broken),
            ("held", f.held),
            ("failed", f.failed),
        ] {
            if on {
                q.append_pair(k, "true");
            }
        }
        q.append_pair("sort", f.sort.as_str());
        out.push(Section {
            key,
            title,
            href: format!("/cases?{}", q.finish()),
            page,
        });
    }
    let unread = views::unread(&state, &user).await?;
    Ok(render(
        StatusCode::OK,
        "admin/my_work.html",
        context! {
            user => ser(who), csrf => user.0.csrf_token.clone(), nav => "my_work",
            sections => ser(&out), today => today.to_string(), unread => unread,
        },
    ))
}

pub async fn canned_page(State(state): State<AppState>, user: User) -> Result<Response, PageError> {
    canned_with(&state, &user, StatusCode::OK, None).await
}

async fn canned_with(
    state: &AppState,
    user: &User,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let items = crate::canned::list(&state.db).await?;
    let unread = views::unread(state, user).await?;
    Ok(render(
        status,
        "admin/canned.html",
        context! {
            user => ser(user.principal()), csrf => user.0.csrf_token.clone(), nav => "canned",
            items => ser(&items), error => error, unread => unread,
        },
    ))
}

/// Saves (`op=save`, with `id` to edit) or deletes (`op=delete`) one.
pub async fn canned_submit(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    user.check_csrf(&headers, &form)?;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let id = field("id").parse::<i64>().ok();
    let by = user.principal().actor().to_string();
    let now = crate::time::now();
    match field("op") {
        "delete" => {
            let id = id.ok_or(AppError::NotFound)?;
            crate::canned::delete(&state.db, id, &by, now).await?;
        }
        _ => match crate::canned::check(field("title"), field("body")) {
            Ok((title, body)) => {
                crate::canned::save(&state.db, id, &title, &body, &by, now).await?;
            }
            Err(why) => {
                return canned_with(&state, &user, StatusCode::UNPROCESSABLE_ENTITY, Some(why))
                    .await
            }
        },
    }
    Ok(Redirect::to("/canned").into_response())
}
