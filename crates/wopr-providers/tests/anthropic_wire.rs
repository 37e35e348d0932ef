//! The Anthropic provider against recorded Messages API responses replayed by a local server.

mod common;

use std::time::Duration;

use common::{collect, fixture, hello_request, non_text, text, tool_request};
use serde_json::json;
use test_support::FixtureServer;
use wopr_providers::{ErrorKind, Provider, StopReason, StreamEvent, ToolCall, Usage};

fn anthropic(server: &FixtureServer) -> Box<dyn Provider> {
    Box::new(wopr_providers::Anthropic::new(
        server.url().to_string(),
        "sk-ant-test".into(),
        "claude-test".into(),
    ))
}

#[tokio::test]
async fn text_stream_arrives_as_deltas_then_usage_and_done() {
    let server = FixtureServer::start([fixture("anthropic/text_stream.http").in_chunks(7)]).await;
    let (events, error) = collect(anthropic(&server).stream(hello_request())).await;
    assert_eq!(error, None);
    assert_eq!(text(&events), "Hello! How can I help you today?");
    assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::TextDelta { .. })).count(), 3);
    assert_eq!(
        non_text(&events),
        vec![
            StreamEvent::Usage { usage: Usage { input_tokens: 21, output_tokens: 12 } },
            StreamEvent::Done { stop_reason: StopReason::EndTurn },
        ]
    );
}

#[tokio::test]
async fn request_carries_key_version_system_prompt_and_stream_flag() {
    let server = FixtureServer::start([fixture("anthropic/text_stream.http")]).await;
    collect(anthropic(&server).stream(hello_request())).await;
    let request = server.single_request();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(request.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.json(),
        json!({
            "model": "claude-test",
            "max_tokens": 256,
            "stream": true,
            "system": "You are WOPR. Be brief.",
            "messages": [{"role": "user", "content": "Hello"}],
        })
    );
}

#[tokio::test]
async fn tool_use_input_split_over_deltas_becomes_one_call() {
    let server = FixtureServer::start([fixture("anthropic/tool_use_stream.http").in_chunks(5)]).await;
    let (events, error) = collect(anthropic(&server).stream(tool_request())).await;
    assert_eq!(error, None);
    assert_eq!(text(&events), "Okay, let's check the weather for San Francisco, CA:");
    let call = ToolCall {
        id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
        name: "get_weather".into(),
        arguments: json!({"location": "San Francisco, CA", "unit": "fahrenheit"}),
    };
    assert_eq!(
        non_text(&events),
        vec![
            StreamEvent::ToolCall { call },
            StreamEvent::Usage { usage: Usage { input_tokens: 472, output_tokens: 89 } },
            StreamEvent::Done { stop_reason: StopReason::ToolUse },
        ]
    );
}

#[tokio::test]
async fn history_with_tools_maps_to_tool_use_and_tool_result_blocks() {
    let server = FixtureServer::start([fixture("anthropic/tool_use_stream.http")]).await;
    collect(anthropic(&server).stream(tool_request())).await;
    let body = server.single_request().json();
    assert_eq!(body["system"], "Use tools when they help.");
    assert_eq!(body["temperature"], json!(0.2f32));
    assert_eq!(body["tools"][0]["name"], "get_weather");
    assert_eq!(body["tools"][0]["input_schema"]["required"], json!(["location"]));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "-3 C, snow"},
            ]},
            {"role": "assistant", "content": "It is -3 C and snowing in Oslo."},
            {"role": "user", "content": "And in San Francisco?"},
        ])
    );
}

#[tokio::test]
async fn error_event_mid_stream_ends_the_answer_as_unavailable() {
    let server = FixtureServer::start([fixture("anthropic/error_mid_stream.http").in_chunks(11)]).await;
    let (events, error) = collect(anthropic(&server).stream(hello_request())).await;
    assert_eq!(events, vec![StreamEvent::TextDelta { text: "Once upon".into() }]);
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(error.message.contains("Overloaded"), "{}", error.message);
    assert!(error.message.contains("overloaded_error"), "{}", error.message);
}

