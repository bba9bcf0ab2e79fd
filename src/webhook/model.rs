//! Serde models of the Cloud API webhook body, as Meta documents it.
//!
//! Tolerant by design: unknown fields are ignored, strings may arrive as
//! numbers, empty strings (`from`/`wa_id` of username-only users) count as
//! absent, and one malformed item becomes [`Item::Invalid`] instead of
//! failing the whole batch of up to 1,000 updates.

use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::Value as Json;

/// A list element that parsed, or did not. The reason never quotes the
/// payload, which holds personal data.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<T> {
    Parsed(T),
    Invalid(String),
}

/// The whole POST body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Payload {
    #[serde(default, deserialize_with = "opt_string")]
    pub object: Option<String>,
    #[serde(default, deserialize_with = "items")]
    pub entry: Vec<Item<Entry>>,
}

/// One WhatsApp Business Account's updates.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Entry {
    #[serde(default, deserialize_with = "opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "items")]
    pub changes: Vec<Item<Change>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Change {
    #[serde(default, deserialize_with = "opt_string")]
    pub field: Option<String>,
    #[serde(default, deserialize_with = "opt_value")]
    pub value: Option<Item<ChangeValue>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ChangeValue {
    #[serde(default, deserialize_with = "opt_string")]
    pub messaging_product: Option<String>,
    #[serde(default, deserialize_with = "opt_value")]
    pub metadata: Option<Item<Metadata>>,
    #[serde(default, deserialize_with = "items")]
    pub contacts: Vec<Item<Contact>>,
    #[serde(default, deserialize_with = "items")]
    pub messages: Vec<Item<Message>>,
    #[serde(default, deserialize_with = "items")]
    pub statuses: Vec<Item<Status>>,
    #[serde(default, deserialize_with = "items")]
    pub errors: Vec<Item<ApiError>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Metadata {
    #[serde(default, deserialize_with = "opt_string")]
    pub display_phone_number: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub phone_number_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Contact {
    #[serde(default, deserialize_with = "opt_string")]
    pub wa_id: Option<String>,
    /// Business-scoped id of a user known by username (2026 rollout).
    #[serde(default, deserialize_with = "opt_string")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub profile: Option<Profile>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Profile {
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
}

/// An inbound message. Each type's object sits under a key named like the
/// type; all are optional so an unknown type still parses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Message {
    #[serde(default, deserialize_with = "opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub from: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub from_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub timestamp: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "opt_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub context: Option<Context>,
    #[serde(default, deserialize_with = "lenient")]
    pub text: Option<Text>,
    #[serde(default, deserialize_with = "lenient")]
    pub button: Option<Button>,
    #[serde(default, deserialize_with = "lenient")]
    pub interactive: Option<Interactive>,
    #[serde(default, deserialize_with = "lenient")]
    pub image: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    pub document: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    pub audio: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    pub video: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    pub sticker: Option<Media>,
    #[serde(default, deserialize_with = "lenient")]
    pub location: Option<Location>,
    #[serde(default, deserialize_with = "lenient")]
    pub reaction: Option<Reaction>,
    #[serde(default, deserialize_with = "lenient")]
    pub system: Option<System>,
    #[serde(default, deserialize_with = "items")]
    pub errors: Vec<Item<ApiError>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Context {
    #[serde(default, deserialize_with = "opt_string")]
    pub from: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Text {
    #[serde(default, deserialize_with = "opt_string")]
    pub body: Option<String>,
}

/// A template quick-reply tap.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Button {
    #[serde(default, deserialize_with = "opt_string")]
    pub payload: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type", default, deserialize_with = "opt_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub button_reply: Option<Reply>,
    #[serde(default, deserialize_with = "lenient")]
    pub list_reply: Option<Reply>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Reply {
    #[serde(default, deserialize_with = "opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub description: Option<String>,
}

/// Image, document, audio, video or sticker: a media id to download later.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Media {
    #[serde(default, deserialize_with = "opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub mime_type: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub sha256: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub caption: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub filename: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Location {
    #[serde(default, deserialize_with = "opt_f64")]
    pub latitude: Option<f64>,
    #[serde(default, deserialize_with = "opt_f64")]
    pub longitude: Option<f64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Reaction {
    #[serde(default, deserialize_with = "opt_string")]
    pub message_id: Option<String>,
    /// Absent when the user removed their reaction.
    #[serde(default, deserialize_with = "opt_string")]
    pub emoji: Option<String>,
}

/// "User changed number" and similar notices.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct System {
    #[serde(default, deserialize_with = "opt_string")]
    pub body: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "opt_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub wa_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub new_wa_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Status {
    #[serde(default, deserialize_with = "opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub timestamp: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub recipient_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub recipient_user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(default, deserialize_with = "items")]
    pub errors: Vec<Item<ApiError>>,
}

/// `errors[]` in statuses, unsupported messages and change values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    #[serde(default, deserialize_with = "opt_i64")]
    pub code: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorData {
    #[serde(default, deserialize_with = "opt_string")]
    pub details: Option<String>,
}

/// A string, or a number written as one; empty and other shapes are absent.
fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::String(s) if !s.is_empty() => Some(s),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    })
}

/// An optional object: a wrong shape is treated as absent.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::Null => None,
        v => serde_json::from_value(v).ok(),
    })
}

/// An optional object whose wrong shape must be reported, not ignored.
fn opt_value<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<Item<T>>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::Null => None,
        v => Some(item(v)),
    })
}

fn items<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<Item<T>>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::Array(values) => values.into_iter().map(item).collect(),
        Json::Null => Vec::new(),
        _ => vec![Item::Invalid("expected a list".to_owned())],
    })
}

fn item<T: DeserializeOwned>(v: Json) -> Item<T> {
    if !v.is_object() {
        return Item::Invalid("expected an object".to_owned());
    }
    match serde_json::from_value(v) {
        Ok(t) => Item::Parsed(t),
        Err(_) => Item::Invalid("object does not match the documented shape".to_owned()),
    }
}
