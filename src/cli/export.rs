//! `export KIND --from --to --format --out`, and `export corrections`.

use super::{CliExportFormat, CliExportKind, Ctx, Failure};
use crate::export::ExportKind;
use chrono::NaiveDate;
use std::path::Path;

/// The command line of one `export`.
pub(super) struct Request {
    pub kind: CliExportKind,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub branch: Option<String>,
    pub format: Option<CliExportFormat>,
    pub actor: Option<String>,
}

pub(super) async fn run(ctx: &Ctx, r: Request, out: &Path) -> Result<(), Failure> {
    let kind = match r.kind {
        CliExportKind::Corrections => return corrections(ctx, &r, out).await,
        CliExportKind::Audit => ExportKind::Audit,
        CliExportKind::Cases => ExportKind::Cases,
        CliExportKind::Summary => ExportKind::Summary,
    };
    let mut missing = Vec::new();
    for (name, absent) in [
        ("--from", r.from.is_none()),
        ("--to", r.to.is_none()),
        ("--format", r.format.is_none()),
    ] {
        if absent {
            missing.push(format!(
                "error: {name} is required for `export {}`",
                kind.as_str()
            ));
        }
    }
    match (r.from, r.to, r.format) {
        (Some(from), Some(to), Some(format)) => {
            export(ctx, kind, from, to, r.branch, format, out, r.actor).await
        }
        _ => Err(Failure::invalid(missing)),
    }
}

/// `export corrections [--from D --to D] --out FILE.csv`: the labelled
/// file `classify --eval` reads.
async fn corrections(ctx: &Ctx, r: &Request, out: &Path) -> Result<(), Failure> {
    let mut bad = Vec::new();
    if r.format.is_some() || r.branch.is_some() {
        bad.push("error: `export corrections` takes only --from, --to and --out".to_owned());
    }
    if let (Some(f), Some(t)) = (r.from, r.to) {
        if t < f {
            bad.push(format!("error: --to {t} is before --from {f}"));
        }
    }
    if !bad.is_empty() {
        return Err(Failure::invalid(bad));
    }
    let db = ctx.migrated().await?;
    let file = std::fs::File::create(out)
        .map_err(|e| Failure::invalid(vec![format!("error: {}: {e}", out.display())]))?;
    let actor = r.actor.clone().unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    });
    let n = crate::replies::corrections::export(
        &db,
        r.from,
        r.to,
        ctx.config.timezone(),
        &actor,
        std::io::BufWriter::new(file),
    )
    .await?;
    println!("export corrections: {n} row(s) to {}", out.display());
    Ok(())
}

#[allow(clippy::too_many_arguments)] // one per command-line option
async fn export(
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
    // An unknown branch is a mistake, not an empty export.
    if let Some(b) = &req.branch {
        if let Err(unknown) = crate::branches::check(&db, b).await? {
            return Err(Failure::invalid(vec![format!("error: {unknown}")]));
        }
    }
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
