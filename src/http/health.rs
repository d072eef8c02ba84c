//! Liveness and readiness for orchestrators: `/healthz` says the process
//! answers, `/readyz` that it can reach its database and, on PostgreSQL,
//! that it holds its node lease (a node whose lease has expired or was
//! taken must not be sent new interviews).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::AppState;
use crate::store::node_lease::LeaseState;

/// How long readiness waits for the database before calling it unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Timing out here is safe: the store runs the ping on its own runtime, so
/// abandoning the wait never cancels a query mid-flight.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unavailable");
            false
        }
        Err(_) => {
            tracing::warn!("readiness: database ping timed out");
            false
        }
    };
    let lease = state.node_lease.as_ref().map(|l| l.state());
    let ready = database && lease.is_none_or(|l| l == LeaseState::Held);
    let mut body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": if database { "ok" } else { "unavailable" },
    });
    if let (Some(lease), Value::Object(fields)) = (lease, &mut body) {
        fields.insert("nodeLease".into(), lease.as_str().into());
    }
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
