//! The one connection type inside [`crate::Store`]: a single Redis server or a Redis Cluster.
//!
//! [`RedisConnection`] implements [`redis::aio::ConnectionLike`], so every `AsyncCommands`
//! method, pipeline and [`redis::Script`] works on it unchanged and the rest of the store does not
//! know which deployment it talks to. On a cluster each command is routed by its key's slot; a Lua
//! script or a pipeline must therefore touch one slot only, which the key layout guarantees (every
//! tenant key carries the tenant hash tag, see [`crate::keys`]).
//!
//! Both variants reconnect by themselves: the `ConnectionManager` after a restart of the server,
//! the cluster connection after a failover (it re-reads the slot map on `MOVED` or a dead node).

use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};

use crate::StoreError;

/// How long one Redis command may take before the caller gets an error instead of a hang: long
/// enough for a fsync-always AOF write on a busy disk, short enough that a dead server is noticed
/// while the lease (tens of seconds) is still valid.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);
/// Reconnection attempts per failure; with the backoff below this rides out a restart of a few
/// seconds, after which the caller sees an error and retries the operation later.
const RECONNECT_RETRIES: usize = 6;
/// Longest pause between two reconnection attempts (ms).
const RECONNECT_MAX_DELAY_MS: u64 = 2_000;
/// Attempts of one command on a cluster (MOVED, ASK, TRYAGAIN, a node down during a failover):
/// with the backoff below about ten seconds, the time a replica needs to be promoted after its
/// master died (`cluster-node-timeout` plus the election).
const CLUSTER_RETRIES: u32 = 12;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 100;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 1_500;

/// Where the deployment's Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: `redis://host:port/db`.
    Single(String),
    /// A Redis Cluster, given by some of its nodes (`redis://host:port`); the client discovers
    /// the rest from them.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// The cluster when `cluster_nodes` is non-empty, else the single server `url` (the config's
    /// `redis_cluster_nodes` and `redis_url`).
    pub fn from_config(url: &str, cluster_nodes: &[String]) -> RedisTarget {
        if cluster_nodes.is_empty() {
            RedisTarget::Single(url.to_string())
        } else {
            RedisTarget::Cluster(cluster_nodes.to_vec())
        }
    }
}

/// A client that opens connections to the target: one shared connection for the store's
/// commands, more for blocking reads (which must not hold up the shared one).
#[derive(Clone)]
pub(crate) enum RedisClient {
    Single(redis::Client),
    /// Two clients because a cluster client's response timeout is set on the client: the
    /// blocking one allows for the block.
    Cluster {
        shared: ClusterClient,
        blocking: ClusterClient,
    },
}

/// Longest block a [`BlockingConnection`] is asked for.
pub(crate) const MAX_BLOCK: Duration = Duration::from_secs(2);

fn cluster_client(
    nodes: &[String],
    response_timeout: Duration,
) -> Result<ClusterClient, StoreError> {
    Ok(ClusterClient::builder(nodes.iter().map(String::as_str))
        .connection_timeout(CONNECTION_TIMEOUT)
        .response_timeout(response_timeout)
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
        .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
        .build()?)
}

impl RedisClient {
    pub(crate) fn open(target: &RedisTarget) -> Result<RedisClient, StoreError> {
        Ok(match target {
            RedisTarget::Single(url) => RedisClient::Single(redis::Client::open(url.as_str())?),
            RedisTarget::Cluster(nodes) => RedisClient::Cluster {
                shared: cluster_client(nodes, RESPONSE_TIMEOUT)?,
                blocking: cluster_client(nodes, MAX_BLOCK + RESPONSE_TIMEOUT)?,
            },
        })
    }

    /// The store's shared, self-reconnecting connection.
    pub(crate) async fn shared(&self) -> Result<RedisConnection, StoreError> {
        Ok(match self {
            RedisClient::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_connection_timeout(CONNECTION_TIMEOUT)
                    .set_number_of_retries(RECONNECT_RETRIES)
                    .set_max_delay(RECONNECT_MAX_DELAY_MS);
                RedisConnection::Single(
                    ConnectionManager::new_with_config(client.clone(), config).await?,
                )
            }
            RedisClient::Cluster { shared, .. } => {
                RedisConnection::Cluster(shared.get_async_connection().await?)
            }
        })
    }

    /// A connection of its own, for a blocking command (`XREAD BLOCK` of at most [`MAX_BLOCK`]):
    /// a blocked command holds up everything queued behind it on the same connection.
    pub(crate) async fn dedicated(&self) -> Result<BlockingConnection, StoreError> {
        Ok(match self {
            RedisClient::Single(client) => BlockingConnection::Single(
                client
                    .get_multiplexed_async_connection_with_config(
                        &AsyncConnectionConfig::new()
                            .set_response_timeout(MAX_BLOCK + RESPONSE_TIMEOUT)
                            .set_connection_timeout(CONNECTION_TIMEOUT),
                    )
                    .await?,
            ),
            RedisClient::Cluster { blocking, .. } => {
                BlockingConnection::Cluster(blocking.get_async_connection().await?)
            }
        })
    }
}

/// A connection reserved for blocking reads.
pub(crate) enum BlockingConnection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// The store's connection: a single server or a cluster, behind one [`ConnectionLike`].
#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_command(cmd),
            RedisConnection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            RedisConnection::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(conn) => conn.get_db(),
            RedisConnection::Cluster(conn) => conn.get_db(),
        }
    }
}

impl ConnectionLike for BlockingConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            BlockingConnection::Single(conn) => conn.req_packed_command(cmd),
            BlockingConnection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            BlockingConnection::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            BlockingConnection::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            BlockingConnection::Single(conn) => conn.get_db(),
            BlockingConnection::Cluster(conn) => conn.get_db(),
        }
    }
}
