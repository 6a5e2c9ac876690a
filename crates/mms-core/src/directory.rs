//! What MMS knows about tenants, users and audio-conferencing bridges (the directory).
//!
//! The control plane writes these records (import, single changes, events); the worker reads them
//! to decide and to mint coordinates. They are stored in Redis by `mms-store`.

use serde::{Deserialize, Serialize};

use crate::coordinates::DialInNumber;

/// A tenant's two switches (M3, M4), both on by default as the vendor ships them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct TenantSettings {
    pub tenant: String,
    /// `Set-CsTenantMigrationConfiguration -MeetingMigrationEnabled`: off stops every automatic trigger
    /// and holds queued requests until it is on again.
    pub meeting_migration_enabled: bool,
    /// `Set-CsOnlineDialInConferencingTenantSettings -AutomaticallyMigrateUserMeetings`: off stops T2 only.
    pub automatically_migrate_user_meetings: bool,
}

impl TenantSettings {
    pub fn defaults(tenant: impl Into<String>) -> Self {
        TenantSettings {
            tenant: tenant.into(),
            meeting_migration_enabled: true,
            automatically_migrate_user_meetings: true,
        }
    }
}

/// Where the user is homed for meetings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UserHome {
    OnPremises,
    #[default]
    Cloud,
}

/// Where the user's mailbox is. MMS can only reach cloud mailboxes (X1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MailboxLocation {
    #[default]
    Cloud,
    ExchangeOnPremises,
}

/// TeamsUpgradePolicy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TeamsUpgradeMode {
    #[default]
    Islands,
    SfBOnly,
    SfBWithTeamsCollab,
    SfBWithTeamsCollabAndMeetings,
    TeamsOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AudioProvider {
    #[default]
    Microsoft,
    ThirdParty,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct AudioConferencing {
    pub enabled: bool,
    pub provider: AudioProvider,
    /// Id of the bridge whose numbers the user's meetings carry.
    pub bridge: Option<String>,
    /// The user's PSTN conference id.
    pub conference_id: Option<String>,
    /// The bridge number shown first (the user's default toll number).
    pub default_toll_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct UserProfile {
    pub tenant: String,
    /// User principal name, lower-case; also the mailbox owner's address.
    pub upn: String,
    /// `sip:` address without the scheme, lower-case.
    pub sip_address: Option<String>,
    /// Stable user id (the vendor's UserId column).
    pub user_id: String,
    #[serde(default)]
    pub home: UserHome,
    #[serde(default)]
    pub mailbox: MailboxLocation,
    #[serde(default)]
    pub teams_upgrade_mode: TeamsUpgradeMode,
    #[serde(default)]
    pub audio: AudioConferencing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct Bridge {
    pub tenant: String,
    pub id: String,
    pub name: String,
    pub numbers: Vec<DialInNumber>,
}
