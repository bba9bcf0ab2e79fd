//! The Cloud API's message objects, shaped exactly as Meta documents them
//! (see `tests/fixtures/whatsapp/`). Responses tolerate unknown fields.

use crate::domain::WaId;
use serde::{Deserialize, Serialize};

/// Meta's limits, checked before a request leaves the process.
pub const MAX_REPLY_BUTTONS: usize = 3;
pub const MAX_BUTTON_TITLE_CHARS: usize = 20;
pub const MAX_BUTTON_ID_CHARS: usize = 256;
pub const MAX_CALLBACK_DATA_CHARS: usize = 512;
pub const MAX_TEXT_BODY_CHARS: usize = 4096;
pub const MAX_INTERACTIVE_BODY_CHARS: usize = 1024;
pub const MAX_HEADER_FOOTER_CHARS: usize = 60;

/// One message to send: the recipient, the typed content, and the optional
/// reply context and callback data.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub to: WaId,
    pub content: MessageContent,
    /// The wamid this message answers (shows as a quoted reply).
    pub reply_to: Option<String>,
    /// Echoed back in status webhooks: WA SMILE puts the outbox id here.
    pub callback_data: Option<String>,
}

impl OutgoingMessage {
    pub fn new(to: &WaId, content: MessageContent) -> Self {
        Self {
            to: to.clone(),
            content,
            reply_to: None,
            callback_data: None,
        }
    }

    pub fn with_callback_data(mut self, data: impl Into<String>) -> Self {
        self.callback_data = Some(data.into());
        self
    }

    pub fn in_reply_to(mut self, wamid: impl Into<String>) -> Self {
        self.reply_to = Some(wamid.into());
        self
    }

    /// Meta's limits, so a bad message fails here with a reason rather than
    /// as an opaque 100 from the API.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(data) = &self.callback_data {
            let n = data.chars().count();
            if n > MAX_CALLBACK_DATA_CHARS {
                return Err(format!(
                    "biz_opaque_callback_data has {n} characters; at most {MAX_CALLBACK_DATA_CHARS}"
                ));
            }
        }
        match &self.content {
            MessageContent::Text { text: t } => {
                let n = t.body.chars().count();
                if t.body.trim().is_empty() {
                    Err("text body is empty".into())
                } else if n > MAX_TEXT_BODY_CHARS {
                    Err(format!(
                        "text body has {n} characters; at most {MAX_TEXT_BODY_CHARS}"
                    ))
                } else {
                    Ok(())
                }
            }
            MessageContent::Interactive { interactive } => interactive.validate(),
            MessageContent::Template { template } => template.validate(),
        }
    }
}

/// What a message carries; serialises as `"type": …` plus the object of that
/// type. Deserialisable so a reply can be queued in the outbox finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageContent {
    Template { template: TemplateMessage },
    Text { text: TextBody },
    Interactive { interactive: Interactive },
}

impl MessageContent {
    /// A template message (the only kind allowed outside the 24-hour window).
    pub fn template(template: TemplateMessage) -> Self {
        MessageContent::Template { template }
    }

    /// Free-form text, without link previews (payment links should not
    /// unfurl into someone else's page preview).
    pub fn text(body: impl Into<String>) -> Self {
        MessageContent::Text {
            text: TextBody::new(body),
        }
    }

    pub fn interactive(interactive: Interactive) -> Self {
        MessageContent::Interactive { interactive }
    }

    /// The Cloud API `type` of this content.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageContent::Template { .. } => "template",
            MessageContent::Text { .. } => "text",
            MessageContent::Interactive { .. } => "interactive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextBody {
    pub preview_url: bool,
    pub body: String,
}

impl TextBody {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            preview_url: false,
            body: body.into(),
        }
    }
}

/// The Cloud API `template` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateMessage {
    pub name: String,
    pub language: TemplateLanguage,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<TemplateComponent>,
}

