//! What a run cost Redis, read from Redis itself: commands by name (`INFO commandstats`, which
//! counts the commands scripts run too), bytes received (`INFO stats`), memory (`INFO memory`)
//! and the bytes each key of the run's namespace holds (`MEMORY USAGE`).

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;

/// Counters read from one `INFO` snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedisCounters {
    /// Calls per command (`cmdstat_evalsha` → `evalsha`).
    pub calls: BTreeMap<String, u64>,
    /// `total_net_input_bytes`: what clients sent.
    pub net_input_bytes: u64,
    /// `used_memory`.
    pub used_memory: u64,
}

impl RedisCounters {
    pub async fn read<C: ConnectionLike + Send>(conn: &mut C) -> redis::RedisResult<RedisCounters> {
        let commandstats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(conn)
            .await?;
        let stats: String = redis::cmd("INFO").arg("stats").query_async(conn).await?;
        let memory: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
        Ok(RedisCounters {
            calls: parse_commandstats(&commandstats),
            net_input_bytes: info_field(&stats, "total_net_input_bytes"),
            used_memory: info_field(&memory, "used_memory"),
        })
    }

    /// Calls made between `self` (before) and `after`, per command, zeros left out.
    pub fn calls_since(&self, after: &RedisCounters) -> BTreeMap<String, u64> {
        after
            .calls
            .iter()
            .map(|(name, n)| {
                (
                    name.clone(),
                    n.saturating_sub(self.calls.get(name).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// `cmdstat_get:calls=3,usec=…` lines → {"get": 3}.
fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

fn info_field(info: &str, field: &str) -> u64 {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes held by every key matching `pattern` (`MEMORY USAGE … SAMPLES 0`, exact), and how many
/// keys there are.
pub async fn namespace_bytes<C: ConnectionLike + Send>(
    conn: &mut C,
    pattern: &str,
) -> redis::RedisResult<(u64, u64)> {
    let mut cursor: u64 = 0;
    let (mut bytes, mut keys) = (0u64, 0u64);
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        for key in batch {
            let usage: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(conn)
                .await?;
            bytes += usage.unwrap_or(0);
            keys += 1;
        }
        if next == 0 {
            return Ok((bytes, keys));
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_lines_become_calls_per_command() {
        let info = "# Commandstats\r\ncmdstat_evalsha:calls=12,usec=50,usec_per_call=4.1\r\ncmdstat_xadd:calls=3,usec=1\r\n";
        let calls = parse_commandstats(info);
        assert_eq!(calls.get("evalsha"), Some(&12));
        assert_eq!(calls.get("xadd"), Some(&3));
        assert_eq!(
            info_field("a:1\r\nused_memory:1024\r\n", "used_memory"),
            1024
        );
    }
}
