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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::oneshot;

/// Opening the lease's own connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Releasing at shutdown: past this the lease simply expires.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Takes `NODE_ID` if nobody holds it or its holder's lease has expired.
/// No row back: a live process holds it.
const ACQUIRE: &str = "\
    INSERT INTO nodes (node_id, incarnation, expires_at, started_at, address) \
    VALUES ($1, $2::uuid, clock_timestamp() + $3 * interval '1 millisecond', \
            clock_timestamp(), $4) \
    ON CONFLICT (node_id) DO UPDATE SET \
        incarnation = excluded.incarnation, expires_at = excluded.expires_at, \
        started_at = excluded.started_at, address = excluded.address \
    WHERE nodes.expires_at < clock_timestamp() \
    RETURNING expires_at";

/// Who holds `NODE_ID`, for the refusal message.
const HOLDER: &str = "\
    SELECT expires_at, address, \
           greatest(0, (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint) \
               AS remaining_ms \
    FROM nodes WHERE node_id = $1";

/// 0 rows: another process took the identity after this one's lease expired.
const RENEW: &str = "\
    UPDATE nodes SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' \
    WHERE node_id = $1 AND incarnation = $2::uuid";

/// A graceful stop: the next process with this `NODE_ID` may start at once.
const RELEASE: &str = "\
    UPDATE nodes SET expires_at = clock_timestamp() \
    WHERE node_id = $1 AND incarnation = $2::uuid";

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

/// Whether this process holds its lease right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Held,
    /// Renewals have failed for a whole TTL (or the lease was released).
    Expired,
    /// Another process took this `NODE_ID` after our lease expired.
    Lost,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Held => "held",
            LeaseState::Expired => "expired",
            LeaseState::Lost => "lost",
        }
    }
}

/// The lease's state, shared by the heartbeat thread and readers such as
/// `/readyz`. Computed on every read from the last renewal, so a stuck
/// heartbeat shows as an expired lease without the heartbeat saying so.
#[derive(Debug, Clone)]
pub struct LeaseStatus(Arc<StatusCell>);

#[derive(Debug)]
struct StatusCell {
    origin: Instant,
    /// Nanoseconds after `origin` until which the lease is held; 0: not held.
    valid_until: AtomicU64,
    lost: AtomicBool,
}

impl LeaseStatus {
    fn new() -> LeaseStatus {
        LeaseStatus(Arc::new(StatusCell {
            origin: Instant::now(),
            valid_until: AtomicU64::new(0),
            lost: AtomicBool::new(false),
        }))
    }

    pub fn state(&self) -> LeaseState {
        // Qualified: diesel's `RunQueryDsl::load` is in scope too.
        if AtomicBool::load(&self.0.lost, Ordering::Acquire) {
            return LeaseState::Lost;
        }
        let now = duration_nanos(self.0.origin.elapsed());
        if now < AtomicU64::load(&self.0.valid_until, Ordering::Acquire) {
            LeaseState::Held
        } else {
            LeaseState::Expired
        }
    }

    /// A renewal sent at `sent` succeeded.
    fn renewed(&self, sent: Instant, ttl: Duration) {
        let until = sent.saturating_duration_since(self.0.origin) + ttl;
        self.0
            .valid_until
            .store(duration_nanos(until).max(1), Ordering::Release);
    }

    fn lose(&self) {
        self.0.lost.store(true, Ordering::Release);
    }

