//! Reads: paging, replay filters, and the store's behaviour on actix's
//! current-thread runtimes.

use interview_actors::audience::Viewer;
use interview_actors::event::{Event, LoggedEvent};
use interview_actors::ports::{EventStore, InterviewStatus, StoreError};

use super::{
    backends, batch, logged, new_id, new_interview, on_every_backend, row, scratch_pg, TestStore,
};
use crate::store::Store;

#[tokio::test]
async fn events_after_hides_observer_only_events_from_candidates() {
    on_every_backend(|store| async move {
        let id = new_id(&store, "org-a", "t").await;
        let events = vec![
            logged(
                1,
                Event::CandidateJoined {
                    candidate_name: "Ada".into(),
                },
            ),
            logged(2, Event::AiThinking {}),
            logged(3, Event::TrustScoreUpdate { trust_score: 95 }),
            logged(4, Event::InterviewResumed {}),
            logged(5, Event::AiThinking {}),
        ];
        store
            .commit(batch(&id, events, row(InterviewStatus::Active, 5)))
            .await
            .unwrap();

        let seqs = |v: Vec<LoggedEvent>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(
                store
                    .events_after(&id, 0, 100, Viewer::Observer)
                    .await
                    .unwrap()
            ),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(
            seqs(
                store
                    .events_after(&id, 0, 100, Viewer::Candidate)
                    .await
                    .unwrap()
            ),
            [2, 4, 5]
        );
        assert_eq!(
            seqs(
                store
                    .events_after(&id, 2, 100, Viewer::Candidate)
                    .await
                    .unwrap()
            ),
            [4, 5]
        );
        assert_eq!(
            seqs(
                store
                    .events_after(&id, 1, 2, Viewer::Observer)
                    .await
                    .unwrap()
            ),
            [2, 3]
        );
        assert!(store
            .events_after(&id, 5, 100, Viewer::Observer)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn list_pages_return_every_interview_exactly_once() {
    on_every_backend(|store| async move {
        let mut org_a = Vec::new();
        for i in 0..7 {
            org_a.push(
                store
                    .create_interview(new_interview("org-a", &format!("a{i}")))
                    .await
                    .unwrap()
                    .id,
            );
            store
                .create_interview(new_interview("org-b", &format!("b{i}")))
                .await
                .unwrap();
        }

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = store
                .list_interviews(Some("org-a"), None, 3, cursor.as_deref())
                .await
                .unwrap();
            assert!(page.len() <= 3);
            assert!(page.iter().all(|v| v.record.org_id == "org-a"));
            seen.extend(page.into_iter().map(|v| v.record));
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut ids: Vec<_> = seen.iter().map(|r| r.id.clone()).collect();
        assert!(seen
            .windows(2)
            .all(|w| (w[0].created_at, &w[0].id) > (w[1].created_at, &w[1].id)));
        ids.sort();
        org_a.sort();
        assert_eq!(ids, org_a);

        let (all, next) = store.list_interviews(None, None, 100, None).await.unwrap();
        assert_eq!((all.len(), next), (14, None));

        let id = &org_a[0];
        store
            .commit(batch(id, vec![], row(InterviewStatus::Active, 0)))
            .await
            .unwrap();
        let (active, _) = store
            .list_interviews(None, Some(InterviewStatus::Active), 100, None)
            .await
            .unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(&active[0].record.id, id);

        assert!(store
            .list_interviews(None, None, 10, Some("garbage"))
            .await
            .is_err());
        assert!(!crate::store::is_valid_cursor("garbage"));
    })
    .await;
}

/// A caller that gives up must not cancel the query: it still commits, and
/// nothing panics (diesel-async's SQLite wrapper would if it were dropped).
#[actix_rt::test]
async fn dropped_futures_still_finish_on_an_actix_runtime() {
    for TestStore {
        backend,
        store,
        _db,
    } in backends().await
    {
        eprintln!("-- on {backend}");
        dropped_futures_still_finish(store).await;
    }
}

async fn dropped_futures_still_finish(store: Store) {
    let id = new_id(&store, "org-a", "t").await;
    drop(store.commit(batch(
        &id,
        vec![logged(1, Event::AiThinking {})],
        row(InterviewStatus::Active, 1),
    )));
    let mut head = 0;
    for _ in 0..200 {
        head = store
            .interview_view(&id)
            .await
            .unwrap()
            .unwrap()
            .row
            .last_seq;
        if head == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(head, 1);
    store.ping().await.unwrap();
    drop(store.ping());
    // The last handle is dropped inside the async test: must not panic.
    drop(store);
}

#[tokio::test]
async fn migrate_reports_applied_versions_once_and_memory_urls_work() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nested/m.db").display());
    let applied = Store::migrate(&url).await.unwrap();
    assert!(!applied.is_empty());
    assert!(Store::migrate(&url).await.unwrap().is_empty());

    let mem = Store::open("sqlite::memory:").await.unwrap();
    let id = new_id(&mem, "o", "t").await;
    assert!(mem.interview_view(&id).await.unwrap().is_some());
    // Nothing listens on port 1: refused, so unavailable (not a query error).
    let err = Store::open("postgres://postgres@127.0.0.1:1/x")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(Store::open("mysql://h/db").await.is_err());

    if let Some(db) = scratch_pg().await {
        let applied = Store::migrate(&db.url).await.unwrap();
        assert!(!applied.is_empty());
        assert!(Store::migrate(&db.url).await.unwrap().is_empty());
        // `open` finds nothing left to apply and works.
        let store = Store::open(&db.url).await.unwrap();
        store.ping().await.unwrap();
    }
}
