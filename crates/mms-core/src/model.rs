//! Migration requests and their status, with the vendor's field names.
//!
//! Admins have scripts written against `Get-CsMeetingMigrationStatus`; the status row here
//! serializes with exactly those PascalCase names (M2) so that those scripts carry over.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which online meetings of the organizer a migration touches (`-SourceMeetingType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SourceMeetingType {
    /// Skype for Business and Teams meetings alike (the vendor's default).
    #[default]
    All,
    #[serde(rename = "SfB")]
    SfB,
    Teams,
}

/// What the touched meetings become (`-TargetMeetingType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TargetMeetingType {
    /// SfB stays SfB, Teams stays Teams; only the coordinates (dial-in, host) are refreshed.
    #[default]
    Current,
    /// Every touched meeting becomes a Teams meeting.
    Teams,
}

impl TargetMeetingType {
    /// The platform a meeting whose block is of `found` kind is migrated to: `Current` keeps it,
    /// `Teams` makes every meeting a Teams meeting.
    pub fn kind_for(self, found: crate::OnlineMeetingKind) -> crate::OnlineMeetingKind {
        match self {
            TargetMeetingType::Current => found,
            TargetMeetingType::Teams => crate::OnlineMeetingKind::Teams,
        }
    }
}

/// The vendor's `MigrationType` column, derived from source and target meeting types, plus
/// MMS's own `Undo`: the undo of an earlier migration, which puts back what that one replaced
/// (issue 9.2; `POST /v1/tenants/{t}/migrations/{correlation_id}:undo`, `mmsctl
/// undo-meeting-migration`). Spelled as the variant names in JSON and in filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MigrationType {
    SfbToTeams,
    TeamsToTeams,
    AllToTeams,
    ToSameType,
    /// Undo of the migration its trigger names ([`Trigger::Undo`]).
    Undo,
}

impl MigrationType {
    pub fn derive(source: SourceMeetingType, target: TargetMeetingType) -> Self {
        match (source, target) {
            (_, TargetMeetingType::Current) => MigrationType::ToSameType,
            (SourceMeetingType::SfB, TargetMeetingType::Teams) => MigrationType::SfbToTeams,
            (SourceMeetingType::Teams, TargetMeetingType::Teams) => MigrationType::TeamsToTeams,
            (SourceMeetingType::All, TargetMeetingType::Teams) => MigrationType::AllToTeams,
        }
    }
}

/// Error for a value that is not one of an enum's spellings; says which ones are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be one of {accepted}, not {given:?}")]
pub struct ParseEnumError {
    pub what: &'static str,
    pub accepted: &'static str,
    pub given: String,
}

macro_rules! text_enum {
    ($ty:ty, $what:literal, [$($variant:ident => $text:literal),+ $(,)?]) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$variant => $text),+ })
            }
        }
        impl FromStr for $ty {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s.eq_ignore_ascii_case($text) { return Ok(Self::$variant); })+
                Err(ParseEnumError {
                    what: $what,
                    accepted: concat!($($text, " "),+).trim_ascii_end(),
                    given: s.to_string(),
                })
            }
        }
    };
}

text_enum!(SourceMeetingType, "SourceMeetingType", [All => "All", SfB => "SfB", Teams => "Teams"]);
text_enum!(TargetMeetingType, "TargetMeetingType", [Current => "Current", Teams => "Teams"]);
text_enum!(MigrationType, "MigrationType", [
    SfbToTeams => "SfbToTeams", TeamsToTeams => "TeamsToTeams",
    AllToTeams => "AllToTeams", ToSameType => "ToSameType", Undo => "Undo",
]);
text_enum!(MigrationState, "State", [
    Pending => "Pending", InProgress => "InProgress", Failed => "Failed", Succeeded => "Succeeded",
]);

