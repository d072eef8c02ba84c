//! One typed configuration, from the environment and an optional TOML file
//! (`--config FILE`, same keys in lower case). Environment wins over the file;
//! every default serves a laptop. The table lives in the README.
//!
//! Rules, in order of precedence for every key:
//! 1. the environment variable (`PORT=3001`), unless it is empty or blank;
//! 2. the file's lower-case key (`port = 3001`), unless it is an empty string;
//! 3. the default of DESIGN.md's configuration table.
//!
//! A value that does not parse is an error naming the variable and where the
//! value came from; an unknown key in the file is an error too (typos in a
//! config file should not be silently ignored).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use anyhow::{bail, Context};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected `pretty` or `json`".to_string()),
        }
    }
}

/// Every setting of DESIGN.md's configuration contract, plus a few of our own
/// (documented in the README).
///
/// `Debug` is written by hand: it redacts secrets (JWT key, API keys, admin
/// token, passwords inside URLs) so the struct can be logged at start-up.
#[derive(Clone)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub node_id: String,
    /// `NODE_LEASE_TTL_MS` (3000): on PostgreSQL, how long this process's
    /// node lease lives without a renewal; another process may take its
    /// `NODE_ID` only after that.
    pub node_lease_ttl_ms: u64,
    /// `NODE_HEARTBEAT_MS` (1000): how often the lease is renewed; always
    /// shorter than the TTL, or it would lapse between renewals.
    pub node_heartbeat_ms: u64,
    pub jwt_secret: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub llm_base_url: Option<String>,
    pub llm_api_key: Option<String>,
    pub llm_model: Option<String>,
    pub llm_timeout_ms: u64,
    pub stt_base_url: Option<String>,
    pub stt_api_key: Option<String>,
    pub stt_model: Option<String>,
    pub tts_base_url: Option<String>,
    pub tts_api_key: Option<String>,
    pub tts_model: Option<String>,
    pub tts_voice: Option<String>,
    pub heartbeat_interval_ms: u64,
    pub session_idle_passivate_ms: u64,
    pub session_ttl_secs: u64,
    pub max_frame_bytes: usize,
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    pub admin_token: Option<String>,
    pub log_format: LogFormat,
    /// `SCRIPTED_WORD_DELAY_MS` (30): pause between words of the scripted interviewer.
    pub scripted_word_delay_ms: u64,
    /// `MAX_AUDIO_BYTES` (10 MiB): audio buffered for one answer.
    pub max_audio_bytes: usize,
    /// `OUTBOX_FRAMES` (1024): frames queued for one socket before it is a slow consumer.
    pub outbox_frames: usize,
    /// `MAX_SOCKETS_PER_TOKEN` (5): live sockets of one token; a newer one
    /// closes the oldest with 4009.
    pub max_sockets_per_token: usize,
    /// `MAX_SOCKETS_PER_ADDRESS` (200): sockets from one client address (an
    /// IPv6 /64); past it the upgrade gets 429.
    pub max_sockets_per_address: usize,
    /// `MAX_SOCKETS` (0: from the descriptor limit): sockets of the process;
    /// past it the upgrade gets 429. Never above what `RLIMIT_NOFILE` allows.
    pub max_sockets: usize,
    /// `PUBLIC_URL` (unset): base URL put into `wsUrl`; unset uses the local
    /// address the request arrived on, never its `Host` header.
    /// A trailing `/` is removed.
    pub public_url: Option<String>,
    /// `DB_OUTAGE_PAUSE_MS` (30000): a database outage longer than this pauses active interviews.
    pub db_outage_pause_ms: u64,
    /// `PROCTOR_EVENTS_PER_MIN` (30) and `PROCTOR_EVENTS_BURST` (10): proctor events one interview takes.
    pub proctor_events_per_min: u32,
    pub proctor_events_burst: u32,
    /// `MAX_INTERVIEW_EVENTS` (100000) and `MAX_INTERVIEW_BYTES` (64 MiB): one interview's log at most.
    pub max_interview_events: u64,
    pub max_interview_bytes: u64,
    /// `LLM_HISTORY_BUDGET_CHARS` (12000): conversation kept in a prompt, newest first.
    pub llm_history_budget_chars: usize,
    /// `TTS_DIR` (`./interviewd-audio`): where synthesised question audio is kept.
    pub tts_dir: String,
    /// `DRAIN_TIMEOUT_MS` (10000): how long a graceful shutdown may take.
    pub drain_timeout_ms: u64,
    /// `METRICS_BIND` (unset): an address and port (`127.0.0.1:9464`) where
    /// a second listener serves `/metrics` alone, without the admin token,
    /// for a scraper on loopback or a private network. The public listener
    /// always wants the admin token for it.
    pub metrics_bind: Option<SocketAddr>,
    /// `CHAOS_HOOKS` (off): enables `POST /v1/admin/sessions/{id}/crash`,
    /// fault injection for tests and game days. Never in production.
    pub chaos_hooks: bool,
}

