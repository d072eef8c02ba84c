//! Black-box harness for the interviewd integration tests.
//!
//! Every test starts the real binary (`interviewd serve`) on port 0 with its
//! own database, talks to it over real WebSockets
//! (tokio-tungstenite) and HTTP (reqwest), and checks the wire contract of
//! docs/protocol.md. Every wait is bounded, so a broken server fails a test
//! instead of hanging it; when a test panics, the server's stdout/stderr is
//! printed.
//!
//! The database: with `DATABASE_URL` unset (or not PostgreSQL), a fresh
//! SQLite file in the server's temp dir. With `DATABASE_URL=postgres://...`,
//! a fresh database `<name>_t_<random>` on that server per `TestServer`
//! (kept across `restart_same_db`, dropped with the server), so the whole
//! suite runs once per backend with the same command. A test that passes its
//! own `DATABASE_URL` override gets exactly that.
//!
//! Parts:
//! - `TestServer`: spawn, `kill9`, `restart_same_db`, HTTP helpers.
//! - tokens: `sign`, `candidate_token`, `recruiter_token`, `admin_token`, ...
//! - `WsClient`: one socket; checks the shape of every frame it receives and
//!   that `seq` only grows on one connection; reads close codes robustly.
//! - `ScriptModel`: what the built-in scripted interviewer must do, turn by
//!   turn (order of events, follow-up rule, streamed text, progress).
//! - event-log helpers: contiguity, candidate view vs observer view, transcript.

#![allow(dead_code)]

/// Throwaway PostgreSQL databases (shared with the store's unit tests).
#[path = "../../src/store/scratch_db.rs"]
pub mod scratch_db;

use std::{
    io,
    pin::Pin,
    process::Stdio,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader, ReadBuf},
    net::TcpStream,
    process::{Child, Command},
    sync::oneshot,
    time::{timeout, Instant},
};
use tokio_tungstenite::{
    client_async,
    tungstenite::{self, client::IntoClientRequest, Message},
    WebSocketStream,
};

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/// HS256 key the test servers are started with.
pub const SECRET: &str = "interviewd-integration-test-secret-0123456789";
/// The static `ADMIN_TOKEN` the test servers are started with: `/metrics`
/// answers only to it (`TestServer::metrics`). `("ADMIN_TOKEN", "")` unsets it.
pub const ADMIN_TOKEN: &str = "interviewd-integration-admin-token-0123456789";
/// The organisation test interviews are created in.
pub const ORG: &str = "org-1";
pub const OTHER_ORG: &str = "org-2";
/// Default bound for one expected frame or reply.
pub const STEP: Duration = Duration::from_secs(5);
/// Bound for one whole interviewer turn.
pub const TURN: Duration = Duration::from_secs(15);

/// Session events only observers receive (PROTOCOL section 5).
pub const OBSERVER_ONLY: &[&str] = &[
    "candidate-joined",
    "proctor-alert",
    "trust-score-update",
    "interview-interrupted",
];

/// Replies to one client: never carry `seq` (PROTOCOL section 2).
pub const REPLY_TYPES: &[&str] = &[
    "connected",
    "interview-ready",
    "observation-started",
    "observation-stopped",
    "heartbeat-ack",
    "pong",
    "error",
    // POST /v1/notifications pushes (docs/protocol.md section 10).
    "notification",
];

/// Session events: always carry `seq` (PROTOCOL section 5).
pub const EVENT_TYPES: &[&str] = &[
    "candidate-joined",
    "interview-started",
    "ai-thinking",
    "ai-stream-start",
    "ai-token",
    "ai-stream-end",
    "question",
    "transcription",
    "candidate-answer",
    "evaluation",
    "progress-update",
    "proctor-alert",
    "trust-score-update",
    "interview-interrupted",
    "interview-paused",
    "interview-resumed",
    "interview-completed",
    "interview-expired",
];

/// Well over 12 words: never gets a follow-up.
pub const LONG_ANSWER: &str =
    "I would put a token bucket per client in Redis and refill it lazily on every request.";
/// Well over 12 words.
pub const LONG_ANSWER_2: &str =
    "First I stabilised the service, then I wrote a blameless postmortem with clear follow up actions.";
/// Well over 12 words.
pub const LONG_ANSWER_3: &str =
    "I would listen first, share the data I have, and agree on a small experiment.";
/// 4 words (fewer than 12): gets a follow-up unless one was asked for this question already.
pub const SHORT_ANSWER: &str = "Use a hash map.";
/// 5 words.
pub const SHORT_ANSWER_2: &str = "Still a hash map, honestly.";

/// The three template questions of `TestServer::create_interview`.
pub fn default_questions() -> Vec<(String, String)> {
    vec![
        (
            "How would you design a rate limiter for a public API?".into(),
            "TECHNICAL".into(),
        ),
        (
            "Describe a production incident you handled and what you learned.".into(),
            "BEHAVIORAL".into(),
        ),
        (
            "How would you handle a disagreement about priorities with a product manager?".into(),
            "SITUATIONAL".into(),
        ),
    ]
}

pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// Every setting's name (the server's own list), removed from the child's
/// environment unless a test sets it.
#[path = "../../src/config/keys.rs"]
mod config_keys;
pub use config_keys::KEYS as CONFIG_VARS;

/// The PostgreSQL server the suite runs against: `DATABASE_URL` when it
/// points at PostgreSQL; `None` runs it on SQLite.
pub fn postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| scratch_db::is_postgres(url))
}

/// A fresh PostgreSQL database on the server of `base_url`.
/// `interviewd serve` run in `dir` with every setting of the developer's
/// shell cleared, then loopback, port 0, a SQLite file and audio folder in
/// `dir`, backtraces on, then `env`; output piped. For tests that watch a
/// start itself (refusals, several processes on one database).
pub fn serve_command(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_interviewd"));
    cmd.arg("serve");
    for var in CONFIG_VARS {
        cmd.env_remove(var);
    }
    cmd.env_remove("INTERVIEWD_CONFIG")
        .env("BIND", "127.0.0.1")
        .env("PORT", "0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("interviewd.db").display()),
        )
        .env("TTS_DIR", dir.join("audio"))
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// A TCP connection to the test server, from `source` when given.
pub async fn tcp_connect(source: Option<std::net::IpAddr>, port: u16) -> io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(("127.0.0.1", port)).await;
    };
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
}

pub async fn scratch_postgres(base_url: &str) -> scratch_db::ScratchDb {
    let base = base_url.to_owned();
    tokio::task::spawn_blocking(move || scratch_db::ScratchDb::create(&base))
        .await
        .expect("create a scratch database")
        .unwrap_or_else(|e| panic!("DATABASE_URL points at PostgreSQL, but: {e}"))
}

/// One `interviewd serve` child process with its own database.
pub struct TestServer {
    pub port: u16,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
    /// The PostgreSQL database of this server, dropped after the server
    /// (fields drop after `Drop::drop` has killed the child).
    pg: Option<scratch_db::ScratchDb>,
    /// `RLIMIT_NOFILE` (soft and hard) of the child, when not inherited.
    nofile: Option<u64>,
    /// The last process was killed with -9 (its node lease was not released).
    killed: bool,
}

impl TestServer {
    /// Starts a server with the test defaults, `overrides` replacing or adding
    /// environment variables, and waits (30 s at most) for `listening on`.
    pub async fn start(overrides: &[(&str, &str)]) -> TestServer {
        Self::start_with_nofile(overrides, None).await
    }

