//! The trigger rules (T1–T4), the exclusions (X1, X2) and the tenant switches (M3, M4), as one
//! pure function per entry point: no I/O, so every row of the requirement tables is a plain input
//! and an expected [`Decision`].
//!
//! Order of the checks for one user, first match wins:
//! 1. the rule itself says nothing migrates (T2-no, a third-party audio provider for T2a, a mode
//!    that keeps meetings where they are, `MigrateMeetingsToTeams = false`);
//! 2. the exclusions: X1 (mailbox in Exchange on-premises), X2 (the user is homed on-premises:
//!    moved back from the cloud) — refused with a message that says what to use instead. X2 holds
//!    for every rule but T1, which is the move to the cloud itself: a later T2 or T3 event, a
//!    fan-out (each on-premises user is reported refused, nothing queued for them) and a manual
//!    start (T4) are all refused;
//! 3. the switches: `MeetingMigrationEnabled = false` stops every automatic trigger,
//!    `AutomaticallyMigrateUserMeetings = false` stops T2 only.
//!
//! The manual start (T4) is an explicit admin command and overrides `MeetingMigrationEnabled =
//! false`, as the vendor's `Start-CsExMeetingMigration` does: it is queued, the history says that
//! the switch was overridden, and the worker runs it (requests whose trigger is
//! [`Trigger::Manual`] are not held by the switch). X1 and X2 still refuse it: MMS cannot reach
//! the mailbox, or must not move an on-premises user's meetings.
//!
//! Source and target per rule:
//! - T1a → (All, Teams): the user ends TeamsOnly, every meeting becomes a Teams meeting.
//! - T1b → (SfB, Current): the on-premises SfB meetings become SfB Online meetings.
//! - T2* → (All, Current): same platform, dial-in coordinates refreshed.
//! - T3 TeamsOnly → (All, Teams): SfB meetings move and existing Teams meetings are re-minted with
//!   the user's current Teams coordinates. T3 SfBWithTeamsCollabAndMeetings → (SfB, Teams): the
//!   user's Teams meetings are already right, only the SfB ones move.

use mms_core::{
    AudioProvider, Bridge, MailboxLocation, SourceMeetingType, TargetMeetingType, TeamsUpgradeMode,
    TenantSettings, Trigger, UserHome, UserProfile,
};

use crate::events::Event;

/// What happens to one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerdictKind {
    /// Queue a migration request; `note` is recorded in the history (e.g. a switch overridden).
    Queue {
        source: SourceMeetingType,
        target: TargetMeetingType,
        trigger: Trigger,
        note: Option<String>,
    },
    /// An exclusion (X1, X2) applies: nothing is queued, `message` says why and what to use instead.
    Refused {
        exclusion: &'static str,
        message: String,
    },
    /// The rule or a switch says nothing migrates; `reason` says which.
    NotTriggered { reason: String },
}

/// The decision for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub user: String,
    pub user_id: String,
    /// Row of the requirement table: `T1a`, `T2e`, `T2-no`, `T3`, `T4`...
    pub rule: &'static str,
    pub kind: VerdictKind,
}

/// Everything an event leads to: directory changes, then one verdict per affected user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Users whose record the event changes (written whatever the verdicts).
    pub user_updates: Vec<UserProfile>,
    /// The bridge the event changes, if any.
    pub bridge_update: Option<Bridge>,
    pub verdicts: Vec<Verdict>,
    /// Said about the tenant as a whole when no user is concerned (T2-no organization URL, an
    /// empty fan-out).
    pub note: Option<String>,
}

