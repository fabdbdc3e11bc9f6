//! Where log lines go and which ones: standard error, filtered by `RUST_LOG`, as text or (with
//! `log.format = "json"`) one JSON object per line.
//!
//! Standard error, not standard output: output is for what a command prints (`--help`,
//! `check`), and logs are diagnostics. Colours only when standard error is a terminal and
//! `NO_COLOR` (<https://no-color.org>) is unset or empty, so that files and journals get plain
//! text. A `RUST_LOG` that cannot be what was meant is not obeyed: one WARN line says why, and
//! logging goes on at `info` rather than going silent.

use std::{ffi::OsString, io::IsTerminal, time::Duration};

use tracing::{Event, Subscriber, field, level_filters::LevelFilter};
use tracing_subscriber::{
    EnvFilter,
    layer::{Context, Layer, SubscriberExt},
};

use crate::config::{Config, LogFormat};

/// The level when `RUST_LOG` is unset, empty or ignored.
const DEFAULT: &str = "info";

/// The levels a directive may name (any case; `tracing` also reads 0 to 5), for the warning.
const LEVELS: &str = "off, error, warn, info, debug, trace";

/// Installs the process's log subscriber: standard error in `format`, colours as described in
/// the module documentation (never in JSON), the filter from `RUST_LOG`. Call it once, as soon
/// as the configuration is read; a second call (or one after another subscriber was
/// installed) changes nothing.
///
/// JSON: one object per line with `timestamp`, `level`, `target`, `fields` (`message` and the
/// event's own fields), and `span` and `spans` when the event happened inside some.
pub fn init(config: &Config) {
    let repeats = LoggedElsewhere::new(Duration::from_secs(config.database.connect_timeout_secs));
    let format = config.log.format;
    let (filter, ignored) = filter(std::env::var_os("RUST_LOG"));
    let installed = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .with_writer(std::io::stderr)
            .finish()
            .with(repeats)
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .finish()
            .with(repeats)
            .try_init(),
    };
    use tracing_subscriber::util::SubscriberInitExt as _;
    if let (Ok(()), Some(why)) = (installed, ignored) {
        tracing::warn!("{why}; logging at {DEFAULT}");
    }
}

/// Drops what other crates log about a failure loginwith logs itself (once, with its cause
/// and, for a 500, the reference people see), so that one failure is one line and an outage
/// one WARN (`store::outage`) rather than lines per request:
/// - tower-sessions' own ERRORs from loading or saving a session (its session's
///   instrumented `load`/`save`): the request's error, or its service's line below, says it;
/// - its WARN "possibly suspicious activity: record not found in store", for a cookie naming
///   a session that no longer exists: an everyday event here (a session expired and cleaned
///   up, signed out on another instance or ended by a deletion), answered as a visitor not
///   signed in with a new id; a made-up id is no threat to server-side sessions whose ids
///   are 128 random bits, and the tests' outages made it a stray line per lost `/success`;
/// - tower-sessions' service's "failed to save session" when the cause is the database being
///   unavailable: each such request is a 503 already, counted in the outage;
/// - sqlx's "slow statement" WARNs for statements that ran into the database wait
///   (`database.connect_timeout_secs`: SQLite's busy timeout, PostgreSQL's
///   `statement_timeout`) and touched no row: cut off there, they became such 503s.
///
/// Everything else passes: a session save that failed for another reason (tower-sessions'
/// line is then the only one), and statements slow but below the wait, which sqlx still
/// reports from one second on.
#[derive(Debug, Clone, Copy)]
pub struct LoggedElsewhere {
    /// A statement this slow was cut off by the database wait.
    cut_off: Duration,
}

impl LoggedElsewhere {
    /// For an app whose database wait is `database_wait` (`database.connect_timeout_secs`).
    pub fn new(database_wait: Duration) -> Self {
        Self {
            // Timers fire a little late, never early.
            cut_off: database_wait.saturating_sub(Duration::from_millis(5)),
        }
    }

    fn is_repeat(&self, event: &Event<'_>) -> bool {
        let target = event.metadata().target();
        let mut repeat = false;
        if target == "tower_sessions_core::session" {
            repeat = *event.metadata().level() == tracing::Level::ERROR;
            event.record(&mut |field: &field::Field, value: &dyn std::fmt::Debug| {
                if field.name() == "message" {
                    repeat |= format!("{value:?}").contains("record not found in store");
                }
            });
        } else if target.starts_with("tower_sessions") {
            event.record(&mut |field: &field::Field, value: &dyn std::fmt::Debug| {
                if field.name() == "err" {
                    repeat |= format!("{value:?}").contains(crate::store::UNAVAILABLE);
                }
            });
        } else if target == "sqlx::query" && *event.metadata().level() == tracing::Level::WARN {
            let cut_off = self.cut_off.as_secs_f64();
            let mut visitor = SlowStatement {
                cut_off,
                elapsed: 0.0,
                rows: 0,
            };
            event.record(&mut visitor);
            repeat = visitor.was_cut_off();
        }
        repeat
    }
}

impl<S: Subscriber> Layer<S> for LoggedElsewhere {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        !self.is_repeat(event)
    }
}

