//! What the messages cost: each status webhook's `pricing` (billable,
//! category, type) stored with its message, and the dashboard's estimate of
//! billable messages and their cost per branch over a period, at the dated
//! per-category rates of `[pricing]`. Owns `message_pricing`.

use crate::config::PricingConfig;
use crate::domain::Money;
use crate::store::Db;
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

/// One status's pricing, as Meta sent it.
#[derive(Debug, Clone)]
pub struct Priced<'a> {
    pub wamid: &'a str,
    /// `biz_opaque_callback_data`: our outbox id.
    pub outbox_id: Option<i64>,
    pub billable: bool,
    pub category: &'a str,
    pub pricing_type: Option<&'a str>,
    pub pricing_model: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Stores a message's pricing once (every status of a message repeats it;
/// a redelivery is a no-op).
pub async fn record(db: &Db, p: &Priced<'_>) -> Result<()> {
    db.query(
        "INSERT INTO message_pricing (wamid, outbox_id, billable, category, pricing_type, pricing_model, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (wamid) DO NOTHING",
    )
    .bind(p.wamid.to_owned())
    .bind(p.outbox_id)
    .bind(p.billable)
    .bind(p.category.to_ascii_lowercase())
    .bind(p.pricing_type.map(str::to_owned))
    .bind(p.pricing_model.map(str::to_owned))
    .bind(crate::time::truncate(p.at))
    .execute(db)
    .await
    .context("failed to store a message's pricing")?;
    Ok(())
}

/// The dated rates, parsed (validated at load).
#[derive(Debug, Clone, Default)]
pub struct Rates(Vec<(NaiveDate, String, Decimal)>);

impl Rates {
    pub fn from_config(c: &PricingConfig) -> Self {
        let mut rates: Vec<_> = c
            .rate
            .iter()
            .filter_map(|r| {
                Some((
                    NaiveDate::parse_from_str(&r.from, "%Y-%m-%d").ok()?,
                    r.category.trim().to_ascii_lowercase(),
                    r.rupiah.parse().ok()?,
                ))
            })
            .collect();
        rates.sort();
        Self(rates)
    }

    /// Rupiah for one billable message of `category` sent on `day`; zero
    /// when no rate is configured for it.
    pub fn price(&self, category: &str, day: NaiveDate) -> Decimal {
        self.0
            .iter()
            .rev()
            .find(|(from, c, _)| c == category && *from <= day)
            .map_or(Decimal::ZERO, |(_, _, r)| *r)
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CostLine {
    pub branch: String,
    pub messages: i64,
    pub billable: i64,
    pub cost: Money,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CostSummary {
    pub by_branch: Vec<CostLine>,
    pub total: CostLine,
    /// Estimated cost per rupiah collected after a reminder (None when
    /// nothing was collected), as a decimal string with six places.
    pub cost_per_rupiah: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PricedRow {
    branch: Option<String>,
    category: String,
    billable: bool,
    at: DateTime<Utc>,
}

/// Messages priced in `[t0, t1)`, by the branch of the employer they went
/// to (`scope` confines to one branch); `collected` is the money paid after
/// a reminder over the same period.
pub async fn summary(
    db: &Db,
    rates: &Rates,
    tz: chrono_tz::Tz,
    scope: Option<&str>,
    t0: DateTime<Utc>,
    t1: DateTime<Utc>,
    collected: Money,
) -> Result<CostSummary> {
    // A read-only report across the outbox and employers, like the rest of
    // the dashboard.
    let sql = format!(
        "SELECT e.branch AS branch, mp.category AS category, mp.billable AS billable, mp.at AS at \
         FROM message_pricing mp {} \
         LEFT JOIN employers e ON e.id = o.employer_id \
         WHERE mp.at >= $1 AND mp.at < $2{}",
        crate::outbox::message_join_sql("mp.outbox_id"),
        if scope.is_some() {
            " AND e.branch = $3"
        } else {
            ""
        }
    );
    let mut q = db.query(&sql).bind(t0).bind(t1);
    if let Some(b) = scope {
        q = q.bind(b.to_owned());
    }
    let rows: Vec<PricedRow> = q
        .fetch_all_as(db)
        .await
        .context("failed to read message pricing")?;
    let mut by: std::collections::BTreeMap<String, (i64, i64, Decimal)> = Default::default();
    for r in rows {
        let line = by
            .entry(r.branch.unwrap_or_else(|| "—".into()))
            .or_default();
        line.0 += 1;
        if r.billable {
            line.1 += 1;
            line.2 += rates.price(&r.category, r.at.with_timezone(&tz).date_naive());
        }
    }
    let mut out = CostSummary {
        total: CostLine {
            branch: "Total".into(),
            ..CostLine::default()
        },
        ..CostSummary::default()
    };
    let mut total = Decimal::ZERO;
    for (branch, (messages, billable, cost)) in by {
        out.total.messages += messages;
        out.total.billable += billable;
        total += cost;
        out.by_branch.push(CostLine {
            branch,
            messages,
            billable,
            cost: Money::from_decimal(cost),
        });
    }
    out.total.cost = Money::from_decimal(total);
    if !collected.is_zero() {
        out.cost_per_rupiah = Some(format!("{:.6}", (total / collected.decimal()).round_dp(6)));
    }
    Ok(out)
}
