//! Wiring: the store, the interviewer, the supervisor and the HTTP server.

use std::{sync::Arc, time::Duration};

use actix::Actor;
use actix_web::{web, App, HttpServer};
use interview_actors::ports::{
    Interviewer, Ownership, QuestionVoice, SoleOwner, SystemClock, Transcriber,
};
use interview_actors::protocol::{close, Role};
use interview_actors::rooms::{CloseAll, UserRooms};
use interview_actors::settings::RuntimeSettings;
use interview_actors::socket::limits::{SocketCaps, SocketLimits};
use interview_actors::supervisor::{Drain, SessionSupervisor};
use interview_actors::Runtime;

use crate::auth::{now_secs, Auth, Claims};
use crate::config::{Config, Mode};
use crate::http::{self, interviews::ArrivedOn, listener, ws::ConnectionPermit, AppState};
use crate::llm::openai::{LlmSettings, OpenAiInterviewer};
use crate::llm::scripted::ScriptedInterviewer;
use crate::llm::stt::{OpenAiTranscriber, SttSettings};
use crate::llm::tts::{serve_audio, AudioDir, OpenAiVoice, TtsSettings};
use crate::store::node_lease::{LeaseSettings, LeaseStatus, NodeLease};
use crate::store::{NewInterview, NodeOwnership, Store};

/// The runtime's limits and timers, from the configuration.
pub fn runtime_settings(config: &Config) -> RuntimeSettings {
    RuntimeSettings {
        heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms.max(10)),
        idle_passivate: Duration::from_millis(config.session_idle_passivate_ms),
        session_ttl: Duration::from_secs(config.session_ttl_secs),
        max_frame_bytes: config.max_frame_bytes,
        hard_frame_bytes: (1024 * 1024).max(config.max_frame_bytes),
        rate_per_sec: config.rate_limit_per_sec,
        rate_burst: config.rate_limit_burst,
        outbox_frames: config.outbox_frames,
        max_audio_bytes: config.max_audio_bytes,
        node_id: config.node_id.clone(),
        llm_timeout: Duration::from_millis(config.llm_timeout_ms.max(3)),
        db_outage_pause: Duration::from_millis(config.db_outage_pause_ms),
        proctor_per_min: config.proctor_events_per_min,
        proctor_burst: config.proctor_events_burst,
        max_interview_events: config.max_interview_events,
        max_interview_bytes: config.max_interview_bytes,
    }
}

fn scripted(config: &Config) -> Arc<dyn Interviewer> {
    Arc::new(ScriptedInterviewer::new(Duration::from_millis(
        config.scripted_word_delay_ms,
    )))
}

/// The socket caps, the process's one read from its descriptor limit.
fn socket_limits(config: &Config) -> anyhow::Result<Arc<SocketLimits>> {
    let nofile = crate::fd_limit::raise()?;
    let total = crate::fd_limit::total_sockets(config.max_sockets, nofile.soft);
    tracing::info!(
        rlimit_nofile = nofile.soft,
        max_sockets = total,
        per_address = config.max_sockets_per_address,
        per_token = config.max_sockets_per_token,
        "socket limits"
    );
    Ok(SocketLimits::new(SocketCaps {
        per_address: config.max_sockets_per_address,
        total,
    }))
}

/// The model interviewer when `LLM_BASE_URL` is set, else the scripted one.
fn interviewer(config: &Config) -> anyhow::Result<Arc<dyn Interviewer>> {
    let Some(mut settings) = LlmSettings::from_config(config) else {
        return Ok(scripted(config));
    };
    settings.history_budget_chars = config.llm_history_budget_chars;
    tracing::info!(model = %settings.model, "interviewer: OpenAI-compatible model");
    Ok(Arc::new(OpenAiInterviewer::new(settings)?))
}

fn transcriber(config: &Config) -> anyhow::Result<Option<Arc<dyn Transcriber>>> {
    let Some(settings) = SttSettings::from_config(config) else {
        return Ok(None);
    };
    Ok(Some(Arc::new(OpenAiTranscriber::new(settings)?)))
}

fn voice(config: &Config) -> anyhow::Result<Option<Arc<dyn QuestionVoice>>> {
    let dir = std::path::PathBuf::from(&config.tts_dir);
    let Some(settings) = TtsSettings::from_config(config, Some(dir)) else {
        return Ok(None);
    };
    Ok(Some(Arc::new(OpenAiVoice::new(settings)?)))
}

