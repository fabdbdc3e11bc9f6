//! `[providers.<name>]`: one table per identity provider, the table's name being the
//! provider's name (`/authorize/<name>`, `/callback/<name>`, the `provider` column).
//!
//! Each table is one flat struct with optional fields, checked per `kind` in
//! [`ProvidersConfig::problems`], rather than an enum tagged on `kind`: serde would stop at
//! the first unknown kind with its own wording, where validation reports every problem at
//! once naming the key (`providers.corp.kind`), and one flat set of keys is what the
//! unknown-key walk in `problems.rs` compares each table against.
//!
//! Longer than the 400 lines a file here aims for: every provider kind's keys, defaults and
//! per-kind rules in one table, so adding a kind is one place in the configuration.

use crate::model::ProviderBrand;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser::SerializeMap};
use url::Url;

pub use super::presets::Preset;
use super::{Problem, invalid, redacted, text};

/// The names `config/default.toml` ships, in the order their buttons appear. Other names
/// follow, sorted: figment merges layers into sorted maps, so the order tables were written
/// in does not survive and the order is defined here instead.
pub const SHIPPED: [&str; 9] = [
    "facebook",
    "google",
    "github",
    "apple",
    "microsoft",
    "x",
    "discord",
    "gitlab",
    "linkedin",
];

/// Facebook's endpoints, for a `kind = "facebook"` table that does not name them.
pub const FACEBOOK_AUTHORIZE_URL: &str = "https://www.facebook.com/v25.0/dialog/oauth";
pub const FACEBOOK_TOKEN_URL: &str = "https://graph.facebook.com/v25.0/oauth/access_token";
pub const FACEBOOK_API_URL: &str = "https://graph.facebook.com/v25.0";
/// GitHub's endpoints, for a `kind = "github"` table that does not name them.
pub const GITHUB_AUTHORIZE_URL: &str = "https://github.com/login/oauth/authorize";
pub const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
pub const GITHUB_API_URL: &str = "https://api.github.com";
/// Google's OpenID Connect issuer, exactly as its discovery document names it.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// Apple's issuer, for a `kind = "apple"` table that does not name one.
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";
/// Where Microsoft Entra ID's tenants are, for a `kind = "microsoft"` table without an
/// `authority` (national clouds have their own).
pub const MICROSOFT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// X's endpoints, for a `kind = "x"` table that does not name them.
pub const X_AUTHORIZE_URL: &str = "https://x.com/i/oauth2/authorize";
pub const X_TOKEN_URL: &str = "https://api.x.com/2/oauth2/token";
pub const X_API_URL: &str = "https://api.x.com/2";
/// Discord's endpoints, for a `kind = "discord"` table that does not name them.
pub const DISCORD_AUTHORIZE_URL: &str = "https://discord.com/oauth2/authorize";
pub const DISCORD_TOKEN_URL: &str = "https://discord.com/api/oauth2/token";
pub const DISCORD_API_URL: &str = "https://discord.com/api/v10";

/// The brand an OpenID Connect issuer's button wears: Google's for Google's own issuer,
/// compared byte for byte (as discovery compares it), and none for any other issuer, so that
/// Google's mark only ever leads to Google. Not configurable: a `brand` key would let any
/// issuer dress up as Google.
pub fn oidc_brand(issuer: &str) -> Option<ProviderBrand> {
    (issuer == GOOGLE_ISSUER).then_some(ProviderBrand::Google)
}

/// What protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderKind {
    /// Facebook Login (OAuth 2.0 and the Graph API).
    Facebook,
    /// Any OpenID Connect issuer, found through discovery.
    Oidc,
    /// GitHub's OAuth apps.
    Github,
    /// Sign in with Apple: OpenID Connect with a signed client secret and a posted answer.
    Apple,
    /// Microsoft Entra ID (work, school and personal accounts): OpenID Connect with one
    /// issuer per tenant.
    Microsoft,
    /// X (Twitter): OAuth 2.0 with PKCE and the v2 API.
    X,
    /// Discord: OAuth 2.0 and its API's `/users/@me`.
    Discord,
}

impl ProviderKind {
    fn parse(kind: &str) -> Option<Self> {
        match kind {
            "facebook" => Some(Self::Facebook),
            "oidc" => Some(Self::Oidc),
            "github" => Some(Self::Github),
            "apple" => Some(Self::Apple),
            "microsoft" => Some(Self::Microsoft),
            "x" => Some(Self::X),
            "discord" => Some(Self::Discord),
            _ => None,
        }
    }

