use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    exit_quietly_on_closed_stdout();
    let cli = wa_smile::cli::Cli::parse();
    match wa_smile::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            for line in &failure.lines {
                eprintln!("{line}");
            }
            ExitCode::from(failure.code)
        }
    }
}

/// `wa-smile case show … | head`: once the reader has gone, the rest of the
/// output has nowhere to go, which is not a failure. Rust ignores SIGPIPE,
/// so `println!` panics on the broken pipe instead; every command prints
/// with `println!`, so this one hook turns that panic into a clean exit.
fn exit_quietly_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout")
            && message.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(0);
        }
        default(info);
    }));
}
