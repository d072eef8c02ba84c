//! `GET /metrics`: Prometheus text format. The runtime records through the
//! `metrics` facade (names in `interview_actors::metrics`); this installs the
//! Prometheus recorder once and renders it. Meant for a network-restricted
//! operator port or path; it carries no interview data.

use actix_web::{web, HttpResponse};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(render));
}

async fn render(handle: Option<web::Data<PrometheusHandle>>) -> HttpResponse {
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
