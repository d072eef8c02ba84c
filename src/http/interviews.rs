//! The interviews REST API (PROTOCOL section 9): create an interview and read
//! its row, log and transcript. Reads come from the database, never from a
//! live session, so they work whether or not the interview's actor runs.
//! What a caller may see of them is the audience rule its socket follows
//! (`Caller::viewer`, `interview_actors::audience`): a candidate token never
//! reads over HTTP what the socket hides from the candidate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use interview_actors::audience::Viewer;
use interview_actors::ports::InterviewStatus;
use interview_actors::protocol::{rfc3339, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::Caller;
use super::error::{json_error, query_error, ApiError, JSON_LIMIT};
use super::AppState;
use crate::auth::{now_secs, Claims};
use crate::store::{is_valid_cursor, InterviewView, NewInterview};

const MAX_QUESTIONS: usize = 50;
const MAX_NAME_CHARS: usize = 200;
const MAX_QUESTION_CHARS: usize = 2_000;
const MAX_TYPE_CHARS: usize = 50;
const DEFAULT_DURATION_MINUTES: u32 = 30;
const MAX_DURATION_MINUTES: u32 = 24 * 60;
const EVENTS_DEFAULT_LIMIT: u32 = 100;
const EVENTS_MAX_LIMIT: u32 = 1_000;
const LIST_DEFAULT_LIMIT: u32 = 50;
const LIST_MAX_LIMIT: u32 = 200;
/// A join token lives at least this long, so an invitation can wait a week.
const MIN_JOIN_TOKEN_SECS: u64 = 7 * 24 * 3600;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(JSON_LIMIT)
            .error_handler(json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(query_error))
    .service(
        web::resource("/v1/interviews")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(web::resource("/v1/interviews/{id}").route(web::get().to(get_one)))
    .service(web::resource("/v1/interviews/{id}/events").route(web::get().to(events)))
    .service(web::resource("/v1/interviews/{id}/transcript").route(web::get().to(transcript)));
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    candidate_name: String,
    candidate_id: Option<String>,
    title: String,
    questions: Vec<QuestionBody>,
    duration_minutes: Option<u32>,
    org_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QuestionBody {
    text: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Checks a create body and turns it into what the store takes (org aside).
fn validate(body: CreateBody, org_id: String) -> Result<NewInterview, ApiError> {
    fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ApiError::invalid(format!("{field} must not be empty")));
        }
        if value.chars().count() > max {
            return Err(ApiError::invalid(format!(
                "{field} is over {max} characters"
            )));
        }
        Ok(value.to_owned())
    }
    if body.questions.is_empty() || body.questions.len() > MAX_QUESTIONS {
        return Err(ApiError::invalid(format!(
            "questions must hold 1 to {MAX_QUESTIONS} entries"
        )));
    }
    let duration = body.duration_minutes.unwrap_or(DEFAULT_DURATION_MINUTES);
    if !(1..=MAX_DURATION_MINUTES).contains(&duration) {
        return Err(ApiError::invalid(format!(
            "durationMinutes must be 1 to {MAX_DURATION_MINUTES}"
        )));
    }
    let questions = body
        .questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let kind = match q.kind.as_deref().map(str::trim) {
                None | Some("") => "GENERAL".to_owned(),
                Some(k) => text(&format!("questions[{i}].type"), k, MAX_TYPE_CHARS)?,
            };
            Ok((
                text(&format!("questions[{i}].text"), &q.text, MAX_QUESTION_CHARS)?,
                kind,
            ))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let candidate_id = match body.candidate_id.as_deref() {
        Some(id) => text("candidateId", id, MAX_NAME_CHARS)?,
        None => format!("cand-{}", uuid::Uuid::new_v4()),
    };
    Ok(NewInterview {
        org_id: text("orgId", &org_id, MAX_NAME_CHARS)?,
        title: text("title", &body.title, MAX_NAME_CHARS)?,
        candidate_name: text("candidateName", &body.candidate_name, MAX_NAME_CHARS)?,
        candidate_id,
        questions,
        duration_minutes: duration,
    })
}

/// `POST /v1/interviews`: 201 with the candidate's join token and socket URL.
async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Json<CreateBody>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let denied = || ApiError::denied("only recruiters and admins create interviews");
    // Who may create comes before what the body says: 403 beats 400.
    if !matches!(caller, Caller::Admin | Caller::Recruiter { .. }) {
        return Err(denied().into());
    }
    let mut body = body?.into_inner();
    let org_id = match &caller {
        Caller::Admin => body
            .org_id
            .take()
            .ok_or_else(|| ApiError::invalid("orgId is required for admins"))?,
        Caller::Recruiter { org_id } => match body.org_id.take() {
            Some(asked) if asked != *org_id => {
                return Err(ApiError::denied("orgId is not your organisation").into())
            }
            _ => org_id.clone(),
        },
        _ => return Err(denied().into()),
    };
    let new = validate(body, org_id)?;
    let record = state
        .store
        .create_interview(new)
        .await
        .map_err(ApiError::from)?;

    let lifetime = u64::from(record.duration_minutes) * 60 * 4;
    let claims = Claims {
        sub: record.candidate_id.clone(),
        role: Role::Candidate,
        name: Some(record.candidate_name.clone()),
        interview_id: Some(record.id.clone()),
        org_id: None,
        exp: now_secs() + lifetime.max(MIN_JOIN_TOKEN_SECS),
        nbf: None,
        iss: None,
        aud: None,
    };
    let token = state.auth.issue(&claims).map_err(|e| {
        tracing::error!(error = %e, "issuing a join token");
        ApiError::internal("could not issue a join token")
    })?;
    // Never the Host header or any other thing the client wrote: the URL
    // carries the join token, and a forged host would send it elsewhere.
    let arrived_on = req
        .conn_data::<ArrivedOn>()
        .map_or_else(|| req.app_config().local_addr(), |a| a.0);
    let base = ws_base(state.config.public_url.as_deref(), arrived_on);
    let ws_url = format!("{base}/interview?token={token}");
    Ok(HttpResponse::build(StatusCode::CREATED).json(json!({
        "id": record.id,
        "status": InterviewStatus::Pending,
        "joinToken": token,
        "wsUrl": ws_url,
    })))
}