/// Why a request exists: the row of the trigger table (T1–T4) that produced it, or a retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Trigger {
    /// T1a / T1b: the user moved on-premises -> cloud.
    MovedToCloud { move_to_teams: bool },
    /// T2a–T2e and conference-id changes: something about the user's dial-in changed.
    AudioConferencing { change: String },
    /// T3: TeamsUpgradePolicy granted with a migrating mode.
    UpgradePolicy { mode: String },
    /// T4: Start-CsExMeetingMigration.
    Manual,
    /// An admin's undo of the migration `of` (issue 9.2): the request puts back, meeting by
    /// meeting, what that migration replaced. Its source and target meeting types are copied
    /// from the migration undone, for the record; they select nothing.
    Undo { of: String },
}

impl Trigger {
    /// The migration this request undoes, when it is an undo.
    pub fn undoes(&self) -> Option<&str> {
        match self {
            Trigger::Undo { of } => Some(of),
            _ => None,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::MovedToCloud {
                move_to_teams: true,
            } => f.write_str("T1a MovedToCloud MoveToTeams"),
            Trigger::MovedToCloud {
                move_to_teams: false,
            } => f.write_str("T1b MovedToCloud"),
            Trigger::AudioConferencing { change } => write!(f, "T2 AudioConferencing {change}"),
            Trigger::UpgradePolicy { mode } => write!(f, "T3 TeamsUpgradePolicy {mode}"),
            Trigger::Manual => f.write_str("T4 Start-CsExMeetingMigration"),
            Trigger::Undo { of } => write!(f, "Undo of migration {of}"),
        }
    }
}

/// One migration request as it travels on the queue (rmp-serde on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MigrationRequest {
    pub tenant: String,
    /// The user's principal name (lower-cased); the queue merges requests per (tenant, user).
    pub user: String,
    pub source: SourceMeetingType,
    pub target: TargetMeetingType,
    pub trigger: Trigger,
    pub correlation_id: String,
    /// When the trigger happened (ms since the epoch).
    pub requested_at_ms: i64,
}

impl MigrationRequest {
    pub fn new(
        tenant: impl Into<String>,
        user: impl Into<String>,
        source: SourceMeetingType,
        target: TargetMeetingType,
        trigger: Trigger,
    ) -> Self {
        MigrationRequest {
            tenant: tenant.into(),
            user: user.into().to_ascii_lowercase(),
            source,
            target,
            trigger,
            correlation_id: uuid::Uuid::new_v4().to_string(),
            requested_at_ms: Utc::now().timestamp_millis(),
        }
    }

    /// `Undo` for an undo request, else the vendor's type of its source and target.
    pub fn migration_type(&self) -> MigrationType {
        match self.trigger {
            Trigger::Undo { .. } => MigrationType::Undo,
            _ => MigrationType::derive(self.source, self.target),
        }
    }
}

/// `State` of a migration, as the vendor names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MigrationState {
    Pending,
    InProgress,
    Failed,
    Succeeded,
}

impl MigrationState {
    pub fn is_final(self) -> bool {
        matches!(self, MigrationState::Failed | MigrationState::Succeeded)
    }
}

/// What happened to one meeting of a migration (beyond the vendor, which only counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MeetingOutcomeKind {
    /// Rewritten, saved and the update sent to its attendees.
    Updated,
    /// Already carried the target coordinates: nothing saved, nothing sent.
    Unchanged,
    /// Not migrated, by rule (organized by someone else, past, no online block of the source type...).
    Skipped,
    /// Could not be migrated; `reason` says why.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct MeetingOutcome {
    pub uid: String,
    pub href: String,
    pub summary: String,
    pub outcome: MeetingOutcomeKind,
    pub reason: String,
    pub sequence: Option<u32>,
    pub recipients: u32,
}

/// One row of `Get-CsMeetingMigrationStatus`, field for field, plus MMS's per-meeting detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct MigrationStatus {
    pub tenant: String,
    pub user_principal_name: String,
    pub user_id: String,
    pub correlation_id: String,
    pub state: MigrationState,
    pub migration_type: MigrationType,
    pub source_meeting_type: SourceMeetingType,
    pub target_meeting_type: TargetMeetingType,
    pub trigger: String,
    pub total_meeting: u32,
    pub succeeded_meeting: u32,
    pub failed_meeting: u32,
    pub invites_update: u32,
    pub retry_count: u32,
    pub last_message: String,
    pub create_date: DateTime<Utc>,
    pub modified_date: DateTime<Utc>,
    /// Why the tenant switch held this request, when it did (`Pending` with this set = held).
    #[serde(default)]
    pub held_reason: Option<String>,
    #[serde(default)]
    pub meetings: Vec<MeetingOutcome>,
}

