//! Minting target meetings (P3): the seam to the meeting platform, and its default implementation.
//!
//! The default, [`TemplateMeetingService`], needs no external platform: it derives a meeting's
//! coordinates from a per-tenant URL template, a deterministic id and the user's bridge. Being
//! deterministic in (tenant, organizer, meeting UID) matters: a migration resumed after a crash mints
//! the same coordinates again, so the rewrite of an already-saved meeting is a no-op rather than a
//! second update to its attendees.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::coordinates::{Coordinates, OnlineMeetingKind};
use crate::directory::{AudioProvider, Bridge, UserProfile};

/// What the worker asks the platform for: coordinates of `kind` for one meeting of `organizer`.
#[derive(Debug, Clone)]
pub struct MintRequest<'a> {
    pub organizer: &'a UserProfile,
    /// The organizer's bridge (when audio conferencing is on and the provider is Microsoft).
    pub bridge: Option<&'a Bridge>,
    pub kind: OnlineMeetingKind,
    /// UID of the meeting being migrated: the key that makes minting idempotent.
    pub meeting_uid: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeetingServiceError {
    #[error("meeting platform unavailable: {0}")]
    Unavailable(String),
    #[error("meeting platform refused: {0}")]
    Refused(String),
}

#[async_trait]
pub trait MeetingService: Send + Sync {
    async fn mint(&self, request: &MintRequest<'_>) -> Result<Coordinates, MeetingServiceError>;
}

/// Templates of the default meeting service. `{tenant}`, `{user}` (local part of the UPN),
/// `{domain}` and `{meeting_id}` are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingTemplates {
    pub teams_join_url: String,
    pub sfb_join_url: String,
    pub find_local_number_url: String,
    /// Whether Teams meetings carry a passcode.
    pub passcode: bool,
}

impl Default for MeetingTemplates {
    fn default() -> Self {
        MeetingTemplates {
            teams_join_url: "https://teams.example.net/l/meetup-join/{tenant}/{meeting_id}".into(),
            sfb_join_url: "https://meet.{domain}/{user}/{meeting_id}".into(),
            find_local_number_url: "https://dialin.example.net/{tenant}".into(),
            passcode: true,
        }
    }
}

/// Coordinates derived from templates, ids hashed from (tenant, organizer, UID).
#[derive(Debug, Clone, Default)]
pub struct TemplateMeetingService {
    pub templates: MeetingTemplates,
}

impl TemplateMeetingService {
    pub fn new(templates: MeetingTemplates) -> Self {
        TemplateMeetingService { templates }
    }

    fn fill(template: &str, tenant: &str, upn: &str, meeting_id: &str) -> String {
        let (user, domain) = upn.split_once('@').unwrap_or((upn, ""));
        template
            .replace("{tenant}", tenant)
            .replace("{user}", user)
            .replace("{domain}", domain)
            .replace("{meeting_id}", meeting_id)
    }
}

/// `n` decimal digits derived from `seed`: stable, spread, never all zeros at the front.
fn digits(seed: &[u8], n: usize) -> String {
    let hash = Sha256::digest(seed);
    let mut out = String::with_capacity(n);
    for (i, byte) in hash.iter().cycle().take(n).enumerate() {
        let d = if i == 0 { 1 + byte % 9 } else { byte % 10 };
        out.push(char::from(b'0' + d));
    }
    out
}

