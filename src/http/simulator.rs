//! `/simulator`: the employers' phones, when `simulator.enabled = true`
//! (the demo). Each chat is shown as the employer sees it on WhatsApp; what
//! the employer types or taps is posted by the simulator as a signed webhook
//! to the app's real `POST /webhooks/whatsapp`. Not mounted otherwise, so
//! production answers 404.

use super::AppState;
use crate::simulator::{ChatItem, ChatItemKind, Phone, PhoneError};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{context, Environment};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const CSS: &str = include_str!("../../static/simulator.css");

/// The routes, only when the simulator is enabled.
pub fn router(state: &AppState) -> Router<AppState> {
    if !state.config.simulator.enabled {
        return Router::new();
    }
    Router::new()
        .route("/simulator", get(list))
        .route("/simulator/media/{id}", get(media))
        .route("/simulator/{wa_id}", get(chat))
        .route("/simulator/{wa_id}/messages", get(messages))
        .route("/simulator/{wa_id}/reply", post(reply))
        .route("/simulator/{wa_id}/tap", post(tap))
        .route("/simulator/{wa_id}/image", post(image))
        .route("/simulator/{wa_id}/number", post(number))
        .route("/simulator/{wa_id}/block", post(block))
        .route(
            "/static/simulator.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    CSS,
                )
            }),
        )
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        crate::messages::filters::register(&mut env);
        for (name, src) in [
            (
                "simulator/base.html",
                include_str!("../../templates/simulator/base.html"),
            ),
            (
                "simulator/list.html",
                include_str!("../../templates/simulator/list.html"),
            ),
            (
                "simulator/chat.html",
                include_str!("../../templates/simulator/chat.html"),
            ),
            (
                "simulator/messages.html",
                include_str!("../../templates/simulator/messages.html"),
            ),
            (
                "simulator/error.html",
                include_str!("../../templates/simulator/error.html"),
            ),
        ] {
            env.add_template(name, src)
                .expect("simulator templates parse");
        }
        env
    })
}

fn render(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    super::admin::render_in(templates(), status, name, ctx)
}

fn problem(status: StatusCode, message: &str) -> Response {
    render(status, "simulator/error.html", context! { message })
}

/// Why a request was not acted on, shown as a page.
struct Problem(StatusCode, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        problem(self.0, &self.1)
    }
}

/// The simulator of this process, if one runs here (the demo starts it).
fn phone() -> Result<Phone, Problem> {
    crate::simulator::registered_phone().ok_or_else(|| {
        Problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Simulator WhatsApp tidak berjalan di proses ini. Jalankan `wa-smile demo`.".into(),
        )
    })
}

/// The phone, for a request that acts on it (from this origin only).
fn acting_phone(headers: &HeaderMap) -> Result<Phone, Problem> {
    same_origin(headers)?;
    phone()
}

/// A page with no login can still be driven by another site's form: only
/// requests from this origin (or with no Origin at all: curl, tests) act.
fn same_origin(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split("://").nth(1).unwrap_or_default();
    if !host.is_empty() && origin_host == host {
        Ok(())
    } else {
        Err(Problem(
            StatusCode::FORBIDDEN,
            "Permintaan dari situs lain ditolak.".into(),
        ))
    }
}

// The phone page writes times and zones the way messages do.
use crate::messages::filters::{format_jam as clock, zone_name as zone_label};

#[derive(Serialize)]
struct Bubble {
    /// Whether the employer wrote it (right, green) or the business (left).
    mine: bool,
    system: bool,
    /// The day separator before this bubble, when the local date changes.
    day: Option<String>,
    time: String,
    kind: &'static str,
    body: String,
    caption: Option<String>,
    media_id: Option<String>,
    buttons: Vec<crate::simulator::TapButton>,
    ticks: &'static str,
    status_label: &'static str,
}

