//! `GET /metrics`: Prometheus text format. The runtime records through the
//! `metrics` facade (names in `interview_actors::metrics`); this installs the
//! Prometheus recorder once and renders it.
//!
//! It carries no interview data, but it tells anyone who can read it how
//! busy the server is and how it fails, so on the public listener it takes
//! `Authorization: Bearer <ADMIN_TOKEN>` (401 otherwise, and always when no
//! admin token is set). A scraper that cannot hold a secret scrapes the
//! listener of `METRICS_BIND` instead, which serves `/metrics` alone, with no
//! token, on an address the operator keeps private.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::caller::{bearer_token, is_admin_token};
use super::error::ApiError;
use super::AppState;

/// Latency buckets in seconds: sub-millisecond commits up to LLM turns.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Events per database batch.
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Installs the process-wide recorder.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)?
        .set_buckets_for_metric(Matcher::Full("interviewd_db_batch_events".into()), BATCH)?
        .install_recorder()?;
    interview_actors::metrics::describe();
    Ok(handle)
}

/// `/metrics` on the public listener: admin token only.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(guarded));
}

async fn guarded(
    req: HttpRequest,
    state: web::Data<AppState>,
    handle: Option<web::Data<PrometheusHandle>>,
) -> Result<HttpResponse, ApiError> {
    let refused = || ApiError::unauthorized("/metrics needs Authorization: Bearer <ADMIN_TOKEN>");
    let token = bearer_token(&req).map_err(|_| refused())?;
    if !is_admin_token(state.config.admin_token.as_deref(), token) {
        return Err(refused());
    }
    Ok(scrape(handle))
}

/// The `METRICS_BIND` listener: `/metrics` with no token and nothing else
/// (every other path is a 404), on one worker. Runs once awaited or spawned.
pub fn open_server(listener: TcpListener, handle: PrometheusHandle) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(handle.clone()))
            .route("/metrics", web::get().to(scrape_open))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

async fn scrape_open(handle: Option<web::Data<PrometheusHandle>>) -> HttpResponse {
    scrape(handle)
}

fn scrape(handle: Option<web::Data<PrometheusHandle>>) -> HttpResponse {
    let Some(handle) = handle else {
        return HttpResponse::NotFound().finish();
    };
    if let Some(bytes) = resident_memory_bytes() {
        metrics::gauge!("interviewd_process_resident_memory_bytes").set(bytes as f64);
    }
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
