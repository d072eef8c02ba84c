//! `GET /interview`: the one WebSocket endpoint for every role.
//!
//! Credentials come from `?token=` (browsers cannot set headers) or
//! `Authorization: Bearer`. Bad credentials still complete the upgrade and
//! are then closed with 4001, so browser clients see the code and stop
//! retrying; nothing else is sent to them.
//!
//! Before the upgrade a socket takes a place under the process's and its
//! address's caps (`SocketLimits`), or gets 429; the place is given back
//! when the TCP connection is gone.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use actix_ws::{CloseCode, CloseReason};
use futures_util::StreamExt;
use interview_actors::connection::ConnectionInfo;
use interview_actors::protocol::{close, ErrorCode, Role};
use interview_actors::socket::frames::FrameReader;
use interview_actors::socket::limits::{Refusal, SocketCaps, SocketPermit};
use interview_actors::socket::{CandidateSocket, ObserverSocket};
use serde::Deserialize;

use super::caller::bearer_token;
use super::error::ApiError;
use super::AppState;
use crate::auth::AuthError;

/// A connection's socket permit, kept in the connection's own data (see
/// `app::serve`'s `on_connect`) so it is dropped with the connection.
#[derive(Default)]
pub struct ConnectionPermit(RefCell<Option<SocketPermit>>);

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The bearer token of a request: query first, then the header.
pub fn request_token(req: &HttpRequest) -> Option<String> {
    let from_query = web::Query::<TokenQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().token)
        .filter(|t| !t.is_empty());
    from_query.or_else(|| bearer_token(req).ok().map(str::to_string))
}

pub async fn interview_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let limits = &state.limits;
    let address = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let permit = match limits.admit(address) {
        Ok(permit) => permit,
        Err(refusal) => return Ok(refused(refusal, limits.caps())),
    };
    match req.conn_data::<ConnectionPermit>() {
        Some(place) => *place.0.borrow_mut() = Some(permit),
        // `on_connect` gives every connection a place; without one nothing
        // lives as long as the connection to hold the permit.
        None => drop(permit),
    }
    let token = request_token(&req);
    let token_key = token.as_deref().map_or(0, |t| limits.token_key(t));
    let verdict = token
        .ok_or(AuthError::Missing)
        .and_then(|token| state.auth.verify(&token));
    // actix-ws would read the payload into a buffer of its own without
    // bound; the sockets read it through `FrameReader` instead, which caps
    // every message from its header. actix-ws only makes the handshake and
    // the writing half here.
    let payload = body.into_inner();
    let (response, session, _unread) = actix_ws::handle(&req, no_payload(&req)?)?;
    let stream = payload;
    let claims = match verdict {
        Ok(claims) => claims,
        Err(error) => {
            let reader = FrameReader::new(stream, state.runtime.settings.hard_frame_bytes);
            actix_web::rt::spawn(reject(session, reader, error.to_string()));
            return Ok(response);
        }
    };
    let info = ConnectionInfo {
        id: format!("c-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        user_id: claims.sub,
        name: claims.name,
        role: claims.role,
        org_id: claims.org_id,
        interview_id: claims.interview_id,
        token_key,
    };
    let runtime = state.runtime.clone();
    let supervisor = state.supervisor.clone();
    let rooms = state.rooms.clone();
    match info.role {
        Role::Candidate => {
            CandidateSocket::start(info, session, stream, supervisor, rooms, runtime);
        }
        Role::Recruiter | Role::Admin | Role::Service => {
            ObserverSocket::start(info, session, stream, supervisor, rooms, runtime);
        }
    }
    Ok(response)
}

/// 429 for an upgrade over a cap; the client may try again later. The
/// connection is closed after it, so a refused client holds no descriptor.
fn refused(refusal: Refusal, caps: SocketCaps) -> HttpResponse {
    let message = match refusal {
        Refusal::Address => format!(
            "too many sockets from this address (at most {})",
            caps.per_address
        ),
        Refusal::Total => format!("the server holds its most sockets ({})", caps.total),
    };
    let mut response = ApiError::new(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        message,
    )
    .error_response();
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    response
}

/// Closes an unauthenticated socket with 4001 and waits briefly for the
/// client's Close so the code reaches it.
async fn reject(session: actix_ws::Session, mut stream: FrameReader, reason: String) {
    let code = CloseReason {
        code: CloseCode::Other(close::UNAUTHORIZED),
        description: Some(reason),
    };
    let _ = session.close(Some(code)).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

/// An empty body for actix-ws, which wants one to build its own reader.
fn no_payload(req: &HttpRequest) -> Result<web::Payload, actix_web::Error> {
    use actix_web::FromRequest;
    web::Payload::from_request(req, &mut actix_web::dev::Payload::None).into_inner()
}
