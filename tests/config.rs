//! Configuration layers and the start-up refusals.

use std::process::Command;

use figment::{
    Figment,
    providers::{Format, Toml},
};
use loginwith::config::{Config, ConfigError, Environment, RawEnv, Sources};

fn production(extra: &str) -> Result<Config, ConfigError> {
    let figment = Config::defaults_figment()
        .merge(Toml::file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/production.toml"
        )))
        .merge(Toml::string(extra));
    Config::from_figment(figment, Environment::Production)
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
        config.providers.facebook.authorize_url.as_str(),
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
            "[server]\npublic_url = \"http://x.example/app\"",
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
        let facebook = &config.providers.facebook;
        assert_eq!(facebook.client_id, value);
        assert_eq!(facebook.client_secret, value);
        assert_eq!(config.session.cookie_name, value.replace('.', "_"));
        assert_eq!(config.database.url, database);
        assert_eq!(facebook.scopes, [value, "email"]);
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
    assert_eq!(config.providers.facebook.client_id, "1234567890");
    assert_eq!(config.providers.facebook.client_secret, "42");
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
fn the_binary_refuses_the_development_provider_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = loginwith(dir.path(), &[], &[("LOGINWITH_SERVER__BIND", "0.0.0.0:0")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("dev_provider.enabled"), "{stderr}");
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
    for command in ["serve", "check", "migrate", "--config"] {
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
    assert_eq!(reread.providers.facebook.client_id, "1234567890");
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
fn database_urls_that_are_not_sqlite_files_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://user@localhost/db",
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
