//! The embedded outbox: a Maildir whose `new/` folder receives one file per message.
//!
//! Each message is written to `tmp/` and renamed into `new/`, so a reader never sees half a
//! message. The file name derives from the Message-ID (hex SHA-256 prefix), and a message whose
//! file is already in `new/` or `cur/` is not written again: since a resend carries the same
//! Message-ID, the outbox holds each update once however often a retried migration sends it.
//! That is how "an attendee never gets the same update twice" is checked against the embedded
//! outbox: count the files.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use mms_core::{OutgoingMessage, SendError, Sender};
use sha2::{Digest, Sha256};

/// Keeps temp names of concurrent writes in this process apart.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct MaildirSender {
    root: PathBuf,
}

impl MaildirSender {
    /// An outbox at `root`; `tmp/`, `new/` and `cur/` are created on the first send.
    pub fn new(root: impl Into<PathBuf>) -> MaildirSender {
        MaildirSender { root: root.into() }
    }

    /// The file name a message gets in `new/` (`cur/` adds a `:2,` flags suffix).
    pub fn file_name(message_id: &str) -> String {
        format!(
            "{}.mms",
            hex::encode(&Sha256::digest(message_id.as_bytes())[..16])
        )
    }
}

/// A file in `cur/` is the same name plus `:2,<flags>` once a reader has seen it.
fn already_delivered(root: &Path, name: &str) -> std::io::Result<bool> {
    if root.join("new").join(name).exists() {
        return Ok(true);
    }
    match std::fs::read_dir(root.join("cur")) {
        Ok(entries) => {
            for entry in entries {
                let entry_name = entry?.file_name();
                let entry_name = entry_name.to_string_lossy();
                if entry_name == name
                    || entry_name
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(':'))
                {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn deliver(root: &Path, name: &str, raw: &[u8]) -> std::io::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    if already_delivered(root, name)? {
        return Ok(());
    }
    let unique = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = root
        .join("tmp")
        .join(format!("{name}.{}.{unique}", std::process::id()));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(raw)?;
    file.sync_all()?;
    std::fs::rename(&temp, root.join("new").join(name))
}

#[async_trait]
impl Sender for MaildirSender {
    async fn send(&self, message: &OutgoingMessage) -> Result<(), SendError> {
        let root = self.root.clone();
        let name = Self::file_name(&message.message_id);
        let raw = message.raw.clone();
        let outcome = tokio::task::spawn_blocking(move || deliver(&root, &name, &raw)).await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            // A full disk or a permission problem may be fixed before the retry.
            Ok(Err(e)) => Err(SendError::Transient(format!(
                "cannot write message {} to the Maildir {}: {e}",
                message.message_id,
                self.root.display()
            ))),
            Err(e) => Err(SendError::Transient(format!(
                "Maildir write task did not finish: {e}"
            ))),
        }
    }
}
