//! Store tests against real databases: every test runs on a fresh SQLite
//! file and, when a PostgreSQL server is configured (`TEST_POSTGRES_URL`, or
//! `DATABASE_URL` pointing at PostgreSQL), on a fresh database there too.
//! `#[tokio::test]` runs on a current-thread runtime, like actix's workers:
//! every test also proves the store works from there.

use std::future::Future;
use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use interview_actors::event::{
    Evaluation, Event, LoggedEvent, NextAction, Progress, ScoreSource, Summary,
};
use interview_actors::ports::{
    AnswerAudio, Batch, EventStore, InterviewRecord, InterviewRow, InterviewStatus, Speaker,
    StoreError,
};
use interview_actors::protocol::{ProctorKind, Severity};

use super::scratch_db::{configured_url, ScratchDb};
use super::{NewInterview, Store};

mod owners;
mod postgres;
mod reads;
mod replays;

/// A store under test and the database it lives in. Fields drop in order:
/// the store (and its connections) before its database.
pub(super) struct TestStore {
    pub backend: &'static str,
    pub store: Store,
    _db: TestDb,
}

/// Held for their `Drop`: the temp dir or the scratch database goes with it.
#[allow(dead_code)]
enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres(ScratchDb),
}

pub(super) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::open(&url).await.unwrap();
    (dir, store)
}

/// A fresh PostgreSQL database, or `None` (with a note) when no server is
/// configured.
pub(super) async fn scratch_pg() -> Option<ScratchDb> {
    let Some(base) = configured_url() else {
        eprintln!(
            "note: PostgreSQL half skipped (set TEST_POSTGRES_URL or DATABASE_URL=postgres://...)"
        );
        return None;
    };
    let db = tokio::task::spawn_blocking(move || ScratchDb::create(&base))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("PostgreSQL is configured but unusable: {e}"));
    Some(db)
}

/// A fresh store per available backend: SQLite always, PostgreSQL when
/// configured.
pub(super) async fn backends() -> Vec<TestStore> {
    let (dir, store) = temp_store().await;
    let mut all = vec![TestStore {
        backend: "sqlite",
        store,
        _db: TestDb::Sqlite(dir),
    }];
    if let Some(db) = scratch_pg().await {
        let store = Store::open(&db.url).await.unwrap();
        all.push(TestStore {
            backend: "postgres",
            store,
            _db: TestDb::Postgres(db),
        });
    }
    all
}

/// Runs `test` once per available backend, each on a fresh database.
pub(super) async fn on_every_backend<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    for t in backends().await {
        eprintln!("-- on {}", t.backend);
        test(t.store.clone()).await;
    }
}

pub(super) fn new_interview(org: &str, title: &str) -> NewInterview {
    NewInterview {
        org_id: org.into(),
        title: title.into(),
        candidate_name: "Ada".into(),
        candidate_id: "cand-1".into(),
        questions: vec![
            ("Tell me about yourself".into(), String::new()),
            ("Design a cache".into(), "TECHNICAL".into()),
        ],
        duration_minutes: 30,
    }
}

/// Creates an interview of `new_interview(org, title)` and returns its id.
pub(super) async fn new_id(store: &Store, org: &str, title: &str) -> String {
    store
        .create_interview(new_interview(org, title))
        .await
        .unwrap()
        .id
}

pub(super) fn logged(seq: u64, event: Event) -> Arc<LoggedEvent> {
    Arc::new(LoggedEvent::new(seq, Utc::now().trunc_subsecs(3), event))
}

pub(super) fn row(status: InterviewStatus, last_seq: u64) -> InterviewRow {
    InterviewRow {
        status,
        started_at: Some(Utc::now().trunc_subsecs(3)),
        ended_at: None,
        progress: Progress {
            current_question: 1,
            total_questions: 2,
            answered: 0,
        },
        trust_score: 100,
        summary: None,
        last_seq,
        status_since: Some(Utc::now().trunc_subsecs(3)),
    }
}

pub(super) fn batch(id: &str, events: Vec<Arc<LoggedEvent>>, row: InterviewRow) -> Batch {
    Batch {
        interview_id: id.into(),
        events,
        row: Some(row),
        audio: vec![],
        epoch: None,
    }
}

fn evaluation() -> Evaluation {
    Evaluation {
        question_id: "q1".into(),
        score: 72,
        strengths: vec!["clear".into()],
        weaknesses: vec![],
        feedback: "good".into(),
        next_action: NextAction::NextQuestion,
        source: ScoreSource::Heuristic,
    }
}

