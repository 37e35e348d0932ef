//! Finds `<tool_call>{json}</tool_call>` in the generated text and turns it into [`ToolCall`]s.
//!
//! Text arrives piece by piece, so a tag may be split across pieces: text that could still be the start
//! of a tag is held back until the next piece decides. Anything that is not a well-formed call is passed
//! through as text, so the user never loses what the model wrote.

use serde_json::Value;

use super::prompt::{TOOL_CALL_CLOSE, TOOL_CALL_OPEN};
use crate::ToolCall;

/// What the parser found in the text so far.
#[derive(Debug, PartialEq)]
pub(crate) enum Piece {
    /// Plain answer text.
    Text(String),
    /// A complete tool call.
    Call(ToolCall),
}

/// Splits streamed model text into plain text and tool calls.
#[derive(Debug, Default)]
pub(crate) struct ToolCallParser {
    buf: String,
    inside: bool,
    calls: usize,
}

impl ToolCallParser {
    /// Feeds more text; returns what is now decided.
    pub(crate) fn push(&mut self, text: &str) -> Vec<Piece> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        loop {
            if self.inside {
                let Some(end) = self.buf.find(TOOL_CALL_CLOSE) else { break };
                let body: String = self.buf.drain(..end + TOOL_CALL_CLOSE.len()).collect();
                out.push(self.call_or_text(&body[..end]));
                self.inside = false;
            } else if let Some(start) = self.buf.find(TOOL_CALL_OPEN) {
                let before: String = self.buf.drain(..start + TOOL_CALL_OPEN.len()).collect();
                push_text(&mut out, &before[..start]);
                self.inside = true;
            } else {
                let keep = partial_tag_len(&self.buf);
                let decided: String = self.buf.drain(..self.buf.len() - keep).collect();
                push_text(&mut out, &decided);
                break;
            }
        }
        out
    }

    /// The text has ended: an unclosed call is still a call if its JSON is complete.
    pub(crate) fn finish(&mut self) -> Vec<Piece> {
        let rest = std::mem::take(&mut self.buf);
        let mut out = Vec::new();
        if std::mem::take(&mut self.inside) {
            out.push(self.call_or_text(&rest));
        } else {
            push_text(&mut out, &rest);
        }
        out
    }

    /// Whether the text just opened a tool call and nothing of its body has come yet: the moment to
    /// constrain generation to a well-formed call.
    pub(crate) fn at_call_body(&self) -> bool {
        self.inside && self.buf.is_empty()
    }

    /// How many tool calls were found.
    pub(crate) fn calls(&self) -> usize {
        self.calls
    }

    fn call_or_text(&mut self, body: &str) -> Piece {
        match parse_call(body, self.calls) {
            Some(call) => {
                self.calls += 1;
                Piece::Call(call)
            }
            None => Piece::Text(format!("{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}")),
        }
    }
}

fn push_text(out: &mut Vec<Piece>, text: &str) {
    if !text.is_empty() {
        out.push(Piece::Text(text.to_string()));
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of the opening tag.
fn partial_tag_len(text: &str) -> usize {
    (1..TOOL_CALL_OPEN.len())
        .rev()
        .find(|&n| {
            text.len() >= n
                && text.is_char_boundary(text.len() - n)
                && TOOL_CALL_OPEN.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

/// `{"name": "...", "arguments": {...}}`; `arguments` may also be a JSON string or missing.
fn parse_call(body: &str, index: usize) -> Option<ToolCall> {
    let value: Value = serde_json::from_str(body.trim()).ok()?;
    let name = value.get("name")?.as_str()?.to_string();
    let arguments = match value.get("arguments").or_else(|| value.get("parameters")) {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        Some(v) => v.clone(),
    };
    Some(ToolCall { id: format!("call_{index}"), name, arguments })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[&str]) -> Vec<Piece> {
        let mut p = ToolCallParser::default();
        let mut out: Vec<Piece> = pieces.iter().flat_map(|s| p.push(s)).collect();
        out.extend(p.finish());
        out
    }

    fn text(pieces: &[Piece]) -> String {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t.as_str()),
                Piece::Call(_) => None,
            })
            .collect()
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(text(&run(&["Hello", " world", " <3"])), "Hello world <3");
    }

    #[test]
    fn a_call_split_across_pieces_is_found() {
        let out = run(&[
            "Sure. <tool",
            "_call>{\"name\": \"ls\", ",
            "\"arguments\": {\"dir\": \"/\"}}</tool_",
            "call>",
        ]);
        assert_eq!(text(&out), "Sure. ");
        let call =
            ToolCall { id: "call_0".into(), name: "ls".into(), arguments: serde_json::json!({"dir": "/"}) };
        assert_eq!(out.last(), Some(&Piece::Call(call)));
    }

    #[test]
    fn an_unclosed_call_with_complete_json_still_counts() {
        let mut p = ToolCallParser::default();
        p.push("<tool_call>{\"name\": \"date\"}");
        assert!(
            matches!(p.finish().as_slice(), [Piece::Call(c)] if c.name == "date" && c.arguments == serde_json::json!({}))
        );
        assert_eq!(p.calls(), 1);
    }

    #[test]
    fn a_malformed_call_is_kept_as_text() {
        assert_eq!(text(&run(&["<tool_call>not json</tool_call>"])), "<tool_call>not json</tool_call>");
    }

    #[test]
    fn string_arguments_are_parsed_as_json() {
        let out = run(&[r#"<tool_call>{"name": "x", "arguments": "{\"a\": 1}"}</tool_call>"#]);
        assert!(matches!(&out[..], [Piece::Call(c)] if c.arguments == serde_json::json!({"a": 1})));
    }
}
