//! "Where you're signed in" and "Recent activity" on the account page: the person's live
//! sign-ins, each of which they can end, and their last sign-ins and refusals. Ending one is
//! a POST with the session's CSRF token; a session is named in the page by a digest of its
//! id, never by the id (a bearer credential), and only the person's own can be ended.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use tracing::info;

use super::{
    AppError, AppState, WebSession,
    pages::{ActivityRow, DeviceRow, utc_date, utc_hour},
    params::{FormBody, PathParam},
};
use crate::{
    model::now_ms,
    store::{LiveSession, Outcome, UserId},
};

const EXPIRED_FORM: &str =
    "This form has expired. Go back to your account page and try again from there.";

/// How many lines "Recent activity" shows.
const RECENT: u32 = 10;

/// What names a session in the page and in the form that ends it: the first 128 bits of the
/// SHA-256 of its id, hex. It cannot be turned back into the id.
fn reference(session_id: &str) -> String {
    hex::encode(&Sha256::digest(session_id.as_bytes())[..16])
}

/// The person's live sign-ins, this browser's marked, most recently used first.
pub(super) async fn device_rows(
    app: &AppState,
    user: UserId,
    this_session: Option<&str>,
) -> Result<Vec<DeviceRow>, AppError> {
    let sessions = app.store.live_sessions(user, oldest_live(app)).await?;
    Ok(sessions
        .into_iter()
        .map(|session| {
            let this_device = this_session == Some(session.id.as_str());
            DeviceRow {
                reference: reference(&session.id),
                label: session
                    .device
                    .clone()
                    .unwrap_or_else(|| "An unrecognised browser".to_owned()),
                provider: session
                    .provider
                    .as_deref()
                    .map(|p| app.provider_name(p))
                    .unwrap_or_default(),
                since: utc_date(session.since_ms),
                last_used: last_used(session.last_seen_ms, now_ms(), this_device),
                this_device,
            }
        })
        .collect())
}

/// The start of the oldest sign-in still within `session.absolute_days`.
fn oldest_live(app: &AppState) -> i64 {
    now_ms().saturating_sub(crate::model::millis(app.settings.absolute))
}

/// When a sign-in was last used, as precisely as it is kept (to the hour): "now" for this
/// browser, which is using it; "within the past hour"; else the hour.
fn last_used(last_seen_ms: i64, now_ms: i64, this_device: bool) -> String {
    if this_device {
        "now".to_owned()
    } else if now_ms.saturating_sub(last_seen_ms) < 60 * 60 * 1000 {
        "within the past hour".to_owned()
    } else {
        utc_hour(last_seen_ms)
    }
}

/// The person's last sign-ins and refusals, newest first (none when `[audit]` keeps none).
pub(super) async fn activity_rows(
    app: &AppState,
    user: UserId,
) -> Result<Vec<ActivityRow>, AppError> {
    if !app.settings.audit.records() {
        return Ok(Vec::new());
    }
    Ok(app
        .store
        .recent_activity(user, RECENT)
        .await?
        .into_iter()
        .map(|entry| ActivityRow {
            when: utc_date(entry.at_ms),
            refused: entry.outcome == Outcome::Refused,
            provider: app.provider_name(&entry.provider),
            device: entry
                .device
                .unwrap_or_else(|| "an unrecognised browser".to_owned()),
        })
        .collect())
}

/// `POST /account/sessions/{reference}/end`: ends one of the person's other sign-ins. A
/// reference that names none of theirs (another person's, a made-up one, one ended already)
/// ends nothing and says so.
pub async fn end_one(
    State(app): State<AppState>,
    PathParam(target): PathParam<String>,
    session: WebSession,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let sender = session.form_sender(&app.settings, &body, EXPIRED_FORM);
    let Some(user) = sender.await? else {
        return Ok(app.settings.redirect("/").into_response());
    };
    let this = session.id();
    let sessions: Vec<LiveSession> = app.store.live_sessions(user, oldest_live(&app)).await?;
    let chosen = sessions
        .iter()
        .find(|s| reference(&s.id) == target && this.as_deref() != Some(s.id.as_str()));
    let text = match chosen {
        Some(chosen) if app.store.end_session_of(user, &chosen.id).await? => {
            info!(user = %user, "a session ended by its owner from the account page");
            "That device is signed out. It must sign in again to come back."
        }
        _ => "That sign-in had ended already.",
    };
    session.add_notice(text.to_owned(), None).await?;
    Ok(app.settings.redirect("/account").into_response())
}

/// `POST /account/sessions/end-others`: ends every sign-in of the person but this browser's.
pub async fn end_others(
    State(app): State<AppState>,
    session: WebSession,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let sender = session.form_sender(&app.settings, &body, EXPIRED_FORM);
    let Some(user) = sender.await? else {
        return Ok(app.settings.redirect("/").into_response());
    };
    let Some(this) = session.id() else {
        return Ok(app.settings.redirect("/").into_response());
    };
    let ended = app.store.end_sessions_of(user, Some(&this)).await?;
    info!(user = %user, ended, "other sessions ended by their owner");
    let text = match ended {
        0 => "You were signed in on this device only.".to_owned(),
        1 => "Signed out on 1 other device. You are still signed in here.".to_owned(),
        n => format!("Signed out on {n} other devices. You are still signed in here."),
    };
    session.add_notice(text, None).await?;
    Ok(app.settings.redirect("/account").into_response())
}

#[cfg(test)]
mod tests {
    use super::{last_used, reference};

    #[test]
    fn last_use_is_said_as_precisely_as_it_is_kept() {
        let hour = 60 * 60 * 1000;
        // 2026-12-06 20:38 UTC.
        let now = 1_796_589_480_000;
        assert_eq!(last_used(now - 5 * hour, now, true), "now");
        assert_eq!(last_used(now - hour / 2, now, false), "within the past hour");
        assert_eq!(last_used(now - 2 * hour, now, false), "2026-12-06 18:00 UTC");
    }

    #[test]
    fn a_reference_is_fixed_length_hex_and_not_the_id() {
        let id = "Zm9vYmFyYmF6cXV4MTIzNA";
        let r = reference(id);
        assert_eq!(r.len(), 32);
        assert!(r.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!r.contains(id));
        assert_eq!(r, reference(id), "stable");
        assert_ne!(r, reference("another"));
    }
}
