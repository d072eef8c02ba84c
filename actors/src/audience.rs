//! Who may see what of an interview (PROTOCOL section 5): the one rule.
//!
//! The socket's fan-out and replay, the store's audience column and every
//! REST read ask this module, so a candidate can never read over HTTP what
//! its socket hides from it, and a new observer-only event is hidden
//! everywhere by changing one match.

use crate::event::Event;

/// Who an event is fanned out to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    All,
    Observers,
}

/// Who is looking: the interview's candidate, or a recruiter or admin
/// observing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Candidate,
    Observer,
}

impl Event {
    /// Who may see this event. Proctoring and presence are the recruiter's
    /// business: showing them to the candidate would coach the cheating
    /// they are there to catch.
    pub fn audience(&self) -> Audience {
        match self {
            Event::CandidateJoined { .. }
            | Event::ProctorAlert { .. }
            | Event::TrustScoreUpdate { .. }
            | Event::InterviewInterrupted { .. } => Audience::Observers,
            _ => Audience::All,
        }
    }
}

impl Viewer {
    pub fn sees(self, audience: Audience) -> bool {
        match self {
            Viewer::Observer => true,
            Viewer::Candidate => audience == Audience::All,
        }
    }

    pub fn sees_event(self, event: &Event) -> bool {
        self.sees(event.audience())
    }

    /// The trust score, if this viewer may see it. It is exactly what a
    /// `trust-score-update` carries, so it is shown to whoever sees that
    /// event: a snapshot or a row never tells more than the log would.
    pub fn trust_score(self, score: u8) -> Option<u8> {
        self.sees_event(&Event::TrustScoreUpdate { trust_score: score })
            .then_some(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ProctorKind, Severity};

    #[test]
    fn candidates_see_neither_proctoring_nor_the_trust_score() {
        let alert = Event::ProctorAlert {
            kind: ProctorKind::TabSwitch,
            severity: Severity::High,
            message: "left".into(),
        };
        assert!(!Viewer::Candidate.sees_event(&alert));
        assert!(Viewer::Observer.sees_event(&alert));
        assert!(Viewer::Candidate.sees_event(&Event::AiThinking {}));
        assert_eq!(Viewer::Candidate.trust_score(80), None);
        assert_eq!(Viewer::Observer.trust_score(80), Some(80));
    }
}
