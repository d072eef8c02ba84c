//! Logging: one `tracing` subscriber for the process, writing to stderr.
//!
//! - `LOG_FORMAT=pretty` (default): human lines, coloured when stderr is a
//!   terminal.
//! - `LOG_FORMAT=json`: one JSON object per line, event fields flattened to
//!   the top level, with the current span and the span list (so every line of
//!   a connection carries its `interview_id`, `connection_id`, `role`).
//!
//! `RUST_LOG` filters as usual (`info` when unset or blank). Never log tokens
//! or audio: record a token's claims (`sub`, `role`), never the token itself,
//! and beware of request lines, whose query string carries `?token=`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter used when `RUST_LOG` is unset, blank or invalid.
pub const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber. A second call (tests that start several
/// servers in one process) is a no-op.
pub fn init(format: LogFormat) {
    let filter = env_filter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only when a global subscriber is already set: keep it.
    let _ = match format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// `RUST_LOG` when set and valid, else [`DEFAULT_FILTER`]. An invalid
/// `RUST_LOG` is reported on stderr (logging is not up yet) and ignored
/// rather than stopping the server.
fn env_filter() -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .unwrap_or_else(|e| {
                eprintln!("ignoring invalid RUST_LOG ({e}); using `{DEFAULT_FILTER}`");
                EnvFilter::new(DEFAULT_FILTER)
            }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    }
}
