//! `import employers|bills|payments FILE`.

use super::{Ctx, Failure, ImportKind};
use crate::import::{self, ImportContext, ImportError, Kind};
use std::path::Path;

pub(super) async fn import(
    ctx: &Ctx,
    kind: ImportKind,
    file: &Path,
    dry_run: bool,
    json: bool,
) -> Result<(), Failure> {
    let config = &ctx.config;
    let db = ctx.migrated().await?;
    let kind = match kind {
        ImportKind::Employers => Kind::Employers,
        ImportKind::Bills => Kind::Bills,
        ImportKind::Payments => Kind::Payments,
    };
    let ictx = ImportContext {
        calendar: config.calendar(),
        default_tz: config.timezone(),
        actor: format!(
            "import:{}",
            file.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        thanks: Some(config.clone()),
    };
    let progress = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    match import::import_csv(
        &db,
        &ictx,
        kind,
        file,
        import::Options { dry_run, progress },
    )
    .await
    {
        Ok(c) if json => println!("{}", serde_json::to_string(&c).expect("serialisable")),
        Ok(c) => println!(
            "{}{} {}: inserted {}, updated {}, unchanged {}",
            if dry_run {
                "dry run, nothing written — "
            } else {
                ""
            },
            kind.as_str(),
            file.display(),
            c.inserted,
            c.updated,
            c.unchanged
        ),
        Err(ImportError::Invalid { errors, total }) => {
            let mut lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            if total > errors.len() {
                lines.push(format!("… and {} more error(s)", total - errors.len()));
            }
            lines.push(format!(
                "{}: {total} error(s); nothing was written",
                file.display()
            ));
            return Err(Failure::invalid(lines));
        }
        Err(ImportError::Failed(e)) => return Err(e.into()),
    }
    Ok(())
}
