//! The CalDAV connector (RFC 4791): any standards-following calendar server, tested against
//! Radicale and Xandikos.
//!
//! A search runs in two steps so that memory stays bounded whatever the calendar size:
//! 1. a `calendar-query` REPORT (Depth: 1) with a VEVENT `time-range` starting at `from` asks
//!    for hrefs, ETags and sizes (`getcontentlength`, when the server gives it); recurring series
//!    that still have occurrences after `from` match (RFC 4791 §9.9). If the server refuses that
//!    query, a PROPFIND listing of every member is used instead: more events than needed (the
//!    selector drops them), never fewer.
//! 2. each page fetches the bodies of `page_size` of those hrefs with a `calendar-multiget`,
//!    bounded in bytes too (see [`CalDavMailbox::fetch_page`]): a resource the listing already
//!    declared too large is reported unreadable without being fetched, a multiget reply is cut
//!    at the page's byte budget, and what the cut left out is fetched one by one, each capped at
//!    `mailbox.max_resource_bytes`.
//!
//! The sorted hrefs of a search are held for its duration (see [`crate::listing`]); bodies only
//! one page at a time. The cursor is `t:<last href>` (time-range listing) or `a:<last href>`
//! (full listing).
//!
//! Every request waits for a permit of its server's semaphore: one per server origin, shared by
//! every migration of the process (`concurrency.per_mailbox_server`), so a worker never floods a
//! mailbox server. Transient answers are retried in place (see [`crate::retry`]); the permit is
//! given back while waiting.
//!
//! An `https://` server is checked against the public roots plus `mailbox.ca_file` (see
//! [`crate::tls`]). A refused certificate is [`MailboxError::Unavailable`]: nothing about the
//! user or the meeting is wrong, and the admin can fix the trust (or the server its certificate)
//! while the migration waits on its slow retry schedule (P7); a permanent error would instead fail
//! every user's migration at once and make the admin start them all again.

use std::collections::{HashMap, HashSet};
use std::error::Error as StdError;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mms_core::config::{MailboxOptions, SchedulingMode};
use mms_core::{ItemProblem, Mailbox, MailboxError, MailboxItem, SearchPage, UnreadableItem};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, ETAG, IF_MATCH, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::{OnceCell, Semaphore};

use crate::body::{read_capped, Body, ReadStats};
use crate::listing::{page_after, ListingCache};
use crate::multistatus::{self, DavResponse};
use crate::retry::{is_transient_status, parse_retry_after, RetryPolicy};
use crate::tls::{certificate_problem, load_ca_file};
use crate::{check_limits, MailboxConfigError};

/// Everything but the RFC 3986 unreserved characters is encoded in the user's path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const TIME_RANGE: char = 't';
const FULL_LISTING: char = 'a';

/// A listing (hrefs, ETags, sizes of a whole calendar) may be this many times
/// `mailbox.max_page_bytes`: about 400,000 resources at the default.
const LISTING_PAGES: u64 = 4;

/// The RFC 6638 token of a server that schedules by itself.
const AUTO_SCHEDULE: &str = "calendar-auto-schedule";

/// What a server answered, its body read up to the cap the caller gave.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

