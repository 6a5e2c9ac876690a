//! Reading a reply body without ever holding more than a given number of bytes.
//!
//! A calendar resource can be any size (a 50 MB event with an inline attachment is real), and a
//! worker serves many users at once, so no body is read whole on trust. The reader looks at
//! `Content-Length` first (a declared size over the cap is refused before a byte is read), then
//! reads chunk by chunk and stops as soon as the cap would be passed. What it buffered is
//! recorded in [`ReadStats`], which is how the tests check the bound without timing anything.

use std::sync::atomic::{AtomicU64, Ordering};

/// A body read up to a cap.
#[derive(Debug)]
pub(crate) enum Body {
    /// The whole body, at most the cap.
    Complete(Vec<u8>),
    /// The body is larger than the cap. `prefix` holds what was read before the reader stopped
    /// (empty when `Content-Length` already said so); `declared` is the size the server gave.
    Truncated {
        prefix: Vec<u8>,
        declared: Option<u64>,
    },
}

impl Body {
    /// How large the body is, as far as is known: the declared size, else the bytes read.
    pub(crate) fn known_size(&self) -> u64 {
        match self {
            Body::Complete(bytes) => bytes.len() as u64,
            Body::Truncated { prefix, declared } => declared.unwrap_or(prefix.len() as u64),
        }
    }
}

/// The largest buffers any read of one connector held: the evidence that memory stays bounded.
#[derive(Debug, Default)]
pub(crate) struct ReadStats {
    largest_body: AtomicU64,
}

impl ReadStats {
    pub(crate) fn record(&self, buffered: u64) {
        self.largest_body.fetch_max(buffered, Ordering::Relaxed);
    }

    pub(crate) fn largest_body(&self) -> u64 {
        self.largest_body.load(Ordering::Relaxed)
    }
}

/// Read `response`'s body, never buffering more than `cap` bytes.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: u64,
    stats: &ReadStats,
) -> Result<Body, reqwest::Error> {
    let declared = response.content_length();
    if declared.is_some_and(|len| len > cap) {
        return Ok(Body::Truncated {
            prefix: Vec::new(),
            declared,
        });
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(cap) as usize);
    while let Some(chunk) = response.chunk().await? {
        let room = cap.saturating_sub(bytes.len() as u64) as usize;
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            stats.record(bytes.len() as u64);
            return Ok(Body::Truncated {
                prefix: bytes,
                declared,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    stats.record(bytes.len() as u64);
    Ok(Body::Complete(bytes))
}
