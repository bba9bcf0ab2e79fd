//! Payment links and their providers.
//!
//! A link covers a case's unpaid overdue bills at the moment it is made; its
//! `reference` (Xendit's `external_id`) is ours, and the gateway's callback
//! ([`crate::payment_callback`]) finds the link, and through it the bills,
//! by that reference. Providers: `static` (a URL from
//! `payments.link_template`, no network) and `xendit` (an invoice created
//! over HTTP). Nothing here sends a message: replies and the callback do,
//! on top of this module.

mod xendit;

pub use xendit::XenditClient;

use crate::config::Config;
use crate::domain::{Money, Npp, Period};
use crate::store::{Tx, Zone};
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
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Superseded {
    pub reference: String,
    pub provider_id: Option<String>,
}

/// The open case a link is for, with its employer.
#[derive(sqlx::FromRow)]
struct OpenCaseRow {
    employer_id: i64,
    npp: Npp,
    name: String,
    timezone: Zone,
}

/// A bill still owed, as a link lists it.
#[derive(sqlx::FromRow)]
struct OwedBillRow {
    period: Period,
    amount_minor: Money,
    paid_minor: Money,
}

/// An unexpired pending link that can be sent again.
#[derive(sqlx::FromRow)]
struct ReusableLinkRow {
    reference: String,
    url: String,
    amount_minor: Money,
    expires_at: DateTime<Utc>,
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
    plan_link_drawing(tx, config, provider, case_id, at, &mut || {
        new_reference(case_id, at)
    })
    .await
}