fn bubbles(items: &[ChatItem], tz: chrono_tz::Tz) -> Vec<Bubble> {
    let mut last_day = None;
    items
        .iter()
        .map(|i| {
            let local_day = i.at.with_timezone(&tz).date_naive();
            let day = (last_day != Some(local_day)).then(|| {
                last_day = Some(local_day);
                crate::messages::filters::format_tanggal(local_day)
            });
            let (kind, body, caption, media_id, buttons) = match &i.kind {
                ChatItemKind::Text { body } => ("text", body.clone(), None, None, vec![]),
                ChatItemKind::Template { body, buttons, .. } => {
                    ("template", body.clone(), None, None, buttons.clone())
                }
                ChatItemKind::Interactive { body, buttons } => {
                    ("interactive", body.clone(), None, None, buttons.clone())
                }
                ChatItemKind::Image { media_id, caption } => (
                    "image",
                    String::new(),
                    caption.clone(),
                    Some(media_id.clone()),
                    vec![],
                ),
                ChatItemKind::Tap { title, .. } => ("tap", title.clone(), None, None, vec![]),
                ChatItemKind::System { body } => ("system", body.clone(), None, None, vec![]),
            };
            let (ticks, status_label) = match i.status.as_str() {
                "accepted" => ("🕓", "menunggu"),
                "sent" => ("✓", "terkirim"),
                "delivered" => ("✓✓", "diterima"),
                "read" => ("✓✓", "dibaca"),
                "failed" => ("⚠", "gagal"),
                _ => ("", ""),
            };
            Bubble {
                mine: !i.from_business,
                system: kind == "system",
                day,
                time: clock(i.at, tz),
                kind,
                body,
                caption,
                media_id,
                buttons,
                ticks,
                status_label,
            }
        })
        .collect()
}

/// The case a chat's buttons name (`PROMISE:42` → 42), for the officer's link.
fn case_id(items: &[ChatItem]) -> Option<i64> {
    items.iter().rev().find_map(|i| match &i.kind {
        ChatItemKind::Template { buttons, .. } | ChatItemKind::Interactive { buttons, .. } => {
            buttons
                .iter()
                .find_map(|b| b.payload.split_once(':')?.1.parse().ok())
        }
        _ => None,
    })
}

fn zone_of(phone: &Phone, wa_id: &str, state: &AppState) -> chrono_tz::Tz {
    phone
        .contact(wa_id)
        .map(|c| c.timezone)
        .unwrap_or_else(|| state.tz())
}