impl Reply {
    fn etag(&self) -> Option<String> {
        self.headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The first 200 characters of the body, for error messages.
    fn snippet(&self) -> String {
        let bytes = match &self.body {
            Body::Complete(bytes) => bytes.as_slice(),
            Body::Truncated { prefix, .. } => prefix.as_slice(),
        };
        let head = &bytes[..bytes.len().min(800)];
        String::from_utf8_lossy(head)
            .chars()
            .take(200)
            .collect::<String>()
            .trim()
            .to_string()
    }
}

/// A resource the listing named: its href, and what the server said about it there.
#[derive(Debug, Clone)]
struct Listed {
    href: String,
    etag: Option<String>,
    length: Option<u64>,
}

/// Per server origin: the permits every request to it waits for, and whether it schedules itself.
struct ServerState {
    permits: Semaphore,
    schedules_itself: OnceCell<bool>,
}

/// The byte limits of `mailbox.max_resource_bytes` and `mailbox.max_page_bytes`.
#[derive(Debug, Clone, Copy)]
struct Limits {
    resource: u64,
    page: u64,
}

impl Limits {
    fn listing(&self) -> u64 {
        self.page.saturating_mul(LISTING_PAGES)
    }
}

pub struct CalDavMailbox {
    http: reqwest::Client,
    /// The calendar URL with `{user}` where the percent-encoded UPN goes.
    calendar_url: String,
    username: Option<String>,
    password: Option<String>,
    timeout: Duration,
    per_server: usize,
    servers: Mutex<HashMap<String, Arc<ServerState>>>,
    listings: ListingCache<Vec<Listed>>,
    limits: Limits,
    retry: RetryPolicy,
    scheduling: SchedulingMode,
    stats: ReadStats,
}

impl CalDavMailbox {
    /// A connector for the server at `calendar_url` (which may hold `{user}`), at most
    /// `per_server` requests in flight to one server, each abandoned after `timeout`. For an
    /// `https://` URL, `ca_file` (a PEM bundle) adds CAs to the trusted public roots. Limits,
    /// retries and scheduling take their defaults; see [`CalDavMailbox::with_options`].
    pub fn new(
        calendar_url: &str,
        username: Option<String>,
        password: Option<String>,
        timeout: Duration,
        per_server: usize,
        ca_file: Option<&Path>,
    ) -> Result<CalDavMailbox, MailboxConfigError> {
        if per_server == 0 {
            return Err(MailboxConfigError::Invalid(
                "concurrency.per_mailbox_server is 0: set it to 1 or more".into(),
            ));
        }
        if timeout.is_zero() {
            return Err(MailboxConfigError::Invalid(
                "mailbox.timeout_secs is 0: set it to 1 or more".into(),
            ));
        }
        let sample = calendar_url.replace("{user}", "user");
        let parsed = Url::parse(&sample).map_err(|e| {
            MailboxConfigError::Invalid(format!(
                "mailbox.calendar_url {calendar_url:?} is not a URL ({e}): write it like http://host:5232/{{user}}/calendar/"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(MailboxConfigError::Invalid(format!(
                "mailbox.calendar_url {calendar_url:?} must start with http:// or https://"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(path) = ca_file {
            if parsed.scheme() != "https" {
                return Err(MailboxConfigError::Invalid(format!(
                    "mailbox.ca_file is set but mailbox.calendar_url {calendar_url:?} is not https: \
                     use an https:// URL, or remove mailbox.ca_file"
                )));
            }
            for certificate in load_ca_file(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| {
            MailboxConfigError::Invalid(format!("cannot build the HTTP client: {e}"))
        })?;
        // A collection URL ends with a slash; hrefs are resolved against it.
        let calendar_url = if calendar_url.ends_with('/') {
            calendar_url.to_string()
        } else {
            format!("{calendar_url}/")
        };
        let defaults = MailboxOptions::default();
        Ok(CalDavMailbox {
            http,
            calendar_url,
            username,
            password,
            timeout,
            per_server,
            servers: Mutex::new(HashMap::new()),
            listings: ListingCache::default(),
            limits: Limits {
                resource: defaults.max_resource_bytes,
                page: defaults.max_page_bytes,
            },
            retry: RetryPolicy {
                retries: defaults.request_retries,
                base: Duration::from_millis(defaults.retry_base_ms),
            },
            scheduling: defaults.scheduling,
            stats: ReadStats::default(),
        })
    }

    /// The same connector with the `[mailbox]` limits, quick retries and scheduling of `options`.
    pub fn with_options(
        mut self,
        options: &MailboxOptions,
    ) -> Result<CalDavMailbox, MailboxConfigError> {
        check_limits(options)?;
        self.limits = Limits {
            resource: options.max_resource_bytes,
            page: options.max_page_bytes,
        };
        self.retry = RetryPolicy {
            retries: options.request_retries,
            base: Duration::from_millis(options.retry_base_ms),
        };
        self.scheduling = options.scheduling;
        Ok(self)
    }

    /// The largest reply body this connector ever held in memory, bytes: never more than
    /// `mailbox.max_page_bytes` for a page, `mailbox.max_resource_bytes` for one resource (or
    /// the listing allowance for a listing).
    pub fn largest_body_buffered(&self) -> u64 {
        self.stats.largest_body()
    }

    fn collection_url(&self, user: &str) -> Result<Url, MailboxError> {
        // "." and ".." would be read as dot-segments of the path, not as a user.
        if user.is_empty() || user == "." || user == ".." {
            return Err(MailboxError::MailboxNotFound(format!(
                "{user:?} (not a user name)"
            )));
        }
        let encoded = utf8_percent_encode(user, PATH_SEGMENT).to_string();
        let url = self.calendar_url.replace("{user}", &encoded);
        Url::parse(&url).map_err(|e| {
            MailboxError::Protocol(format!("calendar URL {url} for {user} is invalid: {e}"))
        })
    }

    fn item_url(&self, user: &str, href: &str) -> Result<Url, MailboxError> {
        self.collection_url(user)?.join(href).map_err(|e| {
            MailboxError::Protocol(format!("href {href:?} is not a valid URL path: {e}"))
        })
    }

    /// The state of the server `url` belongs to, made on first use.
    fn server(&self, url: &Url) -> Arc<ServerState> {
        let origin = url.origin().ascii_serialization();
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers
            .entry(origin)
            .or_insert_with(|| {
                Arc::new(ServerState {
                    permits: Semaphore::new(self.per_server),
                    schedules_itself: OnceCell::new(),
                })
            })
            .clone()
    }

    /// One HTTP exchange, its body read up to `cap` bytes, transient failures retried in place
    /// (see [`crate::retry`]). Each try holds a permit of the server; waits between tries do not.
    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<String>,
        cap: u64,
    ) -> Result<Reply, MailboxError> {
        let server = self.server(url);
        let mut retry = 0;
        loop {
            let outcome = {
                let _permit = server.permits.acquire().await.map_err(|_| {
                    MailboxError::Unavailable("the mailbox connector is shutting down".into())
                })?;
                self.try_once(&method, url, &headers, body.as_deref(), cap)
                    .await
            };
            let tries = retry + 1;
            let (last_answer, retry_after) = match outcome {
                Ok(reply) if is_transient_status(reply.status) => {
                    let retry_after = reply
                        .headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, Utc::now()));
                    let answer = format!("answered {} {}", reply.status, reply.snippet());
                    (answer.trim_end().to_string(), retry_after)
                }
                Ok(reply) => return Ok(reply),
                Err(TryError::Final(e)) => return Err(e),
                Err(TryError::Transient(what)) => (what, None),
            };
            if retry >= self.retry.retries {
                return Err(MailboxError::Unavailable(format!(
                    "{method} {url} {last_answer} (after {tries} tries): the server is overloaded, \
                     locked or unreachable; the migration is retried later"
                )));
            }
            retry += 1;
            let wait = self.retry.delay(retry, retry_after);
            tracing::debug!(%method, %url, %last_answer, ?wait, retry, "transient answer, retrying the request");
            tokio::time::sleep(wait).await;
        }
    }

    /// One try: send, then read the body up to `cap`.
    async fn try_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&str>,
        cap: u64,
    ) -> Result<Reply, TryError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers.clone());
        if let Some(user) = &self.username {
            request = request.basic_auth(user, self.password.as_ref());
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(method, url, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, cap, &self.stats)
            .await
            .map_err(|e| self.transport_error(method, url, &e))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// What a failed send or read means: a refused certificate is final (retrying cannot fix
    /// trust); a refused connection, a reset or a timeout is worth another try.
    fn transport_error(&self, method: &Method, url: &Url, e: &reqwest::Error) -> TryError {
        if let Some(problem) = certificate_problem(e) {
            return TryError::Final(MailboxError::Unavailable(format!(
                "{method} {url} failed: {problem}"
            )));
        }
        let origin = url.origin().ascii_serialization();
        let advice = if e.is_timeout() {
            format!(
                "no answer within {}s: check the load of the server at {origin}, or raise mailbox.timeout_secs",
                self.timeout.as_secs()
            )
        } else {
            format!(
                "check that the server at {origin} is running and reachable from this worker, \
                 and that mailbox.calendar_url is right"
            )
        };
        TryError::Transient(format!("failed: {} ({advice})", error_chain(e)))
    }

    /// A REPORT or PROPFIND at Depth 1 whose reply must be a multistatus, read up to `cap`.
    async fn multistatus(
        &self,
        method: &str,
        user: &str,
        url: &Url,
        body: String,
        cap: u64,
    ) -> Result<Reply, MailboxError> {
        let mut headers = HeaderMap::new();
        headers.insert("Depth", HeaderValue::from_static("1"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|e| MailboxError::Protocol(format!("HTTP method {method}: {e}")))?;
        let reply = self
            .exchange(method.clone(), url, headers, Some(body), cap)
            .await?;
        if reply.status != StatusCode::MULTI_STATUS {
            return Err(status_error(
                &reply,
                method.as_str(),
                url,
                MailboxError::MailboxNotFound(user.to_string()),
            ));
        }
        Ok(reply)
    }

    /// The sorted members to look at, and the listing mode actually used.
    async fn list(
        &self,
        user: &str,
        from: DateTime<Utc>,
        mode: char,
    ) -> Result<(Vec<Listed>, char), MailboxError> {
        let url = self.collection_url(user)?;
        if mode == TIME_RANGE {
            match self
                .listing("REPORT", user, &url, multistatus::calendar_query_from(from))
                .await
            {
                Ok(listed) => return Ok((listed, TIME_RANGE)),
                Err(e) if e.is_permanent() => return Err(e),
                Err(e) => {
                    tracing::warn!(%url, error = %e, "time-range calendar-query failed; falling back to listing every event")
                }
            }
        }
        let listed = self
            .listing(
                "PROPFIND",
                user,
                &url,
                multistatus::PROPFIND_MEMBERS.to_string(),
            )
            .await?;
        Ok((listed, FULL_LISTING))
    }

    async fn listing(
        &self,
        method: &str,
        user: &str,
        url: &Url,
        body: String,
    ) -> Result<Vec<Listed>, MailboxError> {
        let cap = self.limits.listing();
        let reply = self.multistatus(method, user, url, body, cap).await?;
        let Body::Complete(bytes) = reply.body else {
            return Err(MailboxError::Protocol(format!(
                "the {method} listing of {url} is larger than {cap} bytes ({LISTING_PAGES} × \
                 mailbox.max_page_bytes): raise mailbox.max_page_bytes"
            )));
        };
        let responses = multistatus::parse_multistatus(&bytes)
            .map_err(|e| MailboxError::Protocol(format!("{method} {url}: {e}")))?;
        Ok(members(responses, url))
    }

    /// Does the user's calendar collection exist? (Tells "no calendar" from other conflicts.)
    async fn calendar_exists(&self, user: &str) -> Result<bool, MailboxError> {
        let url = self.collection_url(user)?;
        let mut headers = HeaderMap::new();
        headers.insert("Depth", HeaderValue::from_static("0"));
        let method = Method::from_bytes(b"PROPFIND").expect("PROPFIND is a method token");
        let reply = self
            .exchange(method, &url, headers, None, self.limits.resource)
            .await?;
        if reply.status != StatusCode::MULTI_STATUS {
            return Ok(reply.status.is_success());
        }
        // Xandikos answers a missing collection with a 207 whose only response says 404.
        let Body::Complete(bytes) = &reply.body else {
            return Ok(true);
        };
        Ok(multistatus::parse_multistatus(bytes)
            .map(|responses| responses.iter().any(DavResponse::is_ok))
            .unwrap_or(true))
    }

    /// GET one resource, its body capped at `cap` bytes.
    async fn get_capped(&self, user: &str, href: &str, cap: u64) -> Result<Fetched, MailboxError> {
        let url = self.item_url(user, href)?;
        let reply = self
            .exchange(Method::GET, &url, HeaderMap::new(), None, cap)
            .await?;
        if !reply.status.is_success() {
            return Err(status_error(
                &reply,
                "GET",
                &url,
                MailboxError::ItemNotFound(href.to_string()),
            ));
        }
        let etag = reply.etag();
        match reply.body {
            Body::Truncated { .. } => Ok(Fetched::Over {
                size: reply.body.known_size().max(cap + 1),
                etag,
            }),
            Body::Complete(bytes) => {
                let etag = etag.ok_or_else(|| {
                    MailboxError::Protocol(format!("GET {url} answered without an ETag header"))
                })?;
                Ok(Fetched::Read { etag, bytes })
            }
        }
    }

    /// The bodies of one page of listed resources, within the byte limits.
    ///
    /// Returns the page and, when the page's byte budget ran out before its last entry, the
    /// href to continue after (everything up to it is in the page; nothing after it is).
    async fn fetch_page(
        &self,
        user: &str,
        entries: &[Listed],
    ) -> Result<(PageBuilder, Option<String>), MailboxError> {
        let url = self.collection_url(user)?;
        let mut page = PageBuilder::new(self.limits);
        let mut pending: Vec<&Listed> = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry.length {
                // Declared too large in the listing: never fetched.
                Some(bytes) if bytes > self.limits.resource => page.unreadable(
                    &entry.href,
                    entry.etag.clone(),
                    ItemProblem::TooLarge {
                        bytes,
                        limit: self.limits.resource,
                    },
                ),
                _ => pending.push(entry),
            }
        }
        while !pending.is_empty() {
            let hrefs: Vec<String> = pending.iter().map(|e| e.href.clone()).collect();
            let reply = self
                .multistatus(
                    "REPORT",
                    user,
                    &url,
                    multistatus::calendar_multiget(&hrefs),
                    page.budget(),
                )
                .await?;
            match reply.body {
                Body::Complete(bytes) => {
                    // Hrefs without a response, or with a 404 one, were deleted since the listing.
                    let responses = multistatus::parse_multistatus(&bytes)
                        .map_err(|e| MailboxError::Protocol(format!("REPORT {url}: {e}")))?;
                    for response in responses {
                        page.absorb(response);
                    }
                    return Ok((page, None));
                }
                Body::Truncated { prefix, .. } => {
                    let read = multistatus::parse_truncated_multistatus(&prefix);
                    drop(prefix);
                    let served: HashSet<String> =
                        read.responses.iter().map(|r| r.href.clone()).collect();
                    for response in read.responses {
                        page.absorb(response);
                    }
                    pending.retain(|e| !served.contains(&e.href));
                    // The resource the cut fell in is fetched on its own; the rest go on by
                    // multiget. Always at least one resource leaves `pending` per round.
                    let position = read
                        .cut_at
                        .and_then(|href| pending.iter().position(|e| e.href == href))
                        .unwrap_or(0);
                    let Some(&suspect) = pending.get(position) else {
                        continue;
                    };
                    pending.remove(position);
                    if let Some(stop) = self.fetch_alone(user, suspect, entries, &mut page).await? {
                        return Ok((page, Some(stop)));
                    }
                }
            }
        }
        Ok((page, None))
    }

    /// Fetch one resource by GET into `page`. When the page's budget cannot hold it, the page is
    /// cut before or at it: the href to continue after is returned.
    async fn fetch_alone(
        &self,
        user: &str,
        entry: &Listed,
        entries: &[Listed],
        page: &mut PageBuilder,
    ) -> Result<Option<String>, MailboxError> {
        let mut cut = false;
        loop {
            let cap = self.limits.resource.min(page.budget());
            match self.get_capped(user, &entry.href, cap).await {
                Err(MailboxError::ItemNotFound(_)) => return Ok(cut.then(|| entry.href.clone())),
                Err(e) => return Err(e),
                Ok(Fetched::Read { etag, bytes }) => {
                    page.absorb_bytes(&entry.href, etag, bytes);
                    return Ok(cut.then(|| entry.href.clone()));
                }
                Ok(Fetched::Over { size, etag }) if cap == self.limits.resource => {
                    page.unreadable(
                        &entry.href,
                        etag,
                        ItemProblem::TooLarge {
                            bytes: size,
                            limit: self.limits.resource,
                        },
                    );
                    return Ok(cut.then(|| entry.href.clone()));
                }
                Ok(Fetched::Over { .. }) if !cut => {
                    // The page is full: keep only what sorts before this resource (so that the
                    // cursor "everything up to here is done" holds), then try it once more.
                    page.drop_after(&entry.href);
                    cut = true;
                }
                Ok(Fetched::Over { .. }) => {
                    // Still no room: the page ends just before it.
                    let before = entries
                        .iter()
                        .map(|e| e.href.as_str())
                        .filter(|h| *h < entry.href.as_str())
                        .max()
                        .map(str::to_string);
                    return Ok(before);
                }
            }
        }
    }
}

/// Why one try failed: worth another try, or not.
enum TryError {
    Transient(String),
    Final(MailboxError),
}

/// A GET capped in bytes.
enum Fetched {
    Read { etag: String, bytes: Vec<u8> },
    Over { size: u64, etag: Option<String> },
}

/// The page being assembled, with the bytes of calendar text it holds.
pub(crate) struct PageBuilder {
    limits: Limits,
    pub(crate) items: Vec<MailboxItem>,
    pub(crate) unreadable: Vec<UnreadableItem>,
    held: u64,
}

impl PageBuilder {
    fn new(limits: Limits) -> PageBuilder {
        PageBuilder {
            limits,
            items: Vec::new(),
            unreadable: Vec::new(),
            held: 0,
        }
    }

    /// Bytes the page may still take.
    fn budget(&self) -> u64 {
        self.limits.page.saturating_sub(self.held).max(1)
    }

    fn unreadable(&mut self, href: &str, etag: Option<String>, problem: ItemProblem) {
        self.unreadable.push(UnreadableItem {
            href: href.to_string(),
            etag,
            problem,
        });
    }

    fn item(&mut self, href: String, etag: String, ics: String) {
        if ics.len() as u64 > self.limits.resource {
            let bytes = ics.len() as u64;
            self.unreadable(
                &href,
                Some(etag),
                ItemProblem::TooLarge {
                    bytes,
                    limit: self.limits.resource,
                },
            );
            return;
        }
        self.held += ics.len() as u64;
        self.items.push(MailboxItem { href, etag, ics });
    }

    /// One multiget response: an item, an unreadable resource, or nothing (deleted since).
    fn absorb(&mut self, response: DavResponse) {
        if !response.is_ok() {
            return;
        }
        match (response.etag, response.calendar_data) {
            (etag, Some(Err(problem))) => self.unreadable(&response.href, etag, problem),
            (Some(etag), Some(Ok(ics))) => self.item(response.href, etag, ics),
            (None, _) => self.unreadable(
                &response.href,
                None,
                ItemProblem::Incomplete { missing: "ETag" },
            ),
            (etag, None) => self.unreadable(
                &response.href,
                etag,
                ItemProblem::Incomplete {
                    missing: "calendar data",
                },
            ),
        }
    }

    fn absorb_bytes(&mut self, href: &str, etag: String, bytes: Vec<u8>) {
        match String::from_utf8(bytes) {
            Ok(ics) => self.item(href.to_string(), etag, ics),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                self.unreadable(href, Some(etag), ItemProblem::NotUtf8 { offset })
            }
        }
    }

    /// Forget what sorts after `href` (it will be served by the next page).
    fn drop_after(&mut self, href: &str) {
        self.items.retain(|i| i.href.as_str() < href);
        self.unreadable.retain(|u| u.href.as_str() < href);
        self.held = self.items.iter().map(|i| i.ics.len() as u64).sum();
    }

    fn finish(mut self, next: Option<String>) -> SearchPage {
        self.items.sort_by(|a, b| a.href.cmp(&b.href));
        self.unreadable.sort_by(|a, b| a.href.cmp(&b.href));
        SearchPage {
            items: self.items,
            unreadable: self.unreadable,
            next,
        }
    }
}

/// An error and its sources, outermost first ("error sending request for url (...): client
/// error (Connect): tcp connect error: Connection refused (os error 111)"); a source whose
/// message its parent already quotes is not repeated.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !parts.last().is_some_and(|p| p.contains(&message)) {
            parts.push(message);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// The non-collection members that the server listed as present, sorted by href.
fn members(responses: Vec<DavResponse>, collection: &Url) -> Vec<Listed> {
    let mut listed: Vec<Listed> = responses
        .into_iter()
        .filter(|r| r.is_ok() && !r.is_collection && !r.href.is_empty() && !r.href.ends_with('/'))
        .filter(|r| r.href != collection.path() && r.href != collection.as_str())
        .map(|r| Listed {
            href: r.href,
            etag: r.etag,
            length: r.content_length,
        })
        .collect();
    listed.sort_by(|a, b| a.href.cmp(&b.href));
    listed.dedup_by(|a, b| a.href == b.href);
    listed
}

/// The error for a status that is not the expected success; `not_found` is what a 404 means here.
fn status_error(reply: &Reply, method: &str, url: &Url, not_found: MailboxError) -> MailboxError {
    let status = reply.status;
    let detail = || format!("{method} {url} answered {status}: {}", reply.snippet());
    match status.as_u16() {
        401 | 403 => MailboxError::Unauthorized(format!(
            "{method} {url} answered {status}: check mailbox.username / mailbox.password and the server's access rights"
        )),
        404 => not_found,
        412 => MailboxError::PreconditionFailed(url.to_string()),
        408 | 423 | 429 | 500..=599 => MailboxError::Unavailable(detail()),
        _ => MailboxError::Protocol(detail()),
    }
}

/// Does a `DAV` header list the RFC 6638 `calendar-auto-schedule` capability?
fn advertises_auto_schedule(headers: &HeaderMap) -> bool {
    headers
        .get_all("DAV")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(AUTO_SCHEDULE))
}

fn search_key(user: &str, from: DateTime<Utc>, mode: char) -> String {
    format!("{mode}|{}|{user}", from.timestamp_millis())
}

#[async_trait]
impl Mailbox for CalDavMailbox {
    async fn search(
        &self,
        user: &str,
        from: DateTime<Utc>,
        cursor: Option<String>,
        page_size: usize,
    ) -> Result<SearchPage, MailboxError> {
        let (wanted_mode, last) = match cursor.as_deref() {
            None => (TIME_RANGE, None),
            Some(c) => match c.split_once(':') {
                Some(("t", last)) => (TIME_RANGE, Some(last.to_string())),
                Some(("a", last)) => (FULL_LISTING, Some(last.to_string())),
                _ => {
                    return Err(MailboxError::Protocol(format!(
                        "search cursor {c:?} was not issued by the CalDAV connector: restart the search without a cursor"
                    )))
                }
            },
        };
        let cached = last
            .as_ref()
            .and_then(|_| self.listings.get(&search_key(user, from, wanted_mode)));
        let (listed, mode) = match cached {
            Some(listed) => (listed, wanted_mode),
            None => {
                let (listed, mode) = self.list(user, from, wanted_mode).await?;
                (Arc::new(listed), mode)
            }
        };
        let key = search_key(user, from, mode);
        let (entries, more) = page_after(&listed, |e| e.href.as_str(), last.as_deref(), page_size);
        let (page, cut) = if entries.is_empty() {
            (PageBuilder::new(self.limits), None)
        } else {
            self.fetch_page(user, entries).await?
        };
        let next = match cut {
            Some(href) => Some(format!("{mode}:{href}")),
            None if more => entries.last().map(|e| format!("{mode}:{}", e.href)),
            None => None,
        };
        if next.is_some() {
            self.listings.insert(key, listed.clone());
        } else {
            self.listings.remove(&key);
        }
        Ok(page.finish(next))
    }

    async fn get(&self, user: &str, href: &str) -> Result<MailboxItem, MailboxError> {
        let unreadable = |problem| MailboxError::Unreadable {
            href: href.to_string(),
            problem,
        };
        match self.get_capped(user, href, self.limits.resource).await? {
            Fetched::Over { size, .. } => Err(unreadable(ItemProblem::TooLarge {
                bytes: size,
                limit: self.limits.resource,
            })),
            Fetched::Read { etag, bytes } => match String::from_utf8(bytes) {
                Ok(ics) => Ok(MailboxItem {
                    href: href.to_string(),
                    etag,
                    ics,
                }),
                Err(e) => Err(unreadable(ItemProblem::NotUtf8 {
                    offset: e.utf8_error().valid_up_to(),
                })),
            },
        }
    }

    async fn put(
        &self,
        user: &str,
        href: &str,
        ics: &str,
        if_match: &str,
    ) -> Result<String, MailboxError> {
        let url = self.item_url(user, href)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/calendar; charset=utf-8"),
        );
        let if_match_value = HeaderValue::from_str(if_match).map_err(|_| {
            MailboxError::PreconditionFailed(format!(
                "{href} (ETag {if_match:?} is not a valid header value)"
            ))
        })?;
        headers.insert(IF_MATCH, if_match_value);
        let reply = self
            .exchange(
                Method::PUT,
                &url,
                headers,
                Some(ics.to_string()),
                self.limits.resource,
            )
            .await?;
        if reply.status.is_success() {
            return match reply.etag() {
                Some(etag) => Ok(etag),
                // Some servers change the body on write and so send no ETag (RFC 4791 §5.3.4):
                // read the stored version back.
                None => Ok(self.get(user, href).await?.etag),
            };
        }
        // RFC 4918 answers 409 to a PUT whose parent collection is missing (Radicale); a server
        // that checks If-Match first answers 412, since the resource is not there either
        // (Xandikos). Both also mean other things (a duplicate UID, an edit by the organizer), so
        // ask whether the calendar is there.
        let conflict = matches!(
            reply.status,
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED
        );
        if conflict && !self.calendar_exists(user).await? {
            return Err(MailboxError::MailboxNotFound(user.to_string()));
        }
        if reply.status == StatusCode::PRECONDITION_FAILED {
            return Err(MailboxError::PreconditionFailed(href.to_string()));
        }
        Err(status_error(
            &reply,
            "PUT",
            &url,
            MailboxError::MailboxNotFound(user.to_string()),
        ))
    }

    /// `mailbox.scheduling`; under `auto`, one OPTIONS per server origin (cached for the life of
    /// the connector) tells whether the server advertises `calendar-auto-schedule`.
    async fn server_sends_updates(&self, user: &str) -> Result<bool, MailboxError> {
        match self.scheduling {
            SchedulingMode::Server => return Ok(true),
            SchedulingMode::Mms => return Ok(false),
            SchedulingMode::Auto => {}
        }
        let url = self.collection_url(user)?;
        let server = self.server(&url);
        let detected = server
            .schedules_itself
            .get_or_try_init(|| async {
                let reply = self
                    .exchange(Method::OPTIONS, &url, HeaderMap::new(), None, self.limits.resource)
                    .await?;
                if !reply.status.is_success() {
                    return Err(status_error(
                        &reply,
                        "OPTIONS",
                        &url,
                        MailboxError::MailboxNotFound(user.to_string()),
                    ));
                }
                let schedules = advertises_auto_schedule(&reply.headers);
                tracing::info!(%url, schedules_itself = schedules, "asked the CalDAV server whether it sends attendee updates itself (RFC 6638)");
                Ok(schedules)
            })
            .await?;
        Ok(*detected)
    }
}
