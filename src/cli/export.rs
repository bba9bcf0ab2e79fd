//! `export KIND --from --to --format --out`.

use super::{CliExportFormat, Ctx, Failure};
use crate::export::ExportKind;
use chrono::NaiveDate;
use std::path::Path;

#[allow(clippy::too_many_arguments)] // one per command-line option
pub(super) async fn export(
    ctx: &Ctx,
    kind: ExportKind,
    from: NaiveDate,
    to: NaiveDate,
    branch: Option<String>,
    format: CliExportFormat,
    out: &Path,
    actor: Option<String>,
) -> Result<(), Failure> {
    let format = match format {
        CliExportFormat::Csv => crate::export::ExportFormat::Csv,
        CliExportFormat::Xlsx => crate::export::ExportFormat::Xlsx,
    };
    let actor = actor.unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    });
    let req = crate::export::ExportRequest::new(kind, format, from, to, actor)
        .branch(branch)
        .policy(ctx.config.policy());
    req.validate()
        .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?;
    let db = ctx.migrated().await?;
    let m = crate::export::export_to_file(&db, &req, out, None).await?;
    println!(
        "export {}: {} row(s) to {} (data sha256 {}, audit head {})",
        kind.as_str(),
        m.row_count,
        out.display(),
        m.data_sha256,
        m.audit_head_seq
    );
    Ok(())
}
