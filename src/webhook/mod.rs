//! WhatsApp Cloud API webhooks, parsing only: signature verification, the
//! tolerant body models, and the flattening of a batch into events. The HTTP
//! handler verifies, parses, then stores each event before answering 200.

pub mod model;
mod signature;

pub use model::{ApiError, Item, Payload};
pub use signature::{sign, verify_signature, SignatureError};

use crate::outbox::MessageStatus;
use chrono::{DateTime, Utc};

/// A body that is not a webhook at all (the handler answers 400).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("webhook body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("webhook body is JSON but not an object")]
    NotAnObject,
    /// More items than Meta ever batches: not a delivery to work through.
    #[error("webhook body carries {0} updates, more than {MAX_UPDATES} in one call")]
    TooManyUpdates(usize),
}

/// Meta batches at most 1,000 updates in one call; a body with more is
/// refused before any of it is stored.
pub const MAX_UPDATES: usize = 1_000;

/// Parses the raw (already verified) body.
pub fn parse(raw_body: &[u8]) -> Result<Payload, PayloadError> {
    let value: serde_json::Value =
        serde_json::from_slice(raw_body).map_err(PayloadError::NotJson)?;
    parse_value(value)
}

/// Parses an already decoded JSON value.
pub fn parse_value(value: serde_json::Value) -> Result<Payload, PayloadError> {
    if !value.is_object() {
        return Err(PayloadError::NotAnObject);
    }
    // Every field is lenient, so an object always fits; the error arm is
    // kept for safety rather than expected.
    serde_json::from_value(value).map_err(PayloadError::NotJson)
}

/// `parse` then `events`, refusing a body with more than [`MAX_UPDATES`].
/// The entries are counted on the raw JSON first, so a million of them
/// cost one scan, not a million typed items.
pub fn parse_events(raw_body: &[u8]) -> Result<Vec<WebhookEvent>, PayloadError> {
    let value: serde_json::Value =
        serde_json::from_slice(raw_body).map_err(PayloadError::NotJson)?;
    let entries = value
        .get("entry")
        .and_then(|e| e.as_array())
        .map_or(0, Vec::len);
    if entries > MAX_UPDATES {
        return Err(PayloadError::TooManyUpdates(entries));
    }
    let events = events(&parse_value(value)?);
    if events.len() > MAX_UPDATES {
        return Err(PayloadError::TooManyUpdates(events.len()));
    }
    Ok(events)
}

/// Identifies one verified body, so what it carries is stored once however
/// often it is delivered.
pub fn body_digest(raw_body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(raw_body))
}

/// One thing that happened, flattened out of `entry[].changes[].value`.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    InboundMessage(InboundMessage),
    Status(StatusEvent),
    /// A change-level error Meta reports (not tied to one message).
    Error {
        phone_number_id: Option<String>,
        error: ApiError,
    },
    /// A change whose `field` is not `messages` (account updates, templates…).
    OtherField {
        field: Option<String>,
    },
    /// An item that could not be understood; `what` names the list it was in.
    /// Recorded so nothing disappears silently.
    Invalid {
        what: &'static str,
        reason: String,
    },
}

/// A message from a user.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub wamid: String,
    /// The sender's WhatsApp id; `None` for users known only by `user_id`.
    pub from: Option<String>,
    pub user_id: Option<String>,
    /// The WhatsApp profile name, when Meta sends one.
    pub profile_name: Option<String>,
    pub timestamp: DateTime<Utc>,
    /// The business number that received it.
    pub phone_number_id: Option<String>,
    /// The message of ours being answered (`context.id`).
    pub context_id: Option<String>,
    pub kind: MessageKind,
}

impl InboundMessage {
    /// Text to classify: the body, a quick reply's label, a media caption.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            MessageKind::Text { body } => Some(body),
            MessageKind::Button { text, .. } => text.as_deref(),
            MessageKind::ButtonReply { title, .. } | MessageKind::ListReply { title, .. } => {
                title.as_deref()
            }
            MessageKind::Image(m) | MessageKind::Document(m) | MessageKind::Video(m) => {
                m.caption.as_deref()
            }
            _ => None,
        }
    }

    /// A button's payload id (`PAID:42`), for `conversation::intent_for_button`.
    pub fn payload(&self) -> Option<&str> {
        match &self.kind {
            MessageKind::Button { payload, .. } => payload.as_deref(),
            MessageKind::ButtonReply { id, .. } | MessageKind::ListReply { id, .. } => {
                id.as_deref()
            }
            _ => None,
        }
    }
}