#[async_trait]
impl MeetingService for TemplateMeetingService {
    async fn mint(&self, req: &MintRequest<'_>) -> Result<Coordinates, MeetingServiceError> {
        let org = req.organizer;
        let seed = format!(
            "{}\n{}\n{}\n{:?}",
            org.tenant, org.upn, req.meeting_uid, req.kind
        );
        let (meeting_id, template, passcode) = match req.kind {
            OnlineMeetingKind::Teams => {
                let id = digits(seed.as_bytes(), 12);
                let grouped = format!("{} {} {} {}", &id[0..3], &id[3..6], &id[6..9], &id[9..12]);
                let pass = self.templates.passcode.then(|| {
                    let h = Sha256::digest(format!("pass\n{seed}").as_bytes());
                    h.iter()
                        .take(6)
                        .map(|b| {
                            char::from(
                                b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
                                    [(*b as usize) % 56],
                            )
                        })
                        .collect()
                });
                (grouped, &self.templates.teams_join_url, pass)
            }
            OnlineMeetingKind::SfB => {
                let id: String =
                    hex::encode(&Sha256::digest(seed.as_bytes())[..4]).to_ascii_uppercase();
                (id, &self.templates.sfb_join_url, None)
            }
        };
        let url_id: String = meeting_id.chars().filter(|c| !c.is_whitespace()).collect();
        let join_url = Self::fill(template, &org.tenant, &org.upn, &url_id);
        let audio = &org.audio;
        let dial_in_on = audio.enabled && audio.provider == AudioProvider::Microsoft;
        let (dial_in, conference_id, find_local) = match (dial_in_on, req.bridge) {
            (true, Some(bridge)) => {
                let mut numbers = bridge.numbers.clone();
                // The user's default toll number goes first, as the vendor's invitations show it.
                if let Some(default) = &audio.default_toll_number {
                    numbers.sort_by_key(|n| n.number != *default);
                }
                let conf = audio.conference_id.clone().unwrap_or_else(|| {
                    digits(format!("conf\n{}\n{}", org.tenant, org.upn).as_bytes(), 9)
                });
                let find = Self::fill(
                    &self.templates.find_local_number_url,
                    &org.tenant,
                    &org.upn,
                    &url_id,
                );
                (numbers, Some(conf), Some(find))
            }
            _ => (Vec::new(), None, None),
        };
        Ok(Coordinates {
            kind: req.kind,
            join_url,
            meeting_id,
            passcode,
            conference_id,
            dial_in,
            find_local_number_url: find_local,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::AudioConferencing;
    use crate::DialInNumber;

    fn user(enabled: bool) -> UserProfile {
        UserProfile {
            tenant: "contoso".into(),
            upn: "joni@contoso.com".into(),
            sip_address: None,
            user_id: "u1".into(),
            home: Default::default(),
            mailbox: Default::default(),
            teams_upgrade_mode: Default::default(),
            audio: AudioConferencing {
                enabled,
                bridge: Some("b1".into()),
                conference_id: Some("123456789".into()),
                ..Default::default()
            },
        }
    }

    fn bridge() -> Bridge {
        Bridge {
            tenant: "contoso".into(),
            id: "b1".into(),
            name: "Main".into(),
            numbers: vec![DialInNumber {
                number: "+1 206 555 0100".into(),
                label: "Seattle (Toll)".into(),
                toll_free: false,
            }],
        }
    }

    #[tokio::test]
    async fn minting_is_deterministic_per_meeting_and_differs_between_meetings() {
        let svc = TemplateMeetingService::default();
        let u = user(true);
        let b = bridge();
        let req = |uid| MintRequest {
            organizer: &u,
            bridge: Some(&b),
            kind: OnlineMeetingKind::Teams,
            meeting_uid: uid,
        };
        let a1 = svc.mint(&req("a")).await.unwrap();
        assert_eq!(a1, svc.mint(&req("a")).await.unwrap());
        assert_ne!(a1.join_url, svc.mint(&req("b")).await.unwrap().join_url);
        assert_eq!(a1.conference_id.as_deref(), Some("123456789"));
        assert_eq!(a1.dial_in.len(), 1);
    }

    #[tokio::test]
    async fn no_dial_in_when_audio_conferencing_is_off() {
        let svc = TemplateMeetingService::default();
        let u = user(false);
        let b = bridge();
        let c = svc
            .mint(&MintRequest {
                organizer: &u,
                bridge: Some(&b),
                kind: OnlineMeetingKind::Teams,
                meeting_uid: "a",
            })
            .await
            .unwrap();
        assert!(c.dial_in.is_empty());
        assert!(c.conference_id.is_none());
    }
}