mod keys;
mod mode;
pub use keys::KEYS;
pub use mode::Mode;

/// `JWT_SECRET` or `ADMIN_TOKEN` shorter than this many bytes stops `serve`;
/// `serve --dev` (a laptop) only warns.
pub const MIN_SECRET_BYTES: usize = 32;

impl Default for Config {
    /// DESIGN.md's defaults. `jwt_secret` is unset: `serve` needs one (or `--dev`).
    fn default() -> Self {
        Config {
            bind: "0.0.0.0".to_string(),
            port: 3001,
            database_url: "sqlite://interviewd.db".to_string(),
            redis_url: None,
            node_id: default_node_id(|_| None),
            node_lease_ttl_ms: 3_000,
            node_heartbeat_ms: 1_000,
            jwt_secret: None,
            jwt_issuer: None,
            jwt_audience: None,
            llm_base_url: None,
            llm_api_key: None,
            llm_model: None,
            llm_timeout_ms: 30_000,
            stt_base_url: None,
            stt_api_key: None,
            stt_model: None,
            tts_base_url: None,
            tts_api_key: None,
            tts_model: None,
            tts_voice: None,
            heartbeat_interval_ms: 30_000,
            session_idle_passivate_ms: 300_000,
            session_ttl_secs: 86_400,
            max_frame_bytes: 65_536,
            rate_limit_per_sec: 50,
            rate_limit_burst: 100,
            admin_token: None,
            log_format: LogFormat::Pretty,
            scripted_word_delay_ms: 30,
            max_audio_bytes: 10 * 1024 * 1024,
            outbox_frames: 1024,
            max_sockets_per_token: 5,
            max_sockets_per_address: 200,
            max_sockets: 0,
            public_url: None,
            db_outage_pause_ms: 30_000,
            proctor_events_per_min: 30,
            proctor_events_burst: 10,
            max_interview_events: 100_000,
            max_interview_bytes: 64 * 1024 * 1024,
            llm_history_budget_chars: 12_000,
            tts_dir: "./interviewd-audio".into(),
            drain_timeout_ms: 10_000,
            metrics_bind: None,
            chaos_hooks: false,
        }
    }
}

/// The values of a TOML config file, keyed by variable name in upper case,
/// each kept as text so the file and the environment parse alike.
#[derive(Debug, Clone, Default)]
pub struct FileValues {
    values: BTreeMap<String, String>,
    origin: String,
}

