//! The brands whose published colours and marks a provider's button may wear.

/// A brand a provider's button may wear (not the site's own branding, `config::Brand`); any
/// other provider gets a neutral button with its display name. Adding one means its colours
/// and mark in `static/` and a case in the page's button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderBrand {
    /// Facebook's blue button and "f" mark.
    Facebook,
    /// GitHub's dark button and Octocat mark.
    GitHub,
    /// Google's white button and "G" mark: only Google's own issuer wears it.
    Google,
    /// Apple's black button and Apple logo (Sign in with Apple's guidelines).
    Apple,
    /// Microsoft's white button and four-square logo (its sign-in branding guidelines).
    Microsoft,
    /// X's black button and X logo.
    X,
    /// Discord's Blurple button and Clyde mark.
    Discord,
}