    /// As configuration spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Facebook => "facebook",
            Self::Oidc => "oidc",
            Self::Github => "github",
            Self::Apple => "apple",
            Self::Microsoft => "microsoft",
            Self::X => "x",
            Self::Discord => "discord",
        }
    }

    /// Whether its issuer sends claims an organisation controls (groups) and offers its own
    /// logout: any OpenID Connect issuer and Entra ID; not Apple, whose ID token is only the
    /// person's id and address.
    pub const fn sends_claims(self) -> bool {
        matches!(self, Self::Oidc | Self::Microsoft)
    }

    /// Whether it speaks OpenID Connect: ID tokens, discovery, an issuer (and claims such as
    /// groups).
    pub const fn is_openid_connect(self) -> bool {
        matches!(self, Self::Oidc | Self::Apple | Self::Microsoft)
    }

    /// The brand's name, when the kind is one brand (an OpenID Connect issuer can be any).
    const fn default_display_name(self) -> Option<&'static str> {
        match self {
            Self::Facebook => Some("Facebook"),
            Self::Github => Some("GitHub"),
            Self::Apple => Some("Apple"),
            Self::Microsoft => Some("Microsoft"),
            Self::X => Some("X"),
            Self::Discord => Some("Discord"),
            Self::Oidc => None,
        }
    }

    fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Self::Facebook => &["public_profile", "email"],
            Self::Github => &["read:user", "user:email"],
            Self::Oidc | Self::Microsoft => &["openid", "email", "profile"],
            // Apple knows only these two (and `openid`, which the client adds).
            Self::Apple => &["name", "email"],
            // X answers `/2/users/me` only with `tweet.read` beside `users.read`.
            Self::X => &["users.read", "tweet.read"],
            Self::Discord => &["identify", "email"],
        }
    }

    /// Default authorize, token and API endpoints; an OpenID Connect issuer has none here
    /// (its endpoints come from its discovery document).
    fn default_endpoints(self) -> Option<[&'static str; 3]> {
        match self {
            Self::Facebook => Some([FACEBOOK_AUTHORIZE_URL, FACEBOOK_TOKEN_URL, FACEBOOK_API_URL]),
            Self::Github => Some([GITHUB_AUTHORIZE_URL, GITHUB_TOKEN_URL, GITHUB_API_URL]),
            Self::X => Some([X_AUTHORIZE_URL, X_TOKEN_URL, X_API_URL]),
            Self::Discord => Some([DISCORD_AUTHORIZE_URL, DISCORD_TOKEN_URL, DISCORD_API_URL]),
            Self::Oidc | Self::Apple | Self::Microsoft => None,
        }
    }
}