impl TemplateMessage {
    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("template name is empty".into());
        }
        for c in &self.components {
            if let TemplateComponent::Body { parameters } = c {
                for (i, p) in parameters.iter().enumerate() {
                    if let TemplateParameter::Text { text } = p {
                        check_template_param(text)
                            .map_err(|e| format!("body parameter {}: {e}", i + 1))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The body parameters' texts in order (what fills `{{1}}`, `{{2}}`, …).
    pub fn body_texts(&self) -> Vec<&str> {
        self.components
            .iter()
            .filter_map(|c| match c {
                TemplateComponent::Body { parameters } => Some(parameters),
                _ => None,
            })
            .flatten()
            .map(|p| match p {
                TemplateParameter::Text { text } => text.as_str(),
                TemplateParameter::Currency { currency } => currency.fallback_value.as_str(),
                TemplateParameter::DateTime { date_time } => date_time.fallback_value.as_str(),
            })
            .collect()
    }
}

/// Meta rejects template parameters that are empty or hold new lines, tabs
/// or four or more consecutive spaces; catching it here names the culprit.
pub fn check_template_param(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        Err("is empty".into())
    } else if text.contains(['\n', '\r', '\t']) {
        Err("contains a new line or tab".into())
    } else if text.contains("    ") {
        Err("contains 4 or more consecutive spaces".into())
    } else {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateLanguage {
    /// Always `deterministic`: the only policy Meta still accepts.
    pub policy: String,
    pub code: String,
}

impl TemplateLanguage {
    pub fn new(code: impl Into<String>) -> Self {
        Self {
            policy: "deterministic".into(),
            code: code.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateComponent {
    Header {
        parameters: Vec<TemplateParameter>,
    },
    Body {
        parameters: Vec<TemplateParameter>,
    },
    Button {
        sub_type: ButtonSubType,
        /// Zero-based position of the button in the approved template, as a
        /// string (Meta's schema).
        index: String,
        parameters: Vec<ButtonParameter>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonSubType {
    QuickReply,
    Url,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateParameter {
    Text {
        text: String,
    },
    /// Meta's `amount_1000` is a 32-bit integer, which overflows above about
    /// Rp2.1 million: WA SMILE sends money as pre-formatted text instead.
    Currency {
        currency: CurrencyParameter,
    },
    DateTime {
        date_time: DateTimeParameter,
    },
}

impl TemplateParameter {
    pub fn text(text: impl Into<String>) -> Self {
        TemplateParameter::Text { text: text.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrencyParameter {
    pub fallback_value: String,
    pub code: String,
    pub amount_1000: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateTimeParameter {
    pub fallback_value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ButtonParameter {
    /// Comes back as `button.payload` when the quick reply is tapped.
    Payload { payload: String },
    /// The dynamic suffix of a URL button.
    Text { text: String },
}

/// An interactive message with reply buttons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type")]
    pub kind: InteractiveKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<InteractiveHeader>,
    pub body: InteractiveText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<InteractiveText>,
    pub action: InteractiveAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractiveKind {
    Button,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InteractiveHeader {
    Text { text: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractiveText {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractiveAction {
    pub buttons: Vec<InteractiveButton>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InteractiveButton {
    Reply { reply: ReplyButton },
}

/// A reply button: `id` comes back as `interactive.button_reply.id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

impl ReplyButton {
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
        }
    }
}

impl Interactive {
    /// Reply buttons under a body text; validated when sent.
    pub fn reply_buttons(body: impl Into<String>, buttons: Vec<ReplyButton>) -> Self {
        Self {
            kind: InteractiveKind::Button,
            header: None,
            body: InteractiveText { text: body.into() },
            footer: None,
            action: InteractiveAction {
                buttons: buttons
                    .into_iter()
                    .map(|reply| InteractiveButton::Reply { reply })
                    .collect(),
            },
        }
    }

    pub fn with_header(mut self, text: impl Into<String>) -> Self {
        self.header = Some(InteractiveHeader::Text { text: text.into() });
        self
    }

    pub fn with_footer(mut self, text: impl Into<String>) -> Self {
        self.footer = Some(InteractiveText { text: text.into() });
        self
    }

    pub fn validate(&self) -> Result<(), String> {
        let body = self.body.text.chars().count();
        if self.body.text.trim().is_empty() {
            return Err("interactive body is empty".into());
        }
        if body > MAX_INTERACTIVE_BODY_CHARS {
            return Err(format!(
                "interactive body has {body} characters; at most {MAX_INTERACTIVE_BODY_CHARS}"
            ));
        }
        let header = self
            .header
            .as_ref()
            .map(|InteractiveHeader::Text { text }| text);
        for (what, text) in [
            ("header", header),
            ("footer", self.footer.as_ref().map(|f| &f.text)),
        ] {
            if let Some(t) = text {
                let n = t.chars().count();
                if n > MAX_HEADER_FOOTER_CHARS {
                    return Err(format!(
                        "interactive {what} has {n} characters; at most {MAX_HEADER_FOOTER_CHARS}"
                    ));
                }
            }
        }
        let buttons = &self.action.buttons;
        if buttons.is_empty() || buttons.len() > MAX_REPLY_BUTTONS {
            return Err(format!(
                "interactive messages take 1 to {MAX_REPLY_BUTTONS} reply buttons, got {}",
                buttons.len()
            ));
        }
        let mut ids = std::collections::HashSet::new();
        let mut titles = std::collections::HashSet::new();
        for InteractiveButton::Reply { reply } in buttons {
            let title = reply.title.chars().count();
            let id = reply.id.chars().count();
            if reply.title.trim().is_empty() || title > MAX_BUTTON_TITLE_CHARS {
                return Err(format!(
                    "button title `{}` has {title} characters; 1 to {MAX_BUTTON_TITLE_CHARS} allowed",
                    reply.title
                ));
            }
            if reply.id.is_empty() || id > MAX_BUTTON_ID_CHARS {
                return Err(format!(
                    "button id has {id} characters; 1 to {MAX_BUTTON_ID_CHARS} allowed"
                ));
            }
            if !ids.insert(reply.id.as_str()) || !titles.insert(reply.title.as_str()) {
                return Err(format!(
                    "button `{}` repeats an id or title; each must be unique",
                    reply.title
                ));
            }
        }
        Ok(())
    }
}

/// The JSON body of `POST /{phone_number_id}/messages`.
#[derive(Debug, Serialize)]
pub(crate) struct SendRequest<'a> {
    pub messaging_product: &'static str,
    pub recipient_type: &'static str,
    /// `+628…`: Meta accepts digits too; the `+` states the number is
    /// international.
    pub to: String,
    #[serde(flatten)]
    pub content: &'a MessageContent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ReplyContext<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ReplyContext<'a> {
    pub message_id: &'a str,
}

impl<'a> SendRequest<'a> {
    pub fn new(msg: &'a OutgoingMessage) -> Self {
        Self {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to: format!("+{}", msg.to.as_str()),
            content: &msg.content,
            context: msg
                .reply_to
                .as_deref()
                .map(|message_id| ReplyContext { message_id }),
            biz_opaque_callback_data: msg.callback_data.as_deref(),
        }
    }
}

/// HTTP 200 from the messages endpoint: accepted, not yet delivered.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SendResponse {
    #[serde(default)]
    pub contacts: Vec<ResponseContact>,
    #[serde(default)]
    pub messages: Vec<ResponseMessage>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResponseContact {
    #[serde(default)]
    pub wa_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResponseMessage {
    pub id: String,
    #[serde(default)]
    pub message_status: Option<String>,
}

/// What Meta accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    /// The `wamid…` that status webhooks will name.
    pub message_id: String,
    /// The recipient as Meta resolved it; may differ from what was sent.
    pub wa_id: Option<String>,
    /// Set for paced templates: `accepted`, `held_for_quality_assessment`,
    /// `paused`.
    pub message_status: Option<String>,
}
