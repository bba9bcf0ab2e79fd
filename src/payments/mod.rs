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
use crate::store::Tx;
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
    /// Makes a link the provider made unpayable (a newer one replaced it).
    fn expire(&self, provider_id: &str) -> impl std::future::Future<Output = Result<()>> + Send;
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

    /// A static link is only a URL; the callback refuses it once superseded.
    async fn expire(&self, _provider_id: &str) -> Result<()> {
        Ok(())
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

    async fn expire(&self, provider_id: &str) -> Result<()> {
        match self {
            Provider::Static(p) => p.expire(provider_id).await,
            Provider::Xendit(p) => p.expire(provider_id).await,
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
    /// The case's older pending links this one replaced.
    pub superseded: Vec<Superseded>,
}

/// An older link a new one replaced: no longer payable.
#[derive(Debug, Clone, PartialEq)]
pub struct Superseded {
    pub reference: String,
    pub provider_id: Option<String>,
}

/// A link the provider still has to make over the network, reserved in the
/// inbound message's transaction (status `creating`) and completed by
/// [`finish_link`] after it commits.
#[derive(Debug, Clone)]
pub struct PendingLink {
    pub req: LinkRequest,
    pub case_id: i64,
}

/// What a payment-link request gets.
#[derive(Debug)]
pub enum LinkPlan {
    /// Nothing is owed.
    Nothing,
    /// A link to send now: an unexpired one for the same bills, or a new
    /// one the provider makes without the network.
    Ready(PaymentLink),
    /// The provider must be called outside the transaction.
    Create(PendingLink),
}

/// Decides, inside the transaction that stored the request (so a
/// redelivered request, deduplicated there, never gets here twice), which
/// link the case gets: an unexpired one for the same bills and amount, else
/// a new one that supersedes the case's older pending links.
pub async fn plan_link(
    tx: &mut Tx,
    config: &Config,
    provider: &Provider,
    case_id: i64,
    at: DateTime<Utc>,
) -> Result<LinkPlan> {
    let at = crate::time::truncate(at);
    let Some(c) = tx
        .query(
            "SELECT c.employer_id, e.npp, e.name, e.timezone FROM cases c \
             JOIN employers e ON e.id = c.employer_id WHERE c.id = $1 AND c.resolved_at IS NULL",
        )
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await
        .context("failed to read the case for a payment link")?
    else {
        return Ok(LinkPlan::Nothing);
    };
    let employer_id: i64 = c.get("employer_id")?;
    let npp: String = c.get("npp")?;
    let tz = crate::config::parse_zone(&c.get::<String>("timezone")?)
        .unwrap_or(chrono_tz::Asia::Jakarta);
    let today: NaiveDate = at.with_timezone(&tz).date_naive();
    let mut bills = Vec::new();
    for r in tx
        .query(
            "SELECT period, amount_minor, paid_minor FROM bills \
             WHERE employer_id = $1 AND settled_at IS NULL AND due_date < $2 ORDER BY period",
        )
        .bind(employer_id)
        .bind(today)
        .fetch_all(&mut *tx)
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
        return Ok(LinkPlan::Nothing);
    }
    let bills_json = serde_json::to_string(&bills)?;
    // Reused only while it has a useful life left (an hour), so an employer
    // never gets a link that dies while they open it.
    if let Some(r) = tx
        .query(
            "SELECT reference, url, amount_minor, expires_at FROM payment_links \
             WHERE case_id = $1 AND status = 'pending' AND amount_minor = $2 AND bills = $3 \
               AND expires_at > $4 ORDER BY id DESC LIMIT 1",
        )
        .bind(case_id)
        .bind(amount_minor)
        .bind(bills_json.clone())
        .bind(at + Duration::hours(1))
        .fetch_optional(&mut *tx)
        .await
        .context("failed to look for a reusable payment link")?
    {
        return Ok(LinkPlan::Ready(PaymentLink {
            reference: r.get("reference")?,
            case_id,
            url: r.get("url")?,
            amount: Money::from_minor(r.get("amount_minor")?),
            expires_at: r.get("expires_at")?,
            created: false,
            superseded: Vec::new(),
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
    match provider {
        Provider::Static(p) => {
            let link = p.create(&req).await?;
            store_link(
                tx,
                &req,
                case_id,
                employer_id,
                &bills_json,
                &link,
                p.name(),
                "pending",
                at,
            )
            .await?;
            let superseded = supersede_older(tx, case_id, &reference, at).await?;
            Ok(LinkPlan::Ready(PaymentLink {
                reference,
                case_id,
                url: link.url,
                amount: req.amount,
                expires_at: link.expires_at,
                created: true,
                superseded,
            }))
        }
        Provider::Xendit(p) => {
            // Reserved now, made after the commit: no lock is held across
            // the network call, and the reference is fixed before it.
            let placeholder = CreatedLink {
                url: String::new(),
                provider_id: None,
                expires_at: req.expires_at,
            };
            store_link(
                tx,
                &req,
                case_id,
                employer_id,
                &bills_json,
                &placeholder,
                p.name(),
                "creating",
                at,
            )
            .await?;
            Ok(LinkPlan::Create(PendingLink { req, case_id }))
        }
    }
}

/// Asks the provider for a reserved link (outside any transaction).
pub async fn create_pending(provider: &Provider, pending: &PendingLink) -> Result<CreatedLink> {
    provider
        .create(&pending.req)
        .await
        .with_context(|| format!("the {} provider could not make a link", provider.name()))
}

/// What became of a reserved link.
#[derive(Debug)]
pub enum Finished {
    /// Payable now; the case's older links are superseded.
    Link(PaymentLink),
    /// The provider could not make it.
    Failed(anyhow::Error),
    /// A newer request superseded it while the provider was making it:
    /// nothing to send, and the provider's link is to be expired.
    Overtaken(Superseded),
}

/// Completes a reserved link with what the provider answered.
pub async fn finish_link(
    tx: &mut Tx,
    pending: &PendingLink,
    made: Result<CreatedLink>,
    at: DateTime<Utc>,
) -> Result<Finished> {
    let at = crate::time::truncate(at);
    let reference = pending.req.reference.clone();
    let link = match made {
        Ok(link) => link,
        Err(e) => {
            tx.query("UPDATE payment_links SET status = 'failed' WHERE reference = $1 AND status = 'creating'")
                .bind(reference.clone())
                .execute(&mut *tx)
                .await
                .context("failed to note the failed payment link")?;
            return Ok(Finished::Failed(e));
        }
    };
    // Kept whatever its status now, so a callback for it finds its bills.
    let row = tx
        .query(
            "UPDATE payment_links SET url = $2, provider_id = $3, expires_at = $4, \
                    status = CASE WHEN status = 'creating' THEN 'pending' ELSE status END \
             WHERE reference = $1 RETURNING status",
        )
        .bind(reference.clone())
        .bind(link.url.clone())
        .bind(link.provider_id.clone())
        .bind(crate::time::truncate(link.expires_at))
        .fetch_one(&mut *tx)
        .await
        .context("failed to store the payment link")?;
    if row.get::<String>("status")? != "pending" {
        return Ok(Finished::Overtaken(Superseded {
            reference,
            provider_id: link.provider_id,
        }));
    }
    tx.audit(
        crate::audit::AuditEntry::new(
            at,
            "system",
            "payment_link.made",
            format!("payment_link:{reference}"),
        )
        .before(serde_json::json!({"status": "creating"}))
        .after(
            serde_json::json!({"status": "pending", "provider_id": link.provider_id,
                                  "expires_at": link.expires_at}),
        ),
    );
    let superseded = supersede_older(tx, pending.case_id, &reference, at).await?;
    Ok(Finished::Link(PaymentLink {
        reference,
        case_id: pending.case_id,
        url: link.url,
        amount: pending.req.amount,
        expires_at: link.expires_at,
        created: true,
        superseded,
    }))
}

/// A case has one payable link: the newest. Older pending ones become
/// `superseded` (a callback for one is recorded and raised for an officer).
async fn supersede_older(
    tx: &mut Tx,
    case_id: i64,
    newest: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Superseded>> {
    let rows = tx
        .query(
            "UPDATE payment_links SET status = 'superseded' \
             WHERE case_id = $1 AND reference <> $2 AND status IN ('pending', 'creating') \
             RETURNING reference, provider_id",
        )
        .bind(case_id)
        .bind(newest.to_owned())
        .fetch_all(&mut *tx)
        .await
        .context("failed to supersede older payment links")?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let old = Superseded {
            reference: r.get("reference")?,
            provider_id: r.get("provider_id")?,
        };
        tx.audit(
            crate::audit::AuditEntry::new(
                at,
                "system",
                "payment_link.supersede",
                format!("payment_link:{}", old.reference),
            )
            .before(serde_json::json!({"status": "pending"}))
            .after(serde_json::json!({"status": "superseded", "by": newest})),
        );
        out.push(old);
    }
    Ok(out)
}

/// Expires superseded links at the provider, after the commit that
/// superseded them. A failure is logged: the callback still refuses to
/// treat a payment through one as ordinary.
pub async fn expire_superseded(provider: &Provider, superseded: &[Superseded]) {
    for old in superseded {
        if let Some(id) = &old.provider_id {
            if let Err(e) = provider.expire(id).await {
                tracing::warn!(error = %format!("{e:#}"), reference = %old.reference,
                               "a superseded payment link could not be expired at the provider");
            }
        }
    }
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
    status: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.query(
        "INSERT INTO payment_links (reference, case_id, employer_id, amount_minor, bills, url, provider, provider_id, expires_at, created_at, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
    .bind(status.to_owned())
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
            "status": status,
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
