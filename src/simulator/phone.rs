//! The employers' phones: each chat as the employer sees it, and what the
//! employer does on it (type, tap, send a photo, change number, block),
//! sent to the app as the signed webhooks Meta would post.

use super::{status_webhook_at, Inner};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Who holds a phone: what the chat list shows, and the zone its clock is in.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub wa_id: String,
    /// The WhatsApp profile name (the PIC's).
    pub name: String,
    pub company: String,
    pub npp: Option<String>,
    #[serde(serialize_with = "tz_name")]
    pub timezone: chrono_tz::Tz,
}

fn tz_name<S: serde::Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// A quick-reply button on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TapButton {
    pub payload: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatItemKind {
    Text {
        body: String,
    },
    /// An approved template, with its body as the employer reads it.
    Template {
        name: String,
        body: String,
        buttons: Vec<TapButton>,
    },
    Interactive {
        body: String,
        buttons: Vec<TapButton>,
    },
    Image {
        media_id: String,
        caption: Option<String>,
    },
    /// The employer tapped a button.
    Tap {
        title: String,
        payload: String,
    },
    /// A notice in the chat (number changed, business blocked).
    System {
        body: String,
    },
}

/// One bubble.
#[derive(Debug, Clone, Serialize)]
pub struct ChatItem {
    pub wamid: String,
    pub from_business: bool,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: ChatItemKind,
    /// Ours: `accepted`, `sent`, `delivered`, `read`, `failed`. The
    /// employer's: `sent` once the app answered 200, `failed` otherwise.
    pub status: String,
    /// Meta's code when failed.
    pub error: Option<i64>,
    #[serde(skip)]
    callback: Option<String>,
}

/// A row of the chat list.
#[derive(Debug, Clone, Serialize)]
pub struct ChatSummary {
    pub wa_id: String,
    pub contact: Option<Contact>,
    pub last: Option<ChatItem>,
    /// Messages from the business the employer has not read yet.
    pub unread: usize,
    pub blocked: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("the simulator has no webhook URL to post to")]
    NoWebhook,
    #[error("the app did not answer the webhook: {0}")]
    Unreachable(String),
    #[error("the app answered the webhook with HTTP {0}")]
    Refused(u16),
    #[error("no message in this chat has a button `{0}`")]
    NoButton(String),
    #[error("`{0}` is not a WhatsApp number (628…)")]
    BadNumber(String),
    #[error("the text is empty")]
    Empty,
}

#[derive(Default)]
struct State {
    chats: HashMap<String, Vec<ChatItem>>,
    contacts: HashMap<String, Contact>,
    blocked: HashSet<String>,
}

#[derive(Default)]
pub(super) struct Phones {
    state: Mutex<State>,
    seq: AtomicU64,
    pending: AtomicUsize,
}

const RANK: [&str; 4] = ["accepted", "sent", "delivered", "read"];

fn rank(s: &str) -> usize {
    RANK.iter().position(|r| *r == s).unwrap_or(usize::MAX)
}

impl Phones {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("phone lock")
    }

    pub(super) fn is_blocked(&self, wa_id: &str) -> bool {
        self.lock().blocked.contains(wa_id)
    }

    pub(super) fn pending_statuses(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// A message the business sent, as it lands in the chat.
    pub(super) fn outbound(&self, wa_id: &str, wamid: &str, body: &Value, at: DateTime<Utc>) {
        let item = ChatItem {
            wamid: wamid.to_owned(),
            from_business: true,
            at,
            kind: super::render::outbound(body),
            status: "accepted".into(),
            error: None,
            callback: body["biz_opaque_callback_data"].as_str().map(str::to_owned),
        };
        self.lock()
            .chats
            .entry(wa_id.to_owned())
            .or_default()
            .push(item);
    }

    /// Moves a message of ours forward (never back; `failed` is final).
    /// Returns whether it changed.
    fn set_status(&self, wa_id: &str, wamid: &str, status: &str, error: Option<i64>) -> bool {
        let mut st = self.lock();
        let Some(item) = st
            .chats
            .get_mut(wa_id)
            .and_then(|c| c.iter_mut().find(|i| i.wamid == wamid))
        else {
            return false;
        };
        let forward =
            item.status != "failed" && (status == "failed" || rank(status) > rank(&item.status));
        if forward {
            item.status = status.to_owned();
            item.error = error;
        }
        forward
    }
}

/// Posts `sent`, `delivered` (and `read` when `read`) for an accepted
/// message after the configured delays, or `failed` with `fail`'s code.
pub(super) fn schedule_statuses(
    sim: Arc<Inner>,
    wamid: String,
    wa_id: String,
    callback: Option<String>,
    fail: Option<i64>,
    read: bool,
) {
    sim.phone.pending.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let [to_sent, to_delivered, to_read] = sim.opts.status_delays;
        let steps: Vec<(&str, std::time::Duration)> = match fail {
            Some(_) => vec![("failed", to_sent)],
            None if read => vec![
                ("sent", to_sent),
                ("delivered", to_delivered),
                ("read", to_read),
            ],
            None => vec![("sent", to_sent), ("delivered", to_delivered)],
        };
        for (status, delay) in steps {
            tokio::time::sleep(delay).await;
            post_status(&sim, &wamid, &wa_id, status, callback.as_deref(), fail).await;
        }
        sim.phone.pending.fetch_sub(1, Ordering::SeqCst);
    });
}

