//! loginwith inside your own axum site: a public page, and a `/dashboard` only signed-in
//! people see. loginwith lives below `/auth` (the path of `server.public_url`); everything
//! else is the site's.
//!
//! ```text
//! cargo run --example embed
//! ```
//!
//! Then open <http://localhost:3000/> and choose "Go to your dashboard": without a sign-in it
//! sends you to `/auth?return_to=/dashboard`, through the built-in development stand-in for
//! Facebook, and back to the dashboard.
//!
//! `/ops` is for the `ops` group only (`Accounts::require`): "Continue with Dev OpenID" as Ada
//! (preset in `ops`) opens it; anyone else reads the "may not sign in" page (403).
//!
//! `LOGINWITH_EMBED_PORT` picks another port (0 for any free one: the address is printed).

use std::net::SocketAddr;

use axum::{Router, extract::FromRef, response::Html, routing::get};
use loginwith::{
    Accounts, App, SignedIn,
    config::{AccessConditions, Config, Environment},
};
use tokio::net::TcpListener;

/// The site's own state: whatever it needs, plus loginwith's [`Accounts`] for [`SignedIn`].
#[derive(Clone, FromRef)]
struct Site {
    accounts: Accounts,
}

async fn home(person: Option<SignedIn>) -> Html<String> {
    let greeting = match person {
        Some(person) => format!(
            "<p>Hello again, {}.</p><p><a href=\"/dashboard\">Your dashboard</a></p>",
            escape(person.first_name())
        ),
        None => "<p>Welcome, stranger.</p><p><a href=\"/dashboard\">Go to your dashboard</a> (you will be asked to sign in)</p>".to_owned(),
    };
    page("Example site", &greeting)
}

/// Only for signed-in people: anyone else is sent to sign in, and comes back here.
async fn dashboard(person: SignedIn) -> Html<String> {
    // An address is kept whether or not the provider verified it (Facebook never does): a site
    // that lets people in by address must look at `email_verified` first.
    let address = match (person.email(), person.email_verified()) {
        (Some(email), true) => format!("{} (verified by the provider)", escape(email)),
        (Some(email), false) => format!("{} (not verified by the provider)", escape(email)),
        (None, _) => "none given".to_owned(),
    };
    let body = format!(
        "<h1>Dashboard</h1><p id=\"greeting\">Hi, {}!</p><p>Signed in with {} as person {}.</p>\
         <p>Address: {address}</p><p><a href=\"/auth\">Sign out on the sign-in page</a></p>",
        escape(person.name()),
        escape(person.provider().unwrap_or("a provider")),
        person.id(),
    );
    page("Dashboard", &body)
}

/// Only for the `ops` group: the layer on this route lets nobody else reach the handler.
async fn ops(person: SignedIn) -> Html<String> {
    let groups: Vec<String> = person.groups().map(escape).collect();
    let body = format!(
        "<h1>Operations</h1><p id=\"greeting\">Hi, {}! Your groups: {}.</p>",
        escape(person.first_name()),
        groups.join(", ")
    );
    page("Operations", &body)
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>{body}</body></html>"
    ))
}

/// Names come from the provider and carry markup now and then.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("LOGINWITH_EMBED_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    // The database is a file beside the current folder, like `cargo run`'s; the path ends
    // in `/auth`: loginwith's pages, callbacks and assets all live below it.
    let config = Config::from_toml(
        &format!(
            r#"
            [server]
            public_url = "http://localhost:{port}/auth"
            bind = "{addr}"

            [database]
            url = "sqlite://loginwith-embed.db"

            # App::serve would serve /metrics on its own port; this site serves itself.
            [metrics]
            bind = ""
            "#,
            port = addr.port(),
        ),
        Environment::Development,
    )?;
    loginwith::logging::init(&config);
    let login = App::build(&config, addr).await?;
    // The same condition type as `[access]`, so it could as well come from the site's config.
    let ops_only = login.accounts().require(&AccessConditions {
        groups: vec!["ops".to_owned()],
        ..AccessConditions::default()
    })?;
    let site = Router::new()
        .route("/", get(home))
        .route("/dashboard", get(dashboard))
        .route("/ops", get(ops).route_layer(ops_only))
        .with_state(Site {
            accounts: login.accounts(),
        })
        .merge(login.router());
    println!("example site on http://localhost:{}/", addr.port());
    axum::serve(
        listener,
        // The peer address: loginwith's rate limits count per client.
        site.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
