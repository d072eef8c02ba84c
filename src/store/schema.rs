//! Diesel schema shared by both backends: only types SQLite and PostgreSQL
//! map alike (TEXT ids and JSON, `Timestamp` as UTC `NaiveDateTime`, BIGINT seq).

diesel::table! {
    interviews (id) {
        id -> Text,
        org_id -> Text,
        title -> Text,
        candidate_name -> Text,
        candidate_id -> Text,
        questions -> Text,
        duration_minutes -> Integer,
        status -> Text,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
        progress -> Text,
        trust_score -> Integer,
        summary -> Nullable<Text>,
        status_since -> Nullable<Timestamp>,
    }
}

diesel::table! {
    session_events (interview_id, seq) {
        interview_id -> Text,
        seq -> BigInt,
        #[sql_name = "type"]
        event_type -> Text,
        data -> Text,
        audience -> Text,
        ts -> Timestamp,
        epoch -> BigInt,
    }
}

diesel::table! {
    transcript_entries (interview_id, seq) {
        interview_id -> Text,
        seq -> BigInt,
        speaker -> Text,
        text -> Text,
        question_id -> Nullable<Text>,
        ts -> Timestamp,
    }
}

diesel::table! {
    proctor_events (interview_id, seq) {
        interview_id -> Text,
        seq -> BigInt,
        #[sql_name = "type"]
        kind -> Text,
        severity -> Text,
        message -> Text,
        ts -> Timestamp,
    }
}

diesel::table! {
    evaluations (interview_id, seq) {
        interview_id -> Text,
        seq -> BigInt,
        question_id -> Text,
        score -> Integer,
        next_action -> Text,
        source -> Text,
        data -> Text,
        ts -> Timestamp,
    }
}

diesel::table! {
    answer_audio (id) {
        id -> BigInt,
        interview_id -> Text,
        question_id -> Text,
        bytes -> Binary,
        ts -> Timestamp,
    }
}

diesel::joinable!(session_events -> interviews (interview_id));
diesel::joinable!(transcript_entries -> interviews (interview_id));
diesel::joinable!(proctor_events -> interviews (interview_id));
diesel::joinable!(evaluations -> interviews (interview_id));
diesel::joinable!(answer_audio -> interviews (interview_id));

diesel::allow_tables_to_appear_in_same_query!(
    interviews,
    session_events,
    transcript_entries,
    proctor_events,
    evaluations,
    answer_audio,
);
