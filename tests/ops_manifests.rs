//! The deployment files, validated with the tools an operator would use:
//! - every Kubernetes manifest of deploy/k8s, as `kubectl kustomize` renders the kustomization,
//!   with `kubernetes-validate --strict` (PyPI, in the Makefile's venv);
//! - the custom resources (KEDA ScaledObject, ServiceMonitor, PrometheusRule) strictly against
//!   their operators' schemas (deploy/k8s/validate_crs.py);
//! - the PrometheusRule carries exactly the rules of deploy/prometheus/alerts.yaml;
//! - the compose file with `docker compose config` when a docker client with compose is here.

mod ops_common;

use std::path::PathBuf;
use std::process::Command;

use ops_common::root;

fn venv_bin(name: &str) -> PathBuf {
    mms_testkit::venv().join("bin").join(name)
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run `make deps`)"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    files.sort();
    files
}

/// Every manifest file is part of the kustomization, and what `kubectl apply -k deploy/k8s`
/// would send (rendered by `kubectl kustomize`, or the files themselves where kubectl is
/// missing) passes `kubernetes-validate --strict` and the custom-resource schemas. One run of
/// each tool: loading the schemas is the slow part.
#[test]
fn kubernetes_manifests_validate_strictly() {
    let files = manifests();
    assert!(files.len() >= 6, "{files:?}");
    let kustomization =
        std::fs::read_to_string(root().join("deploy/k8s/kustomization.yaml")).unwrap();
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            kustomization.contains(&format!("- {name}")),
            "{name} is listed in deploy/k8s/kustomization.yaml"
        );
    }
    let rendered = tempfile::NamedTempFile::new().unwrap();
    match Command::new("kubectl")
        .args(["kustomize", "deploy/k8s"])
        .current_dir(root())
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "kubectl kustomize: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(rendered.path(), &out.stdout).unwrap();
        }
        Err(_) => {
            eprintln!("kubectl is not installed: validating the files without rendering the kustomization");
            let joined: Vec<String> = files
                .iter()
                .map(|f| std::fs::read_to_string(f).unwrap())
                .collect();
            std::fs::write(rendered.path(), joined.join("\n---\n")).unwrap();
        }
    }
    let text = std::fs::read_to_string(rendered.path()).unwrap();
    assert!(
        text.contains("image: mms:0.1.0"),
        "the image is pinned:\n{text}"
    );
    assert!(!text.contains(":latest"), "no latest tag:\n{text}");
    let (ok, said) = run(Command::new(venv_bin("kubernetes-validate"))
        .arg("--strict")
        .arg(rendered.path()));
    assert!(
        ok && !said.contains("ERROR"),
        "kubernetes-validate --strict:\n{said}"
    );
    for kind in [
        "deployment/mms-api",
        "deployment/mms-worker",
        "service/mms-api",
        "service/mms-worker",
        "configmap/mms-config",
        "secret/mms-secrets",
        "poddisruptionbudget/mms-api",
        "poddisruptionbudget/mms-worker",
    ] {
        assert!(
            said.contains(&format!("passed for resource {kind}")),
            "{kind} validated:\n{said}"
        );
    }
    let (ok, said) = run(Command::new(venv_bin("python"))
        .arg("deploy/k8s/validate_crs.py")
        .arg(rendered.path()));
    assert!(ok, "custom resources against their CRD schemas:\n{said}");
}

#[test]
fn prometheus_rule_matches_the_alert_rules() {
    let script = "import sys, yaml\n\
        a = yaml.safe_load(open('deploy/prometheus/alerts.yaml'))\n\
        r = yaml.safe_load(open('deploy/k8s/prometheusrule.yaml'))\n\
        sys.exit(0 if a['groups'] == r['spec']['groups'] else 'deploy/k8s/prometheusrule.yaml differs from deploy/prometheus/alerts.yaml: copy the groups over')";
    let (ok, said) = run(Command::new(venv_bin("python")).args(["-c", script]));
    assert!(ok, "{said}");
}

/// Pods run as non-root on a read-only root filesystem without privilege escalation, with
/// probes, resources and secrets from the Secret.
#[test]
fn pods_are_locked_down_and_probed() {
    for file in ["deploy/k8s/api.yaml", "deploy/k8s/worker.yaml"] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        for must in [
            "runAsNonRoot: true",
            "readOnlyRootFilesystem: true",
            "allowPrivilegeEscalation: false",
            "readinessProbe:",
            "livenessProbe:",
            "path: /readyz",
            "path: /healthz",
            "resources:",
            "secretKeyRef:",
            "kind: PodDisruptionBudget",
        ] {
            assert!(text.contains(must), "{file} lacks {must}");
        }
    }
    let worker = std::fs::read_to_string(root().join("deploy/k8s/worker.yaml")).unwrap();
    assert!(
        worker.contains("fieldPath: metadata.name"),
        "worker names from the pod name"
    );
}

/// `docker compose config` when the client has compose (v2 plugin or docker-compose v1);
/// images are not pulled or built here, so this checks the file, not a running stack.
#[test]
fn compose_file_is_valid() {
    let compose = root().join("deploy/compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    assert!(
        text.contains("\"--appendfsync\", \"always\""),
        "Redis fsyncs every write"
    );
    for service in [
        "redis:",
        "api:",
        "worker:",
        "radicale:",
        "mailpit:",
        "seed:",
        "prometheus:",
        "grafana:",
    ] {
        assert!(
            text.contains(&format!("\n  {service}")),
            "compose runs {service}"
        );
    }
    let v2 = Command::new("docker").args(["compose", "version"]).output();
    let mut cmd = if v2.is_ok_and(|o| o.status.success()) {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        Command::new("docker-compose")
    } else {
        eprintln!("no docker compose here: deploy/compose.yaml was not checked by compose");
        return;
    };
    let (ok, said) = run(cmd.arg("-f").arg(&compose).args(["config", "-q"]));
    assert!(ok, "compose config:\n{said}");
}
