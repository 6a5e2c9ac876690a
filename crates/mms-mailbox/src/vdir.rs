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
//! Bytes are bounded before they are read: a file whose size (from its metadata) passes
//! `mailbox.max_resource_bytes` is reported unreadable (too large) without being opened, a file
//! is read through a cap in case it grew meanwhile, and a page ends early when the next file would
//! take its text past `mailbox.max_page_bytes`. A file that is not UTF-8 is reported unreadable
//! with the offset of its first bad byte. Neither stops the search.
//!
//! Writes compare the ETag and replace the file atomically (temp file in the same folder, fsync,
//! rename), holding a process-local lock for the file. That lock suffices because one worker
//! process at a time owns a user's mailbox (the mailbox lease, D4); two processes writing the same
//! vdir outside MMS could still race.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mms_core::config::{MailboxOptions, SchedulingMode};
use mms_core::{ItemProblem, Mailbox, MailboxError, MailboxItem, SearchPage, UnreadableItem};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::body::ReadStats;
use crate::listing::{page_after, ListingCache};
use crate::{check_limits, MailboxConfigError};

/// Write locks are striped by file: bounded memory, and two files rarely share a stripe.
const LOCK_STRIPES: usize = 64;

/// Distinguishes temp files of concurrent writes within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct VdirMailbox {
    root: PathBuf,
    listings: ListingCache<Vec<String>>,
    write_locks: Vec<Mutex<()>>,
    max_resource_bytes: u64,
    max_page_bytes: u64,
    scheduling: SchedulingMode,
    stats: Arc<ReadStats>,
}

/// The ETag of a file's content: hex of the first 16 bytes of its SHA-256.
pub fn vdir_etag(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

impl VdirMailbox {
    /// A store rooted at `root` (one folder per user below it). The root need not exist yet: a
    /// user without a folder is [`MailboxError::MailboxNotFound`].
    pub fn new(root: impl Into<PathBuf>) -> VdirMailbox {
        let defaults = MailboxOptions::default();
        VdirMailbox {
            root: root.into(),
            listings: ListingCache::default(),
            write_locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            max_resource_bytes: defaults.max_resource_bytes,
            max_page_bytes: defaults.max_page_bytes,
            scheduling: defaults.scheduling,
            stats: Arc::default(),
        }
    }

    /// The same store with the byte limits and scheduling of `options` (retries do not apply to
    /// a local folder).
    pub fn with_options(
        mut self,
        options: &MailboxOptions,
    ) -> Result<VdirMailbox, MailboxConfigError> {
        check_limits(options)?;
        self.max_resource_bytes = options.max_resource_bytes;
        self.max_page_bytes = options.max_page_bytes;
        self.scheduling = options.scheduling;
        Ok(self)
    }

    /// The largest file content this store ever held in memory, bytes: never more than
    /// `mailbox.max_resource_bytes`.
    pub fn largest_body_buffered(&self) -> u64 {
        self.stats.largest_body()
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

/// What reading one event file gave.
enum ReadOutcome {
    Item(MailboxItem),
    Unreadable(UnreadableItem),
    /// Deleted since the listing.
    Gone,
}

/// Read one event, never more than `limit` bytes of it.
fn read_item(
    dir: &Path,
    name: &str,
    limit: u64,
    stats: &ReadStats,
) -> Result<ReadOutcome, MailboxError> {
    let path = dir.join(name);
    let unreadable = |etag, problem| {
        Ok(ReadOutcome::Unreadable(UnreadableItem {
            href: name.to_string(),
            etag,
            problem,
        }))
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(ReadOutcome::Gone),
        Err(e) => return Err(io_error("cannot open", &path, e)),
    };
    let size = file
        .metadata()
        .map_err(|e| io_error("cannot stat", &path, e))?
        .len();
    if size > limit {
        return unreadable(None, ItemProblem::TooLarge { bytes: size, limit });
    }
    // The file may have grown since its metadata was read: one byte past the limit tells.
    let mut bytes = Vec::with_capacity(size as usize);
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("cannot read", &path, e))?;
    stats.record(bytes.len() as u64);
    if bytes.len() as u64 > limit {
        let bytes = bytes.len() as u64;
        return unreadable(None, ItemProblem::TooLarge { bytes, limit });
    }
    let etag = vdir_etag(&bytes);
    match String::from_utf8(bytes) {
        Ok(ics) => Ok(ReadOutcome::Item(MailboxItem {
            href: name.to_string(),
            etag,
            ics,
        })),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            unreadable(Some(etag), ItemProblem::NotUtf8 { offset })
        }
    }
}

/// The size of a file as its metadata tells (0 when it is gone: it will read as gone).
fn file_size(path: &Path) -> Result<u64, MailboxError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_error("cannot stat", path, e)),
    }
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
        let (page, more) = page_after(&names, |n| n.as_str(), cursor.as_deref(), page_size);
        let page: Vec<String> = page.to_vec();
        let (limit, page_limit, stats) = (
            self.max_resource_bytes,
            self.max_page_bytes,
            self.stats.clone(),
        );
        let (items, unreadable, cut) = blocking(move || {
            let mut items = Vec::with_capacity(page.len());
            let mut unreadable = Vec::new();
            let mut held = 0u64;
            for (index, name) in page.iter().enumerate() {
                let size = file_size(&dir.join(name))?;
                if size <= limit && held + size > page_limit && index > 0 {
                    // The page is full: it ends before this file, which the next page reads.
                    return Ok((items, unreadable, Some(page[index - 1].clone())));
                }
                match read_item(&dir, name, limit, &stats)? {
                    ReadOutcome::Item(item) => {
                        held += item.ics.len() as u64;
                        items.push(item);
                    }
                    ReadOutcome::Unreadable(bad) => unreadable.push(bad),
                    ReadOutcome::Gone => {}
                }
            }
            Ok((items, unreadable, None))
        })
        .await?;
        let next = cut.or_else(|| {
            if more {
                names_last(&names, cursor.as_deref(), page_size)
            } else {
                None
            }
        });
        if next.is_some() {
            self.listings.insert(user.to_string(), names);
        } else {
            self.listings.remove(user);
        }
        Ok(SearchPage {
            items,
            unreadable,
            next,
        })
    }

    async fn get(&self, user: &str, href: &str) -> Result<MailboxItem, MailboxError> {
        let (dir, _) = self.item_path(user, href)?;
        let (user, href) = (user.to_string(), href.to_string());
        let (limit, stats) = (self.max_resource_bytes, self.stats.clone());
        blocking(move || match read_item(&dir, &href, limit, &stats)? {
            ReadOutcome::Item(item) => Ok(item),
            ReadOutcome::Unreadable(bad) => Err(MailboxError::Unreadable {
                href: bad.href,
                problem: bad.problem,
            }),
            ReadOutcome::Gone => Err(missing(&dir, &user, &href)),
        })
        .await
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

    /// A folder sends nothing by itself: MMS mails, unless `mailbox.scheduling = "server"` says
    /// something else (a tool syncing the folder to a scheduling server) does.
    async fn server_sends_updates(&self, _user: &str) -> Result<bool, MailboxError> {
        Ok(self.scheduling == SchedulingMode::Server)
    }
}

/// The last name of the page after `cursor`: the next page's cursor.
fn names_last(names: &[String], cursor: Option<&str>, page_size: usize) -> Option<String> {
    page_after(names, |n| n.as_str(), cursor, page_size)
        .0
        .last()
        .cloned()
}
