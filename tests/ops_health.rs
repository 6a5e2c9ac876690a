//! Health and logs of real `mms api` and `mms worker` processes (issue 8, D6):
//! - `/healthz` answers while the process runs; `/readyz` is 200 while Redis answers and 503
//!   naming Redis once it is stopped (SIGKILL, for real), and 200 again after Redis is back; on
//!   the API's own port and on each process's metrics port;
//! - the log is plain text without escape codes when it goes to a file, JSON with
//!   `log.format = "json"`, and `RUST_LOG` wins over `log.level`.

mod common;
mod ops_common;

use std::time::Duration;

use common::Stack;
use mms_core::config::LogFormat;
use ops_common::{get, wait_status, MmsProcess};

const TOKEN: &str = "ops-test-operator-token-0123456789abcdef";
const WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_redis_and_liveness_does_not() {
    let mut stack = Stack::start(false).await;
    let mut cfg = stack.config(None);
    cfg.api.operator_token = Some(TOKEN.into());
    let path = stack.write_config(&cfg, "health");
    let api = MmsProcess::spawn(&path, "api", "api", &[]);
    let worker = MmsProcess::spawn(&path, "worker", "worker-1", &[]);

    let ready_urls = [
        (api.api_url("/readyz"), &api),
        (api.metrics_url("/readyz"), &api),
        (worker.metrics_url("/readyz"), &worker),
    ];
    for (url, p) in &ready_urls {
        let body = wait_status(url, 200, WITHIN, || p.log()).await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["ready"], true, "{url}: {body}");
    }
    // The worker's readiness includes its consumer groups.
    let body = get(&worker.metrics_url("/readyz")).await.unwrap().1;
    assert!(body.contains("consumer_group"), "{body}");

    stack.redis.kill();
    for (url, p) in &ready_urls {
        let body = wait_status(url, 503, WITHIN, || p.log()).await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["ready"], false, "{url}: {body}");
        let redis = json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "redis")
            .unwrap_or_else(|| panic!("{url} reports the redis check: {body}"));
        assert_eq!(redis["ok"], false, "{body}");
        assert!(
            redis["detail"].as_str().unwrap().contains("redis_url"),
            "says what to check: {body}"
        );
    }
    for url in [
        api.api_url("/healthz"),
        api.metrics_url("/healthz"),
        worker.metrics_url("/healthz"),
    ] {
        assert_eq!(
            get(&url).await.map(|a| a.0),
            Some(200),
            "{url} alive without Redis"
        );
    }

    stack.redis.restart().await;
    for (url, p) in &ready_urls {
        wait_status(url, 200, WITHIN, || p.log()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_plain_in_files_json_on_request_and_rust_log_wins() {
    let stack = Stack::start(false).await;
    let mut cfg = stack.config(None);
    // A level that would hide the start-up lines: RUST_LOG must win over it.
    cfg.log.level = "error".into();
    let text_path = stack.write_config(&cfg, "text");
    cfg.log.format = LogFormat::Json;
    let json_path = stack.write_config(&cfg, "json");

    let quiet = MmsProcess::spawn(&text_path, "worker", "quiet", &[]);
    let text = MmsProcess::spawn(&text_path, "worker", "text", &[("RUST_LOG", "info")]);
    let json = MmsProcess::spawn(&json_path, "worker", "json", &[("RUST_LOG", "info")]);
    for p in [&quiet, &text, &json] {
        wait_status(&p.metrics_url("/readyz"), 200, WITHIN, || p.log()).await;
    }
    let wait_log = |p: &MmsProcess| {
        let deadline = std::time::Instant::now() + WITHIN;
        loop {
            let log = p.log();
            if log.contains("worker started") {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} never logged its start:\n{log}",
                p.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let plain = wait_log(&text);
    assert!(
        !plain.contains('\u{1b}'),
        "no colour codes in a log file:\n{plain:?}"
    );
    assert!(plain.contains(" INFO "), "plain text lines:\n{plain}");
    let lines = wait_log(&json);
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log.format = json gives JSON lines ({e}): {line}"));
        assert!(
            event["level"].is_string() && event["fields"].is_object(),
            "{line}"
        );
    }
    // log.level = "error" alone: nothing at info.
    assert!(
        !quiet.log().contains("worker started"),
        "log.level applies without RUST_LOG:\n{}",
        quiet.log()
    );
}