    /// As `start`, with the child's descriptor limit (soft and hard) set to
    /// `nofile`, so it cannot raise it either.
    pub async fn start_with_nofile(overrides: &[(&str, &str)], nofile: Option<u64>) -> TestServer {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let own_db = overrides.iter().any(|(k, _)| *k == "DATABASE_URL");
        let pg = match postgres_url() {
            Some(base) if !own_db => Some(scratch_postgres(&base).await),
            _ => None,
        };
        let database_url = match &pg {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", dir.path().join("interviewd.db").display()),
        };
        let mut env: Vec<(String, String)> = vec![
            ("BIND".into(), "127.0.0.1".into()),
            ("PORT".into(), "0".into()),
            ("DATABASE_URL".into(), database_url),
            ("JWT_SECRET".into(), SECRET.into()),
            ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
            ("SCRIPTED_WORD_DELAY_MS".into(), "1".into()),
            ("LOG_FORMAT".into(), "pretty".into()),
        ];
        for (key, value) in overrides {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.to_string()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("build an HTTP client");
        let mut server = TestServer {
            port: 0,
            dir,
            env,
            child: None,
            log: Arc::default(),
            http,
            pg,
            nofile,
            killed: false,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_interviewd"));
        cmd.arg("serve");
        for var in CONFIG_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.env("RUST_BACKTRACE", "1");
        if let Some(limit) = self.nofile {
            let lim = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            // SAFETY: between fork and exec only setrlimit runs, which is
            // async-signal-safe and reads the struct copied into the closure.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn interviewd: {e}"));
        let stdout = child.stdout.take().expect("child stdout");
        let stderr = child.stderr.take().expect("child stderr");
        let (tx, rx) = oneshot::channel();
        tokio::spawn(drain_output(stdout, "stdout", self.log.clone(), Some(tx)));
        tokio::spawn(drain_output(stderr, "stderr", self.log.clone(), None));
        let port = match timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(port)) => port,
            Ok(Err(_)) => {
                let status = timeout(Duration::from_secs(2), child.wait()).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "interviewd closed stdout before printing `listening on` (exit: {status:?})\n{}",
                    self.dump_log()
                );
            }
            Err(_) => panic!(
                "interviewd did not print `listening on 127.0.0.1:<port>` within 30 s\n{}",
                self.dump_log()
            ),
        };
        self.port = port;
        self.child = Some(child);
    }

    /// `kill -9` the server (no graceful drain) and wait for it to die.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("send SIGKILL to interviewd");
            let _ = timeout(STEP, child.wait()).await;
            self.killed = true;
        }
        self.log
            .lock()
            .unwrap()
            .push("----- interviewd killed with SIGKILL -----".into());
    }

    /// SIGTERM (a graceful drain) and wait, at most `within`, for the exit:
    /// `Some(exit code)`, or `None` if it did not exit in time (it is then
    /// killed).
    pub async fn terminate(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id().expect("a running child has a pid");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        let exited = match timeout(within, child.wait()).await {
            Ok(Ok(status)) => Some(status.code().unwrap_or(-1)),
            _ => {
                let _ = child.start_kill();
                None
            }
        };
        self.log.lock().unwrap().push(format!(
            "----- interviewd sent SIGTERM: exit {exited:?} -----"
        ));
        exited
    }

    /// Starts the server again on the same database (and environment); the
    /// port changes. Kills the running process first if there is one.
    ///
    /// On PostgreSQL a process killed with -9 still owns its interviews
    /// until its node lease expires (DESIGN.md, "Several nodes"), and a
    /// join is refused until then: the restart waits out that lease first,
    /// as a client retrying would.
    pub async fn restart_same_db(&mut self) {
        if self.child.is_some() {
            self.kill9().await;
        }
        if self.killed && self.on_postgres() {
            let ttl_ms = self
                .env
                .iter()
                .find(|(k, _)| k == "NODE_LEASE_TTL_MS")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(3_000u64);
            tokio::time::sleep(Duration::from_millis(ttl_ms + 300)).await;
        }
        self.killed = false;
        self.log
            .lock()
            .unwrap()
            .push("----- interviewd restarted on the same database -----".into());
        self.spawn().await;
    }

    fn on_postgres(&self) -> bool {
        self.env
            .iter()
            .any(|(k, v)| k == "DATABASE_URL" && v.starts_with("postgres"))
    }

    /// The server process's id, while it runs (to stop or continue it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref()?.id()
    }

    /// The server process's resident memory in KiB (`VmRSS`), if running.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Descriptors the server process holds (entries of `/proc/PID/fd`).
    pub fn open_fds(&self) -> Option<usize> {
        let pid = self.child.as_ref()?.id()?;
        Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
    }

    /// Bytes of the SQLite database (file and WAL), or `None` on PostgreSQL.
    pub fn sqlite_bytes(&self) -> Option<u64> {
        if self.pg.is_some() {
            return None;
        }
        let db = self.dir.path().join("interviewd.db");
        let size = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        Some(size(db.clone()) + size(db.with_extension("db-wal")))
    }

    /// The last lines the server printed (stdout and stderr, interleaved).
    pub fn dump_log(&self) -> String {
        let log = self.log.lock().unwrap();
        let skip = log.len().saturating_sub(400);
        log[skip..].join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// `GET path` with an optional bearer token: (status, JSON body or the
    /// body as a JSON string when it is not JSON).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        finish(req.send().await, "GET", path).await
    }

    /// `GET /metrics` with the admin token: (status, the Prometheus text).
    pub async fn metrics(&self) -> (u16, String) {
        let resp = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: request failed: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: reading the body failed: {e}"));
        (status, text)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.post_raw(path, token, body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: String) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        finish(req.send().await, "POST", path).await
    }

    /// Creates the default interview (3 questions) as a recruiter of `ORG`.
    pub async fn create_interview(&self) -> Interview {
        self.create_interview_with(&default_questions()).await
    }

    pub async fn create_interview_with(&self, questions: &[(String, String)]) -> Interview {
        let body = json!({
            "candidateName": "Ada",
            "title": "Backend engineer",
            "questions": questions
                .iter()
                .map(|(text, kind)| json!({"text": text, "type": kind}))
                .collect::<Vec<_>>(),
            "durationMinutes": 30,
        });
        let (status, v) = self
            .post("/v1/interviews", Some(&recruiter_token(ORG)), &body)
            .await;
        assert_eq!(status, 201, "POST /v1/interviews should create: {v}");
        Interview {
            id: v["id"]
                .as_str()
                .unwrap_or_else(|| panic!("created interview has no id: {v}"))
                .to_string(),
            join_token: v["joinToken"]
                .as_str()
                .unwrap_or_else(|| panic!("created interview has no joinToken: {v}"))
                .to_string(),
            ws_url: v["wsUrl"].as_str().unwrap_or_default().to_string(),
            questions: questions.to_vec(),
        }
    }

    /// The interview row over HTTP, as its recruiter.
    pub async fn interview_row(&self, id: &str) -> Value {
        let (status, v) = self
            .get(&format!("/v1/interviews/{id}"), Some(&recruiter_token(ORG)))
            .await;
        assert_eq!(status, 200, "GET /v1/interviews/{id}: {v}");
        v
    }

    /// Polls `GET /v1/interviews/{id}` until `status` is `expected` (5 s at
    /// most; the row is written in batches) and returns the row.
    pub async fn wait_for_status(&self, id: &str, expected: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let row = self.interview_row(id).await;
            if row["status"] == expected || Instant::now() >= deadline {
                assert_eq!(
                    row["status"], expected,
                    "interview {id} should reach status {expected}: {row}"
                );
                return row;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// All events of an interview over HTTP (`after=0`, following `next`).
    pub async fn http_events(&self, id: &str, token: &str, limit: Option<u64>) -> Vec<Value> {
        let mut after = 0u64;
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let path = match limit {
                Some(l) => format!("/v1/interviews/{id}/events?after={after}&limit={l}"),
                None => format!("/v1/interviews/{id}/events?after={after}"),
            };
            let (status, v) = self.get(&path, Some(token)).await;
            assert_eq!(status, 200, "GET {path}: {v}");
            let page = v["events"]
                .as_array()
                .unwrap_or_else(|| panic!("GET {path}: no `events` array: {v}"))
                .clone();
            if page.is_empty() {
                return all;
            }
            let last = page.last().and_then(|e| e["seq"].as_u64()).expect("seq");
            all.extend(page);
            match &v["next"] {
                Value::Null => return all,
                n => {
                    // `next` is the `after` of the following page.
                    let next = n
                        .as_u64()
                        .unwrap_or_else(|| panic!("GET {path}: `next` is not a number: {v}"));
                    assert!(
                        next >= last,
                        "GET {path}: `next` ({next}) must not point before the page's last seq ({last})"
                    );
                    after = next;
                }
            }
        }
        panic!("GET /v1/interviews/{id}/events: pagination did not end");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- interviewd output (port {}) -----\n{}\n----- end of interviewd output -----",
                self.port,
                self.dump_log()
            );
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        // `self.pg` drops next: `DROP DATABASE ... WITH (FORCE)` closes
        // whatever connections the dying server still holds.
    }
}

