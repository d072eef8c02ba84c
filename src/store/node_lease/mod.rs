//! This process's node lease in PostgreSQL (DESIGN.md, "Several nodes").
//!
//! A row of `nodes` says that a live process holds a `NODE_ID` until its
//! `expires_at`. Taking it is one statement that only succeeds when there is
//! no row or the row's lease has expired, so two live processes can never
//! share an identity; later steps make interview ownership depend on it.
//!
//! - Every expiry is computed with PostgreSQL's clock
//!   (`clock_timestamp() + ttl`), never a node's, so nodes whose clocks
//!   disagree still agree on whether a lease has expired.
//! - Each process start has its own `incarnation`: a renewal or release by
//!   an older process with the same `NODE_ID` matches no row.
//! - Renewals run on a thread, a runtime and a connection of their own, not
//!   the store's pool: a busy pool or a busy actix worker must not starve
//!   the heartbeat into losing the lease.
//! - Whether the lease is held is judged locally and conservatively: until
//!   the instant the last successful renewal was *sent* plus the TTL, which
//!   is never later than the expiry PostgreSQL wrote.
//!
//! Parts: `status` (held, expired or lost, as readers see it) and
//! `heartbeat` (the thread that takes, renews and releases the row).

mod heartbeat;
mod status;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::oneshot;

use self::heartbeat::Heartbeat;
pub use self::status::{LeaseState, LeaseStatus};

/// Opening the lease's own connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Releasing at shutdown: past this the lease simply expires.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the lease needs from the configuration.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub database_url: String,
    pub node_id: String,
    /// `NODE_LEASE_TTL_MS`.
    pub ttl: Duration,
    /// `NODE_HEARTBEAT_MS`, below the TTL (the configuration checks it).
    pub heartbeat: Duration,
    /// Where this process listens, written into the row for operators.
    pub address: Option<String>,
}

/// Why the lease could not be taken at start.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// A live process holds this `NODE_ID`.
    #[error(
        "NODE_ID {node_id:?} is held by another live process{} whose lease expires at {} \
         (in {:.1} s): two processes must never share a node identity; give this one its own \
         NODE_ID, or stop the other one (a graceful stop releases the lease at once)",
        address.as_deref().map(|a| format!(" (listening on {a})")).unwrap_or_default(),
        expires_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        remaining.as_secs_f64()
    )]
    Held {
        node_id: String,
        expires_at: DateTime<Utc>,
        remaining: Duration,
        address: Option<String>,
    },
    #[error("taking the node lease for NODE_ID {node_id:?}: {reason}")]
    Unavailable { node_id: String, reason: String },
}

/// The lease of this process, renewed in the background until `release`.
/// Dropping it without `release` releases it too, best effort.
pub struct NodeLease {
    status: LeaseStatus,
    /// This process start's incarnation: interviews it owns name it.
    incarnation: uuid::Uuid,
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

impl NodeLease {
    /// Takes this process's `NODE_ID` and starts renewing it; an error if a
    /// live process holds it or the database cannot be reached.
    pub async fn acquire(settings: LeaseSettings) -> Result<NodeLease, LeaseError> {
        describe_metrics();
        let node_id = settings.node_id.clone();
        let status = LeaseStatus::new();
        let incarnation = uuid::Uuid::new_v4();
        let heartbeat = Heartbeat::new(settings, incarnation, status.clone());
        let (acquired_tx, acquired_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("interviewd-lease".into())
            .spawn(move || heartbeat.run_thread(acquired_tx, stop_rx))
            .map_err(|e| unavailable(&node_id, format!("starting the lease thread: {e}")))?;
        match acquired_rx.await {
            Ok(Ok(())) => Ok(NodeLease {
                status,
                incarnation,
                stop: Some(stop_tx),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(unavailable(&node_id, "the lease thread stopped".into())),
        }
    }

    pub fn status(&self) -> LeaseStatus {
        self.status.clone()
    }

    pub fn incarnation(&self) -> uuid::Uuid {
        self.incarnation
    }

    /// Gives the identity up (graceful shutdown), so a restart with the same
    /// `NODE_ID` need not wait for the TTL. Waits a bounded time.
    pub async fn release(mut self) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        let (done_tx, done_rx) = oneshot::channel();
        if stop.send(done_tx).is_err() {
            return;
        }
        let wait = RELEASE_TIMEOUT + CONNECT_TIMEOUT + Duration::from_secs(1);
        if tokio::time::timeout(wait, done_rx).await.is_err() {
            tracing::warn!("the node lease was not released in time; it expires on its own");
        }
    }
}

fn unavailable(node_id: &str, reason: String) -> LeaseError {
    LeaseError::Unavailable {
        node_id: node_id.to_owned(),
        reason,
    }
}

/// Names and help of the lease's metrics.
fn describe_metrics() {
    metrics::describe_gauge!(
        "interviewd_node_lease_valid",
        "1 while this process holds its node lease in PostgreSQL, 0 when it has expired or was lost"
    );
    metrics::describe_counter!(
        "interviewd_node_lease_lost_total",
        "Renewals that found another process holding this NODE_ID (taken after our lease expired)"
    );
}
