//! Microsoft Entra ID's departures from a plain issuer (the facts: `docs/providers/microsoft.md`).
//!
//! - One application serves many tenants. With `common` or `organizations` the discovery
//!   document names its issuer as a template, `https://login.microsoftonline.com/{tenantid}/v2.0`,
//!   and each ID token's `iss` is that template with the token's own `tid` in it: the
//!   document cannot be compared byte for byte, and the token's issuer is checked against
//!   the template filled with its `tid` (a token of tenant A naming tenant B is refused).
//! - `sub` is pairwise (it differs per application); `oid` is the account's id within its
//!   tenant: people are keyed on `tid` and `oid` together.
//! - The `email` claim of a work account is whatever the tenant's administrators typed
//!   ("nOAuth"): an address counts as verified only when the token says its domain's owner
//!   verified it (`xms_edov`, an optional claim the app registration must ask for).

use serde_json::Value;

use super::{ExchangeError, FailureReason, OtherClaims, excerpt};

/// The tenant of every personal Microsoft account.
pub const CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// What Microsoft's multi-tenant documents write in place of the tenant id.
const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// Whose accounts an application takes, as `tenant` and `tenants` configure it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenancy {
    /// `common`, `organizations`, `consumers`, or one tenant's id (lowercase).
    tenant: String,
    /// With `common` or `organizations`: the only tenants let in (lowercase); empty: any.
    allowed: Vec<String>,
}

impl Tenancy {
    pub fn new(tenant: &str, allowed: &[String]) -> Self {
        Self {
            tenant: tenant.to_ascii_lowercase(),
            allowed: allowed.iter().map(|t| t.to_ascii_lowercase()).collect(),
        }
    }

    /// The issuer the discovery document at `configured` (`{authority}/{tenant}/v2.0`) names:
    /// the template for `common` and `organizations`, the personal accounts' tenant for
    /// `consumers`, the tenant itself otherwise.
    pub fn document_issuer(&self, configured: &str) -> String {
        let suffix = format!("/{}/v2.0", self.tenant);
        let authority = configured
            .strip_suffix(&suffix)
            .or_else(|| configured.strip_suffix(&format!("{suffix}/")))
            .unwrap_or(configured);
        let tenant = match self.tenant.as_str() {
            "common" | "organizations" => TENANT_PLACEHOLDER,
            "consumers" => CONSUMERS_TENANT,
            id => id,
        };
        format!("{authority}/{tenant}/v2.0")
    }

    /// The ID token's `iss` and `tid` against the document's issuer and the tenancy: the
    /// token's tenant, lowercase, when they agree.
    pub fn check(
        &self,
        document_issuer: &str,
        claims: &OtherClaims,
        iss: &str,
    ) -> Result<String, ExchangeError> {
        let Some(Value::String(tid)) = claims.get("tid") else {
            return Err(invalid("id_token: no tid (tenant id)"));
        };
        let tid = tid.to_ascii_lowercase();
        let expected = document_issuer.replace(TENANT_PLACEHOLDER, &tid);
        if iss != expected {
            return Err(invalid(format!(
                "id_token: iss {:?} is not the issuer of tenant {:?}",
                excerpt(iss, 120),
                excerpt(&tid, 40)
            )));
        }
        let refused = |why: String| Err(ExchangeError::new(FailureReason::NotAllowed, why));
        match self.tenant.as_str() {
            "common" => {}
            "organizations" if tid == CONSUMERS_TENANT => {
                return refused("id_token: a personal account, and tenant = organizations".into());
            }
            "organizations" => {}
            "consumers" if tid != CONSUMERS_TENANT => {
                return refused("id_token: a work account, and tenant = consumers".into());
            }
            "consumers" => {}
            own if tid != own => {
                return refused(format!("id_token: tenant {tid:?} is not {own:?}"));
            }
            _ => {}
        }
        if !self.allowed.is_empty() && !self.allowed.contains(&tid) {
            return refused(format!("id_token: tenant {tid:?} is not among tenants"));
        }
        Ok(tid)
    }
}

/// The identity of an Entra account: its tenant and its object id in that tenant.
pub fn subject(tid: &str, claims: &OtherClaims) -> Result<String, ExchangeError> {
    match claims.get("oid") {
        Some(Value::String(oid)) if !oid.is_empty() && oid.len() <= 64 => {
            Ok(format!("{tid}/{}", oid.to_ascii_lowercase()))
        }
        _ => Err(invalid(
            "id_token: no oid (object id; the profile scope asks for it)",
        )),
    }
}