async fn finish(
    result: Result<reqwest::Response, reqwest::Error>,
    method: &str,
    path: &str,
) -> (u16, Value) {
    let resp = result.unwrap_or_else(|e| panic!("{method} {path}: request failed: {e}"));
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: reading the body failed: {e}"));
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Copies one output pipe of the server into the log, line by line, and
/// reports the port from the `listening on HOST:PORT` line.
async fn drain_output<R: AsyncRead + Unpin>(
    pipe: R,
    tag: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    mut ready: Option<oneshot::Sender<u16>>,
) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                if let Some(port) = listening_port(&line) {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(port);
                    }
                }
                log.lock().unwrap().push(format!("[{tag}] {line}"));
            }
        }
    }
}

fn listening_port(line: &str) -> Option<u16> {
    const MARK: &str = "listening on ";
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let addr = rest.split_whitespace().next()?;
    let (_, port) = addr.rsplit_once(':')?;
    port.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------
// Interviews and tokens
// ---------------------------------------------------------------------------

/// An interview created over HTTP.
#[derive(Debug, Clone)]
pub struct Interview {
    pub id: String,
    pub join_token: String,
    pub ws_url: String,
    pub questions: Vec<(String, String)>,
}

pub fn now_secs() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// Signs `claims` with HS256 and the test secret.
pub fn sign(claims: &Value) -> String {
    sign_with(Algorithm::HS256, SECRET, claims)
}

pub fn sign_with(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign a test token")
}

/// A token with `alg: none` and an empty signature.
pub fn unsigned_token(claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

pub fn candidate_token(interview_id: &str, sub: &str) -> String {
    sign(&json!({
        "sub": sub, "role": "candidate", "name": "Ada",
        "interviewId": interview_id, "exp": now_secs() + 3600,
    }))
}

pub fn recruiter_token(org: &str) -> String {
    sign(&json!({
        "sub": format!("recruiter-of-{org}"), "role": "recruiter", "name": "Rita",
        "orgId": org, "exp": now_secs() + 3600,
    }))
}

pub fn admin_token() -> String {
    sign(&json!({"sub": "admin-1", "role": "admin", "name": "Root", "exp": now_secs() + 3600}))
}

/// Verifies a token with the test secret and returns its claims.
pub fn verify_token(token: &str) -> Value {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .unwrap_or_else(|e| panic!("token {token} does not verify with the test secret: {e}"))
    .claims
}

// ---------------------------------------------------------------------------
// Frame helpers
// ---------------------------------------------------------------------------

pub fn ty(frame: &Value) -> &str {
    frame["type"].as_str().unwrap_or("")
}

pub fn seq_of(frame: &Value) -> u64 {
    frame["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("frame has no seq: {frame}"))
}

pub fn types(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match f["seq"].as_u64() {
            Some(s) => format!("{}#{s}", ty(f)),
            None => ty(f).to_string(),
        })
        .collect()
}

pub fn is_observer_only(frame: &Value) -> bool {
    OBSERVER_ONLY.contains(&ty(frame))
}

/// The session events (frames with `seq`) among `frames`.
pub fn session_events(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f.get("seq").is_some())
        .cloned()
        .collect()
}

/// What a candidate may see of an observer's log.
pub fn candidate_visible(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|f| !is_observer_only(f))
        .cloned()
        .collect()
}

/// `(seq, type, data)` of each event: what must be identical for the same
/// event wherever and whenever it is delivered.
pub fn keys(events: &[Value]) -> Vec<(u64, String, Value)> {
    events
        .iter()
        .map(|f| (seq_of(f), ty(f).to_string(), f["data"].clone()))
        .collect()
}

pub fn assert_same_events(actual: &[Value], expected: &[Value], what: &str) {
    let a = keys(actual);
    let e = keys(expected);
    if a != e {
        let n = a.len().max(e.len());
        for i in 0..n {
            if a.get(i) != e.get(i) {
                panic!(
                    "{what}: first difference at position {i}:\n  got      {:?}\n  expected {:?}\n got types: {:?}\n expected types: {:?}",
                    a.get(i),
                    e.get(i),
                    types(actual),
                    types(expected)
                );
            }
        }
    }
}

/// `actual` starts with exactly the events of `expected`.
pub fn assert_prefix(actual: &[Value], expected: &[Value], what: &str) {
    assert!(
        actual.len() >= expected.len(),
        "{what}: {} events, expected at least the {} seen before: {:?}",
        actual.len(),
        expected.len(),
        types(actual)
    );
    assert_same_events(&actual[..expected.len()], expected, what);
}

/// Seqs grow by exactly 1 from the first event.
pub fn assert_contiguous(events: &[Value], what: &str) {
    for pair in events.windows(2) {
        assert_eq!(
            seq_of(&pair[1]),
            seq_of(&pair[0]) + 1,
            "{what}: seqs must run without gaps or duplicates: {:?}",
            types(events)
        );
    }
}

/// Seqs strictly grow.
pub fn assert_increasing(events: &[Value], what: &str) {
    for pair in events.windows(2) {
        assert!(
            seq_of(&pair[1]) > seq_of(&pair[0]),
            "{what}: seqs must strictly grow: {:?}",
            types(events)
        );
    }
}

/// The candidate's events are exactly the observer's events in the same seq
/// range minus the observer-only ones: same seqs, same types, same data.
pub fn assert_candidate_view(candidate: &[Value], observer: &[Value], what: &str) {
    assert!(!candidate.is_empty(), "{what}: candidate saw no events");
    assert_increasing(candidate, what);
    let lo = seq_of(&candidate[0]);
    let hi = seq_of(candidate.last().unwrap());
    assert!(
        observer.first().map(seq_of).unwrap_or(u64::MAX) <= lo
            && observer.last().map(seq_of).unwrap_or(0) >= hi,
        "{what}: the observer's log {:?} must cover the candidate's range {lo}..={hi}",
        types(observer)
    );
    let expected: Vec<Value> = observer
        .iter()
        .filter(|f| (lo..=hi).contains(&seq_of(f)) && !is_observer_only(f))
        .cloned()
        .collect();
    assert_same_events(candidate, &expected, what);
}

pub fn assert_rfc3339_utc(value: &Value, what: &str) {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} must be an RFC 3339 string, got {value}"));
    assert!(
        s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "{what} must be RFC 3339 UTC ending in Z, got {s:?}"
    );
}

pub fn parse_time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap_or_default())
        .unwrap_or_else(|_| panic!("not an RFC 3339 time: {value}"))
}

fn check_frame_shape(frame: &Value, who: &str) {
    let obj = frame
        .as_object()
        .unwrap_or_else(|| panic!("{who}: server frame is not a JSON object: {frame}"));
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{who}: server frame without string `type`: {frame}"));
    assert_rfc3339_utc(
        obj.get("ts").unwrap_or(&Value::Null),
        &format!("{who}: `ts` of {kind}"),
    );
    assert!(
        obj.get("data").map(Value::is_object).unwrap_or(false),
        "{who}: every server frame has an object `data`: {frame}"
    );
    if let Some(r) = obj.get("ref") {
        assert!(r.is_string(), "{who}: `ref` must be a string: {frame}");
    }
    if REPLY_TYPES.contains(&kind) {
        assert!(
            obj.get("seq").is_none(),
            "{who}: a reply ({kind}) must not carry seq: {frame}"
        );
    } else if EVENT_TYPES.contains(&kind) {
        let seq = obj.get("seq").and_then(Value::as_u64);
        assert!(
            seq.map(|s| s >= 1).unwrap_or(false),
            "{who}: a session event ({kind}) must carry a seq >= 1: {frame}"
        );
    } else {
        panic!("{who}: frame type `{kind}` is not in the protocol: {frame}");
    }
}