pub(super) fn assert_same(a: &[LoggedEvent], b: &[Arc<LoggedEvent>]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.seq, x.ts, &x.event, &x.frame),
            (y.seq, y.ts, &y.event, &y.frame)
        );
    }
}

#[tokio::test]
async fn create_commit_twice_and_load_round_trips() {
    on_every_backend(|store| async move {
        let record = store
            .create_interview(new_interview("org-a", "Backend"))
            .await
            .unwrap();
        assert_eq!(record.status, InterviewStatus::Pending);
        assert_eq!(record.questions[0].id, "q1");
        assert_eq!(record.questions[0].kind, "GENERAL");
        assert_eq!(record.questions[1].kind, "TECHNICAL");

        let first = vec![
            logged(
                1,
                Event::CandidateJoined {
                    candidate_name: "Ada".into(),
                },
            ),
            logged(
                2,
                Event::InterviewStarted {
                    started_at: "2026-01-01T00:00:00.000Z".into(),
                    first_question: "Tell me about yourself".into(),
                },
            ),
            logged(
                3,
                Event::AiStreamEnd {
                    message_id: "m1".into(),
                    text: "Tell me about yourself".into(),
                    interrupted: false,
                },
            ),
        ];
        let row1 = row(InterviewStatus::Active, 3);
        store
            .commit(batch(&record.id, first.clone(), row1.clone()))
            .await
            .unwrap();

        let second = vec![
            logged(
                4,
                Event::CandidateAnswer {
                    question_id: "q1".into(),
                    text: "I build things".into(),
                },
            ),
            logged(5, Event::Evaluation(evaluation())),
            logged(
                6,
                Event::ProctorAlert {
                    kind: ProctorKind::TabSwitch,
                    severity: Severity::High,
                    message: "left the tab".into(),
                },
            ),
            logged(7, Event::TrustScoreUpdate { trust_score: 90 }),
        ];
        let mut row2 = row(InterviewStatus::Completed, 7);
        row2.ended_at = Some(Utc::now().trunc_subsecs(3));
        row2.trust_score = 90;
        row2.summary = Some(Summary {
            overall_score: Some(72),
            recommendation: Some("hire".into()),
            strengths: vec!["clear".into()],
            weaknesses: vec![],
            category_scores: [("GENERAL".to_owned(), 72)].into_iter().collect(),
            questions_answered: 1,
            average_response_ms: Some(1200),
        });
        let mut b2 = batch(&record.id, second.clone(), row2.clone());
        b2.audio.push(AnswerAudio {
            question_id: "q1".into(),
            bytes: vec![1, 2, 3],
            ts: Utc::now(),
        });
        store.commit(b2).await.unwrap();

        let loaded = store.load(&record.id).await.unwrap().unwrap();
        // The record's status is the row's current one.
        let expected = InterviewRecord {
            status: InterviewStatus::Completed,
            ..record.clone()
        };
        assert_eq!(loaded.record, expected);
        let all: Vec<_> = first.iter().chain(&second).cloned().collect();
        assert_same(&loaded.events, &all);

        let view = store.interview_view(&record.id).await.unwrap().unwrap();
        assert_eq!(view.row, row2);
        assert_eq!(view.record.status, InterviewStatus::Completed);

        let transcript = store.transcript(&record.id).await.unwrap();
        assert_eq!(transcript.len(), 2);
        assert_eq!((transcript[0].seq, transcript[0].speaker), (3, Speaker::Ai));
        assert_eq!(
            (transcript[1].seq, transcript[1].speaker),
            (4, Speaker::Candidate)
        );
        assert_eq!(transcript[1].question_id.as_deref(), Some("q1"));

        assert!(store.load("no-such-id").await.unwrap().is_none());
        assert!(store.interview_view("no-such-id").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn duplicate_seq_is_refused_and_nothing_is_half_written() {
    on_every_backend(|store| async move {
        let id = new_id(&store, "org-a", "t").await;
        let first = vec![
            logged(1, Event::AiThinking {}),
            logged(2, Event::AiThinking {}),
        ];
        let row1 = row(InterviewStatus::Active, 2);
        store
            .commit(batch(&id, first.clone(), row1.clone()))
            .await
            .unwrap();

        let clash = vec![
            logged(
                3,
                Event::CandidateAnswer {
                    question_id: "q1".into(),
                    text: "x".into(),
                },
            ),
            logged(2, Event::InterviewResumed {}),
        ];
        let err = store
            .commit(batch(&id, clash, row(InterviewStatus::Paused, 3)))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Query(_)), "{err:?}");

        let loaded = store.load(&id).await.unwrap().unwrap();
        assert_same(&loaded.events, &first);
        assert_eq!(store.interview_view(&id).await.unwrap().unwrap().row, row1);
        assert!(store.transcript(&id).await.unwrap().is_empty());

        // The failed batch left the connection usable.
        store
            .commit(batch(
                &id,
                vec![logged(3, Event::AiThinking {})],
                row(InterviewStatus::Active, 3),
            ))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn empty_batch_updates_the_row_and_unknown_interviews_fail() {
    on_every_backend(|store| async move {
        let id = new_id(&store, "org-a", "t").await;
        let created = InterviewRow {
            started_at: None,
            last_seq: 0,
            ..row(InterviewStatus::Created, 0)
        };
        store
            .commit(batch(&id, vec![], created.clone()))
            .await
            .unwrap();
        assert_eq!(
            store.interview_view(&id).await.unwrap().unwrap().row,
            created
        );

        assert!(store
            .commit(batch("nope", vec![], created.clone()))
            .await
            .is_err());
        assert!(store
            .commit(batch(
                "nope",
                vec![logged(1, Event::AiThinking {})],
                created
            ))
            .await
            .is_err());
    })
    .await;
}

#[tokio::test]
async fn a_batch_without_a_row_keeps_the_row_and_the_head_comes_from_the_log() {
    on_every_backend(|store| async move {
        let id = new_id(&store, "org-a", "t").await;
        let active = row(InterviewStatus::Active, 1);
        store
            .commit(batch(
                &id,
                vec![logged(1, Event::AiThinking {})],
                active.clone(),
            ))
            .await
            .unwrap();
        let tokens = Batch {
            row: None,
            ..batch(
                &id,
                vec![
                    logged(2, Event::AiThinking {}),
                    logged(3, Event::AiThinking {}),
                ],
                active.clone(),
            )
        };
        store.commit(tokens).await.unwrap();
        let view = store.interview_view(&id).await.unwrap().unwrap();
        assert_eq!(
            view.row,
            InterviewRow {
                last_seq: 3,
                ..active.clone()
            }
        );
        let (page, _) = store
            .list_interviews(Some("org-a"), None, 10, None)
            .await
            .unwrap();
        let listed = page.iter().find(|v| v.record.id == id).unwrap();
        assert_eq!(listed.row.last_seq, 3);

        // Without a row to update, a missing interview is still refused.
        let orphan = Batch {
            row: None,
            ..batch("nope", vec![logged(1, Event::AiThinking {})], active)
        };
        assert!(store.commit(orphan).await.is_err());
    })
    .await;
}

/// Batches of many sessions share a transaction on SQLite: one that fails
/// must fail alone, and the others must be stored.
#[tokio::test]
async fn a_failing_batch_among_concurrent_ones_fails_alone() {
    on_every_backend(|store| async move {
        let mut ids = Vec::new();
        for n in 0..24 {
            let id = store
                .create_interview(new_interview("org-a", &format!("t{n}")))
                .await
                .unwrap()
                .id;
            store
                .commit(batch(
                    &id,
                    vec![logged(1, Event::AiThinking {})],
                    row(InterviewStatus::Active, 1),
                ))
                .await
                .unwrap();
            ids.push(id);
        }
        // Every interview commits seq 2 at once; the 7th reuses seq 1 for
        // another event, a conflict.
        let commits = ids.iter().enumerate().map(|(n, id)| {
            let seq = if n == 7 { 1 } else { 2 };
            store.commit(Batch {
                row: None,
                ..batch(
                    id,
                    vec![logged(seq, Event::InterviewResumed {})],
                    row(InterviewStatus::Active, seq),
                )
            })
        });
        let outcomes = futures_util::future::join_all(commits).await;
        for (n, (id, outcome)) in ids.iter().zip(outcomes).enumerate() {
            let head = store
                .interview_view(id)
                .await
                .unwrap()
                .unwrap()
                .row
                .last_seq;
            if n == 7 {
                assert!(matches!(outcome, Err(StoreError::Query(_))), "{outcome:?}");
                assert_eq!(head, 1);
            } else {
                assert!(outcome.is_ok(), "interview {n}: {outcome:?}");
                assert_eq!(head, 2, "interview {n}");
            }
        }
    })
    .await;
}
