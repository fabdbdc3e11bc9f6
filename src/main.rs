use std::process::ExitCode;

use clap::Parser;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    // Parsed first: --help and --version answer without touching the configuration. Logging
    // starts once the configuration (log.format) is read, in `run`.
    let cli = cli::Cli::parse();
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loginwith: {message}");
            ExitCode::FAILURE
        }
    }
}
