//! Server-sent events (the WHATWG `text/event-stream` format), parsed from a byte stream.
//!
//! [`SseParser`] is sans-I/O: feed it bytes in whatever pieces the network delivers and it returns the
//! complete events. It handles events and lines split across chunks, `\n`, `\r\n` and lone `\r` line
//! endings, comment lines, multi-line `data`, and a leading byte-order mark. [`events`] wraps it around
//! any byte stream, such as `reqwest::Response::bytes_stream()`.

use std::collections::VecDeque;

use futures::{Stream, StreamExt};

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty means the default type, `message`.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Incremental event-stream parser.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line whose end has not arrived yet.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` at the start of the next one ends the same line.
    after_cr: bool,
    /// The first line has been seen (a byte-order mark may only precede it).
    seen_first_line: bool,
    event: String,
    /// Data lines so far, each followed by `\n`; empty means no `data` field yet.
    data: String,
}

const BOM: &[u8] = "\u{feff}".as_bytes();

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the next piece of the stream, returning the events it completes.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            if std::mem::take(&mut self.after_cr) && bytes[0] == b'\n' {
                bytes = &bytes[1..];
                continue;
            }
            match bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
                None => {
                    self.line.extend_from_slice(bytes);
                    break;
                }
                Some(end) => {
                    self.line.extend_from_slice(&bytes[..end]);
                    self.after_cr = bytes[end] == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.process_line(&line) {
                        out.push(event);
                    }
                    bytes = &bytes[end + 1..];
                }
            }
        }
        out
    }

    /// Ends the stream. Strictly, an event not followed by a blank line is discarded; servers that close
    /// the connection right after their last `data:` line are common enough that it is dispatched instead.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let line = std::mem::take(&mut self.line);
        let mut event = None;
        if !line.is_empty() {
            event = self.process_line(&line);
        }
        event.or_else(|| self.dispatch())
    }

    fn process_line(&mut self, mut line: &[u8]) -> Option<SseEvent> {
        if !std::mem::replace(&mut self.seen_first_line, true) {
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"event" => self.event = value.into_owned(),
            b"data" => {
                self.data.push_str(&value);
                self.data.push('\n');
            }
            // `id` and `retry` only matter for reconnecting, which a model call never does.
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        let mut data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return None;
        }
        data.pop();
        Some(SseEvent { event, data })
    }
}

/// The events of a byte stream. A transport error is passed through and ends the stream.
pub fn events<S, B, E>(bytes: S) -> impl Stream<Item = Result<SseEvent, E>> + Send
where
    S: Stream<Item = Result<B, E>> + Send + Unpin,
    B: AsRef<[u8]> + Send,
    E: Send,
{
    struct State<S, E> {
        bytes: S,
        parser: SseParser,
        ready: VecDeque<Result<SseEvent, E>>,
        ended: bool,
    }
    let state = State { bytes, parser: SseParser::new(), ready: VecDeque::new(), ended: false };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                return Some((item, st));
            }
            if st.ended {
                return None;
            }
            match st.bytes.next().await {
                Some(Ok(chunk)) => st.ready.extend(st.parser.feed(chunk.as_ref()).into_iter().map(Ok)),
                Some(Err(e)) => {
                    st.ready.push_back(Err(e));
                    st.ended = true;
                }
                None => {
                    st.ready.extend(st.parser.finish().map(Ok));
                    st.ended = true;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out: Vec<SseEvent> = chunks.iter().flat_map(|c| p.feed(c)).collect();
        out.extend(p.finish());
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into() }
    }

    #[test]
    fn named_events_and_default_events_are_dispatched_on_blank_lines() {
        let got = parse_all(&[b"event: ping\ndata: {}\n\ndata: hello\n\n"]);
        assert_eq!(got, vec![ev("ping", "{}"), ev("", "hello")]);
    }

    #[test]
    fn crlf_and_lone_cr_end_lines() {
        let got = parse_all(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]);
        assert_eq!(got, vec![ev("", "a"), ev("", "b"), ev("", "c")]);
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let got = parse_all(&[b"data: a\r", b"\n\r", b"\ndata: b\n\n"]);
        assert_eq!(got, vec![ev("", "a"), ev("", "b")]);
    }

    #[test]
    fn comments_are_ignored_and_multi_line_data_is_joined() {
        let got = parse_all(&[b": keep-alive\n\ndata: one\n: note\ndata:two\ndata\n\n"]);
        assert_eq!(got, vec![ev("", "one\ntwo\n")]);
    }

    #[test]
    fn only_one_space_after_the_colon_is_stripped() {
        assert_eq!(parse_all(&[b"data:  x \n\n"]), vec![ev("", " x ")]);
    }

    #[test]
    fn events_without_data_are_not_dispatched() {
        assert_eq!(parse_all(&[b"event: ping\n\nid: 7\nretry: 10\n\n"]), vec![]);
    }

    #[test]
    fn a_byte_order_mark_is_skipped_even_when_split() {
        let bom = "\u{feff}".as_bytes();
        let got = parse_all(&[&bom[..1], &bom[1..], b"data: x\n\n"]);
        assert_eq!(got, vec![ev("", "x")]);
    }

    #[test]
    fn utf8_split_across_chunks_survives() {
        let text = "data: héllo ✓\n\n".as_bytes();
        let got = parse_all(&[&text[..8], &text[8..15], &text[15..]]);
        assert_eq!(got, vec![ev("", "héllo ✓")]);
    }

    #[test]
    fn last_event_without_blank_line_is_kept_at_end_of_stream() {
        assert_eq!(parse_all(&[b"data: a\n\ndata: [DONE]"]), vec![ev("", "a"), ev("", "[DONE]")]);
        assert_eq!(parse_all(&[b"data: [DONE]\n"]), vec![ev("", "[DONE]")]);
    }

    #[tokio::test]
    async fn events_passes_transport_errors_through_and_stops() {
        let chunks: Vec<Result<&[u8], &str>> = vec![Ok(b"data: a\n\nda"), Err("reset"), Ok(b"ta: b\n\n")];
        let got: Vec<_> = events(futures::stream::iter(chunks)).collect().await;
        assert_eq!(got, vec![Ok(ev("", "a")), Err("reset")]);
    }

    fn line_end() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
    }

    /// A stream of events written with random line endings and comments, and the events it holds.
    fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<SseEvent>)> {
        let event = (
            prop::option::of("[a-z_]{1,12}"),
            prop::collection::vec("[^\r\n]{0,20}", 1..4),
            any::<bool>(),
            line_end(),
        );
        prop::collection::vec(event, 0..8).prop_map(|events| {
            let mut text = String::new();
            let mut expected = Vec::new();
            for (name, lines, comment, nl) in events {
                if comment {
                    text.push_str(&format!(": comment{nl}"));
                }
                if let Some(name) = &name {
                    text.push_str(&format!("event: {name}{nl}"));
                }
                for line in &lines {
                    text.push_str(&format!("data: {line}{nl}"));
                }
                text.push_str(nl);
                expected.push(ev(name.as_deref().unwrap_or(""), &lines.join("\n")));
            }
            (text.into_bytes(), expected)
        })
    }

    proptest! {
        #[test]
        fn any_split_into_chunks_yields_the_same_events(
            (bytes, expected) in stream(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&bytes[start..cut]);
                start = cut;
            }
            chunks.push(&bytes[start..]);
            prop_assert_eq!(parse_all(&chunks), expected.clone());
            prop_assert_eq!(parse_all(&[&bytes]), expected);
        }
    }
}
