//! The retry policy of P7: up to `max_retries` retries on a schedule, then Failed.
//!
//! Owned by the tenant supervisor (D1: supervisors enforce retry limits) and handed to each
//! migration actor, which applies it when it writes its final status under its lease.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub schedule_secs: Vec<u64>,
}

/// What to do after an attempt failed with a transient error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry number `retry` (1-based) at `at`.
    RetryAt { retry: u32, at: DateTime<Utc> },
    /// The limit is reached: the migration is Failed.
    GiveUp,
}

impl RetryPolicy {
    pub fn from_config(cfg: &mms_core::config::RetryConfig) -> Self {
        RetryPolicy {
            max_retries: cfg.max_retries,
            schedule_secs: cfg.schedule_secs.clone(),
        }
    }

    /// Decide after a failed attempt, given how many retries already happened.
    pub fn after_failure(&self, retries_so_far: u32, now: DateTime<Utc>) -> RetryDecision {
        if retries_so_far >= self.max_retries {
            return RetryDecision::GiveUp;
        }
        let retry = retries_so_far + 1;
        let delay = match self.schedule_secs.as_slice() {
            [] => 0,
            s => s[(retry as usize).min(s.len()) - 1],
        };
        RetryDecision::RetryAt {
            retry,
            at: now + Duration::seconds(delay as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_retries_then_give_up() {
        let p = RetryPolicy {
            max_retries: 9,
            schedule_secs: vec![1, 2],
        };
        let now = Utc::now();
        assert_eq!(
            p.after_failure(0, now),
            RetryDecision::RetryAt {
                retry: 1,
                at: now + Duration::seconds(1)
            }
        );
        assert_eq!(
            p.after_failure(5, now),
            RetryDecision::RetryAt {
                retry: 6,
                at: now + Duration::seconds(2)
            }
        );
        assert_eq!(
            p.after_failure(8, now),
            RetryDecision::RetryAt {
                retry: 9,
                at: now + Duration::seconds(2)
            }
        );
        assert_eq!(p.after_failure(9, now), RetryDecision::GiveUp);
    }
}
