//! Logging for the binaries: `RUST_LOG` filter (default `info`), text or JSON lines, colour only
//! on a terminal; and a fatal error logged like every other line.

use std::io::IsTerminal;
use std::process::ExitCode;

/// Installs the global subscriber; `json` selects one JSON object per line.
///
/// # Errors
/// When `filter` is not a valid `RUST_LOG` directive list (a typo must not silently log at
/// `info`).
pub fn init(filter: &str, json: bool) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map_err(|err| format!("invalid log filter (RUST_LOG / --log) {filter:?}: {err}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    Ok(())
}

/// The exit of a binary whose `run` returned `result`: a fatal error is logged through the
/// subscriber (JSON when logs are), then the process fails.
#[must_use]
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "stopped by a fatal error");
            ExitCode::FAILURE
        }
    }
}
