//! The keys only some provider kinds have: a preset (kind `oidc`), the tenant of Microsoft
//! Entra ID, and the signing key of Sign in with Apple. Each is refused on the other kinds,
//! so that a key in the wrong table is a start-up error, not silently ignored.

use super::{
    Problem, invalid,
    presets::Preset,
    providers::{ProviderConfig, ProviderKind},
};

/// The tenants Microsoft serves everybody from, besides one organisation's id.
const MICROSOFT_AUDIENCES: [&str; 3] = ["common", "organizations", "consumers"];

/// Every problem of the kind-specific keys of `[providers.<name>]`.
pub(super) fn problems(
    name: &str,
    p: &ProviderConfig,
    kind: ProviderKind,
    production: bool,
    out: &mut Vec<Problem>,
) {
    let key = |field: &str| format!("providers.{name}.{field}");
    let not_a_key = |field: &str, of: &str, out: &mut Vec<Problem>| {
        out.push(invalid(
            &key(field),
            format!(
                "is not a key of kind = \"{}\" (only of kind = \"{of}\")",
                kind.name()
            ),
        ));
    };
    match (&p.preset, kind) {
        (None, _) => {}
        (Some(_), ProviderKind::Oidc) => preset_problems(&key("preset"), &key("issuer"), p, out),
        (Some(_), _) => not_a_key("preset", "oidc", out),
    }
    let microsoft_keys = [
        ("tenant", p.tenant.is_some()),
        ("tenants", p.tenants.is_some()),
        ("authority", p.authority.is_some()),
    ];
    if kind == ProviderKind::Microsoft {
        microsoft_problems(&key, p, production, out);
    } else {
        for (field, set) in microsoft_keys {
            if set {
                not_a_key(field, "microsoft", out);
            }
        }
    }
    let apple_keys = [
        ("team_id", p.team_id.is_some()),
        ("key_id", p.key_id.is_some()),
        ("private_key_file", p.private_key_file.is_some()),
        ("private_key", p.private_key.is_some()),
    ];
    if kind == ProviderKind::Apple {
        apple_problems(&key, p, out);
    } else {
        for (field, set) in apple_keys {
            if set {
                not_a_key(field, "apple", out);
            }
        }
    }
}

fn preset_problems(key: &str, issuer_key: &str, p: &ProviderConfig, out: &mut Vec<Problem>) {
    let Some(preset) = p.preset() else {
        out.push(invalid(
            key,
            format!(
                "{:?} is not a preset: use one of {}",
                p.preset.as_deref().unwrap_or_default(),
                Preset::names().collect::<Vec<_>>().join(", ")
            ),
        ));
        return;
    };
    let issuer = p.issuer();
    if issuer.is_empty() {
        out.push(invalid(
            issuer_key,
            format!(
                "is required with preset = \"{}\" (such as {})",
                preset.name, preset.example_issuer
            ),
        ));
    } else if let Some(problem) = preset.issuer_problem(&issuer) {
        out.push(invalid(issuer_key, problem));
    }
}

/// A tenant id as Entra ID writes it: a GUID, lowercase or not. A tenant's domain name
/// (contoso.onmicrosoft.com) is refused: its discovery document names the GUID as issuer, so
/// it could never match.
fn is_tenant_id(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn microsoft_problems(
    key: &dyn Fn(&str) -> String,
    p: &ProviderConfig,
    production: bool,
    out: &mut Vec<Problem>,
) {
    let tenant = p.tenant();
    let audience = MICROSOFT_AUDIENCES.contains(&tenant);
    if !audience && !is_tenant_id(tenant) {
        out.push(invalid(
            &key("tenant"),
            format!(
                "{tenant:?} is not common, organizations, consumers or a tenant id (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47; not a domain name)"
            ),
        ));
    }
    if !p.scopes().iter().any(|s| s == "profile") {
        out.push(invalid(
            &key("scopes"),
            "must include \"profile\" for kind = \"microsoft\": people are keyed on the oid claim, which Entra ID sends only with it",
        ));
    }
    let tenants = p.tenants.as_deref().unwrap_or_default();
    if !tenants.is_empty() && !matches!(tenant, "common" | "organizations") {
        out.push(invalid(
            &key("tenants"),
            format!(
                "only narrows tenant = \"common\" or \"organizations\" (with {tenant:?} it could only repeat or contradict it)"
            ),
        ));
    }
    for id in tenants {
        if !is_tenant_id(id) {
            out.push(invalid(
                &key("tenants"),
                format!("{id:?} is not a tenant id (a GUID)"),
            ));
        }
    }
    if let Some(authority) = &p.authority {
        let fine = match authority.scheme() {
            "https" => true,
            "http" => !production,
            _ => false,
        };
        if !fine {
            out.push(invalid(
                &key("authority"),
                "must be an https:// address (http:// is allowed in development)",
            ));
        }
    }
}

/// Apple's team and key ids: ten uppercase letters or digits.
fn is_apple_id(value: &str) -> bool {
    value.len() == 10
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn apple_problems(key: &dyn Fn(&str) -> String, p: &ProviderConfig, out: &mut Vec<Problem>) {
    if !p.client_secret.is_empty() {
        out.push(invalid(
            &key("client_secret"),
            "is not used with kind = \"apple\": loginwith signs a fresh client secret with private_key_file (leave it out)",
        ));
    }
    if !p.enabled() {
        return;
    }
    for (field, value) in [("team_id", &p.team_id), ("key_id", &p.key_id)] {
        match value.as_deref().filter(|id| !id.is_empty()) {
            Some(id) if is_apple_id(id) => {}
            Some(id) => out.push(invalid(
                &key(field),
                format!("{id:?} is not an Apple id (ten uppercase letters and digits)"),
            )),
            None => out.push(invalid(
                &key(field),
                "is required for kind = \"apple\" (from the Apple Developer account)",
            )),
        }
    }
    let file = p
        .private_key_file
        .as_ref()
        .is_some_and(|f| !f.as_os_str().is_empty());
    let text = p.private_key.as_ref().is_some_and(|t| !t.is_empty());
    match (file, text) {
        (true, true) => out.push(invalid(
            &key("private_key"),
            "is set beside private_key_file: give the key once",
        )),
        (false, false) => out.push(invalid(
            &key("private_key_file"),
            "is required for kind = \"apple\" (the AuthKey_<key id>.p8 file, or private_key with its text)",
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_guids() {
        assert!(is_tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(is_tenant_id("9188040D-6C67-4C5B-B112-36A304B66DAD"));
        for bad in [
            "",
            "common",
            "contoso.onmicrosoft.com",
            "72f988bf86f141af91ab2d7cd011db47",
            "72f988bf-86f1-41af-91ab-2d7cd011db4",
            "72f988bf-86f1-41af-91ab-2d7cd011db4g",
        ] {
            assert!(!is_tenant_id(bad), "{bad}");
        }
    }

    #[test]
    fn apple_ids_are_ten_uppercase_characters() {
        assert!(is_apple_id("ABCDE12345"));
        for bad in ["abcde12345", "ABCDE1234", "ABCDE123456", "ABCDE-1234"] {
            assert!(!is_apple_id(bad), "{bad}");
        }
    }
}
