//! The one error type of the crate: every way an input can be refused, with the line it was
//! found on and what to do about it.

/// Why an iCalendar resource (or an argument) could not be processed.
///
/// Messages are written for the admin reading a migration's status: they say what is wrong,
/// where (1-based physical line of the input) and, where it helps, what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcalError {
    #[error("the resource is {size} bytes, over the limit of {limit} bytes: raise `max_resource_bytes` if such meetings are expected")]
    TooLarge { size: usize, limit: usize },
    #[error("line {line}: property {name} is {size} bytes long unfolded, over the limit of {limit} bytes (an embedded attachment or a runaway body?)")]
    PropertyTooLarge {
        line: usize,
        name: String,
        size: usize,
        limit: usize,
    },
    #[error("the resource is not UTF-8 (first invalid byte at offset {offset}): iCalendar text must be UTF-8 (RFC 5545 3.1.4)")]
    NotUtf8 { offset: usize },
    #[error("the resource is empty: expected BEGIN:VCALENDAR")]
    Empty,
    #[error("line {line}: a folded continuation line (starting with a space or tab) has no content line before it")]
    OrphanContinuation { line: usize },
    #[error("line {line}: {found:?} is not a content line: expected NAME[;PARAM=VALUE]:VALUE")]
    NotAContentLine { line: usize, found: String },
    #[error("line {line}: property {name} appears outside any component: properties belong inside BEGIN:VCALENDAR ... END:VCALENDAR")]
    OutsideComponent { line: usize, name: String },
    #[error("line {line}: END:{found} closes BEGIN:{expected} opened on line {opened}")]
    MismatchedEnd {
        line: usize,
        found: String,
        expected: String,
        opened: usize,
    },
    #[error("line {line}: END:{found} without a matching BEGIN")]
    UnexpectedEnd { line: usize, found: String },
    #[error("line {opened}: BEGIN:{name} is never closed: END:{name} is missing")]
    Unclosed { opened: usize, name: String },
    #[error("components nest more than {limit} deep (line {line}): refusing a resource built to exhaust the parser")]
    TooDeep { line: usize, limit: usize },
    #[error("line {line}: {property} has an invalid value {value:?}: {expected}")]
    InvalidValue {
        line: usize,
        property: String,
        value: String,
        expected: &'static str,
    },
    #[error("the resource has no VCALENDAR component")]
    NoCalendar,
    #[error("the resource has no VEVENT: nothing to {action}")]
    NoEvent { action: &'static str },
    #[error("the event has no {property}: {why}")]
    MissingProperty {
        property: &'static str,
        why: &'static str,
    },
    #[error("{what} {value:?} is not a usable e-mail address: {reason}")]
    BadAddress {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("could not build the update message: {0}")]
    Message(String),
    #[error("{key} is {value}: set it to {expected}")]
    InvalidSetting {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
}
