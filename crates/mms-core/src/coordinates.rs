//! The coordinates of an online meeting: what the rewritten block tells attendees to click or dial.

use serde::{Deserialize, Serialize};

/// Which platform an online-meeting block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OnlineMeetingKind {
    /// Skype for Business (on-premises or Online): "Join Skype Meeting", meet.* URL, Conference ID.
    SfB,
    /// Microsoft Teams (or any Teams-like target MMS is configured to mint).
    Teams,
}

/// One dial-in number with its label ("United States, Seattle (Toll)").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DialInNumber {
    /// E.164 or as the bridge publishes it, e.g. `+1 206-555-0100`.
    pub number: String,
    pub label: String,
    #[serde(default)]
    pub toll_free: bool,
}

/// Everything the rewriter writes into a meeting's online block.
///
/// `dial_in` empty means "no audio conferencing": the rewriter removes the dial-in part (T2c).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coordinates {
    pub kind: OnlineMeetingKind,
    pub join_url: String,
    /// Teams "Meeting ID" or SfB meeting id; may be empty.
    #[serde(default)]
    pub meeting_id: String,
    #[serde(default)]
    pub passcode: Option<String>,
    /// The PSTN conference id (Teams "Phone Conference ID", SfB "Conference ID").
    #[serde(default)]
    pub conference_id: Option<String>,
    #[serde(default)]
    pub dial_in: Vec<DialInNumber>,
    /// "Find a local number" link.
    #[serde(default)]
    pub find_local_number_url: Option<String>,
}
