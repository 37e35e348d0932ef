//! The Messages API request body.
//!
//! The system prompt is a top-level field. Tool calls are `tool_use` blocks in an assistant turn and
//! their results `tool_result` blocks in the next user turn; turns of the same role next to each
//! other are merged, because the API wants user and assistant to alternate.

use serde_json::{Value, json};

use crate::{ChatMessage, ChatRequest};

/// The JSON body for `request` to `model`, asking for a streamed answer.
pub(super) fn body(model: &str, request: &ChatRequest) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": messages(&request.messages),
        "stream": true,
    });
    if !request.system.is_empty() {
        body["system"] = json!(request.system);
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        body["tools"] = json!(tools);
    }
    body
}

fn messages(history: &[ChatMessage]) -> Vec<Value> {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in history {
        let (role, blocks) = match message {
            ChatMessage::User { content } => ("user", vec![text_block(content)]),
            ChatMessage::Assistant { content, tool_calls } => {
                // The API rejects empty text blocks, so an assistant turn with only tool calls has none.
                let text = (!content.is_empty()).then(|| text_block(content));
                let calls = tool_calls
                    .iter()
                    .map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}));
                ("assistant", text.into_iter().chain(calls).collect())
            }
            ChatMessage::Tool { call_id, content, is_error, .. } => {
                let mut block = json!({"type": "tool_result", "tool_use_id": call_id, "content": content});
                if *is_error {
                    block["is_error"] = json!(true);
                }
                ("user", vec![block])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    turns.into_iter().map(|(role, blocks)| json!({"role": role, "content": content(blocks)})).collect()
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// A turn of one text block is sent as a plain string, the form every server imitating the API reads.
fn content(mut blocks: Vec<Value>) -> Value {
    if blocks.len() == 1 && blocks[0]["type"] == "text" {
        return blocks.swap_remove(0)["text"].take();
    }
    Value::Array(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ToolCall, ToolSpec};

    #[test]
    fn plain_conversation_uses_string_content_and_top_level_system() {
        let request = ChatRequest {
            system: "Be brief.".into(),
            messages: vec![
                ChatMessage::user("hi"),
                ChatMessage::assistant("hello"),
                ChatMessage::user("bye"),
            ],
            max_tokens: 64,
            temperature: Some(0.5),
            ..Default::default()
        };
        assert_eq!(
            body("claude-x", &request),
            json!({
                "model": "claude-x",
                "max_tokens": 64,
                "stream": true,
                "system": "Be brief.",
                "temperature": 0.5,
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "bye"},
                ],
            })
        );
    }

    #[test]
    fn tool_calls_and_results_become_blocks_in_alternating_turns() {
        let call = |id: &str| ToolCall { id: id.into(), name: "ls".into(), arguments: json!({"path": id}) };
        let request = ChatRequest {
            messages: vec![
                ChatMessage::user("list"),
                ChatMessage::Assistant { content: String::new(), tool_calls: vec![call("a"), call("b")] },
                ChatMessage::Tool {
                    call_id: "a".into(),
                    name: "ls".into(),
                    content: "x".into(),
                    is_error: false,
                },
                ChatMessage::Tool {
                    call_id: "b".into(),
                    name: "ls".into(),
                    content: "no".into(),
                    is_error: true,
                },
                ChatMessage::user("thanks"),
            ],
            tools: vec![ToolSpec {
                name: "ls".into(),
                description: "list".into(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: 8,
            ..Default::default()
        };
        let body = body("m", &request);
        assert!(body.get("system").is_none());
        assert_eq!(
            body["tools"],
            json!([{"name": "ls", "description": "list", "input_schema": {"type": "object"}}])
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "list"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "a", "name": "ls", "input": {"path": "a"}},
                    {"type": "tool_use", "id": "b", "name": "ls", "input": {"path": "b"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "a", "content": "x"},
                    {"type": "tool_result", "tool_use_id": "b", "content": "no", "is_error": true},
                    {"type": "text", "text": "thanks"},
                ]},
            ])
        );
    }
}
