use super::error::{MetaErrorEnvelope, SendError};
use super::types::{MessageContent, OutgoingMessage, SendReceipt, SendRequest, SendResponse};
use crate::config::WhatsappConfig;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// Long enough for Meta's slow moments, short enough that a hung request
/// does not hold an outbox lease for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The Cloud API messages endpoint of one business phone number.
#[derive(Clone)]
pub struct WhatsappClient {
    http: reqwest::Client,
    messages_url: String,
    /// `{api_base}/{version}`: media ids are looked up under it.
    graph_url: String,
    token: SecretString,
    timeout: Duration,
}

impl std::fmt::Debug for WhatsappClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsappClient")
            .field("messages_url", &self.messages_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WhatsappClient {
    pub fn new(config: &WhatsappConfig, timeout: Duration) -> Result<Self, SendError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("wa-smile/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Transport(format!("cannot build the HTTP client: {e}")))?;
        let messages_url = format!(
            "{}/{}/{}/messages",
            config.api_base.trim_end_matches('/'),
            config.api_version.trim_matches('/'),
            config.phone_number_id.trim_matches('/'),
        );
        let graph_url = format!(
            "{}/{}",
            config.api_base.trim_end_matches('/'),
            config.api_version.trim_matches('/'),
        );
        Ok(Self {
            http,
            messages_url,
            graph_url,
            token: config.access_token.clone(),
            timeout,
        })
    }

    pub fn from_config(config: &WhatsappConfig) -> Result<Self, SendError> {
        Self::new(config, DEFAULT_TIMEOUT)
    }

    pub fn messages_url(&self) -> &str {
        &self.messages_url
    }

    /// Sends one message. `Ok` means Meta accepted it; delivery is reported
    /// later by status webhooks.
    pub async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, SendError> {
        msg.validate().map_err(SendError::Invalid)?;
        let kind = match &msg.content {
            MessageContent::Template { .. } => "template",
            MessageContent::Text { .. } => "text",
            MessageContent::Interactive { .. } => "interactive",
        };
        let to = msg.to.masked();
        let outbox = msg.callback_data.as_deref().unwrap_or("-");
        let result = self.post(&SendRequest::new(msg)).await;
        match &result {
            Ok(r) => {
                tracing::debug!(kind, to, outbox, wamid = %r.message_id, status = ?r.message_status, "whatsapp message accepted")
            }
            Err(e) => {
                tracing::warn!(kind, to, outbox, reason = %e.reason(), class = ?e.class(), error = %e, "whatsapp send failed")
            }
        }
        result
    }

    async fn post(&self, body: &SendRequest<'_>) -> Result<SendReceipt, SendError> {
        let response = self
            .http
            .post(&self.messages_url)
            .bearer_auth(self.token.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<MetaErrorEnvelope>(&bytes) {
                Ok(env) => SendError::Api {
                    status: status.as_u16(),
                    error: Box::new(env.error),
                    retry_after,
                },
                Err(_) => SendError::Http {
                    status: status.as_u16(),
                    snippet: snippet(&bytes),
                    retry_after,
                },
            });
        }
        // Decided on the body, not the status: an error object is an error.
        if let Ok(env) = serde_json::from_slice::<MetaErrorEnvelope>(&bytes) {
            return Err(SendError::Api {
                status: status.as_u16(),
                error: Box::new(env.error),
                retry_after,
            });
        }
        let parsed: SendResponse = serde_json::from_slice(&bytes)
            .map_err(|e| SendError::UnexpectedResponse(format!("{e}: {}", snippet(&bytes))))?;
        let message = parsed.messages.into_iter().next().ok_or_else(|| {
            SendError::UnexpectedResponse(format!("no message id: {}", snippet(&bytes)))
        })?;
        Ok(SendReceipt {
            message_id: message.id,
            wa_id: parsed.contacts.into_iter().find_map(|c| c.wa_id),
            message_status: message.message_status,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> SendError {
        if e.is_timeout() {
            SendError::Timeout(self.timeout)
        } else {
            // Without the URL: it is ours and adds nothing, and reqwest's
            // source chain says what broke.
            let e = e.without_url();
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            SendError::Transport(text)
        }
    }
}

/// A media file an employer sent, as downloaded.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The download's `Content-Type` (else the one Meta's lookup named).
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why a media file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media id is not one Meta issues")]
    BadId,
    #[error("the media lookup answered {status}: {snippet}")]
    Lookup { status: u16, snippet: String },
    #[error("the media download answered {0}")]
    Download(u16),
    #[error("the media file is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Transport(String),
}

#[derive(serde::Deserialize)]
struct MediaInfo {
    url: String,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    file_size: Option<serde_json::Value>,
}

impl WhatsappClient {
    /// Fetches an inbound media file: `GET /{media-id}` gives a short-lived
    /// URL, which is fetched with the same bearer token. At most
    /// `max_bytes` are read; a larger file is refused, not truncated.
    pub async fn media(&self, media_id: &str, max_bytes: usize) -> Result<Downloaded, MediaError> {
        let valid = !media_id.is_empty()
            && media_id.len() <= 128
            && media_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(MediaError::BadId);
        }
        let transport = |e: reqwest::Error| match self.transport_error(e) {
            SendError::Timeout(d) => MediaError::Transport(format!("timed out after {d:?}")),
            SendError::Transport(t) => MediaError::Transport(t),
            other => MediaError::Transport(other.to_string()),
        };
        let r = self
            .http
            .get(format!("{}/{media_id}", self.graph_url))
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(transport)?;
        let status = r.status();
        let bytes = r.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(MediaError::Lookup {
                status: status.as_u16(),
                snippet: snippet(&bytes),
            });
        }
        let info: MediaInfo = serde_json::from_slice(&bytes).map_err(|e| MediaError::Lookup {
            status: status.as_u16(),
            snippet: format!("{e}: {}", snippet(&bytes)),
        })?;
        let declared = info.file_size.as_ref().and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        if declared.is_some_and(|n| n > max_bytes as u64) {
            return Err(MediaError::TooLarge(max_bytes));
        }
        let mut r = self
            .http
            .get(&info.url)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(transport)?;
        if !r.status().is_success() {
            return Err(MediaError::Download(r.status().as_u16()));
        }
        if r.content_length().is_some_and(|n| n > max_bytes as u64) {
            return Err(MediaError::TooLarge(max_bytes));
        }
        let content_type = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|v| !v.is_empty() && v != "application/octet-stream")
            .or(info.mime_type)
            .unwrap_or_else(|| "application/octet-stream".into());
        let mut out = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(transport)? {
            if out.len() + chunk.len() > max_bytes {
                return Err(MediaError::TooLarge(max_bytes));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Downloaded {
            content_type,
            bytes: out,
        })
    }
}

/// The start of an unexpected body, on one line, for the error message.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None if one_line.is_empty() => "(empty body)".into(),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_and_catalog_can_be_shared_across_tasks() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<super::WhatsappClient>();
        shared::<crate::messages::Catalog>();
    }
}
