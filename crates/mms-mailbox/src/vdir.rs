//! The embedded mailbox store: a vdir, as vdirsyncer and khal lay it out.
//!
//! `root/<user>/` holds one `.ics` file per calendar resource; the href of a resource is its file
//! name and its ETag the hex of the first 16 bytes of the SHA-256 of the file. Files whose name
//! starts with a dot (temp files, editor droppings) and names not ending in `.ics` are not events.
//!
//! A search pages through the folder sorted by file name (the cursor is the last name served) and
//! returns every event: the selector decides which are future meetings of the organizer. The
//! folder is listed once per search (names only, about 60 bytes each: 6 MB for 100,000 events)
//! and only one page of bodies is read at a time. Events added after a search has begun are not
//! part of it, as with a CalDAV listing; the next migration sees them.
//!
//! Writes compare the ETag and replace the file atomically (temp file in the same folder, fsync,
//! rename), holding a process-local lock for the file. That lock suffices because one worker
//! process at a time owns a user's mailbox (the mailbox lease, D4); two processes writing the same
//! vdir outside MMS could still race.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mms_core::{Mailbox, MailboxError, MailboxItem, SearchPage};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::listing::{page_after, ListingCache};

/// Write locks are striped by file: bounded memory, and two files rarely share a stripe.
const LOCK_STRIPES: usize = 64;

/// Distinguishes temp files of concurrent writes within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct VdirMailbox {
    root: PathBuf,
    listings: ListingCache<Vec<String>>,
    write_locks: Vec<Mutex<()>>,
}

/// The ETag of a file's content: hex of the first 16 bytes of its SHA-256.
pub fn vdir_etag(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

impl VdirMailbox {
    /// A store rooted at `root` (one folder per user below it). The root need not exist yet: a
    /// user without a folder is [`MailboxError::MailboxNotFound`].
    pub fn new(root: impl Into<PathBuf>) -> VdirMailbox {
        VdirMailbox {
            root: root.into(),
            listings: ListingCache::default(),
            write_locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The user's folder; a UPN that cannot be a single folder name has no mailbox here.
    fn user_dir(&self, user: &str) -> Result<PathBuf, MailboxError> {
        if !is_plain_name(user) {
            return Err(MailboxError::MailboxNotFound(format!(
                "{user:?} (not usable as a vdir folder name: empty, '.', '..' or containing '/', '\\' or NUL)"
            )));
        }
        Ok(self.root.join(user))
    }

    fn item_path(&self, user: &str, href: &str) -> Result<(PathBuf, PathBuf), MailboxError> {
        let dir = self.user_dir(user)?;
        if !is_plain_name(href) || href.starts_with('.') {
            return Err(MailboxError::ItemNotFound(format!(
                "{href:?} (not a file name of this vdir)"
            )));
        }
        let path = dir.join(href);
        Ok((dir, path))
    }

    fn lock_for(&self, path: &Path) -> &Mutex<()> {
        let mut hasher = DefaultHasher::new();
        path.hash(&mut hasher);
        &self.write_locks[(hasher.finish() % LOCK_STRIPES as u64) as usize]
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn is_event_file(name: &str) -> bool {
    name.ends_with(".ics") && !name.starts_with('.')
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> MailboxError {
    MailboxError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// Run blocking file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, MailboxError> + Send + 'static,
) -> Result<T, MailboxError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| MailboxError::Unavailable(format!("vdir task did not finish: {e}")))?
}

/// Names of the event files of `dir`, sorted.
fn list_events(dir: &Path, user: &str) -> Result<Vec<String>, MailboxError> {
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => {
            MailboxError::MailboxNotFound(user.to_string())
        }
        _ => io_error("cannot list", dir, e),
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("cannot list", dir, e))?;
        // A name that is not UTF-8 cannot be an href; such files are not written by calendar tools.
        if let Ok(name) = entry.file_name().into_string() {
            if is_event_file(&name) {
                names.push(name);
            }
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// Read one event; `None` when the file is gone (deleted since the listing).
fn read_item(dir: &Path, name: &str) -> Result<Option<MailboxItem>, MailboxError> {
    let path = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read", &path, e)),
    };
    let etag = vdir_etag(&bytes);
    let ics = String::from_utf8(bytes).map_err(|e| {
        MailboxError::Protocol(format!(
            "{} is not UTF-8 (byte {}): iCalendar files must be UTF-8; re-encode or remove it",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(Some(MailboxItem {
        href: name.to_string(),
        etag,
        ics,
    }))
}

/// The missing-file error: no folder means no mailbox, otherwise the item is gone.
fn missing(dir: &Path, user: &str, href: &str) -> MailboxError {
    if dir.is_dir() {
        MailboxError::ItemNotFound(href.to_string())
    } else {
        MailboxError::MailboxNotFound(user.to_string())
    }
}

#[async_trait]
impl Mailbox for VdirMailbox {
    async fn search(
        &self,
        user: &str,
        _from: DateTime<Utc>,
        cursor: Option<String>,
        page_size: usize,
    ) -> Result<SearchPage, MailboxError> {
        let dir = self.user_dir(user)?;
        let cached = cursor.as_ref().and_then(|_| self.listings.get(user));
        let names = match cached {
            Some(names) => names,
            None => {
                let (dir, user) = (dir.clone(), user.to_string());
                Arc::new(blocking(move || list_events(&dir, &user)).await?)
            }
        };
        let (page, more) = page_after(&names, cursor.as_deref(), page_size);
        let page: Vec<String> = page.to_vec();
        let next = if more { page.last().cloned() } else { None };
        if next.is_some() {
            self.listings.insert(user.to_string(), names);
        } else {
            self.listings.remove(user);
        }
        let items = blocking(move || {
            let mut items = Vec::with_capacity(page.len());
            for name in &page {
                items.extend(read_item(&dir, name)?);
            }
            Ok(items)
        })
        .await?;
        Ok(SearchPage { items, next })
    }

    async fn get(&self, user: &str, href: &str) -> Result<MailboxItem, MailboxError> {
        let (dir, _) = self.item_path(user, href)?;
        let (user, href) = (user.to_string(), href.to_string());
        blocking(move || read_item(&dir, &href)?.ok_or_else(|| missing(&dir, &user, &href))).await
    }

    async fn put(
        &self,
        user: &str,
        href: &str,
        ics: &str,
        if_match: &str,
    ) -> Result<String, MailboxError> {
        let (dir, path) = self.item_path(user, href)?;
        let _guard = self.lock_for(&path).lock().await;
        let (user, href, ics, if_match) = (
            user.to_string(),
            href.to_string(),
            ics.to_string(),
            if_match.to_string(),
        );
        blocking(move || {
            let current = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(missing(&dir, &user, &href))
                }
                Err(e) => return Err(io_error("cannot read", &path, e)),
            };
            if vdir_etag(&current) != if_match {
                return Err(MailboxError::PreconditionFailed(href));
            }
            let temp = dir.join(format!(
                ".{href}.{}.{}.tmp",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let write = || -> std::io::Result<()> {
                let mut file = std::fs::File::create(&temp)?;
                file.write_all(ics.as_bytes())?;
                file.sync_all()?;
                std::fs::rename(&temp, &path)
            };
            if let Err(e) = write() {
                let _ = std::fs::remove_file(&temp);
                return Err(io_error("cannot write", &path, e));
            }
            Ok(vdir_etag(ics.as_bytes()))
        })
        .await
    }
}
