//! Building a provider request from a session's context and history.

use wopr_providers::{ChatMessage, ChatRequest};
use wopr_store::{HistoryMessage, MessageStatus, Role};

/// How many stored messages are sent to the model at most (oldest are dropped first).
pub const HISTORY_WINDOW: usize = 200;

/// Default answer budget in tokens.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The request for the next answer: context as system prompt, answered history, then `message`.
/// Failed and interrupted messages are left out (they got no answer); consecutive messages of the same
/// role are merged, since logged context lines arrive without answers in between.
pub fn build_request(context: &str, history: &[HistoryMessage], message: &str) -> ChatRequest {
    let mut messages: Vec<ChatMessage> = Vec::new();
    // Tool results and the tool-calling steps before them stay in the history for the record; the next
    // turn sees only what was said.
    let usable =
        history.iter().filter(|m| m.status == MessageStatus::Ok && m.role != Role::Tool && !is_tool_step(m));
    let skip = usable.clone().count().saturating_sub(HISTORY_WINDOW);
    for m in usable.skip(skip) {
        push_merged(&mut messages, m.role, &m.content);
    }
    push_merged(&mut messages, Role::User, message);
    ChatRequest {
        system: context.trim().to_string(),
        messages,
        tools: vec![],
        max_tokens: DEFAULT_MAX_TOKENS,
        temperature: None,
    }
}

fn is_tool_step(m: &HistoryMessage) -> bool {
    m.role == Role::Assistant && m.meta.as_ref().is_some_and(|meta| meta.get("toolCalls").is_some())
}

fn push_merged(messages: &mut Vec<ChatMessage>, role: Role, text: &str) {
    match (messages.last_mut(), role) {
        (Some(ChatMessage::User { content }), Role::User)
        | (Some(ChatMessage::Assistant { content, .. }), Role::Assistant) => {
            content.push_str("\n\n");
            content.push_str(text);
        }
        (_, Role::Assistant) => messages.push(ChatMessage::assistant(text)),
        _ => messages.push(ChatMessage::user(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64, role: Role, content: &str, status: MessageStatus) -> HistoryMessage {
        HistoryMessage {
            id,
            role,
            content: content.into(),
            status,
            source: "cli".into(),
            error: None,
            meta: None,
            created: 0,
        }
    }

    #[test]
    fn failed_messages_are_left_out_and_logged_lines_merge() {
        let h = [
            msg(1, Role::User, "log line", MessageStatus::Ok),
            msg(2, Role::User, "q1", MessageStatus::Ok),
            msg(3, Role::Assistant, "a1", MessageStatus::Ok),
            msg(4, Role::User, "lost", MessageStatus::Failed),
            msg(5, Role::User, "cut", MessageStatus::Pending),
        ];
        let r = build_request("  Be terse.\n", &h, "q2");
        assert_eq!(r.system, "Be terse.");
        assert_eq!(
            r.messages,
            [ChatMessage::user("log line\n\nq1"), ChatMessage::assistant("a1"), ChatMessage::user("q2")]
        );
    }

    #[test]
    fn history_is_windowed() {
        let h: Vec<_> = (0..500)
            .map(|i| {
                let role = if i % 2 == 0 { Role::User } else { Role::Assistant };
                msg(i, role, &i.to_string(), MessageStatus::Ok)
            })
            .collect();
        let r = build_request("", &h, "next");
        assert_eq!(r.messages.len(), HISTORY_WINDOW + 1);
        assert_eq!(r.messages[0], ChatMessage::user("300"));
    }
}
