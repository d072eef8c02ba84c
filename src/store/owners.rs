//! Who owns an interview, fenced by an epoch (DESIGN.md, "Several nodes").
//!
//! On PostgreSQL an owner row per interview names the node (its `NODE_ID`
//! and the incarnation of its node lease) and an `epoch` that grows by one
//! at every acquire. Acquiring is one statement that succeeds only when the
//! interview was released, its owner's node lease has expired, or the
//! acquirer is that very owner (a session restarted on the same process).
//! Every commit with an epoch reads the row `FOR SHARE` in its own
//! transaction and rolls back unless the epoch is still the batch's: a
//! takeover's `UPDATE` waits for commits in flight, and a commit that starts
//! after it sees the new epoch. Writer connections set
//! `idle_in_transaction_session_timeout` (see `postgres`), so a frozen owner
//! holding that lock cannot block a takeover for long.
//!
//! On SQLite one process owns the file, so there is nothing to take over:
//! `acquire` always succeeds with the constant `EMBEDDED_EPOCH`, `release`
//! does nothing, and a batch at any other epoch is fenced. Events there carry
//! that constant epoch (or 0 when written unfenced).

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use interview_actors::ports::{BoxFuture, Ownership, StoreError};

use super::commit_rows::CommitError;
use super::{postgres, queries, Backend, Store};

/// The epoch of every acquire on SQLite, where one process owns the file.
pub const EMBEDDED_EPOCH: u64 = 1;

/// Takes the row when it is free; `RETURNING` nothing means another live
/// node holds it. The lease is judged by PostgreSQL's clock, as the lease
/// heartbeat writes it.
const ACQUIRE: &str = "\
    INSERT INTO interview_owners AS o \
        (interview_id, node_id, incarnation, epoch, released, acquired_at) \
    VALUES ($1, $2, $3::uuid, 1, false, clock_timestamp()) \
    ON CONFLICT (interview_id) DO UPDATE SET \
        node_id = excluded.node_id, incarnation = excluded.incarnation, \
        epoch = o.epoch + 1, released = false, acquired_at = excluded.acquired_at \
    WHERE o.released \
       OR (o.node_id = excluded.node_id AND o.incarnation = excluded.incarnation) \
       OR NOT EXISTS (SELECT 1 FROM nodes n \
                      WHERE n.node_id = o.node_id AND n.incarnation = o.incarnation \
                        AND n.expires_at > clock_timestamp()) \
    RETURNING epoch";

const OWNER: &str = "SELECT node_id, epoch FROM interview_owners WHERE interview_id = $1";

/// Only the owner at that epoch releases; a release after a takeover
/// matches nothing.
const RELEASE: &str = "\
    UPDATE interview_owners SET released = true \
    WHERE interview_id = $1 AND epoch = $2 AND NOT released";

/// The fence of a commit: one row (locked until the commit ends) if the
/// interview is still owned, not released, at the batch's epoch; none
/// otherwise.
pub(super) const FENCE: &str = "\
    SELECT 1 FROM interview_owners \
    WHERE interview_id = $1 AND epoch = $2 AND NOT released FOR SHARE";

#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = Text)]
    node_id: String,
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

impl Store {
    /// Makes `node_id` (in its lease's `incarnation`) the owner of the
    /// interview and returns the new epoch, or `StoreError::Owned` while
    /// another node's lease is live and it has not released the interview.
    pub async fn acquire(
        &self,
        interview_id: &str,
        node_id: &str,
        incarnation: uuid::Uuid,
    ) -> Result<u64, StoreError> {
        let (id, node) = (interview_id.to_owned(), node_id.to_owned());
        self.run(move |s| async move {
            match &s.backend {
                Backend::Sqlite(_) => Ok(EMBEDDED_EPOCH),
                Backend::Postgres(db) => {
                    postgres::bounded(async {
                        let mut conn = db.writer().await?;
                        let result = acquire_pg(&mut conn, &id, &node, incarnation).await;
                        result.map_err(|e| postgres::classify(&mut conn, e))
                    })
                    .await
                }
            }
        })
        .await
    }

