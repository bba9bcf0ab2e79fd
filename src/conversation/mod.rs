//! Understanding employers' replies: what they want (the intent) and, for a
//! promise, the day they mean. One code path for the webhook and
//! `wa-smile classify`.

mod dates;
pub mod eval;
mod intent;
mod normalize;

pub use normalize::{normalize, EmojiTone, Normalized};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an employer's reply asks for, as the contract names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    PromiseToPay,
    AlreadyPaid,
    PaymentLinkRequest,
    AmountInquiry,
    InstallmentRequest,
    Dispute,
    OfficerRequest,
    OptOut,
    WrongNumber,
    Complaint,
    Question,
    Acknowledgement,
    Unknown,
}

impl Intent {
    pub const ALL: [Intent; 13] = [
        Intent::PromiseToPay,
        Intent::AlreadyPaid,
        Intent::PaymentLinkRequest,
        Intent::AmountInquiry,
        Intent::InstallmentRequest,
        Intent::Dispute,
        Intent::OfficerRequest,
        Intent::OptOut,
        Intent::WrongNumber,
        Intent::Complaint,
        Intent::Question,
        Intent::Acknowledgement,
        Intent::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Intent::PromiseToPay => "promise_to_pay",
            Intent::AlreadyPaid => "already_paid",
            Intent::PaymentLinkRequest => "payment_link_request",
            Intent::AmountInquiry => "amount_inquiry",
            Intent::InstallmentRequest => "installment_request",
            Intent::Dispute => "dispute",
            Intent::OfficerRequest => "officer_request",
            Intent::OptOut => "opt_out",
            Intent::WrongNumber => "wrong_number",
            Intent::Complaint => "complaint",
            Intent::Question => "question",
            Intent::Acknowledgement => "acknowledgement",
            Intent::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An intent name that is not in the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown intent `{0}`")]
pub struct UnknownIntent(pub String);

impl FromStr for Intent {
    type Err = UnknownIntent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Intent::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| UnknownIntent(s.to_owned()))
    }
}

/// What `wa-smile classify` prints: `{"intent": …, "promised_date":
/// "YYYY-MM-DD" | null, "confidence": 0..1}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub intent: Intent,
    /// Only ever set for `promise_to_pay`; `None` there means "ask for the date".
    pub promised_date: Option<NaiveDate>,
    /// How sure the rules are, 0..1 (two hundredths of precision).
    pub confidence: f64,
    /// The best other reading that would act differently, when one fired.
    #[serde(skip)]
    pub runner_up: Option<Intent>,
    /// A second request in its own clause, also to be acted on.
    #[serde(skip)]
    pub also: Option<Intent>,
}

/// Classifies a reply received at `received_at` from an employer in `tz`.
/// Relative dates resolve against the message's own local day, never the
/// server clock.
pub fn classify(text: &str, received_at: DateTime<Utc>, tz: chrono_tz::Tz) -> Classification {
    let today = local_day(received_at, tz);
    let n = normalize(text);
    let d = intent::decide(&n, today);
    Classification {
        intent: d.intent,
        // A day already gone ("10/3/2025") cannot be promised; ask again.
        promised_date: d
            .date
            .filter(|day| d.intent == Intent::PromiseToPay && *day >= today),
        confidence: d.confidence,
        runner_up: d.runner_up,
        also: d.also,
    }
}

/// The employer's calendar day at `at`. `with_timezone` panics at the very
/// ends of chrono's range, and a webhook timestamp is untrusted input.
fn local_day(at: DateTime<Utc>, tz: chrono_tz::Tz) -> NaiveDate {
    use chrono::{Offset, TimeZone};
    let utc = at.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix().local_minus_utc();
    utc.checked_add_signed(chrono::TimeDelta::seconds(offset.into()))
        .unwrap_or(utc)
        .date()
}

/// Maps a quick-reply payload (`PAY_LINK`, `PROMISE`, `PAID`, `OFFICER`,
/// `STOP`, optionally `:<case id>`) to its intent and case id. A suffix that
/// is not a number still yields the intent, without a case id, so a tap is
/// never lost; payloads that are not ours give `None`.
pub fn intent_for_button(payload: &str) -> Option<(Intent, Option<i64>)> {
    let payload = payload.trim();
    let (head, tail) = match payload.split_once(':') {
        Some((h, t)) => (h, Some(t.trim())),
        None => (payload, None),
    };
    let intent = match head.trim().to_ascii_uppercase().as_str() {
        "PAY_LINK" => Intent::PaymentLinkRequest,
        "PROMISE" => Intent::PromiseToPay,
        "PAID" => Intent::AlreadyPaid,
        "OFFICER" => Intent::OfficerRequest,
        "STOP" => Intent::OptOut,
        _ => return None,
    };
    Some((intent, tail.and_then(|t| t.parse::<i64>().ok())))
}

#[cfg(test)]
mod tests;
