use super::context::MessageContext;
use super::filters;
use super::{MessageError, Result};
use crate::whatsapp::{
    check_template_param, ButtonParameter, ButtonSubType, Interactive, ReplyButton,
    TemplateComponent, TemplateLanguage, TemplateMessage, TemplateParameter,
    MAX_BUTTON_TITLE_CHARS, MAX_REPLY_BUTTONS,
};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The template files, compiled into the binary. A unit test checks this
/// list against the folder so a new file cannot be forgotten here.
const FILES: &[(&str, &str)] = &[
    (
        "reminder_1",
        include_str!("../../templates/messages/reminder_1.txt"),
    ),
    (
        "reminder_2",
        include_str!("../../templates/messages/reminder_2.txt"),
    ),
    (
        "reminder_3",
        include_str!("../../templates/messages/reminder_3.txt"),
    ),
    (
        "warning",
        include_str!("../../templates/messages/warning.txt"),
    ),
    (
        "promise_confirmed",
        include_str!("../../templates/messages/promise_confirmed.txt"),
    ),
    (
        "ask_promise_date",
        include_str!("../../templates/messages/ask_promise_date.txt"),
    ),
    (
        "payment_link",
        include_str!("../../templates/messages/payment_link.txt"),
    ),
    (
        "amount_breakdown",
        include_str!("../../templates/messages/amount_breakdown.txt"),
    ),
    (
        "opt_out_confirmed",
        include_str!("../../templates/messages/opt_out_confirmed.txt"),
    ),
    (
        "officer_will_contact",
        include_str!("../../templates/messages/officer_will_contact.txt"),
    ),
    (
        "payment_thanks",
        include_str!("../../templates/messages/payment_thanks.txt"),
    ),
    (
        "payment_claim_ack",
        include_str!("../../templates/messages/payment_claim_ack.txt"),
    ),
    (
        "clarify_paid_or_promise",
        include_str!("../../templates/messages/clarify_paid_or_promise.txt"),
    ),
];

/// Button payloads the webhook understands (CONTRACT "Messages and buttons").
pub const BUTTON_PAYLOADS: &[&str] = &["PAY_LINK", "PROMISE", "PAID", "OFFICER", "STOP"];

/// Optional context values a template may declare it cannot do without.
const REQUIRABLE: &[&str] = &[
    "contact_name",
    "payment_code",
    "payment_link",
    "promised_date",
];

/// Meta allows at most ten buttons on a template.
const MAX_TEMPLATE_BUTTONS: usize = 10;

/// A message template as declared in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDef {
    /// The file stem, e.g. `reminder_1` (what `Stage::message()` names).
    pub name: String,
    pub description: String,
    /// Optional context values this message needs (`payment_link`, …).
    pub requires: Vec<String>,
    pub whatsapp: WhatsappTemplateDef,
}

/// The approved WhatsApp template the message maps to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappTemplateDef {
    /// The template's name in WhatsApp Manager.
    pub name: String,
    /// Overrides `whatsapp.template_language` for this template.
    #[serde(default)]
    pub language: Option<String>,
    pub category: String,
    /// The body text as approved by Meta, with `{{1}}`, `{{2}}`, … where
    /// the parameters go: what the employer sees when the message goes out
    /// as a template.
    pub body: String,
    /// The body parameters `{{1}}`, `{{2}}`, … as minijinja expressions
    /// over the message context.
    pub params: Vec<String>,
    #[serde(default)]
    pub buttons: Vec<ButtonDef>,
}

/// A quick-reply button: its title as approved, and the payload prefix
/// (sent as `PAYLOAD:<case id>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonDef {
    pub payload: String,
    pub title: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    #[serde(default)]
    description: String,
    #[serde(default)]
    requires: Vec<String>,
    whatsapp: WhatsappTemplateDef,
}

