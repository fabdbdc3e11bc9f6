use std::process::ExitCode;

use loginwith::{
    App,
    config::{Config, Sources},
};

#[tokio::main]
async fn main() -> ExitCode {
    loginwith::logging::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loginwith: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let config = Sources::from_process()
        .and_then(|sources| Config::load(&sources))
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(config.server.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.bind))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let app = App::build(&config, local)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        "listening on http://{local}, open {}",
        config.server.public_url
    );
    app.serve(listener, shutdown_signal())
        .await
        .map_err(|e| format!("server: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
