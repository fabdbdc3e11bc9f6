//! The consent dialog, with test users instead of accounts: Facebook's `/dialog/oauth` and
//! the OpenID issuer's `/authorize` are this one page, each answering for its own client
//! through [`Authority`].

use std::sync::Arc;

use askama::Template;
use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use url::Url;

use super::{DEV_CSP, DevProvider, TestUser, app_scoped_id};

/// What the dialog answers for: which client it accepts, where codes go, and how the answer
/// is framed (the Facebook stand-in's, or the OpenID issuer's).
pub(super) trait Authority: Send + Sync + 'static {
    /// The registered client: user ids are scoped to it.
    fn client_id(&self) -> &str;
    /// The client and the exact redirect URI are known; else an error page, never a redirect.
    fn registered(&self, client_id: &str, redirect_uri: &str) -> Result<(), &'static str>;
    /// This authority's own rules on a request already known to come from its client.
    fn check(&self, params: &DialogParams) -> Result<(), &'static str>;
    /// Approve at once, without showing the page (`dev_provider.auto_approve`).
    fn auto_approve(&self) -> bool;
    /// A code for `user`, remembering what the token endpoint will check.
    fn issue_code(&self, params: &DialogParams, user: TestUser) -> String;
    /// RFC 9207: the issuer every answer names in `iss`, when it sends one.
    fn issuer(&self) -> Option<&str>;
    /// What a cancelled dialog sends back besides `state` and `iss`.
    fn denial(&self) -> &'static [(&'static str, &'static str)];
    /// The fragment on every redirect (Facebook appends `#_=_`).
    fn fragment(&self) -> Option<&'static str>;
    /// Whether the consent page asks for groups (the OpenID issuer sends them in a claim).
    /// Whether the answer to `params` is posted (`response_mode=form_post`) rather than a
    /// redirect.
    fn posts_answer(&self, _params: &DialogParams) -> bool {
        false
    }

    /// A `user` field to post beside the code (Apple's, the first time only).
    fn user_field(&self, _user: &TestUser) -> Option<String> {
        None
    }

    fn sends_groups(&self) -> bool {
        false
    }
}

/// The dialog's parameters, as the client sends them and the form carries them on.
#[derive(Deserialize, Default)]
pub(super) struct DialogParams {
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub response_type: String,
    pub state: Option<String>,
    #[serde(default)]
    pub scope: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// OpenID Connect's, carried into the ID token; Facebook ignores it.
    pub nonce: Option<String>,
    /// `form_post` asks for the answer to be posted (Sign in with Apple's mode requires it).
    pub response_mode: Option<String>,
}

/// What the person chose on the consent page.
#[derive(Deserialize)]
struct Decision {
    #[serde(flatten)]
    dialog: DialogParams,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
    /// Groups, separated by commas or spaces (the OpenID issuer's `groups` claim).
    #[serde(default)]
    groups: String,
    /// `allow` or `cancel`.
    #[serde(default)]
    decision: String,
    /// One of the ready-made test users, overriding the typed fields.
    preset: Option<String>,
    /// The "not verified" box: the OpenID Connect mode then says `email_verified: false`.
    #[serde(default)]
    email_unverified: Option<String>,
}

/// From either page of the dialog, `{dev}/dialog/oauth` or `{dev}{OIDC_PATH}/authorize` (`{dev}`
/// being `{base}/dev/facebook`), three segments up is loginwith's root below its mount path,
/// where `static/` is. Relative, because the dialog knows neither the mount path nor, run on
/// its own as `examples/facebook_stand_in`, any app at all.
const TO_APP_ROOT: &str = "../../../";

/// The URL of a file under `static/` for the dialog's pages (`templates/dev/`), below the
/// mount path wherever loginwith is mounted.
pub(crate) fn asset(path: &str) -> String {
    format!(
        "{TO_APP_ROOT}{}",
        crate::web::assets::url(path).trim_start_matches('/')
    )
}

