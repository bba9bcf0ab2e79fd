//! Meta's template management, as much as an operator's `templates sync`
//! and the tests need: `POST /{waba_id}/message_templates` registers a
//! template for review (answered `PENDING`, approved after the first status
//! delay with a signed `message_template_status_update` webhook), and
//! `GET /{waba_id}/message_templates[?name=]` lists them with status and
//! quality. A test can move a template to another status (`PAUSED`, …),
//! which posts the webhook Meta would.

use super::{meta_error_with, Inner};
use serde_json::{json, Value};
use std::sync::Mutex;

/// Statuses Meta gives a template.
pub const STATUSES: [&str; 5] = ["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"];

#[derive(Debug, Clone)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub components: Value,
}

impl Template {
    fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "language": self.language,
               "category": self.category, "status": self.status,
               "components": self.components,
               "quality_score": {"score": if self.status == "PAUSED" { "RED" } else { "GREEN" }}})
    }
}

#[derive(Default)]
pub struct Store {
    templates: Mutex<Vec<Template>>,
}

impl Store {
    pub fn list(&self, name: Option<&str>) -> Vec<Template> {
        self.templates
            .lock()
            .expect("simulator templates")
            .iter()
            .filter(|t| name.is_none_or(|n| t.name == n))
            .cloned()
            .collect()
    }

    /// Sets a template's status; the template, or None when there is none
    /// of that name and language.
    fn set_status(&self, name: &str, language: &str, status: &str) -> Option<Template> {
        let mut all = self.templates.lock().expect("simulator templates");
        let t = all
            .iter_mut()
            .find(|t| t.name == name && t.language == language)?;
        t.status = status.to_owned();
        Some(t.clone())
    }
}

/// Meta's checks on a creation request, in its words; the template to
/// keep when they pass.
pub fn parse_create(id: String, body: &Value) -> Result<Template, String> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    let name = text("name");
    if name.is_empty()
        || name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err("name must be lowercase letters, digits and underscores".into());
    }
    if text("language").is_empty() {
        return Err("language is required".into());
    }
    let category = text("category");
    if !["UTILITY", "MARKETING", "AUTHENTICATION"].contains(&category) {
        return Err("category must be UTILITY, MARKETING or AUTHENTICATION".into());
    }
    let components = body.get("components").cloned().unwrap_or(json!([]));
    let body_component = components
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "BODY"));
    let Some(body_component) = body_component else {
        return Err("components must hold a BODY".into());
    };
    let body_text = body_component["text"].as_str().unwrap_or_default();
    let params = body_text.matches("{{").count();
    let examples = body_component["example"]["body_text"][0]
        .as_array()
        .map_or(0, Vec::len);
    if params > 0 && examples != params {
        return Err(format!(
            "the body has {params} parameter(s) but example.body_text gives {examples}"
        ));
    }
    Ok(Template {
        id,
        name: name.to_owned(),
        language: text("language").to_owned(),
        category: category.to_owned(),
        status: "PENDING".into(),
        components,
    })
}

/// `message_template_status_update`, as Meta posts it to the app.
pub fn status_update_webhook(t: &Template) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "SIMULATOR", "time": chrono::Utc::now().timestamp(), "changes": [{
            "field": "message_template_status_update",
            "value": {"event": t.status, "message_template_id": t.id,
                      "message_template_name": t.name,
                      "message_template_language": t.language, "reason": "NONE"},
        }]}],
    })
    .to_string()
}

impl Inner {
    /// Registers a template; Meta's answer (`id`, `status`, `category`) or
    /// its error body.
    pub(super) fn create_template(
        self: &std::sync::Arc<Self>,
        body: &Value,
    ) -> axum::response::Response {
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        let id = format!("{}", 900_000_000_000 + self.next_seq());
        let template = match parse_create(id, body) {
            Ok(t) => t,
            Err(why) => {
                return meta_error_with(
                    StatusCode::BAD_REQUEST,
                    100,
                    "(#100) Invalid parameter",
                    Some(&why),
                )
            }
        };
        {
            let mut all = self
                .templates
                .templates
                .lock()
                .expect("simulator templates");
            if all
                .iter()
                .any(|t| t.name == template.name && t.language == template.language)
            {
                return meta_error_with(
                    StatusCode::BAD_REQUEST,
                    100,
                    "(#100) Invalid parameter",
                    Some("Message template already exists in this language"),
                );
            }
            all.push(template.clone());
        }
        // Review takes a while at Meta; here, the first status delay.
        let sim = self.clone();
        let (name, language) = (template.name.clone(), template.language.clone());
        tokio::spawn(async move {
            tokio::time::sleep(sim.opts.status_delays[0]).await;
            sim.move_template(&name, &language, "APPROVED").await;
        });
        axum::Json(
            json!({"id": template.id, "status": template.status, "category": template.category}),
        )
        .into_response()
    }

    /// Moves a template to `status` and tells the app, as Meta does.
    pub(super) async fn move_template(
        &self,
        name: &str,
        language: &str,
        status: &str,
    ) -> Option<Template> {
        let t = self.templates.set_status(name, language, status)?;
        if self.opts.webhook_url.is_some() {
            if let Err(e) = self.post_webhook(status_update_webhook(&t)).await {
                tracing::warn!(error = ?e, "simulator: template status webhook not delivered");
            }
        }
        Some(t)
    }

    pub(super) fn list_templates(&self, name: Option<&str>) -> Value {
        let data: Vec<Value> = self
            .templates
            .list(name)
            .iter()
            .map(Template::to_json)
            .collect();
        json!({"data": data, "paging": {"cursors": {"before": "", "after": ""}}})
    }
}
