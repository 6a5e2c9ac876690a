//! The pre-images of a migration (issue 9.2): what it replaced in each meeting it saved, kept so
//! that the migration can be undone.
//!
//! `preimage:<correlation>` is a hash meeting key -> deflated JSON [`MeetingPreImage`], in the tenant's
//! hash tag beside the journal. It is written by the journal's own fenced script
//! ([`Store::record_meetings`], [`crate::journal::MeetingWrite::with_pre_image`]) with the
//! meeting's `Saving` entry, before the meeting is saved, so every meeting a migration may have
//! saved has its pre-image; it expires with the journal once the migration is final
//! (`retention.journal_days`) and goes with the status row when the user's oldest rows are
//! trimmed. A migration that changed nothing leaves no key, which is what "nothing to undo" is.
//!
//! Size: one record holds the old and the new block of DESCRIPTION and X-ALT-DESC and the
//! replaced property lines, 1.6–7.2 kB per meeting as JSON for the fixtures
//! (`mms-ical/tests/undo.rs` prints them): an HTML body from Outlook is most of it. Deflated, as
//! stored, a third of that or less (the loadgen reports the bytes kept per meeting).

use std::io::{Read, Write};

use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use mms_core::MeetingPreImage;

use crate::error::Malformed;
use crate::journal::JournalCursor;
use crate::{Store, StoreError};

/// One page of a migration's pre-images, in no set order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreImagePage {
    pub entries: Vec<(String, MeetingPreImage)>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<JournalCursor>,
}

/// A pre-image as stored: its JSON, deflated. The replaced blocks are text (HTML bodies, long
/// dial-in lists) that compresses well, and a mailbox keeps one per migrated meeting for
/// `retention.journal_days`.
pub(crate) fn encode_pre_image(image: &MeetingPreImage) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(image).map_err(|e| StoreError::encode("meeting pre-image", e))?;
    let mut encoder =
        DeflateEncoder::new(Vec::with_capacity(json.len() / 3), Compression::default());
    // Writing into a Vec cannot fail; the error is kept as a value all the same.
    encoder
        .write_all(&json)
        .and_then(|()| encoder.finish())
        .map_err(|e| StoreError::Invalid(format!("deflating a meeting pre-image: {e}")))
}

fn parse(key: &str, meeting: &str, stored: &[u8]) -> Result<MeetingPreImage, StoreError> {
    let fix = "delete the field (`redis-cli HDEL`): an undo then leaves that meeting as it is";
    let mut json = String::new();
    DeflateDecoder::new(stored)
        .read_to_string(&mut json)
        .map_err(|e| {
            let malformed = Malformed::Value(format!("not a deflated pre-image: {e}"));
            StoreError::corrupt(format!("{key} field {meeting}"), fix, malformed)
        })?;
    crate::journal::parse_field(key, meeting, &json, fix)
}

impl Store {
    /// How many meetings of `correlation` have a pre-image (0: the migration changed nothing,
    /// or its pre-images expired with its journal).
    pub async fn pre_image_count(
        &self,
        tenant: &str,
        correlation: &str,
    ) -> Result<u64, StoreError> {
        let key = self.keys.pre_images(tenant, correlation);
        Ok(redis::cmd("HLEN")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await?)
    }

    /// About `count` pre-images of `correlation` from `cursor` (HSCAN: Redis is not blocked
    /// however many meetings the migration saved). A meeting may show up on two pages: key the
    /// result by meeting.
    pub async fn pre_images_page(
        &self,
        tenant: &str,
        correlation: &str,
        cursor: JournalCursor,
        count: usize,
    ) -> Result<PreImagePage, StoreError> {
        let key = self.keys.pre_images(tenant, correlation);
        let (entries, next) = self
            .meeting_hash_page(&key, cursor, count, |meeting, stored: &Vec<u8>| {
                parse(&key, meeting, stored)
            })
            .await?;
        Ok(PreImagePage { entries, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mms_core::MeetingPreImage;

    #[test]
    fn a_pre_image_is_stored_deflated_and_read_back_whole() {
        let image: MeetingPreImage = serde_json::from_value(serde_json::json!({
            "Uid": "u1",
            "Events": [],
        }))
        .unwrap();
        let stored = encode_pre_image(&image).unwrap();
        assert_eq!(parse("k", "m", &stored).unwrap(), image);
        let error = parse("k", "m", b"{\"uid\": \"plain json\"}").unwrap_err();
        assert!(error.to_string().contains("redis-cli HDEL"), "{error}");
    }
}
