//! Domain types parsed once at the boundary: the core never handles raw
//! strings for identifiers, phone numbers, periods or money.

mod calendar;
mod case;
mod counts;
mod money;
mod npp;
mod period;
mod policy;
mod wa_id;
mod zone;

pub use calendar::{Calendar, Holiday};
pub use case::{CaseStatus, QuietReason, Stage};
pub use counts::Counts;
pub use money::Money;
pub use npp::Npp;
pub use period::Period;
pub use policy::{Policy, SendingWindow};
pub use wa_id::WaId;
pub use zone::{local_instant, parse_zone, start_of_day};

/// A value that failed to parse, with a reason fit for `line N, column X: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}
