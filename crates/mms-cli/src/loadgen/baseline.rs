//! Each backend's own rate for the work MMS did, measured in the same run: the limit every MMS
//! figure is divided by.
//!
//! The limits are plain Python loops (`py/*.py`, embedded here and run with the venv's Python,
//! the interpreter `make venv` provides): the vdir folders' reads and rewrites (temp file, fsync,
//! rename) with 1 and 4 threads, the same messages over one SMTP connection with `smtplib`, and
//! the same GET + PUT If-Match against Radicale at MMS's per-mailbox concurrency.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};

use super::mix;

const VDIR_SCRIPT: &str = include_str!("py/vdir_baseline.py");
const SMTP_SCRIPT: &str = include_str!("py/smtp_baseline.py");
const CALDAV_SCRIPT: &str = include_str!("py/caldav_baseline.py");

/// Units of work done in some seconds.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub units: u64,
    pub seconds: f64,
}

impl Rate {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.units as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Every `.ics` of the users' folders, flagged `true` where MMS changed it: its text now differs
/// from what the seed generated (regenerated here, byte for byte, from the same seed and clock).
pub fn changed_files(
    root: &Path,
    users: &[String],
    size: usize,
    seed: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(PathBuf, bool)>> {
    let mut out = Vec::with_capacity(users.len() * size);
    for (i, upn) in users.iter().enumerate() {
        let (meetings, _) = mix::meetings(upn, size, seed.wrapping_add(i as u64), now);
        for (name, original) in meetings {
            let path = root.join(upn).join(&name);
            let now_text = std::fs::read(&path)
                .with_context(|| format!("reading {} after the run", path.display()))?;
            out.push((path, now_text != original.as_bytes()));
        }
    }
    Ok(out)
}

/// The vdir loop over `files` with `threads` threads; `scratch` holds its list file.
pub fn vdir(files: &[(PathBuf, bool)], threads: usize, scratch: &Path) -> anyhow::Result<Rate> {
    let listing = scratch.join(format!("vdir-list-{threads}.txt"));
    let text: String = files
        .iter()
        .map(|(path, write)| format!("{}\t{}\n", u8::from(*write), path.display()))
        .collect();
    std::fs::write(&listing, text)?;
    let out = python(
        VDIR_SCRIPT,
        scratch,
        "vdir_baseline.py",
        &[listing.display().to_string(), threads.to_string()],
    )?;
    Ok(Rate {
        units: out["files"].as_u64().unwrap_or(0),
        seconds: out["seconds"].as_f64().unwrap_or(0.0),
    })
}

/// Messages the test sink stored in `mail_dir` (one `N.json` envelope each).
pub fn message_count(mail_dir: &Path) -> usize {
    std::fs::read_dir(mail_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

/// The first `limit` messages of `mail_dir` sent again over one smtplib connection to `port`.
pub fn smtp(mail_dir: &Path, port: u16, limit: usize) -> anyhow::Result<Rate> {
    let scratch = tempfile::tempdir()?;
    let out = python(
        SMTP_SCRIPT,
        scratch.path(),
        "smtp_baseline.py",
        &[
            mail_dir.display().to_string(),
            port.to_string(),
            limit.to_string(),
        ],
    )?;
    Ok(Rate {
        units: out["messages"].as_u64().unwrap_or(0),
        seconds: out["seconds"].as_f64().unwrap_or(0.0),
    })
}

/// GET every event path of `work` on 127.0.0.1:`port`, PUT If-Match those flagged, `threads` at
/// once.
pub fn caldav(
    port: u16,
    work: &[(String, bool)],
    threads: usize,
    scratch: &Path,
) -> anyhow::Result<Rate> {
    let listing = scratch.join("caldav-list.txt");
    let text: String = work
        .iter()
        .map(|(path, write)| format!("{}\t{path}\n", u8::from(*write)))
        .collect();
    std::fs::write(&listing, text)?;
    let out = python(
        CALDAV_SCRIPT,
        scratch,
        "caldav_baseline.py",
        &[
            port.to_string(),
            listing.display().to_string(),
            threads.to_string(),
        ],
    )?;
    Ok(Rate {
        units: work.len() as u64,
        seconds: out["seconds"].as_f64().unwrap_or(0.0),
    })
}

/// Run `script` (written to `scratch/name`) with the venv's Python; its stdout is one JSON object.
fn python(
    script: &str,
    scratch: &Path,
    name: &str,
    args: &[String],
) -> anyhow::Result<serde_json::Value> {
    let path = scratch.join(name);
    std::fs::write(&path, script)?;
    let interpreter = mms_testkit::venv().join("bin").join("python");
    let output = Command::new(&interpreter)
        .arg(&path)
        .args(args)
        .output()
        .with_context(|| {
            format!(
                "running {} (run `make venv`, or set MMS_VENV)",
                interpreter.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "{name} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "{name} printed no JSON: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
