//! How `mmsctl` prints a reply: aligned tables for people (one layout per kind of reply), or
//! the API's JSON as is with `--output json` for scripts.

use std::fmt::Write as _;

use serde_json::Value;

use super::args::Output;
use super::client::text_of;

/// How to lay out a reply as a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// One object: `Field  Value` lines.
    Fields,
    /// Migration rows (`Get-CsMeetingMigrationStatus`).
    Status,
    /// `-SummaryOnly`: users per state, then per state and migration type.
    Summary,
    /// One migration's fields, then a row per meeting with its outcome and reason.
    Migration,
    History,
    /// An event's counts and per-user outcomes.
    Event,
    /// A what-if: the meetings' outcomes, then each new block.
    Preview,
    /// One bridge or a list of them: a row per dial-in number.
    Bridges,
    /// The token listing: id, role, tenant.
    Tokens,
    /// A list of tenant ids.
    Tenants,
    /// Directory records, a row per user.
    Users,
    /// Background jobs (one or a list): a row per job with its counts.
    Jobs,
    /// Nothing to show (a 204): a confirmation line is printed instead.
    Done,
}

/// The text to print for `value` in `view`.
pub fn render(value: &Value, view: View, output: Output) -> String {
    if output == Output::Json {
        return format!(
            "{}\n",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }
    let rows = |items: &Value, cols: &[&str]| -> Vec<Vec<String>> {
        items
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| cols.iter().map(|c| text_of(&item[*c])).collect())
            .collect()
    };
    match view {
        View::Fields => fields(value),
        View::Jobs => {
            let cols = [
                "Id",
                "Kind",
                "State",
                "UsersTotal",
                "UsersDone",
                "Queued",
                "Merged",
                "Skipped",
                "Refused",
                "Created",
                "Finished",
                "LastError",
            ];
            let list = if value.is_array() {
                value.clone()
            } else {
                Value::Array(vec![value.clone()])
            };
            let mut out = table(&cols, &rows(&list, &cols));
            if let Some(note) = value["Note"].as_str() {
                let _ = writeln!(out, "{note}");
            }
            out
        }
        View::Status => {
            let cols = [
                "UserPrincipalName",
                "CorrelationId",
                "State",
                "MigrationType",
                "TotalMeeting",
                "SucceededMeeting",
                "FailedMeeting",
                "InvitesUpdate",
                "RetryCount",
                "CreateDate",
                "LastMessage",
            ];
            table(&cols, &rows(value, &cols))
        }
        View::Summary => {
            let mut out = table(
                &["State", "UserCount"],
                &rows(&value["States"], &["State", "UserCount"]),
            );
            out.push('\n');
            out + &table(
                &["State", "MigrationType", "UserCount"],
                &rows(
                    &value["ByMigrationType"],
                    &["State", "MigrationType", "UserCount"],
                ),
            )
        }
        View::Migration => {
            let mut head = value.clone();
            if let Some(object) = head.as_object_mut() {
                object.remove("Meetings");
            }
            let mut out = fields(&head);
            let cols = [
                "Summary",
                "Outcome",
                "Reason",
                "Sequence",
                "Recipients",
                "Uid",
            ];
            let _ = write!(out, "\n{}", table(&cols, &rows(&value["Meetings"], &cols)));
            out
        }
        View::History => table(
            &["At", "CorrelationId", "Event", "Message"],
            &rows(value, &["At", "CorrelationId", "Event", "Message"]),
        ),
        View::Event => {
            let counts = &value["Counts"];
            let mut out = format!(
                "{}: {} queued, {} merged, {} refused, {} not triggered\n",
                text_of(&value["Event"]),
                text_of(&counts["Queued"]),
                text_of(&counts["Merged"]),
                text_of(&counts["Refused"]),
                text_of(&counts["NotTriggered"]),
            );
            out += &table(
                &["User", "Rule", "Result", "CorrelationId", "Message"],
                &rows(
                    &value["Outcomes"],
                    &["User", "Rule", "Result", "CorrelationId", "Message"],
                ),
            );
            if let Some(note) = value["Note"].as_str() {
                let _ = writeln!(out, "{note}");
            }
            out
        }
        View::Preview => render_preview(value),
        View::Tokens => table(
            &["Id", "Role", "Tenant"],
            &rows(value, &["Id", "Role", "Tenant"]),
        ),
        View::Tenants => {
            let tenants: Vec<Vec<String>> = value
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| vec![text_of(t)])
                .collect();
            table(&["Tenant"], &tenants)
        }
        View::Users => {
            let users: Vec<Vec<String>> = value
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| {
                    let audio = &u["Audio"];
                    vec![
                        text_of(&u["Upn"]),
                        text_of(&u["SipAddress"]),
                        text_of(&u["Home"]),
                        text_of(&u["Mailbox"]),
                        text_of(&u["TeamsUpgradeMode"]),
                        text_of(&audio["Enabled"]),
                        text_of(&audio["Bridge"]),
                        text_of(&audio["ConferenceId"]),
                    ]
                })
                .collect();
            table(
                &[
                    "Upn",
                    "SipAddress",
                    "Home",
                    "Mailbox",
                    "TeamsUpgradeMode",
                    "AudioEnabled",
                    "Bridge",
                    "ConferenceId",
                ],
                &users,
            )
        }
        View::Bridges => {
            let bridges = match value {
                Value::Array(items) => items.clone(),
                one => vec![one.clone()],
            };
            let mut lines = Vec::new();
            for bridge in &bridges {
                for number in bridge["Numbers"].as_array().into_iter().flatten() {
                    lines.push(vec![
                        text_of(&bridge["Id"]),
                        text_of(&bridge["Name"]),
                        text_of(&number["number"]),
                        text_of(&number["label"]),
                        if number["toll_free"] == true {
                            "yes"
                        } else {
                            ""
                        }
                        .to_string(),
                    ]);
                }
            }
            table(&["Bridge", "Name", "Number", "Label", "TollFree"], &lines)
        }
        View::Done => "done\n".to_string(),
    }
}

