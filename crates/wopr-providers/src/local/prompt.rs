//! Turns a [`ChatRequest`] into the role/content turns a model's chat template accepts.
//!
//! Small chat templates (SmolLM2's ChatML among them) know only `system`, `user` and `assistant`, so tool
//! traffic becomes text: an assistant's tool calls are `<tool_call>{json}</tool_call>` lines (the format the
//! model is asked to answer in, see [`tool_instructions`]) and a tool's result is a user turn.

use crate::{ChatMessage, ChatRequest, ToolSpec};

/// The tag that opens a tool call in the model's text.
pub(crate) const TOOL_CALL_OPEN: &str = "<tool_call>";
/// The tag that closes a tool call in the model's text.
pub(crate) const TOOL_CALL_CLOSE: &str = "</tool_call>";

/// One turn for the chat template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Turn {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text, free of NUL bytes (C strings cannot carry them).
    pub content: String,
}

impl Turn {
    fn new(role: &'static str, content: impl Into<String>) -> Self {
        let content: String = content.into();
        Turn { role, content: content.replace('\0', "") }
    }
}

/// The turns of `request`, system prompt first.
pub(crate) fn turns(request: &ChatRequest) -> Vec<Turn> {
    let mut system = request.system.trim().to_string();
    if !request.tools.is_empty() {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(&tool_instructions(&request.tools));
    }
    let mut out = Vec::with_capacity(request.messages.len() + 1);
    if !system.is_empty() {
        out.push(Turn::new("system", system));
    }
    out.extend(request.messages.iter().map(turn));
    out
}

fn turn(message: &ChatMessage) -> Turn {
    match message {
        ChatMessage::User { content } => Turn::new("user", content.as_str()),
        ChatMessage::Assistant { content, tool_calls } => {
            let mut text = content.clone();
            for call in tool_calls {
                if !text.is_empty() {
                    text.push('\n');
                }
                let json = serde_json::json!({ "name": call.name, "arguments": call.arguments });
                text.push_str(&format!("{TOOL_CALL_OPEN}{json}{TOOL_CALL_CLOSE}"));
            }
            Turn::new("assistant", text)
        }
        ChatMessage::Tool { name, content, is_error, .. } => {
            let label = if *is_error { "Tool error" } else { "Tool result" };
            Turn::new("user", format!("{label} ({name}): {content}"))
        }
    }
}

/// The system-prompt paragraph that tells the model which tools exist and how to call one.
pub(crate) fn tool_instructions(tools: &[ToolSpec]) -> String {
    let mut text = String::from(
        "You can call tools. To call one, answer with exactly one line \
         <tool_call>{\"name\": \"TOOL\", \"arguments\": {...}}</tool_call> and nothing else. Tools:",
    );
    for tool in tools {
        text.push_str(&format!(
            "\n- {}: {} Arguments schema: {}",
            tool.name, tool.description, tool.parameters
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolCall;

    #[test]
    fn system_prompt_comes_first_and_empty_one_is_left_out() {
        let req = ChatRequest {
            system: "Be brief.".into(),
            messages: vec![ChatMessage::user("hi")],
            ..Default::default()
        };
        let t = turns(&req);
        assert_eq!(t, vec![Turn::new("system", "Be brief."), Turn::new("user", "hi")]);
        let req = ChatRequest { system: "  ".into(), ..req };
        assert_eq!(turns(&req)[0].role, "user");
    }

    #[test]
    fn tool_traffic_becomes_text_the_template_accepts() {
        let req = ChatRequest {
            messages: vec![
                ChatMessage::user("list files"),
                ChatMessage::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "ls".into(),
                        arguments: serde_json::json!({"dir": "."}),
                    }],
                },
                ChatMessage::Tool {
                    call_id: "c1".into(),
                    name: "ls".into(),
                    content: "a.txt".into(),
                    is_error: false,
                },
            ],
            ..Default::default()
        };
        let t = turns(&req);
        assert_eq!(t[1].role, "assistant");
        assert_eq!(t[1].content, r#"<tool_call>{"arguments":{"dir":"."},"name":"ls"}</tool_call>"#);
        assert_eq!(t[2], Turn::new("user", "Tool result (ls): a.txt"));
    }

    #[test]
    fn tools_are_described_in_the_system_prompt() {
        let req = ChatRequest {
            system: "Ctx".into(),
            tools: vec![ToolSpec {
                name: "ls".into(),
                description: "Lists files.".into(),
                parameters: serde_json::json!({"type": "object"}),
            }],
            messages: vec![ChatMessage::user("x")],
            ..Default::default()
        };
        let system = &turns(&req)[0].content;
        assert!(system.starts_with("Ctx\n\nYou can call tools."));
        assert!(system.contains("- ls: Lists files."));
    }

    #[test]
    fn nul_bytes_are_removed() {
        let req = ChatRequest { messages: vec![ChatMessage::user("a\0b")], ..Default::default() };
        assert_eq!(turns(&req)[0].content, "ab");
    }
}
