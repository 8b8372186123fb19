//! One HTTP/1.1 request and its answer on a kept connection: what a delivery worker needs of HTTP.
//!
//! A delivery is a POST whose answer matters only by its status: the worker writes the request in one
//! write, reads the answer's head (parsed by `httparse`, the parser hyper uses) and as much of its body
//! as it takes to know where the next answer would start, and keeps the connection when the answer
//! says it may (RFC 9112 §6.3 and §9.3). Compared with hyper's client connection this skips, per
//! request, the request channel between the worker and the connection's own state machine, the
//! request's and the answer's header maps, and their allocations: under load 1–2% of the relay's
//! CPU (issue 18, item 2; docs/performance.md). Anything this does not need to read to the end (a body
//! without a length, a body over the cap, an upgrade) ends the connection instead.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use axum::http::{HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The longest answer head read (status line and header fields).
const MAX_HEAD: usize = 16 * 1024;
/// The most header fields an answer may carry.
const MAX_FIELDS: usize = 100;
/// The longest line of a chunked body (a chunk's size and extensions, or a trailer field).
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// What is read from the connection at a time.
const READ_CHUNK: usize = 2 * 1024;

/// An answer: its status, and whether the connection may carry the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The final status (interim 1xx answers are skipped).
    pub status: StatusCode,
    /// The answer ended where its framing said and the receiver did not ask to close.
    pub reusable: bool,
}

/// An HTTP/1.1 connection over `S`, one request at a time.
pub struct Connection<S> {
    io: S,
    /// What was read and not yet consumed.
    input: Vec<u8>,
    /// The request being written (kept for its capacity).
    output: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// A connection over `io`, an established byte stream (TCP, or TLS over TCP).
    pub fn new(io: S) -> Connection<S> {
        Connection {
            io,
            input: Vec::new(),
            output: Vec::new(),
        }
    }

