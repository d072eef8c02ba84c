//! The fake OpenAI-compatible provider, the very file the unit tests use
//! (src/llm/fake_provider.rs), for black-box tests of the real server.

#![allow(dead_code)]

include!("../../src/llm/fake_provider.rs");