/// Decide an event. `users` holds the event's user for per-user events, and every user of the
/// tenant for fan-out events (a bridge number unassigned, a tenant-wide policy grant); `bridge`
/// is the bridge the event names, already checked to exist by the caller.
pub fn decide(
    event: &Event,
    settings: &TenantSettings,
    users: &[UserProfile],
    bridge: Option<&Bridge>,
) -> Decision {
    let mut decision = Decision::default();
    match event {
        Event::UserMovedToCloud { move_to_teams, .. } => {
            for user in users {
                let mut moved = user.clone();
                moved.home = UserHome::Cloud;
                let (rule, source, target) = if *move_to_teams {
                    moved.teams_upgrade_mode = TeamsUpgradeMode::TeamsOnly;
                    ("T1a", SourceMeetingType::All, TargetMeetingType::Teams)
                } else {
                    ("T1b", SourceMeetingType::SfB, TargetMeetingType::Current)
                };
                let trigger = Trigger::MovedToCloud {
                    move_to_teams: *move_to_teams,
                };
                decision
                    .verdicts
                    .push(automatic(rule, &moved, settings, source, target, trigger));
                decision.user_updates.push(moved);
            }
        }
        Event::UserMovedToOnPremises { .. } => {
            for user in users {
                let mut moved = user.clone();
                moved.home = UserHome::OnPremises;
                decision
                    .verdicts
                    .push(verdict("X2", &moved, refused_x2(&moved)));
                decision.user_updates.push(moved);
            }
        }
        Event::AudioConferencingLicenseChanged { assigned, .. } => {
            for user in users {
                let mut changed = user.clone();
                changed.audio.enabled = *assigned;
                let change = if *assigned {
                    "LicenseAssigned"
                } else {
                    "LicenseRemoved"
                };
                let v = if changed.audio.provider == AudioProvider::ThirdParty {
                    verdict("T2a", &changed, not_triggered(format!(
                        "{} uses a third-party audio-conferencing provider: a licence change does not touch the \
                         dial-in of their meetings",
                        changed.upn
                    )))
                } else {
                    dial_in_refresh("T2a", &changed, settings, change)
                };
                decision.verdicts.push(v);
                decision.user_updates.push(changed);
            }
        }
        Event::AudioProviderChanged { provider, .. } => {
            for user in users {
                let mut changed = user.clone();
                changed.audio.provider = *provider;
                decision.verdicts.push(dial_in_refresh(
                    "T2b",
                    &changed,
                    settings,
                    "ProviderChanged",
                ));
                decision.user_updates.push(changed);
            }
        }
        Event::AudioConferencingEnabledChanged { enabled, .. } => {
            for user in users {
                let mut changed = user.clone();
                changed.audio.enabled = *enabled;
                let change = if *enabled { "Enabled" } else { "Disabled" };
                decision
                    .verdicts
                    .push(dial_in_refresh("T2c", &changed, settings, change));
                decision.user_updates.push(changed);
            }
        }
        Event::UserBridgeChanged {
            bridge: bridge_id, ..
        } => {
            for user in users {
                let mut changed = user.clone();
                changed.audio.bridge = Some(bridge_id.clone());
                // The old bridge's default number is not on the new bridge.
                changed.audio.default_toll_number = bridge.and_then(default_toll_number);
                decision
                    .verdicts
                    .push(dial_in_refresh("T2d", &changed, settings, "BridgeChanged"));
                decision.user_updates.push(changed);
            }
        }
        Event::BridgeNumberUnassigned {
            bridge: bridge_id,
            number,
        } => {
            if let Some(bridge) = bridge {
                let mut changed_bridge = bridge.clone();
                changed_bridge.numbers.retain(|n| &n.number != number);
                let fallback = default_toll_number(&changed_bridge);
                for user in users
                    .iter()
                    .filter(|u| u.audio.bridge.as_deref() == Some(bridge_id))
                {
                    let mut changed = user.clone();
                    if changed.audio.default_toll_number.as_deref() == Some(number) {
                        changed.audio.default_toll_number = fallback.clone();
                        decision.user_updates.push(changed.clone());
                    }
                    // Every organizer on the bridge: the bridge's numbers are on all their meetings.
                    let v = if !changed.audio.enabled {
                        verdict("T2e", &changed, not_triggered(format!(
                            "audio conferencing is disabled for {}: their meetings carry no dial-in numbers",
                            changed.upn
                        )))
                    } else if changed.audio.provider == AudioProvider::ThirdParty {
                        verdict("T2e", &changed, not_triggered(format!(
                            "{} uses a third-party audio-conferencing provider: their meetings carry its numbers, \
                             not bridge {bridge_id}'s",
                            changed.upn
                        )))
                    } else {
                        dial_in_refresh("T2e", &changed, settings, "BridgeNumberUnassigned")
                    };
                    decision.verdicts.push(v);
                }
                if decision.verdicts.is_empty() {
                    decision.note = Some(format!(
                        "no organizer is on bridge {bridge_id}: nothing to migrate"
                    ));
                }
                decision.bridge_update = Some(changed_bridge);
            }
        }
        Event::ConferenceIdChanged { conference_id, .. } => {
            for user in users {
                let mut changed = user.clone();
                changed.audio.conference_id = Some(conference_id.clone());
                decision.verdicts.push(dial_in_refresh(
                    "T2",
                    &changed,
                    settings,
                    "ConferenceIdChanged",
                ));
                decision.user_updates.push(changed);
            }
        }
        Event::SipAddressChanged { sip_address, .. } => {
            for user in users {
                let mut changed = user.clone();
                changed.sip_address = Some(sip_address.clone());
                decision.verdicts.push(verdict("T2-no", &changed, not_triggered(
                    "an organizer's SIP address change does not migrate meetings (T2-no): their join links stay valid".into(),
                )));
                decision.user_updates.push(changed);
            }
        }
        Event::OrganizationMeetingUrlChanged { url } => {
            // Every organizer's history records that the change arrived and why it migrated
            // nothing, as for a SIP address change; the note says it once for the tenant.
            for user in users {
                decision.verdicts.push(verdict("T2-no", user, not_triggered(format!(
                    "a change of the organization's meeting URL (now {url}) does not migrate meetings (T2-no)"
                ))));
            }
            decision.note = Some(format!(
                "T2-no: a change of the organization's meeting URL (now {url}) does not migrate meetings; \
                 run mmsctl start-meeting-migration for the users whose meetings should carry it"
            ));
        }
        Event::TeamsUpgradePolicyGranted {
            identity,
            mode,
            migrate_meetings_to_teams,
        } => {
            let per_user = identity.is_some();
            // A tenant-wide grant concerns the users whose mode it changes; a per-user grant always
            // concerns its user (the vendor migrates on every per-user grant).
            let affected = users
                .iter()
                .filter(|u| per_user || u.teams_upgrade_mode != *mode);
            for user in affected {
                let mut changed = user.clone();
                changed.teams_upgrade_mode = *mode;
                let source = match mode {
                    TeamsUpgradeMode::TeamsOnly => Some(SourceMeetingType::All),
                    TeamsUpgradeMode::SfBWithTeamsCollabAndMeetings => Some(SourceMeetingType::SfB),
                    _ => None,
                };
                let v = match source {
                    None => verdict("T3", &changed, not_triggered(format!(
                        "TeamsUpgradePolicy mode {mode:?} keeps meetings where they are; only TeamsOnly and \
                         SfBWithTeamsCollabAndMeetings migrate them"
                    ))),
                    Some(_) if !migrate_meetings_to_teams => verdict("T3", &changed, not_triggered(
                        "the policy was granted with MigrateMeetingsToTeams = false".into(),
                    )),
                    Some(source) => automatic(
                        "T3",
                        &changed,
                        settings,
                        source,
                        TargetMeetingType::Teams,
                        Trigger::UpgradePolicy { mode: format!("{mode:?}") },
                    ),
                };
                decision.verdicts.push(v);
                decision.user_updates.push(changed);
            }
            if decision.verdicts.is_empty() {
                decision.note = Some(format!(
                    "every user already has mode {mode:?}: nothing to migrate"
                ));
            }
        }
    }
    decision
}