impl FileValues {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> anyhow::Result<FileValues> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        FileValues::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names the file in error messages.
    /// Keys are the variables in lower case (`port = 3001`); values are
    /// strings or integers. Unknown keys and other value types are errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<FileValues> {
        let table: toml::Table = toml::from_str(text)
            .with_context(|| format!("config file {origin} is not valid TOML"))?;
        let mut values = BTreeMap::new();
        for (key, value) in table {
            let name = key.to_ascii_uppercase();
            if !KEYS.contains(&name.as_str()) {
                bail!(
                    "unknown key `{key}` in config file {origin}; known keys are the \
                     configuration variables in lower case (see README)"
                );
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                other => bail!(
                    "`{key}` in config file {origin} must be a string or an integer, not a {}",
                    other.type_str()
                ),
            };
            values.insert(name, text);
        }
        Ok(FileValues {
            values,
            origin: origin.to_string(),
        })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

impl Config {
    /// Reads the optional file, then the environment over it.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let file_values = match file {
            Some(path) => FileValues::read(path)?,
            None => FileValues::default(),
        };
        for key in KEYS {
            if let Some(value) = std::env::var_os(key) {
                if value.to_str().is_none() {
                    bail!("environment variable {key} is not valid UTF-8");
                }
            }
        }
        Config::from_lookup(&file_values, |key| std::env::var(key).ok())
    }

    /// The whole resolution without touching the process: `env` answers for
    /// environment variables (tests pass a map). See the module doc for the
    /// precedence rules.
    pub fn from_lookup(
        file: &FileValues,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        let src = Source { file, env: &env };
        let d = Config::default();
        let config = Config {
            bind: src.string("BIND").unwrap_or(d.bind),
            port: src.number("PORT", d.port, 0)?,
            database_url: src.string("DATABASE_URL").unwrap_or(d.database_url),
            redis_url: src.string("REDIS_URL"),
            node_id: src
                .string("NODE_ID")
                .unwrap_or_else(|| default_node_id(&env)),
            node_lease_ttl_ms: src.number("NODE_LEASE_TTL_MS", d.node_lease_ttl_ms, 1)?,
            node_heartbeat_ms: src.number("NODE_HEARTBEAT_MS", d.node_heartbeat_ms, 1)?,
            jwt_secret: src.string("JWT_SECRET"),
            jwt_issuer: src.string("JWT_ISSUER"),
            jwt_audience: src.string("JWT_AUDIENCE"),
            llm_base_url: src.string("LLM_BASE_URL"),
            llm_api_key: src.string("LLM_API_KEY"),
            llm_model: src.string("LLM_MODEL"),
            llm_timeout_ms: src.number("LLM_TIMEOUT_MS", d.llm_timeout_ms, 1)?,
            stt_base_url: src.string("STT_BASE_URL"),
            stt_api_key: src.string("STT_API_KEY"),
            stt_model: src.string("STT_MODEL"),
            tts_base_url: src.string("TTS_BASE_URL"),
            tts_api_key: src.string("TTS_API_KEY"),
            tts_model: src.string("TTS_MODEL"),
            tts_voice: src.string("TTS_VOICE"),
            heartbeat_interval_ms: src.number(
                "HEARTBEAT_INTERVAL_MS",
                d.heartbeat_interval_ms,
                1,
            )?,
            session_idle_passivate_ms: src.number(
                "SESSION_IDLE_PASSIVATE_MS",
                d.session_idle_passivate_ms,
                0,
            )?,
            session_ttl_secs: src.number("SESSION_TTL_SECS", d.session_ttl_secs, 0)?,
            max_frame_bytes: src.number("MAX_FRAME_BYTES", d.max_frame_bytes, 1)?,
            rate_limit_per_sec: src.number("RATE_LIMIT_PER_SEC", d.rate_limit_per_sec, 1)?,
            rate_limit_burst: src.number("RATE_LIMIT_BURST", d.rate_limit_burst, 1)?,
            admin_token: src.string("ADMIN_TOKEN"),
            log_format: src.parsed("LOG_FORMAT", d.log_format)?,
            scripted_word_delay_ms: src.number(
                "SCRIPTED_WORD_DELAY_MS",
                d.scripted_word_delay_ms,
                0,
            )?,
            max_audio_bytes: src.number("MAX_AUDIO_BYTES", d.max_audio_bytes, 1)?,
            // A committed batch (up to 128 events) reaches a socket in one burst.
            outbox_frames: src.number("OUTBOX_FRAMES", d.outbox_frames, 256)?,
            max_sockets_per_token: src.number(
                "MAX_SOCKETS_PER_TOKEN",
                d.max_sockets_per_token,
                1,
            )?,
            max_sockets_per_address: src.number(
                "MAX_SOCKETS_PER_ADDRESS",
                d.max_sockets_per_address,
                1,
            )?,
            max_sockets: src.number("MAX_SOCKETS", d.max_sockets, 0)?,
            public_url: src
                .string("PUBLIC_URL")
                .map(|url| url.trim_end_matches('/').to_string()),
            db_outage_pause_ms: src.number("DB_OUTAGE_PAUSE_MS", d.db_outage_pause_ms, 1)?,
            proctor_events_per_min: src.number(
                "PROCTOR_EVENTS_PER_MIN",
                d.proctor_events_per_min,
                1,
            )?,
            proctor_events_burst: src.number("PROCTOR_EVENTS_BURST", d.proctor_events_burst, 1)?,
            max_interview_events: src.number(
                "MAX_INTERVIEW_EVENTS",
                d.max_interview_events,
                100,
            )?,
            max_interview_bytes: src.number(
                "MAX_INTERVIEW_BYTES",
                d.max_interview_bytes,
                64 * 1024,
            )?,
            llm_history_budget_chars: src.number(
                "LLM_HISTORY_BUDGET_CHARS",
                d.llm_history_budget_chars,
                1,
            )?,
            tts_dir: src.string("TTS_DIR").unwrap_or(d.tts_dir),
            drain_timeout_ms: src.number("DRAIN_TIMEOUT_MS", d.drain_timeout_ms, 1)?,
            metrics_bind: src.optional(
                "METRICS_BIND",
                "an IP address and port, e.g. 127.0.0.1:9464",
            )?,
            chaos_hooks: match src.string("CHAOS_HOOKS").as_deref() {
                None | Some("0" | "false" | "off") => false,
                Some("1" | "true" | "on") => true,
                Some(other) => anyhow::bail!("invalid CHAOS_HOOKS={other:?}: expected 1 or 0"),
            },
        };
        config.check_node_lease()?;
        Ok(config)
    }

    /// The JWT key, or an error saying how to get one. `serve` (without
    /// `--dev`) and `token` need it.
    pub fn jwt_secret_required(&self) -> anyhow::Result<&str> {
        match self.jwt_secret.as_deref() {
            Some(secret) => Ok(secret),
            None => bail!(
                "JWT_SECRET is not set: set it in the environment or the config file \
                 (`jwt_secret = \"...\"`), or run `interviewd serve --dev` for a generated one"
            ),
        }
    }

    /// `JWT_SECRET` and `ADMIN_TOKEN` when shorter than [`MIN_SECRET_BYTES`],
    /// e.g. `JWT_SECRET is 1 bytes`.
    pub fn weak_secrets(&self) -> Vec<String> {
        [
            ("JWT_SECRET", &self.jwt_secret),
            ("ADMIN_TOKEN", &self.admin_token),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            let len = value.as_deref()?.len();
            let unit = if len == 1 { "byte" } else { "bytes" };
            (len < MIN_SECRET_BYTES).then(|| format!("{name} is {len} {unit}"))
        })
        .collect()
    }

    /// At the start of `serve`: a weak secret is an error naming it and how
    /// to make a strong one; with `--dev` it is a warning (returned).
    pub fn check_secrets(&self, dev: bool) -> anyhow::Result<Vec<String>> {
        let weak = self.weak_secrets();
        if weak.is_empty() {
            return Ok(weak);
        }
        let advice = format!(
            "{}: use at least {MIN_SECRET_BYTES} bytes (make one with `openssl rand -hex 32`)",
            weak.join(", ")
        );
        if dev {
            return Ok(vec![format!("{advice}; accepted by `serve --dev` only")]);
        }
        bail!("{advice}, or run `interviewd serve --dev` on a laptop")
    }

    /// Things that work but are probably mistakes; `main` logs each one as a
    /// warning once logging is up. (Weak secrets: [`Config::check_secrets`].)
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.max_frame_bytes > 1024 * 1024 {
            warnings.push(format!(
                "MAX_FRAME_BYTES is {}; frames over 1 MiB close the socket anyway (PROTOCOL section 2)",
                self.max_frame_bytes
            ));
        }
        if let Some(warning) = self.node_lease_warning() {
            warnings.push(warning);
        }
        if self.llm_base_url.is_none() && (self.llm_api_key.is_some() || self.llm_model.is_some()) {
            warnings.push(
                "LLM_API_KEY or LLM_MODEL is set without LLM_BASE_URL: using the scripted interviewer"
                    .to_string(),
            );
        }
        warnings
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn secret(value: &Option<String>) -> &'static str {
            match value {
                Some(_) => "Some(<redacted>)",
                None => "None",
            }
        }
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("node_id", &self.node_id)
            .field("node_lease_ttl_ms", &self.node_lease_ttl_ms)
            .field("node_heartbeat_ms", &self.node_heartbeat_ms)
            .field("jwt_secret", &format_args!("{}", secret(&self.jwt_secret)))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("llm_base_url", &self.llm_base_url)
            .field(
                "llm_api_key",
                &format_args!("{}", secret(&self.llm_api_key)),
            )
            .field("llm_model", &self.llm_model)
            .field("llm_timeout_ms", &self.llm_timeout_ms)
            .field("stt_base_url", &self.stt_base_url)
            .field(
                "stt_api_key",
                &format_args!("{}", secret(&self.stt_api_key)),
            )
            .field("stt_model", &self.stt_model)
            .field("tts_base_url", &self.tts_base_url)
            .field(
                "tts_api_key",
                &format_args!("{}", secret(&self.tts_api_key)),
            )
            .field("tts_model", &self.tts_model)
            .field("tts_voice", &self.tts_voice)
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .field("session_idle_passivate_ms", &self.session_idle_passivate_ms)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .field(
                "admin_token",
                &format_args!("{}", secret(&self.admin_token)),
            )
            .field("log_format", &self.log_format)
            .field("scripted_word_delay_ms", &self.scripted_word_delay_ms)
            .field("max_audio_bytes", &self.max_audio_bytes)
            .field("outbox_frames", &self.outbox_frames)
            .field("max_sockets_per_token", &self.max_sockets_per_token)
            .field("max_sockets_per_address", &self.max_sockets_per_address)
            .field("max_sockets", &self.max_sockets)
            .field("public_url", &self.public_url)
            .field("db_outage_pause_ms", &self.db_outage_pause_ms)
            .field("proctor_events_per_min", &self.proctor_events_per_min)
            .field("proctor_events_burst", &self.proctor_events_burst)
            .field("max_interview_events", &self.max_interview_events)
            .field("max_interview_bytes", &self.max_interview_bytes)
            .field("llm_history_budget_chars", &self.llm_history_budget_chars)
            .field("tts_dir", &self.tts_dir)
            .field("drain_timeout_ms", &self.drain_timeout_ms)
            .field("metrics_bind", &self.metrics_bind)
            .field("chaos_hooks", &self.chaos_hooks)
            .finish()
    }
}