/// Whether the token vouches for its address: `xms_edov` (email domain owner verified) true,
/// as a JSON boolean or the string and number forms Entra's optional claims take.
pub fn address_verified(claims: &OtherClaims) -> bool {
    match claims.get("xms_edov") {
        Some(Value::Bool(yes)) => *yes,
        Some(Value::String(text)) => text.eq_ignore_ascii_case("true") || text == "1",
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        _ => false,
    }
}

fn invalid(detail: impl Into<String>) -> ExchangeError {
    ExchangeError::new(FailureReason::InvalidResponse, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const B: &str = "0b5d9a1c-3f1e-4b8e-9c4a-7a2f3e1d5c6b";
    const AUTHORITY: &str = "https://login.microsoftonline.com";

    fn claims(value: Value) -> OtherClaims {
        serde_json::from_value(value).unwrap()
    }

    fn issuer_of(tid: &str) -> String {
        format!("{AUTHORITY}/{tid}/v2.0")
    }

    #[test]
    fn the_document_names_a_template_for_multi_tenant_applications() {
        let configured = |t: &str| format!("{AUTHORITY}/{t}/v2.0");
        let of = |t: &str| Tenancy::new(t, &[]).document_issuer(&configured(t));
        assert_eq!(of("common"), format!("{AUTHORITY}/{{tenantid}}/v2.0"));
        assert_eq!(of("organizations"), format!("{AUTHORITY}/{{tenantid}}/v2.0"));
        assert_eq!(of("consumers"), issuer_of(CONSUMERS_TENANT));
        assert_eq!(of(A), issuer_of(A));
    }

    #[test]
    fn a_token_of_one_tenant_naming_another_is_refused() {
        let common = Tenancy::new("common", &[]);
        let template = common.document_issuer(&format!("{AUTHORITY}/common/v2.0"));
        let token = claims(json!({"tid": A}));
        assert_eq!(common.check(&template, &token, &issuer_of(A)).unwrap(), A);
        let forged = common.check(&template, &token, &issuer_of(B)).unwrap_err();
        assert_eq!(forged.reason, FailureReason::InvalidResponse);
        let no_tid = common
            .check(&template, &claims(json!({})), &issuer_of(A))
            .unwrap_err();
        assert_eq!(no_tid.reason, FailureReason::InvalidResponse);
    }

    #[test]
    fn the_tenancy_decides_whose_accounts_come_in() {
        let check = |tenancy: Tenancy, configured: &str, tid: &str| {
            let document = tenancy.document_issuer(&format!("{AUTHORITY}/{configured}/v2.0"));
            tenancy
                .check(&document, &claims(json!({"tid": tid})), &issuer_of(tid))
                .map_err(|e| e.reason)
        };
        let not_allowed = Err(FailureReason::NotAllowed);
        assert!(check(Tenancy::new("organizations", &[]), "organizations", A).is_ok());
        assert_eq!(
            check(Tenancy::new("organizations", &[]), "organizations", CONSUMERS_TENANT),
            not_allowed
        );
        assert!(check(Tenancy::new("consumers", &[]), "consumers", CONSUMERS_TENANT).is_ok());
        assert_eq!(
            check(Tenancy::new("consumers", &[]), "consumers", A),
            Err(FailureReason::InvalidResponse),
            "a work account's token names its own tenant, not the consumers' issuer"
        );
        assert!(check(Tenancy::new(A, &[]), A, A).is_ok());
        assert_eq!(check(Tenancy::new(A, &[]), A, B), Err(FailureReason::InvalidResponse));
        let only_a = Tenancy::new("common", &[A.to_uppercase()]);
        assert!(check(only_a.clone(), "common", A).is_ok());
        assert_eq!(check(only_a, "common", B), not_allowed);
    }

    #[test]
    fn oid_and_tid_are_the_identity_and_only_xms_edov_verifies_an_address() {
        let token = claims(json!({"oid": "00000000-0000-0000-66F3-3332ECA7EA81"}));
        assert_eq!(
            subject(A, &token).unwrap(),
            format!("{A}/00000000-0000-0000-66f3-3332eca7ea81")
        );
        assert!(subject(A, &claims(json!({}))).is_err());
        for yes in [json!(true), json!("true"), json!("1"), json!(1)] {
            assert!(address_verified(&claims(json!({"xms_edov": yes}))), "{yes}");
        }
        for no in [json!(false), json!("false"), json!(0), json!(null)] {
            assert!(!address_verified(&claims(json!({"xms_edov": no}))), "{no}");
        }
        assert!(!address_verified(&claims(json!({"email_verified": true}))));
    }
}