/// Ready-made people: one with an email, one with another, one without (phone-only); at the
/// OpenID issuer, Ada is in `ops` and `admins`, Grace in `admins`, Alan in none.
const PRESETS: [(&str, &str, &str, &str, &str); 3] = [
    ("ada", "Ada", "Lovelace", "ada@example.com", "ops admins"),
    ("grace", "Grace", "Hopper", "grace@example.com", "admins"),
    ("alan", "Alan", "Turing", "", ""),
];

#[derive(Template)]
#[template(path = "dev/consent.html")]
struct ConsentPage<'a> {
    params: &'a DialogParams,
    scope_list: Vec<&'a str>,
    /// The OpenID mode: the page also asks for groups and whether the address is verified
    /// (the Facebook stand-in has neither, as Facebook has neither).
    openid: bool,
}

#[derive(Template)]
#[template(path = "dev/problem.html")]
struct DialogProblem {
    message: &'static str,
}

/// `GET /dialog/oauth` (or `/authorize`): checks the client and the redirect URI, then shows
/// the consent page.
pub(super) async fn show<A: Authority>(
    State(dev): State<Arc<A>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params: DialogParams = match serde_urlencoded::from_str(&query.unwrap_or_default()) {
        Ok(params) => params,
        Err(_) => return problem("The dialog's parameters are malformed or repeated."),
    };
    if let Err(message) = validate(&*dev, &params) {
        return problem(message);
    }
    if dev.auto_approve() {
        let email = dev_user_cookie(&headers).unwrap_or_else(|| "ada@example.com".to_owned());
        let first = email.split('@').next().unwrap_or("Ada").to_owned();
        let decision = Decision {
            dialog: params,
            first_name: first,
            last_name: "Test".to_owned(),
            email,
            groups: String::new(),
            decision: "allow".to_owned(),
            preset: None,
            email_unverified: None,
        };
        return answer(&*dev, &decision);
    }
    let page = ConsentPage {
        params: &params,
        scope_list: params
            .scope
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .collect(),
        openid: dev.sends_groups(),
    };
    render(StatusCode::OK, page.render())
}

/// `POST /dialog/oauth` (or `/authorize`): Allow sends a fresh code back, Cancel sends
/// `access_denied`; both to the exact redirect URI, with `state` (and, from Facebook, the
/// `#_=_` fragment).
pub(super) async fn decide<A: Authority>(State(dev): State<Arc<A>>, body: Bytes) -> Response {
    let decision: Decision = match serde_urlencoded::from_bytes(&body) {
        Ok(decision) => decision,
        Err(_) => return problem("The consent form was malformed."),
    };
    answer(&*dev, &decision)
}

/// Sends the browser back to the client with a code, or with `access_denied`.
fn answer(dev: &impl Authority, decision: &Decision) -> Response {
    let params = &decision.dialog;
    if let Err(message) = validate(dev, params) {
        return problem(message);
    }
    let Ok(mut target) = Url::parse(&params.redirect_uri) else {
        return problem("The redirect URI is not a URL.");
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if decision.decision == "cancel" {
        pairs.extend(
            dev.denial()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
    } else {
        let Some(user) = chosen_user(dev.client_id(), decision) else {
            return problem("Type at least a first name, or pick a test user.");
        };
        let user_field = dev.user_field(&user);
        let code = dev.issue_code(params, user);
        pairs.push(("code".to_owned(), code));
        if let Some(field) = user_field {
            pairs.push(("user".to_owned(), field));
        }
    }
    if let Some(state) = &params.state {
        pairs.push(("state".to_owned(), state.clone()));
    }
    if let Some(issuer) = dev.issuer() {
        pairs.push(("iss".to_owned(), issuer.to_owned()));
    }
    if dev.posts_answer(params) {
        return super::apple::form_post(target.as_str(), &pairs);
    }
    target.query_pairs_mut().extend_pairs(&pairs);
    target.set_fragment(dev.fragment());
    Redirect::to(target.as_str()).into_response()
}

/// The `dev_user` cookie: the email a scripted client signs in as.
fn dev_user_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("dev_user="))
        .filter(|email| !email.is_empty() && email.len() <= 200)
        .map(str::to_owned)
}

