//! `loginwith users …`: the operators' commands on people, run against the configured
//! database (SQLite or PostgreSQL) while instances serve. Each says what it did in one
//! answer, and never prints a secret (no session id, no token).

use std::time::Duration;

use serde_json::json;

use super::database::open_store;
use crate::{
    config::Config,
    store::{ActivityEntry, LiveSession, Outcome, PeopleFilter, PersonSummary, Store, UserId},
    web::pages::utc_date,
};

/// Whom a command is about, as the operator names them: a person's id, or their address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    /// The person's id (`users list` shows it).
    Id(i64),
    /// Their address; refused when two people have it.
    Email(String),
}

impl std::str::FromStr for Person {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(id) = text.parse::<i64>() {
            return Ok(Self::Id(id));
        }
        if text.contains('@') && !text.chars().any(char::is_whitespace) {
            return Ok(Self::Email(text.to_owned()));
        }
        Err(format!(
            "{text:?} is neither a person's id (a number) nor an email address"
        ))
    }
}

/// Which people `loginwith users list` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Filter {
    /// Everyone.
    #[default]
    Everyone,
    /// People whose address is this one (ASCII case aside).
    Email(String),
    /// People with an identity at this provider (its id in the configuration).
    Provider(String),
}

impl From<Filter> for PeopleFilter {
    fn from(filter: Filter) -> Self {
        match filter {
            Filter::Everyone => Self::Everyone,
            Filter::Email(email) => Self::Email(email),
            Filter::Provider(provider) => Self::Provider(provider),
        }
    }
}

/// What `loginwith users` is asked to do.
#[derive(Debug, Clone)]
pub enum UsersCommand {
    /// Who exists (at most `limit`), their identities and live sessions.
    List {
        /// Whom to list.
        filter: Filter,
        /// At most this many (the answer says how many there are in all).
        limit: u32,
        /// JSON instead of lines.
        json: bool,
    },
    /// One person, their sessions and recent activity.
    Show {
        /// Whom.
        person: Person,
        /// JSON instead of lines.
        json: bool,
    },
    /// End every session of that person now.
    SignOut {
        /// Whom.
        person: Person,
    },
    /// End every session and refuse later sign-ins.
    Block {
        /// Whom.
        person: Person,
        /// Kept with the block and shown by `users show`.
        reason: Option<String>,
    },
    /// Lift a block.
    Unblock {
        /// Whom.
        person: Person,
    },
    /// The same deletion as the person's own "Delete my account".
    Delete {
        /// Whom.
        person: Person,
    },
}

/// Runs `command` on the database of `config`: what to print, or why it failed (exit 1).
pub async fn users(config: &Config, command: UsersCommand) -> Result<String, String> {
    let store = open_store(config).await.map_err(|e| e.to_string())?;
    let absolute = Duration::from_secs(u64::from(config.session.absolute_days) * 24 * 60 * 60);
    let oldest_live = crate::model::now_ms().saturating_sub(crate::model::millis(absolute));
    let answer = run(&store, command, oldest_live).await;
    store.close().await;
    answer
}

/// Runs `command`; sessions begun before `oldest_live` are past their absolute lifetime and
/// not counted or shown.
async fn run(store: &Store, command: UsersCommand, oldest_live: i64) -> Result<String, String> {
    let failed = |e: crate::store::StoreError| e.to_string();
    match command {
        UsersCommand::List {
            filter,
            limit,
            json,
        } => {
            let filter = PeopleFilter::from(filter);
            let (people, total) = store
                .people(&filter, limit, oldest_live)
                .await
                .map_err(failed)?;
            if json {
                let people: Vec<_> = people.iter().map(person_json).collect();
                return Ok(pretty(&json!({ "total": total, "people": people })));
            }
            let mut out = String::new();
            for person in &people {
                out.push_str(&person_line(person));
                out.push('\n');
            }
            out.push_str(&match (people.len(), total) {
                (0, _) => "nobody matches".to_owned(),
                (shown, total) if i64::try_from(shown).is_ok_and(|n| n < total) => {
                    format!("{shown} of {total} people shown (--limit shows more)")
                }
                (1, _) => "1 person".to_owned(),
                (shown, _) => format!("{shown} people"),
            });
            Ok(out)
        }
        UsersCommand::Show { person, json } => {
            let user = resolve(store, &person).await?;
            let summary = store
                .person(user, oldest_live)
                .await
                .map_err(failed)?
                .ok_or_else(|| nobody(&person))?;
            let sessions = store
                .live_sessions(user, oldest_live)
                .await
                .map_err(failed)?;
            let activity = store.recent_activity(user, RECENT).await.map_err(failed)?;
            Ok(if json {
                show_json(&summary, &sessions, &activity)
            } else {
                show_text(&summary, &sessions, &activity)
            })
        }
        UsersCommand::SignOut { person } => {
            let user = resolve(store, &person).await?;
            store
                .person(user, oldest_live)
                .await
                .map_err(failed)?
                .ok_or_else(|| nobody(&person))?;
            let ended = store.end_sessions_of(user, None).await.map_err(failed)?;
            Ok(format!(
                "person {user}: {ended} session(s) ended; they must sign in again everywhere"
            ))
        }
        UsersCommand::Block { person, reason } => {
            let user = resolve(store, &person).await?;
            let ended = store
                .block(user, reason.as_deref())
                .await
                .map_err(failed)?
                .ok_or_else(|| nobody(&person))?;
            Ok(format!(
                "person {user} blocked: {ended} session(s) ended; every sign-in is refused until \
                 `loginwith users unblock {user}`"
            ))
        }
        UsersCommand::Unblock { person } => {
            let user = resolve(store, &person).await?;
            let was = store
                .unblock(user)
                .await
                .map_err(failed)?
                .ok_or_else(|| nobody(&person))?;
            Ok(if was {
                format!("person {user} unblocked: they may sign in again")
            } else {
                format!("person {user} was not blocked: nothing changed")
            })
        }
        UsersCommand::Delete { person } => {
            let user = resolve(store, &person).await?;
            let deletion = store.delete_user(user).await.map_err(failed)?;
            if !deletion.profile_deleted {
                return Err(nobody(&person));
            }
            Ok(format!(
                "person {user} deleted: their identities, sessions, sign-ins in progress and \
                 activity are gone"
            ))
        }
    }
}