/// `scheme://user:password@host/...` with the password replaced by `***`;
/// anything else unchanged. For logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:***{}",
        &url[..rest_start],
        &userinfo[..colon],
        &url[rest_start + at..]
    )
}

/// `NODE_ID`'s default: the host name, a dash, the process id.
fn default_node_id(env: impl Fn(&str) -> Option<String>) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            env("HOSTNAME")
                .or_else(|| std::env::var("HOSTNAME").ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}-{}", std::process::id())
}

/// Where a raw value came from, for error messages.
enum Origin<'a> {
    Env,
    File(&'a str),
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env => write!(f, "from the environment"),
            Origin::File(path) => write!(f, "from config file {path}"),
        }
    }
}

struct Source<'a, E> {
    file: &'a FileValues,
    env: &'a E,
}

impl<E: Fn(&str) -> Option<String>> Source<'_, E> {
    /// The winning raw value: a non-blank environment value, else a non-empty
    /// file value, else nothing.
    fn raw(&self, name: &str) -> Option<(String, Origin<'_>)> {
        if let Some(value) = (self.env)(name).filter(|v| !v.trim().is_empty()) {
            return Some((value, Origin::Env));
        }
        self.file
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v.to_string(), Origin::File(&self.file.origin)))
    }

    fn string(&self, name: &str) -> Option<String> {
        self.raw(name).map(|(value, _)| value)
    }

    /// An unsigned integer no smaller than `min`.
    fn number<T>(&self, name: &str, default: T, min: T) -> anyhow::Result<T>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
        T::Err: fmt::Display,
    {
        let Some((raw, origin)) = self.raw(name) else {
            return Ok(default);
        };
        let value = raw.trim().parse::<T>().map_err(|e| {
            anyhow::anyhow!(
                "invalid {name}={raw:?} ({origin}): {e}; expected a whole number >= {min}"
            )
        })?;
        if value < min {
            bail!("invalid {name}={raw:?} ({origin}): must be at least {min}");
        }
        Ok(value)
    }

    /// A value that is unset by default; `expected` says what it must look
    /// like when it does not parse.
    fn optional<T>(&self, name: &str, expected: &str) -> anyhow::Result<Option<T>>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => Ok(None),
            Some((raw, origin)) => raw.trim().parse::<T>().map(Some).map_err(|e| {
                anyhow::anyhow!("invalid {name}={raw:?} ({origin}): {e}; expected {expected}")
            }),
        }
    }

    fn parsed<T>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => Ok(default),
            Some((raw, origin)) => raw
                .parse::<T>()
                .map_err(|e| anyhow::anyhow!("invalid {name}={raw:?} ({origin}): {e}")),
        }
    }
}

#[cfg(test)]
mod tests;
