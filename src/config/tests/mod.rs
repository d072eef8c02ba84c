use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |key| map.get(key).cloned()
}

fn file(text: &str) -> FileValues {
    FileValues::parse(text, "test.toml").unwrap()
}

#[test]
fn defaults_match_the_design_table() {
    let c = Config::from_lookup(&FileValues::default(), env(&[])).unwrap();
    assert_eq!(c.bind, "0.0.0.0");
    assert_eq!(c.port, 3001);
    assert_eq!(c.database_url, "sqlite://interviewd.db");
    assert_eq!(c.redis_url, None);
    assert!(c.node_id.ends_with(&format!("-{}", std::process::id())));
    assert!(c.node_id.len() > format!("-{}", std::process::id()).len());
    assert_eq!(c.jwt_secret, None);
    assert_eq!(c.jwt_issuer, None);
    assert_eq!(c.jwt_audience, None);
    assert_eq!(c.llm_base_url, None);
    assert_eq!(c.llm_timeout_ms, 30_000);
    assert_eq!(c.stt_base_url, None);
    assert_eq!(c.tts_base_url, None);
    assert_eq!(c.heartbeat_interval_ms, 30_000);
    assert_eq!(c.session_idle_passivate_ms, 300_000);
    assert_eq!(c.session_ttl_secs, 86_400);
    assert_eq!(c.max_frame_bytes, 65_536);
    assert_eq!(c.rate_limit_per_sec, 50);
    assert_eq!(c.rate_limit_burst, 100);
    assert_eq!(c.admin_token, None);
    assert_eq!(c.log_format, LogFormat::Pretty);
    assert_eq!(c.scripted_word_delay_ms, 30);
    assert_eq!(c.max_audio_bytes, 10_485_760);
    assert_eq!(c.outbox_frames, 1024);
    assert_eq!(c.public_url, None);
    assert!(c.warnings().is_empty());
}

#[test]
fn file_values_apply_and_env_overrides_them() {
    let f = file(
        r#"
        port = 4000
        bind = "127.0.0.1"
        jwt_secret = "from-file"
        log_format = "json"
        redis_url = "redis://file"
        public_url = "https://interviews.example.com/"
        "#,
    );
    let c = Config::from_lookup(
        &f,
        env(&[
            ("PORT", "5000"),
            ("JWT_SECRET", "from-env"),
            ("NODE_ID", "n1"),
        ]),
    )
    .unwrap();
    assert_eq!(c.port, 5000, "env wins over the file");
    assert_eq!(c.jwt_secret.as_deref(), Some("from-env"));
    assert_eq!(c.bind, "127.0.0.1", "file wins over the default");
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.redis_url.as_deref(), Some("redis://file"));
    assert_eq!(c.node_id, "n1");
    assert_eq!(
        c.public_url.as_deref(),
        Some("https://interviews.example.com")
    );
}

#[test]
fn empty_env_counts_as_unset() {
    let f = file("redis_url = \"redis://file\"\nport = 4000");
    let c = Config::from_lookup(
        &f,
        env(&[
            ("REDIS_URL", ""),
            ("PORT", "  "),
            ("JWT_SECRET", ""),
            ("LLM_BASE_URL", ""),
        ]),
    )
    .unwrap();
    assert_eq!(c.redis_url.as_deref(), Some("redis://file"));
    assert_eq!(c.port, 4000);
    assert_eq!(c.jwt_secret, None);
    assert_eq!(c.llm_base_url, None);

    let f = file("jwt_issuer = \"\"");
    let c = Config::from_lookup(&f, env(&[])).unwrap();
    assert_eq!(
        c.jwt_issuer, None,
        "an empty string in the file is unset too"
    );
}

#[test]
fn port_zero_is_allowed() {
    let c = Config::from_lookup(&FileValues::default(), env(&[("PORT", "0")])).unwrap();
    assert_eq!(c.port, 0);
}

