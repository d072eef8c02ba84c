//! The modes `serve` runs in (DESIGN.md, "Several nodes"), black-box: the
//! real binary, its real stderr and exit code.
//!
//! - `REDIS_URL` with SQLite, and a heartbeat not shorter than the lease
//!   TTL, are refused at start in one line naming both settings.
//! - On PostgreSQL a process holds a lease on its `NODE_ID` (skipped with a
//!   note unless `DATABASE_URL` points at PostgreSQL, like `db_outage`): a
//!   second live process with that `NODE_ID` is refused while the first
//!   keeps serving; after `kill -9` the identity is free once the TTL has
//!   passed and not before; after SIGTERM at once; a process whose lease
//!   was taken while it was frozen finds out and stops being ready.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;
use tokio::time::{sleep, timeout, Instant};

/// How long one start may take to listen or to refuse.
const START_WITHIN: Duration = Duration::from_secs(30);
/// How long a freed identity may take to be taken again.
const FREED_WITHIN: Duration = Duration::from_secs(20);

/// A process that exited at start.
#[derive(Debug)]
struct Exit {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A process that printed `listening on`; killed when dropped.
struct Serving {
    /// Held for `kill_on_drop`.
    _child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Serving {
    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .timeout(STEP)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

enum Attempt {
    Refused(Exit),
    Serving(Serving),
}

impl Attempt {
    fn refused(self, what: &str) -> Exit {
        match self {
            Attempt::Refused(exit) => exit,
            Attempt::Serving(s) => panic!("{what}: it started instead:\n{}", s.stderr()),
        }
    }

    fn serving(self, what: &str) -> Serving {
        match self {
            Attempt::Serving(s) => s,
            Attempt::Refused(exit) => panic!("{what}: it was refused: {exit:?}"),
        }
    }
}

/// Runs `interviewd serve` with the test defaults (a SQLite file of its own
/// unless `env` names a `DATABASE_URL`) until it listens or exits.
async fn attempt(env: &[(&str, &str)]) -> Attempt {
    let dir = tempfile::tempdir().expect("a temp dir");
    let defaults = [
        ("JWT_SECRET", SECRET),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("LOG_FORMAT", "pretty"),
    ];
    let env: Vec<(&str, &str)> = defaults.iter().chain(env).copied().collect();
    let mut cmd = serve_command(dir.path(), &env);
    let mut child = cmd.spawn().expect("spawn interviewd");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().expect("stderr");
    let reader = tokio::spawn({
        let stderr = stderr.clone();
        async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                stderr
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stdout = String::new();
    let listening = timeout(START_WITHIN, async {
        while let Ok(Some(line)) = lines.next_line().await {
            stdout.push_str(&line);
            stdout.push('\n');
            if let Some(addr) = line.strip_prefix("listening on ") {
                return addr.rsplit(':').next().and_then(|p| p.trim().parse().ok());
            }
        }
        None
    })
    .await
    .unwrap_or_else(|_| panic!("interviewd with {env:?} neither listened nor exited"));
    if let Some(port) = listening {
        // Keep stdout drained so the server never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        return Attempt::Serving(Serving {
            _child: child,
            port,
            stderr,
            _dir: dir,
        });
    }
    let status = timeout(START_WITHIN, child.wait())
        .await
        .expect("interviewd closed stdout but did not exit")
        .expect("wait for interviewd");
    let _ = timeout(STEP, reader).await;
    let stderr = stderr.lock().unwrap().clone();
    Attempt::Refused(Exit {
        code: status.code(),
        stdout,
        stderr,
    })
}

/// Exit non-zero, no panic or backtrace (even with `RUST_BACKTRACE=1`), and
/// exactly one `error: ` line, which names every one of `names`.
fn assert_one_line_naming(exit: &Exit, names: &[&str]) -> String {
    assert!(
        exit.code.is_some_and(|c| c != 0),
        "must exit non-zero: {exit:?}"
    );
    let lower = exit.stderr.to_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "no panic, no backtrace:\n{}",
        exit.stderr
    );
    let errors: Vec<&str> = exit
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", exit.stderr);
    for name in names {
        assert!(
            errors[0].contains(name),
            "the line names {name}: {}",
            errors[0]
        );
        let naming = exit.stderr.lines().filter(|l| l.contains(name)).count();
        assert_eq!(naming, 1, "only that line names {name}:\n{}", exit.stderr);
    }
    assert!(
        !exit.stdout.contains("listening on"),
        "it must not have listened: {}",
        exit.stdout
    );
    errors[0].to_string()
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

// ---------------------------------------------------------------------------
// Settings refused at start (any database)
// ---------------------------------------------------------------------------

/// Redis only carries events; who owns an interview needs a shared
/// PostgreSQL, so `REDIS_URL` with SQLite is a mistake, not a mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_sqlite_is_refused_naming_both_settings() {
    let exit = attempt(&[("REDIS_URL", "redis://127.0.0.1:6379")])
        .await
        .refused("REDIS_URL with SQLite");
    assert_one_line_naming(&exit, &["REDIS_URL", "DATABASE_URL"]);
    assert_eq!(exit.stderr.trim().lines().count(), 1, "{}", exit.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_not_shorter_than_the_lease_is_refused() {
    for env in [
        &[("NODE_LEASE_TTL_MS", "1000"), ("NODE_HEARTBEAT_MS", "1000")][..],
        &[("NODE_HEARTBEAT_MS", "5000")][..],
    ] {
        let exit = attempt(env).await.refused(&format!("{env:?}"));
        assert_one_line_naming(&exit, &["NODE_HEARTBEAT_MS", "NODE_LEASE_TTL_MS"]);
    }
}

/// Embedded, as before: no lease, no lease in `/readyz` or `/metrics`, and
/// two processes may both call themselves the same on separate files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_holds_no_lease() {
    let env = [("NODE_ID", "laptop")];
    let one = attempt(&env).await.serving("embedded");
    let two = attempt(&env).await.serving("embedded, the same NODE_ID");
    let (status, body) = one.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "ready", "database": "ok"}));
    let (status, _) = two.get("/readyz").await;
    assert_eq!(status, 200);
    assert!(!one.stderr().contains("node lease"), "{}", one.stderr());
}