/// [`plan_link`] with the references a new link may take drawn by `draw`.
async fn plan_link_drawing(
    tx: &mut Tx,
    config: &Config,
    provider: &Provider,
    case_id: i64,
    at: DateTime<Utc>,
    draw: &mut (dyn FnMut() -> String + Send),
) -> Result<LinkPlan> {
    let Some(c) = tx
        .query(
            "SELECT c.employer_id, e.npp, e.name, e.timezone FROM cases c \
             JOIN employers e ON e.id = c.employer_id WHERE c.id = $1 AND c.resolved_at IS NULL",
        )
        .bind(case_id)
        .fetch_optional_as::<OpenCaseRow>(&mut *tx)
        .await
        .context("failed to read the case for a payment link")?
    else {
        return Ok(LinkPlan::Nothing);
    };
    let employer_id = c.employer_id;
    let npp = c.npp.to_string();
    let today: NaiveDate = at.with_timezone(&c.timezone.0).date_naive();
    let mut bills = Vec::new();
    for r in tx
        .query(
            "SELECT period, amount_minor, paid_minor FROM bills \
             WHERE employer_id = $1 AND settled_at IS NULL AND due_date < $2 ORDER BY period",
        )
        .bind(employer_id)
        .bind(today)
        .fetch_all_as::<OwedBillRow>(&mut *tx)
        .await
        .context("failed to read the bills for a payment link")?
    {
        let owed = r.amount_minor.minor() - r.paid_minor.minor();
        if owed > 0 {
            bills.push(LinkBill {
                period: r.period.to_string(),
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
        .fetch_optional_as::<ReusableLinkRow>(&mut *tx)
        .await
        .context("failed to look for a reusable payment link")?
    {
        return Ok(LinkPlan::Ready(PaymentLink {
            reference: r.reference,
            case_id,
            url: r.url,
            amount: r.amount_minor,
            expires_at: r.expires_at,
            created: false,
            superseded: Vec::new(),
        }));
    }
    let req = LinkRequest {
        reference: String::new(),
        npp: npp.clone(),
        employer_name: c.name,
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
    let stored = StoredLink {
        case_id,
        employer_id,
        bills_json: &bills_json,
        at,
    };
    new_link(tx, provider, req, &stored, draw).await
}

/// How many references are drawn before a link request gives up: a random
/// reference taken already is one in four billion per case and day.
const REFERENCE_DRAWS: usize = 5;

/// Stores a new link for `req` under a fresh reference: payable now for the
/// static provider (superseding the case's older links), reserved for
/// Xendit. A reference another link holds is refused by its unique key,
/// never checked first, and another is drawn.
async fn new_link(
    tx: &mut Tx,
    provider: &Provider,
    mut req: LinkRequest,
    stored: &StoredLink<'_>,
    draw: &mut (dyn FnMut() -> String + Send),
) -> Result<LinkPlan> {
    for _ in 0..REFERENCE_DRAWS {
        req.reference = draw();
        let (link, status) = match provider {
            Provider::Static(p) => (p.create(&req).await?, "pending"),
            // Reserved now, made after the commit: no lock is held across
            // the network call, and the reference is fixed before it.
            Provider::Xendit(_) => (
                CreatedLink {
                    url: String::new(),
                    provider_id: None,
                    expires_at: req.expires_at,
                },
                "creating",
            ),
        };
        if !store_link(tx, &req, stored, &link, provider.name(), status).await? {
            continue;
        }
        return Ok(match provider {
            Provider::Static(_) => {
                let superseded =
                    supersede_older(tx, stored.case_id, &req.reference, stored.at).await?;
                LinkPlan::Ready(PaymentLink {
                    reference: req.reference,
                    case_id: stored.case_id,
                    url: link.url,
                    amount: req.amount,
                    expires_at: link.expires_at,
                    created: true,
                    superseded,
                })
            }
            Provider::Xendit(_) => LinkPlan::Create(PendingLink {
                req,
                case_id: stored.case_id,
            }),
        });
    }
    anyhow::bail!("no free payment link reference after {REFERENCE_DRAWS} draws")
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
    let status: String = tx
        .query(
            "UPDATE payment_links SET url = $2, provider_id = $3, expires_at = $4, \
                    status = CASE WHEN status = 'creating' THEN 'pending' ELSE status END \
             WHERE reference = $1 RETURNING status",
        )
        .bind(reference.clone())
        .bind(link.url.clone())
        .bind(link.provider_id.clone())
        .bind(crate::time::truncate(link.expires_at))
        .fetch_scalar(&mut *tx)
        .await
        .context("failed to store the payment link")?;
    if status != "pending" {
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
    let rows: Vec<Superseded> = tx
        .query(
            "UPDATE payment_links SET status = 'superseded' \
             WHERE case_id = $1 AND reference <> $2 AND status IN ('pending', 'creating') \
             RETURNING reference, provider_id",
        )
        .bind(case_id)
        .bind(newest.to_owned())
        .fetch_all_as(&mut *tx)
        .await
        .context("failed to supersede older payment links")?;
    for old in &rows {
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
    }
    Ok(rows)
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

/// Where a new link belongs, besides its request.
struct StoredLink<'a> {
    case_id: i64,
    employer_id: i64,
    bills_json: &'a str,
    at: DateTime<Utc>,
}

/// Inserts the link; false when its reference is taken already.
async fn store_link(
    tx: &mut Tx,
    req: &LinkRequest,
    stored: &StoredLink<'_>,
    link: &CreatedLink,
    provider: &str,
    status: &str,
) -> Result<bool> {
    let at = stored.at;
    let inserted = tx
        .query(
            "INSERT INTO payment_links (reference, case_id, employer_id, amount_minor, bills, url, provider, provider_id, expires_at, created_at, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (reference) DO NOTHING",
        )
        .bind(req.reference.clone())
        .bind(stored.case_id)
        .bind(stored.employer_id)
        .bind(req.amount)
        .bind(stored.bills_json.to_owned())
        .bind(link.url.clone())
        .bind(provider.to_owned())
        .bind(link.provider_id.clone())
        .bind(crate::time::truncate(link.expires_at))
        .bind(at)
        .bind(status.to_owned())
        .execute(&mut *tx)
        .await
        .context("failed to store the payment link")?;
    if inserted == 0 {
        return Ok(false);
    }
    tx.audit(
        crate::audit::AuditEntry::new(
            at,
            "system",
            "payment_link.create",
            format!("payment_link:{}", req.reference),
        )
        .after(serde_json::json!({
            "case_id": stored.case_id,
            "amount": req.amount,
            "provider": provider,
            "provider_id": link.provider_id,
            "expires_at": link.expires_at,
            "status": status,
        })),
    );
    Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An employer with one overdue bill and its open case.
    async fn open_case(db: &crate::store::Db, at: DateTime<Utc>) -> Result<i64> {
        let employer: i64 = db
            .query(
                "INSERT INTO employers (npp, name, branch, wa_id, contact_name, timezone, created_at, updated_at) \
                 VALUES ('12345678', 'PT Uji', 'PKU', NULL, 'Ibu Sari', 'Asia/Jakarta', $1, $1) RETURNING id",
            )
            .bind(at)
            .fetch_scalar(db)
            .await?;
        db.query(
            "INSERT INTO bills (employer_id, period, amount_minor, due_date, created_at, updated_at) \
             VALUES ($1, '2025-01', 150000000, $2, $3, $3)",
        )
        .bind(employer)
        .bind(at.date_naive() - Duration::days(10))
        .bind(at)
        .execute(db)
        .await?;
        Ok(db
            .query(
                "INSERT INTO cases (employer_id, status, stage, opened_at, updated_at) \
                 VALUES ($1, 'open', 'reminder_1', $2, $2) RETURNING id",
            )
            .bind(employer)
            .bind(at)
            .fetch_scalar(db)
            .await?)
    }

    #[tokio::test]
    async fn a_reference_another_link_holds_is_refused_by_the_key_and_drawn_again() -> Result<()> {
        let config = Config::from_sources(None, Vec::<(String, String)>::new())?;
        let provider = Provider::from_config(&config)?;
        for t in crate::testing::all().await? {
            let db = &t.db;
            let at = crate::time::truncate(Utc::now());
            let case_id = open_case(db, at).await?;
            db.query(
                "INSERT INTO payment_links (reference, case_id, employer_id, amount_minor, bills, url, provider, expires_at, created_at, status) \
                 SELECT 'WAS-TAKEN', id, employer_id, 1, '[]', 'https://old', 'static', $2, $2, 'paid' FROM cases WHERE id = $1",
            )
            .bind(case_id)
            .bind(at)
            .execute(db)
            .await?;

            let mut drawn = ["WAS-TAKEN", "WAS-FREE"].into_iter().map(str::to_owned);
            let mut tx = db.begin().await?;
            let plan = plan_link_drawing(&mut tx, &config, &provider, case_id, at, &mut || {
                drawn.next().expect("two draws at most")
            })
            .await?;
            tx.commit().await?;
            let LinkPlan::Ready(link) = plan else {
                panic!("{}: a static link is ready at once, got {plan:?}", t.name);
            };
            assert_eq!(link.reference, "WAS-FREE", "{}", t.name);
            assert!(link.created, "{}", t.name);
            let links: Vec<ReferenceStatus> = db
                .query("SELECT reference, status, url FROM payment_links ORDER BY id")
                .fetch_all_as(db)
                .await?;
            assert_eq!(
                links,
                [
                    ReferenceStatus {
                        reference: "WAS-TAKEN".into(),
                        status: "paid".into(),
                        url: "https://old".into()
                    },
                    ReferenceStatus {
                        reference: "WAS-FREE".into(),
                        status: "pending".into(),
                        url: link.url.clone()
                    },
                ],
                "{}: the older link is untouched",
                t.name
            );
        }
        Ok(())
    }

    #[derive(Debug, PartialEq, sqlx::FromRow)]
    struct ReferenceStatus {
        reference: String,
        status: String,
        url: String,
    }
}
