//! The case list, the case page and the case actions.

use super::{render, ser, timeline, PageError, User};
use crate::case_actions::{self, Action, ActionError};
use crate::caselist::{self, Filter};
use crate::http::error::AppError;
use crate::http::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use minijinja::context;
use std::collections::HashMap;

/// What officers call each message (the catalog's descriptions are for
/// developers).
pub fn template_label(name: &str) -> Option<&'static str> {
    Some(match name {
        "reminder_1" => "Pengingat 1",
        "reminder_2" => "Pengingat 2",
        "reminder_3" => "Pengingat 3",
        "warning" => "Peringatan",
        "amount_breakdown" => "Rincian tagihan",
        "payment_link" => "Tautan pembayaran",
        "payment_thanks" => "Ucapan terima kasih atas pembayaran",
        "promise_confirmed" => "Konfirmasi janji bayar",
        "ask_promise_date" => "Tanya tanggal rencana bayar",
        "clarify_paid_or_promise" => "Tanya: sudah bayar atau janji bayar?",
        "officer_will_contact" => "Petugas akan menghubungi",
        "payment_claim_ack" => "Terima kasih, pembayaran diperiksa",
        "opt_out_confirmed" => "Konfirmasi berhenti berlangganan",
        "free_text" => "Pesan bebas",
        _ => return None,
    })
}

/// A template the picker offers, with the exact text it would send.
#[derive(Debug, serde::Serialize)]
struct Offer {
    name: String,
    label: &'static str,
    preview: String,
}

/// The templates that make sense for the case now, each rendered with the
/// real catalog and the case's own figures: the stage's reminder (one a
/// day), the breakdown while something is owed, a promise's confirmation
/// while one runs, the thanks once nothing is owed, and the answers to a
/// reply while the 24-hour window is open. A template that cannot be
/// rendered for the case (no payment link yet) is not offered.
async fn offers(
    state: &AppState,
    view: &crate::cases::CaseView,
    window_open: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Offer>, AppError> {
    if view.resolved_at.is_some() {
        return Ok(Vec::new());
    }
    let catalog = crate::messages::embedded().map_err(|e| AppError::Internal(e.into()))?;
    let mut names: Vec<&str> = Vec::new();
    match view.stage.as_str() {
        "escalated" => names.push("warning"),
        s => names.push(match s {
            "reminder_1" | "reminder_2" | "reminder_3" | "warning" => {
                case_actions::REMINDER_MESSAGES
                    .iter()
                    .find(|m| **m == s)
                    .copied()
                    .unwrap_or("reminder_1")
            }
            _ => "reminder_1",
        }),
    }
    let owes = !view.totals.total_due.is_zero();
    if owes {
        names.extend(["amount_breakdown", "payment_link"]);
    } else {
        names.push("payment_thanks");
    }
    if view.promised_date.is_some() {
        names.push("promise_confirmed");
    }
    if window_open {
        names.extend([
            "ask_promise_date",
            "clarify_paid_or_promise",
            "payment_claim_ack",
            "officer_will_contact",
        ]);
    }
    let mut tx = state.db.begin().await?;
    let party =
        crate::replies::outgoing::load_party(&mut tx, view.employer.id, Some(view.id)).await?;
    let mut ctx = crate::replies::outgoing::message_context(
        &mut tx,
        &state.config,
        &party,
        if owes {
            crate::replies::outgoing::Bills::Unpaid
        } else {
            crate::replies::outgoing::Bills::SinceCaseOpened
        },
        now,
    )
    .await?;
    tx.rollback().await?;
    ctx.promised_date = view.promised_date;
    Ok(names
        .into_iter()
        .filter_map(|n| {
            let preview = catalog.render_text(n, &ctx).ok()?;
            Some(Offer {
                name: n.to_owned(),
                label: template_label(n)?,
                preview,
            })
        })
        .collect())
}

/// The navigation's count: cases assigned to the user that wait for an
/// answer.
pub async fn unread(state: &AppState, user: &User) -> Result<i64, AppError> {
    Ok(caselist::awaiting_count(&state.db, &user.principal().name).await?)
}

/// Query string of the current filters with another page or sort, for
/// links; built here so templates never assemble URLs from raw input.
fn query_with(f: &Filter, page: i64) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("status", f.status.as_str()),
        ("stage", f.stage.as_str()),
        ("branch", f.branch.as_str()),
        ("assignee", f.assignee.as_str()),
        ("q", f.q.as_str()),
        ("label", f.label.as_str()),
    ] {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    for (k, on) in [
        ("promise_due_today", f.promise_due_today),
        ("promise_broken", f.promise_broken),
        ("window_open", f.window_open),
        ("awaiting_reply", f.awaiting_reply),
        ("held", f.held),
        ("failed", f.failed),
    ] {
        if on {
            s.append_pair(k, "true");
        }
    }
    s.append_pair("sort", f.sort.as_str());
    s.append_pair("dir", f.dir.as_str());
    s.append_pair("page", &page.to_string());
    s.finish()
}

