//! `wa-smile templates sync`: registers every message template of
//! `templates/messages/` with Meta's template management API (`POST
//! {api_base}/{version}/{waba_id}/message_templates`) unless Meta already has
//! it in that language, reads back each one's review status and quality, and
//! stores them (`crate::templates_status`).

use crate::config::WhatsappConfig;
use crate::messages::{Catalog, MessageContext, TemplateDef};
use crate::store::Db;
use anyhow::{Context, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A template as Meta's creation request carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateTemplate {
    pub name: String,
    pub language: String,
    pub category: String,
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum Component {
    Body {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        example: Option<BodyExample>,
    },
    Buttons {
        buttons: Vec<Button>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BodyExample {
    /// One list of sample values, one per `{{n}}`, in order.
    pub body_text: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Button {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

impl CreateTemplate {
    /// The request for one catalog entry, with examples rendered from the
    /// sample context (what Meta's reviewers read).
    pub fn from_def(catalog: &Catalog, def: &TemplateDef, language: &str) -> Result<Self> {
        let examples = catalog
            .body_params(&def.name, &MessageContext::sample())
            .with_context(|| format!("message template `{}`: sample parameters", def.name))?;
        let mut components = vec![Component::Body {
            text: def.whatsapp.body.trim().to_owned(),
            example: (!examples.is_empty()).then(|| BodyExample {
                body_text: vec![examples],
            }),
        }];
        if !def.whatsapp.buttons.is_empty() {
            components.push(Component::Buttons {
                buttons: def
                    .whatsapp
                    .buttons
                    .iter()
                    .map(|b| Button {
                        kind: "QUICK_REPLY",
                        text: b.title.clone(),
                    })
                    .collect(),
            });
        }
        Ok(Self {
            name: def.whatsapp.name.clone(),
            language: def
                .whatsapp
                .language
                .clone()
                .unwrap_or_else(|| language.to_owned()),
            category: def.whatsapp.category.to_ascii_uppercase(),
            components,
        })
    }
}

/// A template as Meta lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct MetaTemplate {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub quality_score: Option<QualityScore>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QualityScore {
    #[serde(default)]
    pub score: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListPage {
    #[serde(default)]
    data: Vec<MetaTemplate>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct Paging {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Created {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    category: Option<String>,
}

/// The template management endpoints of one WhatsApp Business Account.
pub struct TemplateApi {
    http: reqwest::Client,
    url: String,
    token: SecretString,
}

impl TemplateApi {
    /// None of the settings may be empty; the error names each missing key.
    pub fn from_config(w: &WhatsappConfig) -> Result<Self, Vec<String>> {
        let mut missing = Vec::new();
        if w.waba_id.trim().is_empty() {
            missing.push(
                "config: whatsapp.waba_id is not set (set WA_SMILE__WHATSAPP__WABA_ID)".to_owned(),
            );
        }
        if w.access_token.expose_secret().trim().is_empty() {
            missing.push(
                "config: whatsapp.access_token is not set (set WA_SMILE__WHATSAPP__ACCESS_TOKEN)"
                    .to_owned(),
            );
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("wa-smile/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| vec![format!("error: cannot build the HTTP client: {e}")])?;
        Ok(Self {
            http,
            url: format!(
                "{}/{}/{}/message_templates",
                w.api_base.trim_end_matches('/'),
                w.api_version.trim_matches('/'),
                w.waba_id.trim()
            ),
            token: w.access_token.clone(),
        })
    }

    /// Every template of the account (all pages).
    pub async fn list(&self) -> Result<Vec<MetaTemplate>> {
        let mut out = Vec::new();
        let mut next = Some(format!(
            "{}?fields=id,name,language,category,status,quality_score&limit=100",
            self.url
        ));
        // Meta pages by cursor; a bound stops a server that never ends.
        for _ in 0..100 {
            let Some(url) = next.take() else { break };
            let res = self
                .http
                .get(&url)
                .bearer_auth(self.token.expose_secret())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("listing templates: {}", e.without_url()))?;
            let page: ListPage = meta_json(res).await.context("listing templates")?;
            out.extend(page.data);
            next = page.paging.and_then(|p| p.next).filter(|n| !n.is_empty());
        }
        Ok(out)
    }

    pub async fn create(&self, t: &CreateTemplate) -> Result<MetaTemplate> {
        let res = self
            .http
            .post(&self.url)
            .bearer_auth(self.token.expose_secret())
            .json(t)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("registering `{}`: {}", t.name, e.without_url()))?;
        let created: Created = meta_json(res)
            .await
            .with_context(|| format!("registering `{}`", t.name))?;
        Ok(MetaTemplate {
            id: created.id,
            name: t.name.clone(),
            language: t.language.clone(),
            category: created.category.or_else(|| Some(t.category.clone())),
            status: created.status.or_else(|| Some("PENDING".into())),
            quality_score: None,
        })
    }
}

/// The body on success; Meta's error (code and message, never the token)
/// otherwise.
async fn meta_json<T: serde::de::DeserializeOwned>(res: reqwest::Response) -> Result<T> {
    let status = res.status();
    let body = res
        .bytes()
        .await
        .map_err(|e| anyhow::anyhow!("reading Meta's answer: {}", e.without_url()))?;
    if !status.is_success() {
        #[derive(Deserialize)]
        struct Envelope {
            error: crate::whatsapp::MetaError,
        }
        return Err(match serde_json::from_slice::<Envelope>(&body) {
            Ok(e) => anyhow::anyhow!(
                "Meta refused ({}): code {} {}{}",
                status.as_u16(),
                e.error.code,
                e.error.message,
                e.error
                    .details()
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default()
            ),
            Err(_) => anyhow::anyhow!("Meta answered HTTP {}", status.as_u16()),
        });
    }
    serde_json::from_slice(&body).context("Meta's answer is not the expected JSON")
}

/// One line of the sync table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncLine {
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub quality: Option<String>,
    /// `exists`, `registered`, `would register` (dry run) or `failed: …`.
    pub action: String,
}

/// Registers what Meta lacks (not with `dry_run`), then stores and returns
/// each template's status. A template Meta refuses is reported on its
/// line; the others still go.
pub async fn sync(
    db: Option<&Db>,
    api: &TemplateApi,
    catalog: &Catalog,
    language: &str,
    dry_run: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<SyncLine>> {
    let existing = api.list().await?;
    let mut lines = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for name in catalog.names() {
        let def = catalog.get(name).expect("listed by the catalog");
        let request = CreateTemplate::from_def(catalog, def, language)?;
        // Two messages may share one WhatsApp template.
        if !seen.insert((request.name.clone(), request.language.clone())) {
            continue;
        }
        let found = existing
            .iter()
            .find(|t| t.name == request.name && t.language == request.language);
        let (template, action) = match found {
            Some(t) => (Some(t.clone()), "exists".to_owned()),
            None if dry_run => (None, "would register".to_owned()),
            None => match api.create(&request).await {
                Ok(t) => (Some(t), "registered".to_owned()),
                Err(e) => (None, format!("failed: {e:#}")),
            },
        };
        let status = template
            .as_ref()
            .and_then(|t| t.status.clone())
            .unwrap_or_else(|| "—".into());
        let quality = template
            .as_ref()
            .and_then(|t| t.quality_score.as_ref()?.score.clone());
        if let (Some(db), Some(t), false) = (db, &template, dry_run) {
            crate::templates_status::record(
                db,
                &crate::templates_status::Update {
                    name: &t.name,
                    language: &t.language,
                    status: t.status.as_deref(),
                    quality: quality.as_deref(),
                    reason: None,
                    meta_id: t.id.as_deref(),
                    category: t.category.as_deref(),
                },
                now,
                now,
            )
            .await?;
        }
        lines.push(SyncLine {
            name: request.name,
            language: request.language,
            category: template
                .and_then(|t| t.category)
                .unwrap_or(request.category),
            status,
            quality,
            action,
        });
    }
    Ok(lines)
}

/// The table `templates sync` and `templates status` print.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

/// `templates sync [--dry-run]`: exit 2 when the account is not configured,
/// 1 when Meta refuses a template or cannot be reached.
pub async fn cli_sync(
    config: &crate::config::Config,
    db: Option<&Db>,
    dry_run: bool,
) -> Result<(), crate::cli::Failure> {
    use crate::cli::Failure;
    let api = TemplateApi::from_config(&config.whatsapp).map_err(Failure::invalid)?;
    let catalog = Catalog::load().map_err(|e| Failure::invalid(vec![format!("{e:#}")]))?;
    let lines = sync(
        db,
        &api,
        &catalog,
        &config.whatsapp.template_language,
        dry_run,
        crate::time::now(),
    )
    .await?;
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.language.clone(),
                l.category.clone(),
                l.status.clone(),
                l.quality.clone().unwrap_or_else(|| "—".into()),
                l.action.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["name", "language", "category", "status", "quality", "action"],
            &rows
        )
    );
    let failed: Vec<String> = lines
        .iter()
        .filter(|l| l.action.starts_with("failed"))
        .map(|l| format!("error: template {} ({}): {}", l.name, l.language, l.action))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            lines: failed,
        })
    }
}

/// `templates status [--json]`: the last known status of each template.
pub async fn cli_status(db: &Db, json: bool) -> Result<(), crate::cli::Failure> {
    let all = crate::templates_status::list(db).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&all).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    if all.is_empty() {
        println!("no template status known yet; run `wa-smile templates sync`");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.language.clone(),
                t.category.clone().unwrap_or_else(|| "—".into()),
                t.status.clone(),
                t.quality.clone().unwrap_or_else(|| "—".into()),
                t.status_at.to_rfc3339(),
                if t.is_blocking() {
                    crate::templates_status::REASON.to_owned()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["name", "language", "category", "status", "quality", "since", ""],
            &rows
        )
    );
    Ok(())
}
