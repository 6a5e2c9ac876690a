//! A private `redis-server` per test, killable and restartable on the same port and data.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::{free_port, wait_for_port};

pub struct RedisServer {
    pub port: u16,
    aof: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Start a fresh server; with `aof` every write is fsynced to an append-only file, so a
    /// restart keeps what was acknowledged.
    pub async fn start(aof: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = RedisServer {
            port: free_port(),
            aof,
            dir,
            child: None,
        };
        server.spawn().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server is not installed: run `make deps`");
        let pid = child.id();
        self.child = Some(child);
        wait_for_port(self.port, 20).await;
        // Tests start servers in parallel and `free_port` cannot reserve a port: another test's
        // server may have taken this one between our pick and our bind (ours then exits, and the
        // port answers for someone else). The server that answers must be ours.
        if self.answering_pid().await != Some(pid) {
            self.kill();
            self.port = free_port();
            Box::pin(self.spawn()).await;
        }
    }

    /// The `process_id` of the server answering on our port.
    async fn answering_pid(&self) -> Option<u32> {
        let mut conn = self
            .client()
            .get_multiplexed_async_connection()
            .await
            .ok()?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// SIGKILL the server (no shutdown save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis url")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
