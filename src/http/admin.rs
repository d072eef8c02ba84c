//! Operator and service routes: live session actors, socket counts, and
//! pushing a notification to one principal's open sockets.

use actix_web::{web, HttpResponse};
use interview_actors::protocol::rfc3339;
use interview_actors::rooms::{CountSockets, Notify, Principal};
use interview_actors::supervisor::{CrashSession, InspectOne, ListSessions, Stats};
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::Caller;
use super::error::{json_error, ApiError, JSON_LIMIT};
use super::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(JSON_LIMIT)
            .error_handler(json_error),
    )
    .route("/v1/admin/sessions", web::get().to(sessions))
    .route("/v1/admin/sessions/{id}", web::get().to(session))
    .route("/v1/admin/sessions/{id}/crash", web::post().to(crash))
    .route("/v1/websocket/stats", web::get().to(stats))
    .route("/v1/notifications", web::post().to(notify));
}

fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Admin => Ok(()),
        _ => Err(ApiError::denied("admins only")),
    }
}

fn actors_away() -> ApiError {
    ApiError::internal("the session supervisor did not answer")
}

/// `GET /v1/admin/sessions`: every live session actor.
async fn sessions(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    admin_only(&caller)?;
    let mut sessions = state
        .supervisor
        .send(ListSessions)
        .await
        .map_err(|_| actors_away())?;
    sessions.sort_by_key(|s| std::cmp::Reverse(s.age_ms));
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions })))
}

/// `GET /v1/admin/sessions/{id}`: one live session actor, by interview id.
async fn session(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&caller)?;
    let info = state
        .supervisor
        .send(InspectOne {
            interview_id: id.into_inner(),
        })
        .await
        .map_err(|_| actors_away())?
        .ok_or_else(|| ApiError::not_found("no live session for this interview"))?;
    Ok(HttpResponse::Ok().json(info))
}

/// `POST /v1/admin/sessions/{id}/crash` (only with `CHAOS_HOOKS=1`): the
/// session panics; the supervisor rebuilds it from the database and its
/// sockets reconnect and replay. Proves the restart path on a live server.
async fn crash(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.chaos_hooks {
        return Err(ApiError::not_found("chaos hooks are off"));
    }
    admin_only(&caller)?;
    let crashed = state
        .supervisor
        .send(CrashSession {
            interview_id: id.into_inner(),
        })
        .await
        .map_err(|_| actors_away())?;
    if !crashed {
        return Err(ApiError::not_found("no live session for this interview"));
    }
    Ok(HttpResponse::Accepted().json(json!({ "crashed": true })))
}

/// `GET /v1/websocket/stats`: `{connected, sessions, timestamp}`.
async fn stats(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    admin_only(&caller)?;
    let connected = state
        .rooms
        .send(CountSockets)
        .await
        .map_err(|_| actors_away())?;
    let supervisor = state
        .supervisor
        .send(Stats)
        .await
        .map_err(|_| actors_away())?;
    Ok(HttpResponse::Ok().json(json!({
        "connected": connected,
        "sessions": supervisor.sessions,
        "timestamp": rfc3339(chrono::Utc::now()),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotifyBody {
    user_id: String,
    role: Option<String>,
    org_id: Option<String>,
    interview_id: Option<String>,
    event: String,
    #[serde(default)]
    payload: Value,
}

/// The principal a body names: `userId` within `role` and its tenant
/// (`orgId` for recruiters, `interviewId` for candidates). Nothing is
/// guessed: a `userId` alone could be anyone's, in any organisation.
fn principal(body: &NotifyBody) -> Result<Principal, ApiError> {
    let given = |field: &Option<String>| {
        field
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let sub = body.user_id.trim();
    if sub.is_empty() {
        return Err(ApiError::invalid("`userId` is required"));
    }
    let sub = sub.to_owned();
    let (org_id, interview_id) = (given(&body.org_id), given(&body.interview_id));
    let role = given(&body.role).ok_or_else(|| {
        ApiError::invalid(
            "`role` is required (candidate, recruiter, admin or service): \
             a userId names someone only within a role and its organisation",
        )
    })?;
    let not_for =
        |field: &str| ApiError::invalid(format!("`{field}` does not apply to role {role}"));
    match role.as_str() {
        "recruiter" => {
            if interview_id.is_some() {
                return Err(not_for("interviewId"));
            }
            let org_id = org_id
                .ok_or_else(|| ApiError::invalid("`orgId` is required for role recruiter"))?;
            Ok(Principal::Recruiter { org_id, sub })
        }
        "candidate" => {
            if org_id.is_some() {
                return Err(ApiError::invalid(
                    "`orgId` does not apply to role candidate: name the interview its \
                     join token is for (`interviewId`), which belongs to one organisation",
                ));
            }
            let interview_id = interview_id
                .ok_or_else(|| ApiError::invalid("`interviewId` is required for role candidate"))?;
            Ok(Principal::Candidate { interview_id, sub })
        }
        "admin" | "service" => {
            if org_id.is_some() {
                return Err(not_for("orgId"));
            }
            if interview_id.is_some() {
                return Err(not_for("interviewId"));
            }
            Ok(if role == "admin" {
                Principal::Admin { sub }
            } else {
                Principal::Service { sub }
            })
        }
        other => Err(ApiError::invalid(format!(
            "unknown role {other:?}: expected candidate, recruiter, admin or service"
        ))),
    }
}

/// `POST /v1/notifications`: push `{event, payload}` (a `notification`
/// frame) to every open socket of one principal. Admins and backend
/// services only.
async fn notify(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NotifyBody>,
) -> Result<HttpResponse, ApiError> {
    if !matches!(caller, Caller::Admin | Caller::Service) {
        return Err(ApiError::denied("admins and services only"));
    }
    let body = body.into_inner();
    let principal = principal(&body)?;
    let event_ok = !body.event.is_empty()
        && body.event.len() <= 64
        && body
            .event
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == ':');
    if !event_ok {
        return Err(ApiError::invalid(
            "`event` must be 1-64 characters of letters, digits, - _ . :",
        ));
    }
    let payload = match body.payload {
        Value::Null => json!({}),
        Value::Object(map) => Value::Object(map),
        _ => return Err(ApiError::invalid("`payload` must be an object")),
    };
    let delivered = state
        .rooms
        .send(Notify {
            principal,
            event: body.event,
            payload,
        })
        .await
        .map_err(|_| actors_away())?;
    Ok(HttpResponse::Accepted().json(json!({ "delivered": delivered })))
}
