//! The OpenAI-format provider (OpenAI, Kimi, OpenAI-compatible servers) against recorded Chat
//! Completions responses replayed by a local server.

mod common;

use std::time::Duration;

use common::{collect, fixture, hello_request, non_text, text, tool_request};
use serde_json::json;
use test_support::{FixtureServer, Reply};
use wopr_providers::{ErrorKind, OpenAi, Provider, StopReason, StreamEvent, ToolCall, Usage};

fn openai(server: &FixtureServer) -> OpenAi {
    OpenAi::new("openai", format!("{}/v1", server.url()), Some("sk-test".into()), Some("gpt-test".into()))
}

#[tokio::test]
async fn text_stream_arrives_as_deltas_then_usage_and_done() {
    let server = FixtureServer::start([fixture("openai/text_stream.http").in_chunks(9)]).await;
    let (events, error) = collect(openai(&server).stream(hello_request())).await;
    assert_eq!(error, None);
    assert_eq!(text(&events), "Hello! How can I help you today?");
    assert_eq!(
        non_text(&events),
        vec![
            StreamEvent::Usage { usage: Usage { input_tokens: 19, output_tokens: 10 } },
            StreamEvent::Done { stop_reason: StopReason::EndTurn },
        ]
    );
}

#[tokio::test]
async fn request_carries_bearer_key_system_message_and_usage_option() {
    let server = FixtureServer::start([fixture("openai/text_stream.http")]).await;
    collect(openai(&server).stream(hello_request())).await;
    let request = server.single_request();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(request.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "You are WOPR. Be brief."},
                {"role": "user", "content": "Hello"},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_completion_tokens": 256,
        })
    );
}

#[tokio::test]
async fn parallel_tool_calls_are_assembled_from_fragments_in_index_order() {
    let server = FixtureServer::start([fixture("openai/tool_calls_stream.http").in_chunks(3)]).await;
    let (events, error) = collect(openai(&server).stream(tool_request())).await;
    assert_eq!(error, None);
    assert_eq!(text(&events), "");
    let weather = ToolCall {
        id: "call_Qm2nX7ZpL4rT8vW1yB3cD5eF".into(),
        name: "get_weather".into(),
        arguments: json!({"location": "Paris, FR"}),
    };
    let time = ToolCall {
        id: "call_Hk9sD3fG6jL1pQ4tV7xZ0aC2".into(),
        name: "get_time".into(),
        arguments: json!({"tz": "Europe/Paris"}),
    };
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCall { call: weather },
            StreamEvent::ToolCall { call: time },
            StreamEvent::Usage { usage: Usage { input_tokens: 98, output_tokens: 51 } },
            StreamEvent::Done { stop_reason: StopReason::ToolUse },
        ]
    );
}

#[tokio::test]
async fn history_with_tools_maps_to_tool_calls_and_tool_messages() {
    let server = FixtureServer::start([fixture("openai/tool_calls_stream.http")]).await;
    collect(openai(&server).stream(tool_request())).await;
    let body = server.single_request().json();
    assert_eq!(body["temperature"], json!(0.2f32));
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(body["tools"][0]["function"]["parameters"]["required"], json!(["location"]));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Use tools when they help."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\":\"Oslo\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "-3 C, snow"},
            {"role": "assistant", "content": "It is -3 C and snowing in Oslo."},
            {"role": "user", "content": "And in San Francisco?"},
        ])
    );
}

#[tokio::test]
async fn stream_ending_without_finish_or_done_is_a_protocol_error() {
    let server = FixtureServer::start([fixture("openai/truncated_stream.http").in_chunks(16)]).await;
    let (events, error) = collect(openai(&server).stream(hello_request())).await;
    assert_eq!(text(&events), "The answer is");
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Protocol);
    assert!(error.message.contains("incomplete"), "{}", error.message);
}

#[tokio::test]
async fn bad_key_is_an_auth_error_with_the_server_message() {
    let server = FixtureServer::start([fixture("openai/401.http")]).await;
    let (events, error) = collect(openai(&server).stream(hello_request())).await;
    assert!(events.is_empty());
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Auth);
    assert!(error.message.starts_with("Incorrect API key provided"), "{}", error.message);
}

#[tokio::test]
async fn rate_limit_prefers_retry_after_ms() {
    let server = FixtureServer::start([fixture("openai/429.http")]).await;
    let (_, error) = collect(openai(&server).stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::RateLimited { retry_after: Some(Duration::from_millis(19450)) });
    assert!(error.message.contains("Rate limit reached"), "{}", error.message);
}

#[tokio::test]
async fn context_length_exceeded_is_context_too_long() {
    let server = FixtureServer::start([fixture("openai/400_context_length_exceeded.http")]).await;
    let (_, error) = collect(openai(&server).stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::ContextTooLong);
    assert!(error.message.contains("maximum context length is 1047576 tokens"), "{}", error.message);
}