/// Runs the server until it is stopped.
///
/// Everything that can fail at start (the mode, secrets, sockets, database,
/// the node lease, providers, the dev banner) comes before the first actor
/// is started: an actor started and then dropped unrun, when `serve`
/// returns an error, panics inside actix, and a start error must stay one
/// line (`main`).
pub async fn serve(mut config: Config, dev: bool) -> anyhow::Result<()> {
    if dev && config.jwt_secret.is_none() {
        config.jwt_secret = Some(crate::auth::generate_secret());
    }
    for warning in config.check_secrets(dev)? {
        tracing::warn!("{warning}");
    }
    // REDIS_URL with SQLite stops here, before anything is bound or opened.
    let mode = config.mode()?;
    if let Mode::Postgres { redis: true } = mode {
        tracing::warn!(
            "REDIS_URL is set, but the Redis bus is not built yet: running as a single node"
        );
    }
    let auth = Auth::from_config(&config)?;
    // Sockets first: a taken port is reported before the database is touched.
    let public = listener::bind_public(&config.bind, config.port)?;
    let metrics_listener = config
        .metrics_bind
        .map(|addr| listener::bind_one(addr, "METRICS_BIND"))
        .transpose()?;
    let Some(addr) = public.first().and_then(|l| l.local_addr().ok()) else {
        anyhow::bail!("bound no address");
    };
    let listeners = Listeners {
        public,
        metrics: metrics_listener,
        addr,
    };
    let metrics = http::metrics::install()?;
    // Histogram samples pile up until upkeep drains them; do not wait for a
    // scrape that may never come.
    let upkeep = metrics.clone();
    actix_web::rt::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let store = Store::open(&config.database_url).await?;
    // After the migrations (they create `nodes`), before any actor: a
    // second live process with this NODE_ID stops here.
    let node_lease = if mode.holds_node_lease() {
        Some(NodeLease::acquire(lease_settings(&config, addr)).await?)
    } else {
        None
    };
    let lease_status = node_lease.as_ref().map(NodeLease::status);
    // With a node lease, interviews are owned in its name; without one this
    // process owns the whole database.
    let ownership: Arc<dyn Ownership> = match &node_lease {
        Some(lease) => Arc::new(NodeOwnership {
            store: store.clone(),
            node_id: config.node_id.clone(),
            incarnation: lease.incarnation(),
        }),
        None => Arc::new(SoleOwner),
    };
    let served = run(
        config,
        dev,
        auth,
        listeners,
        metrics,
        (store, ownership),
        lease_status,
    )
    .await;
    // After the drain: sessions are paused and committed, so the identity
    // can go; a restart with this NODE_ID then starts at once.
    if let Some(lease) = node_lease {
        lease.release().await;
    }
    served
}

/// The bound listeners: the public ones, `METRICS_BIND`'s, and the address
/// `listening on` reports.
struct Listeners {
    public: Vec<std::net::TcpListener>,
    metrics: Option<std::net::TcpListener>,
    addr: std::net::SocketAddr,
}

fn lease_settings(config: &Config, addr: std::net::SocketAddr) -> LeaseSettings {
    LeaseSettings {
        database_url: config.database_url.clone(),
        node_id: config.node_id.clone(),
        ttl: Duration::from_millis(config.node_lease_ttl_ms),
        heartbeat: Duration::from_millis(config.node_heartbeat_ms),
        address: Some(addr.to_string()),
    }
}

