//! docs/protocol.md section 9: a candidate token reads over REST exactly what
//! its socket shows it. Proctoring, presence and the trust score are for
//! observers; the candidate's `GET`s leave them out, its recruiter's keep them.

mod common;

use common::*;
use serde_json::{json, Value};

/// After an interview with proctor events and scored answers, the candidate's
/// row has no `trustScore` and its log no observer-only event; the
/// recruiter's (and an admin's) row and log of the same interview have them.
/// The transcript, the progress and the summary are everyone's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_reads_only_what_its_socket_shows() {
    let server = TestServer::start(&[]).await;
    let iv = server.create_interview().await;
    let (mut rec, _) = join_observer(&server, &iv, None, "recruiter", None).await;
    let (mut cand, _) = join_candidate(&server, &iv, None).await;
    let mut model = ScriptModel::new(&iv.questions);
    start_turn(&mut cand, &mut model).await;
    for (kind, severity) in [("tab-switch", "high"), ("copy-paste", "medium")] {
        cand.send(
            "proctor-event",
            json!({"type": kind, "severity": severity, "message": "seen"}),
        )
        .await;
    }
    let (frames, _) = answer_turn(&mut cand, &mut model, LONG_ANSWER).await;
    assert!(
        frames.iter().any(|f| ty(f) == "evaluation"),
        "the answer was scored: {:?}",
        types(&frames)
    );
    cand.send("end-interview", json!({})).await;
    cand.collect_until("interview-completed").await;
    rec.collect_until("interview-completed").await;
    let log = rec.events();
    let trust = log
        .iter()
        .rev()
        .find(|e| ty(e) == "trust-score-update")
        .unwrap_or_else(|| panic!("observers got a trust-score-update: {:?}", types(&log)));
    let row = server.wait_for_status(&iv.id, "COMPLETED").await;

    // The row: the recruiter and an admin see the trust score, the candidate not.
    let path = format!("/v1/interviews/{}", iv.id);
    assert!(row["trustScore"].as_u64().is_some_and(|s| s < 100), "{row}");
    assert_eq!(row["trustScore"], trust["data"]["trustScore"], "{row}");
    let (status, admin_row) = server.get(&path, Some(&admin_token())).await;
    assert_eq!(status, 200, "{admin_row}");
    assert_eq!(admin_row["trustScore"], row["trustScore"], "{admin_row}");
    let (status, own) = server.get(&path, Some(&iv.join_token)).await;
    assert_eq!(status, 200, "{own}");
    assert!(
        own.get("trustScore").is_none(),
        "the candidate's socket never shows a trust score, so its row does not: {own}"
    );
    let mut expected = row.clone();
    if let Some(obj) = expected.as_object_mut() {
        obj.remove("trustScore");
    }
    assert_eq!(own, expected, "everything else is the same row");
    assert!(
        own["summary"]["overallScore"].is_u64(),
        "scores are the candidate's too: {own}"
    );

    // The log: observers get the proctoring, the candidate none of it.
    let theirs = server
        .http_events(&iv.id, &recruiter_token(ORG), None)
        .await;
    for kind in ["proctor-alert", "trust-score-update", "candidate-joined"] {
        assert!(
            theirs.iter().any(|e| ty(e) == kind),
            "the recruiter's log has {kind}: {:?}",
            types(&theirs)
        );
    }
    let mine = server.http_events(&iv.id, &iv.join_token, None).await;
    assert!(
        !mine.iter().any(is_observer_only),
        "the candidate's log has no observer-only event: {:?}",
        types(&mine)
    );
    assert_same_events(&mine, &candidate_visible(&theirs), "candidate's log");

    // The transcript is one for everyone.
    let own_transcript = transcript(&server, &iv.id, &iv.join_token).await;
    assert_eq!(
        own_transcript,
        transcript(&server, &iv.id, &recruiter_token(ORG)).await
    );
    assert!(
        own_transcript["entries"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["speaker"] == "candidate")),
        "{own_transcript}"
    );
}

async fn transcript(server: &TestServer, id: &str, token: &str) -> Value {
    let (status, v) = server
        .get(&format!("/v1/interviews/{id}/transcript"), Some(token))
        .await;
    assert_eq!(status, 200, "{v}");
    v
}