#[tokio::test]
async fn unknown_model_is_a_bad_request_with_the_server_message() {
    let body = json!({"error": {"message": "The model `gpt-nope` does not exist or you do not have access to it.",
        "type": "invalid_request_error", "param": null, "code": "model_not_found"}});
    let server = FixtureServer::start([Reply::json(404, &body)]).await;
    let (_, error) = collect(openai(&server).stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::BadRequest);
    assert!(error.message.contains("gpt-nope"), "{}", error.message);
}

#[tokio::test]
async fn json_instead_of_a_stream_is_a_protocol_error() {
    let server = FixtureServer::start([Reply::json(200, &json!({"object": "chat.completion"}))]).await;
    let (_, error) = collect(openai(&server).stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Protocol);
    assert!(error.message.contains("expected an event stream"), "{}", error.message);
}

#[tokio::test]
async fn compatible_server_without_model_or_key_uses_its_first_listed_model() {
    let server = FixtureServer::start([
        fixture("openai/models.http"),
        fixture("openai/text_stream.http"),
        fixture("openai/text_stream.http"),
    ])
    .await;
    let provider = OpenAi::new("openai-compatible", format!("{}/v1/", server.url()), None, None);
    assert_eq!(provider.model(), "auto");
    let (_, error) = collect(provider.stream(hello_request())).await;
    assert_eq!(error, None);
    assert_eq!(provider.model(), "SmolLM2-135M-Instruct.Q4_1.gguf");
    let (_, error) = collect(provider.stream(hello_request())).await;
    assert_eq!(error, None);

    let requests = server.requests();
    let paths: Vec<_> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(
        paths,
        [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/chat/completions")]
    );
    assert!(requests.iter().all(|r| r.header("authorization").is_none()));
    let body = requests[1].json();
    assert_eq!(body["model"], "SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(body["max_tokens"], 256, "compatible servers get max_tokens");
}

#[tokio::test]
async fn server_listing_no_models_is_not_configured() {
    let server = FixtureServer::start([Reply::json(200, &json!({"object": "list", "data": []}))]).await;
    let provider = OpenAi::new("openai-compatible", format!("{}/v1", server.url()), None, None);
    let (_, error) = collect(provider.stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::NotConfigured);
    assert!(error.message.contains("--model"), "{}", error.message);
}

fn kimi(server: &FixtureServer) -> OpenAi {
    OpenAi::new(
        "kimi",
        format!("{}/v1", server.url()),
        Some("sk-kimi".into()),
        Some("kimi-k2-0905-preview".into()),
    )
}

#[tokio::test]
async fn kimi_stream_with_usage_inside_the_choice_and_split_characters() {
    let server = FixtureServer::start([fixture("kimi/text_stream.http").in_chunks(4)]).await;
    let provider = kimi(&server);
    assert_eq!(provider.name(), "kimi");
    let (events, error) = collect(provider.stream(hello_request())).await;
    assert_eq!(error, None);
    assert_eq!(text(&events), "你好！我是 Kimi，很高兴为你服务。");
    assert_eq!(
        non_text(&events),
        vec![
            StreamEvent::Usage { usage: Usage { input_tokens: 19, output_tokens: 13 } },
            StreamEvent::Done { stop_reason: StopReason::EndTurn },
        ]
    );
    let request = server.single_request();
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("authorization"), Some("Bearer sk-kimi"));
    let body = request.json();
    assert_eq!(body["model"], "kimi-k2-0905-preview");
    assert_eq!(body["max_tokens"], 256);
}

#[tokio::test]
async fn kimi_bad_key_is_an_auth_error() {
    let server = FixtureServer::start([fixture("kimi/401.http")]).await;
    let (_, error) = collect(kimi(&server).stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!((error.provider, error.kind), ("kimi", ErrorKind::Auth));
    assert!(error.message.contains("Invalid Authentication"), "{}", error.message);
}

#[tokio::test]
async fn recorded_llama_server_chat_stream_is_understood() {
    let server = FixtureServer::start([fixture("llama-server/openai_stream.http").in_chunks(13)]).await;
    let provider = OpenAi::new("openai-compatible", format!("{}/v1", server.url()), None, Some("m".into()));
    let (events, error) = collect(provider.stream(hello_request())).await;
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
async fn malformed_base_url_is_not_configured() {
    let provider = OpenAi::new("openai-compatible", "localhost:8080/v1".into(), None, Some("m".into()));
    let (_, error) = collect(provider.stream(hello_request())).await;
    let error = error.expect("an error");
    assert_eq!(error.kind, ErrorKind::NotConfigured);
    assert!(error.message.contains("localhost:8080/v1/chat/completions"), "{}", error.message);
}