/// The local address a connection arrived on (set in `on_connect`): where
/// `wsUrl` points when `PUBLIC_URL` is unset.
#[derive(Debug, Clone, Copy)]
pub struct ArrivedOn(pub SocketAddr);

/// `PUBLIC_URL` with http(s) turned into ws(s), else `ws://` + the address
/// the request arrived on (a wildcard becomes loopback).
fn ws_base(public_url: Option<&str>, arrived_on: SocketAddr) -> String {
    match public_url.map(|u| u.trim_end_matches('/')) {
        Some(u) if u.starts_with("https://") => u.replacen("https://", "wss://", 1),
        Some(u) if u.starts_with("http://") => u.replacen("http://", "ws://", 1),
        Some(u) if !u.is_empty() => u.to_owned(),
        _ => {
            let ip = match arrived_on.ip().to_canonical() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            format!("ws://{}", SocketAddr::new(ip, arrived_on.port()))
        }
    }
}

/// The interview if it exists (404) and the caller may read it (403).
async fn readable(caller: &Caller, state: &AppState, id: &str) -> Result<InterviewView, ApiError> {
    let view = state
        .store
        .interview_view(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no interview {id}")))?;
    if !caller.may_read(&view.record) {
        return Err(ApiError::denied("not your interview"));
    }
    Ok(view)
}

/// The row as `viewer` may see it: `trustScore` only for those who see
/// `trust-score-update` (not the candidate).
fn view_json(v: &InterviewView, viewer: Viewer) -> Value {
    let mut view = json!({
        "id": v.record.id,
        "title": v.record.title,
        "candidateName": v.record.candidate_name,
        "candidateId": v.record.candidate_id,
        "orgId": v.record.org_id,
        "status": v.row.status,
        "createdAt": rfc3339(v.record.created_at),
        "startedAt": v.row.started_at.map(rfc3339),
        "endedAt": v.row.ended_at.map(rfc3339),
        "progress": v.row.progress,
        "summary": v.row.summary,
        "lastSeq": v.row.last_seq,
    });
    if let (Some(score), Some(obj)) = (viewer.trust_score(v.row.trust_score), view.as_object_mut())
    {
        obj.insert("trustScore".into(), score.into());
    }
    view
}

/// `GET /v1/interviews/{id}`: the row, without `trustScore` for its candidate.
async fn get_one(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = readable(&caller, &state, &id).await?;
    Ok(HttpResponse::Ok().json(view_json(&view, caller.viewer())))
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

/// `GET /v1/interviews/{id}/events?after=N&limit=L`: the log after `N`;
/// candidates never see observer-only events.
async fn events(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    readable(&caller, &state, &id).await?;
    let after = query.after.unwrap_or(0);
    let limit = query
        .limit
        .unwrap_or(EVENTS_DEFAULT_LIMIT)
        .clamp(1, EVENTS_MAX_LIMIT);
    let events = state
        .store
        .events_after(&id, after, limit, caller.viewer())
        .await?;
    let next = events.last().map_or(after, |e| e.seq);
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "type": e.event.type_name(),
                "data": e.event.data(),
                "ts": rfc3339(e.ts),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "events": events, "next": next })))
}

/// `GET /v1/interviews/{id}/transcript`: the same for every reader, since
/// only events everyone sees make transcript entries.
async fn transcript(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    readable(&caller, &state, &id).await?;
    let entries: Vec<Value> = state
        .store
        .transcript(&id)
        .await?
        .into_iter()
        .map(|t| {
            let mut entry = json!({
                "seq": t.seq,
                "speaker": t.speaker,
                "text": t.text,
                "ts": rfc3339(t.ts),
            });
            if let (Some(q), Some(obj)) = (t.question_id, entry.as_object_mut()) {
                obj.insert("questionId".into(), Value::String(q));
            }
            entry
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "entries": entries })))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /v1/interviews`: newest first; recruiters see their organisation's.
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let org_id = match &caller {
        Caller::Admin => None,
        Caller::Recruiter { org_id } => Some(org_id.as_str()),
        _ => {
            return Err(ApiError::denied(
                "only recruiters and admins list interviews",
            ))
        }
    };
    let status = match query
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(s) => Some(
            InterviewStatus::parse(&s.to_ascii_uppercase())
                .ok_or_else(|| ApiError::invalid(format!("unknown status {s:?}")))?,
        ),
        None => None,
    };
    let cursor = query.cursor.as_deref().filter(|c| !c.is_empty());
    if cursor.is_some_and(|c| !is_valid_cursor(c)) {
        return Err(ApiError::invalid("invalid cursor"));
    }
    let limit = query
        .limit
        .unwrap_or(LIST_DEFAULT_LIMIT)
        .clamp(1, LIST_MAX_LIMIT);
    let (page, next) = state
        .store
        .list_interviews(org_id, status, limit, cursor)
        .await?;
    let interviews: Vec<Value> = page.iter().map(|v| view_json(v, caller.viewer())).collect();
    Ok(HttpResponse::Ok().json(json!({ "interviews": interviews, "nextCursor": next })))
}

#[cfg(test)]
#[path = "tests/interviews.rs"]
mod tests;