/// What an inbound message carries. Unknown types land in `Other`, never an error.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageKind {
    Text {
        body: String,
    },
    /// A template quick-reply tap.
    Button {
        payload: Option<String>,
        text: Option<String>,
    },
    ButtonReply {
        id: Option<String>,
        title: Option<String>,
    },
    ListReply {
        id: Option<String>,
        title: Option<String>,
        description: Option<String>,
    },
    Image(model::Media),
    Document(model::Media),
    Audio(model::Media),
    Video(model::Media),
    Sticker(model::Media),
    Location(model::Location),
    Reaction {
        message_id: Option<String>,
        emoji: Option<String>,
    },
    /// e.g. the user changed number (`new_wa_id`).
    System(model::System),
    Unsupported {
        errors: Vec<ApiError>,
    },
    Other {
        type_name: Option<String>,
    },
}

/// A status webhook for a message we sent, as parsed: the edge's view,
/// with what Meta sent kept raw for the record. Settlement reads it back as
/// an [`crate::outbox::StatusUpdate`].
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub wamid: String,
    /// None: a status name this code does not know (kept, not settled).
    pub status: Option<MessageStatus>,
    /// The status string as received, kept for statuses this code does not know.
    pub raw_status: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub recipient: Option<String>,
    pub recipient_user_id: Option<String>,
    /// `biz_opaque_callback_data`: our outbox id.
    pub callback_data: Option<String>,
    /// The first error of a `failed` status; see `errors` for all of them.
    pub error: Option<ApiError>,
    pub errors: Vec<ApiError>,
}

/// Flattens every entry and change of a (possibly batched) payload, in order.
pub fn events(payload: &Payload) -> Vec<WebhookEvent> {
    let mut out = Vec::new();
    for entry in &payload.entry {
        let entry = match entry {
            Item::Parsed(e) => e,
            Item::Invalid(reason) => {
                out.push(invalid("entry", reason));
                continue;
            }
        };
        for change in &entry.changes {
            let change = match change {
                Item::Parsed(c) => c,
                Item::Invalid(reason) => {
                    out.push(invalid("change", reason));
                    continue;
                }
            };
            if change.field.as_deref().is_some_and(|f| f != "messages") {
                out.push(WebhookEvent::OtherField {
                    field: change.field.clone(),
                });
                continue;
            }
            match &change.value {
                Some(Item::Parsed(value)) => flatten_value(value, &mut out),
                Some(Item::Invalid(reason)) => out.push(invalid("value", reason)),
                None => out.push(invalid("value", "change without a value")),
            }
        }
    }
    out
}

fn invalid(what: &'static str, reason: &str) -> WebhookEvent {
    WebhookEvent::Invalid {
        what,
        reason: reason.to_owned(),
    }
}

fn parsed_errors(errors: &[Item<ApiError>]) -> Vec<ApiError> {
    errors
        .iter()
        .filter_map(|e| match e {
            Item::Parsed(e) => Some(e.clone()),
            Item::Invalid(_) => None,
        })
        .collect()
}

/// Unix seconds as Meta writes them (a string), to an instant.
fn instant(ts: Option<&str>) -> Option<DateTime<Utc>> {
    let secs: i64 = ts?.trim().parse().ok()?;
    DateTime::from_timestamp(secs, 0)
}

fn flatten_value(value: &model::ChangeValue, out: &mut Vec<WebhookEvent>) {
    let phone_number_id = match &value.metadata {
        Some(Item::Parsed(m)) => m.phone_number_id.clone(),
        _ => None,
    };
    let contacts: Vec<&model::Contact> = value
        .contacts
        .iter()
        .filter_map(|c| match c {
            Item::Parsed(c) => Some(c),
            Item::Invalid(_) => None,
        })
        .collect();

    for message in &value.messages {
        match message {
            Item::Parsed(m) => out.push(inbound(m, &contacts, phone_number_id.as_ref())),
            Item::Invalid(reason) => out.push(invalid("message", reason)),
        }
    }
    for status in &value.statuses {
        match status {
            Item::Parsed(s) => out.push(status_update(s)),
            Item::Invalid(reason) => out.push(invalid("status", reason)),
        }
    }
    for error in &value.errors {
        match error {
            Item::Parsed(e) => out.push(WebhookEvent::Error {
                phone_number_id: phone_number_id.clone(),
                error: e.clone(),
            }),
            Item::Invalid(reason) => out.push(invalid("error", reason)),
        }
    }
}

