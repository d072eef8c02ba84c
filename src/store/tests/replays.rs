//! Exactly-once commits when a batch is retried after its acknowledgement was
//! lost, and the expiry sweep's query.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use interview_actors::event::{Event, LoggedEvent};
use interview_actors::ports::{AnswerAudio, EventStore, InterviewStatus, StoreError};

use super::{assert_same, batch, logged, new_id, on_every_backend, row};
use crate::store::{queries, Store};

async fn audio_count(store: &Store, id: &str) -> i64 {
    queries::audio_count(&store.shared.backend, id)
        .await
        .unwrap()
}

fn answer(seq: u64, text: &str) -> std::sync::Arc<LoggedEvent> {
    logged(
        seq,
        Event::CandidateAnswer {
            question_id: "q1".into(),
            text: text.into(),
        },
    )
}

#[tokio::test]
async fn a_batch_retried_after_a_lost_ack_is_written_once() {
    on_every_backend(|store| async move {
        let id = new_id(&store, "org-a", "t").await;
        let audio = |q: &str| AnswerAudio {
            question_id: q.into(),
            bytes: vec![7; 64],
            ts: Utc::now(),
        };
        let head = vec![logged(1, Event::AiThinking {}), answer(2, "an answer")];
        let mut first = batch(&id, head.clone(), row(InterviewStatus::Active, 2));
        let first_audio = audio("q1");
        first.audio.push(first_audio.clone());
        store.commit(first.clone()).await.unwrap();

        // The same batch again (its commit went through, the answer did not).
        store.commit(first.clone()).await.unwrap();
        assert_same(&store.load(&id).await.unwrap().unwrap().events, &head);
        assert_eq!(audio_count(&store, &id).await, 1);
        assert_eq!(store.transcript(&id).await.unwrap().len(), 1);

        // Retried with newer events and audio behind it, as the session does.
        let mut all = head.clone();
        all.push(logged(3, Event::AiThinking {}));
        all.push(answer(4, "another answer"));
        let mut second = batch(&id, all.clone(), row(InterviewStatus::Active, 4));
        second.audio = vec![first_audio, audio("q2")];
        store.commit(second).await.unwrap();
        assert_same(&store.load(&id).await.unwrap().unwrap().events, &all);
        assert_eq!(audio_count(&store, &id).await, 2);
        let transcript = store.transcript(&id).await.unwrap();
        assert_eq!(transcript.iter().map(|t| t.seq).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(
            store
                .interview_view(&id)
                .await
                .unwrap()
                .unwrap()
                .row
                .last_seq,
            4
        );

        // Other events under stored seqs are a conflict, and change nothing.
        let clash = vec![
            logged(4, Event::InterviewResumed {}),
            logged(5, Event::AiThinking {}),
        ];
        let err = store
            .commit(batch(&id, clash, row(InterviewStatus::Paused, 5)))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Query(_)), "{err:?}");
        assert_same(&store.load(&id).await.unwrap().unwrap().events, &all);
        let view = store.interview_view(&id).await.unwrap().unwrap();
        assert_eq!(
            (view.row.status, view.row.last_seq),
            (InterviewStatus::Active, 4)
        );
    })
    .await;
}

#[tokio::test]
async fn stale_interviews_are_those_whose_status_began_before_the_cutoff() {
    on_every_backend(|store| async move {
        let now = Utc::now().trunc_subsecs(3);
        let hours = |h: i64| chrono::Duration::hours(h);
        let mut ids = Vec::new();
        // (status, status_since); `None` for the status is a PENDING
        // interview never committed.
        let cases = [
            (None, None),
            (Some(InterviewStatus::Created), None),
            (Some(InterviewStatus::Paused), Some(now - hours(3))),
            (Some(InterviewStatus::Active), Some(now - hours(3))),
            (Some(InterviewStatus::Paused), Some(now)),
            (Some(InterviewStatus::Created), Some(now - hours(2))),
            (Some(InterviewStatus::Completed), Some(now - hours(5))),
        ];
        for (status, since) in cases {
            let id = new_id(&store, "org-a", "t").await;
            if let Some(status) = status {
                let mut r = row(status, 0);
                r.status_since = since;
                store.commit(batch(&id, vec![], r)).await.unwrap();
            }
            ids.push(id);
        }
        let both = [InterviewStatus::Created, InterviewStatus::Paused];

        let old = store
            .stale_interviews(&both, now - hours(1), 100)
            .await
            .unwrap();
        assert_eq!(old, [ids[2].clone(), ids[5].clone()], "oldest first");
        assert_eq!(store.stale(now - hours(1), 100).await.unwrap(), old);
        assert_eq!(
            store
                .stale_interviews(&both, now - hours(1), 1)
                .await
                .unwrap(),
            [ids[2].clone()]
        );

        // A created interview with no status time counts from its creation.
        let later = now + chrono::Duration::from_std(Duration::from_secs(60)).unwrap();
        let mut all = store.stale_interviews(&both, later, 100).await.unwrap();
        assert_eq!(all[..2], [ids[2].clone(), ids[5].clone()]);
        all.sort();
        let mut expected = vec![
            ids[1].clone(),
            ids[2].clone(),
            ids[4].clone(),
            ids[5].clone(),
        ];
        expected.sort();
        assert_eq!(all, expected);

        assert_eq!(
            store
                .stale_interviews(&[InterviewStatus::Active], later, 100)
                .await
                .unwrap(),
            [ids[3].clone()]
        );
        assert!(store
            .stale_interviews(&[], later, 100)
            .await
            .unwrap()
            .is_empty());
        let status_since = store
            .interview_view(&ids[2])
            .await
            .unwrap()
            .unwrap()
            .row
            .status_since;
        assert_eq!(status_since, Some(now - hours(3)));
    })
    .await;
}
