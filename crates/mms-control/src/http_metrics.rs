//! Request metrics of the control API: a count and a latency histogram per route, method and
//! status, recorded by one axum middleware ([`track`]).
//!
//! The route label is the matched route template (`/v1/tenants/{tenant}/users/{upn}`), never
//! the raw path: a raw path would carry tenant ids and user names into labels (unbounded series,
//! and user identity in the monitoring system). A request that matched no route counts as
//! `unmatched`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Counter: requests answered, labels `route`, `method`, `status` (the numeric code).
pub const REQUESTS_TOTAL: &str = "mms_http_requests_total";
/// Histogram: time to answer a request, seconds, labels `route`, `method`, `status`.
pub const REQUEST_SECONDS: &str = "mms_http_request_duration_seconds";

/// Latency buckets: most answers are one or two Redis round trips (a millisecond); imports of
/// large directories and what-if previews take seconds.
pub const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Describe the API's families (HELP lines). Call once at start-up, after the recorder is
/// installed.
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        "Control API requests answered, by route template, method and status code."
    );
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time the control API took to answer a request, by route template, method and status code."
    );
}

/// Middleware: count and time every request. Mounted with `Router::layer`, which runs after
/// routing, so [`MatchedPath`] is known.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED.to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    response
}