/// How many lines of recent activity `users show` prints (as many as the account page).
const RECENT: u32 = 10;

/// A device label, or what to say without one.
fn device(label: Option<&str>) -> &str {
    label.unwrap_or("an unrecognised browser")
}

fn outcome(entry: &ActivityEntry) -> &'static str {
    match entry.outcome {
        Outcome::SignedIn => "signed in",
        Outcome::Refused => "refused",
    }
}

/// `users show`: the person's line, their block, sessions and recent activity.
fn show_text(
    person: &PersonSummary,
    sessions: &[LiveSession],
    activity: &[ActivityEntry],
) -> String {
    let mut out = person_line(person);
    out.push('\n');
    if let Some(block) = &person.blocked {
        let reason = block
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "blocked since {}{reason}\n",
            utc_date(block.at_ms)
        ));
    }
    out.push_str(&format!("sessions ({}):\n", sessions.len()));
    for s in sessions {
        out.push_str(&format!(
            "  {} with {}, signed in {}, last used {}\n",
            device(s.device.as_deref()),
            s.provider.as_deref().unwrap_or("?"),
            utc_date(s.since_ms),
            utc_date(s.last_seen_ms)
        ));
    }
    out.push_str(&format!("recent activity ({}):", activity.len()));
    for a in activity {
        out.push_str(&format!(
            "\n  {} {} with {} from {}",
            utc_date(a.at_ms),
            outcome(a),
            a.provider,
            device(a.device.as_deref())
        ));
    }
    out
}

/// `users show --json`.
fn show_json(
    person: &PersonSummary,
    sessions: &[LiveSession],
    activity: &[ActivityEntry],
) -> String {
    let mut value = person_json(person);
    value["sessions"] = sessions
        .iter()
        .map(|s| {
            json!({
                "device": s.device,
                "provider": s.provider,
                "signed_in_at": utc_date(s.since_ms),
                "last_used": utc_date(s.last_seen_ms),
            })
        })
        .collect();
    value["recent_activity"] = activity
        .iter()
        .map(|a| {
            json!({
                "outcome": outcome(a).replace(' ', "_"),
                "provider": a.provider,
                "device": a.device,
                "at": utc_date(a.at_ms),
            })
        })
        .collect();
    pretty(&value)
}

/// The person `who` names; an address two people share is refused, naming both.
async fn resolve(store: &Store, who: &Person) -> Result<UserId, String> {
    match who {
        Person::Id(id) => Ok(UserId(*id)),
        Person::Email(email) => {
            let ids = store
                .people_with_email(email)
                .await
                .map_err(|e| e.to_string())?;
            match ids.as_slice() {
                [] => Err(nobody(who)),
                [one] => Ok(*one),
                several => Err(format!(
                    "{email} is the address of {} people (ids {}): name one by id",
                    several.len(),
                    several
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
    }
}

fn nobody(who: &Person) -> String {
    match who {
        Person::Id(id) => format!("there is no person {id}"),
        Person::Email(email) => format!("nobody has the address {email}"),
    }
}

/// `7  Ada Lovelace <ada@example.com> (verified)  facebook:1234, github:99  2 sessions  BLOCKED`
fn person_line(person: &PersonSummary) -> String {
    let identities: Vec<String> = person
        .identities
        .iter()
        .map(|(provider, subject)| format!("{provider}:{subject}"))
        .collect();
    format!(
        "{}\t{}{}\t{}\t{} session(s)\tsince {}{}",
        person.id,
        person.name.as_deref().unwrap_or("(no name)"),
        person
            .email
            .as_deref()
            .map(|e| format!(
                " <{e}>{}",
                if person.email_verified {
                    " (verified)"
                } else {
                    ""
                }
            ))
            .unwrap_or_default(),
        identities.join(", "),
        person.live_sessions,
        utc_date(person.created_ms),
        if person.blocked.is_some() {
            "\tBLOCKED"
        } else {
            ""
        }
    )
}

fn person_json(person: &PersonSummary) -> serde_json::Value {
    json!({
        "id": person.id.0,
        "name": person.name,
        "email": person.email,
        "email_verified": person.email_verified,
        "created_at": utc_date(person.created_ms),
        "identities": person.identities.iter().map(|(provider, subject)| json!({
            "provider": provider,
            "subject": subject,
        })).collect::<Vec<_>>(),
        "live_sessions": person.live_sessions,
        "blocked": person.blocked.as_ref().map(|b| json!({
            "since": utc_date(b.at_ms),
            "reason": b.reason,
        })),
    })
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