async fn post_status(
    sim: &Inner,
    wamid: &str,
    wa_id: &str,
    status: &str,
    callback: Option<&str>,
    error: Option<i64>,
) {
    if !sim.phone.set_status(wa_id, wamid, status, error) {
        return;
    }
    let body = status_webhook_at(
        wamid,
        status,
        wa_id,
        callback,
        error.filter(|_| status == "failed"),
        crate::time::now().timestamp(),
    );
    if let Err(e) = sim.post_webhook(body).await {
        tracing::warn!(error = %e, status, "simulator could not post a status webhook");
    }
}

/// The employers' side of the simulator; cheap to clone.
#[derive(Clone)]
pub struct Phone {
    sim: Arc<Inner>,
}

impl Phone {
    pub(super) fn new(sim: Arc<Inner>) -> Self {
        Phone { sim }
    }

    fn phones(&self) -> &Phones {
        &self.sim.phone
    }

    /// Names the phones' owners (the chat list shows them).
    pub fn add_contacts(&self, contacts: impl IntoIterator<Item = Contact>) {
        let mut st = self.phones().lock();
        for c in contacts {
            st.contacts.insert(c.wa_id.clone(), c);
        }
    }

    pub fn contact(&self, wa_id: &str) -> Option<Contact> {
        self.phones().lock().contacts.get(wa_id).cloned()
    }

    /// Every chat with a message in it, the latest first.
    pub fn chats(&self) -> Vec<ChatSummary> {
        let st = self.phones().lock();
        let mut out: Vec<ChatSummary> = st
            .chats
            .iter()
            .map(|(wa_id, items)| ChatSummary {
                wa_id: wa_id.clone(),
                contact: st.contacts.get(wa_id).cloned(),
                last: items.last().cloned(),
                unread: items
                    .iter()
                    .filter(|i| {
                        i.from_business && matches!(i.status.as_str(), "sent" | "delivered")
                    })
                    .count(),
                blocked: st.blocked.contains(wa_id),
            })
            .collect();
        out.sort_by(|a, b| {
            let at = |s: &ChatSummary| s.last.as_ref().map(|l| l.at);
            at(b).cmp(&at(a)).then_with(|| a.wa_id.cmp(&b.wa_id))
        });
        out
    }

    /// One chat, oldest first (empty for a number never written to).
    pub fn chat(&self, wa_id: &str) -> Vec<ChatItem> {
        self.phones()
            .lock()
            .chats
            .get(wa_id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn is_blocked(&self, wa_id: &str) -> bool {
        self.phones().is_blocked(wa_id)
    }

    /// Blocks (or unblocks) the business on this phone: from now on every
    /// send to it is accepted and then fails with Meta's 131026.
    pub fn set_blocked(&self, wa_id: &str, blocked: bool) {
        let mut st = self.phones().lock();
        if blocked {
            st.blocked.insert(wa_id.to_owned());
        } else {
            st.blocked.remove(wa_id);
        }
        let body = if blocked {
            "Anda memblokir akun bisnis ini."
        } else {
            "Anda membuka blokir akun bisnis ini."
        };
        let item = self.local_notice(body);
        st.chats.entry(wa_id.to_owned()).or_default().push(item);
    }

    fn local_notice(&self, body: &str) -> ChatItem {
        ChatItem {
            wamid: format!(
                "local.{}",
                self.phones().seq.fetch_add(1, Ordering::Relaxed) + 1
            ),
            from_business: false,
            at: crate::time::now(),
            kind: ChatItemKind::System { body: body.into() },
            status: "sent".into(),
            error: None,
            callback: None,
        }
    }

    /// The employer opened the chat: what was delivered is now read.
    pub async fn open_chat(&self, wa_id: &str) {
        let unread: Vec<(String, Option<String>)> = self
            .chat(wa_id)
            .into_iter()
            .filter(|i| i.from_business && i.status == "delivered")
            .map(|i| (i.wamid, i.callback))
            .collect();
        for (wamid, callback) in unread {
            post_status(&self.sim, &wamid, wa_id, "read", callback.as_deref(), None).await;
        }
    }

    /// The employer types `text`.
    pub async fn reply(&self, wa_id: &str, text: &str) -> Result<String, PhoneError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(PhoneError::Empty);
        }
        self.send(
            wa_id,
            json!({"type": "text", "text": {"body": text}}),
            ChatItemKind::Text { body: text.into() },
        )
        .await
    }

