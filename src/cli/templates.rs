//! `templates check` and `templates preview`.

use super::{one_line, Ctx, Failure, TemplatesCommand};
use chrono::{DateTime, Utc};

pub(super) async fn templates(ctx: &Ctx, command: TemplatesCommand) -> Result<(), Failure> {
    match command {
        TemplatesCommand::Check => check(),
        TemplatesCommand::Sync { dry_run } => {
            let db = if dry_run {
                None
            } else {
                Some(ctx.migrated().await?)
            };
            crate::templates_sync::cli_sync(&ctx.config, db.as_ref(), dry_run).await
        }
        TemplatesCommand::Status { json } => {
            crate::templates_sync::cli_status(&ctx.existing().await?, json).await
        }
        TemplatesCommand::Preview { name, case_id, at } => preview(ctx, &name, case_id, at).await,
    }
}

fn check() -> Result<(), Failure> {
    match crate::messages::embedded() {
        Ok(c) => println!("{} message template(s) OK", c.names().count()),
        Err(e) => return Err(Failure::invalid(vec![one_line(&e.to_string())])),
    }
    Ok(())
}

async fn preview(
    ctx: &Ctx,
    name: &str,
    case_id: i64,
    at: Option<DateTime<Utc>>,
) -> Result<(), Failure> {
    let catalog = crate::messages::embedded()
        .map_err(|e| Failure::invalid(vec![one_line(&e.to_string())]))?;
    if catalog.get(name).is_none() {
        return Err(Failure::invalid(vec![format!(
            "error: no message template named `{name}`"
        )]));
    }
    let db = ctx.existing().await?;
    let src = crate::delivery::ContextSource::from_config(&ctx.config)?;
    let Some(mctx) =
        crate::delivery::load_context(&db, &src, case_id, at.unwrap_or_else(crate::time::now))
            .await?
    else {
        return Err(Failure {
            code: 1,
            lines: vec![format!("error: no case {case_id}")],
        });
    };
    let text = catalog
        .render_text(name, &mctx)
        .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?;
    println!("{text}");
    Ok(())
}
