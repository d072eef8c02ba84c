//! The trust score: starts at 100 and is lowered by proctoring signals,
//! never below 0. Each signal costs its severity's points times its kind's
//! weight (rounded):
//!
//! | severity | points |   | kind | weight |
//! | --- | --- | --- | --- | --- |
//! | low | 2 | | multiple-voices | 1.5 |
//! | medium | 5 | | copy-paste | 1.2 |
//! | high | 10 | | face-detection, tab-switch | 1.0 |
//! | | | | fullscreen-exit | 0.8 |
//! | | | | other | 0.5 |

use crate::protocol::{ProctorKind, Severity};

pub fn penalty(kind: ProctorKind, severity: Severity) -> u8 {
    let points: f64 = match severity {
        Severity::Low => 2.0,
        Severity::Medium => 5.0,
        Severity::High => 10.0,
    };
    let weight = match kind {
        ProctorKind::MultipleVoices => 1.5,
        ProctorKind::CopyPaste => 1.2,
        ProctorKind::FaceDetection | ProctorKind::TabSwitch => 1.0,
        ProctorKind::FullscreenExit => 0.8,
        ProctorKind::Other => 0.5,
    };
    (points * weight).round() as u8
}

/// The score after one more signal.
pub fn lowered(score: u8, kind: ProctorKind, severity: Severity) -> u8 {
    score.saturating_sub(penalty(kind, severity)).min(100)
}

/// The alert text when the client sent none.
pub fn describe(kind: ProctorKind) -> &'static str {
    match kind {
        ProctorKind::FaceDetection => "Face not detected or more than one face",
        ProctorKind::TabSwitch => "Candidate switched tabs",
        ProctorKind::FullscreenExit => "Candidate left full screen",
        ProctorKind::MultipleVoices => "More than one voice heard",
        ProctorKind::CopyPaste => "Copy or paste in the answer field",
        ProctorKind::Other => "Proctoring signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_stays_in_range() {
        let mut s = 100;
        for _ in 0..50 {
            let next = lowered(s, ProctorKind::MultipleVoices, Severity::High);
            assert!(next <= s);
            s = next;
        }
        assert_eq!(s, 0);
        assert_eq!(penalty(ProctorKind::Other, Severity::Low), 1);
    }
}
