//! The pieces of an update message that [`crate::imip::build_updates`] puts together: who gets
//! it ([`recipients`]), its header fields folded per RFC 5322 ([`header`]), and its MIME body
//! ([`body`]).

pub mod body;
pub mod header;
pub mod recipients;