/// The rest of `serve`: the runtime, the actors and the HTTP server, until
/// the drain has finished.
async fn run(
    config: Config,
    dev: bool,
    auth: Auth,
    listeners: Listeners,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    (store, ownership): (Store, Arc<dyn Ownership>),
    node_lease: Option<LeaseStatus>,
) -> anyhow::Result<()> {
    let Listeners {
        public: listeners,
        metrics: metrics_listener,
        addr,
    } = listeners;
    let runtime = Runtime {
        store: Arc::new(store.clone()),
        ownership,
        interviewer: interviewer(&config)?,
        fallback: scripted(&config),
        transcriber: transcriber(&config)?,
        voice: voice(&config)?,
        clock: Arc::new(SystemClock),
        settings: Arc::new(runtime_settings(&config)),
    };
    let limits = socket_limits(&config)?;
    if dev {
        print_dev_banner(&config, &auth, &store, addr).await?;
    }
    let metrics_server = match metrics_listener {
        Some(l) => {
            let bound = l.local_addr()?;
            let server = http::metrics::open_server(l, metrics.clone())?;
            // Not "listening on": tests and scripts take that line for the
            // main port.
            println!("serving /metrics on {bound}");
            tracing::info!(%bound, "serving /metrics without a token on METRICS_BIND");
            Some(server)
        }
        None => None,
    };
    let supervisor = SessionSupervisor::new(runtime.clone()).start();
    let rooms = UserRooms::new(config.max_sockets_per_token).start();
    let (drain_supervisor, drain_rooms) = (supervisor.clone(), rooms.clone());
    let audio_dir = std::path::PathBuf::from(&config.tts_dir);
    let config = Arc::new(config);
    let state = AppState {
        config: config.clone(),
        auth: auth.clone(),
        store: store.clone(),
        supervisor,
        rooms,
        runtime,
        limits,
        node_lease,
    };
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(web::Data::new(metrics.clone()))
            .app_data(web::Data::new(AudioDir(audio_dir.clone())))
            .route("/v1/audio/{name}", web::get().to(serve_audio))
            .configure(http::configure)
    })
    // Real-time frames must not wait for Nagle's algorithm and a delayed ACK
    // (measured: 40 ms on the first token of every message without this).
    // The local address is kept for `wsUrl` (never the client's Host header).
    // Each connection also gets an empty place for a socket permit, so the
    // permit lives as long as the connection and its descriptor.
    .on_connect(|connection, data| {
        data.insert(ConnectionPermit::default());
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let _ = tcp.set_nodelay(true);
            if let Ok(local) = tcp.local_addr() {
                data.insert(ArrivedOn(local));
            }
        }
    })
    .disable_signals()
    .shutdown_timeout(config.drain_timeout_ms.div_ceil(1000).max(1));
    for l in listeners {
        server = server.listen(l)?;
    }
    // Before the line below: a SIGTERM right after it must drain, not kill.
    let shutdown = shutdown_signal();
    // Tests and scripts read this exact line to find the port.
    println!("listening on {addr}");
    tracing::info!(%addr, node = %config.node_id, "listening on {addr}");
    let server = server.run();
    let handle = server.handle();
    let metrics_handle = metrics_server.map(|server| {
        let handle = server.handle();
        actix_web::rt::spawn(server);
        handle
    });
    let drain_timeout = Duration::from_millis(config.drain_timeout_ms);
    actix_web::rt::spawn(async move {
        shutdown.await;
        tracing::info!("draining: pausing interviews, closing sockets with 1012");
        handle.pause().await;
        let drain = async {
            let _ = drain_supervisor.send(Drain).await;
            drain_rooms.do_send(CloseAll {
                code: close::RESTARTING,
                reason: "server restarting".into(),
            });
            // Let the Close frames reach the clients.
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if tokio::time::timeout(drain_timeout, drain).await.is_err() {
            tracing::warn!("drain did not finish within DRAIN_TIMEOUT_MS; stopping anyway");
        }
        handle.stop(true).await;
    });
    server.await?;
    if let Some(handle) = metrics_handle {
        handle.stop(false).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when the future is first polled, so no signal between the two is lost
/// to the default action (which kills without a drain).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use actix_web::rt::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            return futures_util::future::Either::Left(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
        }
    }
    futures_util::future::Either::Right(async {
        let _ = actix_web::rt::signal::ctrl_c().await;
    })
}

/// `serve --dev`: one demo interview and tokens to try it with.
async fn print_dev_banner(
    config: &Config,
    auth: &Auth,
    store: &Store,
    addr: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let demo = store
        .create_interview(NewInterview {
            org_id: "demo-org".into(),
            title: "Backend engineer".into(),
            candidate_name: "Ada".into(),
            candidate_id: "cand-ada".into(),
            questions: vec![
                (
                    "Tell me about a system you built that you are proud of.".into(),
                    "BEHAVIORAL".into(),
                ),
                (
                    "How would you design a rate limiter for a public API?".into(),
                    "TECHNICAL".into(),
                ),
                (
                    "A deploy doubled p99 latency. What do you do in the first hour?".into(),
                    "SITUATIONAL".into(),
                ),
            ],
            duration_minutes: 30,
        })
        .await?;
    let exp = now_secs() + 24 * 3600;
    let candidate = auth.issue(&Claims {
        sub: "cand-ada".into(),
        role: Role::Candidate,
        name: Some("Ada".into()),
        interview_id: Some(demo.id.clone()),
        org_id: None,
        exp,
        nbf: None,
        iss: None,
        aud: None,
    })?;
    let recruiter = auth.issue(&Claims {
        sub: "rec-grace".into(),
        role: Role::Recruiter,
        name: Some("Grace".into()),
        interview_id: None,
        org_id: Some("demo-org".into()),
        exp,
        nbf: None,
        iss: None,
        aud: None,
    })?;
    let host = if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    let _ = config;
    println!(
        "{}",
        crate::cli::dev_banner(&format!("http://{host}"), &demo.id, &candidate, &recruiter)
    );
    Ok(())
}
