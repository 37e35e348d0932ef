//! The Chat Completions request body.
//!
//! The system prompt is the first message. An assistant's tool calls go in its `tool_calls` with the
//! arguments as a JSON string; each result is a `tool` message naming the call it answers.

use serde_json::{Value, json};

use crate::{ChatMessage, ChatRequest};

/// The JSON body for `request` to `model` on provider `name`, asking for a streamed answer with usage.
pub(super) fn body(name: &str, model: &str, request: &ChatRequest) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    messages.extend(request.messages.iter().map(message));
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    // OpenAI's newer models accept only `max_completion_tokens`; compatible servers know `max_tokens`.
    let max_tokens_field = if name == "openai" { "max_completion_tokens" } else { "max_tokens" };
    body[max_tokens_field] = json!(request.max_tokens);
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                })
            })
            .collect();
        body["tools"] = json!(tools);
    }
    body
}

fn message(message: &ChatMessage) -> Value {
    match message {
        ChatMessage::User { content } => json!({"role": "user", "content": content}),
        ChatMessage::Assistant { content, tool_calls } if tool_calls.is_empty() => {
            json!({"role": "assistant", "content": content})
        }
        ChatMessage::Assistant { content, tool_calls } => {
            let calls: Vec<Value> = tool_calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": arguments_text(&c.arguments)},
                    })
                })
                .collect();
            let content = if content.is_empty() { Value::Null } else { json!(content) };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        ChatMessage::Tool { call_id, content, is_error, .. } => {
            // The format has no error flag, so the model is told in words.
            let content = if *is_error { format!("error: {content}") } else { content.clone() };
            json!({"role": "tool", "tool_call_id": call_id, "content": content})
        }
    }
}

/// Arguments as the JSON text the model wrote; text that was not JSON goes back unchanged.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ToolCall, ToolSpec};

    #[test]
    fn system_prompt_leads_and_usage_is_requested() {
        let request = ChatRequest {
            system: "Be brief.".into(),
            messages: vec![ChatMessage::user("hi")],
            max_tokens: 16,
            ..Default::default()
        };
        assert_eq!(
            body("kimi", "kimi-k2", &request),
            json!({
                "model": "kimi-k2",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_tokens": 16,
            })
        );
        assert_eq!(body("openai", "gpt", &request)["max_completion_tokens"], 16);
        assert!(body("openai", "gpt", &request).get("max_tokens").is_none());
    }

    #[test]
    fn tool_calls_carry_json_text_and_results_are_tool_messages() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::user("list"),
                ChatMessage::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "ls".into(),
                        arguments: json!({"path": "/"}),
                    }],
                },
                ChatMessage::Tool {
                    call_id: "c1".into(),
                    name: "ls".into(),
                    content: "denied".into(),
                    is_error: true,
                },
            ],
            tools: vec![ToolSpec {
                name: "ls".into(),
                description: "list".into(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: 8,
            ..Default::default()
        };
        let body = body("openai-compatible", "m", &request);
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {"name": "ls", "description": "list", "parameters": {"type": "object"}}}])
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "list"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{\"path\":\"/\"}"}},
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "error: denied"},
            ])
        );
    }
}
