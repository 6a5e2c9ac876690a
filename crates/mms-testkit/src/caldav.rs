//! One handle for either real CalDAV server, so that a test body runs unchanged on both.
//!
//! Behaviour one server happens to have (Radicale stores bytes as sent and never answers 423;
//! Xandikos re-serialises what it stores) is not a promise of CalDAV: a test written against
//! [`CaldavServer`] compares by meaning where the two differ.

use crate::radicale::Radicale;
use crate::xandikos::Xandikos;

/// Which server to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaldavKind {
    Radicale,
    Xandikos,
}

impl CaldavKind {
    /// Every server the tests run against.
    pub const ALL: [CaldavKind; 2] = [CaldavKind::Radicale, CaldavKind::Xandikos];
}

pub enum CaldavServer {
    Radicale(Radicale),
    Xandikos(Xandikos),
}

impl CaldavServer {
    /// A server of `kind` that accepts every request without credentials.
    pub async fn start(kind: CaldavKind) -> CaldavServer {
        match kind {
            CaldavKind::Radicale => CaldavServer::Radicale(Radicale::start().await),
            CaldavKind::Xandikos => CaldavServer::Xandikos(Xandikos::start().await),
        }
    }

    pub fn kind(&self) -> CaldavKind {
        match self {
            CaldavServer::Radicale(_) => CaldavKind::Radicale,
            CaldavServer::Xandikos(_) => CaldavKind::Xandikos,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            CaldavServer::Radicale(s) => s.port,
            CaldavServer::Xandikos(s) => s.port,
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        match self {
            CaldavServer::Radicale(s) => s.base_url(),
            CaldavServer::Xandikos(s) => s.base_url(),
        }
    }

    /// The value for `MailboxConfig::Caldav::calendar_url`.
    pub fn calendar_url_template(&self) -> String {
        match self {
            CaldavServer::Radicale(s) => s.calendar_url_template(),
            CaldavServer::Xandikos(s) => s.calendar_url_template(),
        }
    }

    /// The calendar collection of `user`.
    pub fn calendar_url(&self, user: &str) -> String {
        match self {
            CaldavServer::Radicale(s) => s.calendar_url(user),
            CaldavServer::Xandikos(s) => s.calendar_url(user),
        }
    }

    pub async fn create_calendar(&self, user: &str) {
        match self {
            CaldavServer::Radicale(s) => s.create_calendar(user).await,
            CaldavServer::Xandikos(s) => s.create_calendar(user).await,
        }
    }

    /// PUT an event as `<name>` in the user's calendar; returns its ETag.
    pub async fn put_event(&self, user: &str, name: &str, ics: &str) -> String {
        match self {
            CaldavServer::Radicale(s) => s.put_event(user, name, ics).await,
            CaldavServer::Xandikos(s) => s.put_event(user, name, ics).await,
        }
    }

    /// GET an event's body as the server serves it.
    pub async fn get_event(&self, user: &str, name: &str) -> String {
        match self {
            CaldavServer::Radicale(s) => s.get_event(user, name).await,
            CaldavServer::Xandikos(s) => s.get_event(user, name).await,
        }
    }
}
