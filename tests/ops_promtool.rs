//! The alert rules (deploy/prometheus/alerts.yaml) with Prometheus's own tool: they parse, and
//! their unit tests (deploy/prometheus/tests/alerts_test.yaml) pass, where every alert has one
//! case that fires it and one that does not. Also the compose stack's Prometheus configuration.

mod ops_common;

use std::collections::BTreeMap;
use std::process::Command;

use ops_common::root;

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
        .expect("promtool is not installed: run `make deps` (Debian's prometheus package)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{said}");
    said
}

#[test]
fn alert_rules_parse_and_their_unit_tests_pass() {
    let checked = promtool(&["check", "rules", "deploy/prometheus/alerts.yaml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    promtool(&["test", "rules", "deploy/prometheus/tests/alerts_test.yaml"]);
}

/// Every alert has a unit test that fires it and one that does not.
#[test]
fn every_alert_has_a_firing_and_a_quiet_test() {
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yaml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    assert!(alerts.len() >= 8, "{alerts:?}");
    let tests =
        std::fs::read_to_string(root().join("deploy/prometheus/tests/alerts_test.yaml")).unwrap();
    // (fires, quiet) per alert name: an `alertname:` line followed by `exp_alerts: []` is a quiet case.
    let mut cases: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let lines: Vec<&str> = tests.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.trim_start().strip_prefix("alertname:") else {
            continue;
        };
        let quiet = lines
            .get(i + 1)
            .is_some_and(|next| next.trim() == "exp_alerts: []");
        let entry = cases.entry(name.trim()).or_default();
        if quiet {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    }
    for alert in alerts {
        let (fires, quiet) = cases.get(alert).copied().unwrap_or_default();
        assert!(fires > 0, "{alert} has no test that fires it");
        assert!(quiet > 0, "{alert} has no test where it stays quiet");
    }
}

#[test]
fn compose_prometheus_configuration_is_valid() {
    promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
}
