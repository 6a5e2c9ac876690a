//! The CalDAV connector (RFC 4791): any standards-following calendar server, tested against
//! Radicale.
//!
//! A search runs in two steps so that memory stays bounded whatever the calendar size:
//! 1. a `calendar-query` REPORT (Depth: 1) with a VEVENT `time-range` starting at `from` asks
//!    for hrefs and ETags only; recurring series that still have occurrences after `from` match
//!    (RFC 4791 §9.9). If the server refuses that query, a PROPFIND listing of every member is
//!    used instead: more events than needed (the selector drops them), never fewer.
//! 2. each page fetches the bodies of `page_size` of those hrefs with a `calendar-multiget`.
//!
//! The sorted hrefs of a search are held for its duration (see [`crate::listing`]); bodies only
//! one page at a time. The cursor is `t:<last href>` (time-range listing) or `a:<last href>`
//! (full listing).
//!
//! Every request waits for a permit of a per-server semaphore
//! (`concurrency.per_mailbox_server`), so a worker never floods a mailbox server.
//!
//! An `https://` server is checked against the public roots plus `mailbox.ca_file` (see
//! [`crate::tls`]). A refused certificate is [`MailboxError::Unavailable`]: nothing about the
//! user or the meeting is wrong, and the admin can fix the trust (or the server its certificate)
//! while the migration waits on its slow retry schedule (P7); a permanent error would instead fail
//! every user's migration at once and make the admin start them all again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mms_core::{Mailbox, MailboxError, MailboxItem, SearchPage};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, ETAG, IF_MATCH};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::Semaphore;

use crate::listing::{page_after, ListingCache};
use crate::multistatus::{self, DavResponse};
use crate::tls::{certificate_problem, load_ca_file};
use crate::MailboxConfigError;

/// Everything but the RFC 3986 unreserved characters is encoded in the user's path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const TIME_RANGE: char = 't';
const FULL_LISTING: char = 'a';

/// What a server answered, read in full while the request held its permit.
struct Reply {
    status: StatusCode,
    etag: Option<String>,
    body: String,
}

pub struct CalDavMailbox {
    http: reqwest::Client,
    /// The calendar URL with `{user}` where the percent-encoded UPN goes.
    calendar_url: String,
    username: Option<String>,
    password: Option<String>,
    permits: Semaphore,
    listings: ListingCache<Vec<String>>,
}

impl CalDavMailbox {
    /// A connector for the server at `calendar_url` (which may hold `{user}`), at most
    /// `per_server` requests in flight, each abandoned after `timeout`. For an `https://` URL,
    /// `ca_file` (a PEM bundle) adds CAs to the trusted public roots.
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
        Ok(CalDavMailbox {
            http,
            calendar_url,
            username,
            password,
            permits: Semaphore::new(per_server),
            listings: ListingCache::default(),
        })
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

