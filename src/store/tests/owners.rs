//! Ownership and its fencing epoch (`store::owners`): acquire, release and
//! takeover on PostgreSQL, the constant epoch on SQLite, stale commits
//! refused, and a thousand rounds of commit against takeover.

use std::sync::Arc;

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use interview_actors::event::{Event, LoggedEvent};
use interview_actors::ports::{Batch, EventStore, InterviewStatus, StoreError};
use uuid::Uuid;

use super::{batch, logged, new_id, row, scratch_pg, temp_store};
use crate::store::owners::EMBEDDED_EPOCH;
use crate::store::scratch_db::ScratchDb;
use crate::store::Store;

/// A batch of `events` at `epoch` that leaves the row alone.
fn at(id: &str, epoch: u64, events: Vec<Arc<LoggedEvent>>) -> Batch {
    Batch {
        row: None,
        epoch: Some(epoch),
        ..batch(id, events, row(InterviewStatus::Active, 0))
    }
}

#[derive(QueryableByName)]
struct SeqEpoch {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

/// A connection of the test's own, beside the stores' pools.
async fn admin(db: &ScratchDb) -> AsyncPgConnection {
    AsyncPgConnection::establish(&db.url).await.unwrap()
}

async fn stored_epochs(conn: &mut AsyncPgConnection, id: &str) -> Vec<(u64, u64)> {
    let rows: Vec<SeqEpoch> = diesel::sql_query(
        "SELECT seq, epoch FROM session_events WHERE interview_id = $1 ORDER BY seq",
    )
    .bind::<Text, _>(id)
    .load(conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|r| (r.seq as u64, r.epoch as u64))
        .collect()
}

/// Writes a node lease row as the heartbeat would: live for an hour.
async fn live_lease(conn: &mut AsyncPgConnection, node_id: &str, incarnation: Uuid) {
    diesel::sql_query(
        "INSERT INTO nodes (node_id, incarnation, expires_at, started_at) \
         VALUES ($1, $2::uuid, clock_timestamp() + interval '1 hour', clock_timestamp()) \
         ON CONFLICT (node_id) DO UPDATE SET incarnation = excluded.incarnation, \
         expires_at = excluded.expires_at",
    )
    .bind::<Text, _>(node_id)
    .bind::<Text, _>(incarnation.to_string())
    .execute(conn)
    .await
    .unwrap();
}

/// Lets a node's lease run out, by PostgreSQL's clock.
async fn expire_lease(conn: &mut AsyncPgConnection, node_id: &str) {
    diesel::sql_query(
        "UPDATE nodes SET expires_at = clock_timestamp() - interval '1 second' \
         WHERE node_id = $1",
    )
    .bind::<Text, _>(node_id)
    .execute(conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn epochs_grow_by_one_and_a_live_owner_keeps_its_interview() {
    let Some(db) = scratch_pg().await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    let mut conn = admin(&db).await;
    let id = new_id(&store, "org-a", "t").await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    live_lease(&mut conn, "node-a", a).await;
    live_lease(&mut conn, "node-b", b).await;

    assert_eq!(store.acquire(&id, "node-a", a).await.unwrap(), 1);
    // B is refused while A's lease is live and A holds on.
    match store.acquire(&id, "node-b", b).await {
        Err(StoreError::Owned { node_id, epoch, .. }) => {
            assert_eq!((node_id.as_str(), epoch), ("node-a", 1));
        }
        other => panic!("expected Owned, got {other:?}"),
    }
    // Released: B takes it at once.
    store.release(&id, 1).await.unwrap();
    assert_eq!(store.acquire(&id, "node-b", b).await.unwrap(), 2);
    // A release at a past epoch does not free B's interview.
    store.release(&id, 1).await.unwrap();
    assert!(matches!(
        store.acquire(&id, "node-a", a).await,
        Err(StoreError::Owned { epoch: 2, .. })
    ));
    // The owner itself may acquire again (a session restarted in place).
    assert_eq!(store.acquire(&id, "node-b", b).await.unwrap(), 3);
    // B's lease expires: A takes over.
    expire_lease(&mut conn, "node-b").await;
    assert_eq!(store.acquire(&id, "node-a", a).await.unwrap(), 4);
    // A new process with B's NODE_ID is another incarnation: not the owner.
    let b2 = Uuid::new_v4();
    live_lease(&mut conn, "node-b", b2).await;
    assert!(matches!(
        store.acquire(&id, "node-b", b2).await,
        Err(StoreError::Owned { epoch: 4, .. })
    ));
    // Another interview starts at 1.
    let other = new_id(&store, "org-a", "u").await;
    assert_eq!(store.acquire(&other, "node-b", b2).await.unwrap(), 1);
}

#[tokio::test]
async fn a_stale_epoch_commit_is_refused_and_writes_nothing() {
    let Some(db) = scratch_pg().await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    let mut conn = admin(&db).await;
    let id = new_id(&store, "org-a", "t").await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    live_lease(&mut conn, "node-a", a).await;
    live_lease(&mut conn, "node-b", b).await;

    // Unowned: no epoch is the owner's yet.
    let early = store
        .commit(at(&id, 1, vec![logged(1, Event::AiThinking {})]))
        .await;
    assert!(
        matches!(early, Err(StoreError::Fenced { epoch: 1, .. })),
        "{early:?}"
    );

    let e1 = store.acquire(&id, "node-a", a).await.unwrap();
    store
        .commit(at(&id, e1, vec![logged(1, Event::AiThinking {})]))
        .await
        .unwrap();
    expire_lease(&mut conn, "node-a").await;
    let e2 = store.acquire(&id, "node-b", b).await.unwrap();
    assert_eq!(e2, e1 + 1);

    // A's next batch, with a row change and projections, is fenced whole.
    let before = store.interview_view(&id).await.unwrap().unwrap();
    let stale = Batch {
        epoch: Some(e1),
        ..batch(
            &id,
            vec![
                logged(2, Event::InterviewResumed {}),
                logged(3, Event::AiThinking {}),
            ],
            row(InterviewStatus::Completed, 3),
        )
    };
    let refused = store.commit(stale).await;
    assert!(
        matches!(&refused, Err(StoreError::Fenced { epoch, .. }) if *epoch == e1),
        "{refused:?}"
    );
    assert_eq!(store.interview_view(&id).await.unwrap().unwrap(), before);
    assert_eq!(stored_epochs(&mut conn, &id).await, [(1, e1)]);

    // B writes seq 2; A retrying it is still fenced, not a conflict.
    store
        .commit(at(&id, e2, vec![logged(2, Event::AiThinking {})]))
        .await
        .unwrap();
    let retry = store
        .commit(at(&id, e1, vec![logged(2, Event::InterviewResumed {})]))
        .await;
    assert!(matches!(retry, Err(StoreError::Fenced { .. })), "{retry:?}");
    // Released, even the last owner's epoch writes nothing.
    store.release(&id, e2).await.unwrap();
    let after_release = store
        .commit(at(&id, e2, vec![logged(3, Event::AiThinking {})]))
        .await;
    assert!(matches!(after_release, Err(StoreError::Fenced { .. })));
    assert_eq!(stored_epochs(&mut conn, &id).await, [(1, e1), (2, e2)]);
    // Unfenced batches (no epoch) still write, at epoch 0.
    store
        .commit(Batch {
            epoch: None,
            ..at(&id, 0, vec![logged(3, Event::AiThinking {})])
        })
        .await
        .unwrap();
    assert_eq!(
        stored_epochs(&mut conn, &id).await,
        [(1, e1), (2, e2), (3, 0)]
    );
}

#[tokio::test]
async fn sqlite_owns_at_one_constant_epoch() {
    let (dir, store) = temp_store().await;
    let id = new_id(&store, "org-a", "t").await;
    let incarnation = Uuid::new_v4();
    assert_eq!(
        store.acquire(&id, "a", incarnation).await.unwrap(),
        EMBEDDED_EPOCH
    );
    store.release(&id, EMBEDDED_EPOCH).await.unwrap();
    assert_eq!(
        store.acquire(&id, "b", incarnation).await.unwrap(),
        EMBEDDED_EPOCH
    );
    store
        .commit(at(
            &id,
            EMBEDDED_EPOCH,
            vec![logged(1, Event::AiThinking {})],
        ))
        .await
        .unwrap();
    let other = store
        .commit(at(
            &id,
            EMBEDDED_EPOCH + 1,
            vec![logged(2, Event::AiThinking {})],
        ))
        .await;
    assert!(matches!(other, Err(StoreError::Fenced { .. })), "{other:?}");
    let loaded = EventStore::load(&store, &id).await.unwrap().unwrap();
    assert_eq!(loaded.events.len(), 1);

    use diesel::Connection as _;
    let path = dir.path().join("store.db");
    let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
    let rows: Vec<SeqEpoch> = diesel::RunQueryDsl::load(
        diesel::sql_query("SELECT seq, epoch FROM session_events"),
        &mut conn,
    )
    .unwrap();
    let stored: Vec<(i64, i64)> = rows.iter().map(|r| (r.seq, r.epoch)).collect();
    assert_eq!(stored, [(1, EMBEDDED_EPOCH as i64)]);
}

/// Commit against takeover, a thousand times, each store on connections of
/// its own as two nodes are. The old owner commits the next seq at its
/// epoch while the other node takes over, reads the head and commits after
/// it at the new epoch. Whatever the interleaving: a commit reported done
/// is stored at its epoch, a fenced one wrote nothing, no seq is written
/// twice, and once an epoch has written, no older epoch writes again.
#[tokio::test]
async fn a_thousand_rounds_of_commit_against_takeover() {
    let Some(db) = scratch_pg().await else {
        return;
    };
    let nodes = [
        (
            Store::open(&db.url).await.unwrap(),
            "node-a",
            Uuid::new_v4(),
        ),
        (
            Store::open(&db.url).await.unwrap(),
            "node-b",
            Uuid::new_v4(),
        ),
    ];
    let id = new_id(&nodes[0].0, "org-a", "race").await;
    // No lease rows: every owner counts as expired, so every takeover may
    // go ahead, racing the old owner's commit.
    let (first, node, inc) = &nodes[0];
    let mut epoch = first.acquire(&id, node, *inc).await.unwrap();
    let mut head = 0u64;
    let mut committed: Vec<(u64, u64)> = Vec::new();
    let (mut fenced, mut before_takeover) = (0, 0);
    for round in 0..1000usize {
        let (old, new) = (&nodes[round % 2], &nodes[(round + 1) % 2]);
        let seq = head + 1;
        let stale = old
            .0
            .commit(at(&id, epoch, vec![logged(seq, Event::AiThinking {})]));
        let takeover = async {
            let e = new.0.acquire(&id, new.1, new.2).await.unwrap();
            let view = new.0.interview_view(&id).await.unwrap().unwrap();
            let next = view.row.last_seq + 1;
            let done = new
                .0
                .commit(at(&id, e, vec![logged(next, Event::AiThinking {})]))
                .await;
            (e, next, done)
        };
        let (stale, (new_epoch, next, done)) = futures_util::join!(stale, takeover);
        assert_eq!(new_epoch, epoch + 1, "round {round}");
        done.unwrap_or_else(|e| panic!("round {round}: the new owner's commit failed: {e}"));
        match stale {
            Ok(()) => {
                // Only possible before the takeover: the new owner saw it.
                assert_eq!(next, seq + 1, "round {round}");
                committed.push((seq, epoch));
                before_takeover += 1;
            }
            Err(StoreError::Fenced { .. }) => {
                assert_eq!(next, seq, "round {round}");
                fenced += 1;
            }
            Err(e) => panic!("round {round}: the old owner's commit failed otherwise: {e}"),
        }
        committed.push((next, new_epoch));
        epoch = new_epoch;
        head = next;
    }
    let mut conn = admin(&db).await;
    let stored = stored_epochs(&mut conn, &id).await;
    assert_eq!(
        stored, committed,
        "stored (seq, epoch) = what was acknowledged"
    );
    assert!(
        stored.windows(2).all(|w| w[0].1 <= w[1].1),
        "an older epoch wrote after a newer one"
    );
    eprintln!("{fenced} stale commits fenced, {before_takeover} landed before the takeover");
}
