//! Interviewers behind the `Interviewer` port: the built-in scripted one
//! (the default) and any OpenAI-compatible model (`openai`), with speech to
//! text (`stt`) and question audio (`tts`) from the same kind of provider.

pub mod openai;
pub mod prompts;
pub mod provider;
pub mod scripted;
pub mod sse;
pub mod stt;
pub mod tts;
pub mod verdict;

/// The fake OpenAI-compatible provider the tests talk to, kept with the
/// black-box tests that include it too (tests/llm_fake/mod.rs).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/llm_fake/provider.rs"]
pub mod fake_provider;
#[cfg(test)]
mod tests;
