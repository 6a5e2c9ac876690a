//! A fault-injecting HTTP proxy, put in front of a real CalDAV server (Radicale, Xandikos) to play
//! the failures and quirks of servers nobody here runs:
//!
//! - [`FaultProxy::set_failing`]: answer `503 Service Unavailable` to every request (an outage);
//! - [`FaultProxy::fail_next`] / [`FaultProxy::fail_always`]: answer the next K requests (or all)
//!   with a given [`Fault`]: a status such as `423 Locked` or `429` with a `Retry-After`, or a
//!   connection reset;
//! - [`FaultProxy::refuse_requests_containing`]: `501 Not Implemented` to the requests that contain
//!   a pattern (a server lacking a feature);
//! - [`FaultProxy::add_dav_capability`]: a header-rewriting mode that adds a token (such as
//!   `calendar-auto-schedule`) to the `DAV` header of the server's answers;
//! - [`FaultProxy::corrupt_responses`]: a body-rewriting mode that replaces a marker by bytes of
//!   the same length (e.g. invalid UTF-8), to serve a resource no real server here would store;
//! - [`FaultProxy::hold_each_request`] and [`FaultProxy::max_in_flight`]: count how many requests
//!   the client has open at once, the way a server would see them.
//!
//! Each client connection carries one exchange: the proxy reads the request head, rewrites its
//! `Connection` header to `close`, forwards the request, reads the upstream's whole answer (it
//! closes after it), rewrites it if asked, counts the request as finished, and only then writes the
//! answer to the client. Counting before the client can see the answer is what makes
//! [`FaultProxy::max_in_flight`] exact: a client that opens its next request only after reading an
//! answer is never counted twice. One exchange per connection also makes a switch take effect on
//! the very next request even for a client that pools connections.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request head accepted; larger ones are answered 431 and dropped.
const MAX_HEAD: usize = 64 * 1024;

/// What the proxy does to a request instead of forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (e.g. 423, 429, 503), with a `Retry-After` header if given.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Read the request, then reset the connection (TCP RST) without answering.
    Reset,
}

impl Fault {
    /// `status` without a `Retry-After`.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            retry_after: None,
        }
    }
}

