DROP TABLE answer_audio;
DROP TABLE evaluations;
DROP TABLE proctor_events;
DROP TABLE transcript_entries;
DROP TABLE session_events;
DROP TABLE interviews;
