//! Interviewers behind the `Interviewer` port: the built-in scripted one
//! (the default) and any OpenAI-compatible model (`openai`), with speech to
//! text (`stt`) and question audio (`tts`) from the same kind of provider.

// Until `app.rs` wires the model adapters in, the binary does not use them
// (the tests do). Remove the `cfg_attr`s with the wiring.
#[cfg_attr(not(test), allow(dead_code))]
pub mod openai;
#[cfg_attr(not(test), allow(dead_code))]
pub mod prompts;
#[cfg_attr(not(test), allow(dead_code))]
pub mod provider;
pub mod scripted;
#[cfg_attr(not(test), allow(dead_code))]
pub mod sse;
#[cfg_attr(not(test), allow(dead_code))]
pub mod stt;
#[cfg_attr(not(test), allow(dead_code))]
pub mod tts;
#[cfg_attr(not(test), allow(dead_code))]
pub mod verdict;

/// The fake OpenAI-compatible provider the tests talk to (also included by
/// the black-box tests, tests/llm_fake/mod.rs).
#[cfg(test)]
#[allow(dead_code)]
pub mod fake_provider;
#[cfg(test)]
mod tests;
