//! Start a server process with its output in a log file, and wait until it listens.
//!
//! When the server dies or never opens its port, the panic message carries the log, so a test
//! failure says why (a missing venv, a bad config key) instead of "connection refused".

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a Python server may take to start on a loaded 2-core machine.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

/// A child process killed (and reaped) when dropped.
pub(crate) struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// Spawn `cmd` with stdout and stderr appended to `log`, then wait until `port` accepts
    /// connections. Panics with the log's content if the process exits or the port stays closed.
    pub(crate) async fn spawn(
        mut cmd: Command,
        what: &str,
        port: u16,
        log: &Path,
    ) -> ServerProcess {
        let out = std::fs::File::create(log).expect("create server log");
        let err = out.try_clone().expect("clone server log handle");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}; run `make venv`"));
        let mut server = ServerProcess { child };
        let deadline = tokio::time::Instant::now() + STARTUP_LIMIT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{what} exited ({status}) before listening on {port}; its log:\n{}",
                    read_log(log)
                );
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{what} does not listen on {port} after {STARTUP_LIMIT:?}; its log:\n{}",
                    read_log(log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_else(|e| format!("(log {} unreadable: {e})", log.display()))
}
