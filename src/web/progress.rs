//! The wait after the callback: the preloader, its status endpoint, and the two ways out.

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

use serde::Deserialize;
use tokio::time::Instant;
use tracing::info;

use super::{
    AppError, AppState, WebSession,
    pages::{ErrorPage, NotAllowedPage, Page, PreloaderPage},
    params::Query,
    pre_sign_in::{PreSignIn, Waiting},
};
use crate::store::{Consumed, Operation, OperationId, OperationStatus, Outcome};

impl AppState {
    /// The operation this browser waits for (see [`Self::read_operation`]).
    async fn waited_operation(&self, pre: &PreSignIn) -> Result<Option<Operation>, AppError> {
        match pre.waiting() {
            Some(waiting) => self.read_operation(waiting.operation).await,
            None => Ok(None),
        }
    }

    /// An operation read with the orphan check; a finished one's status is remembered for
    /// the polls after it (see `OperationEvents::remember`).
    async fn read_operation(&self, id: OperationId) -> Result<Option<Operation>, AppError> {
        let operation = self
            .store
            .operation(id, self.settings.exchange_timeout)
            .await?;
        if let Some(operation) = &operation {
            self.events.remember(operation.id, operation.status);
        }
        Ok(operation)
    }
}

/// `GET /preloader`: the spinner while pending. Once the operation is finished it sends the
/// browser on directly, which is also what the `<noscript>` refresh relies on. The operation
/// comes from the pre-sign-in cookie: no session is read.
pub async fn preloader(
    State(app): State<AppState>,
    pre: PreSignIn,
) -> Result<Response, AppError> {
    let Some(waiting) = pre.waiting() else {
        return Ok(app.settings.redirect("/").into_response());
    };
    // Running or finished here a moment ago: known without a read.
    let status = match app.events.known(waiting.operation) {
        Some(status) => status,
        None => match app.read_operation(waiting.operation).await? {
            Some(operation) => operation.status,
            None => return Ok(app.settings.redirect("/").into_response()),
        },
    };
    Ok(match status {
        OperationStatus::Ok => app.settings.redirect("/success").into_response(),
        OperationStatus::Error => app.settings.redirect("/error").into_response(),
        OperationStatus::Pending => PreloaderPage {
            chrome: app.chrome(),
            provider_name: app.provider_name(&waiting.provider),
            poll_interval_ms: app.settings.poll_interval_ms,
            poll_limit_secs: app.settings.poll_limit_secs,
            refresh_secs: app.settings.poll_interval_ms.div_ceil(1000).max(1),
        }
        .into_page(StatusCode::OK),
    })
}

/// The longest `/get-status?wait=` honoured, in seconds.
const MAX_WAIT_SECS: u64 = 30;

/// `/get-status`'s only parameter: how long to wait for the operation to leave `pending`.
#[derive(Deserialize)]
pub struct StatusQuery {
    wait: Option<u64>,
}

/// `GET /get-status[?wait=SECONDS]`: `pending`, `ok` or `error` for the operation this
/// browser's pre-sign-in cookie waits for. With `wait` (at most 30) it answers the moment the
/// operation leaves `pending`, or `pending` when the wait ends, or at once with what it knows
/// when shutdown begins (the preloader asks again, and reaches another instance). Reads
/// only, and no session: one indexed read, or none for an exchange this instance finished a
/// moment ago.
pub async fn get_status(
    State(app): State<AppState>,
    Query(query): Query<StatusQuery>,
    pre: PreSignIn,
) -> Response {
    match status_of(&app, &query, &pre).await {
        Ok(response) => response,
        // The preloader reads text: a 503 it retries (the exchange may still finish, and the
        // database come back), never an HTML page.
        Err(error) if error.is_store_unavailable() => error.unavailable_text(),
        Err(error) => error.into_response(),
    }
}

