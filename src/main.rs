//! `interviewd`: live, AI-conducted job interviews over a raw WebSocket.

mod app;
mod auth;
mod cli;
mod config;
mod fd_limit;
mod http;
mod llm;
mod sessions_cmd;
mod store;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::Config;

/// A failure is one line on stderr, `error: …` with its causes, and exit
/// code 1: no `Debug` dump and no backtrace, whatever `RUST_BACKTRACE` says.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    telemetry::init(config.log_format);
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    match cli.command {
        Command::Serve(args) => actix_web::rt::System::new().block_on(app::serve(config, args.dev)),
        Command::Migrate => actix_web::rt::System::new().block_on(async {
            let applied = store::Store::migrate(&config.database_url).await?;
            if applied.is_empty() {
                println!("no pending migrations");
            }
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }),
        Command::Token(args) => cli::run_token(&config, &args),
        Command::Sessions(args) => sessions_cmd::run(&config, &args),
    }
}
