//! Turning a streamed HTTP answer into [`StreamEvent`]s: the part every wire format shares.
//!
//! Each wire format supplies a [`Decoder`] that reads server-sent events; [`stream_answer`] drives it
//! over the response body and guarantees the stream's shape: events in order, then exactly one
//! [`StreamEvent::Done`] or one error, then nothing.

use std::collections::VecDeque;
use std::future::Future;

use futures::StreamExt;

use crate::http;
use crate::sse::{self, SseEvent};
use crate::{ErrorKind, EventStream, ProviderError, StreamEvent};

/// A wire format's reading of its event stream.
pub(crate) trait Decoder: Send + 'static {
    /// Handles one server-sent event, appending what it completes to `out`. The decoder appends
    /// [`StreamEvent::Done`] last when the server marks the end of the answer.
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;

    /// The body ended without the end marker: either the answer is complete anyway (append `Done`) or
    /// it was cut short (return the error).
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;
}

/// The events of a call whose response is still to come: `start` sends the request and decodes the
/// answer; if it fails, its error is the stream's only item.
pub(crate) fn lazy_stream<F>(start: F) -> EventStream
where
    F: Future<Output = Result<EventStream, ProviderError>> + Send + 'static,
{
    futures::stream::once(start)
        .flat_map(|started| match started {
            Ok(events) => events,
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .boxed()
}

/// Decodes a successful streaming response from `url` with `decoder`.
pub(crate) fn stream_answer<D: Decoder>(
    provider: &'static str,
    url: String,
    response: reqwest::Response,
    decoder: D,
) -> EventStream {
    struct State<D> {
        events: futures::stream::BoxStream<'static, Result<SseEvent, reqwest::Error>>,
        decoder: D,
        ready: VecDeque<Result<StreamEvent, ProviderError>>,
        finished: bool,
        provider: &'static str,
        url: String,
    }
    let events = sse::events(Box::pin(response.bytes_stream())).boxed();
    let state = State { events, decoder, ready: VecDeque::new(), finished: false, provider, url };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                return Some((item, st));
            }
            if st.finished {
                return None;
            }
            let mut out = Vec::new();
            let result = match st.events.next().await {
                Some(Ok(event)) => st.decoder.event(event, &mut out),
                Some(Err(e)) => Err(http::transport_error(st.provider, &st.url, &e)),
                None => {
                    st.finished = true;
                    st.decoder.end(&mut out)
                }
            };
            st.finished |= out.iter().any(|e| matches!(e, StreamEvent::Done { .. }));
            st.ready.extend(out.into_iter().map(Ok));
            if let Err(e) = result {
                st.ready.push_back(Err(e));
                st.finished = true;
            }
        }
    })
    .boxed()
}

/// A tool call's arguments from the JSON text the model wrote. Empty text means no arguments. Text
/// that is not JSON is kept as a JSON string, so the tool runner can tell the model what went wrong
/// instead of the whole answer failing.
pub(crate) fn parse_arguments(text: &str) -> serde_json::Value {
    if text.trim().is_empty() {
        return serde_json::Value::Object(Default::default());
    }
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// The payload of an event, as JSON.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    event: &SseEvent,
) -> Result<T, ProviderError> {
    serde_json::from_str(&event.data).map_err(|e| {
        ProviderError::new(
            provider,
            ErrorKind::Protocol,
            format!("could not read a streamed event ({e}): {}", http::shorten(&event.data)),
        )
    })
}

/// The error for a body that ended before the answer did.
pub(crate) fn cut_short(provider: &'static str, expected: &str) -> ProviderError {
    ProviderError::new(
        provider,
        ErrorKind::Protocol,
        format!("the answer stream ended without {expected}: the answer is incomplete"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arguments_that_are_not_json_are_kept_as_text() {
        assert_eq!(parse_arguments(""), json!({}));
        assert_eq!(parse_arguments(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(parse_arguments(r#"{"a":"#), json!(r#"{"a":"#));
    }
}
