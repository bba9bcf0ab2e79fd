//! `/exceptions`: the queues of unmatched inbound messages and payment
//! exceptions, for the branch's officers, supervisors and admins, with the
//! actions that settle each item (see [`crate::exceptions`]). The
//! navigation shows the open count (`/exceptions/count`, loaded by htmx).

use super::exports::waktu;
use super::{render, ser, PageError, User};
use crate::exceptions::{self, InboundResolution, PaymentResolution};
use crate::http::error::AppError;
use crate::http::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/exceptions", get(page))
        .route("/exceptions/count", get(count))
        .route("/exceptions/inbound/{id}/{action}", post(inbound_action))
        .route("/exceptions/payments/{id}/resolve", post(payment_action))
}

#[derive(serde::Serialize)]
struct InboundView {
    id: i64,
    wa_id: String,
    text: String,
    received: String,
}

#[derive(serde::Serialize)]
struct PaymentView {
    id: i64,
    reference: String,
    reason: &'static str,
    case_id: Option<i64>,
    employer: String,
    branch: String,
    expected: Option<String>,
    paid: Option<String>,
    created: String,
}

fn reason_label(r: &str) -> &'static str {
    match r {
        "unknown_reference" => "Referensi tidak dikenal",
        "amount_mismatch" => "Jumlah tidak sesuai tagihan",
        "overpaid" => "Kelebihan bayar",
        "bill_already_settled" => "Tagihan sudah lunas (dibayar dua kali)",
        "superseded_link" => "Tautan bayar sudah diganti",
        "expired_link" => "Tautan bayar kedaluwarsa",
        _ => "Perlu diperiksa",
    }
}

fn rupiah(m: crate::domain::Money) -> String {
    m.to_rupiah_string()
}

async fn show(
    state: &AppState,
    user: &User,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let who = user.principal();
    let tz = state.tz();
    let inbound: Vec<InboundView> = exceptions::unmatched(&state.db, 200)
        .await?
        .into_iter()
        .map(|m| InboundView {
            id: m.id,
            wa_id: m.wa_id.unwrap_or_default(),
            text: m
                .body
                .or(m.payload)
                .unwrap_or_else(|| format!("({})", m.kind)),
            received: waktu(m.received_at, tz),
        })
        .collect();
    let payments: Vec<PaymentView> = exceptions::payment_issues(&state.db, who.branch_scope(), 200)
        .await?
        .into_iter()
        .map(|p| PaymentView {
            id: p.id,
            reason: reason_label(&p.reason),
            case_id: p.case_id,
            employer: match (&p.npp, &p.employer) {
                (Some(n), Some(e)) => format!("{e} ({n})"),
                _ => "—".into(),
            },
            branch: p.branch.unwrap_or_else(|| "—".into()),
            expected: p.expected_minor.map(rupiah),
            paid: p.paid_minor.map(rupiah),
            created: waktu(p.created_at, tz),
            reference: p.reference,
        })
        .collect();
    Ok(render(
        status,
        "admin/exceptions.html",
        context! {
            user => ser(who), csrf => user.0.csrf_token.clone(), nav => "exceptions",
            inbound => ser(&inbound), payments => ser(&payments),
            notice => notice, error => error,
        },
    ))
}

async fn page(State(state): State<AppState>, user: User) -> Result<Response, PageError> {
    show(&state, &user, StatusCode::OK, None, None).await
}

async fn count(State(state): State<AppState>, user: User) -> Result<Response, PageError> {
    let n = exceptions::open_count(&state.db, user.principal().branch_scope()).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        if n > 0 { n.to_string() } else { String::new() },
    )
        .into_response())
}

async fn outcome(
    state: &AppState,
    user: &User,
    r: anyhow::Result<String>,
) -> Result<Response, PageError> {
    match r {
        Ok(notice) => {
            let _ = notice;
            let mut res = Redirect::to("/exceptions").into_response();
            *res.status_mut() = StatusCode::SEE_OTHER;
            Ok(res)
        }
        Err(e) => {
            show(
                state,
                user,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(format!("{e:#}")),
            )
            .await
        }
    }
}

async fn inbound_action(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    user.check_csrf(&headers, &form)?;
    let who = user.principal();
    let r = if action == "link" {
        let npp = form.get("npp").map(String::as_str).unwrap_or("");
        exceptions::link_inbound(&state.db, id, npp, who.branch_scope(), &who.name)
            .await
            .map(|_| "ditautkan".to_owned())
    } else {
        let Some(res) = InboundResolution::parse(&action) else {
            return Err(AppError::NotFound.into());
        };
        exceptions::dismiss_inbound(&state.db, id, res, &who.name)
            .await
            .map(|_| res.as_str().to_owned())
    };
    outcome(&state, &user, r).await
}

async fn payment_action(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    user.check_csrf(&headers, &form)?;
    let who = user.principal();
    let Some(res) =
        PaymentResolution::parse(form.get("resolution").map(String::as_str).unwrap_or(""))
    else {
        return Err(AppError::BadRequest("Pilih cara penyelesaian.".into()).into());
    };
    let note = form.get("note").map(String::as_str).unwrap_or("");
    let r = exceptions::resolve_payment(&state.db, id, res, note, who.branch_scope(), &who.name)
        .await
        .map(|_| res.as_str().to_owned());
    outcome(&state, &user, r).await
}