    /// Whether the connection, unused for a while, can still carry a request: false when the receiver
    /// closed it or sent something unasked (an idle-timeout `408`, say) meanwhile. Reads without
    /// waiting.
    pub fn usable_after_idle(&mut self) -> bool {
        if !self.input.is_empty() {
            return false;
        }
        let mut scratch = [0u8; 64];
        let mut buf = ReadBuf::new(&mut scratch);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut buf),
            Poll::Pending
        )
    }

    /// POSTs `body` to `target` (origin form) with `fields` (names and values as they go on the wire;
    /// `Content-Length` is added) and reads the answer. `max_body` caps the answer's body read to keep
    /// the connection: a longer one ends it. An error before the answer's status is known is the
    /// reason the request failed; once the status is known, a broken connection only makes the answer
    /// not reusable.
    pub async fn post<'a>(
        &mut self,
        target: &str,
        fields: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
        body: &[u8],
        max_body: usize,
    ) -> Result<Answer, String> {
        self.write_request(target, fields, body).await?;
        self.read_answer(max_body).await
    }

    async fn write_request<'a>(
        &mut self,
        target: &str,
        fields: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
        body: &[u8],
    ) -> Result<(), String> {
        let out = &mut self.output;
        out.clear();
        out.extend_from_slice(b"POST ");
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in fields {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
        self.io
            .write_all(out)
            .await
            .map_err(|e| format!("sending the request: {e}"))?;
        self.io
            .flush()
            .await
            .map_err(|e| format!("sending the request: {e}"))?;
        // A large request does not keep its buffer for the connection's life.
        if out.capacity() > 64 * 1024 {
            *out = Vec::new();
        }
        Ok(())
    }

    /// Reads until `self.input` holds more than `len` bytes; false when the connection ended first.
    async fn fill(&mut self, len: usize) -> Result<bool, std::io::Error> {
        while self.input.len() <= len {
            self.input.reserve(READ_CHUNK);
            if self.io.read_buf(&mut self.input).await? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn read_answer(&mut self, max_body: usize) -> Result<Answer, String> {
        loop {
            let head = self.read_head().await?;
            if head.status.is_informational() {
                if head.status == StatusCode::SWITCHING_PROTOCOLS {
                    // Never asked for: the stream is no longer HTTP.
                    return Err("the receiver switched protocols".into());
                }
                // 100 Continue, 103 Early Hints…: the final answer follows.
                self.input.drain(..head.len);
                continue;
            }
            self.input.drain(..head.len);
            let framed = match head.framing {
                Framing::Empty => true,
                Framing::Length(len) if len <= max_body => self.skip_length(len).await,
                Framing::Chunked => self.skip_chunked(max_body).await,
                Framing::Length(_) | Framing::UntilClose => false,
            };
            // Bytes past the answer were never asked for.
            let reusable = framed && head.keep_alive && self.input.is_empty();
            if !reusable {
                self.input = Vec::new();
            } else if self.input.capacity() > 4 * READ_CHUNK {
                self.input.shrink_to(READ_CHUNK);
            }
            return Ok(Answer {
                status: head.status,
                reusable,
            });
        }
    }

    async fn read_head(&mut self) -> Result<Head, String> {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
            let mut response = httparse::Response::new(&mut fields);
            match response.parse(&self.input) {
                Ok(httparse::Status::Complete(len)) => return Head::of(&response, len),
                Ok(httparse::Status::Partial) if self.input.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => {
                    return Err(format!("answer head longer than {MAX_HEAD} bytes"));
                }
                Err(e) => return Err(format!("unreadable answer: {e}")),
            }
            let have = self.input.len();
            match self.fill(have).await {
                Ok(true) => {}
                Ok(false) if have == 0 => {
                    return Err("connection closed before an answer".into());
                }
                Ok(false) => return Err("connection closed in the middle of an answer".into()),
                Err(e) => return Err(format!("reading the answer: {e}")),
            }
        }
    }

    /// Consumes a body of `len` bytes; false when the connection ended first.
    async fn skip_length(&mut self, len: usize) -> bool {
        if len > 0 && !matches!(self.fill(len - 1).await, Ok(true)) {
            return false;
        }
        self.input.drain(..len);
        true
    }

    /// Consumes a chunked body of at most `max_body` bytes of data, and its trailer; false when it is
    /// longer, malformed, or the connection ended first.
    async fn skip_chunked(&mut self, max_body: usize) -> bool {
        let mut data = 0usize;
        loop {
            let Some(line) = self.line().await else {
                return false;
            };
            let size = line.split(|b| *b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .map(|s| s.trim_matches([' ', '\t']))
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|s| usize::from_str_radix(s, 16).ok());
            let Some(size) = size else {
                return false;
            };
            if size == 0 {
                // The trailer section, up to its empty line, no longer than a head.
                let mut trailer = 0usize;
                loop {
                    match self.line().await {
                        Some(line) if line.is_empty() => return true,
                        Some(line) if trailer + line.len() <= MAX_HEAD => trailer += line.len() + 2,
                        _ => return false,
                    }
                }
            }
            data = data.saturating_add(size);
            if data > max_body {
                return false;
            }
            // The chunk's data and its CRLF.
            if !matches!(self.fill(size + 1).await, Ok(true))
                || &self.input[size..size + 2] != b"\r\n"
            {
                return false;
            }
            self.input.drain(..size + 2);
        }
    }

    /// The next CRLF-terminated line of the input, consumed; `None` when it is too long or the
    /// connection ended first.
    async fn line(&mut self) -> Option<Vec<u8>> {
        let mut searched = 0;
        loop {
            if let Some(at) = self.input[searched..].windows(2).position(|w| w == b"\r\n") {
                let end = searched + at;
                let line = self.input[..end].to_vec();
                self.input.drain(..end + 2);
                return Some(line);
            }
            searched = self.input.len().saturating_sub(1);
            if self.input.len() > MAX_CHUNK_LINE {
                return None;
            }
            let have = self.input.len();
            if !matches!(self.fill(have).await, Ok(true)) {
                return None;
            }
        }
    }
}

/// How an answer's body ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body: 1xx, 204 and 304 answers.
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes: no length, or a transfer coding other than chunked last.
    UntilClose,
}

/// What an answer's head says.
#[derive(Debug)]
struct Head {
    status: StatusCode,
    /// Its length in the input.
    len: usize,
    framing: Framing,
    /// HTTP/1.1 without `Connection: close`.
    keep_alive: bool,
}

