//! Helpers shared by the provider tests.
#![allow(dead_code)]

use futures::StreamExt;
use serde_json::json;
use test_support::Reply;
use wopr_providers::{ChatMessage, ChatRequest, EventStream, ProviderError, StreamEvent, ToolCall, ToolSpec};

/// A recorded response from `tests/fixtures/`.
pub fn fixture(name: &str) -> Reply {
    Reply::fixture(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
}

/// Everything a stream yields: its events, and the error it ended with, if any. Checks the shape the
/// `Provider` contract promises: nothing after `Done` or an error, and `Done` only once.
pub async fn collect(mut stream: EventStream) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                let done = matches!(event, StreamEvent::Done { .. });
                events.push(event);
                if done {
                    break;
                }
            }
            Err(e) => {
                assert!(stream.next().await.is_none(), "the stream went on after an error");
                return (events, Some(e));
            }
        }
    }
    assert!(stream.next().await.is_none(), "the stream went on after Done");
    (events, None)
}

/// The streamed answer text.
pub fn text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// The events that are not text deltas.
pub fn non_text(events: &[StreamEvent]) -> Vec<StreamEvent> {
    events.iter().filter(|e| !matches!(e, StreamEvent::TextDelta { .. })).cloned().collect()
}

/// A one-question request with a system prompt.
pub fn hello_request() -> ChatRequest {
    ChatRequest {
        system: "You are WOPR. Be brief.".into(),
        messages: vec![ChatMessage::user("Hello")],
        max_tokens: 256,
        ..Default::default()
    }
}

/// The weather tool.
pub fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Current weather at a place".into(),
        parameters: json!({
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["location"],
        }),
    }
}

/// A request with tools and an earlier tool round trip in the history.
pub fn tool_request() -> ChatRequest {
    ChatRequest {
        system: "Use tools when they help.".into(),
        messages: vec![
            ChatMessage::user("Weather in Oslo?"),
            ChatMessage::Assistant {
                content: "Checking.".into(),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: json!({"location": "Oslo"}),
                }],
            },
            ChatMessage::Tool {
                call_id: "call_1".into(),
                name: "get_weather".into(),
                content: "-3 C, snow".into(),
                is_error: false,
            },
            ChatMessage::assistant("It is -3 C and snowing in Oslo."),
            ChatMessage::user("And in San Francisco?"),
        ],
        tools: vec![weather_tool()],
        max_tokens: 1024,
        temperature: Some(0.2),
    }
}
