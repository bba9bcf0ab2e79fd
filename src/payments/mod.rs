//! Payment links and the gateway's payment callback.
//!
//! A link covers a case's unpaid overdue bills at the moment it is made; its
//! `reference` (Xendit's `external_id`) is ours, and the callback finds the
//! link, and through it the bills, by that reference. Providers: `static`
//! (a URL from `payments.link_template`, no network) and `xendit` (an invoice
//! created over HTTP).

pub mod callback;
mod xendit;

pub use callback::{handle_callback, CallbackError, CallbackOutcome};
pub use xendit::XenditClient;

use crate::config::Config;
use crate::domain::Money;
use crate::store::{Db, Tx};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What a provider is asked to make a link for.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub reference: String,
    pub npp: String,
    pub employer_name: String,
    pub amount: Money,
    pub expires_at: DateTime<Utc>,
    pub description: String,
}

/// A link a provider made.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedLink {
    pub url: String,
    /// The provider's own id (Xendit's invoice id); none for `static`.
    pub provider_id: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// Makes payment links. Implementations must be idempotent on
/// `reference` as far as the provider allows.
pub trait LinkProvider {
    fn name(&self) -> &'static str;
    fn create(
        &self,
        req: &LinkRequest,
    ) -> impl std::future::Future<Output = Result<CreatedLink>> + Send;
}

/// `payments.link_template` with `{npp}` and `{reference}` filled in.
#[derive(Debug, Clone)]
pub struct StaticLinks {
    pub template: String,
}

impl LinkProvider for StaticLinks {
    fn name(&self) -> &'static str {
        "static"
    }

    async fn create(&self, req: &LinkRequest) -> Result<CreatedLink> {
        Ok(CreatedLink {
            url: self
                .template
                .replace("{npp}", &url_escape(&req.npp))
                .replace("{reference}", &url_escape(&req.reference)),
            provider_id: None,
            expires_at: req.expires_at,
        })
    }
}

/// Only unreserved URL characters pass; references and NPPs are plain
/// already, so this is a guard, not a feature.
fn url_escape(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':'))
        .collect()
}

/// The configured provider.
#[derive(Debug, Clone)]
pub enum Provider {
    Static(StaticLinks),
    Xendit(XenditClient),
}

impl Provider {
    pub fn from_config(config: &Config) -> Result<Provider> {
        Ok(match config.payments.provider.as_str() {
            "xendit" => Provider::Xendit(XenditClient::from_config(&config.payments)?),
            _ => Provider::Static(StaticLinks {
                template: config.payments.link_template.clone(),
            }),
        })
    }
}

impl LinkProvider for Provider {
    fn name(&self) -> &'static str {
        match self {
            Provider::Static(p) => p.name(),
            Provider::Xendit(p) => p.name(),
        }
    }

    async fn create(&self, req: &LinkRequest) -> Result<CreatedLink> {
        match self {
            Provider::Static(p) => p.create(req).await,
            Provider::Xendit(p) => p.create(req).await,
        }
    }
}

/// One bill a link pays, as stored in `payment_links.bills`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkBill {
    pub period: String,
    pub amount_minor: i64,
}

/// A stored payment link.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentLink {
    pub reference: String,
    pub case_id: i64,
    pub url: String,
    pub amount: Money,
    pub expires_at: DateTime<Utc>,
    /// False when an unexpired link for the same bills was reused.
    pub created: bool,
}