async fn status_of(
    app: &AppState,
    query: &StatusQuery,
    pre: &PreSignIn,
) -> Result<Response, AppError> {
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let status = match pre.waiting() {
        Some(waiting) => wait_for_status(app, waiting.operation, wait).await?,
        None => None,
    };
    let (code, body) = match status {
        Some(status) => (StatusCode::OK, status.code()),
        None => (StatusCode::NOT_FOUND, OperationStatus::Error.code()),
    };
    Ok((
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response())
}

/// The operation's status once it is no longer pending, or when `wait` has passed, or as
/// it is when shutdown begins. A finished operation's status never changes, so one this
/// instance finished a moment ago is answered from memory.
async fn wait_for_status(
    app: &AppState,
    id: OperationId,
    wait: Duration,
) -> Result<Option<OperationStatus>, AppError> {
    let deadline = Instant::now() + wait;
    let subscription = (!wait.is_zero()).then(|| app.events.subscribe(id));
    // Counted in `loginwith_long_poll_waiters` until it answers (or the client goes away).
    let _waiting = subscription
        .as_ref()
        .map(|_| crate::telemetry::InFlight::long_poll());
    loop {
        // Enabled before the read, so a finish between the read and the wait still wakes us.
        let notified = subscription.as_ref().map(|s| s.notify().notified());
        tokio::pin!(notified);
        if let Some(notified) = notified.as_mut().as_pin_mut() {
            notified.enable();
        }
        // Running here (pending), or finished here a moment ago: known without a read.
        let status = match app.events.known(id) {
            Some(status) => status,
            None => match app.read_operation(id).await? {
                Some(operation) => operation.status,
                None => return Ok(None),
            },
        };
        let now = Instant::now();
        if status != OperationStatus::Pending || now >= deadline || app.shutdown.is_draining() {
            return Ok(Some(status));
        }
        // Re-read now and then: the exchange may be running on another instance, whose
        // notification never reaches this one.
        let pause = app.settings.status_recheck.min(deadline - now);
        let woken = async {
            match notified.as_mut().as_pin_mut() {
                Some(notified) => {
                    let _ = tokio::time::timeout(pause, notified).await;
                }
                None => tokio::time::sleep(pause).await,
            }
        };
        // Shutdown wakes it too; the loop then reads once more and answers.
        tokio::select! {
            () = woken => {}
            () = app.shutdown.draining() => {}
        }
    }
}

/// `GET /success`: signs the person in when their operation is `ok`; the pre-sign-in cookie
/// is cleared then.
pub async fn success(
    State(app): State<AppState>,
    session: WebSession,
    mut pre: PreSignIn,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let user_agent = headers.get(header::USER_AGENT).map(|v| v.as_bytes());
    let device = crate::model::device::label(
        crate::model::device::user_agent(user_agent).as_deref(),
    );
    let answer = finish_waiting(&app, &session, &mut pre, device).await?;
    Ok(pre.attach(answer))
}

async fn finish_waiting(
    app: &AppState,
    session: &WebSession,
    pre: &mut PreSignIn,
    device: Option<String>,
) -> Result<Response, AppError> {
    let Some(waiting) = pre.waiting().cloned() else {
        // Nothing to finish. Written nowhere: this may be a late request of a tab whose
        // sign-in another tab finished, and a new session here would replace the signed-in
        // cookie.
        if session.user(&app.settings).await?.is_some() {
            return Ok(app.settings.redirect("/").into_response());
        }
        return Ok(app.settings.redirect(NOTHING_TO_FINISH).into_response());
    };
    let id = waiting.operation;
    // The usual case first, in one statement: the operation is `ok` and this request takes
    // it. Exactly one request signs in per exchange.
    if let Some(done) = app.store.consume_operation(id).await? {
        return finish(app, session, pre, waiting, done, device).await;
    }
    // Not taken: read why (the orphan check included).
    match app.read_operation(id).await? {
        Some(Operation {
            status: OperationStatus::Ok,
            ..
        }) => {
            // It may have finished between the two statements (pending when the first ran):
            // then it is still there to take.
            if let Some(done) = app.store.consume_operation(id).await? {
                return finish(app, session, pre, waiting, done, device).await;
            }
            // Taken already: the others carried the same pre-sign-in cookie (another tab, or
            // someone who copied it). They sign nothing in and go home, where the browser
            // that won is already greeted.
            pre.stop_waiting();
            Ok(app.settings.redirect("/").into_response())
        }
        // Not finished yet (someone came here early): keep waiting rather than fail a
        // sign-in that is about to succeed.
        Some(Operation {
            status: OperationStatus::Pending,
            ..
        }) => Ok(app.settings.redirect("/preloader").into_response()),
        // Failed: the error page reads the reason from the operation.
        Some(_) => Ok(app.settings.redirect("/error").into_response()),
        // Deleted by housekeeping meanwhile: as if there were nothing to finish.
        None => {
            pre.stop_waiting();
            if session.user(&app.settings).await?.is_some() {
                return Ok(app.settings.redirect("/").into_response());
            }
            Ok(app.settings.redirect(NOTHING_TO_FINISH).into_response())
        }
    }
}

/// What `/success` does with the operation it took: signs the person in, or, for an identity
/// added from "Sign-in methods", tells its owner (nobody is signed in by a link, whatever the
/// session holds).
async fn finish(
    app: &AppState,
    session: &WebSession,
    pre: &mut PreSignIn,
    waiting: Waiting,
    done: Consumed,
    device: Option<String>,
) -> Result<Response, AppError> {
    if let Some(owner) = done.link_for {
        pre.stop_waiting();
        let current = session.link_owner(&app.settings).await?;
        if current.is_none_or(|current| current.user != owner || Some(current) != waiting.link_for)
        {
            return Ok(app.settings.redirect("/").into_response());
        }
        let text = format!(
            "{} was added to your sign-in methods. You can now sign in with it too.",
            app.provider_name(&done.provider)
        );
        session.add_notice(text, None).await?;
        return Ok(app.settings.redirect("/account").into_response());
    }
    let recording = app.settings.audit.records();
    if done.blocked {
        // An operator blocked the person after the exchange found them: refused like
        // someone `[access]` does not let in, and told the same way.
        pre.clear();
        info!(provider = %done.provider, "sign-in refused: the person is blocked");
        if recording {
            record(app, done.user, Outcome::Refused, &done.provider, device.as_deref()).await;
        }
        return Ok(NotAllowedPage {
            chrome: app.chrome(),
            host: None,
            who: NotAllowedPage::who(None),
            provider: app.provider_name(&done.provider),
            another_href: app.settings.path("/"),
            logout: None,
            logout_href: None,
        }
        .into_page(StatusCode::FORBIDDEN));
    }
    // Checked when the sign-in began, and again against today's rules.
    let target = waiting
        .return_to
        .and_then(|raw| super::return_to::allowed_target(&raw, &app.settings.return_rules));
    if recording {
        record(app, done.user, Outcome::SignedIn, &done.provider, device.as_deref()).await;
    }
    session
        .sign_in(
            done.user,
            &done.provider,
            done.membership,
            device,
            done.provider_sid,
        )
        .await?;
    pre.clear();
    Ok(app
        .settings
        .redirect_to_target(target.as_deref())
        .into_response())
}

/// Adds to the person's recent activity. The operation is taken already, so a failure here
/// must not cost the person their sign-in: it is logged, and the sign-in goes on.
async fn record(
    app: &AppState,
    user: crate::store::UserId,
    outcome: Outcome,
    provider: &str,
    device: Option<&str>,
) {
    if let Err(e) = app.store.record_activity(user, outcome, provider, device).await {
        e.log_skipped("could not add the sign-in to the person's recent activity");
    }
}

/// Where `/success` sends a browser with nothing to finish.
const NOTHING_TO_FINISH: &str = "/error?why=nothing-to-finish";

/// The error page's only parameter: one of a fixed set of reasons, never text to show.
#[derive(Deserialize)]
pub struct ErrorQuery {
    why: Option<String>,
}

/// `GET /error`: why the sign-in did not work, in the person's words, and a way back in.
pub async fn error_page(
    State(app): State<AppState>,
    Query(query): Query<ErrorQuery>,
    session: WebSession,
    mut pre: PreSignIn,
) -> Result<Response, AppError> {
    let answer = explain(&app, &query, &session, &mut pre).await?;
    Ok(pre.attach(answer))
}

async fn explain(
    app: &AppState,
    query: &ErrorQuery,
    session: &WebSession,
    pre: &mut PreSignIn,
) -> Result<Response, AppError> {
    let notices = session.take_notices().await?;
    let mut retry_provider = notices.iter().find_map(|n| n.provider.clone());
    let mut messages: Vec<String> = notices.into_iter().map(|n| n.text).collect();
    // A failed link leaves the person signed in: they try again from "Sign-in methods".
    let mut linking = false;
    let mut return_to = None;
    if let Some(declined) = pre.take_declined() {
        let name = app.provider_name(&declined.provider);
        messages.push(if declined.cancelled {
            format!("You cancelled signing in with {name}. Nothing was shared.")
        } else {
            format!("{name} could not sign you in. Please try again.")
        });
        retry_provider.get_or_insert(declined.provider);
        return_to = declined.return_to;
    }
    let waiting = pre.waiting().cloned();
    if let Some(waiting) = &waiting {
        return_to = waiting.return_to.clone();
        linking |= waiting.link_for.is_some();
    }
    // "Try again" goes where the failed sign-in was going; checked against today's rules.
    let return_to =
        return_to.and_then(|raw| super::return_to::allowed_target(&raw, &app.settings.return_rules));
    if let Some(operation) = app.waited_operation(pre).await? {
        let name = app.provider_name(&operation.provider);
        if operation.status == OperationStatus::Error
            && operation.error == Some(crate::auth::FailureReason::NotAllowed)
            && operation.link_for.is_none()
        {
            // The address is this process's to show once (never stored); the person goes
            // back to the buttons to choose another account, `return_to` kept.
            let email = app.exchanger.refusals().take(operation.id).flatten();
            pre.stop_waiting();
            let mut another_href = app.settings.path("/");
            if let Some(target) = return_to {
                another_href.push('?');
                another_href.push_str(
                    &url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("return_to", &target)
                        .finish(),
                );
            }
            return Ok(NotAllowedPage {
                chrome: app.chrome(),
                host: None,
                who: NotAllowedPage::who(email.as_deref()),
                provider: name,
                another_href,
                logout: None,
                logout_href: None,
            }
            .into_page(StatusCode::FORBIDDEN));
        }
        match operation.status {
            OperationStatus::Ok => return Ok(app.settings.redirect("/success").into_response()),
            OperationStatus::Error => messages.push(
                operation
                    .error
                    .unwrap_or(crate::auth::FailureReason::Internal)
                    .message(&name),
            ),
            OperationStatus::Pending => messages.push(format!(
                "{name} is taking longer than usual to answer. Please try again in a moment."
            )),
        }
        retry_provider.get_or_insert(operation.provider);
        linking |= operation.link_for.is_some();
    }
    pre.stop_waiting();
    if messages.is_empty() {
        // Nothing failed here: another tab finished the sign-in this one was waiting for
        // (its /success then found nothing left to finish).
        if session.user(&app.settings).await?.is_some() {
            return Ok(app.settings.redirect("/").into_response());
        }
        messages.push(if query.why.as_deref() == Some("nothing-to-finish") {
            "There is no sign-in to finish. Please start again.".to_owned()
        } else {
            "The sign-in did not complete. Please try again.".to_owned()
        });
    }
    let chrome = app.chrome();
    let retry_href = if linking {
        app.settings.path("/account")
    } else {
        let start = retry_provider
            .filter(|p| app.providers.get(p).is_some())
            .map_or_else(|| "/".to_owned(), |p| format!("/authorize/{p}"));
        let mut href = app.settings.path(&start);
        if let Some(target) = return_to {
            href.push('?');
            href.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", &target)
                    .finish(),
            );
        }
        href
    };
    Ok(ErrorPage {
        chrome,
        messages,
        retry_href,
    }
    .into_page(StatusCode::OK))
}
