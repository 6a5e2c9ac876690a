//! The directory events the control plane accepts (`POST /v1/tenants/{tenant}/events`).
//!
//! Each event is a change an identity system reports: a user moved, a licence assigned, a number
//! unassigned from a bridge. The rules in [`crate::rules`] turn it into migration requests, a
//! refusal or a recorded "nothing triggered"; the event's effect on the directory is applied in
//! every case, because the directory must reflect what happened even when nothing migrates.

use mms_core::{AudioProvider, TeamsUpgradeMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The least an event-triggered request is held before it may run. An event's directory changes
/// are saved after its requests are queued (so that a request failing midway changed nothing and
/// can be retried as is); a worker woken at once would mint from the directory as it was before
/// the event. Any coalescing hold longer than this covers it.
pub const EVENT_SETTLE_MS: u64 = 1_000;

/// How long an event-triggered request is held: the coalescing hold, at least [`EVENT_SETTLE_MS`].
pub fn hold_ms(config: &mms_core::config::MmsConfig) -> u64 {
    config.queue.coalesce_delay_ms.max(EVENT_SETTLE_MS)
}

/// One directory event, tagged by `Type`. `Identity` is a UPN or a SIP address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "Type")]
pub enum Event {
    /// T1a / T1b: the user was moved from on-premises to the cloud.
    #[serde(rename_all = "PascalCase")]
    UserMovedToCloud {
        identity: String,
        /// `Move-CsUser -MoveToTeams`: the user ends TeamsOnly (T1a) rather than SfB Online (T1b).
        #[serde(default)]
        move_to_teams: bool,
    },
    /// X2: the user was moved from the cloud back to on-premises (refused, nothing queued).
    #[serde(rename_all = "PascalCase")]
    UserMovedToOnPremises { identity: String },
    /// T2a: an audio-conferencing licence was assigned (`true`) or removed (`false`).
    #[serde(rename_all = "PascalCase")]
    AudioConferencingLicenseChanged { identity: String, assigned: bool },
    /// T2b: the user's audio-conferencing provider changed.
    #[serde(rename_all = "PascalCase")]
    AudioProviderChanged {
        identity: String,
        provider: AudioProvider,
    },
    /// T2c: audio conferencing was enabled or disabled for the user.
    #[serde(rename_all = "PascalCase")]
    AudioConferencingEnabledChanged { identity: String, enabled: bool },
    /// T2d: the user was moved to another audio-conferencing bridge.
    #[serde(rename_all = "PascalCase")]
    UserBridgeChanged { identity: String, bridge: String },
    /// T2e: a phone number was unassigned from a bridge (fans out to the bridge's organizers).
    #[serde(rename_all = "PascalCase")]
    BridgeNumberUnassigned { bridge: String, number: String },
    /// T2 (the vendor triggers on it too): the user's PSTN conference id was changed or reset.
    #[serde(rename_all = "PascalCase")]
    ConferenceIdChanged {
        identity: String,
        conference_id: String,
    },
    /// T2-no: the organizer's SIP address changed: recorded, nothing migrates.
    #[serde(rename_all = "PascalCase")]
    SipAddressChanged {
        identity: String,
        sip_address: String,
    },
    /// T2-no: the organization's meeting URL changed: nothing migrates.
    #[serde(rename_all = "PascalCase")]
    OrganizationMeetingUrlChanged { url: String },
    /// T3: TeamsUpgradePolicy granted to one user (`Identity`) or tenant-wide (no `Identity`).
    #[serde(rename_all = "PascalCase")]
    TeamsUpgradePolicyGranted {
        #[serde(default)]
        identity: Option<String>,
        mode: TeamsUpgradeMode,
        /// `-MigrateMeetingsToTeams`; `false` grants the mode without migrating meetings.
        #[serde(default = "yes")]
        migrate_meetings_to_teams: bool,
    },
}

fn yes() -> bool {
    true
}

impl Event {
    /// The user the event is about, for per-user events.
    pub fn identity(&self) -> Option<&str> {
        match self {
            Event::UserMovedToCloud { identity, .. }
            | Event::UserMovedToOnPremises { identity }
            | Event::AudioConferencingLicenseChanged { identity, .. }
            | Event::AudioProviderChanged { identity, .. }
            | Event::AudioConferencingEnabledChanged { identity, .. }
            | Event::UserBridgeChanged { identity, .. }
            | Event::ConferenceIdChanged { identity, .. }
            | Event::SipAddressChanged { identity, .. } => Some(identity),
            Event::TeamsUpgradePolicyGranted { identity, .. } => identity.as_deref(),
            Event::BridgeNumberUnassigned { .. } | Event::OrganizationMeetingUrlChanged { .. } => {
                None
            }
        }
    }

    /// The bridge the rules need to see, if any.
    pub fn bridge(&self) -> Option<&str> {
        match self {
            Event::UserBridgeChanged { bridge, .. }
            | Event::BridgeNumberUnassigned { bridge, .. } => Some(bridge),
            _ => None,
        }
    }

    /// The event's `Type`, as it appears in the transaction history.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::UserMovedToCloud { .. } => "UserMovedToCloud",
            Event::UserMovedToOnPremises { .. } => "UserMovedToOnPremises",
            Event::AudioConferencingLicenseChanged { .. } => "AudioConferencingLicenseChanged",
            Event::AudioProviderChanged { .. } => "AudioProviderChanged",
            Event::AudioConferencingEnabledChanged { .. } => "AudioConferencingEnabledChanged",
            Event::UserBridgeChanged { .. } => "UserBridgeChanged",
            Event::BridgeNumberUnassigned { .. } => "BridgeNumberUnassigned",
            Event::ConferenceIdChanged { .. } => "ConferenceIdChanged",
            Event::SipAddressChanged { .. } => "SipAddressChanged",
            Event::OrganizationMeetingUrlChanged { .. } => "OrganizationMeetingUrlChanged",
            Event::TeamsUpgradePolicyGranted { .. } => "TeamsUpgradePolicyGranted",
        }
    }
}
