//! A real Redis Cluster on loopback: three masters and three replicas (`redis-server
//! --cluster-enabled yes` ×6, joined by `redis-cli --cluster create --cluster-replicas 1`), every
//! node with `appendonly yes` + `appendfsync always`, as the store's durability notes require.
//!
//! [`RedisCluster::shared`] gives one cluster per test binary, for tests that only read and write
//! their own namespace; a test that kills a node starts its own with [`RedisCluster::start`].
//! `cluster-node-timeout` is short (1 s) so that a replica is promoted a second or two after its
//! master dies.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::{free_port, wait_for_port};

/// Masters, and one replica each.
const MASTERS: usize = 3;
/// Milliseconds without an answer after which the cluster considers a node failed.
const NODE_TIMEOUT_MS: u64 = 1_000;
/// How long the cluster may take to form, or to promote a replica.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// One node: its port, data directory and process (None once killed).
struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running cluster. Dropping it kills every node and removes their data.
pub struct RedisCluster {
    nodes: Mutex<Vec<Node>>,
    /// Keeps the data directories for as long as the cluster lives.
    _root: tempfile::TempDir,
    ports: Vec<u16>,
}

/// A node as `CLUSTER NODES` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// Slot ranges served (masters only), inclusive.
    pub slots: Vec<(u16, u16)>,
}

static SHARED: OnceCell<RedisCluster> = OnceCell::const_new();

