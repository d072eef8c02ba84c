//! PostgreSQL only: the pool heals itself when the server drops its
//! connections (what a restart or a network cut does to them), and a query
//! that loses its connection is `Unavailable`, not a query error. Skipped
//! with a note when no server is configured.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use interview_actors::event::Event;
use interview_actors::ports::{EventStore, InterviewStatus, StoreError};

use super::{batch, logged, new_id, row, scratch_pg};
use crate::store::scratch_db::ScratchDb;
use crate::store::{postgres, queries, Backend, Store};

/// Terminates every other session on the scratch database, as a server
/// shutting down does (`57P01 terminating connection due to administrator
/// command`).
async fn kill_connections(db: &ScratchDb) {
    let url = db.url.clone();
    let name = db.name().to_owned();
    let killed = tokio::task::spawn_blocking(move || {
        let mut admin = PgConnection::establish(&url).unwrap();
        let count = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid())"
        )));
        let killed: i64 = diesel::RunQueryDsl::get_result(count, &mut admin).unwrap();
        killed
    })
    .await
    .unwrap();
    assert!(killed > 0, "the pool should have held connections");
}

#[tokio::test]
async fn the_pool_recovers_when_the_server_drops_every_connection() {
    let Some(db) = scratch_pg().await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    let id = new_id(&store, "org-a", "t").await;
    let mut seq = 0;
    for round in 0..3 {
        // Several connections in the pool at once.
        let pings: Vec<_> = (0..4).map(|_| store.ping()).collect();
        for p in pings {
            p.await.unwrap();
        }
        kill_connections(&db).await;
        // The pool checks a connection before handing it out: the caller
        // never sees the dead ones.
        store
            .ping()
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        seq += 1;
        store
            .commit(batch(
                &id,
                vec![logged(seq, Event::AiThinking {})],
                row(InterviewStatus::Active, seq),
            ))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    let loaded = EventStore::load(&store, &id).await.unwrap().unwrap();
    assert_eq!(
        loaded.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

#[tokio::test]
async fn a_query_whose_connection_was_killed_is_unavailable() {
    let Some(db) = scratch_pg().await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    assert!(matches!(store.shared.backend, Backend::Postgres(_)));
    // On the store's runtime, where its connections live.
    let shared = store.shared.clone();
    let handle = store.shared.runtime.handle().unwrap().clone();
    let killer_url = db.url.clone();
    let err = handle
        .spawn(async move {
            let Backend::Postgres(pg) = &shared.backend else {
                unreachable!()
            };
            let mut conn = pg.writer().await.unwrap();
            let pid: i32 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
                "pg_backend_pid()",
            ))
            .get_result(&mut *conn)
            .await
            .unwrap();
            tokio::task::spawn_blocking(move || {
                let mut admin = PgConnection::establish(&killer_url).unwrap();
                admin
                    .batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
                    .unwrap();
            })
            .await
            .unwrap();
            let e = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                .get_result::<i32>(&mut *conn)
                .await
                .unwrap_err();
            postgres::classify(&mut conn, queries::db_error(e))
        })
        .await
        .unwrap();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // And the store carries on.
    store.ping().await.unwrap();
}