#[test]
fn bad_numbers_name_the_variable() {
    for (key, value) in [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "-1"),
        ("LLM_TIMEOUT_MS", "1.5"),
        ("HEARTBEAT_INTERVAL_MS", "0"),
        ("MAX_FRAME_BYTES", "64k"),
        ("RATE_LIMIT_BURST", "0"),
        ("OUTBOX_FRAMES", "lots"),
    ] {
        let err = Config::from_lookup(&FileValues::default(), env(&[(key, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{err}");
        assert!(err.contains("environment"), "{err}");
    }
}

#[test]
fn bad_file_values_name_the_key_and_file() {
    let err = Config::from_lookup(&file("port = \"many\""), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("PORT") && err.contains("test.toml"), "{err}");

    let err = FileValues::parse("prot = 3001", "test.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("prot") && err.contains("unknown"), "{err}");

    let err = FileValues::parse("port = 3.5", "test.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("port"), "{err}");

    let err = FileValues::parse("port = ", "test.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not valid TOML"), "{err}");
}

#[test]
fn bad_log_format_is_refused() {
    let err = Config::from_lookup(&FileValues::default(), env(&[("LOG_FORMAT", "xml")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("LOG_FORMAT"), "{err}");
    let c = Config::from_lookup(&FileValues::default(), env(&[("LOG_FORMAT", "JSON")])).unwrap();
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn zero_is_allowed_where_it_means_something() {
    let c = Config::from_lookup(
        &FileValues::default(),
        env(&[
            ("SCRIPTED_WORD_DELAY_MS", "0"),
            ("SESSION_IDLE_PASSIVATE_MS", "0"),
            ("SESSION_TTL_SECS", "0"),
        ]),
    )
    .unwrap();
    assert_eq!(c.scripted_word_delay_ms, 0);
    assert_eq!(c.session_idle_passivate_ms, 0);
    assert_eq!(c.session_ttl_secs, 0);
}

#[test]
fn jwt_secret_required_explains_itself() {
    let c = Config::default();
    let err = c.jwt_secret_required().unwrap_err().to_string();
    assert!(err.contains("JWT_SECRET") && err.contains("--dev"), "{err}");
    let c = Config {
        jwt_secret: Some("short".into()),
        ..Config::default()
    };
    assert_eq!(c.jwt_secret_required().unwrap(), "short");
}

#[test]
fn short_secrets_stop_serve_and_only_warn_in_dev() {
    let strong = "s".repeat(MIN_SECRET_BYTES);
    let c = Config {
        jwt_secret: Some(strong.clone()),
        admin_token: Some(strong.clone()),
        ..Config::default()
    };
    assert!(c.weak_secrets().is_empty());
    assert!(c.check_secrets(false).unwrap().is_empty());
    assert!(Config::default().check_secrets(false).unwrap().is_empty());

    let c = Config {
        jwt_secret: Some(strong[1..].to_string()),
        ..Config::default()
    };
    assert_eq!(c.weak_secrets(), ["JWT_SECRET is 31 bytes"]);
    let err = c.check_secrets(false).unwrap_err().to_string();
    assert!(
        err.contains("JWT_SECRET is 31 bytes")
            && err.contains("at least 32 bytes")
            && err.contains("openssl rand -hex 32")
            && !err.contains('\n'),
        "{err}"
    );
    let warned = c.check_secrets(true).unwrap();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("JWT_SECRET"), "{warned:?}");

    let c = Config {
        jwt_secret: Some(strong.clone()),
        admin_token: Some("a".into()),
        ..Config::default()
    };
    let err = c.check_secrets(false).unwrap_err().to_string();
    assert!(
        err.contains("ADMIN_TOKEN is 1 byte:") && !err.contains("JWT_SECRET"),
        "{err}"
    );
    let c = Config {
        jwt_secret: Some("a".into()),
        admin_token: Some("b".into()),
        ..Config::default()
    };
    let err = c.check_secrets(false).unwrap_err().to_string();
    assert!(
        err.contains("JWT_SECRET") && err.contains("ADMIN_TOKEN"),
        "{err}"
    );
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

#[test]
fn debug_redacts_secrets() {
    let c = Config {
        jwt_secret: Some("s3cret-jwt".into()),
        llm_api_key: Some("sk-abc".into()),
        admin_token: Some("adm1n".into()),
        database_url: "postgres://app:pa55word@db:5432/interviewd".into(),
        redis_url: Some("redis://:r3dis@cache:6379".into()),
        ..Config::default()
    };
    let text = format!("{c:?}");
    for secret in ["s3cret-jwt", "sk-abc", "adm1n", "pa55word", "r3dis"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(
        text.contains("postgres://app:***@db:5432/interviewd"),
        "{text}"
    );
}

#[test]
fn redact_url_leaves_plain_urls_alone() {
    assert_eq!(
        redact_url("sqlite://interviewd.db"),
        "sqlite://interviewd.db"
    );
    assert_eq!(redact_url("redis://cache:6379/0"), "redis://cache:6379/0");
    assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
    assert_eq!(
        redact_url("postgres://app:p@ss@db/x?a=b@c"),
        "postgres://app:***@db/x?a=b@c"
    );
}

#[test]
fn interview_limits_default_and_refuse_nonsense() {
    let c = Config::from_lookup(&FileValues::default(), env(&[])).unwrap();
    assert_eq!(c.proctor_events_per_min, 30);
    assert_eq!(c.proctor_events_burst, 10);
    assert_eq!(c.max_interview_events, 100_000);
    assert_eq!(c.max_interview_bytes, 64 * 1024 * 1024);
    let c = Config::from_lookup(
        &FileValues::default(),
        env(&[
            ("MAX_INTERVIEW_EVENTS", "500"),
            ("PROCTOR_EVENTS_BURST", "2"),
        ]),
    )
    .unwrap();
    assert_eq!(c.max_interview_events, 500);
    assert_eq!(c.proctor_events_burst, 2);
    for (key, value) in [
        ("PROCTOR_EVENTS_PER_MIN", "0"),
        ("MAX_INTERVIEW_EVENTS", "10"),
        ("MAX_INTERVIEW_BYTES", "1024"),
    ] {
        let err = Config::from_lookup(&FileValues::default(), env(&[(key, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{key}={value}: {err}");
    }
}

#[test]
fn socket_limits_default_and_refuse_zero_per_client() {
    let c = Config::from_lookup(&FileValues::default(), env(&[])).unwrap();
    assert_eq!(c.max_sockets_per_token, 5);
    assert_eq!(c.max_sockets_per_address, 200);
    assert_eq!(c.max_sockets, 0, "0: from the descriptor limit");
    let c = Config::from_lookup(
        &FileValues::default(),
        env(&[("MAX_SOCKETS", "300"), ("MAX_SOCKETS_PER_TOKEN", "1")]),
    )
    .unwrap();
    assert_eq!(c.max_sockets, 300);
    assert_eq!(c.max_sockets_per_token, 1);
    for key in ["MAX_SOCKETS_PER_TOKEN", "MAX_SOCKETS_PER_ADDRESS"] {
        let err = Config::from_lookup(&FileValues::default(), env(&[(key, "0")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{key}=0: {err}");
    }
}

#[test]
fn metrics_bind_is_unset_by_default_and_must_be_an_address() {
    let c = Config::from_lookup(&FileValues::default(), env(&[])).unwrap();
    assert_eq!(c.metrics_bind, None);
    let c = Config::from_lookup(
        &FileValues::default(),
        env(&[("METRICS_BIND", "127.0.0.1:9464")]),
    )
    .unwrap();
    assert_eq!(c.metrics_bind, Some("127.0.0.1:9464".parse().unwrap()));
    let c = Config::from_lookup(&file(r#"metrics_bind = "[::1]:9464""#), env(&[])).unwrap();
    assert_eq!(c.metrics_bind, Some("[::1]:9464".parse().unwrap()));
    for bad in ["9464", "localhost", "127.0.0.1", "127.0.0.1:99999"] {
        let err = Config::from_lookup(&FileValues::default(), env(&[("METRICS_BIND", bad)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("METRICS_BIND") && err.contains("127.0.0.1:9464"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn node_lease_timing_defaults_and_bounds() {
    let c = Config::from_lookup(&FileValues::default(), env(&[])).unwrap();
    assert_eq!(c.node_lease_ttl_ms, 3_000);
    assert_eq!(c.node_heartbeat_ms, 1_000);

    let c = Config::from_lookup(
        &FileValues::default(),
        env(&[("NODE_LEASE_TTL_MS", "600"), ("NODE_HEARTBEAT_MS", "200")]),
    )
    .unwrap();
    assert_eq!((c.node_lease_ttl_ms, c.node_heartbeat_ms), (600, 200));
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());

    // The heartbeat must be shorter than the TTL, from either source.
    for (ttl, heartbeat) in [("3000", "3000"), ("3000", "5000"), ("1", "1")] {
        let err = Config::from_lookup(
            &FileValues::default(),
            env(&[("NODE_LEASE_TTL_MS", ttl), ("NODE_HEARTBEAT_MS", heartbeat)]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("NODE_HEARTBEAT_MS") && err.contains("NODE_LEASE_TTL_MS"),
            "{ttl}/{heartbeat}: {err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
    }
    let err = Config::from_lookup(&file("node_heartbeat_ms = 4000"), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("NODE_HEARTBEAT_MS=4000") && err.contains("NODE_LEASE_TTL_MS=3000"),
        "{err}"
    );
    for key in ["NODE_LEASE_TTL_MS", "NODE_HEARTBEAT_MS"] {
        let err = Config::from_lookup(&FileValues::default(), env(&[(key, "0")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{key}=0: {err}");
    }

    // Over half the TTL is allowed, with a warning naming both.
    let c = Config::from_lookup(
        &FileValues::default(),
        env(&[("NODE_LEASE_TTL_MS", "1000"), ("NODE_HEARTBEAT_MS", "600")]),
    )
    .unwrap();
    let warnings = c.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("NODE_HEARTBEAT_MS") && warnings[0].contains("NODE_LEASE_TTL_MS"),
        "{warnings:?}"
    );
}

#[test]
fn modes_follow_the_database_and_redis() {
    let c = Config::from_lookup(&FileValues::default(), env(&[])).unwrap();
    assert_eq!(c.mode().unwrap(), Mode::Embedded);
    assert!(!Mode::Embedded.holds_node_lease());

    for url in ["postgres://app@db/x", "postgresql://app@db/x"] {
        let c = Config::from_lookup(&FileValues::default(), env(&[("DATABASE_URL", url)])).unwrap();
        assert_eq!(c.mode().unwrap(), Mode::Postgres { redis: false });
        assert!(
            c.mode().unwrap().holds_node_lease(),
            "PostgreSQL alone holds a lease"
        );
    }
    let c = Config::from_lookup(
        &FileValues::default(),
        env(&[
            ("DATABASE_URL", "postgres://app@db/x"),
            ("REDIS_URL", "redis://cache:6379"),
        ]),
    )
    .unwrap();
    assert_eq!(c.mode().unwrap(), Mode::Postgres { redis: true });

    // Redis with SQLite: refused in one line naming both, no URL in it.
    for database in ["sqlite://interviewd.db", "sqlite:///tmp/x.db"] {
        let c = Config::from_lookup(
            &FileValues::default(),
            env(&[
                ("DATABASE_URL", database),
                ("REDIS_URL", "redis://:s3cret@cache:6379"),
            ]),
        )
        .unwrap();
        let err = c.mode().unwrap_err().to_string();
        assert!(
            err.contains("REDIS_URL") && err.contains("DATABASE_URL"),
            "{err}"
        );
        assert!(!err.contains('\n') && !err.contains("s3cret"), "{err}");
        assert!(!err.contains(database), "{err}");
    }
}
