//! Every configuration file the repository ships loads and validates (issue 10.4): the example
//! an operator copies, and any other `.toml` under `deploy/`. A key renamed in code, or a value
//! a new rule refuses, fails here instead of at someone's first start.

use std::path::{Path, PathBuf};

use mms_core::config::{MailConfig, MailboxConfig, SmtpTls};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn toml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
}

/// Loads `path` with the process environment cleared of `MMS_*` configuration variables, so a
/// developer's own settings cannot make a broken file pass (or a good one fail).
fn load(path: &Path) -> Result<mms_core::config::MmsConfig, String> {
    let mut result = None;
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        result = Some(mms_cli::config::load(Some(path)).map_err(|e| e.to_string()));
        Ok(())
    });
    result.unwrap()
}

#[test]
fn the_example_configuration_loads_with_its_connectors() {
    let cfg = load(&deploy_dir().join("mms.example.toml")).unwrap();
    assert!(matches!(cfg.mailbox, MailboxConfig::Caldav { .. }));
    assert!(matches!(
        cfg.mail,
        MailConfig::Smtp {
            tls: SmtpTls::StartTls,
            ..
        }
    ));
    assert_eq!(cfg.queue.claim_idle_ms, 60_000);
}

#[test]
fn every_configuration_file_under_deploy_loads() {
    let mut files = Vec::new();
    toml_files(&deploy_dir(), &mut files);
    assert!(
        !files.is_empty(),
        "no .toml under {}",
        deploy_dir().display()
    );
    for file in files {
        if let Err(e) = load(&file) {
            panic!("{} does not load: {e}", file.display());
        }
    }
}

#[test]
fn a_copy_of_the_example_with_a_mistyped_key_fails_naming_it() {
    let text = std::fs::read_to_string(deploy_dir().join("mms.example.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mms.toml");
    std::fs::write(&file, text.replace("claim_idle_ms", "claim_idle_msec")).unwrap();
    let err = load(&file).unwrap_err();
    assert!(
        err.contains("claim_idle_msec") && err.contains("claim_idle_ms"),
        "names the mistyped key and the known ones: {err}"
    );
}
