//! `deliver --once` and `deliver --resume`.

use super::{one_line, Ctx, Failure};
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub(super) async fn deliver(
    ctx: &Ctx,
    once: bool,
    at: Option<DateTime<Utc>>,
    json: bool,
    resume: bool,
) -> Result<(), Failure> {
    let db = ctx.migrated().await?;
    if resume {
        let n = crate::delivery::resume(&db, None).await?;
        println!("delivery resumed ({n} flag(s) cleared)");
        return Ok(());
    }
    if !once {
        return Err(Failure::invalid(vec![
            "error: `deliver` needs --once (or --resume); `serve` runs the worker continuously"
                .into(),
        ]));
    }
    let catalog = Arc::new(
        crate::messages::Catalog::load()
            .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?,
    );
    let flags = crate::delivery::halted(&db).await?;
    if !flags.is_empty() {
        return Err(Failure {
            code: 1,
            lines: flags
                .iter()
                .map(|(f, r)| format!("error: delivery is halted ({f}: {r}); fix it, then run `wa-smile deliver --resume`"))
                .collect(),
        });
    }
    let d = crate::delivery::Deliverer::from_config(&ctx.config, catalog)?;
    // SIGTERM/SIGINT stop the pass as they stop `serve`: claims not
    // yet sent are released, sends in flight finish and are recorded.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signals = tokio::spawn(async move {
        crate::serve::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let result = crate::delivery::deliver_until(
        &db,
        &d,
        at.unwrap_or_else(crate::time::now),
        stopped.clone(),
    )
    .await;
    signals.abort();
    let s = result?;
    if json {
        println!("{}", serde_json::to_string(&s).expect("serialisable"));
    } else {
        println!(
            "deliver: {} sent, {} failed, {} retried, {} skipped{}",
            s.sent,
            s.failed,
            s.retried,
            s.skipped,
            s.halted
                .map(|f| format!("; halted ({f})"))
                .unwrap_or_default()
        );
    }
    if let Some(flag) = s.halted {
        let reason = crate::delivery::halted(&db)
            .await?
            .into_iter()
            .find(|(f, _)| f == flag)
            .map_or_else(String::new, |(_, r)| format!(": {r}"));
        return Err(Failure {
            code: 1,
            lines: vec![one_line(&format!(
                "error: delivery halted ({flag}{reason}); fix it, then run `wa-smile deliver --resume`"
            ))],
        });
    }
    if *stopped.borrow() {
        return Err(Failure {
            code: 1,
            lines: vec![
                "error: deliver stopped by a signal; messages not yet sent were released".into(),
            ],
        });
    }
    Ok(())
}
