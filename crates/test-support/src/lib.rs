//! Test harness shared by WOPR's crates.
//!
//! - [`FixtureServer`]: a tiny HTTP server on `127.0.0.1:0` that replays recorded responses (optionally
//!   in small chunks, or cut short) and records each request for assertions.
//! - [`LlamaServer`]: starts a real `llama-server` on a GGUF model for tests against a real LLM.
//! - [`Dockerd`]: a private Docker daemon (installing `docker.io` when missing) for sandbox and CLI tests.
//!
//! This crate is for tests only: it panics with a clear message instead of returning errors.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod dockerd;
mod fixture_server;
mod llama_server;

pub use dockerd::{Dockerd, ensure_packages};
pub use fixture_server::{FixtureServer, RecordedRequest, Reply};
pub use llama_server::LlamaServer;
