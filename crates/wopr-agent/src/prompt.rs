//! Building a provider request from a session's context and the part of its history that fits.
//!
//! A turn never reads a session's whole history. It reads stored rows newest first, at most
//! [`MAX_HISTORY_ROWS`], and stops at the first message that would overflow the model's context window
//! ([`history_budget`]). Tokens are estimated, not counted: [`BYTES_PER_TOKEN`] bytes of text per token,
//! fewer than English averages (about 4), so the estimate errs towards sending less.

use wopr_providers::{ChatMessage, ChatRequest};
use wopr_store::{History, HistoryMessage, MessageStatus, Role, SessionName, StoreResult};

/// Most stored rows one turn reads (tool results and failed messages included), however large the
/// model's context window.
pub const MAX_HISTORY_ROWS: usize = 1000;

/// Bytes of text per token in the history budget's estimate.
pub const BYTES_PER_TOKEN: usize = 3;

/// Tokens kept free for tool definitions, the chat template's markup and per-message overhead.
const RESERVED_TOKENS: usize = 1024;

/// Default answer budget in tokens.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// Bytes of history that fit a model with `context_window` tokens next to the system prompt, the new
/// message and the answer.
pub fn history_budget(context_window: u32, system: &str, message: &str) -> usize {
    let tokens = (context_window as usize)
        .saturating_sub(DEFAULT_MAX_TOKENS as usize + RESERVED_TOKENS)
        .saturating_sub((system.len() + message.len()).div_ceil(BYTES_PER_TOKEN));
    tokens * BYTES_PER_TOKEN
}

/// The newest messages of `session` that fit `budget` bytes, oldest first: what a turn sends. Rows the
/// model does not see (tool results, failed messages) cost nothing but count towards
/// [`MAX_HISTORY_ROWS`].
pub fn load_history(
    history: &History,
    session: &SessionName,
    budget: usize,
) -> StoreResult<Vec<HistoryMessage>> {
    let mut left = budget;
    history.newest_first(session, MAX_HISTORY_ROWS, |m| {
        if !is_sent(m) {
            return true;
        }
        match left.checked_sub(m.content.len()) {
            Some(rest) => {
                left = rest;
                true
            }
            None => false,
        }
    })
}

/// Whether a stored message goes to the model: answered messages only, and of the tool-calling steps and
/// their results (kept for the record) nothing.
fn is_sent(m: &HistoryMessage) -> bool {
    m.status == MessageStatus::Ok && m.role != Role::Tool && !is_tool_step(m)
}

/// The request for the next answer: context as system prompt, answered history, then `message`.
/// Failed and interrupted messages are left out (they got no answer); consecutive messages of the same
/// role are merged, since logged context lines arrive without answers in between.
pub fn build_request(context: &str, history: &[HistoryMessage], message: &str) -> ChatRequest {
    let mut messages: Vec<ChatMessage> = Vec::new();
    for m in history.iter().filter(|m| is_sent(m)) {
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
            source: wopr_store::Source::Owner,
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
    fn the_history_sent_is_the_newest_that_fits_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(&dir.path().join("wopr.db")).unwrap();
        let s = SessionName::new("s").unwrap();
        let owner = wopr_store::Source::Owner;
        for i in 0..50 {
            let role = if i % 2 == 0 { Role::User } else { Role::Assistant };
            history.append(&s, role, &format!("{i:09}"), MessageStatus::Ok, &owner, None).unwrap();
            // Tool results are stored but never sent, so they cost nothing.
            history.append(&s, Role::Tool, &"x".repeat(5000), MessageStatus::Ok, &owner, None).unwrap();
        }
        let loaded = load_history(&history, &s, 9 * 10).unwrap();
        let sent: Vec<_> = loaded.iter().filter(|m| is_sent(m)).map(|m| m.content.as_str()).collect();
        assert_eq!(sent.first(), Some(&"000000040"), "the ten newest 9-byte messages fit 90 bytes");
        assert_eq!(sent.len(), 10);
        let r = build_request("", &loaded, "next");
        assert_eq!(r.messages.len(), 11);
        assert_eq!(r.messages[9..], [ChatMessage::assistant("000000049"), ChatMessage::user("next")]);

        // However large the window, no more than the row cap is read.
        for i in 0..MAX_HISTORY_ROWS {
            history.append(&s, Role::User, &i.to_string(), MessageStatus::Ok, &owner, None).unwrap();
        }
        assert_eq!(load_history(&history, &s, usize::MAX).unwrap().len(), MAX_HISTORY_ROWS);
    }

    #[test]
    fn the_budget_leaves_room_for_the_prompt_and_the_answer() {
        assert_eq!(history_budget(2048, "", ""), 0, "a small window sends no history");
        let room = history_budget(4096, "", "");
        assert_eq!(room, (4096 - 1024 - 1024) * BYTES_PER_TOKEN);
        assert_eq!(history_budget(4096, &"s".repeat(300), &"m".repeat(300)), room - 600);
        assert!(history_budget(200_000, "", "") > 90 * room);
    }
}
