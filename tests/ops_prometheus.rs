//! The operations end to end (issue 8, D6): a real Prometheus server (Debian's package) scrapes
//! an `mms api` process and two `mms worker` processes every second while migrations run;
//! then
//! - every process's `/metrics` passes `promtool check metrics` (HELP on every family, counter
//!   and unit conventions), the API's included;
//! - every query of the Grafana dashboard and every alert expression names only metrics these
//!   processes export, and every dashboard query returns series through Prometheus;
//! - `histogram_quantile` over the stage histogram and the queue-age gauge come back as numbers;
//! - Prometheus loaded the alert rules and evaluates them without error.
//!
//! One Prometheus and one cluster for all of it, to keep `make test` fast.

mod common;
mod ops_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{wait_final, Stack};
use ops_common::{
    exported, families, metric_names, promtool_check_metrics, root, sample_value, wait_status,
    MmsProcess, Prometheus,
};

const TOKEN: &str = "ops-test-operator-token-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_api_and_two_workers_and_the_dashboard_and_alerts_fit() {
    let stack = Stack::start(false).await;
    let mut cfg = stack.config(None);
    cfg.api.operator_token = Some(TOKEN.into());
    let path = stack.write_config(&cfg, "ops");
    let store = stack.store(&cfg).await;
    let tenants = [("alpha", 3), ("bravo", 2)];
    let mut users_of = Vec::new();
    for (tenant, count) in tenants {
        let users: Vec<String> = (1..=count)
            .map(|i| format!("user{i}@{tenant}.example"))
            .collect();
        stack.seed_tenant(&store, tenant, &users, 6).await;
        users_of.push((tenant, users));
    }

    let api = MmsProcess::spawn(&path, "api", "api", &[]);
    let w1 = MmsProcess::spawn(&path, "worker", "worker-1", &[]);
    let w2 = MmsProcess::spawn(&path, "worker", "worker-2", &[]);
    let processes = [&api, &w1, &w2];
    for p in processes {
        wait_status(
            &p.metrics_url("/readyz"),
            200,
            Duration::from_secs(60),
            || p.log(),
        )
        .await;
    }
    wait_status(
        &api.api_url("/readyz"),
        200,
        Duration::from_secs(60),
        || api.log(),
    )
    .await;
    let prometheus = Prometheus::start(&[
        ("mms-api", vec![format!("127.0.0.1:{}", api.metrics_port)]),
        (
            "mms-worker",
            vec![
                format!("127.0.0.1:{}", w1.metrics_port),
                format!("127.0.0.1:{}", w2.metrics_port),
            ],
        ),
    ])
    .await;

    // Migrations started as an admin would, through the API (its request metrics count them).
    let http = reqwest::Client::new();
    for (tenant, users) in &users_of {
        for user in users {
            let response = http
                .post(api.api_url(&format!("/v1/tenants/{tenant}/migrations")))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({ "Identity": user, "TargetMeetingType": "Teams" }))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "start {user}: {response:?}");
        }
    }
    for (tenant, users) in &users_of {
        wait_final(&store, tenant, users, Duration::from_secs(120)).await;
    }

    // Every process's exposition passes promtool; together they export every family the
    // dashboard and the alerts use.
    let mut exported_families = Vec::new();
    for p in processes {
        let text = ops_common::get(&p.metrics_url("/metrics")).await.unwrap().1;
        if let Err(complaints) = promtool_check_metrics(&text) {
            panic!(
                "promtool check metrics on {}:\n{complaints}\n---\n{text}",
                p.name
            );
        }
        let mine = families(&text);
        for must in [
            "mms_build_info",
            "mms_queue_depth",
            "mms_queue_oldest_age_seconds",
            "process_resident_memory_bytes",
        ] {
            assert!(
                mine.iter().any(|(n, _)| n == must),
                "{} exports {must}:\n{text}",
                p.name
            );
        }
        exported_families.extend(mine);
    }
    let api_text = ops_common::get(&api.metrics_url("/metrics"))
        .await
        .unwrap()
        .1;
    assert!(
        api_text.contains("mms_http_requests_total{")
            && api_text.contains("route=\"/v1/tenants/{tenant}/migrations\""),
        "the API counts requests by route template:\n{api_text}"
    );
    for name in [
        "mms_stage_duration_seconds",
        "mms_queue_wait_seconds",
        "mms_http_request_duration_seconds",
    ] {
        assert!(
            exported_families.contains(&(name.to_string(), "histogram".to_string())),
            "{name} is a histogram, not a summary"
        );
    }

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/mms.json")).unwrap(),
    )
    .unwrap();
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(queries.len() >= 10, "the dashboard has its queries");
    let alert_exprs = alert_expressions();
    let mut named = BTreeSet::new();
    for expr in queries.iter().chain(&alert_exprs) {
        for series in metric_names(expr) {
            assert!(
                exported(&series, &exported_families),
                "{series} (in `{expr}`) is exported by no MMS process"
            );
            named.insert(series);
        }
    }
    assert!(named.len() >= 15, "queries cover the families: {named:?}");

    // Through Prometheus: the stage p95 per stage and the queue age per tenant are numbers.
    let p95 = "histogram_quantile(0.95, sum by (le, stage) (rate(mms_stage_duration_seconds_bucket[1m])))";
    let deadline = Instant::now() + Duration::from_secs(60);
    let stages = loop {
        let result = prometheus.query(p95).await;
        let finite: Vec<_> = result
            .iter()
            .filter(|s| sample_value(s).is_finite())
            .cloned()
            .collect();
        if finite.iter().any(|s| s["metric"]["stage"] == "search") {
            break finite;
        }
        assert!(
            Instant::now() < deadline,
            "{p95} has no number yet: {result:?}\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for sample in &stages {
        let seconds = sample_value(sample);
        assert!(seconds > 0.0 && seconds <= 60.0, "stage p95 {sample}");
    }
    let ages = prometheus
        .query("max by (tenant) (mms_queue_oldest_age_seconds)")
        .await;
    let tenants_seen: BTreeSet<String> = ages
        .iter()
        .filter(|s| sample_value(s).is_finite() && sample_value(s) >= 0.0)
        .map(|s| s["metric"]["tenant"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        tenants_seen,
        BTreeSet::from(["alpha".to_string(), "bravo".to_string()]),
        "{ages:?}"
    );

    // Every dashboard query returns series (Grafana's $__rate_interval as one minute).
    for query in &queries {
        let promql = query.replace("$__rate_interval", "1m");
        let result = prometheus.query(&promql).await;
        assert!(
            !result.is_empty(),
            "dashboard query `{promql}` returns nothing"
        );
    }
    let workers = prometheus
        .query("count(mms_build_info{role=~\"worker|all\"})")
        .await;
    assert_eq!(sample_value(&workers[0]), 2.0, "{workers:?}");

    // The alert rules are loaded and evaluate cleanly.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rules = prometheus.api("/api/v1/rules").await;
        let all: Vec<serde_json::Value> = rules["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(all.len(), alert_exprs.len(), "{rules}");
        if all.iter().all(|r| r["health"] == "ok") {
            break;
        }
        assert!(Instant::now() < deadline, "rules not healthy: {rules}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The `expr` of every rule in deploy/prometheus/alerts.yaml (single- or folded multi-line).
fn alert_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yaml")).unwrap();
    let mut exprs = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest == ">" || rest == "|" {
            let mut folded = Vec::new();
            while let Some(next) = lines.peek() {
                if next
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_lowercase())
                    && next.contains(": ")
                    && !next.contains('(')
                {
                    break;
                }
                folded.push(lines.next().unwrap().trim().to_string());
            }
            exprs.push(folded.join(" "));
        } else {
            exprs.push(rest.to_string());
        }
    }
    exprs
}
