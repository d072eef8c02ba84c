//! HS256 JWTs signed with the server's `JWT_SECRET` (PROTOCOL section 1).

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

/// The organisation every benchmark interview belongs to.
pub const ORG: &str = "org-bench";

#[derive(Clone)]
pub struct Tokens {
    key: EncodingKey,
}

fn exp() -> i64 {
    // Long enough for the longest run; tokens are minted once per client.
    chrono::Utc::now().timestamp() + 12 * 3600
}

impl Tokens {
    pub fn new(secret: &str) -> Tokens {
        Tokens {
            key: EncodingKey::from_secret(secret.as_bytes()),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        encode(&Header::default(), claims, &self.key).expect("HS256 signing cannot fail")
    }

    pub fn candidate(&self, interview_id: &str) -> String {
        self.sign(&json!({
            "sub": format!("cand-{interview_id}"), "role": "candidate", "name": "Ada",
            "interviewId": interview_id, "exp": exp(),
        }))
    }

    pub fn recruiter(&self, n: usize) -> String {
        self.sign(&json!({
            "sub": format!("rec-{n}"), "role": "recruiter", "name": "Rita",
            "orgId": ORG, "exp": exp(),
        }))
    }

    pub fn admin(&self) -> String {
        self.sign(&json!({"sub": "bench-admin", "role": "admin", "exp": exp()}))
    }
}