    /// One HTTP exchange under a permit; transport failures are `Unavailable`.
    async fn exchange(
        &self,
        method: &str,
        url: &Url,
        headers: HeaderMap,
        body: Option<String>,
    ) -> Result<Reply, MailboxError> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|e| MailboxError::Protocol(format!("HTTP method {method}: {e}")))?;
        let _permit = self.permits.acquire().await.map_err(|_| {
            MailboxError::Unavailable("the mailbox connector is shutting down".into())
        })?;
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers);
        if let Some(user) = &self.username {
            request = request.basic_auth(user, self.password.as_ref());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let transport = |e: reqwest::Error| {
            if let Some(problem) = certificate_problem(&e) {
                return MailboxError::Unavailable(format!("{method} {url} failed: {problem}"));
            }
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "failed"
            };
            MailboxError::Unavailable(format!("{method} {url} {what}: {e}"))
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.map_err(transport)?;
        Ok(Reply { status, etag, body })
    }

    /// A REPORT or PROPFIND at Depth 1 whose reply must be a multistatus.
    async fn multistatus(
        &self,
        method: &str,
        user: &str,
        url: &Url,
        body: String,
    ) -> Result<Vec<DavResponse>, MailboxError> {
        let mut headers = HeaderMap::new();
        headers.insert("Depth", HeaderValue::from_static("1"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        let reply = self.exchange(method, url, headers, Some(body)).await?;
        if reply.status != StatusCode::MULTI_STATUS {
            return Err(status_error(
                &reply,
                method,
                url,
                MailboxError::MailboxNotFound(user.to_string()),
            ));
        }
        multistatus::parse_multistatus(&reply.body)
            .map_err(|e| MailboxError::Protocol(format!("{method} {url}: {e}")))
    }

    /// The sorted hrefs of the events to look at, and the listing mode actually used.
    async fn list(
        &self,
        user: &str,
        from: DateTime<Utc>,
        mode: char,
    ) -> Result<(Vec<String>, char), MailboxError> {
        let url = self.collection_url(user)?;
        if mode == TIME_RANGE {
            match self
                .multistatus("REPORT", user, &url, multistatus::calendar_query_from(from))
                .await
            {
                Ok(responses) => return Ok((member_hrefs(responses, &url), TIME_RANGE)),
                Err(e) if e.is_permanent() => return Err(e),
                Err(e) => {
                    tracing::warn!(%url, error = %e, "time-range calendar-query failed; falling back to listing every event")
                }
            }
        }
        let responses = self
            .multistatus(
                "PROPFIND",
                user,
                &url,
                multistatus::PROPFIND_MEMBERS.to_string(),
            )
            .await?;
        Ok((member_hrefs(responses, &url), FULL_LISTING))
    }

    /// Does the user's calendar collection exist? (Tells "no calendar" from other conflicts.)
    async fn calendar_exists(&self, user: &str) -> Result<bool, MailboxError> {
        let url = self.collection_url(user)?;
        let mut headers = HeaderMap::new();
        headers.insert("Depth", HeaderValue::from_static("0"));
        let reply = self.exchange("PROPFIND", &url, headers, None).await?;
        Ok(reply.status != StatusCode::NOT_FOUND)
    }
}

/// Hrefs of the non-collection members that the server listed as present, sorted.
fn member_hrefs(responses: Vec<DavResponse>, collection: &Url) -> Vec<String> {
    let mut hrefs: Vec<String> = responses
        .into_iter()
        .filter(|r| r.is_ok() && !r.is_collection && !r.href.is_empty() && !r.href.ends_with('/'))
        .filter(|r| r.href != collection.path() && r.href != collection.as_str())
        .map(|r| r.href)
        .collect();
    hrefs.sort();
    hrefs.dedup();
    hrefs
}

/// The error for a status that is not the expected success; `not_found` is what a 404 means here.
fn status_error(reply: &Reply, method: &str, url: &Url, not_found: MailboxError) -> MailboxError {
    let status = reply.status;
    let detail = || {
        let snippet: String = reply.body.chars().take(200).collect();
        format!("{method} {url} answered {status}: {}", snippet.trim())
    };
    match status.as_u16() {
        401 | 403 => MailboxError::Unauthorized(format!(
            "{method} {url} answered {status}: check mailbox.username / mailbox.password and the server's access rights"
        )),
        404 => not_found,
        412 => MailboxError::PreconditionFailed(url.to_string()),
        408 | 429 | 500..=599 => MailboxError::Unavailable(detail()),
        _ => MailboxError::Protocol(detail()),
    }
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
        let (hrefs, mode) = match cached {
            Some(hrefs) => (hrefs, wanted_mode),
            None => {
                let (hrefs, mode) = self.list(user, from, wanted_mode).await?;
                (Arc::new(hrefs), mode)
            }
        };
        let key = search_key(user, from, mode);
        let (page, more) = page_after(&hrefs, last.as_deref(), page_size);
        let next = if more {
            page.last().map(|href| format!("{mode}:{href}"))
        } else {
            None
        };
        if next.is_some() {
            self.listings.insert(key, hrefs.clone());
        } else {
            self.listings.remove(&key);
        }
        if page.is_empty() {
            return Ok(SearchPage {
                items: Vec::new(),
                next,
            });
        }
        let url = self.collection_url(user)?;
        let responses = self
            .multistatus("REPORT", user, &url, multistatus::calendar_multiget(page))
            .await?;
        let mut items = Vec::with_capacity(page.len());
        for response in responses {
            // A resource deleted since the listing answers 404 here: it is simply gone.
            if !response.is_ok() {
                continue;
            }
            let (Some(etag), Some(ics)) = (response.etag, response.calendar_data) else {
                return Err(MailboxError::Protocol(format!(
                    "calendar-multiget on {url} returned {} without its ETag or calendar-data",
                    response.href
                )));
            };
            items.push(MailboxItem {
                href: response.href,
                etag,
                ics,
            });
        }
        items.sort_by(|a, b| a.href.cmp(&b.href));
        Ok(SearchPage { items, next })
    }

    async fn get(&self, user: &str, href: &str) -> Result<MailboxItem, MailboxError> {
        let url = self.item_url(user, href)?;
        let reply = self.exchange("GET", &url, HeaderMap::new(), None).await?;
        if !reply.status.is_success() {
            return Err(status_error(
                &reply,
                "GET",
                &url,
                MailboxError::ItemNotFound(href.to_string()),
            ));
        }
        let etag = reply.etag.ok_or_else(|| {
            MailboxError::Protocol(format!("GET {url} answered without an ETag header"))
        })?;
        Ok(MailboxItem {
            href: href.to_string(),
            etag,
            ics: reply.body,
        })
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
            .exchange("PUT", &url, headers, Some(ics.to_string()))
            .await?;
        if reply.status.is_success() {
            return match reply.etag {
                Some(etag) => Ok(etag),
                // Some servers change the body on write and so send no ETag (RFC 4791 §5.3.4):
                // read the stored version back.
                None => Ok(self.get(user, href).await?.etag),
            };
        }
        if reply.status == StatusCode::PRECONDITION_FAILED {
            return Err(MailboxError::PreconditionFailed(href.to_string()));
        }
        // RFC 4918 answers 409 to a PUT whose parent collection is missing; 409 also means other
        // conflicts (a duplicate UID), so ask whether the calendar is there.
        if reply.status == StatusCode::CONFLICT && !self.calendar_exists(user).await? {
            return Err(MailboxError::MailboxNotFound(user.to_string()));
        }
        Err(status_error(
            &reply,
            "PUT",
            &url,
            MailboxError::MailboxNotFound(user.to_string()),
        ))
    }
}