// ---------------------------------------------------------------------------
// Raw byte tee: lets us find the server's Close frame even when
// tokio-tungstenite reports a write error first (DESIGN.md pitfall).
// ---------------------------------------------------------------------------

pub struct TeeStream {
    inner: TcpStream,
    log: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for TeeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            this.log
                .lock()
                .unwrap()
                .extend_from_slice(&buf.filled()[before..]);
        }
        result
    }
}

impl AsyncWrite for TeeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The status code of the first Close frame in the raw bytes the server sent
/// (after the HTTP upgrade response), 1005 for a Close without a code.
pub fn scan_close_code(bytes: &[u8]) -> Option<u16> {
    let start = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut i = start;
    loop {
        if i + 2 > bytes.len() {
            return None;
        }
        let opcode = bytes[i] & 0x0f;
        let masked = bytes[i + 1] & 0x80 != 0;
        let (len, header) = match bytes[i + 1] & 0x7f {
            126 => {
                if i + 4 > bytes.len() {
                    return None;
                }
                (u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize, 4)
            }
            127 => {
                if i + 10 > bytes.len() {
                    return None;
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&bytes[i + 2..i + 10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            n => (n as usize, 2),
        };
        let mask_at = i + header;
        let payload_at = mask_at + if masked { 4 } else { 0 };
        if payload_at + len > bytes.len() {
            return None;
        }
        if opcode == 0x8 {
            if len < 2 {
                return Some(1005);
            }
            let mut code = [bytes[payload_at], bytes[payload_at + 1]];
            if masked {
                code[0] ^= bytes[mask_at];
                code[1] ^= bytes[mask_at + 1];
            }
            return Some(u16::from_be_bytes(code));
        }
        i = payload_at + len;
    }
}

// ---------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------

/// What reading a socket produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Frame(Value),
    Closed(u16),
    Timeout,
}

/// Result of `WsClient::flood`.
#[derive(Debug, Default)]
pub struct Flood {
    pub sent: usize,
    /// Every text frame received, with the time since the flood began.
    pub frames: Vec<(Duration, Value)>,
    /// The close code and when it came, if the server closed the socket.
    pub close: Option<(u16, Duration)>,
}

impl Flood {
    pub fn errors(&self, code: &str) -> Vec<(Duration, Value)> {
        self.frames
            .iter()
            .filter(|(_, f)| ty(f) == "error" && f["data"]["code"] == code)
            .cloned()
            .collect()
    }
    pub fn count(&self, kind: &str) -> usize {
        self.frames.iter().filter(|(_, f)| ty(f) == kind).count()
    }
}

/// One WebSocket connection to the server.
pub struct WsClient {
    pub name: String,
    ws: WebSocketStream<TeeStream>,
    raw: Arc<Mutex<Vec<u8>>>,
    /// Every text frame received on this connection, in order.
    pub frames: Vec<Value>,
    /// Highest `seq` received on this connection.
    pub last_seq: u64,
    close_code: Option<u16>,
    close_detail: Option<String>,
}

impl WsClient {
    /// Connects with `?token=` (no check of the first frame).
    pub async fn connect(port: u16, token: &str) -> WsClient {
        Self::open(port, Some(&format!("token={token}")), None, "client").await
    }

    /// Connects with `Authorization: Bearer` (no check of the first frame).
    pub async fn connect_with_header(port: u16, token: &str) -> WsClient {
        Self::open(port, None, Some(token), "client").await
    }

    /// Connects without any credentials.
    pub async fn connect_anonymous(port: u16) -> WsClient {
        Self::open(port, None, None, "anonymous").await
    }

    /// Connects with `?token=`, reads `connected` and checks its fields.
    pub async fn connected(port: u16, token: &str, name: &str) -> (WsClient, Value) {
        let mut ws = Self::open(port, Some(&format!("token={token}")), None, name).await;
        let hello = ws.expect_type("connected").await;
        check_connected(&hello["data"], None, None);
        (ws, hello["data"].clone())
    }

    /// The upgrade itself; panics unless the server answers 101.
    pub async fn open(
        port: u16,
        query: Option<&str>,
        bearer: Option<&str>,
        name: &str,
    ) -> WsClient {
        Self::try_open(port, query, bearer, name)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Connects with `?token=` from the local address `source` (any of
    /// 127.0.0.0/8 on Linux), reads `connected` and checks its fields.
    pub async fn connected_from(
        source: std::net::IpAddr,
        port: u16,
        token: &str,
        name: &str,
    ) -> (WsClient, Value) {
        let query = format!("token={token}");
        let mut ws = Self::try_open_from(Some(source), port, Some(&query), None, name)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let hello = ws.expect_type("connected").await;
        check_connected(&hello["data"], None, None);
        (ws, hello["data"].clone())
    }

    /// The upgrade itself; `Err` unless the server answers 101.
    pub async fn try_open(
        port: u16,
        query: Option<&str>,
        bearer: Option<&str>,
        name: &str,
    ) -> Result<WsClient, String> {
        Self::try_open_from(None, port, query, bearer, name).await
    }

    /// `try_open` from the local address `source` (the kernel's choice if `None`).
    pub async fn try_open_from(
        source: Option<std::net::IpAddr>,
        port: u16,
        query: Option<&str>,
        bearer: Option<&str>,
        name: &str,
    ) -> Result<WsClient, String> {
        let url = match query {
            Some(q) => format!("ws://127.0.0.1:{port}/interview?{q}"),
            None => format!("ws://127.0.0.1:{port}/interview"),
        };
        let mut request = url.as_str().into_client_request().expect("ws request");
        if let Some(token) = bearer {
            request.headers_mut().insert(
                "Authorization",
                format!("Bearer {token}").parse().expect("header value"),
            );
        }
        let tcp = timeout(STEP, tcp_connect(source, port))
            .await
            .map_err(|_| format!("{name}: TCP connect timed out"))?
            .map_err(|e| format!("{name}: TCP connect failed: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let raw = Arc::new(Mutex::new(Vec::new()));
        let tee = TeeStream {
            inner: tcp,
            log: raw.clone(),
        };
        let (ws, response) = timeout(STEP, client_async(request, tee))
            .await
            .map_err(|_| format!("{name}: WebSocket upgrade timed out"))?
            .map_err(|e| {
                format!("{name}: WebSocket upgrade failed (it must succeed, even with bad credentials): {e}")
            })?;
        if response.status().as_u16() != 101 {
            return Err(format!("{name}: upgrade status {}", response.status()));
        }
        Ok(WsClient {
            name: name.to_string(),
            ws,
            raw,
            frames: Vec::new(),
            last_seq: 0,
            close_code: None,
            close_detail: None,
        })
    }

    pub fn named(mut self, name: &str) -> WsClient {
        self.name = name.to_string();
        self
    }

    /// The session events received on this connection.
    pub fn events(&self) -> Vec<Value> {
        session_events(&self.frames)
    }

    pub fn is_closed(&self) -> bool {
        self.close_code.is_some()
    }

    fn context(&self) -> String {
        let skip = self.frames.len().saturating_sub(12);
        format!(
            "{}: last frames {:?}, close {:?} {}",
            self.name,
            types(&self.frames[skip..]),
            self.close_code,
            self.close_detail.clone().unwrap_or_default()
        )
    }

    // ----- sending -----

    pub async fn try_send(&mut self, message: Message) -> Result<(), String> {
        match timeout(STEP, self.ws.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("send timed out".into()),
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        let ctx = self.context();
        self.try_send(Message::text(value.to_string()))
            .await
            .unwrap_or_else(|e| panic!("send {value}: {e} ({ctx})"));
    }

    /// Sends `{"type": kind, "data": data}`.
    pub async fn send(&mut self, kind: &str, data: Value) {
        self.send_json(json!({"type": kind, "data": data})).await;
    }

    /// Sends `{"type": kind, "data": data, "ref": reference}`.
    pub async fn send_ref(&mut self, kind: &str, data: Value, reference: &str) {
        self.send_json(json!({"type": kind, "data": data, "ref": reference}))
            .await;
    }

    pub async fn send_raw_text(&mut self, text: &str) {
        let ctx = self.context();
        self.try_send(Message::text(text.to_string()))
            .await
            .unwrap_or_else(|e| panic!("send raw text: {e} ({ctx})"));
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        let ctx = self.context();
        self.try_send(Message::binary(bytes))
            .await
            .unwrap_or_else(|e| panic!("send binary: {e} ({ctx})"));
    }

    // ----- receiving -----

    /// The next text frame, a close, or a timeout. Skips ping/pong control
    /// frames (tokio-tungstenite answers pings itself while we read). Checks
    /// every frame's shape and that `seq` strictly grows on this connection.
    pub async fn next_incoming(&mut self, wait: Duration) -> Incoming {
        if let Some(code) = self.close_code {
            return Incoming::Closed(code);
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let item = match timeout(left, self.ws.next()).await {
                Err(_) => return Incoming::Timeout,
                Ok(item) => item,
            };
            if let Some(incoming) = self.process(item).await {
                return incoming;
            }
        }
    }

    async fn process(
        &mut self,
        item: Option<Result<Message, tungstenite::Error>>,
    ) -> Option<Incoming> {
        match item {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                    panic!(
                        "{}: server sent a text frame that is not JSON ({e}): {text}",
                        self.name
                    )
                });
                check_frame_shape(&frame, &self.name);
                if let Some(seq) = frame.get("seq").and_then(Value::as_u64) {
                    assert!(
                        seq > self.last_seq,
                        "{}: seq {seq} ({}) after seq {} on the same connection: events must arrive in order, exactly once ({})",
                        self.name,
                        ty(&frame),
                        self.last_seq,
                        self.context()
                    );
                    self.last_seq = seq;
                }
                self.frames.push(frame.clone());
                Some(Incoming::Frame(frame))
            }
            Some(Ok(Message::Binary(bytes))) => panic!(
                "{}: the server sent a binary frame ({} bytes); the protocol has none",
                self.name,
                bytes.len()
            ),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                self.close_code = Some(code);
                Some(Incoming::Closed(code))
            }
            Some(Err(e)) => {
                let code = self.salvage_close_code().await;
                self.close_detail = Some(format!("(read error: {e})"));
                self.close_code = Some(code.unwrap_or(1006));
                Some(Incoming::Closed(code.unwrap_or(1006)))
            }
            None => {
                let code = self.salvage_close_code().await;
                self.close_detail = Some("(stream ended)".into());
                self.close_code = Some(code.unwrap_or(1006));
                Some(Incoming::Closed(code.unwrap_or(1006)))
            }
        }
    }

    /// After an error: reads what the kernel still holds and looks for the
    /// server's Close frame in everything received on this connection.
    async fn salvage_close_code(&mut self) -> Option<u16> {
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match timeout(left, self.ws.get_mut().read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => continue,
                _ => break,
            }
        }
        let raw = self.raw.lock().unwrap();
        scan_close_code(&raw)
    }

    /// The next text frame within `wait`, or `None` on timeout or close.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Value> {
        match self.next_incoming(wait).await {
            Incoming::Frame(f) => Some(f),
            _ => None,
        }
    }

    /// The next text frame (within `STEP`); panics on timeout or close.
    pub async fn recv(&mut self) -> Value {
        match self.next_incoming(STEP).await {
            Incoming::Frame(f) => f,
            other => panic!("expected a frame, got {other:?} ({})", self.context()),
        }
    }

    /// The next frame must be of type `kind`; returns the whole frame.
    pub async fn expect_type(&mut self, kind: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(
            ty(&frame),
            kind,
            "{}: expected `{kind}` next, got {frame}",
            self.name
        );
        frame
    }

    /// The next frame must be `error` with `code`; checks `retryable` against
    /// the table of section 8 and returns the frame.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(
            (ty(&frame), frame["data"]["code"].as_str()),
            ("error", Some(code)),
            "{}: expected error {code}, got {frame}",
            self.name
        );
        check_error(&frame, code);
        frame
    }

    /// Like `expect_error`, and the error must echo `reference`.
    pub async fn expect_error_ref(&mut self, code: &str, reference: &str) -> Value {
        let frame = self.expect_error(code).await;
        assert_eq!(
            frame["ref"], reference,
            "{}: the error must echo ref: {frame}",
            self.name
        );
        frame
    }

    /// Frames up to and including the first of type `kind` (within `TURN`).
    pub async fn collect_until(&mut self, kind: &str) -> Vec<Value> {
        self.collect_until_any(&[kind]).await
    }

    pub async fn collect_until_any(&mut self, kinds: &[&str]) -> Vec<Value> {
        let deadline = Instant::now() + TURN;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_incoming(left).await {
                Incoming::Frame(f) => {
                    let done = kinds.contains(&ty(&f));
                    out.push(f);
                    if done {
                        return out;
                    }
                }
                other => panic!(
                    "{}: waiting for {kinds:?}, got {other:?} after {:?} ({})",
                    self.name,
                    types(&out),
                    self.context()
                ),
            }
        }
    }

    /// Frames until one with `seq >= target` (inclusive).
    pub async fn collect_until_seq(&mut self, target: u64) -> Vec<Value> {
        let deadline = Instant::now() + TURN;
        let mut out = Vec::new();
        while self.last_seq < target {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_incoming(left).await {
                Incoming::Frame(f) => out.push(f),
                other => panic!(
                    "{}: waiting for seq {target}, got {other:?} after {:?}",
                    self.name,
                    types(&out)
                ),
            }
        }
        out
    }

    /// Frames until none arrives for `quiet` (10 s at most in all). A close
    /// ends the collection too.
    pub async fn collect_quiet(&mut self, quiet: Duration) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        while Instant::now() < deadline {
            match self.next_incoming(quiet).await {
                Incoming::Frame(f) => out.push(f),
                _ => break,
            }
        }
        out
    }

    /// Nothing (no frame, no close) arrives within `ms` milliseconds.
    pub async fn assert_no_frame_within(&mut self, ms: u64) {
        match self.next_incoming(Duration::from_millis(ms)).await {
            Incoming::Timeout => {}
            other => panic!(
                "{}: expected nothing for {ms} ms, got {other:?} ({})",
                self.name,
                self.context()
            ),
        }
    }

    /// The server closes the socket within `wait` and sends no text frame
    /// before the Close; returns the close code.
    pub async fn expect_close(&mut self, wait: Duration) -> u16 {
        match self.next_incoming(wait).await {
            Incoming::Closed(code) => code,
            Incoming::Frame(f) => panic!(
                "{}: expected the socket to close with nothing before it, got {f}",
                self.name
            ),
            Incoming::Timeout => panic!(
                "{}: the socket was not closed within {wait:?} ({})",
                self.name,
                self.context()
            ),
        }
    }

    /// The server closes the socket within `wait`; text frames before the
    /// Close are returned too.
    pub async fn expect_close_after_frames(&mut self, wait: Duration) -> (u16, Vec<Value>) {
        let deadline = Instant::now() + wait;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_incoming(left).await {
                Incoming::Closed(code) => return (code, frames),
                Incoming::Frame(f) => frames.push(f),
                Incoming::Timeout => panic!(
                    "{}: the socket was not closed within {wait:?}; frames: {:?}",
                    self.name,
                    types(&frames)
                ),
            }
        }
    }

    /// Sends `heartbeat` with a ref; the very next frame must be its
    /// `heartbeat-ack`. Proves the socket is open and nothing was queued.
    pub async fn heartbeat_roundtrip(&mut self, reference: &str) -> Value {
        self.send_ref("heartbeat", json!({}), reference).await;
        let ack = self.expect_type("heartbeat-ack").await;
        assert_eq!(ack["ref"], reference, "heartbeat-ack must echo ref: {ack}");
        assert_rfc3339_utc(&ack["data"]["timestamp"], "heartbeat-ack.data.timestamp");
        ack
    }

    /// Sends one frame every `every` for `total` while reading whatever comes
    /// back, stopping early if the server closes the socket.
    pub async fn flood(
        &mut self,
        every: Duration,
        total: Duration,
        mut frame: impl FnMut(usize) -> Value,
    ) -> Flood {
        let t0 = Instant::now();
        let end = t0 + total;
        let mut tick = tokio::time::interval(every);
        let mut out = Flood::default();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(end) => break,
                _ = tick.tick() => {
                    let f = frame(out.sent);
                    out.sent += 1;
                    if self.try_send(Message::text(f.to_string())).await.is_err() {
                        let (code, frames) = self.expect_close_after_frames(STEP).await;
                        out.frames.extend(frames.into_iter().map(|f| (t0.elapsed(), f)));
                        out.close = Some((code, t0.elapsed()));
                        break;
                    }
                }
                item = self.ws.next() => {
                    match self.process(item).await {
                        Some(Incoming::Frame(f)) => out.frames.push((t0.elapsed(), f)),
                        Some(Incoming::Closed(code)) => {
                            out.close = Some((code, t0.elapsed()));
                            break;
                        }
                        _ => {}
                    }
                }
            }
        }
        out
    }

    // ----- roles -----

    /// `join-interview` (candidates); returns the `interview-ready` frame.
    pub async fn join(&mut self, interview_id: &str, last_seq: Option<u64>) -> Value {
        let mut data = json!({"interviewId": interview_id});
        if let Some(s) = last_seq {
            data["lastSeq"] = json!(s);
        }
        self.send_ref("join-interview", data, "join").await;
        let ready = self.expect_type("interview-ready").await;
        assert_eq!(
            ready["ref"], "join",
            "interview-ready must echo ref: {ready}"
        );
        check_ready(&ready["data"], interview_id);
        ready
    }

    /// `observe-interview` (recruiters, admins); returns `observation-started`.
    pub async fn observe(&mut self, interview_id: &str, last_seq: Option<u64>) -> Value {
        let mut data = json!({"interviewId": interview_id});
        if let Some(s) = last_seq {
            data["lastSeq"] = json!(s);
        }
        self.send_ref("observe-interview", data, "observe").await;
        let started = self.expect_type("observation-started").await;
        assert_eq!(
            started["ref"], "observe",
            "observation-started must echo ref: {started}"
        );
        check_observation_started(&started["data"], interview_id);
        started
    }
}

