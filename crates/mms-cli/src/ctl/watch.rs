//! `--watch` of `get-meeting-migration-status`: redraw each user's progress (meetings done /
//! total) until every watched migration is final, then say how it ended as an exit code.

use std::time::Duration;

use serde_json::Value;

use super::args::Output;
use super::client::{text_of, Failure};
use super::render::table;
use super::{EXIT_MIGRATION_FAILED, EXIT_WATCH_TIMEOUT};

/// Seconds between two redraws of `--watch`.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// How a `--watch` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEnd {
    /// Every migration is final; `failed` names those that ended Failed (user, correlation id,
    /// last message).
    AllFinal { draws: usize, failed: Vec<String> },
    /// The timeout ran out first.
    TimedOut { draws: usize, waited: Duration },
}

impl WatchEnd {
    /// 0 when all succeeded, [`EXIT_MIGRATION_FAILED`] when one failed, [`EXIT_WATCH_TIMEOUT`].
    pub fn exit_code(&self) -> u8 {
        match self {
            WatchEnd::AllFinal { failed, .. } if failed.is_empty() => 0,
            WatchEnd::AllFinal { .. } => EXIT_MIGRATION_FAILED,
            WatchEnd::TimedOut { .. } => EXIT_WATCH_TIMEOUT,
        }
    }

    /// What to tell the admin on stderr when the watch did not end in success.
    pub fn problem(&self) -> Option<String> {
        match self {
            WatchEnd::AllFinal { failed, .. } if failed.is_empty() => None,
            WatchEnd::AllFinal { failed, .. } => Some(format!(
                "error: {} migration(s) failed (see get-meeting-migration-transaction-history --identity <user>):\n  {}",
                failed.len(),
                failed.join("\n  ")
            )),
            WatchEnd::TimedOut { waited, .. } => Some(format!(
                "error: timeout: not every migration was final after {} s; they go on running: watch again, or raise --timeout",
                waited.as_secs()
            )),
        }
    }
}

