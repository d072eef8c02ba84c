//! actix-web routes: the `/interview` WebSocket upgrade, the REST API,
//! health and readiness.

pub mod admin;
pub mod caller;
pub mod error;
pub mod health;
pub mod interviews;
pub mod listener;
pub mod metrics;
pub mod pages;
pub mod ws;

use std::sync::Arc;

use actix::Addr;
use actix_web::web;
use interview_actors::rooms::UserRooms;
use interview_actors::socket::limits::SocketLimits;
use interview_actors::supervisor::SessionSupervisor;
use interview_actors::Runtime;

use crate::store::node_lease::LeaseStatus;
use crate::{auth::Auth, config::Config, store::Store};

/// What every handler may reach. Sockets get only the runtime and the
/// supervisor; they never see the store.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub auth: Auth,
    pub store: Store,
    pub supervisor: Addr<SessionSupervisor>,
    pub rooms: Addr<UserRooms>,
    pub runtime: Runtime,
    /// Sockets per client address and in all, taken before an upgrade.
    pub limits: Arc<SocketLimits>,
    /// This process's node lease on PostgreSQL (`None` embedded): `/readyz`
    /// is not ready while it is not held.
    pub node_lease: Option<LeaseStatus>,
}

/// Every route of the server.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/interview", web::get().to(ws::interview_socket));
    health::configure(cfg);
    interviews::configure(cfg);
    admin::configure(cfg);
    metrics::configure(cfg);
    pages::configure(cfg);
}
