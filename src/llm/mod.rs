//! Interviewers behind the `Interviewer` port: the built-in scripted one
//! (the default) and, later, any OpenAI-compatible model.

pub mod scripted;