/// One `[providers.<name>]` table, as given.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// `facebook`, `oidc`, `github`, `apple`, `microsoft`, `x` or `discord`; may be left out
    /// beside a `preset` (which is `oidc`).
    #[serde(default)]
    pub kind: String,
    /// kind oidc: a known issuer's settings filled in (`gitlab`, `linkedin`, `okta`,
    /// `keycloak`, `auth0`, `authentik`): display name, scopes, the issuer where it is fixed
    /// and the shape of the issuer where each organisation has its own (see `presets.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The name on the button; defaults to the brand for `facebook` and `github`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Enabled when set. Facebook App IDs are all digits: `client_id = 1234567890` in TOML is
    /// read as text.
    #[serde(default, deserialize_with = "text")]
    pub client_id: String,
    /// The client secret (redacted wherever the configuration is printed).
    #[serde(default, deserialize_with = "text", serialize_with = "redacted")]
    pub client_secret: String,
    /// The authorization dialog, for a provider on other addresses than its usual ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<Url>,
    /// The token endpoint, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<Url>,
    /// The API the profile is read from, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    /// The scopes asked for, instead of the kind's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// RFC 9207 issuer (facebook: named in `iss` on callbacks, empty when none is sent);
    /// the OpenID Connect issuer (oidc: required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// A first sign-in with a new identity from this provider joins the one existing person
    /// whose address it is, when this provider says it verified the address (and so did the
    /// provider that gave the person theirs). Off by default: turn it on only for an issuer
    /// that verifies addresses and never hands one to somebody else (see README).
    #[serde(default)]
    pub link_by_verified_email: bool,
    /// kind oidc: a Google Workspace domain. Sent as `hd` on the authorization URL (Google's
    /// account chooser then offers only that domain's accounts) and required, ASCII case
    /// ignored, in the ID token's `hd` claim: the URL parameter is only a hint a person can
    /// remove. Empty or absent: any account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_domain: Option<String>,
    /// kind oidc: the top-level claim holding the person's groups, a string or a list of
    /// strings, from the ID token or userinfo. Empty or absent: `groups`, read from whatever
    /// the sign-in fetched anyway; set (even to `groups`), userinfo is also asked when the ID
    /// token lacks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    /// kind oidc: "Log out" also ends the person's session at the issuer (OpenID Connect
    /// RP-Initiated Logout 1.0): loginwith's own session ends first, then the browser goes
    /// to the issuer's discovered `end_session_endpoint`, which sends it back to the public
    /// URL (register it as a post-logout redirect URI).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sign_out_at_provider: bool,
    /// kind microsoft: whose accounts may sign in: `common` (any work, school or personal
    /// account), `organizations`, `consumers`, or one tenant's id (a GUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// kind microsoft, with `common` or `organizations`: only these tenants (ids) may sign
    /// in. Empty or absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    /// kind microsoft: where the tenants are (`https://login.microsoftonline.com`, or a
    /// national cloud's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<Url>,
    /// kind apple: the Apple Developer team id (the client secret's `iss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// kind apple: the id of the Sign in with Apple key (the client secret's `kid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// kind apple: the key's `.p8` file (PKCS #8 PEM), which signs the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<std::path::PathBuf>,
    /// kind apple: the key's PEM text itself, instead of a file (for an environment
    /// variable); redacted wherever the configuration is printed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted_option"
    )]
    pub private_key: Option<String>,
}

/// A secret that may be absent: redacted when present.
fn redacted_option<S: Serializer>(
    value: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(secret) => redacted(secret, serializer),
        None => serializer.serialize_none(),
    }
}

// Hand-written so the secret can never reach a log line through `{:?}`.
impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("display_name", &self.display_name)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field(
                "authorize_url",
                &self.authorize_url.as_ref().map(Url::as_str),
            )
            .field("token_url", &self.token_url.as_ref().map(Url::as_str))
            .field("api_url", &self.api_url.as_ref().map(Url::as_str))
            .field("scopes", &self.scopes)
            .field("issuer", &self.issuer)
            .field("link_by_verified_email", &self.link_by_verified_email)
            .field("hosted_domain", &self.hosted_domain)
            .field("groups_claim", &self.groups_claim)
            .field("sign_out_at_provider", &self.sign_out_at_provider)
            .field("preset", &self.preset)
            .field("tenant", &self.tenant)
            .field("tenants", &self.tenants)
            .field("authority", &self.authority.as_ref().map(Url::as_str))
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .field("private_key_file", &self.private_key_file)
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// One OAuth 2.0 provider's client registration and endpoints, defaults filled in: what a
/// client is built from.
#[derive(Clone)]
pub struct OAuthProviderConfig {
    /// The client id registered at the provider.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Where browsers are sent to sign in.
    pub authorize_url: Url,
    /// Where codes are exchanged for tokens.
    pub token_url: Url,
    /// Where the profile is read.
    pub api_url: Url,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// RFC 9207: the issuer the provider names in `iss` on its callbacks; empty when it
    /// sends none (Facebook). When set, a callback without it or with another is refused.
    pub issuer: String,
}

