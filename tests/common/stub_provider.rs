//! A provider that only starts sign-ins (its dialog is somewhere nobody goes) and refuses every
//! exchange: for tests about buttons, paths and mix-ups, where no sign-in has to finish.

use std::sync::Arc;

use loginwith::auth::{
    BoxFuture, ExchangeError, FailureReason, LoginSecrets, Profile, Provider, Unavailable,
};
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge};
use url::Url;

pub struct StubProvider {
    pub id: &'static str,
    pub display_name: &'static str,
    /// Where `/authorize/{id}` sends the browser (with `state` added).
    pub dialog: &'static str,
    /// An OpenID Connect issuer it stands for, whose brand it then wears (Google's for
    /// `https://accounts.google.com`); its `iss` is checked but not required, as Google's.
    pub issuer: Option<&'static str>,
}

impl StubProvider {
    /// A provider of no brand and no issuer.
    pub fn plain(
        id: &'static str,
        display_name: &'static str,
        dialog: &'static str,
    ) -> Arc<dyn Provider> {
        Arc::new(Self {
            id,
            display_name,
            dialog,
            issuer: None,
        })
    }
}

impl Provider for StubProvider {
    fn id(&self) -> &str {
        self.id
    }
    fn display_name(&self) -> &str {
        self.display_name
    }
    fn brand(&self) -> Option<loginwith::ProviderBrand> {
        self.issuer.and_then(loginwith::config::oidc_brand)
    }
    fn issuer(&self) -> Option<&str> {
        self.issuer
    }
    fn issuer_required(&self) -> bool {
        false
    }
    fn authorization_url(
        &self,
        state: &CsrfToken,
        _: &PkceCodeChallenge,
        _: &str,
    ) -> Result<Url, Unavailable> {
        Ok(Url::parse_with_params(self.dialog, [("state", state.secret())]).expect("a test URL"))
    }
    fn exchange(
        &self,
        _: AuthorizationCode,
        _: LoginSecrets,
    ) -> BoxFuture<'_, Result<Profile, ExchangeError>> {
        Box::pin(async { Err(ExchangeError::new(FailureReason::Denied, "test provider")) })
    }
}