/// All message templates, parsed and checked.
pub struct Catalog {
    env: Environment<'static>,
    defs: BTreeMap<String, TemplateDef>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("templates", &self.defs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Catalog {
    /// The embedded templates, each parsed and rendered strictly against
    /// [`MessageContext::sample`] and [`MessageContext::sample_minimal`], so
    /// a misspelt variable fails at start-up rather than at send time.
    pub fn load() -> Result<Catalog> {
        Self::from_sources(FILES.iter().map(|(n, s)| (n.to_string(), s.to_string())))
    }

    /// The same from explicit `(name, file content)` pairs (tests, previews
    /// of a template being edited).
    pub fn from_sources(files: impl IntoIterator<Item = (String, String)>) -> Result<Catalog> {
        let mut env = new_environment();
        let mut defs = BTreeMap::new();
        for (name, source) in files {
            let def = parse_file(&name, &source, &mut env)?;
            if defs.insert(name.clone(), def).is_some() {
                return Err(template_error(&name, "declared twice"));
            }
        }
        let catalog = Catalog { env, defs };
        catalog.check_all()?;
        Ok(catalog)
    }

    fn check_all(&self) -> Result<()> {
        let full = MessageContext::sample();
        let mut wa_names = BTreeMap::new();
        for def in self.defs.values() {
            if let Some(other) = wa_names.insert(&def.whatsapp.name, &def.name) {
                return Err(template_error(
                    &def.name,
                    format!(
                        "WhatsApp template `{}` is already used by `{other}`",
                        def.whatsapp.name
                    ),
                ));
            }
            let mut minimal = MessageContext::sample_minimal();
            for field in &def.requires {
                minimal.take_field(field, &full);
            }
            for ctx in [&full, &minimal] {
                self.render_text(&def.name, ctx)?;
                // Raw renders: a sample's data is clean, so any new line or
                // long run of spaces comes from the expression itself.
                for (i, raw) in self.raw_params(def, ctx)?.iter().enumerate() {
                    check_template_param(raw).map_err(|e| {
                        template_error(&def.name, format!("body parameter {} {e}", i + 1))
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The message names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&TemplateDef> {
        self.defs.get(name)
    }

    fn def(&self, name: &str, ctx: &MessageContext) -> Result<&TemplateDef> {
        let def = self
            .defs
            .get(name)
            .ok_or_else(|| MessageError::UnknownTemplate(name.to_owned()))?;
        for field in &def.requires {
            if ctx.has(field) != Some(true) {
                return Err(template_error(
                    name,
                    format!("needs `{field}`, which the context lacks"),
                ));
            }
        }
        Ok(def)
    }

    /// The plain-text message: what an officer previews and what is sent as
    /// free-form text inside the 24-hour window.
    pub fn render_text(&self, name: &str, ctx: &MessageContext) -> Result<String> {
        self.def(name, ctx)?;
        let text = self
            .env
            .get_template(name)
            .and_then(|t| t.render(Value::from(minijinja::value::Serde(ctx.view()))))
            .map_err(|e| render_error(name, &e))?;
        Ok(tidy(&text))
    }

    /// The body parameters in declared order, each on one line with runs of
    /// white space collapsed (names imported from SMILE may hold them).
    pub fn body_params(&self, name: &str, ctx: &MessageContext) -> Result<Vec<String>> {
        let def = self.def(name, ctx)?;
        self.raw_params(def, ctx)?
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
                check_template_param(&text)
                    .map(|_| text)
                    .map_err(|e| template_error(name, format!("body parameter {} {e}", i + 1)))
            })
            .collect()
    }

    fn raw_params(&self, def: &TemplateDef, ctx: &MessageContext) -> Result<Vec<String>> {
        let view = Value::from(minijinja::value::Serde(ctx.view()));
        (1..=def.whatsapp.params.len())
            .map(|i| {
                let pname = param_template_name(&def.name, i);
                self.env
                    .get_template(&pname)
                    .and_then(|t| t.render(view.clone()))
                    .map_err(|e| render_error(&pname, &e))
            })
            .collect()
    }

    /// The approved body with the parameters filled in: what the employer
    /// sees when this message goes out as a template.
    pub fn render_whatsapp_body(&self, name: &str, ctx: &MessageContext) -> Result<String> {
        let def = self.def(name, ctx)?;
        let params = self.body_params(name, ctx)?;
        Ok(fill_body(&def.whatsapp.body, &params))
    }

    /// The message whose approved WhatsApp template is named `wa_name`.
    pub fn by_whatsapp_name(&self, wa_name: &str) -> Option<&TemplateDef> {
        self.defs.values().find(|d| d.whatsapp.name == wa_name)
    }

    /// The Cloud API `template` object for this message: `language` is
    /// `whatsapp.template_language` unless the file overrides it.
    pub fn whatsapp_template(
        &self,
        name: &str,
        ctx: &MessageContext,
        language: &str,
    ) -> Result<TemplateMessage> {
        let def = self.def(name, ctx)?;
        let params = self.body_params(name, ctx)?;
        let mut components = vec![TemplateComponent::Body {
            parameters: params.into_iter().map(TemplateParameter::text).collect(),
        }];
        components.extend(def.whatsapp.buttons.iter().enumerate().map(|(i, b)| {
            TemplateComponent::Button {
                sub_type: ButtonSubType::QuickReply,
                index: i.to_string(),
                parameters: vec![ButtonParameter::Payload {
                    payload: payload(&b.payload, ctx.case_id),
                }],
            }
        }));
        Ok(TemplateMessage {
            name: def.whatsapp.name.clone(),
            language: TemplateLanguage::new(def.whatsapp.language.as_deref().unwrap_or(language)),
            components,
        })
    }

    /// The message's buttons as reply buttons (`PAID:42`, "Sudah bayar").
    pub fn reply_buttons(&self, name: &str, ctx: &MessageContext) -> Result<Vec<ReplyButton>> {
        let def = self.def(name, ctx)?;
        Ok(def
            .whatsapp
            .buttons
            .iter()
            .map(|b| ReplyButton::new(payload(&b.payload, ctx.case_id), b.title.clone()))
            .collect())
    }

    /// The text with its buttons as an interactive message, for replies
    /// inside the 24-hour window. Only for messages with 1 to 3 buttons.
    pub fn interactive(&self, name: &str, ctx: &MessageContext) -> Result<Interactive> {
        let buttons = self.reply_buttons(name, ctx)?;
        if buttons.is_empty() || buttons.len() > MAX_REPLY_BUTTONS {
            return Err(template_error(
                name,
                format!(
                    "has {} buttons; an interactive message takes 1 to {MAX_REPLY_BUTTONS}",
                    buttons.len()
                ),
            ));
        }
        let interactive = Interactive::reply_buttons(self.render_text(name, ctx)?, buttons);
        interactive
            .validate()
            .map_err(|e| template_error(name, e))?;
        Ok(interactive)
    }
}

/// An approved body with `{{1}}`, `{{2}}`, … replaced by `params`, as Meta
/// renders a template on the employer's phone.
pub fn fill_body(body: &str, params: &[String]) -> String {
    // One pass, so a parameter's own text is never substituted again.
    let mut text = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find("}}")
            .map(|end| (end, after[..end].trim().parse::<usize>()))
        {
            Some((end, Ok(n))) if (1..=params.len()).contains(&n) => {
                text.push_str(&params[n - 1]);
                rest = &after[end + 2..];
            }
            _ => {
                text.push_str("{{");
                rest = after;
            }
        }
    }
    text.push_str(rest);
    text.trim().to_owned()
}

fn payload(prefix: &str, case_id: i64) -> String {
    format!("{prefix}:{case_id}")
}

fn param_template_name(name: &str, i: usize) -> String {
    format!("{name}#param{i}")
}

fn template_error(name: &str, reason: impl Into<String>) -> MessageError {
    MessageError::Template {
        template: name.to_owned(),
        reason: reason.into(),
    }
}

fn render_error(name: &str, e: &Error) -> MessageError {
    let template = name.split('#').next().unwrap_or(name);
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    template_error(template, reason)
}

fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // WhatsApp text is plain; it is never put into HTML unescaped.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("static syntax config"),
    );
    // Printing an absent optional value would put "none" in front of an
    // employer; make it an error like an undefined variable.
    env.set_formatter(|out, state, value| {
        if value.is_none() || value.is_undefined() {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                "printed an absent value; guard it with {% if … %} or declare it in `requires`",
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    filters::register(&mut env);
    env
}

/// Splits `+++ front matter +++ body`, checks the declaration and adds the
/// body and each parameter expression to the environment.
fn parse_file(name: &str, source: &str, env: &mut Environment<'static>) -> Result<TemplateDef> {
    let err = |reason: String| template_error(name, reason);
    let rest = source
        .strip_prefix("+++\n")
        .or_else(|| source.strip_prefix("+++\r\n"))
        .ok_or_else(|| err("must start with a `+++` line opening the TOML front matter".into()))?;
    let end = rest
        .find("\n+++\n")
        .or_else(|| rest.find("\n+++\r\n"))
        .ok_or_else(|| err("front matter is not closed by a `+++` line".into()))?;
    let (front, body) = (&rest[..end], &rest[end + 1..]);
    let body = body
        .split_once('\n')
        .map(|(_, b)| b)
        .unwrap_or_default()
        .to_owned();
    let fm: FrontMatter =
        toml::from_str(front).map_err(|e| err(format!("front matter: {}", one_line(&e))))?;

    let wa = &fm.whatsapp;
    if wa.name.is_empty()
        || wa.name.len() > 512
        || !wa
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(err(format!(
            "whatsapp.name `{}` must be lower-case letters, digits and underscores",
            wa.name
        )));
    }
    if !matches!(
        wa.category.as_str(),
        "utility" | "marketing" | "authentication"
    ) {
        return Err(err(format!(
            "whatsapp.category `{}` must be utility, marketing or authentication",
            wa.category
        )));
    }
    if let Some(lang) = &wa.language {
        if lang.is_empty() || !lang.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
            return Err(err(format!(
                "whatsapp.language `{lang}` is not a language code"
            )));
        }
    }
    if wa.params.is_empty() {
        return Err(err(
            "whatsapp.params must list at least one parameter".into()
        ));
    }
    let placeholders = placeholders(&wa.body);
    let expected: Vec<usize> = (1..=wa.params.len()).collect();
    let mut found = placeholders.clone();
    found.sort_unstable();
    found.dedup();
    if found != expected {
        return Err(err(format!(
            "whatsapp.body uses placeholders {placeholders:?} but declares {} params; it must use each of {{{{1}}}}..{{{{{}}}}}",
            wa.params.len(),
            wa.params.len()
        )));
    }
    check_buttons(wa).map_err(err)?;
    for field in &fm.requires {
        if !REQUIRABLE.contains(&field.as_str()) {
            return Err(err(format!(
                "requires `{field}`: only {} can be required",
                REQUIRABLE.join(", ")
            )));
        }
    }
    if body.trim().is_empty() {
        return Err(err(
            "the message body after the front matter is empty".into()
        ));
    }

    env.add_template_owned(name.to_owned(), body)
        .map_err(|e| render_error(name, &e))?;
    for (i, expr) in wa.params.iter().enumerate() {
        if expr.contains("{{") || expr.contains("{%") {
            return Err(err(format!(
                "body parameter {} is an expression, written without {{{{ }}}}",
                i + 1
            )));
        }
        let pname = param_template_name(name, i + 1);
        env.add_template_owned(pname.clone(), format!("{{{{ {expr} }}}}"))
            .map_err(|e| render_error(&pname, &e))?;
    }

    Ok(TemplateDef {
        name: name.to_owned(),
        description: fm.description,
        requires: fm.requires,
        whatsapp: fm.whatsapp,
    })
}

/// At most [`MAX_TEMPLATE_BUTTONS`] quick replies, each a known payload
/// once, with a title WhatsApp accepts.
fn check_buttons(wa: &WhatsappTemplateDef) -> Result<(), String> {
    if wa.buttons.len() > MAX_TEMPLATE_BUTTONS {
        return Err(format!(
            "at most {MAX_TEMPLATE_BUTTONS} buttons, got {}",
            wa.buttons.len()
        ));
    }
    let mut seen = Vec::new();
    for b in &wa.buttons {
        if !BUTTON_PAYLOADS.contains(&b.payload.as_str()) {
            return Err(format!(
                "button payload `{}` is not one of {}",
                b.payload,
                BUTTON_PAYLOADS.join(", ")
            ));
        }
        if seen.contains(&&b.payload) {
            return Err(format!("button payload `{}` repeats", b.payload));
        }
        seen.push(&b.payload);
        let n = b.title.chars().count();
        if b.title.trim().is_empty() || n > MAX_BUTTON_TITLE_CHARS {
            return Err(format!(
                "button title `{}` must have 1 to {MAX_BUTTON_TITLE_CHARS} characters",
                b.title
            ));
        }
    }
    Ok(())
}

/// The numbers of the `{{n}}` placeholders in an approved body, in order.
fn placeholders(body: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find("}}") {
            if let Ok(n) = rest[..end].trim().parse::<usize>() {
                out.push(n);
            }
            rest = &rest[end + 2..];
        }
    }
    out
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Trailing spaces off every line, at most one blank line in a row, no
/// blank lines at either end: conditional blocks leave gaps otherwise.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}
