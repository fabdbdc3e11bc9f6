//! Configuration layers and the start-up refusals.

use std::process::Command;

use figment::{
    Figment,
    providers::{Format, Toml},
};
use loginwith::config::{
    Config, ConfigError, Environment, LogFormat, ProviderConfig, RawEnv, Sources,
};

fn production(extra: &str) -> Result<Config, ConfigError> {
    let figment = Config::defaults_figment()
        .merge(Toml::file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/production.toml"
        )))
        .merge(Toml::string(extra));
    Config::from_figment(figment, Environment::Production)
}

/// The `[providers.facebook]` table.
fn facebook(config: &Config) -> &ProviderConfig {
    config
        .providers
        .get("facebook")
        .expect("facebook is shipped")
}

const GOOD_PRODUCTION: &str = r#"
[server]
public_url = "https://login.example.com"
[providers.facebook]
client_id = "1234"
client_secret = "s3cret"
"#;

#[test]
fn defaults_are_the_development_setup() {
    let config = Config::from_figment(Config::defaults_figment(), Environment::Development)
        .expect("defaults are valid");
    assert_eq!(config.server.bind.to_string(), "127.0.0.1:3000");
    assert_eq!(config.server.public_url.as_str(), "http://localhost:3000/");
    assert_eq!(config.session.remember_days, 30);
    assert_eq!(config.login.exchange_timeout_secs, 15);
    assert_eq!(config.login.poll_interval_ms, 1000);
    assert_eq!(config.login.poll_limit_secs, 60);
    assert!(config.uses_dev_provider());
    assert_eq!(
        facebook(&config).oauth().unwrap().authorize_url.as_str(),
        "https://www.facebook.com/v25.0/dialog/oauth"
    );
    assert_eq!(
        config.redirect_uri("facebook"),
        "http://localhost:3000/callback/facebook"
    );
}

#[test]
fn a_good_production_configuration_starts() {
    let config = production(GOOD_PRODUCTION).expect("valid");
    assert!(!config.uses_dev_provider());
    assert!(config.session.secure);
    assert_eq!(
        config.redirect_uri("facebook"),
        "https://login.example.com/callback/facebook"
    );
}

#[test]
fn production_refuses_unsafe_settings() {
    let cases = [
        ("[dev_provider]\nenabled = true", "dev_provider.enabled"),
        ("[session]\nsecure = false", "session.secure"),
        (
            "[providers.facebook]\nclient_secret = \"\"",
            "providers.facebook.client_secret",
        ),
        (
            "[providers.facebook]\nclient_id = \"\"",
            "providers.facebook.client_id",
        ),
        (
            "[server]\npublic_url = \"http://login.example.com\"",
            "server.public_url",
        ),
        (
            "[providers.facebook]\nauthorize_url = \"http://www.facebook.com/v25.0/dialog/oauth\"",
            "providers.facebook.authorize_url",
        ),
        (
            "[providers.facebook]\ntoken_url = \"http://graph.facebook.com/v25.0/oauth/access_token\"",
            "providers.facebook.token_url",
        ),
        (
            "[providers.facebook]\napi_url = \"http://graph.facebook.com/v25.0\"",
            "providers.facebook.api_url",
        ),
        (
            "[providers.facebook]\nissuer = \"http://issuer.example\"",
            "providers.facebook.issuer",
        ),
    ];
    for (override_toml, key) in cases {
        let figment_text = format!("{GOOD_PRODUCTION}\n");
        let merged = Config::defaults_figment()
            .merge(Toml::file(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/config/production.toml"
            )))
            .merge(Toml::string(&figment_text))
            .merge(Toml::string(override_toml));
        let error = Config::from_figment(merged, Environment::Production)
            .expect_err(override_toml)
            .to_string();
        assert!(error.contains(key), "{override_toml}: {error}");
        assert!(!error.contains('\n'));
    }
}

#[test]
fn invalid_values_name_their_key() {
    let cases = [
        ("[login]\npoll_interval_ms = 0", "login.poll_interval_ms"),
        (
            "[login]\nexchange_timeout_secs = 0",
            "login.exchange_timeout_secs",
        ),
        (
            "[server]\npublic_url = \"http://x.example/app?x=1\"",
            "server.public_url",
        ),
        ("[session]\ncookie_name = \"a b\"", "session.cookie_name"),
        ("[login]\npoll_interval_ms = \"soon\"", "poll_interval_ms"),
        ("[login]\npol_interval_ms = 5", "pol_interval_ms"),
        ("[dev_provider]\nfault = \"meltdown\"", "fault"),
    ];
    for (text, key) in cases {
        let figment: Figment = Config::defaults_figment().merge(Toml::string(text));
        let error = Config::from_figment(figment, Environment::Development)
            .expect_err(text)
            .to_string();
        assert!(error.contains(key), "{text}: {error}");
    }
}

#[test]
fn a_public_url_with_a_path_mounts_loginwith_below_it() {
    // On localhost: with no provider configured the development provider stands in, and it
    // only runs at a loopback public URL.
    for (url, base, redirect_uri) in [
        (
            "http://localhost:3000",
            "",
            "http://localhost:3000/callback/facebook",
        ),
        (
            "http://localhost:3000/",
            "",
            "http://localhost:3000/callback/facebook",
        ),
        (
            "http://localhost:3000/auth",
            "/auth",
            "http://localhost:3000/auth/callback/facebook",
        ),
        (
            "http://localhost:3000/a/b/",
            "/a/b",
            "http://localhost:3000/a/b/callback/facebook",
        ),
    ] {
        let text = format!("[server]\npublic_url = \"{url}\"");
        let config = Config::from_toml(&text, Environment::Development).expect(url);
        assert_eq!(config.base_path(), base, "{url}");
        assert_eq!(config.redirect_uri("facebook"), redirect_uri, "{url}");
    }
    for url in [
        "http://localhost:3000/auth?x=1",
        "http://localhost:3000/auth#top",
        "http://user@localhost:3000/auth",
    ] {
        let text = format!("[server]\npublic_url = \"{url}\"");
        let error = Config::from_toml(&text, Environment::Development)
            .expect_err(url)
            .to_string();
        assert!(error.contains("server.public_url"), "{url}: {error}");
    }
    let error = Config::from_toml("[server\n", Environment::Development)
        .expect_err("a syntax error")
        .to_string();
    assert!(error.contains("the TOML given, line 1"), "{error}");
}

#[test]
fn a_config_file_layer_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("local.toml");
    std::fs::write(&file, "[login]\npoll_interval_ms = 250\n").unwrap();
    let config = Config::load(&Sources {
        environment: None,
        file: Some(file),
    })
    .unwrap();
    assert_eq!(config.login.poll_interval_ms, 250);

    let missing = Config::load(&Sources {
        environment: None,
        file: Some(dir.path().join("nope.toml")),
    })
    .unwrap_err();
    assert!(missing.to_string().contains("--config"));
    let bad_env = Config::load(&Sources {
        environment: Some("staging".into()),
        file: None,
    })
    .unwrap_err();
    assert!(bad_env.to_string().contains("LOGINWITH_ENV"));
}

#[test]
fn the_binary_stops_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = loginwith(
        dir.path(),
        &[],
        &[("LOGINWITH_LOGIN__POLL_INTERVAL_MS", "5")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("login.poll_interval_ms"), "{stderr}");
}