/// A column header's link: sorts by that column, the other way round when
/// it already sorts the list.
#[derive(serde::Serialize)]
struct SortLink {
    href: String,
    /// `desc`, `asc` or empty when the list is not sorted by the column.
    on: &'static str,
}

fn sort_links(f: &Filter) -> HashMap<&'static str, SortLink> {
    use caselist::{Dir, Sort};
    [
        Sort::Arrears,
        Sort::DaysOverdue,
        Sort::LastActivity,
        Sort::Awaiting,
    ]
    .into_iter()
    .map(|sort| {
        let mut g = f.clone();
        let on = f.sort == sort;
        g.sort = sort;
        g.dir = if on { f.dir.flip() } else { Dir::Desc };
        (
            sort.as_str(),
            SortLink {
                href: format!("/cases?{}", query_with(&g, 1)),
                on: if on { f.dir.as_str() } else { "" },
            },
        )
    })
    .collect()
}

/// The list's table and pager as `admin/case_rows.html` renders them
/// (with the page around it or alone, for the live poll).
struct Rows {
    page: caselist::Page,
    elapsed_ms: u64,
    version: i64,
}

async fn rows(state: &AppState, user: &User, filter: &Filter) -> Result<Rows, AppError> {
    let who = user.principal();
    // Read before the list, so a change made while it is read shows at
    // the next poll rather than being taken as already shown.
    let version = crate::case_log::version_for_branch(&state.db, who.branch_scope()).await?;
    let now = crate::time::now();
    let today = now.with_timezone(&state.tz()).date_naive();
    let started = std::time::Instant::now();
    let page = caselist::list(&state.db, who.branch_scope(), filter, today, now).await?;
    Ok(Rows {
        page,
        elapsed_ms: started.elapsed().as_millis() as u64,
        version,
    })
}

fn rows_context(filter: &Filter, r: &Rows) -> minijinja::Value {
    let page = &r.page;
    let prev = (page.page > 1).then(|| query_with(filter, page.page - 1));
    let next = (page.page < page.pages).then(|| query_with(filter, page.page + 1));
    let active: i64 = page
        .counts
        .iter()
        .filter(|(s, _)| s != "resolved")
        .map(|(_, n)| n)
        .sum();
    context! {
        f => ser(filter), page => ser(page), prev => prev, next => next, active => active,
        elapsed_ms => r.elapsed_ms, sorts => ser(&sort_links(filter)),
        here => query_with(filter, page.page), version => r.version,
    }
}

pub async fn case_list(
    State(state): State<AppState>,
    user: User,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    let who = user.principal();
    let rows = rows(&state, &user, &filter).await?;
    let branches = match who.branch_scope() {
        None => caselist::branches(&state.db).await?,
        Some(b) => vec![b.to_owned()],
    };
    let assignees = crate::accounts::usernames(&state.db, who.branch_scope()).await?;
    let unread = unread(&state, &user).await?;
    Ok(render(
        StatusCode::OK,
        "admin/cases.html",
        context! {
            user => ser(who), csrf => user.0.csrf_token.clone(), nav => "cases",
            branches => branches, assignees => assignees, unread => unread,
            statuses => ["open", "promised", "needs_officer", "escalated", "resolved"],
            stages => ["reminder_1", "reminder_2", "reminder_3", "warning", "escalated"],
            ..rows_context(&filter, &rows)
        },
    ))
}

