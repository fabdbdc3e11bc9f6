//! The command line: `loginwith [serve]`, `loginwith check`, `loginwith migrate`,
//! `loginwith rotate-key`, `loginwith users …`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use loginwith::{
    App,
    config::{Config, Sources},
    users::{Filter, Person, UsersCommand},
};
use tracing::info;

/// Sign in with Facebook, Google, GitHub or any OpenID Connect issuer, in front of your site.
///
/// Configuration: the built-in defaults, config/production.toml's when LOGINWITH_ENV=production,
/// the file of --config (or LOGINWITH_CONFIG), then LOGINWITH_<SECTION>__<KEY> variables.
#[derive(Parser)]
#[command(name = "loginwith", version)]
pub struct Cli {
    /// A TOML file with settings over the defaults (also LOGINWITH_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Load and validate the configuration, print it with secrets redacted, and the URLs to
    /// register at each provider; try the database and each OpenID Connect issuer; exit 1
    /// when anything is wrong.
    Check,
    /// Apply the database migrations and exit.
    Migrate,
    /// Seal sign-ins in progress with a new key (kept in the database and shared by every
    /// instance); those sealed with the previous key stay valid for an hour.
    RotateKey,
    /// People: list and show them, end their sessions, block, unblock or delete them (on
    /// the configured database, while instances serve).
    #[command(subcommand)]
    Users(UsersArgs),
}

/// `loginwith users …`. A person is named by id (`users list` shows ids) or by address.
#[derive(Subcommand)]
enum UsersArgs {
    /// Who exists: their identities, live sessions and whether they are blocked.
    List {
        /// Only the people with this address.
        #[arg(long, value_name = "ADDR", conflicts_with = "provider")]
        email: Option<String>,
        /// Only the people with an identity at this provider (its configuration name).
        #[arg(long, value_name = "NAME")]
        provider: Option<String>,
        /// At most this many (oldest first).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// One person: identities, sessions, block and recent activity.
    Show {
        /// The person's id or address.
        #[arg(value_name = "ID|EMAIL")]
        person: Person,
        /// JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// End every session of that person now, on every instance.
    SignOut {
        /// The person's id or address.
        #[arg(value_name = "ID|EMAIL")]
        person: Person,
    },
    /// End every session of that person and refuse their sign-ins until unblocked.
    Block {
        /// The person's id or address.
        #[arg(value_name = "ID|EMAIL")]
        person: Person,
        /// Why, kept with the block (shown by `users show`).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Let a blocked person sign in again.
    Unblock {
        /// The person's id or address.
        #[arg(value_name = "ID|EMAIL")]
        person: Person,
    },
    /// Delete the person: the same deletion as their own "Delete my account".
    Delete {
        /// The person's id or address.
        #[arg(value_name = "ID|EMAIL")]
        person: Person,
    },
}

impl From<UsersArgs> for UsersCommand {
    fn from(args: UsersArgs) -> Self {
        match args {
            UsersArgs::List {
                email,
                provider,
                limit,
                json,
            } => Self::List {
                filter: match (email, provider) {
                    (Some(email), _) => Filter::Email(email),
                    (None, Some(provider)) => Filter::Provider(provider),
                    (None, None) => Filter::Everyone,
                },
                limit,
                json,
            },
            UsersArgs::Show { person, json } => Self::Show { person, json },
            UsersArgs::SignOut { person } => Self::SignOut { person },
            UsersArgs::Block { person, reason } => Self::Block { person, reason },
            UsersArgs::Unblock { person } => Self::Unblock { person },
            UsersArgs::Delete { person } => Self::Delete { person },
        }
    }
}

impl Cli {
    /// Runs the chosen command; `Err` is the one message to print before exiting with 1.
    pub async fn run(self) -> Result<(), String> {
        // A configuration that cannot be read is reported on its own (by `main`), before
        // any log line: there is no log format yet.
        let config =
            Config::load(&Sources::from_process(self.config)).map_err(|e| e.to_string())?;
        loginwith::logging::init(&config);
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(&config).await,
            Command::Check => {
                print!("{}", config.report());
                // What start-up would find: the database, and each OpenID Connect issuer.
                let database = loginwith::check_database(&config).await;
                if let Ok(state) = &database {
                    println!("# database now: {state}");
                }
                let issuers = loginwith::check_issuers(&config).await;
                if let Ok(lines) = &issuers {
                    lines.iter().for_each(|line| println!("{line}"));
                }
                let problems: Vec<String> = database
                    .err()
                    .into_iter()
                    .chain(issuers.err().into_iter().flatten())
                    .collect();
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems.join("\n"))
                }
            }
            Command::Users(args) => {
                println!("{}", loginwith::users::run(&config, args.into()).await?);
                Ok(())
            }
            Command::RotateKey => {
                println!("{}", loginwith::rotate_sealing_key(&config).await?);
                Ok(())
            }
            Command::Migrate => {
                loginwith::migrate(&config)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("migrations applied to {}", config.database_description());
                Ok(())
            }
        }
    }
}

async fn serve(config: &Config) -> Result<(), String> {
    info!(
        version = env!("CARGO_PKG_VERSION"),
        environment = config.environment.name(),
        database = %config.database_description(),
        "starting"
    );
    let listener = tokio::net::TcpListener::bind(config.server.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.bind))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let app = App::build(config, local).await.map_err(|e| e.to_string())?;
    for line in config.registrations() {
        info!("provider {line}");
    }
    if let Some(metrics) = app.metrics_addr() {
        info!("metrics on http://{metrics}/metrics");
    }
    // Before the listening line: a SIGTERM sent the moment it appears is a clean stop, not
    // the signal's default (death).
    let signal = shutdown_signal();
    info!("listening on {local}; people open {}", config.public_url());
    app.serve(listener, signal)
        .await
        .map_err(|e| format!("server: {e}"))?;
    info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM (systemd's stop, a container's stop). SIGTERM's handler is installed
/// when this is called, not when the future is first polled.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async {
            match terminate {
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
        info!("shutting down: no new connections; draining the requests and sign-ins in flight");
    }
}
