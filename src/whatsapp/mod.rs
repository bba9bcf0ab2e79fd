//! A thin client for the WhatsApp Cloud API: typed message objects, one
//! `reqwest::Client`, and errors classified for the delivery worker.

mod client;
mod error;
mod types;

pub use client::{Downloaded, MediaError, WhatsappClient, DEFAULT_TIMEOUT};
pub use error::{
    classify_code, explain_code, ErrorClass, MetaError, MetaErrorData, RetryAfter, SendError,
};
pub use types::*;
