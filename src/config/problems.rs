//! What is wrong with a configuration, said the way people wrote it: the key as typed
//! (`server.bnd`), where it came from (a file's absolute path, the environment variable's
//! name), and every problem at once rather than one per attempt.

use std::path::Path;

use figment::{
    Figment, Metadata, Profile, Source,
    value::{Dict, Value},
};

/// One thing wrong, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The configuration key (`server.bind`), or what the problem is about (`--config`).
    pub key: String,
    /// What is wrong with it and what would be right.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why a configuration was refused: one or more problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Every problem found, in the order they were found.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub(crate) fn one(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                key: key.into(),
                reason: reason.into(),
            }],
        }
    }
}

/// One problem: `configuration: KEY: REASON`, on one line. Several: a line saying how
/// many, then one line each.
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "configuration: {one}"),
            many => {
                write!(f, "configuration: {} problems", many.len())?;
                for problem in many {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Keys in `given` that `known` (the embedded defaults, which list every key) lacks, each
/// with where it was set and the nearest known key when one is close.
pub fn unknown_keys(figment: &Figment, given: &Dict, known: &Dict) -> Vec<Problem> {
    let mut problems = Vec::new();
    walk(figment, given, known, &mut Vec::new(), &mut problems);
    problems
}

fn walk(
    figment: &Figment,
    given: &Dict,
    known: &Dict,
    path: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) {
    for (name, value) in given {
        path.push(name.clone());
        if path.len() == 2 && path[0] == "providers" {
            // `providers.<name>`: the name is data; its keys are checked against every key a
            // shipped provider table has.
            match value {
                Value::Dict(_, given_inner) => {
                    walk(figment, given_inner, &provider_keys(known), path, problems);
                }
                _ => problems.push(Problem {
                    key: path.join("."),
                    reason: format!(
                        "must be a table ([{}]), set in {}",
                        path.join("."),
                        origin(figment, &path.join("."))
                    ),
                }),
            }
            path.pop();
            continue;
        }
        match (known.get(name), value) {
            (Some(Value::Dict(_, known_inner)), Value::Dict(_, given_inner)) => {
                walk(figment, given_inner, known_inner, path, problems);
            }
            (Some(_), _) => {}
            (None, _) => {
                let key = path.join(".");
                let mut reason = format!("unknown key, set in {}", origin(figment, &key));
                if let Some(near) = nearest(name, known) {
                    let mut near_path = path[..path.len() - 1].to_vec();
                    near_path.push(near.to_owned());
                    reason.push_str(&format!("; did you mean {}?", near_path.join(".")));
                }
                problems.push(Problem { key, reason });
            }
        }
        path.pop();
    }
}

/// The union of the keys of the shipped `[providers.<name>]` tables (`known` is the level
/// holding them): what any provider table may contain.
fn provider_keys(known: &Dict) -> Dict {
    let mut keys = Dict::new();
    for table in known.values() {
        if let Value::Dict(_, inner) = table {
            keys.extend(inner.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    keys
}

/// The known name closest to `name`, when it is a likely typo of it.
fn nearest<'a>(name: &str, known: &'a Dict) -> Option<&'a str> {
    known
        .keys()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate.as_str()))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Where the value of `key` came from: the file's absolute path, the environment
/// variable's name, or the built-in defaults.
pub fn origin(figment: &Figment, key: &str) -> String {
    figment
        .find_metadata(key)
        .map_or_else(|| "the configuration".to_owned(), |m| describe(m, key))
}

fn describe(metadata: &Metadata, key: &str) -> String {
    match &metadata.source {
        Some(Source::File(path)) => absolute(path),
        _ if metadata.name.contains("environment") => {
            let keys: Vec<&str> = key.split('.').collect();
            format!(
                "environment variable {}",
                metadata.interpolate(&Profile::Default, &keys)
            )
        }
        _ => metadata.name.to_string(),
    }
}

pub fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// A figment extraction error, as problems: the key without figment's profile prefix and the
/// value's origin, one per chained error.
pub fn from_figment_error(figment: &Figment, error: figment::Error) -> Vec<Problem> {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let reason = if key.is_empty() {
                e.kind.to_string()
            } else {
                format!("{} (set in {})", e.kind, origin(figment, &key))
            };
            Problem {
                key: if key.is_empty() {
                    "configuration".to_owned()
                } else {
                    key
                },
                reason,
            }
        })
        .collect()
}

/// A TOML file that does not parse: its absolute path, line and column, and what is wrong.
pub fn toml_syntax(path: &Path, text: &str) -> Option<Problem> {
    toml_text_syntax(&format!("file {}", absolute(path)), text)
}

/// A syntax error in TOML `text` from `source` ("file /etc/loginwith.toml"), with its line
/// and column.
pub fn toml_text_syntax(source: &str, text: &str) -> Option<Problem> {
    let error = text.parse::<toml::Table>().err()?;
    let position = error.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!(", line {line}, column {column}")
    });
    Some(Problem {
        key: format!("{source}{}", position.unwrap_or_default()),
        // toml's message can run over several lines: one line here.
        reason: error
            .message()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    })
}
