//! What the operations tests (`tests/ops_*.rs`) share: `mms` processes in a given role with their
//! ports, a private Prometheus server (Debian's package), `promtool`, and readers of the
//! Prometheus text format and of PromQL expressions.
#![allow(dead_code)] // each ops test uses a different part

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (where `deploy/` is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An `mms api` or `mms worker` process with its own metrics (and API) port; SIGKILLed when
/// dropped. Its log (stderr) goes to `<config dir>/<name>.log`.
pub struct MmsProcess {
    pub child: Child,
    pub name: String,
    pub metrics_port: u16,
    pub api_port: u16,
    pub log_path: PathBuf,
}

impl MmsProcess {
    /// Start `mms <role>` (`api`, `worker`, `all`) on `config`, with `env` on top.
    pub fn spawn(config: &Path, role: &str, name: &str, env: &[(&str, &str)]) -> MmsProcess {
        let log_path = config.with_file_name(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let metrics_port = mms_testkit::free_port();
        let api_port = mms_testkit::free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mms"));
        cmd.arg(role)
            .arg("--config")
            .arg(config)
            .env("MMS_WORKER_NAME", name)
            .env("MMS_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("MMS_API_ADDR", format!("127.0.0.1:{api_port}"))
            .env_remove("RUST_LOG")
            .env_remove("MMS_LOG")
            .env_remove("MMS_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(log);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let child = cmd.spawn().expect("spawn mms");
        MmsProcess {
            child,
            name: name.to_string(),
            metrics_port,
            api_port,
            log_path,
        }
    }

    pub fn metrics_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.metrics_port)
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for MmsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url`: status and body, or `None` when nothing answers.
pub async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

/// Poll `url` until it answers `status`; the body then. Panics with the last answer and `log`
/// after `within`.
pub async fn wait_status(
    url: &str,
    status: u16,
    within: Duration,
    log: impl Fn() -> String,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let answer = get(url).await;
        if let Some((got, body)) = &answer {
            if *got == status {
                return body.clone();
            }
        }
        if Instant::now() > deadline {
            panic!(
                "{url} never answered {status} (last: {answer:?}); log:\n{}",
                log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `promtool check metrics` on one process's exposition: Ok, or promtool's complaints.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is not installed: run `make deps` (Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(said)
    }
}

/// The metric families of a Prometheus text exposition (from its `# TYPE` lines), with their
/// types.
pub fn families(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("# TYPE ")?;
            let (name, kind) = rest.split_once(' ')?;
            Some((name.to_string(), kind.trim().to_string()))
        })
        .collect()
}

/// The MMS and process metric names a PromQL expression refers to (`mms_*`, `process_*`), with
/// a histogram's `_bucket`/`_sum`/`_count` series kept as written.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| token.starts_with("mms_") || token.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

/// Whether `series` (as a query names it) is exported by one of `families`: the family itself,
/// or a histogram's `_bucket`, `_sum`, `_count`.
pub fn exported(series: &str, families: &[(String, String)]) -> bool {
    families.iter().any(|(name, kind)| {
        series == name
            || (kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| series.strip_suffix(suffix) == Some(name.as_str())))
    })
}

/// A private Prometheus server (the `prometheus` binary of Debian's package) scraping
/// `targets` every second, with the MMS alert rules loaded; SIGKILLed when dropped.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// `jobs`: (job name, ["127.0.0.1:port", ...]).
    pub async fn start(jobs: &[(&str, Vec<String>)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = mms_testkit::free_port();
        let rules = root().join("deploy/prometheus/alerts.yaml");
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{:?}]\nscrape_configs:\n",
            rules.display().to_string()
        );
        for (job, targets) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs: [{{ targets: {targets:?} }}]\n"
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is not installed: run `make deps` (Debian's prometheus package)");
        let prometheus = Prometheus {
            child,
            port,
            _dir: dir,
        };
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        wait_status(&ready, 200, Duration::from_secs(60), || prometheus.log()).await;
        prometheus
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query through the HTTP API: the `data.result` array.
    pub async fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let reply: serde_json::Value = reqwest::Client::new()
            .get(&url)
            .query(&[("query", promql)])
            .send()
            .await
            .expect("query Prometheus")
            .json()
            .await
            .expect("Prometheus answers JSON");
        assert_eq!(reply["status"], "success", "{promql}: {reply}");
        reply["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// GET an API path (e.g. `/api/v1/rules`) as JSON.
    pub async fn api(&self, path: &str) -> serde_json::Value {
        reqwest::get(format!("http://127.0.0.1:{}{path}", self.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The numeric value of one instant-vector sample (`"value": [time, "1.5"]`).
pub fn sample_value(sample: &serde_json::Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}