// ---------------------------------------------------------------------------
// The node lease (PostgreSQL)
// ---------------------------------------------------------------------------

/// A scratch database, or `None` (with a note) unless `DATABASE_URL` points
/// at PostgreSQL.
async fn scratch(test: &str) -> Option<scratch_db::ScratchDb> {
    let Some(base) = postgres_url() else {
        eprintln!("note: cluster_modes::{test} skipped: DATABASE_URL does not point at PostgreSQL");
        return None;
    };
    Some(scratch_postgres(&base).await)
}

fn lease_env<'a>(
    db: &'a str,
    node: &'a str,
    ttl: &'a str,
    beat: &'a str,
) -> [(&'a str, &'a str); 4] {
    [
        ("DATABASE_URL", db),
        ("NODE_ID", node),
        ("NODE_LEASE_TTL_MS", ttl),
        ("NODE_HEARTBEAT_MS", beat),
    ]
}

/// The refusal of a second process with `node`: one line naming NODE_ID,
/// the identity, and when the holder's lease expires.
fn assert_identity_taken(exit: &Exit, node: &str) {
    let line = assert_one_line_naming(exit, &["NODE_ID"]);
    assert!(line.contains(&format!("\"{node}\"")), "{line}");
    assert!(line.contains("expires at"), "{line}");
}

