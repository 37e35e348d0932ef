//! Both HTTP providers against a real `llama-server` on a real GGUF model: the OpenAI API at
//! `/v1/chat/completions` and the Anthropic API at `/v1/messages`, streaming.
//!
//! Needs `WOPR_LLAMA_SERVER` and `WOPR_TEST_MODEL`; `scripts/test` sets them. Without them these tests
//! fail rather than skip.

mod common;

use common::collect;
use test_support::LlamaServer;
use wopr_providers::{Anthropic, ChatMessage, ChatRequest, OpenAi, Provider, StopReason, StreamEvent};

fn short_question() -> ChatRequest {
    ChatRequest {
        system: "You are a helpful assistant.".into(),
        messages: vec![ChatMessage::user("What is the capital of France?")],
        max_tokens: 16,
        temperature: Some(0.0),
        ..Default::default()
    }
}

/// Checks a real streamed answer: some text, in more than one delta, then usage and one `Done`.
fn assert_real_answer(events: &[StreamEvent]) {
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let answer = deltas.concat();
    assert!(!answer.trim().is_empty(), "no answer text in {events:?}");
    assert!(deltas.len() > 1, "the answer was not streamed: {deltas:?}");
    let usage = events.iter().find_map(|e| match e {
        StreamEvent::Usage { usage } => Some(*usage),
        _ => None,
    });
    let usage = usage.unwrap_or_else(|| panic!("no usage in {events:?}"));
    assert!(usage.input_tokens > 0 && usage.output_tokens > 0 && usage.output_tokens <= 16, "{usage:?}");
    match events.last() {
        Some(StreamEvent::Done { stop_reason: StopReason::EndTurn | StopReason::MaxTokens }) => {}
        other => panic!("expected Done last, got {other:?}"),
    }
}

#[tokio::test]
async fn openai_provider_streams_a_real_answer_from_llama_server() {
    let server = LlamaServer::start();
    let provider = OpenAi::new("openai-compatible", format!("{}/v1", server.base_url()), None, None);
    let (events, error) = collect(provider.stream(short_question())).await;
    assert_eq!(error, None, "events before the error: {events:?}");
    assert_real_answer(&events);
    assert!(provider.model().ends_with(".gguf"), "model from /v1/models: {}", provider.model());
}

#[tokio::test]
async fn anthropic_provider_streams_a_real_answer_from_llama_server() {
    let server = LlamaServer::start();
    let provider = Anthropic::new(server.base_url(), "unused".into(), "smollm2".into());
    let (events, error) = collect(provider.stream(short_question())).await;
    assert_eq!(error, None, "events before the error: {events:?}");
    assert_real_answer(&events);
}
