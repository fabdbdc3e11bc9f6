use std::process::ExitCode;

use clap::Parser;

mod cli;

/// jemalloc: each thread allocates from caches of its own, where glibc's malloc made tokio's
/// workers contend for each other's arenas (BENCHMARKS.md, "Speed to the floor").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