/// A connected, joined candidate: (client, interview-ready frame).
pub async fn join_candidate(
    server: &TestServer,
    iv: &Interview,
    last_seq: Option<u64>,
) -> (WsClient, Value) {
    let (mut ws, hello) = WsClient::connected(server.port, &iv.join_token, "candidate").await;
    assert_eq!(hello["userType"], "candidate", "connected: {hello}");
    let ready = ws.join(&iv.id, last_seq).await;
    (ws, ready)
}

/// A connected observer (recruiter token of `ORG` unless `token` is given).
pub async fn join_observer(
    server: &TestServer,
    iv: &Interview,
    token: Option<&str>,
    name: &str,
    last_seq: Option<u64>,
) -> (WsClient, Value) {
    let token = token
        .map(str::to_string)
        .unwrap_or_else(|| recruiter_token(ORG));
    let (mut ws, _) = WsClient::connected(server.port, &token, name).await;
    let started = ws.observe(&iv.id, last_seq).await;
    (ws, started)
}

// ---------------------------------------------------------------------------
// Shape checks of replies
// ---------------------------------------------------------------------------

pub fn check_connected(data: &Value, user_id: Option<&str>, user_type: Option<&str>) {
    assert!(
        data["connectionId"].as_str().is_some_and(|s| !s.is_empty()),
        "connected.connectionId: {data}"
    );
    assert!(data["userId"].is_string(), "connected.userId: {data}");
    assert!(
        ["candidate", "recruiter", "admin", "service"]
            .contains(&data["userType"].as_str().unwrap_or("")),
        "connected.userType: {data}"
    );
    assert!(
        data["heartbeatIntervalMs"].as_u64().is_some_and(|n| n > 0),
        "connected.heartbeatIntervalMs: {data}"
    );
    assert_rfc3339_utc(&data["timestamp"], "connected.timestamp");
    if let Some(u) = user_id {
        assert_eq!(data["userId"], u, "connected.userId: {data}");
    }
    if let Some(t) = user_type {
        assert_eq!(data["userType"], t, "connected.userType: {data}");
    }
}

