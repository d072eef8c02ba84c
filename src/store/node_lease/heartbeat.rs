//! The lease thread: takes the `nodes` row with one statement, renews it
//! every `NODE_HEARTBEAT_MS`, and releases it when told to stop. It has a
//! runtime and a PostgreSQL connection of its own, reopened after any
//! failure, so neither the store's pool nor actix's workers can delay a
//! renewal.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::oneshot;

use super::{unavailable, LeaseError, LeaseSettings, LeaseState, LeaseStatus};
use super::{CONNECT_TIMEOUT, RELEASE_TIMEOUT};

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
pub(super) struct Heartbeat {
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
    pub(super) fn new(
        settings: LeaseSettings,
        incarnation: uuid::Uuid,
        status: LeaseStatus,
    ) -> Heartbeat {
        Heartbeat {
            settings,
            incarnation: incarnation.to_string(),
            conn: None,
            status,
            failures: 0,
            lapse_logged: false,
        }
    }

    /// Body of the lease thread: a runtime of its own, so nothing else that
    /// runs in the process can delay a renewal.
    pub(super) fn run_thread(
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
            .optional()
            .map_err(|e| unavailable(&node_id, e.to_string()))?;
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
            .optional()
            .map_err(|e| unavailable(&node_id, e.to_string()))?;
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