impl Head {
    fn of(response: &httparse::Response<'_, '_>, len: usize) -> Result<Head, String> {
        let code = response.code.unwrap_or_default();
        let status =
            StatusCode::from_u16(code).map_err(|_| format!("unreadable answer: status {code}"))?;
        let mut keep_alive = response.version == Some(1);
        let mut length: Option<usize> = None;
        let mut lengths_agree = true;
        let mut coding: Option<bool> = None;
        for field in response.headers.iter() {
            if field.name.eq_ignore_ascii_case("connection") {
                if tokens(field.value).any(|t| t.eq_ignore_ascii_case("close")) {
                    keep_alive = false;
                }
            } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked only when it is the last coding of the last field.
                if let Some(last) = tokens(field.value).last() {
                    coding = Some(last.eq_ignore_ascii_case("chunked"));
                }
            } else if field.name.eq_ignore_ascii_case("content-length") {
                for value in tokens(field.value) {
                    match (value.parse::<usize>().ok(), length) {
                        (Some(v), None) => length = Some(v),
                        (Some(v), Some(known)) if v == known => {}
                        _ => lengths_agree = false,
                    }
                }
            }
        }
        let framing = if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Empty
        } else if let Some(chunked) = coding {
            if chunked {
                Framing::Chunked
            } else {
                Framing::UntilClose
            }
        } else {
            match length {
                Some(len) if lengths_agree => Framing::Length(len),
                _ => Framing::UntilClose,
            }
        };
        Ok(Head {
            status,
            len,
            framing,
            keep_alive,
        })
    }
}