/// `GET /cases/rows?<filters>&v=N`: the open list's poll. 204 while
/// nothing the caller may see changed since version `N` (one index
/// lookup); otherwise the table and pager afresh, same filters, sort and
/// page, with the status counts and the navigation's count out of band.
pub async fn case_rows(
    State(state): State<AppState>,
    user: User,
    Query(filter): Query<Filter>,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    if let Some(v) = q.v {
        let now =
            crate::case_log::version_for_branch(&state.db, user.principal().branch_scope()).await?;
        if now == v {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
    let rows = rows(&state, &user, &filter).await?;
    let unread = unread(&state, &user).await?;
    Ok(render(
        StatusCode::OK,
        "admin/case_rows_poll.html",
        context! { oob => true, unread => unread, ..rows_context(&filter, &rows) },
    ))
}

/// The case id, if the caller may see it; another branch's case is "not
/// found", so guessing ids reveals nothing.
async fn visible(state: &AppState, user: &User, id: &str) -> Result<i64, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let branch = caselist::case_branch(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if !user.principal().may_see_branch(&branch) {
        return Err(AppError::NotFound);
    }
    Ok(id)
}

async fn case_page_with(
    state: &AppState,
    user: &User,
    id: i64,
    status: StatusCode,
    error: Option<String>,
    before: Option<i64>,
) -> Result<Response, PageError> {
    let now = crate::time::now();
    let view = crate::cases::load_head(&state.db, &state.config.policy(), id, now)
        .await?
        .ok_or(AppError::NotFound)?;
    let zone = view.employer.timezone.0;
    let tl = timeline::load(&state.db, id, before, zone).await?;
    let window_until = view
        .last_inbound_at
        .map(crate::outbox::window_closes_at)
        .filter(|t| *t > now);
    let offers = offers(state, &view, window_until.is_some(), now).await?;
    let canned = if window_until.is_some() {
        crate::canned::list(&state.db).await?
    } else {
        Vec::new()
    };
    let labels = crate::case::labels::for_case(&state.db, id).await?;
    let reasons: Vec<(&str, &str)> = case_actions::RESOLVE_REASONS.to_vec();
    let unread = unread(state, user).await?;
    let assignees =
        crate::accounts::usernames(&state.db, Some(view.employer.branch.as_str())).await?;
    let today = now.with_timezone(&state.tz()).date_naive();
    Ok(render(
        status,
        "admin/case.html",
        context! {
            user => ser(user.principal()), csrf => user.0.csrf_token.clone(), nav => "cases",
            c => ser(&view), tl => ser(&tl), window_until => ser(&window_until),
            assignees => assignees, offers => ser(&offers), error => error,
            today => today.to_string(), resolved => view.resolved_at.is_some(),
            form_key => crate::accounts::random_secret(), canned => ser(&canned),
            labels => labels, reasons => reasons, unread => unread,
            resolution_text => view.resolution.as_deref().map(super::words::resolution_text),
            owes => !view.totals.arrears.is_zero(),
            held => view.officer_hold.is_some(), claimed => view.payment_claimed_at.is_some(),
        },
    ))
}

#[derive(serde::Deserialize, Default)]
pub struct PageQuery {
    /// The event id a page of the timeline ends before (older lines).
    #[serde(default, deserialize_with = "crate::http::admin::views::opt_id")]
    before: Option<i64>,
    /// The version the page shows (the live poll).
    #[serde(default, deserialize_with = "crate::http::admin::views::opt_id")]
    v: Option<i64>,
}

/// An id from a query string; empty or not a number is "none".
pub fn opt_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(s.and_then(|s| s.trim().parse().ok())
        .filter(|n: &i64| *n > 0))
}

pub async fn case_page(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let id = visible(&state, &user, &id).await?;
    case_page_with(&state, &user, id, StatusCode::OK, None, q.before).await
}

/// The timeline alone (htmx): the live poll answers 204 while the case's
/// version is the one the page shows, so an idle open page costs one
/// index lookup per poll; otherwise the fresh newest page.
pub async fn case_timeline(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let id = visible(&state, &user, &id).await?;
    if let Some(v) = q.v {
        if crate::case_log::version(&state.db, id).await? == v {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
    let zone = crate::cases::employer_zone(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let tl = timeline::load(&state.db, id, q.before, zone).await?;
    Ok(render(
        StatusCode::OK,
        "admin/timeline.html",
        context! { c => context! { id => id }, tl => ser(&tl), csrf => user.0.csrf_token.clone() },
    ))
}

/// `GET /cases/version?v=N`: the newest event id among the cases the
/// caller may see, for the case list's poll; 204 while it is still `N`.
pub async fn cases_version(
    State(state): State<AppState>,
    user: User,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let v = crate::case_log::version_for_branch(&state.db, user.principal().branch_scope()).await?;
    if q.v == Some(v) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(axum::Json(serde_json::json!({ "version": v })).into_response())
}

/// An inbound image or document of a case the caller may see: fetched from
/// the Cloud API on first view, then served from the database. Images are
/// shown inline; everything else downloads.
pub async fn case_media(
    State(state): State<AppState>,
    user: User,
    Path((id, media)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let id = visible(&state, &user, &id).await?;
    let media: i64 = media.parse().map_err(|_| AppError::NotFound)?;
    let info = crate::media::get(&state.db, media)
        .await?
        .filter(|m| m.case_id == Some(id))
        .ok_or(AppError::NotFound)?;
    let info = if info.state == crate::media::MediaState::Stored {
        info
    } else {
        let client = crate::whatsapp::WhatsappClient::from_config(&state.config.whatsapp)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
        crate::media::fetch(&state.db, &client, media, crate::time::now())
            .await?
            .ok_or(AppError::NotFound)?
    };
    let (Some(ct), Some(bytes)) = (
        info.content_type.clone(),
        crate::media::content(&state.db, media).await?,
    ) else {
        let why = info
            .error
            .unwrap_or_else(|| "Berkas belum dapat diunduh.".into());
        return Err(PageError(AppError::BadRequest(format!(
            "Berkas ini tidak dapat ditampilkan: {why}"
        ))));
    };
    let disposition = if ct.starts_with("image/") {
        "inline".to_owned()
    } else {
        let name: String = info
            .filename
            .unwrap_or_else(|| format!("berkas-{media}"))
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' '))
            .collect();
        format!("attachment; filename=\"{name}\"")
    };
    use axum::http::header;
    Ok((
        [
            (header::CONTENT_TYPE, ct),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, max-age=86400".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(String::as_str).unwrap_or("")
}

fn date(form: &HashMap<String, String>, name: &str) -> Result<NaiveDate, ActionError> {
    NaiveDate::parse_from_str(field(form, name).trim(), "%Y-%m-%d")
        .map_err(|_| ActionError::Rejected("Isi tanggal yang sah.".into()))
}

fn parse_action(action: &str, form: &HashMap<String, String>) -> Result<Action, ActionError> {
    Ok(match action {
        "note" => Action::Note {
            text: field(form, "text").to_owned(),
        },
        "assign" => Action::Assign {
            assignee: Some(field(form, "assignee").to_owned()).filter(|a| !a.is_empty()),
        },
        "pause" => Action::Pause {
            until: date(form, "until")?,
        },
        "resume" => Action::Resume,
        "promise" => Action::Promise {
            date: date(form, "date")?,
            note: field(form, "note").to_owned(),
        },
        "dispute" => Action::Dispute {
            reason: field(form, "reason").to_owned(),
        },
        "resolve" => Action::Resolve {
            reason: field(form, "reason").to_owned(),
            note: field(form, "note").to_owned(),
            confirmed: field(form, "confirm") == "true",
        },
        "reopen" => Action::Reopen {
            reason: field(form, "reason").to_owned(),
        },
        "template" => Action::SendTemplate {
            message: field(form, "message").to_owned(),
            key: field(form, "key").to_owned(),
        },
        "label" => Action::Label {
            label: field(form, "label").to_owned(),
            remove: field(form, "remove") == "true",
        },
        "text" => Action::SendText {
            text: field(form, "text").to_owned(),
        },
        "contact" => Action::Contact {
            wa_phone: field(form, "wa_phone").to_owned(),
            contact_name: field(form, "contact_name").to_owned(),
            consent: field(form, "consent") == "true",
        },
        _ => return Err(ActionError::NotFound),
    })
}

/// The correction form of one reply: the reading and, for a promise, its
/// date (a date left in the form for another reading means nothing).
fn parse_correction(
    form: &HashMap<String, String>,
) -> Result<crate::replies::corrections::Correction, ActionError> {
    let wamid = field(form, "wamid").trim();
    if wamid.is_empty() {
        return Err(ActionError::NotFound);
    }
    let intent: crate::conversation::Intent = field(form, "intent")
        .trim()
        .parse()
        .map_err(|_| ActionError::Rejected("Pilih maksud balasan dari daftar.".into()))?;
    let promised_date = match field(form, "date").trim() {
        _ if intent != crate::conversation::Intent::PromiseToPay => None,
        "" => None,
        _ => Some(date(form, "date")?),
    };
    Ok(crate::replies::corrections::Correction {
        wamid: wamid.to_owned(),
        intent,
        promised_date,
    })
}

pub async fn case_action(
    State(state): State<AppState>,
    user: User,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    user.check_csrf(&headers, &form)?;
    let id = visible(&state, &user, &id).await?;
    let who = user.principal();
    let now = crate::time::now();
    // The server offers what the page offered: a template the case's state
    // does not call for is refused even when posted by hand.
    let allowed: Vec<String> = if action == "template" {
        let view = crate::cases::load(&state.db, &state.config.policy(), id, now)
            .await?
            .ok_or(AppError::NotFound)?;
        let open = crate::outbox::window_open(view.last_inbound_at, now);
        offers(&state, &view, open, now)
            .await?
            .into_iter()
            .map(|o| o.name)
            .collect()
    } else {
        Vec::new()
    };
    let canned_text = if action == "canned" {
        let cid: i64 = field(&form, "canned_id").parse().unwrap_or(0);
        crate::canned::get(&state.db, cid).await?.map(|c| c.body)
    } else {
        None
    };
    let parsed = match (action.as_str(), canned_text) {
        ("correct", _) => {
            let result = match parse_correction(&form) {
                Ok(c) => {
                    crate::replies::corrections::apply(&state.db, &state.config, id, who, c, now)
                        .await
                }
                Err(e) => Err(e),
            };
            return match result {
                Ok(_) => Ok(Redirect::to(&format!("/cases/{id}#timeline")).into_response()),
                Err(ActionError::Rejected(why)) => {
                    case_page_with(
                        &state,
                        &user,
                        id,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Some(why),
                        None,
                    )
                    .await
                }
                Err(e) => Err(PageError(e.into())),
            };
        }
        ("canned", Some(text)) => Ok(Action::SendText { text }),
        ("canned", None) => Err(ActionError::Rejected(
            "Balasan cepat tidak ditemukan.".into(),
        )),
        _ => parse_action(&action, &form),
    };
    let result = match parsed {
        Ok(Action::Assign { assignee: Some(a) }) if who.branch_scope().is_some() => {
            // A branch user assigns within the branch only.
            let branch = caselist::case_branch(&state.db, id)
                .await?
                .unwrap_or_default();
            let allowed = crate::accounts::usernames(&state.db, Some(&branch)).await?;
            if allowed.contains(&a) {
                case_actions::apply(
                    &state.db,
                    id,
                    who,
                    Action::Assign { assignee: Some(a) },
                    &allowed,
                    now,
                )
                .await
            } else {
                Err(ActionError::Rejected(format!(
                    "\u{201c}{a}\u{201d} bukan pengguna cabang ini."
                )))
            }
        }
        Ok(a) => case_actions::apply(&state.db, id, who, a, &allowed, now).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/cases/{id}#timeline")).into_response()),
        Err(ActionError::Rejected(why)) => {
            case_page_with(
                &state,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(why),
                None,
            )
            .await
        }
        Err(e) => Err(PageError(e.into())),
    }
}