fn validate(dev: &impl Authority, params: &DialogParams) -> Result<(), &'static str> {
    dev.registered(&params.client_id, &params.redirect_uri)?;
    if params.response_type != "code" {
        return Err("response_type must be \"code\" for the server-side flow.");
    }
    match (
        &params.code_challenge,
        params.code_challenge_method.as_deref(),
    ) {
        (None, None) => {}
        (Some(challenge), Some("S256")) if challenge.len() == 43 => {}
        _ => {
            return Err(
                "code_challenge must be a 43-character S256 challenge with code_challenge_method=S256.",
            );
        }
    }
    dev.check(params)
}

/// Facebook's dialog.
impl Authority for DevProvider {
    fn client_id(&self) -> &str {
        &self.settings.client_id
    }

    fn registered(&self, client_id: &str, redirect_uri: &str) -> Result<(), &'static str> {
        DevProvider::registered(self, client_id, redirect_uri)
    }

    fn check(&self, _: &DialogParams) -> Result<(), &'static str> {
        Ok(())
    }

    fn auto_approve(&self) -> bool {
        self.settings.auto_approve
    }

    fn issue_code(&self, params: &DialogParams, user: TestUser) -> String {
        DevProvider::issue_code(
            self,
            params.redirect_uri.clone(),
            params.code_challenge.clone(),
            user,
        )
    }

    fn issuer(&self) -> Option<&str> {
        self.settings.issuer.as_deref()
    }

    fn denial(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("error", "access_denied"),
            ("error_code", "200"),
            ("error_description", "Permissions error"),
            ("error_reason", "user_denied"),
        ]
    }

    fn fragment(&self) -> Option<&'static str> {
        Some("_=_")
    }
}

fn chosen_user(client_id: &str, decision: &Decision) -> Option<TestUser> {
    let (first, last, email, groups) = match decision.preset.as_deref() {
        Some(preset) => PRESETS
            .iter()
            .find(|(key, ..)| *key == preset)
            .map(|(_, first, last, email, groups)| (*first, *last, *email, *groups))?,
        None => (
            decision.first_name.trim(),
            decision.last_name.trim(),
            decision.email.trim(),
            decision.groups.as_str(),
        ),
    };
    if first.is_empty() {
        return None;
    }
    let key = if email.is_empty() {
        format!("{first} {last}")
    } else {
        email.to_owned()
    };
    Some(TestUser {
        id: app_scoped_id(client_id, &key),
        first_name: first.to_owned(),
        last_name: last.to_owned(),
        email: (!email.is_empty()).then(|| email.to_owned()),
        groups: groups
            .split([',', ' '])
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        email_verified: decision.email_unverified.is_none(),
    })
}

/// Like Facebook: a bad client or redirect URI gets an error page here, never a redirect.
fn problem(message: &'static str) -> Response {
    render(StatusCode::BAD_REQUEST, DialogProblem { message }.render())
}

fn render(status: StatusCode, html: Result<String, askama::Error>) -> Response {
    match html {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DEV_CSP),
            );
            response
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::asset;
    use crate::{config::DEV_PROVIDER_PATH, dev_provider::OIDC_PATH};

    #[test]
    fn the_dialogs_assets_resolve_below_the_mount_path() {
        for base in ["", "/auth", "/a/b"] {
            for page in ["/dialog/oauth", &format!("{OIDC_PATH}/authorize")] {
                let url = format!("http://h.example{base}{DEV_PROVIDER_PATH}{page}?client_id=x");
                let resolved = Url::parse(&url)
                    .unwrap()
                    .join(&asset("css/app.css"))
                    .unwrap();
                assert!(
                    resolved
                        .as_str()
                        .starts_with(&format!("http://h.example{base}/static/css/app.css?v=")),
                    "{url}: {resolved}"
                );
            }
        }
    }
}
