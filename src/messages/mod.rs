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
pub use context::{greeting, BillLine, BranchContact, MessageContext, StoredBill, Totals};

/// A message that cannot be rendered; always names the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("no message template named `{0}`")]
    UnknownTemplate(String),
    #[error("message template `{template}`: {reason}")]
    Template { template: String, reason: String },
}

pub type Result<T, E = MessageError> = std::result::Result<T, E>;

/// The compiled-in catalog, compiled and checked once per process: `serve`
/// and the commands that send ask for it at start, so a template that does
/// not render stops start-up, and every later caller shares that one.
pub fn shared() -> Result<std::sync::Arc<Catalog>> {
    compiled().clone()
}

/// [`shared`], borrowed for the life of the process.
pub fn embedded() -> Result<&'static Catalog> {
    compiled().as_deref().map_err(Clone::clone)
}

fn compiled() -> &'static Result<std::sync::Arc<Catalog>> {
    static CATALOG: std::sync::OnceLock<Result<std::sync::Arc<Catalog>>> =
        std::sync::OnceLock::new();
    CATALOG.get_or_init(|| Catalog::load().map(std::sync::Arc::new))
}

#[cfg(test)]
mod tests;