impl MigrationStatus {
    pub fn pending(req: &MigrationRequest, user_id: &str, now: DateTime<Utc>) -> Self {
        MigrationStatus {
            tenant: req.tenant.clone(),
            user_principal_name: req.user.clone(),
            user_id: user_id.to_string(),
            correlation_id: req.correlation_id.clone(),
            state: MigrationState::Pending,
            migration_type: req.migration_type(),
            source_meeting_type: req.source,
            target_meeting_type: req.target,
            trigger: req.trigger.to_string(),
            total_meeting: 0,
            succeeded_meeting: 0,
            failed_meeting: 0,
            invites_update: 0,
            retry_count: 0,
            last_message: "Queued".to_string(),
            create_date: now,
            modified_date: now,
            held_reason: None,
            meetings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_type_follows_the_vendor_table() {
        use SourceMeetingType as S;
        use TargetMeetingType as T;
        assert_eq!(
            MigrationType::derive(S::SfB, T::Teams),
            MigrationType::SfbToTeams
        );
        assert_eq!(
            MigrationType::derive(S::Teams, T::Teams),
            MigrationType::TeamsToTeams
        );
        assert_eq!(
            MigrationType::derive(S::All, T::Teams),
            MigrationType::AllToTeams
        );
        for s in [S::All, S::SfB, S::Teams] {
            assert_eq!(
                MigrationType::derive(s, T::Current),
                MigrationType::ToSameType
            );
        }
    }

    #[test]
    fn an_undo_request_is_of_its_own_migration_type() {
        let undo = MigrationRequest::new(
            "t",
            "u@x.com",
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Undo { of: "c1".into() },
        );
        assert_eq!(undo.migration_type(), MigrationType::Undo);
        assert_eq!(undo.trigger.undoes(), Some("c1"));
        assert_eq!(undo.trigger.to_string(), "Undo of migration c1");
        assert_eq!(
            "undo".parse::<MigrationType>().unwrap(),
            MigrationType::Undo
        );
        assert_eq!(Trigger::Manual.undoes(), None);
    }

    #[test]
    fn current_keeps_the_platform_and_teams_moves_everything_to_teams() {
        use crate::OnlineMeetingKind::{SfB, Teams};
        assert_eq!(TargetMeetingType::Current.kind_for(SfB), SfB);
        assert_eq!(TargetMeetingType::Current.kind_for(Teams), Teams);
        assert_eq!(TargetMeetingType::Teams.kind_for(SfB), Teams);
    }

    #[test]
    fn enums_parse_case_insensitively_and_name_the_accepted_values() {
        assert_eq!(
            "sfb".parse::<SourceMeetingType>().unwrap(),
            SourceMeetingType::SfB
        );
        let err = "Zoom".parse::<SourceMeetingType>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "SourceMeetingType must be one of All SfB Teams, not \"Zoom\""
        );
    }

    #[test]
    fn status_serializes_with_vendor_field_names() {
        let req = MigrationRequest::new(
            "t",
            "U@X.COM",
            SourceMeetingType::All,
            TargetMeetingType::Teams,
            Trigger::Manual,
        );
        let json = serde_json::to_value(MigrationStatus::pending(&req, "id", Utc::now())).unwrap();
        for field in [
            "UserPrincipalName",
            "UserId",
            "CorrelationId",
            "State",
            "MigrationType",
            "TotalMeeting",
            "SucceededMeeting",
            "FailedMeeting",
            "InvitesUpdate",
            "RetryCount",
            "LastMessage",
            "CreateDate",
            "ModifiedDate",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(json["UserPrincipalName"], "u@x.com");
        assert_eq!(json["MigrationType"], "AllToTeams");
    }
}
