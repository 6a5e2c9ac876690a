//! Real servers for tests, each on a free loopback port, stopped when dropped.
//!
//! - [`redis::RedisServer`]: a private `redis-server` (optionally with AOF), which a test may kill
//!   and restart on the same port and data directory.
//! - [`cluster::RedisCluster`]: a real Redis Cluster on loopback (three masters, three replicas,
//!   AOF fsync always), shared by the tests of a binary or private to one that kills a master.
//! - [`radicale::Radicale`]: a Radicale CalDAV server with its storage in a temp dir, over HTTP
//!   or HTTPS.
//! - [`smtp::SmtpSink`]: an aiosmtpd SMTP server that stores what it receives (or refuses it with
//!   550 / 451 on demand), which tests read back; plain, STARTTLS or implicit TLS, with or
//!   without AUTH.
//! - [`tls::TestCertificates`]: a throwaway CA and a server certificate it signed, for the TLS
//!   variants of the servers above.
//! - [`xandikos::Xandikos`]: a Xandikos CalDAV server, a second real server beside Radicale;
//!   [`caldav::CaldavServer`] starts either, so a test body runs on both.
//! - [`proxy::FaultProxy`]: a fault-injecting HTTP proxy in front of a real server: outages,
//!   423 / 429 with `Retry-After`, resets, rewritten `DAV` headers, corrupted bodies, and a count
//!   of requests in flight.
//!
//! Python servers run from the virtualenv the Makefile creates (`.venv` at the workspace root, or
//! `$MMS_VENV`).

pub mod caldav;
pub mod cluster;
mod process;
pub mod proxy;
pub mod radicale;
pub mod redis;
pub mod smtp;
pub mod tls;
pub mod xandikos;

use std::net::TcpListener;
use std::path::PathBuf;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// The workspace root (where `Cargo.lock` is).
pub fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("Cargo.lock").exists() {
        if !dir.pop() {
            panic!(
                "workspace root not found above {}",
                env!("CARGO_MANIFEST_DIR")
            );
        }
    }
    dir
}

/// The Python virtualenv holding Radicale, Xandikos and aiosmtpd.
pub fn venv() -> PathBuf {
    std::env::var_os("MMS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"))
}

/// Wait until something accepts TCP connections on `port`, or panic after `secs`.
pub async fn wait_for_port(port: u16, secs: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("nothing listens on 127.0.0.1:{port} after {secs}s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
