//! User records as admins write them (one flat row per user, in CSV or JSON) and their validation.
//!
//! An import is all or nothing: every row is checked first, and one bad row rejects the whole file
//! with the list of every problem (row, field, what is wrong), so nothing is dropped silently and
//! the admin fixes the file in one pass.
//!
//! A row creates or replaces its user, with one exception that protects meetings' dial-in
//! numbers: `AudioEnabled` says whether the row describes the user's audio conferencing at all.
//! - Given (`true` / `false`): the row's audio fields are the user's dial-in, absent ones empty.
//! - Absent, for a user the directory has: the user's current dial-in (enabled, provider,
//!   bridge, conference id, default toll number) is kept, and only the audio fields the row
//!   gives change. A file that only updates homes or modes cannot strip numbers.
//! - Absent, for a new user: refused, naming the field. Defaulting to "no audio conferencing"
//!   would remove the dial-in numbers from every meeting of that user at their first migration;
//!   MMS cannot guess, so the admin says it.
//!
//! The format, as `mmsctl import-users --help` and the README show it, with sample files under
//! `deploy/examples/` (`users.csv`, `users.json`): one row or object per user, columns or keys
//! named as [`UserRecord`]'s fields (`Upn` required; the rest optional, enum values
//! case-insensitive).

use std::collections::{HashMap, HashSet};

use mms_core::{
    AudioConferencing, AudioProvider, MailboxLocation, TeamsUpgradeMode, UserHome, UserProfile,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validate;

/// One user as imported (a CSV row with these column names, or a JSON object) or as `PUT` on
/// `/users/{upn}`. Only `Upn` is required (and in a `PUT` it comes from the path); enum values are
/// case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UserRecord {
    #[serde(default)]
    pub upn: Option<String>,
    /// SIP address, with or without `sip:`.
    #[serde(default)]
    pub sip_address: Option<String>,
    /// Stable user id; derived from tenant and UPN when absent (UUID v5).
    #[serde(default)]
    pub user_id: Option<String>,
    /// `OnPremises` or `Cloud` (default).
    #[serde(default)]
    pub home: Option<String>,
    /// `Cloud` (default) or `ExchangeOnPremises`.
    #[serde(default)]
    pub mailbox: Option<String>,
    /// `Islands` (default), `SfBOnly`, `SfBWithTeamsCollab`, `SfBWithTeamsCollabAndMeetings`, `TeamsOnly`.
    #[serde(default)]
    pub teams_upgrade_mode: Option<String>,
    /// `true` or `false`. Absent: an existing user keeps their current dial-in; a new user is
    /// refused (say whether they have audio conferencing).
    #[serde(default)]
    pub audio_enabled: Option<String>,
    /// `Microsoft` (default) or `ThirdParty`.
    #[serde(default)]
    pub audio_provider: Option<String>,
    /// Id of an existing bridge.
    #[serde(default)]
    pub bridge: Option<String>,
    #[serde(default)]
    pub conference_id: Option<String>,
    #[serde(default)]
    pub default_toll_number: Option<String>,
}

impl From<&UserProfile> for UserRecord {
    /// The record that imports as `profile` again: what `mmsctl set-user` starts from to
    /// change only the fields it is given.
    fn from(profile: &UserProfile) -> Self {
        fn name(value: &impl Serialize) -> Option<String> {
            serde_json::to_value(value)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        }
        UserRecord {
            upn: Some(profile.upn.clone()),
            sip_address: profile.sip_address.clone(),
            user_id: Some(profile.user_id.clone()),
            home: name(&profile.home),
            mailbox: name(&profile.mailbox),
            teams_upgrade_mode: name(&profile.teams_upgrade_mode),
            audio_enabled: Some(profile.audio.enabled.to_string()),
            audio_provider: name(&profile.audio.provider),
            bridge: profile.audio.bridge.clone(),
            conference_id: profile.audio.conference_id.clone(),
            default_toll_number: profile.audio.default_toll_number.clone(),
        }
    }
}

/// One problem in an import, pointing at the row and the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct RowError {
    /// 1-based data row (a CSV file's header is row 0).
    pub row: usize,
    pub field: String,
    pub problem: String,
}

