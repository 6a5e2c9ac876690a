//! User records as admins write them (one flat row per user, in CSV or JSON) and their validation.
//!
//! An import is all or nothing: every row is checked first, and one bad row rejects the whole file
//! with the list of every problem (row, field, what is wrong), so nothing is dropped silently and
//! the admin fixes the file in one pass.

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
    /// `true` or `false` (default).
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
/// bridge ids (a record may only name an existing bridge).
pub fn validate_records(
    tenant: &str,
    records: &[UserRecord],
    bridges: &HashSet<String>,
) -> Result<Vec<UserProfile>, Vec<RowError>> {
    let mut profiles = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    let mut seen_upn: HashMap<String, usize> = HashMap::new();
    let mut seen_sip: HashMap<String, usize> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        let row = index + 1;
        let mut problems = Vec::new();
        match to_profile(tenant, record, bridges) {
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

/// One record to a profile, or every problem in it (field, what is wrong).
pub fn to_profile(
    tenant: &str,
    record: &UserRecord,
    bridges: &HashSet<String>,
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
        audio: AudioConferencing {
            enabled,
            provider,
            bridge,
            conference_id: text(&record.conference_id),
            default_toll_number: text(&record.default_toll_number),
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
                   ada@contoso.com,,,,\n";
        let records = parse_csv(csv.as_bytes()).unwrap();
        let errors = validate_records("contoso", &records, &HashSet::new()).unwrap_err();
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
            ..Default::default()
        };
        let a = to_profile("contoso", &record, &HashSet::new()).unwrap();
        let b = to_profile("contoso", &record, &HashSet::new()).unwrap();
        assert_eq!(a.upn, "ada@contoso.com");
        assert_eq!(a.user_id, b.user_id);
        assert_eq!(a.home, UserHome::Cloud);
    }
}
