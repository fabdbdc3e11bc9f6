//! The development stand-in for Facebook as a process of its own, for tests that run the real
//! binary in production mode (where the built-in one is never mounted), e.g. the browser
//! suite's sign-in behind nginx:
//!
//! ```sh
//! target/debug/examples/facebook_stand_in --listen 127.0.0.1:0 --client-id 1234567890 \
//!     --client-secret s3cret --redirect-uri https://localhost:8443/callback/facebook \
//!     [--redirect-uri URI ...] [--latency-ms 800]
//! ```
//!
//! It prints `facebook stand-in listening on http://ADDRESS` once it accepts connections, and
//! runs until it is killed. Only loopback addresses: whoever reaches it signs in as anyone.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use loginwith::dev_provider::{DevProvider, DevProviderSettings, Faults};

const USAGE: &str = "usage: facebook_stand_in --listen 127.0.0.1:PORT --client-id ID \
                     --client-secret SECRET --redirect-uri URI [--redirect-uri URI ...] \
                     [--latency-ms N]";

struct Args {
    listen: SocketAddr,
    settings: DevProviderSettings,
    latency: Duration,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut listen, mut client_id, mut client_secret) = (None, None, None);
    let (mut redirect_uris, mut latency_ms) = (Vec::new(), 0);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => {
                let addr: SocketAddr = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?;
                if !addr.ip().is_loopback() {
                    return Err(format!("--listen {addr}: only loopback addresses"));
                }
                listen = Some(addr);
            }
            "--client-id" => client_id = Some(value),
            "--client-secret" => client_secret = Some(value),
            "--redirect-uri" => redirect_uris.push(value),
            "--latency-ms" => {
                latency_ms = value
                    .parse()
                    .map_err(|e| format!("--latency-ms {value}: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if redirect_uris.is_empty() {
        return Err("at least one --redirect-uri".into());
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        settings: DevProviderSettings {
            client_id: client_id.ok_or("--client-id is required")?,
            client_secret: client_secret.ok_or("--client-secret is required")?,
            redirect_uris,
            auto_approve: false,
            // Facebook names no issuer on its callbacks; neither does its stand-in here.
            issuer: None,
        },
        latency: Duration::from_millis(latency_ms),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("facebook_stand_in: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "facebook_stand_in: cannot listen on {}: {error}",
                args.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let router = DevProvider::new(
        args.settings,
        Faults {
            latency: args.latency,
            ..Faults::default()
        },
    )
    .router();
    // Printed after bind, so whoever reads it can connect at once (port 0 names the real port).
    match listener.local_addr() {
        Ok(addr) => println!("facebook stand-in listening on http://{addr}"),
        Err(error) => {
            eprintln!("facebook_stand_in: {error}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(error) = axum::serve(listener, router).await {
        eprintln!("facebook_stand_in: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
