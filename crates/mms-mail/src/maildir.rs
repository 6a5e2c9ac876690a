//! The embedded outbox: a Maildir whose `new/` folder receives one file per message.
//!
//! Each message is written to `tmp/` and renamed into `new/`, so a reader never sees half a
//! message. The file name derives from the Message-ID (hex SHA-256 prefix), and a message that
//! was delivered before is not written again: since a resend carries the same Message-ID, the
//! outbox holds each update once however often a retried migration sends it. That is how "an
//! attendee never gets the same update twice" is checked against the embedded outbox: count
//! the files.
//!
//! "Delivered before" is answered without listing a folder: a reader that has seen a message
//! moves it to `cur/` and appends flags to its name (`<name>:2,S`), so its name alone cannot be
//! looked up there, and listing `cur/` on every send made each send cost O(messages in the
//! outbox). Instead each delivery leaves an empty marker `mms-sent/<name>` beside the Maildir
//! folders (readers look only at `tmp/`, `new/` and `cur/`, and the name has no leading dot, so
//! Maildir++ readers do not take it for a sub-folder); a send first looks for the marker and
//! for `new/<name>`, two `stat`s whatever the outbox holds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use mms_core::{OutgoingMessage, SendError, SendReport, Sender};
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

/// The folder of delivery markers, one empty file per delivered message.
const MARKERS: &str = "mms-sent";

fn deliver(root: &Path, name: &str, raw: &[u8]) -> std::io::Result<()> {
    for sub in ["tmp", "new", "cur", MARKERS] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    let marker = root.join(MARKERS).join(name);
    let target = root.join("new").join(name);
    if marker.exists() || target.exists() {
        return Ok(());
    }
    let unique = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = root
        .join("tmp")
        .join(format!("{name}.{}.{unique}", std::process::id()));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(raw)?;
    file.sync_all()?;
    std::fs::rename(&temp, &target)?;
    // After the rename: a crash between the two leaves the message in `new/`, where the next
    // send finds it; the marker only has to outlive its move to `cur/`.
    std::fs::File::create(&marker).map(drop)
}

#[async_trait]
impl Sender for MaildirSender {
    /// Every recipient "accepts": the outbox stores the message once with its header fields;
    /// who reads it is not its business.
    async fn send(&self, message: &OutgoingMessage) -> Result<SendReport, SendError> {
        let root = self.root.clone();
        let name = Self::file_name(&message.message_id);
        let raw = message.raw();
        let outcome = tokio::task::spawn_blocking(move || deliver(&root, &name, &raw)).await;
        match outcome {
            Ok(Ok(())) => Ok(SendReport::default()),
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