// Hand-written so the secret can never reach a log line through `{:?}`.
impl std::fmt::Debug for OAuthProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProviderConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("authorize_url", &self.authorize_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("api_url", &self.api_url.as_str())
            .field("scopes", &self.scopes)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl ProviderConfig {
    /// The kind, when it is one this build knows.
    pub fn kind(&self) -> Option<ProviderKind> {
        if self.kind.is_empty() && self.preset.is_some() {
            return Some(ProviderKind::Oidc);
        }
        ProviderKind::parse(&self.kind)
    }

    /// The preset named, when it is a known one.
    pub fn preset(&self) -> Option<&'static Preset> {
        self.preset.as_deref().and_then(Preset::named)
    }

    /// The issuer of an OpenID Connect kind: as configured, else the preset's or the kind's
    /// fixed one (Apple's; Microsoft's from `authority` and `tenant`). Empty when none.
    pub fn issuer(&self) -> String {
        if let Some(issuer) = self.issuer.as_deref().filter(|i| !i.is_empty()) {
            return issuer.to_owned();
        }
        match self.kind() {
            Some(ProviderKind::Apple) => APPLE_ISSUER.to_owned(),
            Some(ProviderKind::Microsoft) => {
                let authority = self
                    .authority
                    .as_ref()
                    .map_or(MICROSOFT_AUTHORITY, Url::as_str)
                    .trim_end_matches('/');
                // Lowercase, as Entra ID writes tenant ids in its documents and tokens.
                format!("{authority}/{}/v2.0", self.tenant().to_ascii_lowercase())
            }
            Some(ProviderKind::Oidc) => self
                .preset()
                .and_then(|p| p.issuer)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        }
    }

    /// kind microsoft: the tenant, `common` when none is configured.
    pub fn tenant(&self) -> &str {
        self.tenant
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or("common")
    }

    /// Whether it takes part: its `client_id` is set.
    pub fn enabled(&self) -> bool {
        !self.client_id.is_empty()
    }

    /// The name on its button and in messages: as configured, else the brand's.
    pub fn display_name(&self) -> &str {
        match &self.display_name {
            Some(name) if !name.trim().is_empty() => name,
            _ => self
                .kind()
                .and_then(ProviderKind::default_display_name)
                .or_else(|| self.preset().map(|p| p.display_name))
                .unwrap_or_default(),
        }
    }

    /// The scopes asked for: as configured, else the kind's.
    pub fn scopes(&self) -> Vec<String> {
        match (&self.scopes, self.kind()) {
            (Some(scopes), _) => scopes.clone(),
            (None, Some(kind)) => kind
                .default_scopes()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            (None, None) => Vec::new(),
        }
    }

    /// The Workspace domain an OpenID Connect issuer's ID tokens must name in `hd`, when one
    /// is configured (an empty value is none).
    pub fn hosted_domain(&self) -> Option<&str> {
        self.hosted_domain.as_deref().filter(|d| !d.is_empty())
    }

    /// The groups claim when one is configured (an empty value is none: `groups` is read).
    pub fn groups_claim(&self) -> Option<&str> {
        self.groups_claim.as_deref().filter(|c| !c.is_empty())
    }

    /// The registration with every default filled in, for the kinds with fixed endpoints
    /// (`facebook`, `github`, `x`, `discord`); `None` for OpenID Connect kinds or an unknown
    /// kind.
    pub fn oauth(&self) -> Option<OAuthProviderConfig> {
        let [authorize, token, api] = self.kind()?.default_endpoints()?;
        let or_default =
            |given: &Option<Url>, default: &str| given.clone().or_else(|| Url::parse(default).ok());
        Some(OAuthProviderConfig {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            authorize_url: or_default(&self.authorize_url, authorize)?,
            token_url: or_default(&self.token_url, token)?,
            api_url: or_default(&self.api_url, api)?,
            scopes: self.scopes(),
            issuer: self.issuer.clone().unwrap_or_default(),
        })
    }
}

/// Every `[providers.<name>]` table, in button order (the shipped ones first).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ProvidersConfig {
    entries: Vec<(String, ProviderConfig)>,
}

impl ProvidersConfig {
    /// The `[providers.<name>]` table, if there is one.
    pub fn get(&self, name: &str) -> Option<&ProviderConfig> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }

    /// Every table, in button order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ProviderConfig)> {
        self.entries.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// The providers with a `client_id`, in button order.
    pub fn enabled(&self) -> impl Iterator<Item = (&str, &ProviderConfig)> {
        self.iter().filter(|(_, p)| p.enabled())
    }

    /// The enabled providers whose new identities may join an existing person on a verified
    /// address (`link_by_verified_email = true`).
    pub fn linking_by_verified_email(&self) -> impl Iterator<Item = &str> {
        self.enabled()
            .filter(|(_, p)| p.link_by_verified_email)
            .map(|(name, _)| name)
    }

    /// Every rule the tables break, each naming its key.
    pub fn problems(&self, production: bool) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (name, provider) in self.iter() {
            provider_problems(name, provider, production, &mut problems);
        }
        let mut seen: Vec<(String, &str)> = Vec::new();
        for (name, provider) in self.enabled() {
            let display = provider.display_name().trim().to_lowercase();
            if display.is_empty() {
                continue;
            }
            if let Some((_, first)) = seen.iter().find(|(d, _)| *d == display) {
                problems.push(invalid(
                    &format!("providers.{name}.display_name"),
                    format!(
                        "{:?} is also the display name of providers.{first}: two buttons would read the same",
                        provider.display_name()
                    ),
                ));
            } else {
                seen.push((display, name));
            }
        }
        problems
    }
}

