//! `LOGINWITH_<SECTION>__<KEY>` environment variables, read as the text people typed.
//!
//! figment's own `Env` provider parses every value as TOML-ish data, so a Facebook App ID
//! (`1234567890`, all digits) arrives as an integer and a string key refuses it, `0123`
//! loses its zero and `1e5` becomes a float. Here every value stays a string; keys that are
//! numbers or booleans are converted when the configuration is extracted (figment's lossy
//! extraction), so only they ever look inside the text.

use figment::{
    Error, Metadata, Profile, Provider,
    value::{Dict, Map, Value},
};

/// The variables under `prefix` of the form `PREFIX_SECTION__KEY`, nested on `__`, every
/// value a string (or, written as `[a, b]`, a list of strings). Names without a double
/// underscore (`LOGINWITH_ENV`, `LOGINWITH_CONFIG`, a script's `LOGINWITH_BIN`) are never keys.
pub struct RawEnv {
    prefix: &'static str,
    vars: Vec<(String, String)>,
}

impl RawEnv {
    /// Reads the process environment now.
    pub fn prefixed(prefix: &'static str) -> Self {
        Self::from_vars(
            prefix,
            std::env::vars_os().map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            }),
        )
    }

    /// The same over given variables (tests).
    pub fn from_vars(
        prefix: &'static str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Self {
            prefix,
            vars: vars.into_iter().collect(),
        }
    }

    /// `(lower-case dotted key, value)` for each variable of ours.
    fn entries(&self) -> impl Iterator<Item = (Vec<String>, &str)> {
        self.vars.iter().filter_map(|(name, value)| {
            let rest = name.strip_prefix(self.prefix)?;
            if !rest.contains("__") {
                return None;
            }
            let path = rest.split("__").map(str::to_ascii_lowercase).collect();
            Some((path, value.as_str()))
        })
    }
}

impl Provider for RawEnv {
    fn metadata(&self) -> Metadata {
        let prefix = self.prefix;
        Metadata::named(format!("`{prefix}` environment variable(s)")).interpolater(
            move |_: &Profile, keys: &[&str]| {
                let keys: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
                format!("{prefix}{}", keys.join("__"))
            },
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut root = Dict::new();
        for (path, value) in self.entries() {
            insert(&mut root, &path, text_value(value)).map_err(Error::from)?;
        }
        Ok(Profile::Default.collect(root))
    }
}

/// A value as typed: a string, or a list of strings when written `[a, b, "c"]`.
fn text_value(raw: &str) -> Value {
    let trimmed = raw.trim();
    match trimmed
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
    {
        Some(inner) if inner.trim().is_empty() => Value::from(Vec::<String>::new()),
        Some(inner) => Value::from(
            inner
                .split(',')
                .map(|item| {
                    let item = item.trim();
                    item.strip_prefix('"')
                        .and_then(|i| i.strip_suffix('"'))
                        .unwrap_or(item)
                        .to_owned()
                })
                .collect::<Vec<String>>(),
        ),
        None => Value::from(raw.to_owned()),
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) -> Result<(), String> {
    match path {
        [] => Ok(()),
        [last] => {
            dict.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            match entry {
                Value::Dict(_, inner) => insert(inner, rest, value),
                _ => Err(format!("{first} is set both as a value and as a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(vars: &[(&str, &str)]) -> Dict {
        let env = RawEnv::from_vars(
            "APP_",
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env.data().unwrap().remove(&Profile::Default).unwrap()
    }

    #[test]
    fn values_stay_the_text_people_typed() {
        let dict = extract(&[
            ("APP_A__ID", "0123"),
            ("APP_A__SECRET", "1e5"),
            ("APP_A__FLAG", "true"),
            ("APP_A__HEX", "0x10"),
            ("APP_ENV", "production"),
            ("APP_BIN", "/usr/bin/x"),
            ("OTHER_X", "1"),
        ]);
        let a = dict["a"].as_dict().unwrap();
        for (key, text) in [
            ("id", "0123"),
            ("secret", "1e5"),
            ("flag", "true"),
            ("hex", "0x10"),
        ] {
            assert_eq!(a[key].as_str(), Some(text), "{key}");
        }
        assert_eq!(dict.len(), 1, "ignored and foreign variables are left out");
    }

    #[test]
    fn bracketed_values_are_lists_of_strings() {
        let dict = extract(&[("APP_A__S", "[public_profile, \"email\", 12]")]);
        let list: Vec<&str> = dict["a"].as_dict().unwrap()["s"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(list, ["public_profile", "email", "12"]);
    }
}
