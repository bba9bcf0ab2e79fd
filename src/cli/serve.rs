//! `serve`, `demo` and `migrate`.

use super::{Ctx, Failure};
use chrono::{DateTime, Utc};
use std::path::PathBuf;

pub(super) async fn demo(
    ctx: &Ctx,
    data: Option<PathBuf>,
    at: Option<DateTime<Utc>>,
) -> Result<(), Failure> {
    crate::demo::run((*ctx.config).clone(), data, at).await?;
    Ok(())
}

pub(super) async fn migrate(ctx: &Ctx) -> Result<(), Failure> {
    ctx.migrated().await?;
    println!("migrations applied");
    Ok(())
}

pub(super) async fn serve(ctx: &Ctx) -> Result<(), Failure> {
    let config = &ctx.config;
    let missing = crate::startup::missing_secrets(config);
    if !missing.is_empty() {
        return Err(Failure::invalid(missing));
    }
    let db = ctx.migrated().await?;
    let listener = tokio::net::TcpListener::bind(&config.server.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.bind))?;
    crate::serve::run(config.clone(), db, listener).await?;
    Ok(())
}
