//! Who is calling an HTTP route, from `Authorization: Bearer …`: a JWT, or
//! the static `ADMIN_TOKEN`.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use interview_actors::audience::Viewer;
use interview_actors::ports::InterviewRecord;
use interview_actors::protocol::Role;

use super::error::ApiError;
use super::AppState;

/// Who is calling, from `Authorization: Bearer …`: a JWT, or the static
/// `ADMIN_TOKEN`. As an extractor placed first, it answers 401 before the
/// body is even looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Recruiter { org_id: String },
    Candidate { interview_id: String },
    Service,
}

impl Caller {
    pub fn from_request_parts(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
        let token = bearer_token(req)?;
        if is_admin_token(state.config.admin_token.as_deref(), token) {
            return Ok(Caller::Admin);
        }
        let claims = state
            .auth
            .verify(token)
            .map_err(|e| ApiError::unauthorized(e.to_string()))?;
        Ok(match claims.role {
            Role::Admin => Caller::Admin,
            Role::Service => Caller::Service,
            Role::Recruiter => Caller::Recruiter {
                org_id: claims
                    .org_id
                    .ok_or_else(|| ApiError::unauthorized("missing claim: orgId"))?,
            },
            Role::Candidate => Caller::Candidate {
                interview_id: claims
                    .interview_id
                    .ok_or_else(|| ApiError::unauthorized("missing claim: interviewId"))?,
            },
        })
    }

    /// Whose eyes the caller reads an interview with: its candidate sees
    /// over REST exactly what its socket shows it (`interview_actors::audience`);
    /// recruiters and admins see what observers see.
    pub fn viewer(&self) -> Viewer {
        match self {
            Caller::Candidate { .. } => Viewer::Candidate,
            Caller::Admin | Caller::Recruiter { .. } | Caller::Service => Viewer::Observer,
        }
    }

    /// Its recruiter organisation, an admin, or its own candidate.
    pub fn may_read(&self, record: &InterviewRecord) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Recruiter { org_id } => *org_id == record.org_id,
            Caller::Candidate { interview_id } => *interview_id == record.id,
            Caller::Service => false,
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(match req.app_data::<web::Data<AppState>>() {
            Some(state) => Caller::from_request_parts(req, state),
            None => Err(ApiError::internal("application state missing")),
        })
    }
}

/// The token of `Authorization: Bearer …`, or 401.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header"))
}

/// Whether `token` is the configured static `ADMIN_TOKEN`, compared in
/// constant time so response timing does not leak how much of it matched.
/// Never true when no admin token is configured.
pub fn is_admin_token(admin_token: Option<&str>, token: &str) -> bool {
    admin_token.is_some_and(|admin| {
        !admin.is_empty() && constant_time_eq(admin.as_bytes(), token.as_bytes())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