/// Decide a manual start (T4, `Start-CsExMeetingMigration`).
pub fn decide_manual(
    user: &UserProfile,
    settings: &TenantSettings,
    source: SourceMeetingType,
    target: TargetMeetingType,
) -> Verdict {
    if let Some(refusal) = refused_x1(user).or_else(|| refused_on_premises(user)) {
        return verdict("T4", user, refusal);
    }
    let note = (!settings.meeting_migration_enabled).then(|| {
        "MeetingMigrationEnabled is false for the tenant: an explicit Start-CsExMeetingMigration overrides it and runs"
            .to_string()
    });
    verdict(
        "T4",
        user,
        VerdictKind::Queue {
            source,
            target,
            trigger: Trigger::Manual,
            note,
        },
    )
}

/// The first toll (not toll-free) number of a bridge: what a user's meetings show first.
fn default_toll_number(bridge: &Bridge) -> Option<String> {
    bridge
        .numbers
        .iter()
        .find(|n| !n.toll_free)
        .map(|n| n.number.clone())
}

fn verdict(rule: &'static str, user: &UserProfile, kind: VerdictKind) -> Verdict {
    Verdict {
        user: user.upn.clone(),
        user_id: user.user_id.clone(),
        rule,
        kind,
    }
}

fn not_triggered(reason: String) -> VerdictKind {
    VerdictKind::NotTriggered { reason }
}