    /// The employer taps the button with `payload` on the latest message
    /// that has it (`PROMISE` also matches `PROMISE:42`): a template's quick
    /// reply arrives as `button`, an interactive message's as `button_reply`.
    pub async fn tap(&self, wa_id: &str, payload: &str) -> Result<String, PhoneError> {
        let found = self.chat(wa_id).into_iter().rev().find_map(|i| {
            let (buttons, template) = match &i.kind {
                ChatItemKind::Template { buttons, .. } => (buttons.clone(), true),
                ChatItemKind::Interactive { buttons, .. } => (buttons.clone(), false),
                _ => return None,
            };
            buttons
                .into_iter()
                .find(|b| b.payload == payload || b.payload.split(':').next() == Some(payload))
                .map(|b| (i.wamid.clone(), b, template))
        });
        let Some((context, button, template)) = found else {
            return Err(PhoneError::NoButton(payload.to_owned()));
        };
        let message = if template {
            json!({"type": "button", "context": {"from": "6281510000175", "id": context},
                   "button": {"payload": button.payload, "text": button.title}})
        } else {
            json!({"type": "interactive", "context": {"from": "6281510000175", "id": context},
                   "interactive": {"type": "button_reply",
                                   "button_reply": {"id": button.payload, "title": button.title}}})
        };
        self.send(
            wa_id,
            message,
            ChatItemKind::Tap {
                title: button.title,
                payload: button.payload,
            },
        )
        .await
    }

    /// The employer sends a photo (a transfer receipt) with a caption; its
    /// media id downloads from the simulator like Meta's.
    pub async fn send_image(
        &self,
        wa_id: &str,
        caption: Option<&str>,
    ) -> Result<String, PhoneError> {
        let bytes = super::media::receipt_png();
        let media_id = self.sim.media.put("image/png", bytes);
        let sha = self
            .sim
            .media
            .get(&media_id)
            .map(|m| m.sha256)
            .unwrap_or_default();
        let caption = caption.map(str::trim).filter(|c| !c.is_empty());
        let mut image = json!({"mime_type": "image/png", "sha256": sha, "id": media_id});
        if let Some(c) = caption {
            image["caption"] = json!(c);
        }
        self.send(
            wa_id,
            json!({"type": "image", "image": image}),
            ChatItemKind::Image {
                media_id,
                caption: caption.map(str::to_owned),
            },
        )
        .await
    }

    /// A file the simulator holds (an image an employer sent).
    pub fn media(&self, media_id: &str) -> Option<(String, Vec<u8>)> {
        self.sim
            .media
            .get(media_id)
            .map(|m| (m.mime, m.bytes.to_vec()))
    }

    /// The employer moves WhatsApp to `new_wa_id`: Meta's `system`
    /// message from the old number; the chat continues on the new one.
    pub async fn change_number(&self, wa_id: &str, new_wa_id: &str) -> Result<String, PhoneError> {
        let new = crate::domain::WaId::parse(new_wa_id.trim())
            .map_err(|_| PhoneError::BadNumber(new_wa_id.to_owned()))?;
        let new = new.as_str().to_owned();
        let body = format!("Nomor pengguna berubah dari {wa_id} ke {new}");
        let wamid = self
            .send(
                wa_id,
                json!({"type": "system", "system": {"body": body, "new_wa_id": new,
                                                      "type": "user_changed_number"}}),
                ChatItemKind::System { body: body.clone() },
            )
            .await?;
        let mut st = self.phones().lock();
        if let Some(items) = st.chats.remove(wa_id) {
            st.chats.entry(new.clone()).or_default().extend(items);
        }
        if let Some(mut c) = st.contacts.remove(wa_id) {
            c.wa_id = new.clone();
            st.contacts.insert(new.clone(), c);
        }
        if st.blocked.remove(wa_id) {
            st.blocked.insert(new);
        }
        Ok(wamid)
    }

    /// Puts the employer's message in the chat and posts it to the app.
    async fn send(
        &self,
        wa_id: &str,
        mut message: Value,
        kind: ChatItemKind,
    ) -> Result<String, PhoneError> {
        let n = self.phones().seq.fetch_add(1, Ordering::Relaxed) + 1;
        let wamid = format!("wamid.SIMIN{n:012}");
        let at = crate::time::now();
        message["from"] = json!(wa_id);
        message["id"] = json!(wamid);
        message["timestamp"] = json!(at.timestamp().to_string());
        let name = self
            .contact(wa_id)
            .map(|c| c.name)
            .unwrap_or_else(|| "Pengguna WhatsApp".into());
        let body = self.sim.envelope(json!({
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [message],
        }));
        self.phones()
            .lock()
            .chats
            .entry(wa_id.to_owned())
            .or_default()
            .push(ChatItem {
                wamid: wamid.clone(),
                from_business: false,
                at,
                kind,
                status: "accepted".into(),
                error: None,
                callback: None,
            });
        let outcome = self.sim.post_webhook(body).await;
        let status = match &outcome {
            Ok(s) if s.is_success() => "sent",
            _ => "failed",
        };
        if let Some(item) = self
            .phones()
            .lock()
            .chats
            .get_mut(wa_id)
            .and_then(|c| c.iter_mut().find(|i| i.wamid == wamid))
        {
            item.status = status.into();
        }
        match outcome? {
            s if s.is_success() => Ok(wamid),
            s => Err(PhoneError::Refused(s.as_u16())),
        }
    }
}
