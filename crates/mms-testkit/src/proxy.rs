//! A fault-injecting HTTP proxy: put it in front of Radicale and switch it to answer
//! `503 Service Unavailable` to every request, to test how the service rides out a mailbox outage,
//! or `501 Not Implemented` to the requests that contain a pattern, to play a server lacking a
//! feature.
//!
//! Each client connection carries one exchange: the proxy reads the request head, rewrites its
//! `Connection` header to `close` and then splices both directions, so the upstream closes after
//! its response and the client opens a new connection for its next request. That is what makes
//! [`FaultProxy::set_failing`] take effect on the very next request even for a client that pools
//! connections.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request head accepted; larger ones are answered 431 and dropped.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Default)]
struct Switches {
    failing: AtomicBool,
    /// Requests whose head or body contains these bytes are answered `501`.
    refused_pattern: Mutex<Option<Vec<u8>>>,
    requests: AtomicU64,
    refused: AtomicU64,
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

    /// While set, requests whose head or body contains `pattern` are answered
    /// `501 Not Implemented`: e.g. `time-range`, to play a server that cannot filter by time.
    pub fn refuse_requests_containing(&self, pattern: Option<&str>) {
        let mut slot = self
            .switches
            .refused_pattern
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *slot = pattern.map(|p| p.as_bytes().to_vec());
    }

    /// Requests seen so far (forwarded and refused).
    pub fn request_count(&self) -> u64 {
        self.switches.requests.load(Ordering::SeqCst)
    }

    /// Requests answered `503` or `501` so far.
    pub fn refused_count(&self) -> u64 {
        self.switches.refused.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn serve(mut client: TcpStream, upstream_port: u16, switches: Arc<Switches>) {
    let Some((head, mut body)) = read_head(&mut client).await else {
        return;
    };
    switches.requests.fetch_add(1, Ordering::SeqCst);
    let failing = switches.failing.load(Ordering::SeqCst);
    let pattern = switches
        .refused_pattern
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if failing || pattern.is_some() {
        // The whole body is needed to match the pattern; and a refusal must drain it anyway:
        // closing a socket with unread input makes the kernel send a reset, and the client would
        // see "connection reset" instead of the refusal.
        let remaining = content_length(&head).saturating_sub(body.len());
        let _ = (&mut client)
            .take(remaining as u64)
            .read_to_end(&mut body)
            .await;
    }
    let matches = |bytes: &[u8], p: &[u8]| !p.is_empty() && bytes.windows(p.len()).any(|w| w == p);
    let refusal = if failing {
        Some((
            "503 Service Unavailable",
            "mailbox server switched off by the test FaultProxy\n",
        ))
    } else if pattern
        .as_deref()
        .is_some_and(|p| matches(&head, p) || matches(&body, p))
    {
        Some((
            "501 Not Implemented",
            "request refused by the test FaultProxy (matched pattern)\n",
        ))
    } else {
        None
    };
    if let Some((status, text)) = refusal {
        switches.refused.fetch_add(1, Ordering::SeqCst);
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = client.write_all(response.as_bytes()).await;
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
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
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
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