/// Starts processes with `env` until one listens; each refusal before it
/// must be the identity's. Panics after `FREED_WITHIN`.
async fn start_once_free(env: &[(&str, &str)], node: &str) -> (Serving, usize) {
    let deadline = Instant::now() + FREED_WITHIN;
    let mut refused = 0;
    loop {
        match attempt(env).await {
            Attempt::Serving(s) => return (s, refused),
            Attempt::Refused(exit) => {
                assert_identity_taken(&exit, node);
                refused += 1;
            }
        }
        assert!(
            Instant::now() < deadline,
            "NODE_ID {node} was still taken after {FREED_WITHIN:?}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

async fn ready_body(server: &TestServer) -> (u16, Value) {
    server.get("/readyz", None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_process_with_the_same_node_id_is_refused() {
    let Some(db) = scratch("a_second_live_process_with_the_same_node_id_is_refused").await else {
        return;
    };
    let env = lease_env(&db.url, "node-a", "3000", "1000");
    let first = TestServer::start(&env).await;
    let (status, body) = ready_body(&first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["nodeLease"], "held", "{body}");
    let (_, metrics) = first.metrics().await;
    assert_eq!(
        metric(&metrics, "interviewd_node_lease_valid"),
        Some(1.0),
        "{metrics}"
    );

    let exit = attempt(&env).await.refused("the same NODE_ID");
    assert_identity_taken(&exit, "node-a");

    // The first one never noticed.
    let (status, body) = ready_body(&first).await;
    assert_eq!(status, 200, "the first keeps serving: {body}");
    let iv = first.create_interview().await;
    let (mut candidate, _) = join_candidate(&first, &iv, None).await;
    candidate.heartbeat_roundtrip("hb").await;

    // Other identities share the database, with Redis set too (still only
    // a warning in this step).
    let other = attempt(&lease_env(&db.url, "node-b", "3000", "1000"))
        .await
        .serving("another NODE_ID");
    assert_eq!(other.get("/readyz").await.0, 200);
    let redis = [
        ("DATABASE_URL", db.url.as_str()),
        ("NODE_ID", "node-c"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
    ];
    let with_redis = attempt(&redis).await.serving("PostgreSQL with REDIS_URL");
    assert!(
        with_redis.stderr().contains("Redis bus is not built yet"),
        "{}",
        with_redis.stderr()
    );
    assert_eq!(ready_body(&first).await.0, 200);
    drop((other, with_redis));
    drop(first);
    drop(db);
}

/// `kill -9` leaves the lease to run out: refused right after, free once
/// the TTL has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_the_node_id_is_free_once_the_lease_expired() {
    let Some(db) = scratch("after_kill_9_the_node_id_is_free_once_the_lease_expired").await else {
        return;
    };
    // Long enough that a start right after the kill still meets the lease
    // on a loaded machine (a start takes tens of milliseconds).
    let env = lease_env(&db.url, "node-k", "1500", "200");
    let mut first = TestServer::start(&env).await;
    first.kill9().await;

    let exit = attempt(&env).await.refused("right after kill -9");
    assert_identity_taken(&exit, "node-k");
    let (second, _) = start_once_free(&env, "node-k").await;
    let (status, body) = second.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["nodeLease"], "held", "{body}");
    drop(second);
    drop(first);
    drop(db);
}

/// SIGTERM releases the lease after the drain: the next process with the
/// same `NODE_ID` starts at once, although the TTL is a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_the_node_id_is_free_at_once() {
    let Some(db) = scratch("after_sigterm_the_node_id_is_free_at_once").await else {
        return;
    };
    let env = lease_env(&db.url, "node-t", "60000", "1000");
    let mut first = TestServer::start(&env).await;
    // Served once: its signal handler is installed by now (a SIGTERM before
    // that kills the process, like any other).
    let (status, body) = ready_body(&first).await;
    assert_eq!(
        (status, &body["nodeLease"]),
        (200, &json!("held")),
        "{body}"
    );
    assert_eq!(first.terminate(Duration::from_secs(15)).await, Some(0));
    let second = attempt(&env).await.serving("right after SIGTERM");
    assert_eq!(second.get("/readyz").await.0, 200);
    drop(second);
    drop(first);
    drop(db);
}

/// A process frozen past its TTL (SIGSTOP) loses its identity to a new
/// one; when it runs again its renewal finds the row taken: it counts the
/// loss and stops being ready, while the new holder serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_process_whose_lease_was_taken_knows_it_lost() {
    let Some(db) = scratch("a_frozen_process_whose_lease_was_taken_knows_it_lost").await else {
        return;
    };
    let env = lease_env(&db.url, "node-f", "1000", "200");
    let mut first = TestServer::start(&env).await;
    let pid = first.pid().expect("a running server").to_string();
    let signal = |sig: &str| {
        let sent = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    let (second, refused) = start_once_free(&env, "node-f").await;
    signal("-CONT");
    eprintln!("note: {refused} starts were refused before the frozen lease expired");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = ready_body(&first).await;
        if status == 503 && body["nodeLease"] == "lost" {
            assert_eq!(body["database"], "ok", "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the frozen process should report its lease lost: {status} {body}"
        );
        sleep(Duration::from_millis(100)).await;
    }
    let (_, metrics) = first.metrics().await;
    assert_eq!(
        metric(&metrics, "interviewd_node_lease_lost_total"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "interviewd_node_lease_valid"),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        first.dump_log().contains("node lease lost"),
        "an error says so:\n{}",
        first.dump_log()
    );
    let (status, body) = second.get("/readyz").await;
    assert_eq!(status, 200, "the new holder serves: {body}");
    first.kill9().await;
    drop(second);
    drop(db);
}
