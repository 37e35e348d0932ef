//! Where generated text goes: UTF-8 reassembly, tool-call extraction, and the channel to the caller.

use futures::channel::mpsc::UnboundedSender;

use super::tools::{Piece, ToolCallParser};
use super::utf8::Utf8Stream;
use crate::{ProviderError, StreamEvent};

/// Where events go; knows when the caller has dropped the stream.
pub(super) struct Sink(UnboundedSender<Result<StreamEvent, ProviderError>>);

impl Sink {
    /// A sink sending into `events`.
    pub(super) fn new(events: UnboundedSender<Result<StreamEvent, ProviderError>>) -> Self {
        Sink(events)
    }

    /// Ends the stream with an error.
    pub(super) fn fail(&self, error: ProviderError) {
        let _ = self.0.unbounded_send(Err(error));
    }

    /// Sends one event. A closed channel is noticed by [`Sink::closed`] at the next token.
    pub(super) fn send(&self, event: StreamEvent) {
        let _ = self.0.unbounded_send(Ok(event));
    }

    /// Whether the caller dropped the stream: generation should stop.
    pub(super) fn closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// Decoded text on its way out: UTF-8 reassembly, then (when tools were offered) tool-call extraction.
pub(super) struct TextOut {
    utf8: Utf8Stream,
    tools: Option<ToolCallParser>,
}

impl TextOut {
    pub(super) fn new(with_tools: bool) -> Self {
        TextOut { utf8: Utf8Stream::default(), tools: with_tools.then(ToolCallParser::default) }
    }

    /// Sends what `piece` completes; true once a tool call is complete (generation stops there).
    pub(super) fn push(&mut self, piece: &[u8], sink: &Sink) -> bool {
        let text = self.utf8.push(piece);
        self.emit(&text, sink)
    }

    /// Whether the model has just written the opening tool-call tag (see `ToolCallParser::at_call_body`).
    pub(super) fn at_call_body(&self) -> bool {
        self.utf8.is_empty() && self.tools.as_ref().is_some_and(ToolCallParser::at_call_body)
    }

    /// Sends everything still held back; true if any tool call was made.
    pub(super) fn finish(&mut self, sink: &Sink) -> bool {
        let text = self.utf8.finish();
        self.emit(&text, sink);
        match self.tools.as_mut() {
            Some(parser) => {
                let pieces = parser.finish();
                send_pieces(pieces, sink);
                parser.calls() > 0
            }
            None => false,
        }
    }

    fn emit(&mut self, text: &str, sink: &Sink) -> bool {
        match self.tools.as_mut() {
            None => {
                if !text.is_empty() {
                    sink.send(StreamEvent::TextDelta { text: text.to_string() });
                }
                false
            }
            Some(parser) if text.is_empty() => parser.calls() > 0,
            Some(parser) => {
                send_pieces(parser.push(text), sink);
                parser.calls() > 0
            }
        }
    }
}

fn send_pieces(pieces: Vec<Piece>, sink: &Sink) {
    for piece in pieces {
        sink.send(match piece {
            Piece::Text(text) => StreamEvent::TextDelta { text },
            Piece::Call(call) => StreamEvent::ToolCall { call },
        });
    }
}