/// `Field  Value` lines of one object; nested objects are flattened as `Parent.Field`.
fn fields(value: &Value) -> String {
    fn flatten(prefix: &str, value: &Value, out: &mut Vec<Vec<String>>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    let name = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    flatten(&name, v, out);
                }
            }
            other => out.push(vec![prefix.to_string(), text_of(other)]),
        }
    }
    let mut pairs = Vec::new();
    flatten("", value, &mut pairs);
    table(&["Field", "Value"], &pairs)
}

/// The what-if table (meeting, outcome, reason), the summary line, then every new block.
fn render_preview(value: &Value) -> String {
    let items: Vec<&Value> = value["Items"].as_array().into_iter().flatten().collect();
    let meeting = |item: &Value| {
        let summary = text_of(&item["Summary"]);
        if summary.is_empty() {
            text_of(&item["Href"])
        } else {
            summary
        }
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            vec![
                meeting(item),
                text_of(&item["Outcome"]),
                text_of(&item["Reason"]),
            ]
        })
        .collect();
    let mut out = table(&["Meeting", "Outcome", "Reason"], &rows);
    let _ = writeln!(out, "\n{}", text_of(&value["Message"]));
    for item in items {
        if let Some(block) = item["NewBlock"].as_str() {
            let _ = writeln!(
                out,
                "\nNew block of {} ({}):\n{block}",
                meeting(item),
                text_of(&item["Uid"])
            );
        }
    }
    out
}

/// Columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers);
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out += &line(
        rules
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
    );
    for row in rows {
        out += &line(
            row.iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let out = table(
            &["State", "UserCount"],
            &[
                vec!["InProgress".into(), "3".into()],
                vec!["Failed".into(), "12".into()],
            ],
        );
        assert_eq!(
            out,
            "State       UserCount\n----------  ---------\nInProgress  3\nFailed      12\n"
        );
    }

    #[test]
    fn a_preview_prints_its_table_then_each_new_block() {
        let reply = json!({"Message": "What-if for a@x.com: 1 meeting(s) would be updated",
        "Items": [
            {"Href": "m1.ics", "Uid": "u1", "Summary": "Weekly sync", "Outcome": "WouldUpdate",
             "Reason": "the Teams block would be replaced", "NewBlock": "____\nMicrosoft Teams meeting\n____"},
            {"Href": "m2.ics", "Uid": "u2", "Summary": "", "Outcome": "Skipped", "Reason": "organized by b@x.com"}
        ]});
        let text = render(&reply, View::Preview, Output::Table);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Meeting      Outcome      Reason");
        assert_eq!(
            lines[2],
            "Weekly sync  WouldUpdate  the Teams block would be replaced"
        );
        assert_eq!(lines[3], "m2.ics       Skipped      organized by b@x.com");
        assert!(text.contains("What-if for a@x.com"));
        assert!(
            text.ends_with("New block of Weekly sync (u1):\n____\nMicrosoft Teams meeting\n____\n"),
            "{text}"
        );
    }

    #[test]
    fn one_migration_shows_its_fields_then_a_row_per_meeting() {
        let reply = json!({"UserPrincipalName": "ann@x.com", "State": "Succeeded",
            "Meetings": [{"Uid": "u1", "Href": "m1.ics", "Summary": "Sync", "Outcome": "Updated",
                          "Reason": "", "Sequence": 2, "Recipients": 3}]});
        let text = render(&reply, View::Migration, Output::Table);
        assert!(text.contains("State              Succeeded"), "{text}");
        assert!(!text.contains("Meetings  "), "{text}");
        assert!(text.contains("Sync     Updated"), "{text}");
    }

    #[test]
    fn nested_fields_are_flattened_with_their_parent() {
        let text = render(
            &json!({"Upn": "ada@x.com", "Audio": {"Enabled": true, "Bridge": "main"}}),
            View::Fields,
            Output::Table,
        );
        assert!(text.contains("Audio.Enabled  true"), "{text}");
        assert!(text.contains("Audio.Bridge   main"), "{text}");
    }
}