/// Reads a slow-statement event of sqlx: how long it took, and whether it touched a row (a
/// statement cut off at the wait touched none; one that succeeded slowly may have).
struct SlowStatement {
    cut_off: f64,
    elapsed: f64,
    rows: u64,
}

impl SlowStatement {
    fn was_cut_off(&self) -> bool {
        self.elapsed >= self.cut_off && self.rows == 0
    }
}

impl field::Visit for SlowStatement {
    fn record_f64(&mut self, field: &field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = value;
        }
    }

    fn record_u64(&mut self, field: &field::Field, value: u64) {
        if matches!(field.name(), "rows_affected" | "rows_returned") {
            self.rows += value;
        }
    }

    fn record_debug(&mut self, _: &field::Field, _: &dyn std::fmt::Debug) {}
}

/// Colours when writing to a terminal, unless `NO_COLOR` holds anything.
fn colour(is_terminal: bool, no_color: Option<OsString>) -> bool {
    is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// The filter `rust_log` asks for, or [`DEFAULT`] with the reason `rust_log` was ignored.
fn filter(rust_log: Option<OsString>) -> (EnvFilter, Option<String>) {
    let fallback = || EnvFilter::new(DEFAULT);
    let Some(raw) = rust_log.filter(|value| !value.is_empty()) else {
        return (fallback(), None);
    };
    let Some(text) = raw.to_str() else {
        return (
            fallback(),
            Some(format!("RUST_LOG={raw:?} ignored: not UTF-8")),
        );
    };
    let parsed = match unleveled(text) {
        Some(directive) => Err(format!(
            "`{directive}` is neither a level ({LEVELS}) nor `target=level` (a target alone \
             would show its own lines only)"
        )),
        None => EnvFilter::builder().parse(text).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(filter) => (filter, None),
        Err(why) => (
            fallback(),
            Some(format!("RUST_LOG={text:?} ignored: {why}")),
        ),
    }
}

/// The first directive that names no level: neither a level (`info`) nor `target=level`.
/// `tracing` reads a bare word such as `verbose` as "the target `verbose`, every level", which
/// silences everything else: almost always a mistake, so it is refused like a syntax error.
fn unleveled(text: &str) -> Option<&str> {
    text.split(',').map(str::trim).find(|directive| {
        // The level follows the last `]` of a span filter, if there is one.
        let tail = directive.rsplit(']').next().unwrap_or(directive);
        !directive.is_empty() && !tail.contains('=') && directive.parse::<LevelFilter>().is_err()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignored(value: &str) -> Option<String> {
        filter(Some(value.into())).1
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("".into())));
    }

    #[test]
    fn valid_filters_are_obeyed() {
        for value in [
            "info",
            "DEBUG",
            "warn,loginwith=debug",
            "loginwith::web=trace",
            "off",
            "info,[request]=debug",
            "3",
        ] {
            assert_eq!(ignored(value), None, "{value}");
        }
        let (filter, why) = filter(Some("loginwith=debug,warn".into()));
        assert_eq!(why, None);
        assert_eq!(filter.to_string(), "loginwith=debug,warn");
    }

    #[test]
    fn unset_and_empty_mean_info_without_a_warning() {
        for value in [None, Some(OsString::new())] {
            let (filter, why) = filter(value);
            assert_eq!(why, None);
            assert_eq!(filter.to_string(), "info");
        }
    }

    #[test]
    fn invalid_filters_fall_back_to_info_and_say_why() {
        for (value, reason) in [
            ("verbose", "`verbose` is neither a level (off, error"),
            ("info,loginwith", "`loginwith` is neither a level"),
            ("[request]", "`[request]` is neither a level"),
            ("loginwith=loud", "RUST_LOG=\"loginwith=loud\" ignored: "),
            ("loginwith=debug=x", "ignored: "),
            // `tracing` reads no spaces between directives.
            ("info, sqlx=warn", "error parsing level filter"),
        ] {
            let (filter, why) = filter(Some(value.into()));
            let why = why.unwrap_or_else(|| panic!("{value} is accepted"));
            assert!(why.contains(reason), "{value}: {why}");
            assert!(why.contains("ignored"), "{value}: {why}");
            assert_eq!(filter.to_string(), "info", "{value}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_filter_that_is_not_utf8_is_ignored() {
        use std::os::unix::ffi::OsStringExt;
        let why = filter(Some(OsString::from_vec(vec![0x66, 0xff])))
            .1
            .unwrap();
        assert!(why.contains("not UTF-8"), "{why}");
    }

    /// What passes [`LoggedElsewhere`], as the lines a subscriber with it writes.
    fn passed(emit: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt as _;
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
            .with(LoggedElsewhere::new(Duration::from_secs(1)));
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_stale_session_cookie_is_not_a_warning_but_other_session_warnings_are() {
        let log = passed(|| {
            tracing::warn!(
                target: "tower_sessions_core::session",
                "possibly suspicious activity: record not found in store"
            );
            tracing::error!(target: "tower_sessions_core::session", "load failed");
            tracing::warn!(target: "tower_sessions_core::session", "something else");
        });
        assert!(!log.contains("record not found"), "{log}");
        assert!(!log.contains("load failed"), "{log}");
        assert!(log.contains("something else"), "{log}");
    }
}