    fn released(&self) {
        self.0.valid_until.store(0, Ordering::Release);
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The lease of this process, renewed in the background until `release`.
/// Dropping it without `release` releases it too, best effort.
pub struct NodeLease {
    status: LeaseStatus,
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

impl NodeLease {
    /// Takes this process's `NODE_ID` and starts renewing it; an error if a
    /// live process holds it or the database cannot be reached.
    pub async fn acquire(settings: LeaseSettings) -> Result<NodeLease, LeaseError> {
        describe_metrics();
        let node_id = settings.node_id.clone();
        let status = LeaseStatus::new();
        let heartbeat = Heartbeat::new(settings, status.clone());
        let (acquired_tx, acquired_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("interviewd-lease".into())
            .spawn(move || heartbeat.run_thread(acquired_tx, stop_rx))
            .map_err(|e| unavailable(&node_id, format!("starting the lease thread: {e}")))?;
        match acquired_rx.await {
            Ok(Ok(())) => Ok(NodeLease {
                status,
                stop: Some(stop_tx),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(unavailable(&node_id, "the lease thread stopped".into())),
        }
    }

    pub fn status(&self) -> LeaseStatus {
        self.status.clone()
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

/// The `nodes` row as `ACQUIRE` returns it.
#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
}

/// The `nodes` row as `HOLDER` returns it.
#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    address: Option<String>,
    #[diesel(sql_type = BigInt)]
    remaining_ms: i64,
}

/// The lease thread: takes the lease, then renews it until told to stop.
struct Heartbeat {
    settings: LeaseSettings,
    incarnation: String,
    conn: Option<AsyncPgConnection>,
    status: LeaseStatus,
    /// Failures since the last successful renewal.
    failures: u32,
    /// The lapse of the lease has been logged.
    lapse_logged: bool,
}

impl Heartbeat {
    fn new(settings: LeaseSettings, status: LeaseStatus) -> Heartbeat {
        Heartbeat {
            settings,
            incarnation: uuid::Uuid::new_v4().to_string(),
            conn: None,
            status,
            failures: 0,
            lapse_logged: false,
        }
    }

    /// Body of the lease thread: a runtime of its own, so nothing else that
    /// runs in the process can delay a renewal.
    fn run_thread(
        mut self,
        acquired: oneshot::Sender<Result<(), LeaseError>>,
        stop: oneshot::Receiver<oneshot::Sender<()>>,
    ) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let reason = format!("starting its runtime: {e}");
                let _ = acquired.send(Err(unavailable(&self.settings.node_id, reason)));
                return;
            }
        };
        runtime.block_on(async move {
            let taken = self.acquire().await;
            let ok = taken.is_ok();
            // `serve` waits for this answer; if it has gone, so has the process.
            let _ = acquired.send(taken);
            if ok {
                self.beat_until(stop).await;
            }
        });
    }

    fn ttl_ms(&self) -> f64 {
        self.settings.ttl.as_secs_f64() * 1000.0
    }

    /// The lease's own connection, opened (again) when there is none.
    async fn connection(&mut self) -> Result<&mut AsyncPgConnection, String> {
        if self.conn.is_none() {
            let url = self.settings.database_url.clone();
            let conn = tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(&url))
                .await
                .map_err(|_| {
                    format!(
                        "PostgreSQL did not answer within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )
                })?
                .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| "no PostgreSQL connection".to_string())
    }

    /// The one `INSERT … ON CONFLICT … WHERE expired` statement; when it
    /// returns nothing, who holds the identity.
    async fn acquire(&mut self) -> Result<(), LeaseError> {
        let (node_id, incarnation, ttl_ms) = (
            self.settings.node_id.clone(),
            self.incarnation.clone(),
            self.ttl_ms(),
        );
        let address = self.settings.address.clone();
        let sent = Instant::now();
        let conn = self
            .connection()
            .await
            .map_err(|reason| unavailable(&node_id, reason))?;
        let taken: Option<Acquired> = diesel::sql_query(ACQUIRE)
            .bind::<Text, _>(&node_id)
            .bind::<Text, _>(&incarnation)
            .bind::<Double, _>(ttl_ms)
            .bind::<Nullable<Text>, _>(address)
            .get_result(conn)
            .await
            .map(Some)
            .or_else(|e| match e {
                diesel::result::Error::NotFound => Ok(None),
                e => Err(unavailable(&node_id, e.to_string())),
            })?;
        if let Some(row) = taken {
            self.status.renewed(sent, self.settings.ttl);
            metrics::gauge!("interviewd_node_lease_valid").set(1.0);
            metrics::counter!("interviewd_node_lease_lost_total").increment(0);
            tracing::info!(
                node = %node_id,
                incarnation = %incarnation,
                expires_at = %row.expires_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                ttl_ms = self.settings.ttl.as_millis() as u64,
                heartbeat_ms = self.settings.heartbeat.as_millis() as u64,
                "node lease taken"
            );
            return Ok(());
        }
        let holder: Option<Holder> = diesel::sql_query(HOLDER)
            .bind::<Text, _>(&node_id)
            .get_result(conn)
            .await
            .map(Some)
            .or_else(|e| match e {
                diesel::result::Error::NotFound => Ok(None),
                e => Err(unavailable(&node_id, e.to_string())),
            })?;
        match holder {
            Some(holder) => Err(LeaseError::Held {
                node_id,
                expires_at: holder.expires_at,
                remaining: Duration::from_millis(u64::try_from(holder.remaining_ms).unwrap_or(0)),
                address: holder.address,
            }),
            None => Err(unavailable(
                &node_id,
                "its row vanished while it was being taken; try again".into(),
            )),
        }
    }

    /// Renews every `NODE_HEARTBEAT_MS` until `stop` says so (or its sender
    /// is dropped), then releases.
    async fn beat_until(&mut self, mut stop: oneshot::Receiver<oneshot::Sender<()>>) {
        let mut tick = tokio::time::interval(self.settings.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; the lease was just taken.
        tick.tick().await;
        loop {
            tokio::select! {
                biased;
                done = &mut stop => {
                    self.release().await;
                    if let Ok(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
                _ = tick.tick() => {}
            }
            if self.status.state() == LeaseState::Lost {
                // Nothing left to renew: the identity is someone else's.
                continue;
            }
            self.renew().await;
            let held = self.status.state() == LeaseState::Held;
            metrics::gauge!("interviewd_node_lease_valid").set(if held { 1.0 } else { 0.0 });
        }
    }

    /// One renewal, bounded so a stuck connection is replaced in time to
    /// try again before the lease runs out.
    async fn renew(&mut self) {
        let settings = &self.settings;
        let attempt = settings
            .ttl
            .saturating_sub(settings.heartbeat)
            .max(settings.heartbeat);
        let sent = Instant::now();
        let renewed = match tokio::time::timeout(attempt, self.renew_once()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "PostgreSQL did not answer within {} ms",
                attempt.as_millis()
            )),
        };
        match renewed {
            Ok(0) => {
                self.status.lose();
                metrics::counter!("interviewd_node_lease_lost_total").increment(1);
                tracing::error!(
                    node = %self.settings.node_id,
                    "node lease lost: another process took NODE_ID after this one's lease \
                     expired; this process no longer holds its identity"
                );
            }
            Ok(_) => {
                self.status.renewed(sent, self.settings.ttl);
                if self.failures > 0 {
                    tracing::info!(
                        node = %self.settings.node_id,
                        failures = self.failures,
                        "node lease renewed again"
                    );
                }
                self.failures = 0;
                self.lapse_logged = false;
            }
            Err(reason) => {
                // The connection may be broken or mid-statement: a new one next time.
                self.conn = None;
                self.failures += 1;
                if self.failures == 1 {
                    tracing::warn!(
                        node = %self.settings.node_id,
                        error = %reason,
                        "node lease renewal failed; retrying every NODE_HEARTBEAT_MS"
                    );
                }
                if self.status.state() == LeaseState::Expired && !self.lapse_logged {
                    self.lapse_logged = true;
                    tracing::error!(
                        node = %self.settings.node_id,
                        error = %reason,
                        failures = self.failures,
                        "node lease expired: renewals have failed for NODE_LEASE_TTL_MS; \
                         another process may take NODE_ID"
                    );
                }
            }
        }
    }

    async fn renew_once(&mut self) -> Result<usize, String> {
        let (node_id, incarnation, ttl_ms) = (
            self.settings.node_id.clone(),
            self.incarnation.clone(),
            self.ttl_ms(),
        );
        let conn = self.connection().await?;
        diesel::sql_query(RENEW)
            .bind::<Text, _>(node_id)
            .bind::<Text, _>(incarnation)
            .bind::<Double, _>(ttl_ms)
            .execute(conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// Ends the lease now, unless it was lost; best effort and bounded.
    async fn release(&mut self) {
        let was = self.status.state();
        self.status.released();
        metrics::gauge!("interviewd_node_lease_valid").set(0.0);
        if was == LeaseState::Lost {
            return;
        }
        let (node_id, incarnation) = (self.settings.node_id.clone(), self.incarnation.clone());
        let released = tokio::time::timeout(RELEASE_TIMEOUT, async {
            let conn = self.connection().await?;
            diesel::sql_query(RELEASE)
                .bind::<Text, _>(&node_id)
                .bind::<Text, _>(&incarnation)
                .execute(conn)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        match released {
            Ok(Ok(_)) => tracing::info!(node = %node_id, "node lease released"),
            Ok(Err(e)) => {
                tracing::warn!(node = %node_id, error = %e, "node lease not released; it expires on its own")
            }
            Err(_) => tracing::warn!(
                node = %node_id,
                "node lease not released in time; it expires on its own"
            ),
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
