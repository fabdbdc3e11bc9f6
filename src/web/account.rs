//! Self-service account deletion: a confirmation page and a CSRF-protected POST.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use tracing::info;

use super::{
    AppError, AppState, WebSession,
    pages::{DeleteAccountPage, Page},
    params::FormBody,
};

/// `GET /account/delete`: asks before deleting. Anonymous visitors go home.
pub async fn confirm(
    State(app): State<AppState>,
    session: WebSession,
) -> Result<Response, AppError> {
    let Some(user) = session.user(&app.settings).await? else {
        return Ok(app.settings.redirect("/").into_response());
    };
    let csrf_token = session.csrf_token().await?.unwrap_or_default();
    // The page names what is unlinked: "your Facebook and GitHub accounts".
    let mut names: Vec<String> = Vec::new();
    for identity in app.store.identities(user).await? {
        let name = app
            .providers
            .get(&identity.provider)
            .map_or(identity.provider.clone(), |p| p.display_name().to_owned());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(DeleteAccountPage {
        chrome: app.chrome(),
        csrf_token,
        several: names.len() > 1,
        accounts: accounts_phrase(&names),
    }
    .into_page(StatusCode::OK))
}

/// "Facebook", "Facebook and GitHub", "Facebook, GitHub and Acme SSO".
pub(super) fn accounts_phrase(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `POST /account/delete`: deletes the signed-in person's profile, identities and
/// operations, then signs out.
pub async fn delete(
    State(app): State<AppState>,
    session: WebSession,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let expired = "This form has expired. Go back to the home page and try again from there.";
    let Some(user) = session.form_sender(&app.settings, &body, expired).await? else {
        return Ok(app.settings.redirect("/").into_response());
    };
    let deletion = app.store.delete_user(user).await?;
    info!(
        profile_deleted = deletion.profile_deleted,
        "account deleted by its owner"
    );
    session.sign_out().await?;
    session
        .add_notice(
            "Your account and everything we kept about you were deleted.".to_owned(),
            None,
        )
        .await?;
    Ok(app.settings.redirect("/").into_response())
}

#[cfg(test)]
mod tests {
    use super::accounts_phrase;

    #[test]
    fn accounts_are_named_as_people_write_lists() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(accounts_phrase(&names(&["Facebook"])), "Facebook");
        assert_eq!(
            accounts_phrase(&names(&["Facebook", "GitHub"])),
            "Facebook and GitHub"
        );
        assert_eq!(
            accounts_phrase(&names(&["Facebook", "GitHub", "Acme SSO"])),
            "Facebook, GitHub and Acme SSO"
        );
    }
}
