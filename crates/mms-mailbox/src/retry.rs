//! Quick retries of one CalDAV request (issue 7.7).
//!
//! Some answers say "try again in a moment", not "this mailbox is broken": `423 Locked` (Xandikos
//! answers it to concurrent writes in one calendar), `429 Too Many Requests`, `502` / `503` /
//! `504`, a connection reset, a timeout. Retrying the whole migration on the slow schedule (a
//! minute, then five...) for those wastes the work already done, so the connector retries the
//! single request in place: up to `mailbox.request_retries` times, after a delay that doubles from
//! `mailbox.retry_base_ms`, is jittered (so that many workers hit by one hiccup do not come back
//! in lockstep) and is capped at [`MAX_DELAY`]. A `Retry-After` from the server (seconds or an
//! HTTP date) replaces the computed delay, within the same cap. Only then does the error surface
//! as `Unavailable`, naming the last answer.
//!
//! Every method MMS sends is safe to repeat: REPORT, PROPFIND, GET and OPTIONS read, and a PUT
//! carries `If-Match`, so a repeat of a PUT that did land answers 412, which is reported as such
//! (never retried): the pipeline re-reads and decides again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::StatusCode;

/// No single wait between two tries is longer, whatever the server asks.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Retries after the first try.
    pub retries: u32,
    pub base: Duration,
}

impl RetryPolicy {
    /// The wait before retry `retry` (1-based): the server's `Retry-After` if it gave one,
    /// else `base * 2^(retry-1)` with "equal jitter" (half fixed, half random); both capped.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(MAX_DELAY);
        }
        let exponential = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(MAX_DELAY);
        let half = exponential / 2;
        let jitter = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }
}

/// Answers that mean "the same request may work in a moment".
pub(crate) fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 423 | 429 | 502 | 503 | 504)
}

/// A `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3), as a wait from `now`.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is an RFC 2822 date.
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Tue, 01 Dec 2026 10:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Tue, 01 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn delays_grow_stay_jittered_within_bounds_and_are_capped() {
        let policy = RetryPolicy {
            retries: 10,
            base: Duration::from_millis(200),
        };
        for retry in 1..=10 {
            let full = (Duration::from_millis(200) * (1 << (retry - 1))).min(MAX_DELAY);
            for _ in 0..50 {
                let d = policy.delay(retry, None);
                assert!(
                    d >= full / 2 && d <= full,
                    "retry {retry}: {d:?} vs {full:?}"
                );
            }
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            MAX_DELAY,
            "a Retry-After is honoured only up to the cap"
        );
        assert_eq!(
            policy.delay(3, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
    }
}