pub fn check_error(frame: &Value, code: &str) {
    let d = &frame["data"];
    assert!(
        d["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error.message: {frame}"
    );
    let retryable = matches!(code, "RATE_LIMITED" | "AI_UNAVAILABLE" | "INTERNAL_ERROR");
    assert_eq!(
        d["retryable"],
        json!(retryable),
        "error {code}: retryable per section 8: {frame}"
    );
}

const STATUSES: &[&str] = &[
    "PENDING",
    "CREATED",
    "ACTIVE",
    "PAUSED",
    "COMPLETED",
    "EXPIRED",
];

fn check_progress(p: &Value, what: &str) {
    for k in ["currentQuestion", "totalQuestions", "answered"] {
        assert!(p[k].is_u64(), "{what}.{k} must be a whole number: {p}");
    }
}

fn check_transcript_shape(t: &Value, what: &str) {
    let entries = t
        .as_array()
        .unwrap_or_else(|| panic!("{what} must be an array: {t}"));
    for e in entries {
        assert!(
            e["speaker"] == "ai" || e["speaker"] == "candidate",
            "{what}: speaker: {e}"
        );
        assert!(e["text"].is_string(), "{what}: text: {e}");
        assert!(e["seq"].is_u64(), "{what}: seq: {e}");
    }
}

/// Field types of `interview-ready` (section 3).
pub fn check_ready(d: &Value, interview_id: &str) {
    assert!(
        d["sessionId"].as_str().is_some_and(|s| !s.is_empty()),
        "interview-ready.sessionId: {d}"
    );
    assert_eq!(
        d["interview"]["id"], interview_id,
        "interview-ready.interview.id: {d}"
    );
    assert_eq!(
        d["interview"]["title"], "Backend engineer",
        "interview-ready.interview.title"
    );
    assert_eq!(
        d["interview"]["candidateName"], "Ada",
        "interview-ready.interview.candidateName"
    );
    assert!(
        d["template"]["id"].is_string(),
        "interview-ready.template.id: {d}"
    );
    assert!(
        d["template"]["title"].is_string(),
        "interview-ready.template.title: {d}"
    );
    assert!(
        d["template"]["totalDuration"].is_number(),
        "interview-ready.template.totalDuration: {d}"
    );
    assert_eq!(
        d["estimatedDuration"], d["template"]["totalDuration"],
        "interview-ready.estimatedDuration: {d}"
    );
    assert!(
        STATUSES.contains(&d["status"].as_str().unwrap_or("")),
        "interview-ready.status must be upper case: {d}"
    );
    check_progress(&d["progress"], "interview-ready.progress");
    assert!(
        d["currentQuestion"].is_null() || d["currentQuestion"].is_object(),
        "interview-ready.currentQuestion: {d}"
    );
    check_transcript_shape(&d["transcript"], "interview-ready.transcript");
    assert!(d["lastSeq"].is_u64(), "interview-ready.lastSeq: {d}");
    assert!(
        d["recovered"].is_boolean(),
        "interview-ready.recovered: {d}"
    );
}

/// Field types of `observation-started` (section 4).
pub fn check_observation_started(d: &Value, interview_id: &str) {
    assert_eq!(
        d["interview"]["id"], interview_id,
        "observation-started.interview.id: {d}"
    );
    assert_eq!(
        d["interview"]["candidateName"], "Ada",
        "observation-started.interview.candidateName"
    );
    let status = d["interview"]["status"].as_str().unwrap_or("");
    assert!(
        STATUSES.contains(&status),
        "observation-started.interview.status: {d}"
    );
    let s = &d["session"];
    assert!(s["id"].is_string(), "observation-started.session.id: {d}");
    assert_eq!(
        s["state"].as_str().unwrap_or("?"),
        status.to_lowercase(),
        "row status and session state always agree: {d}"
    );
    assert!(
        s["isActive"].is_boolean(),
        "observation-started.session.isActive: {d}"
    );
    check_progress(&s["progress"], "observation-started.session.progress");
    assert!(
        s["trustScore"].as_u64().is_some_and(|t| t <= 100),
        "observation-started.session.trustScore: {d}"
    );
    assert!(
        s["candidateConnected"].is_boolean(),
        "observation-started.session.candidateConnected: {d}"
    );
    assert!(
        s["observers"].is_u64(),
        "observation-started.session.observers: {d}"
    );
    check_transcript_shape(&d["transcript"], "observation-started.transcript");
    assert!(d["isLive"].is_boolean(), "observation-started.isLive: {d}");
    assert!(d["lastSeq"].is_u64(), "observation-started.lastSeq: {d}");
    assert!(
        d["recovered"].is_boolean(),
        "observation-started.recovered: {d}"
    );
}

/// The transcript a client rebuilds from events: finished AI messages and
/// candidate answers, as (speaker, text, seq).
pub fn transcript_from_events(events: &[Value]) -> Vec<(String, String, u64)> {
    events
        .iter()
        .filter_map(|e| match ty(e) {
            "ai-stream-end" if e["data"]["text"].as_str().is_some_and(|t| !t.is_empty()) => Some((
                "ai".to_string(),
                e["data"]["text"].as_str().unwrap().to_string(),
                seq_of(e),
            )),
            "candidate-answer" => Some((
                "candidate".to_string(),
                e["data"]["text"].as_str().unwrap_or_default().to_string(),
                seq_of(e),
            )),
            _ => None,
        })
        .collect()
}

/// A snapshot's `transcript` as (speaker, text, seq).
pub fn transcript_of(snapshot: &Value) -> Vec<(String, String, u64)> {
    snapshot
        .as_array()
        .unwrap_or_else(|| panic!("transcript is not an array: {snapshot}"))
        .iter()
        .map(|e| {
            (
                e["speaker"].as_str().unwrap_or_default().to_string(),
                e["text"].as_str().unwrap_or_default().to_string(),
                e["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The last `progress-update`'s progress among `events`.
pub fn last_progress(events: &[Value]) -> Option<Value> {
    events
        .iter()
        .rev()
        .find(|e| ty(e) == "progress-update")
        .map(|e| e["data"]["progress"].clone())
}

/// The last `question`'s data among `events`.
pub fn last_question(events: &[Value]) -> Option<Value> {
    events
        .iter()
        .rev()
        .find(|e| ty(e) == "question")
        .map(|e| e["data"].clone())
}

// ---------------------------------------------------------------------------
// The scripted interviewer, as the tests expect it to behave
// ---------------------------------------------------------------------------

/// Follows one interview turn by turn and checks every turn's frames against
/// sections 3 and 5 and the scripted interviewer's rules.
#[derive(Debug, Clone)]
pub struct ScriptModel {
    pub questions: Vec<(String, String)>,
    /// Index of the template question being asked.
    pub current: usize,
    follow_up_used: Vec<bool>,
    /// Data of the last `question`.
    pub current_question: Option<Value>,
    /// `progress.answered` of the last `progress-update`.
    pub answered: u64,
    /// Answers given so far (follow-ups included).
    pub answers: u64,
    /// `interview-completed` data once the interview is over.
    pub completed: Option<Value>,
}

impl ScriptModel {
    pub fn new(questions: &[(String, String)]) -> ScriptModel {
        ScriptModel {
            questions: questions.to_vec(),
            current: 0,
            follow_up_used: vec![false; questions.len()],
            current_question: None,
            answered: 0,
            answers: 0,
            completed: None,
        }
    }

    fn total(&self) -> u64 {
        self.questions.len() as u64
    }

    /// `interview-started`, `ai-thinking`, the greeting stream, `question`.
    pub fn check_start_turn(&mut self, frames: &[Value]) {
        let ctx = "start turn";
        let mut i = 0;
        let started = take(frames, &mut i, "interview-started", ctx);
        assert_eq!(
            started["data"]["firstQuestion"], self.questions[0].0,
            "interview-started.firstQuestion is the first question's text"
        );
        assert_rfc3339_utc(&started["data"]["startedAt"], "interview-started.startedAt");
        take(frames, &mut i, "ai-thinking", ctx);
        let said = take_stream(frames, &mut i, ctx);
        let q = take(frames, &mut i, "question", ctx);
        self.check_question(q, 0, false, &said);
        assert_eq!(
            i,
            frames.len(),
            "{ctx}: nothing may follow the question: {:?}",
            types(frames)
        );
    }

    /// The answer turn for `answer`; returns `evaluation.nextAction`.
    pub fn check_answer_turn(&mut self, frames: &[Value], answer: &str) -> String {
        let ctx = format!("answer turn for {answer:?}");
        let ctx = ctx.as_str();
        let asked = self
            .current_question
            .clone()
            .expect("a question was asked before this answer");
        let qid = asked["questionId"].clone();
        let mut i = 0;
        let ca = take(frames, &mut i, "candidate-answer", ctx);
        assert_eq!(
            ca["data"]["questionId"], qid,
            "{ctx}: candidate-answer.questionId"
        );
        assert_eq!(ca["data"]["text"], answer, "{ctx}: candidate-answer.text");
        take(frames, &mut i, "ai-thinking", ctx);
        let ev = take(frames, &mut i, "evaluation", ctx);
        check_evaluation(&ev["data"], &qid, ctx);
        let cur = self.current;
        let last = cur + 1 == self.questions.len();
        let expected = if word_count(answer) < 12 && !self.follow_up_used[cur] {
            "follow_up"
        } else if last {
            "complete"
        } else {
            "next_question"
        };
        assert_eq!(
            ev["data"]["nextAction"], expected,
            "{ctx}: scripted rule: fewer than 12 words gets one follow-up per template question, \
             otherwise the next question, or complete after the last (question {} of {}, follow-up used: {})",
            cur + 1,
            self.questions.len(),
            self.follow_up_used[cur]
        );
        let pu = take(frames, &mut i, "progress-update", ctx);
        let p = &pu["data"]["progress"];
        check_progress(p, "progress-update.progress");
        assert_eq!(
            p["totalQuestions"],
            self.total(),
            "{ctx}: progress.totalQuestions"
        );
        let answered = p["answered"].as_u64().unwrap();
        assert!(
            answered >= self.answered && answered <= self.total(),
            "{ctx}: progress.answered must not go back or past the total: {p} (was {})",
            self.answered
        );
        match expected {
            "next_question" => assert_eq!(answered, cur as u64 + 1, "{ctx}: progress.answered"),
            "complete" => assert_eq!(answered, self.total(), "{ctx}: progress.answered"),
            _ => assert!(
                answered == cur as u64 || answered == cur as u64 + 1,
                "{ctx}: progress.answered after a follow-up: {p}"
            ),
        }
        if let Some(score) = pu["data"].get("score").filter(|s| !s.is_null()) {
            assert!(
                score.as_u64().is_some_and(|s| s <= 100),
                "{ctx}: progress-update.score: {score}"
            );
        }
        self.answered = answered;
        self.answers += 1;
        let said = take_stream(frames, &mut i, ctx);
        match expected {
            "follow_up" => {
                let q = take(frames, &mut i, "question", ctx);
                self.follow_up_used[cur] = true;
                assert_eq!(
                    p["currentQuestion"],
                    cur as u64 + 1,
                    "{ctx}: progress.currentQuestion"
                );
                self.check_question(q, cur, true, &said);
            }
            "next_question" => {
                let q = take(frames, &mut i, "question", ctx);
                assert_eq!(
                    p["currentQuestion"],
                    cur as u64 + 2,
                    "{ctx}: progress.currentQuestion"
                );
                self.check_question(q, cur + 1, false, &said);
            }
            _ => {
                let done = take(frames, &mut i, "interview-completed", ctx);
                let counts = [self.total(), self.answers];
                check_summary(&done["data"]["summary"], &counts);
                self.completed = Some(done["data"].clone());
            }
        }
        assert_eq!(
            i,
            frames.len(),
            "{ctx}: unexpected frames at the end of the turn: {:?}",
            types(frames)
        );
        expected.to_string()
    }

    fn check_question(&mut self, q: &Value, index: usize, follow_up: bool, said: &str) {
        let d = &q["data"];
        assert!(
            d["questionId"].as_str().is_some_and(|s| !s.is_empty()),
            "question.questionId: {d}"
        );
        assert_eq!(d["order"], index as u64 + 1, "question.order: {d}");
        assert_eq!(d["total"], self.total(), "question.total: {d}");
        assert_eq!(d["followUp"], follow_up, "question.followUp: {d}");
        let text = d["text"]
            .as_str()
            .unwrap_or_else(|| panic!("question.text: {d}"));
        assert!(!text.is_empty(), "question.text is empty: {d}");
        assert!(d["type"].is_string(), "question.type: {d}");
        if !follow_up {
            assert_eq!(text, self.questions[index].0, "template question text: {d}");
            assert_eq!(
                d["type"], self.questions[index].1,
                "template question type: {d}"
            );
        }
        assert!(
            said.contains(text),
            "the interviewer's message must end with (contain) the question {text:?}; it said {said:?}"
        );
        self.current = index;
        self.current_question = Some(d.clone());
    }
}

fn take<'a>(frames: &'a [Value], i: &mut usize, expected: &str, ctx: &str) -> &'a Value {
    let frame = frames.get(*i).unwrap_or_else(|| {
        panic!(
            "{ctx}: expected `{expected}` at position {i}, but the turn was {:?}",
            types(frames)
        )
    });
    assert_eq!(
        ty(frame),
        expected,
        "{ctx}: wrong event at position {i}; the turn was {:?}; frame {frame}",
        types(frames)
    );
    *i += 1;
    frame
}

/// `ai-stream-start`, at least one `ai-token`, `ai-stream-end`, one message
/// id; the tokens concatenated equal the end's text. Returns the text.
fn take_stream(frames: &[Value], i: &mut usize, ctx: &str) -> String {
    let start = take(frames, i, "ai-stream-start", ctx);
    let id = start["data"]["messageId"].clone();
    assert!(
        id.as_str().is_some_and(|s| !s.is_empty()),
        "{ctx}: ai-stream-start.messageId: {start}"
    );
    let mut text = String::new();
    let mut tokens = 0;
    while frames.get(*i).map(ty) == Some("ai-token") {
        let t = &frames[*i];
        assert_eq!(t["data"]["messageId"], id, "{ctx}: ai-token.messageId: {t}");
        text.push_str(
            t["data"]["text"]
                .as_str()
                .unwrap_or_else(|| panic!("{ctx}: ai-token.text: {t}")),
        );
        tokens += 1;
        *i += 1;
    }
    assert!(
        tokens >= 1,
        "{ctx}: a message is streamed as ai-token frames"
    );
    let end = take(frames, i, "ai-stream-end", ctx);
    assert_eq!(
        end["data"]["messageId"], id,
        "{ctx}: ai-stream-end.messageId"
    );
    assert_eq!(
        end["data"]["interrupted"], false,
        "{ctx}: ai-stream-end.interrupted"
    );
    assert_eq!(
        end["data"]["text"].as_str(),
        Some(text.as_str()),
        "{ctx}: ai-token texts concatenated must equal ai-stream-end.text"
    );
    text
}

pub fn check_evaluation(d: &Value, question_id: &Value, ctx: &str) {
    assert_eq!(
        &d["questionId"], question_id,
        "{ctx}: evaluation.questionId"
    );
    assert!(
        d["score"].as_u64().is_some_and(|s| s <= 100),
        "{ctx}: evaluation.score must be 0..=100: {d}"
    );
    for k in ["strengths", "weaknesses"] {
        assert!(
            d[k].as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "{ctx}: evaluation.{k} must be an array of strings: {d}"
        );
    }
    assert!(d["feedback"].is_string(), "{ctx}: evaluation.feedback: {d}");
    assert_eq!(
        d["source"], "heuristic",
        "{ctx}: the scripted interviewer scores by heuristic"
    );
}

/// A summary of an interview with at least one answer; `questions_answered`
/// lists the acceptable counts (template questions answered, or answers
/// including follow-ups).
pub fn check_summary(s: &Value, questions_answered: &[u64]) {
    assert!(
        s["overallScore"].as_u64().is_some_and(|v| v <= 100),
        "summary.overallScore must be 0..=100: {s}"
    );
    assert!(
        s["recommendation"].as_str().is_some_and(|r| !r.is_empty()),
        "summary.recommendation: {s}"
    );
    for k in ["strengths", "weaknesses"] {
        assert!(
            s[k].as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "summary.{k}: {s}"
        );
    }
    let cats = s["categoryScores"]
        .as_object()
        .unwrap_or_else(|| panic!("summary.categoryScores must be an object: {s}"));
    for (k, v) in cats {
        assert!(
            v.as_u64().is_some_and(|v| v <= 100),
            "summary.categoryScores.{k}: {s}"
        );
    }
    let n = s["questionsAnswered"]
        .as_u64()
        .unwrap_or_else(|| panic!("summary.questionsAnswered: {s}"));
    assert!(
        questions_answered.contains(&n),
        "summary.questionsAnswered = {n}, expected one of {questions_answered:?}: {s}"
    );
    assert!(
        s["averageResponseMs"].is_u64(),
        "summary.averageResponseMs: {s}"
    );
}

/// Sends `start-interview` and checks the start turn.
pub async fn start_turn(candidate: &mut WsClient, model: &mut ScriptModel) -> Vec<Value> {
    candidate.send("start-interview", json!({})).await;
    let frames = candidate.collect_until("question").await;
    model.check_start_turn(&frames);
    frames
}

/// Sends `answer` and checks the answer turn; returns (frames, nextAction).
pub async fn answer_turn(
    candidate: &mut WsClient,
    model: &mut ScriptModel,
    text: &str,
) -> (Vec<Value>, String) {
    candidate.send("answer", json!({"text": text})).await;
    let frames = candidate
        .collect_until_any(&["question", "interview-completed"])
        .await;
    let action = model.check_answer_turn(&frames, text);
    (frames, action)
}

/// Starts the interview and gives `answers` in order, checking every turn;
/// stops at `interview-completed`. Returns every frame received.
pub async fn start_and_answer_all(
    candidate: &mut WsClient,
    model: &mut ScriptModel,
    answers: &[&str],
) -> Vec<Value> {
    let mut all = start_turn(candidate, model).await;
    for a in answers {
        assert!(
            model.completed.is_none(),
            "interview completed before answer {a:?}"
        );
        let (frames, _) = answer_turn(candidate, model, a).await;
        all.extend(frames);
    }
    all
}

/// `n` bytes of fake audio.
pub fn audio_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
