//! PostgreSQL outages (PostgreSQL only: skipped with a note unless
//! `DATABASE_URL` points at PostgreSQL). The server reaches its database
//! through a TCP proxy inside the test that can cut every connection (and
//! refuse new ones) and restore them.
//!
//! - A short cut mid-turn: clients see only delay, the socket stays
//!   responsive, and afterwards every event is stored exactly once, in order,
//!   and served the same over HTTP.
//! - A cut longer than `DB_OUTAGE_PAUSE_MS`: everyone gets a retryable
//!   `INTERNAL_ERROR`, the interview pauses, and it resumes after the restore
//!   with nothing lost or duplicated.
//!
//! Meanwhile `/healthz` stays up and `/readyz` reports the database.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::{sleep, Instant};

// ---------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------

/// Forwards TCP connections from a local port to PostgreSQL, until cut.
struct PgProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    acceptor: JoinHandle<()>,
}

impl PgProxy {
    async fn start(upstream: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let acceptor = tokio::spawn({
            let (cut, links) = (cut.clone(), links.clone());
            async move {
                loop {
                    let Ok((inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if cut.load(Ordering::SeqCst) {
                        // Refused: closed before a byte is exchanged.
                        drop(inbound);
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let mut inbound = inbound;
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    let mut links = links.lock().unwrap();
                    links.retain(|l| !l.is_finished());
                    links.push(link.abort_handle());
                }
            }
        });
        PgProxy {
            port,
            cut,
            links,
            acceptor,
        }
    }

    /// Closes every open connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            // Dropping the task drops both sockets: each side sees the link close.
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

/// `host:port` of a `postgres://[user[:pw]@]host[:port]/db` URL.
fn upstream_of(url: &str) -> SocketAddr {
    let rest = &url[url.find("://").expect("a URL") + 3..];
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port
        .parse()
        .unwrap_or_else(|e| panic!("the outage test needs an IP host in DATABASE_URL ({e})"))
}

/// `url` with its host and port replaced by `127.0.0.1:port`.
fn through_proxy(url: &str, port: u16) -> String {
    let start = url.find("://").expect("a URL") + 3;
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let userinfo = match authority.rfind('@') {
        Some(at) => &authority[..=at],
        None => "",
    };
    format!("{}{userinfo}127.0.0.1:{port}{}", &url[..start], &url[end..])
}

/// The database, the proxy in front of it and a server behind the proxy;
/// `None` (with a note) unless `DATABASE_URL` is PostgreSQL.
async fn setup(pause_ms: u64) -> Option<(TestServer, PgProxy, scratch_db::ScratchDb)> {
    let Some(base) = postgres_url() else {
        eprintln!("note: db_outage skipped: DATABASE_URL does not point at PostgreSQL");
        return None;
    };
    let db = scratch_postgres(&base).await;
    let proxy = PgProxy::start(upstream_of(&db.url)).await;
    let url = through_proxy(&db.url, proxy.port);
    let pause = pause_ms.to_string();
    let server = TestServer::start(&[
        ("DATABASE_URL", url.as_str()),
        ("DB_OUTAGE_PAUSE_MS", pause.as_str()),
        ("SCRIPTED_WORD_DELAY_MS", "20"),
    ])
    .await;
    Some((server, proxy, db))
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

async fn health(server: &TestServer, path: &str) -> u16 {
    server.get(path, None).await.0
}

/// Polls `path` until it answers `status` (10 s at most).
async fn wait_for_http(server: &TestServer, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = health(server, path).await;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} should answer {status}, still {got}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

/// Sends a heartbeat and reads up to its ack: the socket is served while
/// the database is away. Returns the frames read (events may come first).
async fn heartbeat(ws: &mut WsClient, reference: &str) -> Vec<Value> {
    ws.send_ref("heartbeat", json!({}), reference).await;
    ws.collect_until("heartbeat-ack").await
}

/// Reads `ws` until an `error` frame (within `TURN`); returns it.
async fn next_error(ws: &mut WsClient) -> Value {
    let frames = ws.collect_until("error").await;
    frames
        .last()
        .cloned()
        .expect("collect_until ends with the error")
}

/// Every event is stored exactly once, in order: the observer saw seqs 1..=n
/// with no gap or repeat, HTTP serves exactly those, and the candidate's view
/// is the observer's minus observer-only events.
async fn assert_exactly_once(
    server: &TestServer,
    iv: &Interview,
    observer: &WsClient,
    candidate: &WsClient,
) {
    let seen = observer.events();
    assert_eq!(
        seen.first().map(seq_of),
        Some(1),
        "the observer saw the whole log"
    );
    assert_contiguous(&seen, "observer across the outage");
    let unique: HashSet<u64> = seen.iter().map(seq_of).collect();
    assert_eq!(unique.len(), seen.len(), "no seq twice");
    let http = server
        .http_events(&iv.id, &recruiter_token(ORG), None)
        .await;
    assert_same_events(&http, &seen, "GET events?after=0 vs what the observer saw");
    assert_candidate_view(&candidate.events(), &seen, "candidate vs observer");
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// A 2 s cut while the interviewer streams: nothing but delay for clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_outage_only_delays_events() {
    // The pause bound is far away: this outage must never pause.
    let Some((server, proxy, _db)) = setup(60_000).await else {
        return;
    };
    assert_eq!(health(&server, "/readyz").await, 200);
    let iv = server.create_interview().await;
    let (mut obs, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;

    // Answer, and cut once the interviewer's reply is streaming.
    let turn_start = cand.frames.len();
    cand.send("answer", json!({"text": LONG_ANSWER})).await;
    loop {
        let f = obs.recv().await;
        if ty(&f) == "ai-token" {
            break;
        }
    }
    proxy.cut();
    let cut_at = Instant::now();

    // The candidate keeps going: heartbeats are answered, a proctor event
    // is taken; the process is alive, and not ready.
    heartbeat(&mut cand, "hb-1").await;
    cand.send(
        "proctor-event",
        json!({"type": "tab-switch", "severity": "high"}),
    )
    .await;
    assert_eq!(
        health(&server, "/healthz").await,
        200,
        "healthz during the outage"
    );
    wait_for_http(&server, "/readyz", 503).await;
    heartbeat(&mut cand, "hb-2").await;
    let left = Duration::from_secs(2).saturating_sub(cut_at.elapsed());
    sleep(left).await;
    heartbeat(&mut cand, "hb-3").await;
    proxy.restore();

    // The turn completes as if nothing happened, only later.
    cand.collect_until_any(&["question", "interview-completed"])
        .await;
    let turn: Vec<Value> = session_events(&cand.frames[turn_start..]);
    model.check_answer_turn(&turn, LONG_ANSWER);
    for f in &cand.frames[turn_start..] {
        assert_ne!(ty(f), "error", "no error for a short outage: {f}");
    }
    wait_for_http(&server, "/readyz", 200).await;

    answer_turn(&mut cand, &mut model, LONG_ANSWER_2).await;
    answer_turn(&mut cand, &mut model, LONG_ANSWER_3).await;
    assert!(model.completed.is_some(), "the interview completed");
    obs.collect_until("interview-completed").await;
    assert!(
        obs.events().iter().any(|e| ty(e) == "proctor-alert"),
        "the proctor event sent during the outage was logged"
    );
    assert_exactly_once(&server, &iv, &obs, &cand).await;
}

/// A cut longer than `DB_OUTAGE_PAUSE_MS`: a retryable error, a pause, and a
/// resume after the restore, with nothing lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_pauses_and_resumes_the_interview() {
    let Some((server, proxy, _db)) = setup(1_500).await else {
        return;
    };
    let iv = server.create_interview().await;
    let (mut obs, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;

    cand.send("answer", json!({"text": LONG_ANSWER})).await;
    loop {
        let f = obs.recv().await;
        if ty(&f) == "ai-token" {
            break;
        }
    }
    proxy.cut();

    // Past the bound, everyone is told, retryably.
    let err = next_error(&mut cand).await;
    check_error(&err, "INTERNAL_ERROR");
    assert_eq!(err["data"]["code"], "INTERNAL_ERROR", "{err}");
    assert_eq!(err["data"]["retryable"], true, "{err}");
    let obs_err = next_error(&mut obs).await;
    assert_eq!(obs_err["data"]["code"], "INTERNAL_ERROR", "{obs_err}");
    assert_eq!(
        health(&server, "/healthz").await,
        200,
        "healthz during the outage"
    );
    assert_eq!(
        health(&server, "/readyz").await,
        503,
        "readyz during the outage"
    );
    heartbeat(&mut cand, "hb-long").await;
    sleep(Duration::from_millis(500)).await;
    proxy.restore();

    // What waited is written, the pause and the resume with it.
    let frames = cand.collect_until("interview-resumed").await;
    let events = session_events(&frames);
    assert!(
        events.iter().any(|e| ty(e) == "interview-paused"),
        "the interview paused during the outage: {:?}",
        types(&events)
    );
    wait_for_http(&server, "/readyz", 200).await;
    server.wait_for_status(&iv.id, "ACTIVE").await;

    // Let a re-asked question (if the pause cut the stream) finish, then
    // answer until the end.
    cand.collect_quiet(Duration::from_millis(1_000)).await;
    for answer in [LONG_ANSWER_2, LONG_ANSWER_3, LONG_ANSWER, LONG_ANSWER_2] {
        cand.send("answer", json!({"text": answer})).await;
        let turn = cand
            .collect_until_any(&["question", "interview-completed"])
            .await;
        if turn.iter().any(|f| ty(f) == "interview-completed") {
            break;
        }
    }
    obs.collect_until("interview-completed").await;
    assert!(
        cand.events().iter().any(|e| ty(e) == "interview-completed"),
        "the interview completed after the outage"
    );
    assert_exactly_once(&server, &iv, &obs, &cand).await;
}

#[test]
fn proxy_urls_keep_credentials_and_database() {
    assert_eq!(
        through_proxy(
            "postgres://postgres@127.0.0.1:5432/db_t_1?sslmode=disable",
            9
        ),
        "postgres://postgres@127.0.0.1:9/db_t_1?sslmode=disable"
    );
    assert_eq!(
        through_proxy("postgresql://u:p@localhost/x", 7),
        "postgresql://u:p@127.0.0.1:7/x"
    );
    assert_eq!(
        upstream_of("postgres://postgres@127.0.0.1:5432/x"),
        "127.0.0.1:5432".parse().unwrap()
    );
    assert_eq!(
        upstream_of("postgresql://u:p@localhost/x"),
        "127.0.0.1:5432".parse().unwrap()
    );
}
