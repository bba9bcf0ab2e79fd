//! Send failures and what a delivery worker should do about them. Meta's
//! error `code` decides; the HTTP status only when there is no parseable
//! error body.

use serde::Deserialize;
use std::time::Duration;

/// What the delivery worker should do with a failed send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later; `retry_after` says how long to wait.
    Retryable { retry_after: RetryAfter },
    /// Retrying the same request will fail again: fail the row, raise an
    /// officer task (and fix the template or data).
    Permanent,
    /// The access token expired or was revoked (190): every send will fail
    /// until an operator installs a new one. Alert the operator.
    AuthExpired,
    /// The business account is restricted or locked (368, 131031): pause ALL
    /// sending and alert; continuing can make the restriction worse.
    AccountRestricted,
}

/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// The caller's usual exponential back-off with jitter.
    Backoff,
    /// The pair rate limit (131056): Meta asks for 4^n seconds before the
    /// n-th retry to the same recipient.
    PairRateLimit,
    /// The server said when (an HTTP `Retry-After` header).
    Exactly(Duration),
}

impl RetryAfter {
    /// The wait before retry number `attempt` (1 for the first retry) when
    /// the hint is not the caller's own back-off; capped at one hour.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        match self {
            RetryAfter::Backoff => None,
            RetryAfter::PairRateLimit => {
                let secs = 4u64.saturating_pow(attempt.max(1)).min(3600);
                Some(Duration::from_secs(secs))
            }
            RetryAfter::Exactly(d) => Some(*d),
        }
    }
}

/// Meta's error object (`{"error": {…}}`), as sent synchronously; the same
/// codes arrive in `failed` status webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MetaError {
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub error_data: Option<MetaErrorData>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MetaErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MetaErrorEnvelope {
    pub error: MetaError,
}

impl MetaError {
    pub fn details(&self) -> Option<&str> {
        self.error_data.as_ref().and_then(|d| d.details.as_deref())
    }
}

/// Codes Meta documents as temporary: throughput, pair rate, call limits,
/// service errors and maintenance. 1 ("API Unknown", usually with HTTP 500)
/// is Meta's own hiccup, whose documented remedy is to wait and retry:
/// failing on it sent hundreds of cases to officers for nothing.
const RETRYABLE: &[i64] = &[
    130429, 131056, 1, 4, 80007, 2, 131000, 131016, 133004, 131057,
];
/// The class of a Meta error code, whether it came back from a send or in a
/// `failed` status webhook. Unknown codes are permanent: a human looks
/// rather than the bot retrying blindly.
pub fn classify_code(code: i64) -> ErrorClass {
    match code {
        190 => ErrorClass::AuthExpired,
        368 | 131031 => ErrorClass::AccountRestricted,
        131056 => ErrorClass::Retryable {
            retry_after: RetryAfter::PairRateLimit,
        },
        c if RETRYABLE.contains(&c) => ErrorClass::Retryable {
            retry_after: RetryAfter::Backoff,
        },
        // The documented permanent codes (131047 outside the window, 131026
        // undeliverable, 131049, 131051, template problems 1320xx, invalid
        // parameters 100/131008/131009) and any code Meta adds later.
        _ => ErrorClass::Permanent,
    }
}

/// What a Meta error code means, in Indonesian, for the officer reading a
/// failed message on the case page (the one mapping of codes to words).
pub fn explain_code(code: i64) -> &'static str {
    match code {
        131047 => "di luar jendela 24 jam: hanya template yang boleh dikirim",
        131026 => {
            "tidak dapat diterima: nomor tidak terdaftar di WhatsApp, aplikasinya terlalu lama, \
             atau pemiliknya belum menyetujui ketentuan WhatsApp"
        }
        131049 => "dibatasi WhatsApp: penerima sudah menerima terlalu banyak pesan pemasaran",
        131051 => "jenis pesan tidak didukung",
        130429 => "batas kecepatan pengiriman tercapai; dicoba lagi nanti",
        131056 => "terlalu banyak pesan ke nomor yang sama dalam waktu singkat; dicoba lagi nanti",
        132000 => "jumlah isian template tidak sesuai",
        132001 => "template belum ada dalam bahasa ini",
        132015 => "template dijeda oleh WhatsApp",
        132016 => "template dinonaktifkan oleh WhatsApp",
        100 | 131008 | 131009 => "isian pesan tidak sah (kesalahan sistem)",
        190 => "token akses WhatsApp kedaluwarsa atau tidak sah",
        368 | 131031 => "akun WhatsApp Business dibatasi atau dikunci",
        4 | 80007 | 2 | 131000 | 131016 | 133004 | 131057 => {
            "gangguan layanan WhatsApp; dicoba lagi nanti"
        }
        _ => "ditolak WhatsApp",
    }
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message breaks one of Meta's limits; nothing was sent.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// Meta answered with an error body.
    #[error("WhatsApp error {} (HTTP {status}): {}{}", .error.code, .error.message, .error.fbtrace_id.as_deref().map(|t| format!(" [fbtrace_id {t}]")).unwrap_or_default())]
    Api {
        status: u16,
        error: Box<MetaError>,
        /// From a `Retry-After` header, when present.
        retry_after: Option<Duration>,
    },
    /// A non-success status without a parseable error body (a proxy's HTML
    /// page, an empty 502).
    #[error("WhatsApp API answered HTTP {status} without an error body: {snippet}")]
    Http {
        status: u16,
        snippet: String,
        retry_after: Option<Duration>,
    },
    /// No answer within the client timeout. The message may or may not have
    /// been accepted.
    #[error("WhatsApp API did not answer within {0:?}")]
    Timeout(Duration),
    /// Could not reach the API (DNS, TCP, TLS) or the connection broke.
    #[error("cannot reach the WhatsApp API: {0}")]
    Transport(String),
    /// HTTP 200 but not the documented success body.
    #[error("unexpected success body from the WhatsApp API: {0}")]
    UnexpectedResponse(String),
}

