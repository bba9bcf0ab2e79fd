//! `scan`: one overdue scan as the scheduler would run it.

use super::{Ctx, Failure};
use chrono::{DateTime, Utc};

pub(super) async fn scan(ctx: &Ctx, at: Option<DateTime<Utc>>, json: bool) -> Result<(), Failure> {
    let db = ctx.migrated().await?;
    let sctx = crate::scan::ScanContext::from_config(&ctx.config)?;
    let s = crate::scan::run(&db, &sctx, at.unwrap_or_else(crate::time::now)).await?;
    if json {
        println!("{}", serde_json::to_string(&s).expect("serialisable"));
    } else {
        println!(
            "scan: {} case(s) opened, {} updated, {} resolved; {} message(s) queued",
            s.cases_opened, s.cases_updated, s.cases_resolved, s.messages_queued
        );
    }
    Ok(())
}