async fn list(State(state): State<AppState>) -> Result<Response, Problem> {
    let phone = phone()?;
    #[derive(Serialize)]
    struct Row {
        wa_id: String,
        name: String,
        company: String,
        npp: Option<String>,
        preview: String,
        time: String,
        unread: usize,
        blocked: bool,
    }
    let rows: Vec<Row> = phone
        .chats()
        .into_iter()
        .map(|c| {
            let tz = c
                .contact
                .as_ref()
                .map(|c| c.timezone)
                .unwrap_or_else(|| state.tz());
            let preview = c
                .last
                .as_ref()
                .map(|l| match &l.kind {
                    ChatItemKind::Text { body }
                    | ChatItemKind::Template { body, .. }
                    | ChatItemKind::Interactive { body, .. }
                    | ChatItemKind::System { body } => body.clone(),
                    ChatItemKind::Tap { title, .. } => title.clone(),
                    ChatItemKind::Image { caption, .. } => {
                        format!("📷 {}", caption.as_deref().unwrap_or("Foto"))
                    }
                })
                .unwrap_or_default();
            let preview: String = preview.split_whitespace().collect::<Vec<_>>().join(" ");
            let preview = match preview.char_indices().nth(90) {
                Some((i, _)) => format!("{}…", &preview[..i]),
                None => preview,
            };
            Row {
                name: c
                    .contact
                    .as_ref()
                    .map(|k| k.name.clone())
                    .unwrap_or_else(|| format!("+{}", c.wa_id)),
                company: c
                    .contact
                    .as_ref()
                    .map(|k| k.company.clone())
                    .unwrap_or_default(),
                npp: c.contact.as_ref().and_then(|k| k.npp.clone()),
                time: c.last.as_ref().map(|l| clock(l.at, tz)).unwrap_or_default(),
                wa_id: c.wa_id,
                preview,
                unread: c.unread,
                blocked: c.blocked,
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        "simulator/list.html",
        context! { chats => super::admin::ser(&rows) },
    ))
}

fn chat_context(phone: &Phone, wa_id: &str, state: &AppState) -> minijinja::Value {
    let items = phone.chat(wa_id);
    let tz = zone_of(phone, wa_id, state);
    let contact = phone.contact(wa_id);
    context! {
        wa_id,
        contact => contact.as_ref().map(super::admin::ser),
        zone => zone_label(tz),
        zone_name => tz.name(),
        bubbles => super::admin::ser(&bubbles(&items, tz)),
        case_id => case_id(&items),
        blocked => phone.is_blocked(wa_id),
        now => clock(crate::time::now(), tz),
    }
}

async fn chat(state: State<AppState>, wa_id: Path<String>) -> Result<Response, Problem> {
    open_chat(state, wa_id, "simulator/chat.html").await
}

/// The bubbles alone, which the chat page polls (htmx) so the bot's
/// answers appear as they are sent.
async fn messages(state: State<AppState>, wa_id: Path<String>) -> Result<Response, Problem> {
    open_chat(state, wa_id, "simulator/messages.html").await
}

/// The employer has the chat open: what was delivered is now read, and
/// `template` shows it.
async fn open_chat(
    State(state): State<AppState>,
    Path(wa_id): Path<String>,
    template: &str,
) -> Result<Response, Problem> {
    let phone = phone()?;
    phone.open_chat(&wa_id).await;
    Ok(render(
        StatusCode::OK,
        template,
        chat_context(&phone, &wa_id, &state),
    ))
}

async fn media(Path(id): Path<String>) -> Result<Response, Problem> {
    let phone = phone()?;
    Ok(match phone.media(&id) {
        Some((mime, bytes)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

/// After an action: back to the chat, or the reason it did not go.
fn outcome(wa_id: &str, r: Result<String, PhoneError>) -> Response {
    match r {
        Ok(_) => Redirect::to(&format!("/simulator/{wa_id}")).into_response(),
        Err(e) => {
            let (status, message) = match &e {
                PhoneError::Empty => (
                    StatusCode::BAD_REQUEST,
                    "Pesan kosong tidak dikirim.".to_owned(),
                ),
                PhoneError::NoButton(p) => (
                    StatusCode::BAD_REQUEST,
                    format!("Tidak ada pesan dengan tombol `{p}` di percakapan ini."),
                ),
                PhoneError::BadNumber(n) => (
                    StatusCode::BAD_REQUEST,
                    format!("`{n}` bukan nomor ponsel Indonesia (tulis 08… atau 628…)."),
                ),
                PhoneError::NoWebhook | PhoneError::Unreachable(_) | PhoneError::Refused(_) => {
                    tracing::warn!(error = %e, "simulator could not deliver an inbound message");
                    (
                        StatusCode::BAD_GATEWAY,
                        "Pesan tidak sampai ke WA SMILE (webhook gagal). Coba lagi.".to_owned(),
                    )
                }
            };
            problem(status, &message)
        }
    }
}

#[derive(Deserialize)]
struct ReplyForm {
    text: String,
}

async fn reply(
    Path(wa_id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ReplyForm>,
) -> Result<Response, Problem> {
    let phone = acting_phone(&headers)?;
    Ok(outcome(&wa_id, phone.reply(&wa_id, &f.text).await))
}

#[derive(Deserialize)]
struct TapForm {
    payload: String,
}

async fn tap(
    Path(wa_id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<TapForm>,
) -> Result<Response, Problem> {
    let phone = acting_phone(&headers)?;
    Ok(outcome(&wa_id, phone.tap(&wa_id, f.payload.trim()).await))
}

#[derive(Deserialize)]
struct ImageForm {
    #[serde(default)]
    caption: String,
}

async fn image(
    Path(wa_id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ImageForm>,
) -> Result<Response, Problem> {
    let phone = acting_phone(&headers)?;
    Ok(outcome(
        &wa_id,
        phone.send_image(&wa_id, Some(&f.caption)).await,
    ))
}

#[derive(Deserialize)]
struct NumberForm {
    new_wa_id: String,
}

async fn number(
    Path(wa_id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<NumberForm>,
) -> Result<Response, Problem> {
    let phone = acting_phone(&headers)?;
    Ok(match phone.change_number(&wa_id, &f.new_wa_id).await {
        Ok(_) => {
            let new = crate::domain::WaId::parse(f.new_wa_id.trim())
                .map(|w| w.as_str().to_owned())
                .unwrap_or(wa_id);
            Redirect::to(&format!("/simulator/{new}")).into_response()
        }
        Err(e) => outcome(&wa_id, Err(e)),
    })
}

#[derive(Deserialize)]
struct BlockForm {
    blocked: String,
}

async fn block(
    Path(wa_id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<BlockForm>,
) -> Result<Response, Problem> {
    let phone = acting_phone(&headers)?;
    phone.set_blocked(&wa_id, f.blocked == "1");
    Ok(Redirect::to(&format!("/simulator/{wa_id}")).into_response())
}