impl SendError {
    /// What the delivery worker should do.
    pub fn class(&self) -> ErrorClass {
        let backoff = |retry_after: &Option<Duration>| ErrorClass::Retryable {
            retry_after: retry_after.map_or(RetryAfter::Backoff, RetryAfter::Exactly),
        };
        match self {
            SendError::Invalid(_) => ErrorClass::Permanent,
            SendError::Api {
                error, retry_after, ..
            } => match classify_code(error.code) {
                ErrorClass::Retryable {
                    retry_after: RetryAfter::Backoff,
                } if retry_after.is_some() => backoff(retry_after),
                class => class,
            },
            SendError::Http {
                status,
                retry_after,
                ..
            } => match status {
                429 | 408 | 500..=599 => backoff(retry_after),
                401 => ErrorClass::AuthExpired,
                _ => ErrorClass::Permanent,
            },
            SendError::Timeout(_) | SendError::Transport(_) => ErrorClass::Retryable {
                retry_after: RetryAfter::Backoff,
            },
            // Meta took the request; sending again would risk a duplicate.
            SendError::UnexpectedResponse(_) => ErrorClass::Permanent,
        }
    }

    /// Meta's error code, when Meta sent one.
    pub fn meta_code(&self) -> Option<i64> {
        match self {
            SendError::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// 131047: outside the 24-hour window; resend as a template.
    pub fn is_outside_window(&self) -> bool {
        self.meta_code() == Some(131047)
    }

    /// 130429 (or a bare HTTP 429): the number's throughput is exceeded;
    /// the pacer should slow down.
    pub fn is_throughput_limit(&self) -> bool {
        match self {
            SendError::Api { error, .. } => error.code == 130429,
            SendError::Http { status, .. } => *status == 429,
            _ => false,
        }
    }

    /// No answer, so Meta may or may not have accepted the message: a
    /// resend could deliver it twice.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, SendError::Timeout(_))
    }

    /// 131026: the number cannot receive WhatsApp messages; an officer needs
    /// another contact.
    pub fn is_undeliverable(&self) -> bool {
        self.meta_code() == Some(131026)
    }

    /// A short reason for metrics labels and the case log (no PII).
    pub fn reason(&self) -> String {
        match self {
            SendError::Invalid(_) => "invalid".into(),
            SendError::Api { error, .. } => format!("meta_{}", error.code),
            SendError::Http { status, .. } => format!("http_{status}"),
            SendError::Timeout(_) => "timeout".into(),
            SendError::Transport(_) => "transport".into(),
            SendError::UnexpectedResponse(_) => "unexpected_response".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_documented_classes() {
        for code in [130429, 1, 4, 80007, 2, 131000, 131016, 133004, 131057] {
            assert_eq!(
                classify_code(code),
                ErrorClass::Retryable {
                    retry_after: RetryAfter::Backoff
                },
                "{code}"
            );
        }
        for code in [
            131047, 131026, 131049, 131051, 132000, 132001, 132015, 132016, 100, 131008, 131009,
        ] {
            assert_eq!(classify_code(code), ErrorClass::Permanent, "{code}");
        }
        assert_eq!(classify_code(190), ErrorClass::AuthExpired);
        assert_eq!(classify_code(368), ErrorClass::AccountRestricted);
        assert_eq!(classify_code(131031), ErrorClass::AccountRestricted);
        assert_eq!(classify_code(999_999), ErrorClass::Permanent);
    }

    #[test]
    fn pair_rate_limit_waits_four_to_the_n_seconds() {
        let hint = RetryAfter::PairRateLimit;
        assert_eq!(hint.delay(1), Some(Duration::from_secs(4)));
        assert_eq!(hint.delay(2), Some(Duration::from_secs(16)));
        assert_eq!(hint.delay(3), Some(Duration::from_secs(64)));
        assert_eq!(hint.delay(30), Some(Duration::from_secs(3600)));
        assert_eq!(RetryAfter::Backoff.delay(3), None);
    }
}
