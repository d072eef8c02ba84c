//! Interview ownership between two nodes on one PostgreSQL database
//! (DESIGN.md, "Several nodes"), black-box: two `interviewd serve`
//! processes with their own `NODE_ID`s. Skipped with a note unless
//! `DATABASE_URL` points at PostgreSQL, like `db_outage`.
//!
//! While node A lives, a join on node B is refused (retryable, close 1012).
//! Frozen past its lease (SIGSTOP), A loses the interview: B takes it at
//! the next epoch, paused for the server as after a restart. Running again
//! (SIGCONT), A's next commit is fenced: A sends nothing it did not commit,
//! closes its sockets with 1012 and counts it.

mod common;

use std::time::Duration;

use common::*;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::Value;
use tokio::time::{sleep, Instant};

#[derive(QueryableByName)]
struct Epoch {
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

/// The owner row's epoch of an interview, read beside the servers.
async fn owner_epoch(url: &str, id: &str) -> i64 {
    let (url, id) = (url.to_owned(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).expect("connect to the scratch database");
        let rows: Vec<Epoch> =
            diesel::sql_query("SELECT epoch FROM interview_owners WHERE interview_id = $1")
                .bind::<Text, _>(&id)
                .load(&mut conn)
                .expect("read the owner row");
        rows.first().map_or(0, |r| r.epoch)
    })
    .await
    .expect("the query task")
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn node_env<'a>(db: &'a str, node: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("DATABASE_URL", db),
        ("NODE_ID", node),
        ("NODE_LEASE_TTL_MS", "1000"),
        ("NODE_HEARTBEAT_MS", "200"),
    ]
}

fn signal(pid: u32, sig: &str) {
    let sent = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_loses_its_interview_and_its_next_commit_is_fenced() {
    let Some(base) = postgres_url() else {
        eprintln!("note: ownership skipped: DATABASE_URL does not point at PostgreSQL");
        return;
    };
    let db = scratch_postgres(&base).await;
    let a = TestServer::start(&node_env(&db.url, "node-a")).await;
    let b = TestServer::start(&node_env(&db.url, "node-b")).await;
    let iv = a.create_interview().await;

    // The candidate on A, the interview active.
    let (mut cand_a, _) = join_candidate(&a, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand_a, &mut model).await;
    assert_eq!(owner_epoch(&db.url, &iv.id).await, 1);

    // A lives: B refuses the join, retryable, and closes with 1012.
    let (mut early, _) = WsClient::connected(b.port, &iv.join_token, "early-on-b").await;
    early
        .send_ref(
            "join-interview",
            serde_json::json!({"interviewId": iv.id}),
            "join",
        )
        .await;
    let refused = early.expect_error("INTERNAL_ERROR").await;
    assert_eq!(refused["data"]["retryable"], true, "{refused}");
    assert_eq!(early.expect_close(STEP).await, 1012);
    assert_eq!(owner_epoch(&db.url, &iv.id).await, 1, "B took nothing");

    // A frozen past its lease: B takes the interview at the next epoch.
    let pid = a.pid().expect("A runs");
    signal(pid, "-STOP");
    sleep(Duration::from_millis(1500)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut cand_b, ready) = loop {
        let (mut ws, _) = WsClient::connected(b.port, &iv.join_token, "candidate-on-b").await;
        ws.send_ref(
            "join-interview",
            serde_json::json!({"interviewId": iv.id}),
            "join",
        )
        .await;
        let first = ws.recv().await;
        if ty(&first) == "interview-ready" {
            break (ws, first);
        }
        assert_eq!(ty(&first), "error", "{first}");
        assert!(Instant::now() < deadline, "B never took the interview over");
        sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(owner_epoch(&db.url, &iv.id).await, 2);
    let status = &ready["data"]["status"];
    assert!(
        status == "PAUSED" || status == "ACTIVE",
        "back as after a restart: {ready}"
    );
    let b_head = ready["data"]["lastSeq"].as_u64().expect("lastSeq");

    // A runs again and answers: that commit is fenced, A sends none of it
    // and closes the candidate's socket with 1012.
    signal(pid, "-CONT");
    cand_a
        .send("answer", serde_json::json!({"text": LONG_ANSWER}))
        .await;
    let (code, after) = cand_a.expect_close_after_frames(STEP).await;
    assert_eq!(code, 1012, "frames before the close: {after:?}");
    assert!(
        session_events(&after).is_empty(),
        "A sent events after the takeover: {after:?}"
    );

    // Every event A's candidate got is stored, as it was sent; the answer
    // A could not commit is not.
    let stored = b.http_events(&iv.id, &recruiter_token(ORG), None).await;
    let got = cand_a.events();
    let stored_keys = keys(&stored);
    for event in keys(&got) {
        assert!(
            stored_keys.contains(&event),
            "A sent an event that is not stored: {event:?}"
        );
    }
    assert!(
        !stored
            .iter()
            .any(|e: &Value| e.to_string().contains(LONG_ANSWER)),
        "A's fenced answer was stored"
    );
    assert!(
        got.iter().all(|e| seq_of(e) <= b_head),
        "A sent seqs past what B loaded"
    );

    let (_, metrics) = a.metrics().await;
    let fenced = metric(&metrics, "interviewd_commits_fenced_total").unwrap_or(0.0);
    assert!(fenced >= 1.0, "{metrics}");

    // B serves on: what it emitted on taking over, then a live socket.
    cand_b.collect_quiet(Duration::from_millis(300)).await;
    cand_b.heartbeat_roundtrip("alive").await;
    drop((a, b));
    drop(db);
}
