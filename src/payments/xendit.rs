//! Xendit invoices: `POST {base}/v2/invoices` to create one and
//! `POST {base}/invoices/{id}/expire!` to retire one, with the secret key as
//! the basic-auth user name.

use super::{CreatedLink, LinkProvider, LinkRequest};
use crate::config::PaymentsConfig;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone)]
pub struct XenditClient {
    http: reqwest::Client,
    base: String,
    secret_key: SecretString,
}

impl std::fmt::Debug for XenditClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XenditClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The invoice request body, as Xendit documents it.
#[derive(Debug, Serialize)]
struct CreateInvoice<'a> {
    external_id: &'a str,
    /// Whole rupiah: IDR invoices take no decimals.
    amount: i64,
    description: &'a str,
    invoice_duration: i64,
    currency: &'static str,
}

#[derive(Debug, Deserialize)]
struct Invoice {
    id: Option<String>,
    invoice_url: Option<String>,
    expiry_date: Option<DateTime<Utc>>,
}

impl XenditClient {
    pub fn new(base: &str, secret_key: SecretString, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("failed to build the Xendit HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            secret_key,
        })
    }

    pub fn from_config(c: &PaymentsConfig) -> Result<Self> {
        Self::new(
            &c.xendit_api_base,
            c.xendit_secret_key.clone(),
            Duration::from_secs(10),
        )
    }
}

impl LinkProvider for XenditClient {
    fn name(&self) -> &'static str {
        "xendit"
    }

    async fn create(&self, req: &LinkRequest) -> Result<CreatedLink> {
        if self.secret_key.expose_secret().is_empty() {
            bail!("payments.xendit_secret_key is not set");
        }
        // Sen are rounded up to the rupiah: an invoice a sen short would
        // leave the bill unsettled.
        let minor = req.amount.minor();
        let amount = minor / 100 + i64::from(minor % 100 != 0);
        let duration = (req.expires_at - crate::time::now()).num_seconds().max(60);
        let resp = self
            .http
            .post(format!("{}/v2/invoices", self.base))
            .basic_auth(self.secret_key.expose_secret(), Some(""))
            .json(&CreateInvoice {
                external_id: &req.reference,
                amount,
                description: &req.description,
                invoice_duration: duration,
                currency: "IDR",
            })
            .send()
            .await
            .context("Xendit did not answer")?;
        let status = resp.status();
        if !status.is_success() {
            bail!("Xendit refused the invoice with HTTP {status}");
        }
        let invoice: Invoice = resp
            .json()
            .await
            .context("Xendit's invoice answer is not the expected JSON")?;
        let url = invoice
            .invoice_url
            .context("Xendit's invoice has no invoice_url")?;
        Ok(CreatedLink {
            url,
            provider_id: invoice.id,
            expires_at: invoice.expiry_date.unwrap_or(req.expires_at),
        })
    }

    async fn expire(&self, provider_id: &str) -> Result<()> {
        if self.secret_key.expose_secret().is_empty() {
            bail!("payments.xendit_secret_key is not set");
        }
        // Invoice ids are Xendit's own (hex); anything else is not sent.
        if provider_id.is_empty()
            || !provider_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("not a Xendit invoice id");
        }
        let resp = self
            .http
            .post(format!("{}/invoices/{provider_id}/expire!", self.base))
            .basic_auth(self.secret_key.expose_secret(), Some(""))
            .send()
            .await
            .context("Xendit did not answer")?;
        let status = resp.status();
        if !status.is_success() {
            bail!("Xendit refused to expire the invoice with HTTP {status}");
        }
        Ok(())
    }
}
