//! A local HTTP server that replays recorded responses and records the requests it gets.
//!
//! Fixtures are recorded HTTP responses: a status line, headers, a blank line and the body, byte for
//! byte (see [`Reply::parse`]). The server frames the body itself: with chunked encoding if the
//! recording says `Transfer-Encoding: chunked` (as streaming APIs do), else with `Content-Length`.
//! [`Reply::in_chunks`] writes the body in small pieces, so that events arrive split; with chunked
//! encoding each piece is its own HTTP chunk, which the client is guaranteed to see apart.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One response to replay.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Headers, in order (`Content-Length` and `Transfer-Encoding` are added by the server).
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// Framed with chunked transfer encoding rather than `Content-Length`.
    pub chunked: bool,
    chunk_size: Option<usize>,
    cut_after: Option<usize>,
}

impl Reply {
    /// A reply with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
            chunk_size: None,
            cut_after: None,
        }
    }

    /// A JSON reply.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Reply::new(status).header("content-type", "application/json").body(body.to_string())
    }

    /// An OpenAI-compatible chat stream answering `text` in one piece, then `[DONE]`: a scripted model.
    pub fn openai_stream(text: &str) -> Self {
        let chunk = |delta: serde_json::Value, finish: Option<&str>| {
            let c = serde_json::json!({"object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            format!("data: {c}\n\n")
        };
        let body = [
            chunk(serde_json::json!({"role": "assistant", "content": ""}), None),
            chunk(serde_json::json!({"content": text}), None),
            chunk(serde_json::json!({}), Some("stop")),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        Reply::new(200).header("content-type", "text/event-stream").body(body)
    }

    /// Adds a header. `Transfer-Encoding: chunked` selects chunked framing; `Content-Length` is
    /// ignored (the server computes it).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            self.chunked |= value.to_ascii_lowercase().contains("chunked");
        } else if !name.eq_ignore_ascii_case("content-length") {
            self.headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Writes the body in pieces of at most `size` bytes, each flushed on its own.
    pub fn in_chunks(mut self, size: usize) -> Self {
        assert!(size > 0, "chunk size must be positive");
        self.chunk_size = Some(size);
        self
    }

    /// Closes the connection after `bytes` bytes of the body, before the body's framing says it
    /// ended: the client sees a connection dropped mid-answer.
    pub fn cut_after(mut self, bytes: usize) -> Self {
        self.cut_after = Some(bytes);
        self
    }

    /// A recorded response: `HTTP/1.1 200 OK`, header lines, a blank line, then the body exactly as
    /// sent. The head may use `\n` or `\r\n`. Its framing headers only choose the framing.
    pub fn parse(recorded: &[u8]) -> Self {
        let (head_end, body_start) =
            find_head_end(recorded).expect("fixture has no blank line after its headers");
        let head = std::str::from_utf8(&recorded[..head_end]).expect("fixture head is not UTF-8");
        let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
        let status_line = lines.next().expect("fixture has no status line");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in fixture: {status_line:?}"));
        let mut reply = Reply::new(status).body(&recorded[body_start..]);
        for line in lines {
            let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("bad header line: {line:?}"));
            reply = reply.header(name.trim(), value.trim());
        }
        reply
    }

    /// Reads a recorded response from a file (see [`Reply::parse`]).
    pub fn fixture(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
        Reply::parse(&bytes)
    }

    async fn write_to(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("connection: close\r\n");
        if self.chunked {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
        } else {
            head.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        }
        stream.write_all(head.as_bytes()).await?;
        let body = &self.body[..self.cut_after.unwrap_or(self.body.len()).min(self.body.len())];
        for piece in body.chunks(self.chunk_size.unwrap_or(body.len().max(1))) {
            if self.chunked {
                stream.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
                stream.write_all(piece).await?;
                stream.write_all(b"\r\n").await?;
            } else {
                stream.write_all(piece).await?;
            }
            stream.flush().await?;
            // Let the client read this piece before the next one is written.
            tokio::task::yield_now().await;
        }
        if self.chunked && self.cut_after.is_none() {
            stream.write_all(b"0\r\n\r\n").await?;
        }
        stream.flush().await
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("request body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body))
        })
    }
}

/// The server. Each connection gets the next reply in order; it stops when dropped.
pub struct FixtureServer {
    url: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    task: JoinHandle<()>,
}

impl FixtureServer {
    /// Starts serving `replies`, one per request, in order. Requests beyond them get a 500 saying so.
    pub async fn start(replies: impl IntoIterator<Item = Reply>) -> Self {
        let mut replies = replies.into_iter().collect::<Vec<_>>().into_iter();
        Self::scripted(move |_, count| {
            replies.next().unwrap_or_else(|| {
                Reply::new(500).body(format!("fixture server: no reply left for request {count}"))
            })
        })
        .await
    }

    /// Starts a server that answers each request with `answer(request, n)` (`n` counts from 1): a
    /// scripted model that decides from what it is sent.
    pub async fn scripted(mut answer: impl FnMut(&RecordedRequest, usize) -> Reply + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("cannot bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("listener has no address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let Ok(request) = read_request(&mut stream).await else { continue };
                let count = {
                    let mut all = recorded.lock().expect("request log poisoned");
                    all.push(request.clone());
                    all.len()
                };
                let reply = answer(&request, count);
                let _ = reply.write_to(&mut stream).await;
                let _ = stream.shutdown().await;
            }
        });
        FixtureServer { url, requests, task }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("request log poisoned").clone()
    }

    /// The only request received; panics if there were none or several.
    pub fn single_request(&self) -> RecordedRequest {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request, got {requests:?}");
        requests.into_iter().next().expect("one request")
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request: head up to the blank line, then `Content-Length` bytes of body.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<RecordedRequest> {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    let (head_end, body_start) = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        let n = stream.read(&mut piece).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
    let mut request_line = lines.next().unwrap_or_default().split_whitespace();
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[body_start..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut piece).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&piece[..n]);
    }
    body.truncate(length);
    Ok(RecordedRequest { method, path, headers, body })
}

/// Where the head ends and the body starts, for `\r\n\r\n` or `\n\n`.
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_responses_keep_their_body_bytes_and_drop_framing() {
        let reply = Reply::parse(
            b"HTTP/1.1 429 Too Many Requests\nretry-after: 3\ncontent-length: 9\n\ndata: x\r\n\r\n",
        );
        assert_eq!(reply.status, 429);
        assert_eq!(reply.headers, vec![("retry-after".to_string(), "3".to_string())]);
        assert_eq!(reply.body, b"data: x\r\n\r\n");
        assert!(!reply.chunked);
        assert!(Reply::parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").chunked);
    }

    #[tokio::test]
    async fn replays_in_order_and_records_requests() {
        let reply = Reply::new(200).header("transfer-encoding", "chunked").body("one").in_chunks(1);
        let server = FixtureServer::start([reply]).await;
        let addr = server.url().trim_start_matches("http://").to_string();
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"POST /v1/x HTTP/1.1\r\nHost: h\r\nX-Key: k\r\nContent-Length: 2\r\n\r\n{}")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("1\r\no\r\n1\r\nn\r\n1\r\ne\r\n0\r\n\r\n"), "{response}");
        let request = server.single_request();
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v1/x"));
        assert_eq!(request.header("x-key"), Some("k"));
        assert_eq!(request.json(), serde_json::json!({}));
    }
}
