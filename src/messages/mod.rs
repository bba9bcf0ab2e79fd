//! Message templates (`templates/messages/`, compiled in): one source per
//! message renders both the text an officer previews and the parameters of
//! the approved WhatsApp template. The file format is documented in
//! `templates/messages/README.md`.

mod catalog;
mod context;
pub mod filters;

pub use crate::whatsapp::TemplateMessage;
pub use catalog::{
    fill_body, ButtonDef, Catalog, TemplateDef, WhatsappTemplateDef, BUTTON_PAYLOADS,
};
pub use context::{BillLine, BranchContact, MessageContext, Totals};

/// A message that cannot be rendered; always names the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("no message template named `{0}`")]
    UnknownTemplate(String),
    #[error("message template `{template}`: {reason}")]
    Template { template: String, reason: String },
}

pub type Result<T, E = MessageError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