#[tokio::test]
async fn stream_ending_before_message_stop_is_a_protocol_error() {
    let server = FixtureServer::start([fixture("anthropic/truncated_stream.http")]).await;
    let (events, error) = collect(anthropic(&server).stream(hello_request())).await;
    assert_eq!(text(&events), "The answer is");
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Done { .. })));
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Protocol);
    assert!(error.message.contains("message_stop"), "{}", error.message);
}

#[tokio::test]
async fn connection_dropped_mid_answer_is_unavailable() {
    let server = FixtureServer::start([fixture("anthropic/text_stream.http").cut_after(900)]).await;
    let (events, error) = collect(anthropic(&server).stream(hello_request())).await;
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Done { .. })));
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(error.message.contains(server.url()), "{}", error.message);
}

#[tokio::test]
async fn bad_key_is_an_auth_error_with_the_server_message() {
    let server = FixtureServer::start([fixture("anthropic/401.http")]).await;
    let (events, error) = collect(anthropic(&server).stream(hello_request())).await;
    assert!(events.is_empty());
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Auth);
    assert!(error.message.contains("invalid x-api-key"), "{}", error.message);
    assert!(error.message.contains("HTTP 401"), "{}", error.message);
    assert!(!error.to_string().contains("sk-ant-test"), "the key must not leak into messages");
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let server = FixtureServer::start([fixture("anthropic/429.http")]).await;
    let (_, error) = collect(anthropic(&server).stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(17)) });
    assert!(error.message.contains("rate limit"), "{}", error.message);
    assert_eq!(error.hint(), "rate limited: retry in 17 s");
}

#[tokio::test]
async fn prompt_too_long_is_context_too_long() {
    let server = FixtureServer::start([fixture("anthropic/400_prompt_too_long.http")]).await;
    let (_, error) = collect(anthropic(&server).stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::ContextTooLong);
    assert!(error.message.contains("prompt is too long: 208475 tokens"), "{}", error.message);
}

#[tokio::test]
async fn overloaded_529_is_unavailable() {
    let server = FixtureServer::start([fixture("anthropic/529_overloaded.http")]).await;
    let (_, error) = collect(anthropic(&server).stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(error.message.contains("Overloaded"), "{}", error.message);
}

#[tokio::test]
async fn unreachable_server_is_unavailable_and_names_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let provider = wopr_providers::Anthropic::new(base.clone(), "k".into(), "m".into());
    let (_, error) = collect(provider.stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(error.message.contains(&format!("{base}v1/messages")), "{}", error.message);
}

#[tokio::test]
async fn recorded_llama_server_messages_stream_is_understood() {
    let server = FixtureServer::start([fixture("llama-server/anthropic_stream.http").in_chunks(13)]).await;
    let (events, error) = collect(anthropic(&server).stream(hello_request())).await;
    assert_eq!(error, None);
    assert_eq!(text(&events), "The capital of France is Paris.");
    assert_eq!(
        non_text(&events),
        vec![
            StreamEvent::Usage { usage: Usage { input_tokens: 21, output_tokens: 8 } },
            StreamEvent::Done { stop_reason: StopReason::EndTurn },
        ]
    );
}

#[tokio::test]
async fn llama_server_context_size_error_is_context_too_long() {
    let server = FixtureServer::start([fixture("llama-server/400_context_size.http")]).await;
    let (_, error) = collect(anthropic(&server).stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::ContextTooLong);
    assert!(error.message.contains("exceeds the available context size"), "{}", error.message);
}

#[tokio::test]
async fn key_that_cannot_be_a_header_is_not_configured() {
    let provider = wopr_providers::Anthropic::new("http://127.0.0.1:9".into(), "bad\nkey".into(), "m".into());
    let (_, error) = collect(provider.stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::NotConfigured);
    assert!(!error.message.contains("bad\nkey"));
}
