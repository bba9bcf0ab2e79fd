//! `classify TEXT` and `classify --eval FILE`.

use super::{Ctx, Failure};
use chrono::{DateTime, Utc};
use std::path::PathBuf;

pub(super) fn classify(
    ctx: &Ctx,
    at: Option<DateTime<Utc>>,
    timezone: Option<String>,
    eval: Option<PathBuf>,
    json: bool,
    text: Option<String>,
) -> Result<(), Failure> {
    let tz = match timezone {
        Some(z) => crate::config::parse_zone(&z)
            .map_err(|e| Failure::invalid(vec![format!("--timezone: {e}")]))?,
        None => ctx.config.timezone().map_err(anyhow::Error::msg)?,
    };
    if let Some(file) = eval {
        return classify_eval(&file, at, tz, json);
    }
    let text = text.unwrap_or_default();
    let c = crate::conversation::classify(&text, at.unwrap_or_else(crate::time::now), tz);
    println!(
        "{}",
        serde_json::json!({"intent": c.intent.as_str(), "promised_date": c.promised_date.map(|d| d.to_string()), "confidence": c.confidence})
    );
    Ok(())
}

/// `classify --eval`: every row needs a time, its own or `--at` (a dev set
/// scored against today's clock would be meaningless).
fn classify_eval(
    file: &std::path::Path,
    at: Option<DateTime<Utc>>,
    tz: chrono_tz::Tz,
    json: bool,
) -> Result<(), Failure> {
    use crate::conversation::eval;
    let name = file.display().to_string();
    let input =
        std::fs::File::open(file).map_err(|e| Failure::invalid(vec![format!("{name}: {e}")]))?;
    let rows = eval::read_labelled(std::io::BufReader::new(input)).map_err(|errors| {
        let mut lines: Vec<String> = errors
            .iter()
            .take(100)
            .map(|e| format!("{name}: {e}"))
            .collect();
        if errors.len() > 100 {
            lines.push(format!(
                "{name}: … and {} more error(s)",
                errors.len() - 100
            ));
        }
        Failure::invalid(lines)
    })?;
    let default_at = match (at, rows.iter().find(|r| r.received_at.is_none())) {
        (Some(at), _) => at,
        (None, Some(row)) => {
            return Err(Failure::invalid(vec![format!(
                "{name}: line {}: no received_at; pass --at for the rows without one",
                row.line
            )]))
        }
        (None, None) => crate::time::now(),
    };
    let report = eval::score(&rows, default_at, tz);
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(anyhow::Error::from)?
        );
    } else {
        print!("{}", report.render(&name));
    }
    Ok(())
}