/// `[a-z0-9][a-z0-9_-]*`: a name that is its own path segment, as typed.
fn is_path_segment(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A DNS name of two labels or more, as a Workspace domain is: letters, digits and inner
/// hyphens, at most 63 bytes a label and 253 in all, no trailing dot.
fn is_domain_name(name: &str) -> bool {
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 253 && name.split('.').count() >= 2 && name.split('.').all(label)
}

fn provider_problems(name: &str, p: &ProviderConfig, production: bool, out: &mut Vec<Problem>) {
    let key = |field: &str| format!("providers.{name}.{field}");
    if !is_path_segment(name) {
        out.push(invalid(
            &format!("providers.{name}"),
            "the name must be a lowercase path segment: a-z or 0-9 first, then a-z, 0-9, '_' or '-'",
        ));
    }
    let Some(kind) = p.kind() else {
        out.push(invalid(
            &key("kind"),
            format!(
                "{:?} is not a provider kind: use \"facebook\", \"oidc\", \"github\", \"apple\", \"microsoft\", \"x\" or \"discord\"",
                p.kind
            ),
        ));
        return;
    };
    if p.display_name().trim().is_empty() {
        out.push(invalid(
            &key("display_name"),
            format!(
                "is required for kind = \"{}\" (the name on its button)",
                kind.name()
            ),
        ));
    }
    for (field, url) in [
        ("authorize_url", &p.authorize_url),
        ("token_url", &p.token_url),
        ("api_url", &p.api_url),
    ] {
        let Some(url) = url else { continue };
        if kind.is_openid_connect() {
            out.push(invalid(
                &key(field),
                format!(
                    "is not a key of kind = \"{}\" (its endpoints come from the issuer)",
                    kind.name()
                ),
            ));
        } else if !matches!(url.scheme(), "http" | "https") {
            out.push(invalid(
                &key(field),
                "must be an http:// or https:// address",
            ));
        } else if production && url.scheme() != "https" {
            out.push(invalid(&key(field), "must be https:// in production"));
        }
    }
    issuer_problems(&key("issuer"), kind, p, production, out);
    super::kind_rules::problems(name, p, kind, production, out);
    if kind == ProviderKind::Facebook && p.link_by_verified_email {
        out.push(invalid(
            &key("link_by_verified_email"),
            "Facebook never says an address is verified, so this would never link anyone: leave it out",
        ));
    }
    if let Some(domain) = p.hosted_domain() {
        if kind != ProviderKind::Oidc {
            // Only an ID token carries `hd`: there is nothing to check it against.
            out.push(invalid(
                &key("hosted_domain"),
                format!("is not a key of kind = \"{}\" (only an OpenID Connect issuer's ID token carries hd)", kind.name()),
            ));
        } else if !is_domain_name(domain) {
            out.push(invalid(
                &key("hosted_domain"),
                format!("{domain:?} is not a domain name (such as example.com)"),
            ));
        }
    }
    if p.sign_out_at_provider && !kind.sends_claims() {
        out.push(invalid(
            &key("sign_out_at_provider"),
            format!(
                "is not a key of kind = \"{}\" (only an OpenID Connect issuer offers RP-Initiated Logout)",
                kind.name()
            ),
        ));
    }
    if let Some(claim) = p.groups_claim() {
        if !kind.sends_claims() {
            out.push(invalid(
                &key("groups_claim"),
                format!(
                    "is not a key of kind = \"{}\" (only an OpenID Connect issuer sends claims)",
                    kind.name()
                ),
            ));
        } else if claim.len() > 100 || !claim.bytes().all(|b| b.is_ascii_graphic()) {
            out.push(invalid(
                &key("groups_claim"),
                format!("{claim:?} is not a claim name (visible ASCII, at most 100 bytes, such as groups or roles)"),
            ));
        }
    }
    let scopes = p.scopes();
    if scopes.is_empty() || scopes.iter().any(|s| s.trim().is_empty()) {
        out.push(invalid(
            &key("scopes"),
            "must list at least one non-empty scope",
        ));
    }
    if p.enabled() && p.client_secret.is_empty() && kind != ProviderKind::Apple {
        out.push(invalid(
            &key("client_secret"),
            "is empty while client_id is set",
        ));
    }
}

fn issuer_problems(
    key: &str,
    kind: ProviderKind,
    p: &ProviderConfig,
    production: bool,
    out: &mut Vec<Problem>,
) {
    let configured = p.issuer.as_deref().unwrap_or_default();
    match kind {
        ProviderKind::Github | ProviderKind::X | ProviderKind::Discord
            if !configured.is_empty() =>
        {
            out.push(invalid(
                key,
                format!("is not a key of kind = \"{}\"", kind.name()),
            ));
            return;
        }
        ProviderKind::Microsoft if !configured.is_empty() => {
            out.push(invalid(
                key,
                "is not a key of kind = \"microsoft\" (the issuer follows from tenant and authority)",
            ));
            return;
        }
        _ => {}
    }
    let issuer = p.issuer();
    match kind {
        // The preset's own rule names what it needs.
        ProviderKind::Oidc if issuer.is_empty() && p.preset.is_some() => return,
        ProviderKind::Oidc if issuer.is_empty() => {
            out.push(invalid(
                key,
                "is required for kind = \"oidc\" (such as https://accounts.google.com) unless a preset gives it",
            ));
            return;
        }
        _ if issuer.is_empty() => return,
        _ => {}
    }
    match Url::parse(&issuer) {
        Ok(url) if url.scheme() == "https" || (!production && url.scheme() == "http") => {}
        _ => out.push(invalid(
            key,
            "must be an https:// address (http:// is allowed in development)",
        )),
    }
}

/// Button order: the shipped names first, in their order, then the others by name.
fn order(name: &str) -> (usize, String) {
    let rank = SHIPPED
        .iter()
        .position(|s| *s == name)
        .unwrap_or(SHIPPED.len());
    (rank, name.to_owned())
}

impl<'de> Deserialize<'de> for ProvidersConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Tables;

        impl<'de> de::Visitor<'de> for Tables {
            type Value = ProvidersConfig;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table of [providers.<name>] tables")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((name, table)) = map.next_entry::<String, ProviderConfig>()? {
                    entries.push((name, table));
                }
                entries.sort_by_cached_key(|(name, _)| order(name));
                Ok(ProvidersConfig { entries })
            }
        }

        deserializer.deserialize_map(Tables)
    }
}

