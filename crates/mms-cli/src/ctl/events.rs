//! Event commands: one per kind of directory change (T1, X2, T2a–T2e, T2-no, T3), each built as
//! the API's own [`Event`] value, so that a renamed or reshaped event fails to compile here.

use mms_control::events::Event;
use mms_core::{AudioProvider, TeamsUpgradeMode};

use super::args::{AudioChange, MoveTarget};
use super::client::{Body, Failure};
use super::render::View;
use super::{Ctx, Shown};

/// Post `event` to the tenant's events; the rules' verdicts come back, or for a fan-out its
/// job (see [`super::jobs::job_reply`]).
async fn post(ctx: &Ctx, event: &Event) -> Result<Shown, Failure> {
    post_body(ctx, Body::json(event)?).await
}

async fn post_body(ctx: &Ctx, body: Body) -> Result<Shown, Failure> {
    let value = ctx
        .client
        .post_waiting_for_job(&ctx.tenant_path("/events")?, body)
        .await?;
    match super::jobs::job_reply(&value) {
        Some(shown) => Ok(shown),
        None => Shown::reply(value, View::Event),
    }
}

/// `move-user --to cloud|on-premises [--move-to-teams]` (T1a, T1b, X2).
pub async fn move_user(
    ctx: &Ctx,
    identity: String,
    to: MoveTarget,
    move_to_teams: bool,
) -> Result<Shown, Failure> {
    let event = match to {
        MoveTarget::Cloud => Event::UserMovedToCloud {
            identity,
            move_to_teams,
        },
        MoveTarget::OnPremises => Event::UserMovedToOnPremises { identity },
    };
    post(ctx, &event).await
}

/// `grant-upgrade-policy` (T3), to one user or tenant-wide.
pub async fn grant_upgrade_policy(
    ctx: &Ctx,
    identity: Option<String>,
    mode: TeamsUpgradeMode,
    migrate_meetings_to_teams: bool,
) -> Result<Shown, Failure> {
    let event = Event::TeamsUpgradePolicyGranted {
        identity,
        mode,
        migrate_meetings_to_teams,
    };
    post(ctx, &event).await
}

/// `audio-conferencing-change` (T2a–T2d, conference id): the one change given.
pub async fn audio_change(
    ctx: &Ctx,
    identity: String,
    change: AudioChange,
) -> Result<Shown, Failure> {
    post(ctx, &audio_event(identity, change)?).await
}

/// The event of an audio-conferencing change (clap guarantees exactly one is given).
fn audio_event(identity: String, change: AudioChange) -> Result<Event, Failure> {
    let provider: Option<AudioProvider> = change.provider;
    Ok(if let Some(assigned) = change.license_assigned {
        Event::AudioConferencingLicenseChanged { identity, assigned }
    } else if let Some(provider) = provider {
        Event::AudioProviderChanged { identity, provider }
    } else if let Some(enabled) = change.enabled {
        Event::AudioConferencingEnabledChanged { identity, enabled }
    } else if let Some(bridge) = change.bridge {
        Event::UserBridgeChanged { identity, bridge }
    } else if let Some(conference_id) = change.conference_id {
        Event::ConferenceIdChanged {
            identity,
            conference_id,
        }
    } else {
        return Err(Failure::local(
            "missing_change",
            "give one change: --license-assigned, --provider, --enabled, --bridge or --conference-id",
        ));
    })
}

/// `change-sip-address` (T2-no): recorded in the user's history, nothing queued.
pub async fn change_sip_address(
    ctx: &Ctx,
    identity: String,
    sip_address: String,
) -> Result<Shown, Failure> {
    post(
        ctx,
        &Event::SipAddressChanged {
            identity,
            sip_address,
        },
    )
    .await
}

/// `change-organization-meeting-url` (T2-no): recorded in every user's history, nothing queued.
pub async fn change_organization_meeting_url(ctx: &Ctx, url: String) -> Result<Shown, Failure> {
    post(ctx, &Event::OrganizationMeetingUrlChanged { url }).await
}

/// `unassign-bridge-number` (T2e, fans out to the bridge's organizers).
pub async fn unassign_bridge_number(
    ctx: &Ctx,
    bridge: String,
    number: String,
) -> Result<Shown, Failure> {
    post(ctx, &Event::BridgeNumberUnassigned { bridge, number }).await
}

/// `post-event --json`: any event as JSON, checked by the API.
pub async fn post_json(ctx: &Ctx, text: &str) -> Result<Shown, Failure> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Failure::local("invalid_json", format!("--json: {e}")))?;
    post_body(ctx, Body::Json(value)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The events serialize as the API reads them (its own type, its own names).
    #[test]
    fn audio_changes_become_the_api_events() {
        let change = |f: fn(&mut AudioChange)| {
            let mut change = AudioChange {
                license_assigned: None,
                provider: None,
                enabled: None,
                bridge: None,
                conference_id: None,
            };
            f(&mut change);
            serde_json::to_value(audio_event("a@x.com".into(), change).unwrap()).unwrap()
        };
        assert_eq!(
            change(|c| c.provider = Some(AudioProvider::ThirdParty)),
            json!({"Type": "AudioProviderChanged", "Identity": "a@x.com", "Provider": "ThirdParty"})
        );
        assert_eq!(
            change(|c| c.conference_id = Some("42".into())),
            json!({"Type": "ConferenceIdChanged", "Identity": "a@x.com", "ConferenceId": "42"})
        );
    }
}