/// The link to send for an open case: an unexpired one for the same bills
/// and amount, else a new one from the provider. Runs outside any write
/// transaction because the provider may be a network call; a concurrent
/// duplicate at worst makes two valid links. `None` when nothing is owed.
pub async fn ensure_link(
    db: &Db,
    config: &Config,
    provider: &impl LinkProvider,
    case_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<PaymentLink>> {
    let at = crate::time::truncate(at);
    let Some(c) = db
        .query(
            "SELECT c.employer_id, e.npp, e.name, e.timezone FROM cases c \
             JOIN employers e ON e.id = c.employer_id WHERE c.id = $1 AND c.resolved_at IS NULL",
        )
        .bind(case_id)
        .fetch_optional(db)
        .await
        .context("failed to read the case for a payment link")?
    else {
        return Ok(None);
    };
    let employer_id: i64 = c.get("employer_id")?;
    let npp: String = c.get("npp")?;
    let tz = crate::config::parse_zone(&c.get::<String>("timezone")?)
        .unwrap_or(chrono_tz::Asia::Jakarta);
    let today: NaiveDate = at.with_timezone(&tz).date_naive();
    let mut bills = Vec::new();
    for r in db
        .query(
            "SELECT period, amount_minor, paid_minor FROM bills \
             WHERE employer_id = $1 AND settled_at IS NULL AND due_date < $2 ORDER BY period",
        )
        .bind(employer_id)
        .bind(today)
        .fetch_all(db)
        .await
        .context("failed to read the bills for a payment link")?
    {
        let owed = r.get::<i64>("amount_minor")? - r.get::<i64>("paid_minor")?;
        if owed > 0 {
            bills.push(LinkBill {
                period: r.get("period")?,
                amount_minor: owed,
            });
        }
    }
    let amount_minor: i64 = bills.iter().map(|b| b.amount_minor).sum();
    if amount_minor <= 0 {
        return Ok(None);
    }
    let bills_json = serde_json::to_string(&bills)?;
    // Reused only while it has a useful life left (an hour), so an employer
    // never gets a link that dies while they open it.
    if let Some(r) = db
        .query(
            "SELECT reference, url, amount_minor, expires_at FROM payment_links \
             WHERE case_id = $1 AND status = 'pending' AND amount_minor = $2 AND bills = $3 \
               AND expires_at > $4 ORDER BY id DESC LIMIT 1",
        )
        .bind(case_id)
        .bind(amount_minor)
        .bind(bills_json.clone())
        .bind(at + Duration::hours(1))
        .fetch_optional(db)
        .await
        .context("failed to look for a reusable payment link")?
    {
        return Ok(Some(PaymentLink {
            reference: r.get("reference")?,
            case_id,
            url: r.get("url")?,
            amount: Money::from_minor(r.get("amount_minor")?),
            expires_at: r.get("expires_at")?,
            created: false,
        }));
    }
    let reference = new_reference(case_id, at);
    let req = LinkRequest {
        reference: reference.clone(),
        npp: npp.clone(),
        employer_name: c.get("name")?,
        amount: Money::from_minor(amount_minor),
        expires_at: at + Duration::hours(i64::from(config.payments.link_validity_hours)),
        description: format!(
            "Iuran BPJS Ketenagakerjaan NPP {npp}, periode {}",
            bills
                .iter()
                .map(|b| b.period.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let link = provider
        .create(&req)
        .await
        .with_context(|| format!("the {} provider could not make a link", provider.name()))?;
    let mut tx = db.begin().await?;
    store_link(
        &mut tx,
        &req,
        case_id,
        employer_id,
        &bills_json,
        &link,
        provider.name(),
        at,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(PaymentLink {
        reference,
        case_id,
        url: link.url,
        amount: req.amount,
        expires_at: link.expires_at,
        created: true,
    }))
}

#[allow(clippy::too_many_arguments)]
async fn store_link(
    tx: &mut Tx,
    req: &LinkRequest,
    case_id: i64,
    employer_id: i64,
    bills_json: &str,
    link: &CreatedLink,
    provider: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.query(
        "INSERT INTO payment_links (reference, case_id, employer_id, amount_minor, bills, url, provider, provider_id, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(req.reference.clone())
    .bind(case_id)
    .bind(employer_id)
    .bind(req.amount.minor())
    .bind(bills_json.to_owned())
    .bind(link.url.clone())
    .bind(provider.to_owned())
    .bind(link.provider_id.clone())
    .bind(crate::time::truncate(link.expires_at))
    .bind(at)
    .execute(&mut *tx)
    .await
    .context("failed to store the payment link")?;
    tx.audit(
        crate::audit::AuditEntry::new(
            at,
            "system",
            "payment_link.create",
            format!("payment_link:{}", req.reference),
        )
        .after(serde_json::json!({
            "case_id": case_id,
            "amount": req.amount,
            "provider": provider,
            "provider_id": link.provider_id,
            "expires_at": link.expires_at,
        })),
    );
    Ok(())
}

/// `WAS-<case>-<random>`: unique without a round trip, short enough for a
/// bank transfer's remark field, and tells an officer the case at a glance.
fn new_reference(case_id: i64, at: DateTime<Utc>) -> String {
    use rand::Rng;
    let n: u32 = rand::rng().random();
    format!("WAS-{case_id}-{}{n:08X}", at.format("%y%m%d"))
}

/// Constant-time equality of a presented secret with the configured one.
/// An empty configured secret matches nothing (fail closed).
pub fn token_matches(configured: &str, presented: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    let Some(presented) = presented else {
        return false;
    };
    !configured.is_empty() && bool::from(configured.as_bytes().ct_eq(presented.as_bytes()))
}