/// `--watch`: fetch the migrations with `fetch` and draw their progress (meetings done / total per
/// user) on `out` until every one is final (Succeeded or Failed), sleeping `interval` between two
/// draws, or until `timeout` (if any) has passed since the start. Tables redraw in place (the
/// screen is cleared first); `--output json` writes one JSON array per line instead, for scripts
/// that follow along.
pub async fn watch_until_final<F, Fut, W>(
    mut fetch: F,
    out: &mut W,
    output: Output,
    interval: Duration,
    timeout: Option<Duration>,
) -> Result<WatchEnd, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Value, Failure>>,
    W: std::io::Write,
{
    let started = tokio::time::Instant::now();
    let mut draws = 0;
    loop {
        let rows = fetch().await?;
        let rows: &[Value] = rows.as_array().map(Vec::as_slice).unwrap_or_default();
        let finals = rows
            .iter()
            .filter(|r| matches!(r["State"].as_str(), Some("Succeeded" | "Failed")))
            .count();
        let frame = if output == Output::Json {
            format!("{}\n", Value::from(rows.to_vec()))
        } else {
            let progress: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let done = r["SucceededMeeting"].as_u64().unwrap_or(0)
                        + r["FailedMeeting"].as_u64().unwrap_or(0);
                    vec![
                        text_of(&r["UserPrincipalName"]),
                        text_of(&r["State"]),
                        format!("{done}/{}", text_of(&r["TotalMeeting"])),
                        text_of(&r["LastMessage"]),
                    ]
                })
                .collect();
            // Clear the screen and go home, so that the table redraws in place.
            format!(
                "\x1b[2J\x1b[H{}{finals} of {} migrations final\n",
                table(
                    &["UserPrincipalName", "State", "Meetings", "LastMessage"],
                    &progress
                ),
                rows.len()
            )
        };
        out.write_all(frame.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::local("output", format!("cannot write the progress: {e}")))?;
        draws += 1;
        if finals == rows.len() {
            let failed = rows
                .iter()
                .filter(|r| r["State"] == "Failed")
                .map(|r| {
                    format!(
                        "{} ({}): {}",
                        text_of(&r["UserPrincipalName"]),
                        text_of(&r["CorrelationId"]),
                        text_of(&r["LastMessage"])
                    )
                })
                .collect();
            return Ok(WatchEnd::AllFinal { draws, failed });
        }
        let waited = started.elapsed();
        let pause = match timeout {
            Some(timeout) if waited >= timeout => return Ok(WatchEnd::TimedOut { draws, waited }),
            Some(timeout) => interval.min(timeout - waited),
            None => interval,
        };
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(user: &str, state: &str, done: u64) -> Value {
        json!({"UserPrincipalName": user, "State": state, "SucceededMeeting": done, "FailedMeeting": 0,
               "TotalMeeting": done, "LastMessage": ""})
    }

    #[tokio::test]
    async fn watch_redraws_until_every_migration_is_final() {
        let frames = [
            json!([
                row("a@x.com", "Pending", 0),
                row("b@x.com", "InProgress", 2)
            ]),
            json!([
                row("a@x.com", "InProgress", 1),
                row("b@x.com", "Succeeded", 4)
            ]),
            json!([row("a@x.com", "Failed", 3), row("b@x.com", "Succeeded", 4)]),
            json!([row("never@x.com", "Pending", 0)]),
        ];
        let mut next = frames.iter();
        let fetch = || {
            let frame = next.next().cloned();
            async move { frame.ok_or_else(|| Failure::local("test", "fetched after all were final")) }
        };
        let mut out = Vec::new();
        let end = watch_until_final(fetch, &mut out, Output::Table, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!(
            end,
            WatchEnd::AllFinal {
                draws: 3,
                failed: vec!["a@x.com (): ".into()]
            },
            "stops at the first draw where all are final"
        );
        assert_eq!(end.exit_code(), EXIT_MIGRATION_FAILED, "a@x.com failed");
        assert!(end.problem().unwrap().contains("a@x.com"));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.matches("\x1b[2J").count(),
            3,
            "each draw clears the screen"
        );
        assert!(text.contains("0 of 2 migrations final"));
        assert!(text.ends_with("2 of 2 migrations final\n"), "{text}");
        assert!(text.contains("b@x.com            Succeeded  4/4"), "{text}");
    }

    #[tokio::test]
    async fn watch_passes_on_a_failed_fetch_and_writes_json_lines() {
        let mut calls = 0;
        let fetch = || {
            calls += 1;
            let reply = if calls == 1 {
                Ok(json!([row("a@x.com", "InProgress", 0)]))
            } else {
                Err(Failure::local("unreachable", "gone"))
            };
            async move { reply }
        };
        let mut out = Vec::new();
        let failure = watch_until_final(fetch, &mut out, Output::Json, Duration::ZERO, None)
            .await
            .unwrap_err();
        assert_eq!(failure.code, "unreachable");
        let text = String::from_utf8(out).unwrap();
        let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line[0]["State"], "InProgress");
    }

    #[tokio::test]
    async fn watch_exits_0_when_all_succeeded_and_3_when_the_timeout_runs_out() {
        let done = json!([row("a@x.com", "Succeeded", 2)]);
        let fetch = || {
            let frame = done.clone();
            async move { Ok(frame) }
        };
        let end = watch_until_final(fetch, &mut Vec::new(), Output::Json, Duration::ZERO, None)
            .await
            .unwrap();
        assert_eq!((end.exit_code(), end.problem()), (0, None));

        let mut fetched = 0;
        let fetch = || {
            fetched += 1;
            async { Ok(json!([row("a@x.com", "InProgress", 1)])) }
        };
        let end = watch_until_final(
            fetch,
            &mut Vec::new(),
            Output::Json,
            Duration::ZERO,
            Some(Duration::ZERO),
        )
        .await
        .unwrap();
        assert!(
            matches!(end, WatchEnd::TimedOut { draws: 1, .. }),
            "{end:?}"
        );
        assert_eq!(end.exit_code(), EXIT_WATCH_TIMEOUT);
        assert!(end.problem().unwrap().contains("--timeout"));
        assert_eq!(fetched, 1);
    }
}