fn inbound(
    m: &model::Message,
    contacts: &[&model::Contact],
    phone_number_id: Option<&String>,
) -> WebhookEvent {
    let Some(wamid) = m.id.clone() else {
        return invalid("message", "message without an id");
    };
    let Some(timestamp) = instant(m.timestamp.as_deref()) else {
        return invalid("message", "message without a valid timestamp");
    };
    // The sender's contact: the one with the same wa_id, else the only one.
    let contact = contacts
        .iter()
        .find(|c| c.wa_id.is_some() && c.wa_id == m.from)
        .or_else(|| (contacts.len() == 1).then(|| &contacts[0]));
    let from = m
        .from
        .clone()
        .or_else(|| contact.and_then(|c| c.wa_id.clone()));
    let user_id = m
        .user_id
        .clone()
        .or_else(|| m.from_user_id.clone())
        .or_else(|| contact.and_then(|c| c.user_id.clone()));
    let profile_name = contact.and_then(|c| c.profile.as_ref()?.name.clone());
    WebhookEvent::InboundMessage(InboundMessage {
        wamid,
        from,
        user_id,
        profile_name,
        timestamp,
        phone_number_id: phone_number_id.cloned(),
        context_id: m.context.as_ref().and_then(|c| c.id.clone()),
        kind: kind(m),
    })
}

fn kind(m: &model::Message) -> MessageKind {
    let media = |x: &Option<model::Media>| x.clone().unwrap_or_default();
    match m.kind.as_deref() {
        Some("text") => MessageKind::Text {
            body: m
                .text
                .as_ref()
                .and_then(|t| t.body.clone())
                .unwrap_or_default(),
        },
        Some("button") => MessageKind::Button {
            payload: m.button.as_ref().and_then(|b| b.payload.clone()),
            text: m.button.as_ref().and_then(|b| b.text.clone()),
        },
        Some("interactive") => {
            let i = m.interactive.clone().unwrap_or_default();
            match (i.kind.as_deref(), i.button_reply, i.list_reply) {
                (Some("list_reply"), _, Some(r)) | (_, None, Some(r)) => MessageKind::ListReply {
                    id: r.id,
                    title: r.title,
                    description: r.description,
                },
                (_, Some(r), _) => MessageKind::ButtonReply {
                    id: r.id,
                    title: r.title,
                },
                (kind, None, None) => MessageKind::Other {
                    type_name: Some(format!("interactive/{}", kind.unwrap_or("unknown"))),
                },
            }
        }
        Some("image") => MessageKind::Image(media(&m.image)),
        Some("document") => MessageKind::Document(media(&m.document)),
        Some("audio") | Some("voice") => MessageKind::Audio(media(&m.audio)),
        Some("video") => MessageKind::Video(media(&m.video)),
        Some("sticker") => MessageKind::Sticker(media(&m.sticker)),
        Some("location") => MessageKind::Location(m.location.clone().unwrap_or_default()),
        Some("reaction") => MessageKind::Reaction {
            message_id: m.reaction.as_ref().and_then(|r| r.message_id.clone()),
            emoji: m.reaction.as_ref().and_then(|r| r.emoji.clone()),
        },
        Some("system") => MessageKind::System(m.system.clone().unwrap_or_default()),
        Some("unsupported") | Some("unknown") => MessageKind::Unsupported {
            errors: parsed_errors(&m.errors),
        },
        other => MessageKind::Other {
            type_name: other.map(str::to_owned),
        },
    }
}

fn status_update(s: &model::Status) -> WebhookEvent {
    let Some(wamid) = s.id.clone() else {
        return invalid("status", "status without an id");
    };
    let Some(timestamp) = instant(s.timestamp.as_deref()) else {
        return invalid("status", "status without a valid timestamp");
    };
    let errors = parsed_errors(&s.errors);
    WebhookEvent::Status(StatusEvent {
        wamid,
        status: s.status.as_deref().and_then(MessageStatus::parse),
        raw_status: s.status.clone(),
        timestamp,
        recipient: s.recipient_id.clone(),
        recipient_user_id: s.recipient_user_id.clone(),
        callback_data: s.biz_opaque_callback_data.clone(),
        error: errors.first().cloned(),
        errors,
    })
}
