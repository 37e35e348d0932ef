//! Reading a streamed Chat Completions answer.
//!
//! Each event is `data: {chunk}`; the stream ends with `data: [DONE]`. Text comes in
//! `choices[0].delta.content`. Tool calls come in `delta.tool_calls` fragments keyed by `index`: the
//! first has the id and name, later ones add pieces of the arguments; calls are passed on whole when
//! `finish_reason` arrives. Usage comes in a last chunk without choices (`stream_options.include_usage`)
//! or, from Moonshot, inside the final choice.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::decode::{Decoder, cut_short, parse_arguments, parse_json};
use crate::http_error;
use crate::sse::SseEvent;
use crate::{ErrorKind, ProviderError, StopReason, StreamEvent, ToolCall, Usage};

/// The state of one streamed answer.
#[derive(Debug)]
pub(super) struct ChunkStream {
    provider: &'static str,
    /// Tool calls being assembled, by index.
    calls: BTreeMap<usize, PartialCall>,
    /// Whether any tool call was passed on.
    called_tools: bool,
    usage: Option<Usage>,
    finish_reason: Option<StopReason>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<RawUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    delta: Option<Delta>,
    finish_reason: Option<String>,
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    index: Option<usize>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl ChunkStream {
    /// A new answer from provider `provider`.
    pub(super) fn new(provider: &'static str) -> Self {
        ChunkStream {
            provider,
            calls: BTreeMap::new(),
            called_tools: false,
            usage: None,
            finish_reason: None,
        }
    }

    fn choice(&mut self, choice: Choice, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta { text });
            }
            for (position, fragment) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let call = self.calls.entry(fragment.index.unwrap_or(position)).or_default();
                if fragment.id.is_some() {
                    call.id = fragment.id;
                }
                if let Some(function) = fragment.function {
                    // The name comes whole in the first fragment; some servers repeat it in later ones.
                    if let Some(name) = function.name.filter(|_| call.name.is_empty()) {
                        call.name = name;
                    }
                    call.arguments.push_str(function.arguments.as_deref().unwrap_or_default());
                }
            }
        }
        if let Some(usage) = choice.usage {
            self.usage = Some(usage.into());
        }
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(stop_reason(&reason));
            self.flush_calls(out)?;
        }
        Ok(())
    }

    /// Passes on the assembled tool calls, in index order.
    fn flush_calls(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        for (index, call) in std::mem::take(&mut self.calls) {
            if call.name.is_empty() {
                return Err(ProviderError::new(
                    self.provider,
                    ErrorKind::Protocol,
                    format!("tool call {index} in the stream has no function name"),
                ));
            }
            let id = call.id.unwrap_or_else(|| format!("call_{index}"));
            let arguments = parse_arguments(&call.arguments);
            out.push(StreamEvent::ToolCall { call: ToolCall { id, name: call.name, arguments } });
            self.called_tools = true;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        self.flush_calls(out)?;
        if let Some(usage) = self.usage {
            out.push(StreamEvent::Usage { usage });
        }
        let stop_reason = match self.finish_reason {
            // Some servers say `stop` after tool calls; the caller must still run them.
            _ if self.called_tools => StopReason::ToolUse,
            Some(reason) => reason,
            None => StopReason::EndTurn,
        };
        out.push(StreamEvent::Done { stop_reason });
        Ok(())
    }
}

impl Decoder for ChunkStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if event.data.trim() == "[DONE]" {
            return self.finish(out);
        }
        if event.event == "error" {
            return Err(http_error::from_stream_error(self.provider, &parse_json(self.provider, &event)?));
        }
        let chunk: Chunk = parse_json(self.provider, &event)?;
        if let Some(error) = chunk.error {
            return Err(http_error::from_stream_error(self.provider, &serde_json::json!({ "error": error })));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        // We ask for one choice; a server sending more would repeat the answer.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            self.choice(choice, out)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        // A server that closes after `finish_reason` without `[DONE]` has still sent the whole answer.
        if self.finish_reason.is_some() {
            return self.finish(out);
        }
        Err(cut_short(self.provider, "finish_reason or [DONE]"))
    }
}

impl From<RawUsage> for Usage {
    fn from(raw: RawUsage) -> Self {
        Usage { input_tokens: raw.prompt_tokens, output_tokens: raw.completion_tokens }
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        // content_filter and anything else
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(chunks: &[Value]) -> Result<Vec<StreamEvent>, ProviderError> {
        let mut decoder = ChunkStream::new("openai");
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.event(SseEvent { event: String::new(), data: chunk.to_string() }, &mut out)?;
        }
        decoder.end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn stop_after_tool_calls_still_means_tool_use() {
        let out = run(&[
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"ls","arguments":"{}"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}),
        ])
        .unwrap();
        assert_eq!(
            out,
            vec![
                StreamEvent::ToolCall {
                    call: ToolCall { id: "a".into(), name: "ls".into(), arguments: json!({}) }
                },
                StreamEvent::Done { stop_reason: StopReason::ToolUse },
            ]
        );
    }

    #[test]
    fn a_tool_call_without_a_name_is_a_protocol_error() {
        let err = run(&[
            json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}),
            json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}),
        ])
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol);
    }

    #[test]
    fn an_error_chunk_ends_the_answer_with_its_kind() {
        let err = run(&[json!({"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}})])
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ContextTooLong);
        assert!(err.message.contains("maximum context length"));
    }

    #[test]
    fn end_without_finish_reason_is_incomplete() {
        let err = run(&[json!({"choices":[{"index":0,"delta":{"content":"Hel"}}]})]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol);
        assert!(err.message.contains("incomplete"));
    }
}