impl Serialize for ProvidersConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (name, table) in &self.entries {
            map.serialize_entry(name, table)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_path_segments() {
        for good in ["facebook", "corp", "a", "0", "acme-sso", "my_idp2"] {
            assert!(is_path_segment(good), "{good}");
        }
        for bad in ["", "Corp", "-x", "_x", "a.b", "a/b", "é", "a b"] {
            assert!(!is_path_segment(bad), "{bad}");
        }
    }

    #[test]
    fn hosted_domains_are_domain_names() {
        for good in ["example.com", "Corp.Example", "a-b.co.uk", "x1.io"] {
            assert!(is_domain_name(good), "{good}");
        }
        let long = format!("{}.com", "a".repeat(64));
        for bad in [
            "",
            "example",
            "example.com.",
            ".example.com",
            "-a.com",
            "a-.com",
            "a..com",
            "ex ample.com",
            "https://example.com",
            "@example.com",
            "exämple.com",
            &long,
        ] {
            assert!(!is_domain_name(bad), "{bad}");
        }
    }

    #[test]
    fn only_googles_own_issuer_wears_googles_brand() {
        assert_eq!(
            oidc_brand("https://accounts.google.com"),
            Some(ProviderBrand::Google)
        );
        for other in [
            "https://accounts.google.com/",
            "http://accounts.google.com",
            "https://Accounts.Google.com",
            "https://accounts.google.com.evil.example",
            "https://accounts.google.com/o/oauth2",
            "https://sso.acme.example/realms/main",
            "",
        ] {
            assert_eq!(oidc_brand(other), None, "{other}");
        }
    }

    #[test]
    fn buttons_follow_the_shipped_order_then_names() {
        let mut names = ["zeta", "github", "corp", "facebook", "google"];
        names.sort_by_cached_key(|n| order(n));
        assert_eq!(names, ["facebook", "google", "github", "corp", "zeta"]);
    }
}