/// A T2 rule: refresh the dial-in of every meeting on the same platform.
fn dial_in_refresh(
    rule: &'static str,
    user: &UserProfile,
    settings: &TenantSettings,
    change: &str,
) -> Verdict {
    let trigger = Trigger::AudioConferencing {
        change: change.to_string(),
    };
    automatic(
        rule,
        user,
        settings,
        SourceMeetingType::All,
        TargetMeetingType::Current,
        trigger,
    )
}

/// An automatic trigger: exclusions, then the switches, then queue. T1 passes the user already
/// moved to the cloud, so X2 never refuses it.
fn automatic(
    rule: &'static str,
    user: &UserProfile,
    settings: &TenantSettings,
    source: SourceMeetingType,
    target: TargetMeetingType,
    trigger: Trigger,
) -> Verdict {
    if let Some(refusal) = refused_x1(user).or_else(|| refused_on_premises(user)) {
        return verdict(rule, user, refusal);
    }
    if !settings.meeting_migration_enabled {
        return verdict(
            rule,
            user,
            not_triggered(format!(
                "MeetingMigrationEnabled is false for tenant {}: automatic migrations are off \
             (mmsctl set-tenant-migration-configuration --meeting-migration-enabled true)",
                settings.tenant
            )),
        );
    }
    let is_dial_in_rule = matches!(trigger, Trigger::AudioConferencing { .. });
    if is_dial_in_rule && !settings.automatically_migrate_user_meetings {
        return verdict(rule, user, not_triggered(format!(
            "AutomaticallyMigrateUserMeetings is false for tenant {}: audio-conferencing changes do not migrate \
             meetings (mmsctl set-dialin-conferencing-tenant-settings --automatically-migrate-user-meetings true)",
            settings.tenant
        )));
    }
    verdict(
        rule,
        user,
        VerdictKind::Queue {
            source,
            target,
            trigger,
            note: None,
        },
    )
}

/// X1: MMS cannot reach a mailbox in Exchange on-premises.
fn refused_x1(user: &UserProfile) -> Option<VerdictKind> {
    (user.mailbox == MailboxLocation::ExchangeOnPremises).then(|| VerdictKind::Refused {
        exclusion: "X1",
        message: format!(
            "the mailbox of {} is in Exchange on-premises, which MMS cannot reach: have the user run the \
             self-service Meeting Migration tool, or move the mailbox to the cloud and start the migration again",
            user.upn
        ),
    })
}

/// X2 for a user whose home is on-premises (every trigger but T1, the move to the cloud).
fn refused_on_premises(user: &UserProfile) -> Option<VerdictKind> {
    (user.home == UserHome::OnPremises).then(|| refused_x2(user))
}

/// X2: meetings are not migrated for a user homed on-premises (moved back from the cloud).
fn refused_x2(user: &UserProfile) -> VerdictKind {
    VerdictKind::Refused {
        exclusion: "X2",
        message: format!(
            "{} is homed on-premises (moved from the cloud to on-premises): MMS does not migrate meetings to or for \
             on-premises Skype for Business; run the on-premises Meeting Migration tool for this user instead, or \
             move the user to the cloud (event UserMovedToCloud, T1), which migrates their meetings",
            user.upn
        ),
    }
}