#[test]
fn production_without_credentials_refuses_to_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_loginwith"))
        .env("LOGINWITH_ENV", "production")
        .env("LOGINWITH_SERVER__PUBLIC_URL", "https://login.example.com")
        .env_remove("LOGINWITH_CONFIG")
        .output()
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("providers.facebook.client_id"), "{stderr}");
}

/// `LOGINWITH_…` variables as the process would have them.
fn from_env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = RawEnv::from_vars(
        "LOGINWITH_",
        vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Config::from_figment(
        Config::defaults_figment().merge(env),
        Environment::Development,
    )
}

#[test]
fn string_keys_from_the_environment_keep_the_text_as_typed() {
    // Facebook App IDs are all digits; secrets and names may look like numbers or booleans.
    for value in ["1234567890", "0123", "1e5", "0x10", "true", "-1", "12.50"] {
        let scopes = format!("[{value}, email]");
        let database = format!("sqlite://{value}");
        let config = from_env(&[
            ("LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_ID", value),
            ("LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_SECRET", value),
            ("LOGINWITH_SESSION__COOKIE_NAME", &value.replace('.', "_")),
            ("LOGINWITH_DATABASE__URL", &database),
            ("LOGINWITH_PROVIDERS__FACEBOOK__SCOPES", &scopes),
        ])
        .unwrap_or_else(|e| panic!("{value}: {e}"));
        let facebook = facebook(&config);
        assert_eq!(facebook.client_id, value);
        assert_eq!(facebook.client_secret, value);
        assert_eq!(config.session.cookie_name, value.replace('.', "_"));
        assert_eq!(config.database.url, database);
        assert_eq!(facebook.scopes(), [value, "email"]);
    }
}

#[test]
fn numbers_and_switches_from_the_environment_are_still_read_as_such() {
    let config = from_env(&[
        ("LOGINWITH_LOGIN__POLL_INTERVAL_MS", "250"),
        ("LOGINWITH_SESSION__SECURE", "true"),
        ("LOGINWITH_SERVER__BIND", "127.0.0.1:8080"),
    ])
    .unwrap();
    assert_eq!(config.login.poll_interval_ms, 250);
    assert!(config.session.secure);
    assert_eq!(config.server.bind.port(), 8080);
    let error = from_env(&[("LOGINWITH_LOGIN__POLL_INTERVAL_MS", "soon")])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("LOGINWITH_LOGIN__POLL_INTERVAL_MS"),
        "{error}"
    );
}

#[test]
fn an_all_digit_app_id_in_a_toml_file_is_text() {
    let figment = Config::defaults_figment().merge(Toml::string(
        "[providers.facebook]\nclient_id = 1234567890\nclient_secret = 42\n",
    ));
    let config = Config::from_figment(figment, Environment::Development).unwrap();
    assert_eq!(facebook(&config).client_id, "1234567890");
    assert_eq!(facebook(&config).client_secret, "42");
}

