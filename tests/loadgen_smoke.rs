//! The load generator's smallest size of every scenario, in-process against
//! the real server binary (which each scenario starts on port 0 with its
//! own SQLite file). A smoke test: each must finish and report 0 duplicates
//! and 0 gaps. No timing thresholds: benchmarks measure, tests assert
//! behaviour (docs/benchmarks.md has the figures).

use loadgen::hostile::HostileParams;
use loadgen::scenario::{
    self, ActiveParams, Common, DormantParams, IdleParams, SoakParams, StormParams,
};
use loadgen::{Report, ServerOpts};

fn common() -> Common {
    Common {
        server: ServerOpts {
            bin: Some(env!("CARGO_BIN_EXE_interviewd").into()),
            ..ServerOpts::default()
        },
        concurrency: 32,
        // This test binary cannot serve as a worker process; the smallest
        // sizes fit in one.
        processes: Some(1),
        worker_exe: None,
        verbose: true,
    }
}

fn check(report: &Report) {
    println!("{}", report.table());
    let c = &report.checks;
    assert!(
        c.finished,
        "{} did not finish: {:?}",
        report.scenario, report.notes
    );
    assert_eq!(c.duplicates, 0, "{}: duplicates", report.scenario);
    assert_eq!(c.gaps, 0, "{}: gaps", report.scenario);
    assert_eq!(
        c.connect_failures, 0,
        "{}: connect failures",
        report.scenario
    );
}

fn small_active() -> ActiveParams {
    ActiveParams {
        interviews: 4,
        observers: 2,
        questions: 20,
        warmup_s: 1,
        duration_s: 3,
        think_ms: 400,
        think_spread_ms: 200,
        word_delay_ms: 5,
        heartbeat_ms: 500,
        proctor_every_ms: 700,
        ..ActiveParams::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_smallest() {
    let report = scenario::idle(
        &common(),
        &IdleParams {
            interviews: 10,
            observers: 1,
            heartbeat_ms: 300,
            hold_s: 1,
            questions: 3,
        },
    )
    .await
    .expect("idle runs");
    check(&report);
    assert!(report
        .figure("per idle interview all-in (0 to N)")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_smallest() {
    let report = scenario::active(&common(), &small_active())
        .await
        .expect("active runs");
    check(&report);
    let fanout = report
        .figure("fan-out: session ts to observer")
        .and_then(|f| f.latency)
        .expect("a fan-out figure");
    assert!(fanout.count > 0, "observers received session events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_smallest_with_llm_fake() {
    let report = scenario::active(
        &common(),
        &ActiveParams {
            llm_rate: Some(200.0),
            llm_tokens: 20,
            ..small_active()
        },
    )
    .await
    .expect("active with the LLM fake runs");
    check(&report);
    let relay = report
        .figure("token relay: LLM fake write to receipt")
        .and_then(|f| f.latency)
        .expect("a relay figure");
    assert!(relay.count > 0, "tokens from the LLM fake reached clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_smallest() {
    let report = scenario::storm(
        &common(),
        &StormParams {
            active: ActiveParams {
                duration_s: 2,
                ..small_active()
            },
            after_s: 2,
            timeout_s: 60,
        },
    )
    .await
    .expect("storm runs");
    check(&report);
    let live = report
        .figure("storm: clients live again")
        .and_then(|f| f.value)
        .expect("a storm figure");
    assert_eq!(live, 12.0, "every client rejoined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dormant_smallest() {
    let report = scenario::dormant(
        &common(),
        &DormantParams {
            interviews: 20,
            reactivate: 5,
            questions: 3,
            start: true,
            start_all: false,
            passivate_ms: 500,
            timeout_s: 60,
        },
    )
    .await
    .expect("dormant runs");
    check(&report);
    assert_eq!(
        report
            .figure("sessions live after re-activation")
            .and_then(|f| f.value),
        Some(5.0)
    );
}

/// The soak in a few seconds: two honest interviews before, during and
/// after one client of every hostile kind. Only that it runs and the honest
/// clients see every event once; what the server does about each attack is
/// counted, not asserted (tests/hostile_frames.rs asserts that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_smallest() {
    let mut p = SoakParams::for_duration(4);
    p.honest = ActiveParams {
        interviews: 2,
        observers: 1,
        warmup_s: 1,
        ..small_active()
    };
    p.hostile = HostileParams {
        huge_header: 1,
        huge_header_mib: 4,
        over_max_frame: 1,
        ping_flood: 1,
        ping_flood_rate: 2000,
        proctor_flood: 1,
        one_token_sockets: 8,
        stalled_observers: 1,
        invalid_utf8: 1,
        slowloris: 2,
        ..HostileParams::default()
    };
    let report = scenario::soak(&common(), &p).await.expect("soak runs");
    check(&report);
    let phases = report.details["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 3, "before, hostile, after");
    let hostile = report.details["hostile"]
        .as_array()
        .expect("hostile clients");
    for kind in hostile {
        assert!(
            kind["connections"].as_u64().unwrap_or(0) > 0,
            "{} connected at least once: {kind}",
            kind["kind"]
        );
    }
}