impl RedisCluster {
    /// The cluster shared by the tests of this binary, started on first use. Its processes are
    /// killed by a watchdog once the test process exits (a static is never dropped).
    pub async fn shared() -> &'static RedisCluster {
        SHARED
            .get_or_init(|| async {
                let cluster = RedisCluster::start().await;
                cluster.watch_parent();
                cluster
            })
            .await
    }

    /// Start a private cluster, formed and with every slot served, when this returns.
    pub async fn start() -> RedisCluster {
        let root = tempfile::tempdir().expect("tempdir");
        let mut nodes = Vec::new();
        for index in 0..MASTERS * 2 {
            let dir = root.path().join(format!("node{index}"));
            std::fs::create_dir_all(&dir).expect("node dir");
            let mut node = Node {
                port: free_port(),
                dir,
                child: None,
            };
            spawn_node(&mut node);
            nodes.push(node);
        }
        for node in &nodes {
            wait_for_port(node.port, 20).await;
        }
        let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is not installed: run `make deps`");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster {
            nodes: Mutex::new(nodes),
            _root: root,
            ports,
        };
        cluster.wait_settled().await;
        cluster
    }

    /// Every node's URL (give them all to a client: any live one is enough to find the rest).
    pub fn node_urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// The hash slot of `key` (CRC16 of its hash tag, as the cluster computes it).
    pub async fn slot_of(&self, key: &str) -> u16 {
        let mut conn = self.any_live_connection().await;
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("CLUSTER KEYSLOT")
    }

    /// The nodes as a live node sees them.
    pub async fn topology(&self) -> Vec<NodeInfo> {
        let mut conn = self.any_live_connection().await;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .expect("CLUSTER NODES");
        parse_nodes(&text)
    }

    /// The port of the live master serving `slot`.
    pub async fn master_of(&self, slot: u16) -> u16 {
        self.topology()
            .await
            .into_iter()
            .find(|n| {
                n.master && !n.failed && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            })
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no live master serves slot {slot}"))
    }

    /// Wait (at most 2 s) until the master on `port` has a replica that acknowledged every write
    /// so far (`WAIT 1 2000`); the number of replicas that did.
    pub async fn wait_replicated(&self, port: u16) -> i64 {
        let mut conn = connect(port).await.expect("the master answers");
        redis::cmd("WAIT")
            .arg(1)
            .arg(2000)
            .query_async(&mut conn)
            .await
            .unwrap_or(0)
    }

    /// SIGKILL the node on `port` (no shutdown, no final AOF rewrite).
    pub fn kill(&self, port: u16) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(node) = nodes.iter_mut().find(|n| n.port == port) {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Wait until a live node other than `dead` serves `slot` as master and the cluster is whole
    /// again (`cluster_state:ok` on every live node): the replica's promotion after its master
    /// was killed. Panics after a minute.
    pub async fn wait_promoted(&self, slot: u16, dead: u16) {
        let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
        loop {
            let promoted = self.topology().await.into_iter().any(|n| {
                n.port != dead
                    && n.master
                    && !n.failed
                    && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            });
            if promoted && self.all_live_ok(false).await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no replica took over slot {slot} from the node on port {dead} within {SETTLE_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until every node reports `cluster_state:ok` and knows all the others, and each
    /// master has a replica that finished its initial sync.
    async fn wait_settled(&self) {
        let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
        loop {
            if self.all_live_ok(true).await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cluster did not form within {SETTLE_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every live node sees the whole cluster and serves its slots, and every replica has
    /// finished its initial sync; with `all_replicas`, each master has its replica.
    async fn all_live_ok(&self, all_replicas: bool) -> bool {
        let mut replicas = 0;
        for port in self.live_ports() {
            let Ok(mut conn) = connect(port).await else {
                return false;
            };
            let info: String = match redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
            {
                Ok(info) => info,
                Err(_) => return false,
            };
            let known = format!("cluster_known_nodes:{}", MASTERS * 2);
            if !info.contains("cluster_state:ok") || !info.contains(&known) {
                return false;
            }
            match replica_sync(&mut conn).await {
                ReplicaSync::Master => {}
                ReplicaSync::InSync => replicas += 1,
                ReplicaSync::Syncing => return false,
            }
        }
        !all_replicas || replicas == MASTERS
    }

    fn live_ports(&self) -> Vec<u16> {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    async fn any_live_connection(&self) -> redis::aio::MultiplexedConnection {
        for port in self.live_ports() {
            if let Ok(conn) = connect(port).await {
                return conn;
            }
        }
        panic!("no cluster node answers");
    }

    /// Kill every node when the test process exits: a shell loop that waits for this process
    /// to be gone (a static cluster is never dropped).
    fn watch_parent(&self) {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let pids: Vec<String> = nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(|c| c.id().to_string()))
            .collect();
        let dirs: Vec<String> = nodes.iter().map(|n| n.dir.display().to_string()).collect();
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill -9 {pids} 2>/dev/null; rm -rf {dirs}",
            parent = std::process::id(),
            pids = pids.join(" "),
            dirs = dirs.join(" "),
        );
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let nodes = self.nodes.get_mut().unwrap_or_else(|p| p.into_inner());
        for node in nodes.iter_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Whether the node, if it is a replica, has finished its initial sync with its master. A
/// replica promoted before that has an empty dataset: `cluster create` returns as soon as the
/// nodes agree on the slots, and a test that writes and then kills a master within the first
/// seconds would otherwise lose everything on the failover (seen in CI: every status row gone).
async fn replica_sync(conn: &mut redis::aio::MultiplexedConnection) -> ReplicaSync {
    let Ok(info) = redis::cmd("INFO")
        .arg("replication")
        .query_async::<String>(conn)
        .await
    else {
        return ReplicaSync::Syncing;
    };
    if !info.contains("role:slave") {
        ReplicaSync::Master
    } else if info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0") {
        ReplicaSync::InSync
    } else {
        ReplicaSync::Syncing
    }
}

/// A node's replication state, from `INFO replication`.
enum ReplicaSync {
    Master,
    InSync,
    /// A replica still loading its master's data, or one that cannot be asked.
    Syncing,
}

fn spawn_node(node: &mut Node) {
    let child = Command::new("redis-server")
        .arg("--port")
        .arg(node.port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
        .arg("--dir")
        .arg(&node.dir)
        .args(["--cluster-enabled", "yes"])
        .arg("--cluster-config-file")
        .arg(node.dir.join("nodes.conf"))
        .arg("--cluster-node-timeout")
        .arg(NODE_TIMEOUT_MS.to_string())
        // A replica may always take over, however long it was cut off: the test kills masters on
        // purpose and wants the promotion.
        .args(["--cluster-replica-validity-factor", "0"])
        .args(["--cluster-require-full-coverage", "no"])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        // The initial sync of a replica starts at once instead of after the default 5 s wait for
        // more replicas to share the transfer.
        .args(["--repl-diskless-sync-delay", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is not installed: run `make deps`");
    node.child = Some(child);
}

async fn connect(port: u16) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    client
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Duration::from_secs(2))
                .set_response_timeout(Duration::from_secs(2)),
        )
        .await
}

/// Parse `CLUSTER NODES`: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link>
/// <slot>...`.
fn parse_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let address = fields[1].split('@').next()?;
            let port = address.rsplit(':').next()?.parse().ok()?;
            let flags = fields[2];
            let slots = fields[8..]
                .iter()
                .filter(|slot| !slot.starts_with('['))
                .filter_map(|slot| match slot.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => slot.parse().ok().map(|s| (s, s)),
                })
                .collect();
            Some(NodeInfo {
                id: fields[0].to_string(),
                port,
                master: flags.contains("master"),
                failed: flags.contains("fail") && !flags.contains("fail?")
                    || flags.contains("noaddr"),
                slots,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines_parse() {
        let text = "07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected\n\
                    67ed 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922\n\
                    e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [5461->-e7d1]\n\
                    6ec2 127.0.0.1:30003@40003 master,fail - 0 0 3 disconnected 12000\n";
        let nodes = parse_nodes(text);
        assert_eq!(nodes.len(), 4);
        assert!(!nodes[0].master);
        assert_eq!(nodes[1].slots, vec![(5461, 10922)]);
        assert_eq!(
            (nodes[2].port, nodes[2].slots.clone()),
            (30001, vec![(0, 5460)])
        );
        assert!(nodes[3].failed && nodes[3].slots == vec![(12000, 12000)]);
    }
}
