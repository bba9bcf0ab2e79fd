//! `audit verify [--export FILE]`.

use super::{AuditCommand, Ctx, Failure};
use std::path::Path;

pub(super) async fn audit(ctx: &Ctx, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify { export, manifest } => {
            verify(ctx, export.as_deref(), manifest.as_deref()).await
        }
    }
}

async fn verify(ctx: &Ctx, export: Option<&Path>, manifest: Option<&Path>) -> Result<(), Failure> {
    let db = ctx.existing().await?;
    let v = crate::audit::verify(&db).await?;
    match v.broken {
        None => println!(
            "audit chain intact: {} row(s), head {} {}",
            v.rows, v.head_seq, v.head_hash
        ),
        Some((seq, why)) => {
            return Err(Failure {
                code: 1,
                lines: vec![format!("audit chain broken at row {seq}: {why}")],
            });
        }
    }
    if let Some(file) = export {
        let r = crate::export::verify_export(&db, file, manifest, &ctx.config.policy()).await?;
        if !r.ok() {
            let mut lines: Vec<String> = r
                .problems
                .iter()
                .map(|p| format!("{}: {p}", file.display()))
                .collect();
            lines.push(format!("{}: export verification failed", file.display()));
            return Err(Failure { code: 1, lines });
        }
        println!(
            "export {} intact: {} row(s) match its manifest and the database",
            file.display(),
            r.rows_in_file
        );
    }
    Ok(())
}