    /// Gives the interview up (passivation, drain) so another node may take
    /// it at once. A no-op if `epoch` is no longer the owner's.
    pub async fn release(&self, interview_id: &str, epoch: u64) -> Result<(), StoreError> {
        let id = interview_id.to_owned();
        let epoch = epoch_to_db(epoch)?;
        self.run(move |s| async move {
            match &s.backend {
                Backend::Sqlite(_) => Ok(()),
                Backend::Postgres(db) => {
                    postgres::bounded(async {
                        let mut conn = db.writer().await?;
                        let result = diesel::sql_query(RELEASE)
                            .bind::<Text, _>(&id)
                            .bind::<BigInt, _>(epoch)
                            .execute(&mut conn)
                            .await
                            .map(drop)
                            .map_err(queries::db_error);
                        result.map_err(|e| postgres::classify(&mut conn, e))
                    })
                    .await
                }
            }
        })
        .await
    }
}

/// The `Ownership` port of a node: acquires in this node's name and lease
/// incarnation.
pub struct NodeOwnership {
    pub store: Store,
    pub node_id: String,
    pub incarnation: uuid::Uuid,
}

impl Ownership for NodeOwnership {
    fn acquire(&self, interview_id: &str) -> BoxFuture<Result<Option<u64>, StoreError>> {
        let (store, id, node) = (
            self.store.clone(),
            interview_id.to_owned(),
            self.node_id.clone(),
        );
        let incarnation = self.incarnation;
        Box::pin(async move { store.acquire(&id, &node, incarnation).await.map(Some) })
    }

    fn release(&self, interview_id: &str, epoch: u64) -> BoxFuture<Result<(), StoreError>> {
        let (store, id) = (self.store.clone(), interview_id.to_owned());
        Box::pin(async move { store.release(&id, epoch).await })
    }
}

async fn acquire_pg(
    conn: &mut AsyncPgConnection,
    id: &str,
    node_id: &str,
    incarnation: uuid::Uuid,
) -> Result<u64, StoreError> {
    let taken: Vec<Acquired> = diesel::sql_query(ACQUIRE)
        .bind::<Text, _>(id)
        .bind::<Text, _>(node_id)
        .bind::<Text, _>(incarnation.to_string())
        .load(conn)
        .await
        .map_err(queries::db_error)?;
    if let Some(row) = taken.into_iter().next() {
        return epoch_from_db(row.epoch);
    }
    let owner: Vec<Owner> = diesel::sql_query(OWNER)
        .bind::<Text, _>(id)
        .load(conn)
        .await
        .map_err(queries::db_error)?;
    match owner.into_iter().next() {
        Some(owner) => Err(StoreError::Owned {
            interview_id: id.to_owned(),
            node_id: owner.node_id,
            epoch: epoch_from_db(owner.epoch)?,
        }),
        // Only an interview deleted meanwhile loses its owner row.
        None => Err(StoreError::Query(format!("no interview {id}"))),
    }
}

/// The SQLite fence: only the embedded epoch owns anything there.
pub(super) fn check_embedded(epoch: Option<i64>) -> Result<(), CommitError> {
    match epoch {
        Some(e) if u64::try_from(e).ok() != Some(EMBEDDED_EPOCH) => {
            Err(CommitError::Fenced { epoch: e })
        }
        _ => Ok(()),
    }
}

pub(super) fn epoch_to_db(epoch: u64) -> Result<i64, StoreError> {
    i64::try_from(epoch).map_err(|_| StoreError::Query(format!("epoch {epoch} out of range")))
}

fn epoch_from_db(epoch: i64) -> Result<u64, StoreError> {
    u64::try_from(epoch).map_err(|_| StoreError::Corrupt(format!("negative epoch {epoch}")))
}
