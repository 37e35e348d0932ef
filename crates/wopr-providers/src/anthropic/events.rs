//! Reading a streamed Messages API answer.
//!
//! The server sends `message_start`, then for each content block `content_block_start`, deltas and
//! `content_block_stop`, then `message_delta` (stop reason, output tokens) and `message_stop`; `ping`
//! may come anywhere and `error` ends the stream early. Text deltas are passed on as they come; a
//! `tool_use` block's `input_json_delta` pieces are joined and the call is passed on at its block's end.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::NAME;
use crate::decode::{Decoder, cut_short, parse_arguments, parse_json};
use crate::http_error;
use crate::sse::SseEvent;
use crate::{ProviderError, StopReason, StreamEvent, ToolCall, Usage};

/// The state of one streamed answer.
#[derive(Debug, Default)]
pub(super) struct MessageStream {
    /// `tool_use` blocks still receiving their input, by block index.
    tools: HashMap<usize, ToolBlock>,
    usage: Usage,
    stop_reason: Option<StopReason>,
}

#[derive(Debug)]
struct ToolBlock {
    id: String,
    name: String,
    /// Input given whole in `content_block_start` (normally `{}`, then filled by deltas).
    initial_input: Value,
    json: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: MessageStart,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: Option<RawUsage>,
    },
    MessageStop,
    Error,
    // `ping` and event types added after this was written.
    #[serde(other)]
    Ignored,
}

#[derive(Deserialize)]
struct MessageStart {
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    // thinking, redacted_thinking, server tool blocks: not part of the answer text.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    stop_reason: Option<String>,
}

/// Token counts; `message_start` has the input, `message_delta` the (cumulative) output.
#[derive(Deserialize)]
struct RawUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl MessageStream {
    fn add_usage(&mut self, raw: RawUsage) {
        if let Some(input) = raw.input_tokens {
            // Cached prompt tokens are counted apart from `input_tokens`, but were read all the same.
            self.usage.input_tokens = input
                + raw.cache_creation_input_tokens.unwrap_or(0)
                + raw.cache_read_input_tokens.unwrap_or(0);
        }
        if let Some(output) = raw.output_tokens {
            self.usage.output_tokens = output;
        }
    }
}

impl Decoder for MessageStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if event.event == "error" {
            return Err(http_error::from_stream_error(NAME, &parse_json(NAME, &event)?));
        }
        match parse_json::<Event>(NAME, &event)? {
            Event::MessageStart { message } => {
                if let Some(usage) = message.usage {
                    self.add_usage(usage);
                }
            }
            Event::ContentBlockStart { index, content_block } => match content_block {
                Block::Text { text } if !text.is_empty() => out.push(StreamEvent::TextDelta { text }),
                Block::ToolUse { id, name, input } => {
                    self.tools
                        .insert(index, ToolBlock { id, name, initial_input: input, json: String::new() });
                }
                Block::Text { .. } | Block::Other => {}
            },
            Event::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => out.push(StreamEvent::TextDelta { text }),
                BlockDelta::InputJsonDelta { partial_json } => {
                    if let Some(tool) = self.tools.get_mut(&index) {
                        tool.json.push_str(&partial_json);
                    }
                }
                BlockDelta::Other => {}
            },
            Event::ContentBlockStop { index } => {
                if let Some(tool) = self.tools.remove(&index) {
                    let arguments = if tool.json.is_empty() && !tool.initial_input.is_null() {
                        tool.initial_input
                    } else {
                        parse_arguments(&tool.json)
                    };
                    out.push(StreamEvent::ToolCall {
                        call: ToolCall { id: tool.id, name: tool.name, arguments },
                    });
                }
            }
            Event::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop_reason = Some(stop_reason(&reason));
                }
                if let Some(usage) = usage {
                    self.add_usage(usage);
                }
            }
            Event::MessageStop => {
                out.push(StreamEvent::Usage { usage: self.usage });
                out.push(StreamEvent::Done { stop_reason: self.stop_reason.unwrap_or(StopReason::EndTurn) });
            }
            Event::Error => {
                return Err(http_error::from_stream_error(NAME, &parse_json(NAME, &event)?));
            }
            Event::Ignored => {}
        }
        Ok(())
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        Err(cut_short(NAME, "message_stop"))
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "tool_use" => StopReason::ToolUse,
        // stop_sequence, pause_turn, refusal
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorKind;

    fn run(events: &[(&str, Value)]) -> (Vec<StreamEvent>, Result<(), ProviderError>) {
        let mut decoder = MessageStream::default();
        let mut out = Vec::new();
        for (name, data) in events {
            let event = SseEvent { event: name.to_string(), data: data.to_string() };
            if let Err(e) = decoder.event(event, &mut out) {
                return (out, Err(e));
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn tool_input_is_assembled_from_json_pieces_at_block_end() {
        let start = json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"ls","input":{}}});
        let piece = |s: &str| json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":s}});
        let (out, result) =
            run(&[("content_block_start", start.clone()), ("content_block_delta", piece("{\"pa"))]);
        result.unwrap();
        assert!(out.is_empty(), "nothing is passed on before the block ends");
        let (out, _) = run(&[
            ("content_block_start", start),
            ("content_block_delta", piece("{\"pa")),
            ("content_block_delta", piece("th\": \"/\"}")),
            ("content_block_stop", json!({"type":"content_block_stop","index":1})),
        ]);
        let call = ToolCall { id: "t1".into(), name: "ls".into(), arguments: json!({"path": "/"}) };
        assert_eq!(out, vec![StreamEvent::ToolCall { call }]);
    }

    #[test]
    fn unknown_events_and_blocks_are_ignored() {
        let (out, result) = run(&[
            ("ping", json!({"type":"ping"})),
            ("future_event", json!({"type":"future_event","x":1})),
            (
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}),
            ),
        ]);
        result.unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn malformed_event_data_is_a_protocol_error() {
        let mut decoder = MessageStream::default();
        let event = SseEvent { event: "message_start".into(), data: "{not json".into() };
        let err = decoder.event(event, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol);
        assert!(err.message.contains("{not json"));
    }
}
