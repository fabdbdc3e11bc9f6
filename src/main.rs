use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    // Parsed first: --help and --version answer without touching the configuration.
    let cli = cli::Cli::parse();
    // Logs on stderr, so stdout carries only what a command prints (`check`).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loginwith: {message}");
            ExitCode::FAILURE
        }
    }
}