/// The comma-separated tokens of a field value, trimmed; none that are empty.
fn tokens(value: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(value)
        .unwrap_or_default()
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::DuplexStream;

    const MAX_BODY: usize = 64 * 1024;

    fn fields() -> Vec<(HeaderName, HeaderValue)> {
        vec![
            (
                HeaderName::from_static("host"),
                HeaderValue::from_static("b.example:8443"),
            ),
            (
                HeaderName::from_static("signature"),
                HeaderValue::from_static("keyId=\"k\""),
            ),
        ]
    }

    /// A connection and the receiver's end of it.
    fn pair() -> (Connection<DuplexStream>, DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        (Connection::new(ours), theirs)
    }

    async fn answer(theirs: &mut DuplexStream, answer: &[u8], piece: usize) {
        for part in answer.chunks(piece.max(1)) {
            theirs.write_all(part).await.expect("write");
            tokio::task::yield_now().await;
        }
    }

    async fn post(conn: &mut Connection<DuplexStream>, body: &[u8]) -> Result<Answer, String> {
        let fields = fields();
        conn.post(
            "/inbox?x=1",
            fields.iter().map(|(n, v)| (n, v)),
            body,
            MAX_BODY,
        )
        .await
    }

    /// Sends `body`, answered by `raw` in pieces of `piece` bytes.
    async fn exchange(
        raw: &[u8],
        piece: usize,
    ) -> (Result<Answer, String>, Connection<DuplexStream>) {
        let (mut conn, mut theirs) = pair();
        let raw = raw.to_vec();
        // The receiver writes its answer and closes its end: whatever was written is still read.
        let receiver = tokio::spawn(async move { answer(&mut theirs, &raw, piece).await });
        let result = post(&mut conn, b"{}").await;
        receiver.await.expect("receiver");
        (result, conn)
    }

    fn ok(reusable: bool, status: u16) -> Result<Answer, String> {
        Ok(Answer {
            status: StatusCode::from_u16(status).expect("status"),
            reusable,
        })
    }

    #[tokio::test]
    async fn the_request_goes_out_as_written() {
        let (mut conn, mut theirs) = pair();
        let receiver = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.ends_with(b"\r\n\r\n{\"a\":1}") {
                let n = theirs.read(&mut buf).await.expect("read");
                assert!(n > 0, "request cut short: {seen:?}");
                seen.extend_from_slice(&buf[..n]);
            }
            theirs
                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("answer");
            (seen, theirs)
        });
        let result = post(&mut conn, br#"{"a":1}"#).await;
        let (seen, _theirs) = receiver.await.expect("receiver");
        assert_eq!(result, ok(true, 202));
        assert_eq!(
            String::from_utf8(seen).expect("utf8"),
            "POST /inbox?x=1 HTTP/1.1\r\nhost: b.example:8443\r\nsignature: keyId=\"k\"\r\n\
             content-length: 7\r\n\r\n{\"a\":1}"
        );
    }

    #[tokio::test]
    async fn framings_decide_whether_the_connection_is_kept() {
        let cases: &[(&[u8], Result<Answer, String>)] = &[
            (b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", ok(true, 202)),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", ok(true, 200)),
            (b"HTTP/1.1 204 No Content\r\n\r\n", ok(true, 204)),
            (
                b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n",
                ok(true, 202),
            ),
            (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno", ok(false, 401)),
            (b"HTTP/1.1 202 Accepted\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", ok(false, 202)),
            // No length: the body runs to the close.
            (b"HTTP/1.1 202 Accepted\r\n\r\nwhatever", ok(false, 202)),
            (b"HTTP/1.0 202 Accepted\r\nContent-Length: 0\r\n\r\n", ok(false, 202)),
            (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: gzip\r\n\r\n..", ok(false, 202)),
            (b"HTTP/1.1 202 Accepted\r\nContent-Length: 1, 2\r\n\r\nab", ok(false, 202)),
            (b"HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", ok(true, 202)),
            // Interim answers are skipped.
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
                ok(true, 503),
            ),
            // Cut short after the status: the status counts, the connection does not.
            (b"HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nabc", ok(false, 202)),
            (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ok(false, 202)),
            (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", ok(false, 202)),
        ];
        for (raw, expected) in cases {
            for piece in [1, 7, raw.len()] {
                let (result, _conn) = exchange(raw, piece).await;
                assert_eq!(
                    &result,
                    expected,
                    "{} in pieces of {piece}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
    }

    #[tokio::test]
    async fn bytes_past_the_answer_end_the_connection() {
        // Read with the answer: something unasked for follows it (arriving later, the idle check
        // finds it).
        let raw = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n";
        let (result, _) = exchange(raw, raw.len()).await;
        assert_eq!(result, ok(false, 202));
    }

    #[tokio::test]
    async fn bodies_over_the_cap_end_the_connection() {
        let long = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let (result, _) = exchange(long.as_bytes(), 4096).await;
        assert_eq!(result, ok(false, 200));

        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..(MAX_BODY / 1000 + 1) {
            chunked.extend_from_slice(b"3e8\r\n");
            chunked.extend_from_slice(&[b'x'; 1000]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let (result, _) = exchange(&chunked, 4096).await;
        assert_eq!(result, ok(false, 200));

        let mut trailers =
            b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        while trailers.len() <= 2 * MAX_HEAD {
            trailers.extend_from_slice(b"x-trailer: 0123456789\r\n");
        }
        trailers.extend_from_slice(b"\r\n");
        let (result, _) = exchange(&trailers, 4096).await;
        assert_eq!(result, ok(false, 202));
    }

    #[tokio::test]
    async fn no_answer_or_a_bad_one_is_an_error() {
        let (result, _) = exchange(b"", 1).await;
        assert_eq!(result, Err("connection closed before an answer".into()));
        let (result, _) = exchange(b"HTTP/1.1 202 Acc", 1).await;
        assert_eq!(
            result,
            Err("connection closed in the middle of an answer".into())
        );
        let (result, _) = exchange(b"SSH-2.0-OpenSSH\r\n\r\n", 64).await;
        assert!(result.is_err_and(|e| e.starts_with("unreadable answer")));
        let (result, _) = exchange(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 64).await;
        assert_eq!(result, Err("the receiver switched protocols".into()));
        let mut huge = b"HTTP/1.1 202 Accepted\r\n".to_vec();
        while huge.len() <= MAX_HEAD {
            huge.extend_from_slice(b"x-padding: ");
            huge.extend_from_slice(&[b'0'; 400]);
            huge.extend_from_slice(b"\r\n");
        }
        let (result, _) = exchange(&huge, 4096).await;
        assert!(result.is_err_and(|e| e.contains("longer than")));
        let mut many = b"HTTP/1.1 202 Accepted\r\n".to_vec();
        for _ in 0..=MAX_FIELDS {
            many.extend_from_slice(b"x-a: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        let (result, _) = exchange(&many, 4096).await;
        assert!(result.is_err_and(|e| e.starts_with("unreadable answer")));
    }

    #[tokio::test]
    async fn a_kept_connection_carries_the_next_request() {
        let (mut conn, mut theirs) = pair();
        let receiver = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            for status in ["202 Accepted", "503 Busy", "202 Accepted"] {
                let n = theirs.read(&mut buf).await.expect("read");
                assert!(buf[..n].starts_with(b"POST /inbox?x=1 HTTP/1.1\r\n"));
                let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok");
                theirs.write_all(answer.as_bytes()).await.expect("write");
            }
            theirs
        });
        for status in [202, 503, 202] {
            assert_eq!(post(&mut conn, b"{}").await, ok(true, status));
            assert!(conn.usable_after_idle());
        }
        let theirs = receiver.await.expect("receiver");
        drop(theirs);
        tokio::task::yield_now().await;
        assert!(!conn.usable_after_idle(), "closed by the receiver");
    }

    #[tokio::test]
    async fn something_unasked_while_idle_makes_the_connection_unusable() {
        let (mut conn, mut theirs) = pair();
        theirs
            .write_all(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        assert!(!conn.usable_after_idle());
    }
}