#[test]
fn the_development_provider_only_runs_on_a_loopback_address() {
    for bind in ["127.0.0.1:3000", "127.0.0.2:3000", "[::1]:3000"] {
        let config = from_env(&[("LOGINWITH_SERVER__BIND", bind)]).unwrap();
        assert!(config.uses_dev_provider(), "{bind}");
    }
    for bind in ["0.0.0.0:3000", "[::]:3000", "192.0.2.10:3000"] {
        let error = from_env(&[("LOGINWITH_SERVER__BIND", bind)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("dev_provider.enabled"), "{bind}: {error}");
        assert!(error.contains("loopback"), "{bind}: {error}");
        assert!(!error.contains('\n'));
    }
    // A real app, or the development provider switched off, may listen anywhere.
    from_env(&[
        ("LOGINWITH_SERVER__BIND", "0.0.0.0:3000"),
        ("LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_ID", "1234567890"),
        ("LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_SECRET", "s3cret"),
    ])
    .unwrap();
}

#[test]
fn the_development_provider_only_runs_behind_a_loopback_public_url() {
    // What browsers are sent to decides who can use it: a proxy or a tunnel in front of a
    // loopback bind would otherwise offer "sign in as anyone" to everyone it serves.
    // `.localhost` names are loopback by RFC 6761; no public name ends in one.
    for url in [
        "http://localhost:3000",
        "http://LocalHost:3000/auth",
        "http://localhost.:3000",
        "http://login.example.localhost:3000",
        "http://127.0.0.1:3000",
        "http://127.8.9.10:3000",
        "http://[::1]:3000",
    ] {
        let config = from_env(&[("LOGINWITH_SERVER__PUBLIC_URL", url)])
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(config.uses_dev_provider(), "{url}");
    }
    for vars in [
        // The review's case: a local nginx in front, listed as the trusted proxy.
        &[
            ("LOGINWITH_SERVER__PUBLIC_URL", "https://login.example.test"),
            ("LOGINWITH_SERVER__TRUSTED_PROXIES", "[127.0.0.1]"),
        ][..],
        &[("LOGINWITH_SERVER__PUBLIC_URL", "http://192.0.2.10:3000")],
        &[("LOGINWITH_SERVER__PUBLIC_URL", "http://[2001:db8::1]:3000")],
        &[(
            "LOGINWITH_SERVER__PUBLIC_URL",
            "http://[::ffff:127.0.0.1]:3000",
        )],
        &[("LOGINWITH_SERVER__PUBLIC_URL", "http://0.0.0.0:3000")],
        &[(
            "LOGINWITH_SERVER__PUBLIC_URL",
            "http://localhost.example.com:3000",
        )],
        &[("LOGINWITH_SERVER__PUBLIC_URL", "http://notlocalhost:3000")],
    ] {
        let error = from_env(vars).unwrap_err().to_string();
        assert!(error.contains("dev_provider.enabled"), "{vars:?}: {error}");
        assert!(error.contains("server.public_url"), "{vars:?}: {error}");
        assert!(error.contains("loopback"), "{vars:?}: {error}");
        assert!(!error.contains('\n'), "{vars:?}: {error}");
    }
    // A real app may be reached at any public URL.
    from_env(&[
        ("LOGINWITH_SERVER__PUBLIC_URL", "https://login.example.test"),
        ("LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_ID", "1234567890"),
        ("LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_SECRET", "s3cret"),
    ])
    .unwrap();
}

#[test]
fn check_refuses_the_development_provider_behind_a_public_url() {
    // `check`, not `serve`: both load the configuration before anything else, and `check`
    // ends where a server that wrongly started would not.
    let dir = tempfile::tempdir().unwrap();
    let output = loginwith(
        dir.path(),
        &["check"],
        &[
            ("LOGINWITH_SERVER__BIND", "127.0.0.1:0"),
            ("LOGINWITH_SERVER__PUBLIC_URL", "https://login.example.test"),
            ("LOGINWITH_SERVER__TRUSTED_PROXIES", "[127.0.0.1]"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("dev_provider.enabled"), "{stderr}");
    assert!(stderr.contains("server.public_url"), "{stderr}");
}

#[test]
fn the_binary_refuses_the_development_provider_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = loginwith(dir.path(), &[], &[("LOGINWITH_SERVER__BIND", "0.0.0.0:0")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("dev_provider.enabled"), "{stderr}");
}

/// `check` tries the database as start-up would, without creating or migrating anything: an
/// unreachable server is a failure that says why in plain words.
#[test]
fn check_tries_the_database_and_says_plainly_why_it_cannot_connect() {
    let dir = tempfile::tempdir().unwrap();
    let output = loginwith(dir.path(), &["check"], &[]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("# database now: ") && stdout.contains("does not exist yet"),
        "{stdout}"
    );
    assert!(!dir.path().join("data").exists(), "check created nothing");

    // Port 1: nobody listens there.
    let output = loginwith(
        dir.path(),
        &["check"],
        &[("LOGINWITH_DATABASE__URL", "postgres://nobody@127.0.0.1:1/x")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("database x on 127.0.0.1:1") && stderr.contains("Connection refused"),
        "{stderr}"
    );
}

/// The binary with only `vars` of ours in its environment, in `dir`.
fn loginwith(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loginwith"));
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOGINWITH_") {
            command.env_remove(name);
        }
    }
    command
        .envs(vars.iter().copied())
        .output()
        .expect("run the binary")
}

#[test]
fn help_and_version_answer_without_a_configuration() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--help", "--version"] {
        // Even a broken configuration does not stand in their way.
        let output = loginwith(dir.path(), &[flag], &[("LOGINWITH_SERVER__BND", "x")]);
        assert!(output.status.success(), "{flag}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("loginwith"), "{flag}: {stdout}");
    }
    let help = loginwith(dir.path(), &["--help"], &[]);
    let help = String::from_utf8_lossy(&help.stdout);
    for command in ["serve", "check", "migrate", "rotate-key", "--config"] {
        assert!(help.contains(command), "{command} in {help}");
    }
}

#[test]
fn check_prints_the_configuration_without_secrets_and_what_to_register() {
    let dir = tempfile::tempdir().unwrap();
    let output = loginwith(
        dir.path(),
        &["check"],
        &[
            ("LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_ID", "1234567890"),
            (
                "LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_SECRET",
                "0123456789abcdef",
            ),
            ("LOGINWITH_SERVER__PUBLIC_URL", "https://login.example.com"),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("0123456789abcdef"),
        "the secret is shown: {stdout}"
    );
    for expected in [
        "client_id = \"1234567890\"",
        "client_secret = \"[redacted]\"",
        "https://login.example.com/callback/facebook",
        "https://login.example.com/facebook/deauthorize",
        "https://login.example.com/facebook/data-deletion",
    ] {
        assert!(stdout.contains(expected), "{expected} in {stdout}");
    }
    // What it prints is a configuration file loginwith itself reads back.
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, stdout.as_bytes()).unwrap();
    let figment = Config::defaults_figment().merge(Toml::file(&printed));
    let reread = Config::from_figment(figment, Environment::Development).unwrap();
    assert_eq!(facebook(&reread).client_id, "1234567890");
}

#[test]
fn check_lists_every_problem_at_once_with_the_key_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.toml"),
        "[server]\nbnd = \"127.0.0.1:1\"\n[sesion]\nsecure = true\n",
    )
    .unwrap();
    let output = loginwith(
        dir.path(),
        &["check", "--config", "typo.toml"],
        &[
            ("LOGINWITH_LOGIN__POL_INTERVAL_MS", "5"),
            ("LOGINWITH_BIN", "/x"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = dir.path().canonicalize().unwrap().join("typo.toml");
    for expected in [
        "3 problems".to_owned(),
        format!("server.bnd: unknown key, set in {}; did you mean server.bind?", file.display()),
        "sesion: unknown key".to_owned(),
        "did you mean session?".to_owned(),
        "login.pol_interval_ms: unknown key, set in environment variable LOGINWITH_LOGIN__POL_INTERVAL_MS; did you mean login.poll_interval_ms?".to_owned(),
    ] {
        assert!(stderr.contains(&expected), "{expected} in {stderr}");
    }
    assert!(!stderr.contains("default."), "{stderr}");
    assert!(
        !stderr.contains("bin: unknown"),
        "LOGINWITH_BIN is not a key: {stderr}"
    );

    // Rules broken by several values are listed together too.
    let output = loginwith(
        dir.path(),
        &["check"],
        &[
            ("LOGINWITH_LOGIN__POLL_INTERVAL_MS", "5"),
            ("LOGINWITH_SESSION__REMEMBER_DAYS", "0"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("login.poll_interval_ms"), "{stderr}");
    assert!(stderr.contains("session.remember_days"), "{stderr}");
}

#[test]
fn a_toml_syntax_error_names_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.toml"), "[server]\nbind = \n").unwrap();
    let output = loginwith(dir.path(), &["check", "--config", "broken.toml"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = dir.path().canonicalize().unwrap().join("broken.toml");
    assert!(
        stderr.contains(&format!("file {}, line 2, column 8", file.display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn database_urls_that_are_neither_sqlite_files_nor_postgres_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://user@localhost",
        "mysql://x",
        "sqlite:",
        "sqlite::memory:",
    ] {
        let output = loginwith(dir.path(), &["check"], &[("LOGINWITH_DATABASE__URL", url)]);
        assert!(!output.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("database.url"), "{url}: {stderr}");
    }
    // Nothing was created on the way.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn migrate_creates_the_database_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let output = loginwith(dir.path(), &["migrate"], &[]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("migrations applied"), "{stdout}");
    assert!(dir.path().join("data/loginwith.db").is_file());
    // A file that cannot be opened is named with the reason.
    std::fs::create_dir(dir.path().join("taken.db")).unwrap();
    let output = loginwith(
        dir.path(),
        &["migrate"],
        &[("LOGINWITH_DATABASE__URL", "sqlite://taken.db")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let path = dir.path().canonicalize().unwrap().join("taken.db");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}

#[test]
fn rotate_key_adds_a_sealing_key_and_refuses_while_the_configuration_holds_one() {
    let dir = tempfile::tempdir().unwrap();
    // The first key is made on first use (here, by the rotation itself: there was none).
    let output = loginwith(dir.path(), &["rotate-key"], &[]);
    assert!(output.status.success(), "{output:?}");
    let first = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(first.starts_with("sealing key "), "{first}");
    let output = loginwith(dir.path(), &["rotate-key"], &[]);
    assert!(output.status.success(), "{output:?}");
    let second = String::from_utf8_lossy(&output.stdout).to_string();
    assert_ne!(first, second, "a new key each time");
    assert!(
        second.contains("previous key opens for another hour"),
        "{second}"
    );
    // No secret is printed: only ids and counts.
    assert!(!second.contains('='), "{second}");
    // A key in the configuration is rotated there.
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let output = loginwith(
        dir.path(),
        &["rotate-key"],
        &[("LOGINWITH_SESSION__SEALING_KEY", key)],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("session.sealing_key is set"), "{stderr}");
    assert!(!stderr.contains(key), "{stderr}");
    // `check` shows that it is set, never what it is.
    let output = loginwith(
        dir.path(),
        &["check"],
        &[("LOGINWITH_SESSION__SEALING_KEY", key)],
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("sealing_key = \"[redacted]\""), "{stdout}");
    assert!(!stdout.contains(key), "{stdout}");
    // A key that is not 32 bytes of base64 refuses to start, naming the key.
    for bad in ["short", "bm90IDMyIGJ5dGVz"] {
        let output = loginwith(
            dir.path(),
            &["check"],
            &[("LOGINWITH_SESSION__SEALING_KEY", bad)],
        );
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("session.sealing_key"), "{stderr}");
    }
}

fn trusted_proxies(config: &Config) -> Vec<String> {
    config
        .server
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn trusted_proxies_are_addresses_and_ranges() {
    let defaults = Config::from_figment(Config::defaults_figment(), Environment::Development);
    assert!(
        trusted_proxies(&defaults.unwrap()).is_empty(),
        "none by default"
    );
    let figment = Config::defaults_figment().merge(Toml::string(
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \" 10.0.0.0/8 \", \"10.1.2.3/16\", \"2001:db8::/32\", \"::1\"]\n",
    ));
    let config = Config::from_figment(figment, Environment::Development).unwrap();
    assert_eq!(
        trusted_proxies(&config),
        [
            "127.0.0.1/32",
            "10.0.0.0/8",
            "10.1.0.0/16",
            "2001:db8::/32",
            "::1/128"
        ]
    );
}

#[test]
fn trusted_proxies_from_the_environment_are_a_list_or_one_address() {
    for (value, expected) in [
        (
            "[127.0.0.1, 10.0.0.0/8]",
            &["127.0.0.1/32", "10.0.0.0/8"][..],
        ),
        ("[\"::1\"]", &["::1/128"]),
        ("192.0.2.7", &["192.0.2.7/32"]),
        ("[]", &[]),
        ("", &[]),
    ] {
        let config = from_env(&[("LOGINWITH_SERVER__TRUSTED_PROXIES", value)])
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(trusted_proxies(&config), expected, "{value}");
    }
}

#[test]
fn invalid_trusted_proxies_are_refused_naming_the_key_and_the_entry() {
    for entry in [
        "10.0.0.0/33",
        "localhost",
        "10.0.0",
        "10.0.0.1:80",
        "10.0.0.0/8/1",
        "*",
        "",
    ] {
        let toml = format!("[server]\ntrusted_proxies = [\"127.0.0.1\", \"{entry}\"]\n");
        let env = format!("[127.0.0.1, {entry}]");
        let errors = [
            Config::from_figment(
                Config::defaults_figment().merge(Toml::string(&toml)),
                Environment::Development,
            )
            .expect_err(&toml),
            from_env(&[("LOGINWITH_SERVER__TRUSTED_PROXIES", &env)]).expect_err(&env),
        ];
        for error in errors.map(|e| e.to_string()) {
            assert!(error.contains("server.trusted_proxies"), "{entry}: {error}");
            assert!(error.contains(&format!("{entry:?}")), "{entry}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
    let output = Command::new(env!("CARGO_BIN_EXE_loginwith"))
        .env(
            "LOGINWITH_SERVER__TRUSTED_PROXIES",
            "[10.0.0.0/8, 10.0.0.0/33]",
        )
        .env_remove("LOGINWITH_ENV")
        .env_remove("LOGINWITH_CONFIG")
        .output()
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("server.trusted_proxies") && stderr.contains("10.0.0.0/33"),
        "{stderr}"
    );
}

// ---- [providers.<name>] --------------------------------------------------------------------

fn development(toml: &str) -> Result<Config, ConfigError> {
    Config::from_figment(
        Config::defaults_figment().merge(Toml::string(toml)),
        Environment::Development,
    )
}

/// `toml` is refused, with a problem under `key` whose reason contains `reason`.
fn assert_refused(toml: &str, key: &str, reason: &str) {
    let error = development(toml).expect_err(toml);
    let problem = error
        .problems
        .iter()
        .find(|p| p.key == key)
        .unwrap_or_else(|| panic!("{key} in {error}"));
    assert!(problem.reason.contains(reason), "{problem}");
}

/// Every problem's key, in order.
fn keys(error: &ConfigError) -> Vec<&str> {
    error.problems.iter().map(|p| p.key.as_str()).collect()
}

#[test]
fn the_defaults_ship_every_kind_and_two_presets_disabled() {
    let config = development("").unwrap();
    let shipped: Vec<_> = config
        .providers
        .iter()
        .map(|(name, p)| (name, p.kind.as_str(), p.display_name()))
        .collect();
    assert_eq!(
        shipped,
        [
            ("facebook", "facebook", "Facebook"),
            ("google", "oidc", "Google"),
            ("github", "github", "GitHub"),
            ("apple", "apple", "Apple"),
            ("microsoft", "microsoft", "Microsoft"),
            ("x", "x", "X"),
            ("discord", "discord", "Discord"),
            ("gitlab", "oidc", "GitLab"),
            ("linkedin", "oidc", "LinkedIn"),
        ]
    );
    assert_eq!(config.providers.enabled().count(), 0);
    let google = config.providers.get("google").unwrap();
    assert_eq!(
        google.issuer.as_deref(),
        Some("https://accounts.google.com")
    );
    assert_eq!(google.scopes(), ["openid", "email", "profile"]);
    let github = config.providers.get("github").unwrap().oauth().unwrap();
    assert_eq!(
        github.authorize_url.as_str(),
        "https://github.com/login/oauth/authorize"
    );
    assert_eq!(github.scopes, ["read:user", "user:email"]);
}

#[test]
fn a_kind_without_endpoints_gets_the_brands_own() {
    // The code's defaults and config/default.toml's tables say the same.
    let config = development(
        "[providers.fb2]\nkind = \"facebook\"\ndisplay_name = \"Facebook 2\"\n\
         [providers.gh2]\nkind = \"github\"\ndisplay_name = \"GitHub 2\"\n",
    )
    .unwrap();
    for (given, shipped) in [("fb2", "facebook"), ("gh2", "github")] {
        let given = config.providers.get(given).unwrap().oauth().unwrap();
        let shipped = config.providers.get(shipped).unwrap().oauth().unwrap();
        assert_eq!(given.authorize_url, shipped.authorize_url);
        assert_eq!(given.token_url, shipped.token_url);
        assert_eq!(given.api_url, shipped.api_url);
        assert_eq!(given.scopes, shipped.scopes);
    }
}

#[test]
fn an_oidc_issuer_is_added_by_configuration_alone() {
    let config = development(
        "[providers.corp]\nkind = \"oidc\"\ndisplay_name = \"Acme SSO\"\n\
         issuer = \"https://sso.acme.example/realms/main\"\nclient_id = \"corp-app\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    let enabled: Vec<_> = config.providers.enabled().map(|(n, _)| n).collect();
    assert_eq!(enabled, ["corp"]);
    let corp = config.providers.get("corp").unwrap();
    assert_eq!(corp.display_name(), "Acme SSO");
    assert_eq!(corp.scopes(), ["openid", "email", "profile"]);
    // A provider is enabled: the development provider no longer stands in.
    assert!(!config.uses_dev_provider());
}

#[test]
fn an_oidc_issuer_is_added_by_environment_variables() {
    let config = from_env(&[
        ("LOGINWITH_PROVIDERS__CORP__KIND", "oidc"),
        ("LOGINWITH_PROVIDERS__CORP__DISPLAY_NAME", "Acme SSO"),
        (
            "LOGINWITH_PROVIDERS__CORP__ISSUER",
            "https://sso.acme.example/realms/main",
        ),
        ("LOGINWITH_PROVIDERS__CORP__CLIENT_ID", "0123"),
        ("LOGINWITH_PROVIDERS__CORP__CLIENT_SECRET", "true"),
    ])
    .unwrap();
    let corp = config.providers.get("corp").unwrap();
    assert_eq!(corp.kind, "oidc");
    assert_eq!(corp.client_id, "0123");
    assert_eq!(corp.client_secret, "true");
    assert_eq!(
        corp.issuer.as_deref(),
        Some("https://sso.acme.example/realms/main")
    );
}

#[test]
fn an_all_digit_client_id_of_a_second_provider_is_text() {
    let config = development(
        "[providers.facebook]\nclient_id = 1\nclient_secret = 2\n\
         [providers.github]\nclient_id = 1234567890\nclient_secret = 42\n",
    )
    .unwrap();
    let github = config.providers.get("github").unwrap();
    assert_eq!(github.client_id, "1234567890");
    assert_eq!(github.client_secret, "42");
    let enabled: Vec<_> = config.providers.enabled().map(|(n, _)| n).collect();
    assert_eq!(enabled, ["facebook", "github"]);
}

#[test]
fn buttons_follow_the_shipped_order_then_other_names_alphabetically() {
    let config = development(
        "[providers.zeta]\nkind = \"facebook\"\ndisplay_name = \"Zeta\"\nclient_id = \"z\"\nclient_secret = \"s\"\n\
         [providers.github]\nclient_id = \"g\"\nclient_secret = \"s\"\n\
         [providers.acme]\nkind = \"facebook\"\ndisplay_name = \"Acme\"\nclient_id = \"a\"\nclient_secret = \"s\"\n\
         [providers.facebook]\nclient_id = \"f\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    let enabled: Vec<_> = config.providers.enabled().map(|(n, _)| n).collect();
    assert_eq!(enabled, ["facebook", "github", "acme", "zeta"]);
}

#[test]
fn provider_rules_name_their_key() {
    for (toml, key) in [
        ("[providers.corp]\nkind = \"saml\"", "providers.corp.kind"),
        (
            "[providers.corp]\ndisplay_name = \"Corp\"",
            "providers.corp.kind",
        ),
        (
            "[providers.corp]\nkind = \"oidc\"\ndisplay_name = \"Corp\"",
            "providers.corp.issuer",
        ),
        (
            "[providers.corp]\nkind = \"oidc\"\nissuer = \"https://id.corp.example\"",
            "providers.corp.display_name",
        ),
        (
            "[providers.Corp]\nkind = \"facebook\"\ndisplay_name = \"Corp\"",
            "providers.Corp",
        ),
        (
            "[providers.\"-corp\"]\nkind = \"facebook\"\ndisplay_name = \"Corp\"",
            "providers.-corp",
        ),
        (
            "[providers.\"co.rp\"]\nkind = \"facebook\"\ndisplay_name = \"Corp\"",
            "providers.co.rp",
        ),
        (
            "[providers.corp]\nkind = \"oidc\"\ndisplay_name = \"Corp\"\nissuer = \"ftp://id.corp.example\"",
            "providers.corp.issuer",
        ),
        (
            "[providers.corp]\nkind = \"oidc\"\ndisplay_name = \"Corp\"\nissuer = \"https://id.corp.example\"\ntoken_url = \"https://id.corp.example/token\"",
            "providers.corp.token_url",
        ),
        (
            "[providers.github]\nissuer = \"https://github.com\"",
            "providers.github.issuer",
        ),
        ("[providers.github]\nscopes = []", "providers.github.scopes"),
        (
            "[providers.github]\nclient_id = \"x\"",
            "providers.github.client_secret",
        ),
        (
            "[providers.facebook]\nclient_id = \"1\"\nclient_secret = \"s\"\n\
             [providers.facebook_test]\nkind = \"facebook\"\nclient_id = \"2\"\nclient_secret = \"s\"",
            "providers.facebook_test.display_name",
        ),
        (
            "[providers.corp]\nkind = \"oidc\"\ndisplay_name = \"Corp\"\nissuer = \"https://id.corp.example\"\nclient_idd = \"x\"",
            "providers.corp.client_idd",
        ),
        ("[providers]\ncorp = \"oidc\"", "providers.corp"),
    ] {
        let error = development(toml).expect_err(toml);
        assert!(keys(&error).contains(&key), "{key} in {error} for {toml}");
        // One line per problem.
        for problem in &error.problems {
            assert!(!problem.to_string().contains('\n'), "{problem}");
        }
    }
}

/// `hosted_domain` is a domain name, and a key of OpenID Connect issuers only (only an ID
/// token carries `hd`); the shipped Google table takes it.
#[test]
fn a_hosted_domain_is_a_domain_name_of_an_oidc_provider() {
    let config = development("[providers.google]\nhosted_domain = \"Example.com\"")
        .expect("a Workspace domain on Google");
    let google = config.providers.get("google").expect("google");
    assert_eq!(google.hosted_domain(), Some("Example.com"));
    let config = development("").expect("defaults");
    let google = config.providers.get("google").expect("google");
    assert_eq!(google.hosted_domain(), None, "empty is none");
    for (toml, reason) in [
        (
            "[providers.google]\nhosted_domain = \"https://example.com\"",
            "not a domain name",
        ),
        (
            "[providers.google]\nhosted_domain = \"@example.com\"",
            "not a domain name",
        ),
        (
            "[providers.google]\nhosted_domain = \"example\"",
            "not a domain name",
        ),
        (
            "[providers.github]\nhosted_domain = \"example.com\"",
            "is not a key of kind = \"github\"",
        ),
        (
            "[providers.facebook]\nhosted_domain = \"example.com\"",
            "is not a key of kind = \"facebook\"",
        ),
    ] {
        let key = if toml.contains("github") {
            "providers.github.hosted_domain"
        } else if toml.contains("facebook") {
            "providers.facebook.hosted_domain"
        } else {
            "providers.google.hosted_domain"
        };
        assert_refused(toml, key, reason);
    }
}

/// `groups_claim` names a claim of an OpenID Connect issuer; empty is the default, `groups`.
#[test]
fn a_groups_claim_is_a_claim_name_of_an_oidc_provider() {
    let config = development(
        "[providers.corp]\nkind = \"oidc\"\ndisplay_name = \"Corp\"\nissuer = \"https://id.corp.example\"\ngroups_claim = \"roles\"",
    )
    .expect("a claim name on an oidc table");
    let corp = config.providers.get("corp").expect("corp");
    assert_eq!(corp.groups_claim(), Some("roles"));
    let config = development("").expect("defaults");
    let google = config.providers.get("google").expect("google");
    assert_eq!(google.groups_claim(), None, "empty is the default");
    for (toml, key, reason) in [
        (
            "[providers.github]\ngroups_claim = \"groups\"",
            "providers.github.groups_claim",
            "is not a key of kind = \"github\"",
        ),
        (
            "[providers.google]\ngroups_claim = \"my groups\"",
            "providers.google.groups_claim",
            "is not a claim name",
        ),
    ] {
        assert_refused(toml, key, reason);
    }
}

#[test]
fn an_unknown_key_in_a_provider_table_suggests_the_nearest() {
    let error = development(
        "[providers.corp]\nkind = \"oidc\"\ndisplay_name = \"Corp\"\nissuer = \"https://id.corp.example\"\nclient_idd = \"x\"",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("did you mean providers.corp.client_id?"),
        "{error}"
    );
}

#[test]
fn duplicate_display_names_only_matter_between_enabled_providers() {
    // A second Facebook app under another name: fine while only one of them is enabled.
    development(
        "[providers.facebook_test]\nkind = \"facebook\"\nclient_id = \"2\"\nclient_secret = \"s\"",
    )
    .unwrap();
    let error = development(
        "[providers.facebook]\nclient_id = \"1\"\nclient_secret = \"s\"\n\
         [providers.corp]\nkind = \"facebook\"\ndisplay_name = \"facebook\"\nclient_id = \"2\"\nclient_secret = \"s\"",
    )
    .unwrap_err();
    assert_eq!(keys(&error), ["providers.corp.display_name"]);
}

#[test]
fn provider_problems_are_all_reported_at_once() {
    let error = development(
        "[providers.corp]\nkind = \"oidc\"\n[providers.acme]\nkind = \"saml\"\n[providers.Big]\nkind = \"facebook\"\ndisplay_name = \"Big\"",
    )
    .unwrap_err();
    assert_eq!(
        keys(&error),
        [
            // Other names by byte order: upper case first.
            "providers.Big",
            "providers.acme.kind",
            "providers.corp.display_name",
            "providers.corp.issuer",
        ]
    );
}

#[test]
fn issuers_are_https_in_production_and_may_be_http_in_development() {
    let corp = "[providers.corp]\nkind = \"oidc\"\ndisplay_name = \"Corp\"\nissuer = \"http://localhost:8080/realms/dev\"\n";
    development(corp).unwrap();
    let error = production(&format!("{GOOD_PRODUCTION}{corp}")).unwrap_err();
    assert_eq!(keys(&error), ["providers.corp.issuer"]);
    let github = "[providers.github]\napi_url = \"http://api.github.com\"\n";
    let error = production(&format!("{GOOD_PRODUCTION}{github}")).unwrap_err();
    assert_eq!(keys(&error), ["providers.github.api_url"]);
}

#[test]
fn registrations_list_each_enabled_provider() {
    let config = development(
        "[server]\npublic_url = \"https://login.example.com\"\n\
         [providers.facebook]\nclient_id = \"1\"\nclient_secret = \"s\"\n\
         [providers.github]\nclient_id = \"2\"\nclient_secret = \"s\"\n\
         [providers.corp]\nkind = \"oidc\"\ndisplay_name = \"Acme SSO\"\nissuer = \"https://sso.acme.example\"\nclient_id = \"3\"\nclient_secret = \"s\"\nsign_out_at_provider = true\n\
         [providers.google]\nclient_id = \"4.apps.googleusercontent.com\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    assert_eq!(
        config.registrations(),
        [
            "facebook: Valid OAuth Redirect URI https://login.example.com/callback/facebook",
            "facebook: Deauthorize callback URL https://login.example.com/facebook/deauthorize",
            "facebook: Data Deletion Request URL https://login.example.com/facebook/data-deletion",
            "facebook: Privacy Policy URL https://login.example.com/privacy",
            // Google sends no logout tokens: no back-channel logout URI to register.
            "google: Redirect URI https://login.example.com/callback/google",
            "github: Authorization callback URL https://login.example.com/callback/github",
            "corp: Redirect URI https://login.example.com/callback/corp",
            "corp: Back-channel logout URI https://login.example.com/backchannel-logout/corp",
            "corp: Post-logout redirect URI https://login.example.com/",
        ]
    );
}

#[test]
fn check_reports_an_issuer_it_cannot_discover_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens, so discovery fails at once, offline.
    let output = loginwith(
        dir.path(),
        &["check"],
        &[
            ("LOGINWITH_SERVER__BIND", "127.0.0.1:0"),
            ("LOGINWITH_PROVIDERS__GOOGLE__CLIENT_ID", "1234567890"),
            ("LOGINWITH_PROVIDERS__GOOGLE__CLIENT_SECRET", "s"),
            ("LOGINWITH_PROVIDERS__GOOGLE__ISSUER", "http://127.0.0.1:9"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let refusal: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("providers.google.issuer"))
        .collect();
    assert_eq!(refusal.len(), 1, "{stderr}");
    assert!(refusal[0].contains("discovery failed"), "{stderr}");
    // `check` creates nothing.
    assert!(!dir.path().join("data").exists(), "{stderr}");
}

// ---- log.format ------------------------------------------------------------------------------

#[test]
fn the_log_format_is_text_or_json() {
    assert_eq!(development("").unwrap().log.format, LogFormat::Text);
    let config = from_env(&[("LOGINWITH_LOG__FORMAT", "json")]).unwrap();
    assert_eq!(config.log.format, LogFormat::Json);
    let error = development("[log]\nformat = \"xml\"")
        .unwrap_err()
        .to_string();
    assert!(error.contains("format"), "{error}");
    assert!(error.contains("text") && error.contains("json"), "{error}");
}

// ---- server.shutdown_grace_secs ------------------------------------------------------------

#[test]
fn the_shutdown_grace_is_20_seconds_and_at_most_600() {
    let config = development("").unwrap();
    assert_eq!(config.server.shutdown_grace_secs, 20);
    for accepted in [0, 1, 600] {
        let config = development(&format!("[server]\nshutdown_grace_secs = {accepted}")).unwrap();
        assert_eq!(config.server.shutdown_grace_secs, accepted);
    }
    let error = development("[server]\nshutdown_grace_secs = 601").unwrap_err();
    assert_eq!(keys(&error), ["server.shutdown_grace_secs"]);
    assert!(error.to_string().contains("between 0 and 600"), "{error}");
    let error = development("[server]\nshutdown_grace_secs = -1").unwrap_err();
    assert!(error.to_string().contains("shutdown_grace_secs"), "{error}");
}

#[test]
fn systemd_waits_longer_than_the_shutdown_grace() {
    let unit = include_str!("../../deploy/systemd/loginwith.service");
    let stop: u64 = unit
        .lines()
        .find_map(|line| line.strip_prefix("TimeoutStopSec="))
        .and_then(|value| value.trim().strip_suffix('s'))
        .and_then(|secs| secs.parse().ok())
        .expect("TimeoutStopSec=<n>s in the unit");
    let grace = production(GOOD_PRODUCTION)
        .unwrap()
        .server
        .shutdown_grace_secs;
    // The grace, then up to 5 s for cut-off sign-ins to record their failure.
    assert!(stop > grace + 5, "TimeoutStopSec={stop}s, grace {grace}s");
}

#[test]
fn allowed_hosts_from_the_environment_are_a_list_or_one_host() {
    for (value, expected) in [
        (
            "[app.example, .corp.example]",
            &["app.example", ".corp.example"][..],
        ),
        ("[\"api.example:8443\"]", &["api.example:8443"]),
        ("app.example", &["app.example"]),
        ("[]", &[]),
        ("", &[]),
    ] {
        let config = from_env(&[("LOGINWITH_GATEWAY__ALLOWED_HOSTS", value)])
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(config.gateway.allowed_hosts, expected, "{value}");
    }
    let error = from_env(&[("LOGINWITH_GATEWAY__ALLOWED_HOSTS", "https://app.example")])
        .expect_err("a URL is not a host")
        .to_string();
    assert!(error.contains("gateway.allowed_hosts"), "{error}");
}

// ---- [access] ------------------------------------------------------------------------------

#[test]
fn access_entries_that_are_not_an_address_or_a_domain_refuse_start_up_naming_the_key() {
    let config = development(
        "[access]\nemails = [\"Ada@Example.com\"]\nemail_domains = [\"example.com\"]\n",
    )
    .expect("good entries");
    assert_eq!(config.access.conditions.emails, ["Ada@Example.com"]);
    let error = development(
        r#"
        [access]
        emails = ["", "ada", "a@b@example.com", "ada @example.com"]
        email_domains = ["", "ada@example.com", ".example.com", "exa mple.com"]
        "#,
    )
    .unwrap_err();
    assert_eq!(
        keys(&error),
        [["access.emails"; 4], ["access.email_domains"; 4]].concat()
    );
    let text = error.to_string();
    for expected in [
        r#"access.emails: "" is empty"#,
        r#"access.emails: "ada" has no @"#,
        r#"access.emails: "a@b@example.com" has more than one @"#,
        r#"access.email_domains: "ada@example.com" has an @"#,
        r#"access.email_domains: ".example.com" starts with a dot"#,
        r#"access.email_domains: "exa mple.com" has a space"#,
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

#[test]
fn an_emails_file_that_cannot_be_read_or_holds_a_bad_line_refuses_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let error = development(&format!(
        "[access]\nemails_file = {:?}\n",
        missing.display().to_string()
    ))
    .unwrap_err();
    assert_eq!(keys(&error), ["access.emails_file"]);
    assert!(error.to_string().contains("cannot read"), "{error}");

    let bad = dir.path().join("emails");
    std::fs::write(&bad, "# staff\nada@example.com\ngrace at example.com\n").unwrap();
    let error = development(&format!(
        "[access]\nemails_file = {:?}\n",
        bad.display().to_string()
    ))
    .unwrap_err();
    assert_eq!(keys(&error), ["access.emails_file"]);
    assert!(error.to_string().contains("line 3: "), "{error}");

    std::fs::write(&bad, "# staff\nada@example.com # lead\n\n").unwrap();
    development(&format!(
        "[access]\nemails_file = {:?}\n",
        bad.display().to_string()
    ))
    .expect("a good file");
}

#[test]
fn access_rules_and_membership_conditions_are_read_and_bad_ones_refused_naming_the_key() {
    // The development provider's OpenID mode sends groups, so `groups` is accepted with it.
    let config = development(
        r#"
        [access]
        groups = ["ops", "/acme/admins"]
        recheck_hours = 12
        [[access.rules]]
        host = "grafana.example.com"
        path = "/admin/"
        groups = ["ops"]
        [[access.rules]]
        host = ".example.com"
        email_domains = ["example.com"]
        "#,
    )
    .expect("good rules");
    assert_eq!(config.access.conditions.groups, ["ops", "/acme/admins"]);
    assert_eq!(config.access.rules.len(), 2);
    assert_eq!(config.access.rules[0].path_prefix(), "/admin");
    assert_eq!(
        config.access.recheck(),
        Some(std::time::Duration::from_secs(12 * 3600))
    );
    // Without a membership condition there is nothing to recheck.
    assert_eq!(development("").unwrap().access.recheck(), None);

    let error = development(
        r#"
        [access]
        groups = [""]
        recheck_hours = 10000
        [[access.rules]]
        host = "https://grafana.example.com"
        path = "admin"
        [[access.rules]]
        host = "wiki.example.com"
        path = "/a/../b"
        grups = ["ops"]
        groups = ["ops"]
        "#,
    )
    .unwrap_err();
    let mut found = keys(&error);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            "access.groups",
            "access.recheck_hours",
            "access.rules[0]",
            "access.rules[0].host",
            "access.rules[0].path",
            "access.rules[1].grups",
            "access.rules[1].path",
        ],
        "{error}"
    );
    assert!(error.to_string().contains("sets no condition"), "{error}");

    // GitHub conditions need a GitHub provider; their entries are logins and org/slug.
    let error = development(
        "[access]\ngithub_orgs = [\"acme\"]\n[[access.rules]]\nhost = \"a.example\"\ngithub_teams = [\"acme/ops\"]\n",
    )
    .unwrap_err();
    assert_eq!(
        keys(&error),
        ["access.github_orgs", "access.rules[0].github_teams"],
        "{error}"
    );
    assert!(
        error.to_string().contains("no provider of kind github"),
        "{error}"
    );
    let github = r#"
        [providers.github]
        client_id = "Iv1.8a61f9b3a7aba766"
        client_secret = "s3cr3t"
        "#;
    let error = development(&format!(
        "{github}\n[access]\ngithub_orgs = [\"-acme\"]\ngithub_teams = [\"acme\"]\ngroups = [\"ops\"]\n"
    ))
    .unwrap_err();
    assert_eq!(
        keys(&error),
        ["access.github_orgs", "access.github_teams", "access.groups"],
        "{error}"
    );
    assert!(
        error.to_string().contains("no OpenID Connect issuer"),
        "{error}"
    );
    let config = development(&format!(
        "{github}\n[access]\ngithub_orgs = [\"Acme\"]\ngithub_teams = [\"Acme/ops-team\"]\n"
    ))
    .expect("GitHub conditions with a GitHub provider");
    assert!(config.access.reads_github_membership());
    // A misspelt key is an unknown key, with the nearest one.
    let error = development("[access]\nemail_domain = [\"example.com\"]\n").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("did you mean access.email_domains?"),
        "{error}"
    );
}

#[test]
fn check_refuses_a_bad_access_entry_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = loginwith(
        dir.path(),
        &["check"],
        &[("LOGINWITH_ACCESS__EMAIL_DOMAINS", "@example.com")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("access.email_domains"), "{stderr}");
}

/// Every number with a range is refused just outside it, naming its key and the range, and
/// accepted at both ends; the limits that must be at least 1 say so.
#[test]
fn every_number_outside_its_range_is_refused_naming_the_key() {
    let check = |key: &str, value: u64| {
        Config::from_figment(
            Config::defaults_figment().merge((key, value)),
            Environment::Development,
        )
        .map_err(|e| e.to_string())
    };
    let ranges: [(&str, u64, u64); 12] = [
        ("server.shutdown_grace_secs", 0, 600),
        ("database.max_connections", 1, 1000),
        ("database.connect_timeout_secs", 1, 300),
        ("session.remember_days", 1, 90),
        ("limits.body_bytes", 1024, 10 * 1024 * 1024),
        ("limits.header_bytes", 4096, 1024 * 1024),
        ("login.exchange_timeout_secs", 1, 300),
        ("login.poll_interval_ms", 100, 60_000),
        ("login.status_recheck_ms", 10, 3_600_000),
        ("login.discovery_refresh_secs", 1, 86_400),
        ("login.poll_limit_secs", 1, 3600),
        ("database.min_free_mb", 0, 1024 * 1024),
    ];
    for (key, low, high) in ranges {
        assert!(
            check(key, low).is_ok(),
            "{key} = {low}: {:?}",
            check(key, low)
        );
        assert!(
            check(key, high).is_ok(),
            "{key} = {high}: {:?}",
            check(key, high)
        );
        // remember_days above absolute_days (90 by default) breaks that key's rule instead.
        if key != "session.remember_days" {
            let error = check(key, high + 1).expect_err(key);
            assert!(error.contains(key), "{error}");
            assert!(
                error.contains(&format!("between {low} and {high}")),
                "{error}"
            );
        }
        if low > 0 {
            let error = check(key, low - 1).expect_err(key);
            assert!(error.contains(key), "{error}");
        }
    }
    for key in [
        "limits.auth_per_minute",
        "limits.auth_burst",
        "limits.data_callback_per_minute",
        "limits.data_callback_burst",
        "limits.backchannel_logout_per_minute",
        "limits.backchannel_logout_burst",
        "limits.max_concurrent_exchanges",
    ] {
        let error = check(key, 0).expect_err(key);
        assert!(
            error.contains(&format!("{key}: must be at least 1")),
            "{error}"
        );
    }
}

// ---- The kinds and presets of issue 26 -----------------------------------------------------

#[test]
fn a_preset_fills_in_what_its_issuer_needs() {
    let config = development(
        r#"
        [providers.sso]
        preset = "keycloak"
        issuer = "https://sso.example.com/realms/acme"
        client_id = "loginwith"
        client_secret = "s"
        [providers.gitlab]
        client_id = "gl"
        client_secret = "s"
        "#,
    )
    .unwrap();
    let sso = config.providers.get("sso").unwrap();
    assert_eq!(
        sso.kind(),
        Some(loginwith::config::ProviderKind::Oidc),
        "a preset is kind oidc"
    );
    assert_eq!(sso.display_name(), "Keycloak");
    assert_eq!(sso.scopes(), ["openid", "email", "profile"]);
    let gitlab = config.providers.get("gitlab").unwrap();
    assert_eq!(gitlab.issuer(), "https://gitlab.com");
    assert_eq!(gitlab.display_name(), "GitLab");
    for (toml, key, reason) in [
        (
            "[providers.sso]\npreset = \"okta2\"\nissuer = \"https://a.example\"",
            "providers.sso.preset",
            "is not a preset: use one of gitlab, linkedin, okta, keycloak, auth0, authentik",
        ),
        (
            "[providers.sso]\npreset = \"okta\"",
            "providers.sso.issuer",
            "is required with preset = \"okta\"",
        ),
        (
            "[providers.sso]\npreset = \"keycloak\"\nissuer = \"https://sso.example.com/realms/acme/\"",
            "providers.sso.issuer",
            "looks like https://sso.acme.example/realms/acme",
        ),
        (
            "[providers.sso]\npreset = \"auth0\"\nissuer = \"https://acme.eu.auth0.com\"",
            "providers.sso.issuer",
            "looks like https://acme.eu.auth0.com/",
        ),
        (
            "[providers.linkedin]\nissuer = \"https://www.linkedin.com\"",
            "providers.linkedin.issuer",
            "has one issuer",
        ),
        (
            "[providers.github]\npreset = \"gitlab\"",
            "providers.github.preset",
            "is not a key of kind = \"github\"",
        ),
    ] {
        assert_refused(toml, key, reason);
    }
}

#[test]
fn microsoft_apple_x_and_discord_keys_are_checked_per_kind() {
    let config = development(
        r#"
        [providers.microsoft]
        client_id = "00000000-0000-0000-0000-000000000001"
        client_secret = "s"
        tenant = "organizations"
        tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
        [providers.apple]
        client_id = "com.example.web"
        team_id = "ABCDE12345"
        key_id = "XYZ987ABCD"
        private_key = "-----BEGIN PRIVATE KEY-----\n..."
        "#,
    )
    .unwrap();
    assert_eq!(
        config.providers.get("microsoft").unwrap().issuer(),
        "https://login.microsoftonline.com/organizations/v2.0"
    );
    assert_eq!(
        config.providers.get("apple").unwrap().issuer(),
        "https://appleid.apple.com"
    );
    // Tenant ids as Entra ID writes them in its documents and tokens: lowercase.
    let upper =
        development("[providers.microsoft]\ntenant = \"72F988BF-86F1-41AF-91AB-2D7CD011DB47\"")
            .unwrap();
    assert_eq!(
        upper.providers.get("microsoft").unwrap().issuer(),
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
    );
    for (toml, key, reason) in [
        (
            "[providers.microsoft]\ntenant = \"contoso.onmicrosoft.com\"",
            "providers.microsoft.tenant",
            "not a domain name",
        ),
        (
            "[providers.microsoft]\ntenant = \"consumers\"\ntenants = [\"72f988bf-86f1-41af-91ab-2d7cd011db47\"]",
            "providers.microsoft.tenants",
            "only narrows",
        ),
        (
            "[providers.microsoft]\nscopes = [\"openid\", \"email\"]",
            "providers.microsoft.scopes",
            "must include \"profile\"",
        ),
        (
            "[providers.microsoft]\ntenants = [\"acme\"]",
            "providers.microsoft.tenants",
            "is not a tenant id",
        ),
        (
            "[providers.microsoft]\nissuer = \"https://login.microsoftonline.com/common/v2.0\"",
            "providers.microsoft.issuer",
            "follows from tenant and authority",
        ),
        (
            "[providers.github]\ntenant = \"common\"",
            "providers.github.tenant",
            "only of kind = \"microsoft\"",
        ),
        (
            "[providers.apple]\nclient_id = \"com.example.web\"\nkey_id = \"XYZ987ABCD\"\nprivate_key_file = \"/k.p8\"",
            "providers.apple.team_id",
            "is required",
        ),
        (
            "[providers.apple]\nclient_id = \"com.example.web\"\nteam_id = \"abcde12345\"\nkey_id = \"XYZ987ABCD\"\nprivate_key_file = \"/k.p8\"",
            "providers.apple.team_id",
            "not an Apple id",
        ),
        (
            "[providers.apple]\nclient_id = \"com.example.web\"\nteam_id = \"ABCDE12345\"\nkey_id = \"XYZ987ABCD\"",
            "providers.apple.private_key_file",
            "is required",
        ),
        (
            "[providers.apple]\nclient_secret = \"s\"",
            "providers.apple.client_secret",
            "is not used with kind = \"apple\"",
        ),
        (
            "[providers.google]\nteam_id = \"ABCDE12345\"",
            "providers.google.team_id",
            "only of kind = \"apple\"",
        ),
        (
            "[providers.x]\nissuer = \"https://x.com\"",
            "providers.x.issuer",
            "is not a key of kind = \"x\"",
        ),
        (
            "[providers.discord]\nclient_id = \"1\"",
            "providers.discord.client_secret",
            "is empty while client_id is set",
        ),
        (
            "[providers.apple]\ngroups_claim = \"groups\"",
            "providers.apple.groups_claim",
            "is not a key of kind = \"apple\"",
        ),
    ] {
        assert_refused(toml, key, reason);
    }
}
