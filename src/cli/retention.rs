//! `retention apply`.

use super::{Ctx, Failure, RetentionCommand};

pub(super) async fn retention(ctx: &Ctx, command: RetentionCommand) -> Result<(), Failure> {
    let RetentionCommand::Apply { at, json } = command;
    let db = ctx.migrated().await?;
    let s = crate::retention::apply(
        &db,
        &ctx.config.retention,
        at.unwrap_or_else(crate::time::now),
        "system:retention",
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string(&s).expect("serialisable"));
    } else {
        println!(
            "retention: redacted {} audit row(s), {} case event(s), {} outbox message(s), {} employer contact(s)",
            s.audit_rows, s.case_events, s.outbox_rows, s.employers
        );
    }
    Ok(())
}
