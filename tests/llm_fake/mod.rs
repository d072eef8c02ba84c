//! The fake OpenAI-compatible provider, the very file the unit tests use
//! (`crate::llm::fake_provider` there), for black-box tests of the real server.

#![allow(dead_code)]

include!("provider.rs");
