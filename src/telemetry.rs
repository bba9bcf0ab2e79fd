//! Logging. Lines never carry names or phone numbers: code logs ids and
//! counts, and masks a number (`WaId::masked`) where one must be shown.

use crate::config::Config;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber on stderr. One-shot commands default to
/// warnings only, so their stdout/stderr stay what CONTRACT promises.
pub fn init(config: &Config, long_running: bool) {
    let default = if long_running {
        config.log.level.as_str()
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