#[derive(Default)]
struct Switches {
    failing: AtomicBool,
    /// Requests whose head or body contains these bytes are answered `501`.
    refused_pattern: Mutex<Option<Vec<u8>>>,
    /// The fault for the next `remaining` requests.
    scripted: Mutex<Option<(Fault, u64)>>,
    /// The fault for every request.
    persistent: Mutex<Option<Fault>>,
    dav_capability: Mutex<Option<String>>,
    corruption: Mutex<Option<(Vec<u8>, Vec<u8>)>>,
    hold: Mutex<Duration>,
    requests: AtomicU64,
    refused: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Switches {
    fn lock<T>(slot: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fault for this request, consuming one of the scripted ones.
    fn fault_now(&self) -> Option<Fault> {
        if self.failing.load(Ordering::SeqCst) {
            return Some(Fault::status(503));
        }
        let mut scripted = Self::lock(&self.scripted);
        if let Some((fault, remaining)) = scripted.as_mut() {
            let fault = fault.clone();
            *remaining -= 1;
            if *remaining == 0 {
                *scripted = None;
            }
            return Some(fault);
        }
        Self::lock(&self.persistent).clone()
    }
}

pub struct FaultProxy {
    pub port: u16,
    switches: Arc<Switches>,
    accept_loop: JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on a free port and forward to `127.0.0.1:upstream_port`.
    pub async fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let switches = Arc::new(Switches::default());
        let shared = switches.clone();
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream_port, shared.clone()));
            }
        });
        FaultProxy {
            port,
            switches,
            accept_loop,
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// While `true`, every request is answered `503` without reaching the upstream.
    pub fn set_failing(&self, failing: bool) {
        self.switches.failing.store(failing, Ordering::SeqCst);
    }

    /// The next `count` requests get `fault` instead of reaching the upstream; later ones pass.
    pub fn fail_next(&self, count: u64, fault: Fault) {
        *Switches::lock(&self.switches.scripted) = (count > 0).then_some((fault, count));
    }

    /// Every request gets `fault` (until called with `None`).
    pub fn fail_always(&self, fault: Option<Fault>) {
        *Switches::lock(&self.switches.persistent) = fault;
    }

    /// While set, requests whose head or body contains `pattern` are answered
    /// `501 Not Implemented`: e.g. `time-range`, to play a server that cannot filter by time.
    pub fn refuse_requests_containing(&self, pattern: Option<&str>) {
        *Switches::lock(&self.switches.refused_pattern) = pattern.map(|p| p.as_bytes().to_vec());
    }

    /// While set, `token` is appended to every `DAV` header the upstream answers with.
    pub fn add_dav_capability(&self, token: Option<&str>) {
        *Switches::lock(&self.switches.dav_capability) = token.map(str::to_string);
    }

    /// While set, every occurrence of `marker` in an answer's body becomes `replacement` (of the
    /// same length, so `Content-Length` and chunk sizes stay right).
    pub fn corrupt_responses(&self, marker: &[u8], replacement: &[u8]) {
        assert_eq!(
            marker.len(),
            replacement.len(),
            "a corruption must keep the body's length"
        );
        *Switches::lock(&self.switches.corruption) = Some((marker.to_vec(), replacement.to_vec()));
    }

    /// Keep each request open for `hold` before forwarding it, so that concurrent requests of a
    /// client overlap at the proxy (and [`FaultProxy::max_in_flight`] sees them).
    pub fn hold_each_request(&self, hold: Duration) {
        *Switches::lock(&self.switches.hold) = hold;
    }

    /// Requests seen so far (forwarded and refused).
    pub fn request_count(&self) -> u64 {
        self.switches.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with a fault (503, 501, a scripted status, a reset) so far.
    pub fn refused_count(&self) -> u64 {
        self.switches.refused.load(Ordering::SeqCst)
    }

    /// The most requests that were open at the proxy at one time.
    pub fn max_in_flight(&self) -> u64 {
        self.switches.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Counts a request as open while it lives.
struct InFlight<'a>(&'a Switches);

impl<'a> InFlight<'a> {
    fn enter(switches: &'a Switches) -> InFlight<'a> {
        let now = switches.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        switches.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(switches)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(mut client: TcpStream, upstream_port: u16, switches: Arc<Switches>) {
    let Some((head, mut body)) = read_head(&mut client).await else {
        return;
    };
    switches.requests.fetch_add(1, Ordering::SeqCst);
    let in_flight = InFlight::enter(&switches);
    // The whole body is needed to match a pattern and to forward it; and a refusal must drain it
    // anyway: closing a socket with unread input makes the kernel send a reset, and the client
    // would see "connection reset" instead of the refusal.
    let remaining = content_length(&head).saturating_sub(body.len());
    let _ = (&mut client)
        .take(remaining as u64)
        .read_to_end(&mut body)
        .await;
    let hold = *Switches::lock(&switches.hold);
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
    let pattern = Switches::lock(&switches.refused_pattern).clone();
    let matches = |bytes: &[u8], p: &[u8]| !p.is_empty() && bytes.windows(p.len()).any(|w| w == p);
    let fault = switches.fault_now().or_else(|| {
        pattern
            .as_deref()
            .is_some_and(|p| matches(&head, p) || matches(&body, p))
            .then(|| Fault::status(501))
    });
    if let Some(fault) = fault {
        switches.refused.fetch_add(1, Ordering::SeqCst);
        drop(in_flight);
        match fault {
            Fault::Reset => {
                // A zero linger makes the close a TCP RST. (The deprecation is about a non-zero
                // linger blocking the thread on drop; a zero one returns at once.)
                #[allow(deprecated)]
                let _ = client.set_linger(Some(Duration::ZERO));
                drop(client);
            }
            Fault::Status {
                status,
                retry_after,
            } => {
                let text = "answered by the test FaultProxy, not by the server behind it\n";
                let retry_after = retry_after
                    .map(|v| format!("Retry-After: {v}\r\n"))
                    .unwrap_or_default();
                let response = format!(
                    "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\n{retry_after}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    reason(status),
                    text.len()
                );
                let _ = client.write_all(response.as_bytes()).await;
                let _ = client.shutdown().await;
            }
        }
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
        drop(in_flight);
        let _ = client
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return;
    };
    if upstream
        .write_all(&with_connection_close(&head))
        .await
        .is_err()
        || upstream.write_all(&body).await.is_err()
    {
        return;
    }
    let mut answer = Vec::new();
    if upstream.read_to_end(&mut answer).await.is_err() {
        return;
    }
    let answer = rewrite_answer(answer, &switches);
    drop(in_flight);
    let _ = client.write_all(&answer).await;
    let _ = client.shutdown().await;
}

/// The upstream's answer with the DAV capability added and the body corrupted, as switched on.
fn rewrite_answer(answer: Vec<u8>, switches: &Switches) -> Vec<u8> {
    let capability = Switches::lock(&switches.dav_capability).clone();
    let corruption = Switches::lock(&switches.corruption).clone();
    if capability.is_none() && corruption.is_none() {
        return answer;
    }
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer;
    };
    let (head, body) = answer.split_at(end + 4);
    let mut head = head.to_vec();
    if let Some(token) = capability {
        let mut out = String::new();
        for line in header_lines(&head) {
            out.push_str(line);
            if line
                .split_once(':')
                .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("dav"))
            {
                out.push_str(", ");
                out.push_str(&token);
            }
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        head = out.into_bytes();
    }
    let mut body = body.to_vec();
    if let Some((marker, replacement)) = corruption {
        let mut at = 0;
        while let Some(found) = body[at..]
            .windows(marker.len())
            .position(|w| w == marker.as_slice())
        {
            let start = at + found;
            body[start..start + marker.len()].copy_from_slice(&replacement);
            at = start + marker.len();
        }
    }
    head.extend_from_slice(&body);
    head
}

fn reason(status: u16) -> &'static str {
    match status {
        423 => "Locked",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fault",
    }
}

/// Read until the blank line ending the head; returns the head (with its final CRLFCRLF) and any
/// body bytes read past it. `None` when the client closed first or the head is too large.
async fn read_head(client: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = buf.split_off(end + 4);
            return Some((buf, body));
        }
        if buf.len() > MAX_HEAD {
            let _ = client
                .write_all(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
            return None;
        }
    }
}

fn header_lines(head: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(head)
        .unwrap_or_default()
        .split("\r\n")
        .filter(|l| !l.is_empty())
}

fn content_length(head: &[u8]) -> usize {
    header_lines(head)
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The same head with any `Connection` header replaced by `Connection: close`.
fn with_connection_close(head: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(head.len() + 20);
    for line in header_lines(head) {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}
