use super::*;

#[test]
fn events_round_trip_through_type_and_data() {
    let events = vec![
        Event::AiThinking {},
        Event::ProctorAlert {
            kind: ProctorKind::TabSwitch,
            severity: Severity::High,
            message: "left the tab".into(),
        },
        Event::InterviewPaused {
            reason: PauseReason::Disconnect,
        },
    ];
    for e in events {
        let back = Event::from_parts(e.type_name(), e.data()).unwrap();
        assert_eq!(back, e);
    }
    let logged = LoggedEvent::new(7, Utc::now(), Event::TrustScoreUpdate { trust_score: 90 });
    let v: Value = serde_json::from_str(&logged.frame).unwrap();
    assert_eq!(v["type"], "trust-score-update");
    assert_eq!(v["seq"], 7);
    assert_eq!(v["data"]["trustScore"], 90);
}