/// Parse a CSV file with a header row naming [`UserRecord`] fields.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<UserRecord>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (index, row) in reader.deserialize::<UserRecord>().enumerate() {
        match row {
            Ok(record) => records.push(record),
            Err(e) => errors.push(RowError {
                row: index + 1,
                field: "*".into(),
                problem: e.to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

/// Parse a JSON array of [`UserRecord`] objects.
pub fn parse_json(bytes: &[u8]) -> Result<Vec<UserRecord>, Vec<RowError>> {
    serde_json::from_slice(bytes).map_err(|e| {
        vec![RowError {
            row: 0,
            field: "*".into(),
            problem: format!(
                "not a JSON array of user records (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        }]
    })
}

/// Turn records into profiles of `tenant`, or list every problem. `bridges` are the tenant's
/// bridge ids (a record may only name an existing bridge); `existing` the tenant's users by UPN
/// (a row without `AudioEnabled` keeps its user's current dial-in).
pub fn validate_records(
    tenant: &str,
    records: &[UserRecord],
    bridges: &HashSet<String>,
    existing: &HashMap<String, UserProfile>,
) -> Result<Vec<UserProfile>, Vec<RowError>> {
    let mut profiles = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    let mut seen_upn: HashMap<String, usize> = HashMap::new();
    let mut seen_sip: HashMap<String, usize> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        let row = index + 1;
        let mut problems = Vec::new();
        match to_profile(tenant, record, bridges, |upn| existing.get(upn)) {
            Ok(profile) => {
                if let Some(first) = seen_upn.insert(profile.upn.clone(), row) {
                    problems.push((
                        "Upn",
                        format!("{} is also on row {first}: each user once", profile.upn),
                    ));
                }
                if let Some(sip) = &profile.sip_address {
                    if let Some(first) = seen_sip.insert(sip.clone(), row) {
                        problems.push((
                            "SipAddress",
                            format!("{sip} is also on row {first}: SIP addresses are unique"),
                        ));
                    }
                }
                profiles.push(profile);
            }
            Err(found) => problems.extend(found),
        }
        errors.extend(problems.into_iter().map(|(field, problem)| RowError {
            row,
            field: field.into(),
            problem,
        }));
    }
    if errors.is_empty() {
        Ok(profiles)
    } else {
        Err(errors)
    }
}

/// One record to a profile, or every problem in it (field, what is wrong). `existing` finds the
/// user the directory has under a UPN, if any (see the module doc for what it changes).
pub fn to_profile<'a>(
    tenant: &str,
    record: &UserRecord,
    bridges: &HashSet<String>,
    existing: impl FnOnce(&str) -> Option<&'a UserProfile>,
) -> Result<UserProfile, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let upn = match text(&record.upn) {
        None => {
            problems.push(("Upn", "missing: every user needs a UPN".to_string()));
            String::new()
        }
        Some(raw) => validate::upn(&raw).unwrap_or_else(|e| {
            problems.push(("Upn", e.message));
            String::new()
        }),
    };
    let sip_address = text(&record.sip_address).and_then(|raw| {
        validate::sip_address(&raw)
            .map_err(|e| problems.push(("SipAddress", e.message)))
            .ok()
    });
    let mut choice =
        |field: &'static str, value: &Option<String>, options: &[&'static str]| -> usize {
            let Some(given) = text(value) else { return 0 };
            options
                .iter()
                .position(|o| o.eq_ignore_ascii_case(&given))
                .unwrap_or_else(|| {
                    problems.push((
                        field,
                        format!("{given:?} is not one of {}", options.join(", ")),
                    ));
                    0
                })
        };
    let home = [UserHome::Cloud, UserHome::OnPremises]
        [choice("Home", &record.home, &["Cloud", "OnPremises"])];
    let mailbox = [MailboxLocation::Cloud, MailboxLocation::ExchangeOnPremises]
        [choice("Mailbox", &record.mailbox, &["Cloud", "ExchangeOnPremises"])];
    let modes = [
        TeamsUpgradeMode::Islands,
        TeamsUpgradeMode::SfBOnly,
        TeamsUpgradeMode::SfBWithTeamsCollab,
        TeamsUpgradeMode::SfBWithTeamsCollabAndMeetings,
        TeamsUpgradeMode::TeamsOnly,
    ];
    let teams_upgrade_mode = modes[choice(
        "TeamsUpgradeMode",
        &record.teams_upgrade_mode,
        &[
            "Islands",
            "SfBOnly",
            "SfBWithTeamsCollab",
            "SfBWithTeamsCollabAndMeetings",
            "TeamsOnly",
        ],
    )];
    let enabled = choice("AudioEnabled", &record.audio_enabled, &["false", "true"]) == 1;
    let provider = [AudioProvider::Microsoft, AudioProvider::ThirdParty][choice(
        "AudioProvider",
        &record.audio_provider,
        &["Microsoft", "ThirdParty"],
    )];
    // Without AudioEnabled the row does not describe the dial-in: keep the current one.
    let kept_audio = match text(&record.audio_enabled) {
        Some(_) => None,
        None if upn.is_empty() => None,
        None => match existing(&upn) {
            Some(current) => Some(current.audio.clone()),
            None => {
                problems.push((
                    "AudioEnabled",
                    format!(
                        "missing for the new user {upn}: say true or false (without it the user's meetings \
                         would lose their dial-in numbers at migration)"
                    ),
                ));
                None
            }
        },
    };
    let bridge = text(&record.bridge);
    if let Some(id) = &bridge {
        if !bridges.contains(id) {
            problems.push((
                "Bridge",
                format!("no bridge {id:?} in tenant {tenant}: create it first (PUT /bridges/{id})"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let user_id = text(&record.user_id).unwrap_or_else(|| {
        uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("mms:{tenant}:{upn}").as_bytes(),
        )
        .to_string()
    });
    Ok(UserProfile {
        tenant: tenant.to_string(),
        upn,
        sip_address,
        user_id,
        home,
        mailbox,
        teams_upgrade_mode,
        audio: match kept_audio {
            None => AudioConferencing {
                enabled,
                provider,
                bridge,
                conference_id: text(&record.conference_id),
                default_toll_number: text(&record.default_toll_number),
            },
            Some(current) => AudioConferencing {
                enabled: current.enabled,
                provider: if text(&record.audio_provider).is_some() {
                    provider
                } else {
                    current.provider
                },
                bridge: bridge.or(current.bridge),
                conference_id: text(&record.conference_id).or(current.conference_id),
                default_toll_number: text(&record.default_toll_number)
                    .or(current.default_toll_number),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_with_bad_rows_lists_every_problem_and_keeps_nothing() {
        let csv = "Upn,SipAddress,Home,AudioEnabled,Bridge\n\
                   ada@contoso.com,sip:ada@contoso.com,OnPremises,true,\n\
                   not-an-address,,Moon,maybe,b9\n\
                   ada@contoso.com,,,false,\n";
        let records = parse_csv(csv.as_bytes()).unwrap();
        let errors =
            validate_records("contoso", &records, &HashSet::new(), &HashMap::new()).unwrap_err();
        let fields: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(
            fields,
            vec![
                (2, "Upn"),
                (2, "Home"),
                (2, "AudioEnabled"),
                (2, "Bridge"),
                (3, "Upn")
            ]
        );
        assert!(
            errors[1].problem.contains("Cloud, OnPremises"),
            "{}",
            errors[1].problem
        );
    }

    #[test]
    fn a_good_row_becomes_a_profile_with_a_stable_derived_user_id() {
        let record = UserRecord {
            upn: Some("Ada@Contoso.com".into()),
            audio_enabled: Some("false".into()),
            ..Default::default()
        };
        let a = to_profile("contoso", &record, &HashSet::new(), |_| None).unwrap();
        let b = to_profile("contoso", &record, &HashSet::new(), |_| None).unwrap();
        assert_eq!(a.upn, "ada@contoso.com");
        assert_eq!(a.user_id, b.user_id);
        assert_eq!(a.home, UserHome::Cloud);
    }

    #[test]
    fn a_profile_imports_as_itself_again() {
        let record = UserRecord {
            upn: Some("ada@contoso.com".into()),
            sip_address: Some("sip:ada@contoso.com".into()),
            home: Some("OnPremises".into()),
            mailbox: Some("ExchangeOnPremises".into()),
            teams_upgrade_mode: Some("TeamsOnly".into()),
            audio_enabled: Some("true".into()),
            audio_provider: Some("ThirdParty".into()),
            bridge: Some("b1".into()),
            conference_id: Some("42".into()),
            default_toll_number: Some("+1 1".into()),
            ..Default::default()
        };
        let bridges: HashSet<String> = ["b1".to_string()].into();
        let profile = to_profile("contoso", &record, &bridges, |_| None).unwrap();
        let again = to_profile("contoso", &UserRecord::from(&profile), &bridges, |_| None).unwrap();
        assert_eq!(again, profile);
    }

    /// Issue 9: a row without AudioEnabled must not strip an existing user's dial-in, and is
    /// refused for a new user rather than guessed.
    #[test]
    fn a_row_without_audio_enabled_keeps_the_current_dial_in_or_is_refused_for_a_new_user() {
        let bridges: HashSet<String> = ["b1".to_string(), "b2".to_string()].into();
        let full = UserRecord {
            upn: Some("ada@contoso.com".into()),
            audio_enabled: Some("true".into()),
            bridge: Some("b1".into()),
            conference_id: Some("123456".into()),
            default_toll_number: Some("+1 206-555-0100".into()),
            ..Default::default()
        };
        let current = to_profile("contoso", &full, &bridges, |_| None).unwrap();
        let partial = UserRecord {
            upn: Some("ada@contoso.com".into()),
            home: Some("OnPremises".into()),
            bridge: Some("b2".into()),
            ..Default::default()
        };
        let updated = to_profile("contoso", &partial, &bridges, |_| Some(&current)).unwrap();
        assert_eq!(updated.home, UserHome::OnPremises);
        assert!(updated.audio.enabled, "kept");
        assert_eq!(
            updated.audio.bridge.as_deref(),
            Some("b2"),
            "given: changed"
        );
        assert_eq!(updated.audio.conference_id.as_deref(), Some("123456"));
        assert_eq!(
            updated.audio.default_toll_number.as_deref(),
            Some("+1 206-555-0100")
        );

        let problems = to_profile("contoso", &partial, &bridges, |_| None).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "AudioEnabled");
        assert!(problems[0].1.contains("true or false"), "{}", problems[0].1);

        let off = UserRecord {
            audio_enabled: Some("false".into()),
            ..partial
        };
        let replaced = to_profile("contoso", &off, &bridges, |_| Some(&current)).unwrap();
        assert!(
            !replaced.audio.enabled,
            "given: the row describes the dial-in in full"
        );
        assert_eq!(replaced.audio.conference_id, None);
    }
}
