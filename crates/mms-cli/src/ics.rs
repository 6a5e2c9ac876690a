//! `mms ics rewrite`: the rewrite engine on one .ics, for support staff. Reads the resource on
//! stdin, writes the rewritten resource on stdout, or with `--explain` says whether and why the
//! meeting would be migrated or skipped.
//!
//! Exit codes: 0 rewritten (or, with `--explain`, would be migrated), 3 skipped (the reason on
//! stderr), 2 bad input or arguments (the message says what is wrong).

use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use mms_core::{Coordinates, DialInNumber, OnlineMeetingKind, SourceMeetingType};
use mms_ical::{rewrite, select, Selected};

/// Arguments of `mms ics rewrite`.
#[derive(Debug, Clone, clap::Args)]
pub struct IcsRewriteArgs {
    /// The user whose meetings are migrated: only meetings they organize are rewritten.
    #[arg(long)]
    pub organizer: String,
    /// Which online meetings to touch: All, SfB or Teams.
    #[arg(long, default_value = "All")]
    pub source_meeting_type: SourceMeetingType,
    /// The platform of the new block: Teams or SfB.
    #[arg(long, default_value = "Teams", value_parser = parse_kind)]
    pub kind: OnlineMeetingKind,
    /// The new join URL (required unless --explain).
    #[arg(long)]
    pub join_url: Option<String>,
    /// The new meeting id (Teams "Meeting ID").
    #[arg(long, default_value = "")]
    pub meeting_id: String,
    /// The PSTN conference id.
    #[arg(long)]
    pub conference_id: Option<String>,
    #[arg(long)]
    pub passcode: Option<String>,
    /// A dial-in number and its label, "NUMBER|LABEL"; repeat for several. A label that says
    /// "toll-free" marks the number toll-free. None: the block gets no dial-in part.
    #[arg(long = "dial-in", value_parser = parse_dial_in)]
    pub dial_in: Vec<DialInNumber>,
    /// The "find a local number" link.
    #[arg(long)]
    pub find_local_number_url: Option<String>,
    /// The moment to judge "future" against and to stamp DTSTAMP with (RFC 3339); default: now.
    #[arg(long)]
    pub now: Option<DateTime<Utc>>,
    /// Print whether and why the meeting would be migrated or skipped, and change nothing.
    #[arg(long)]
    pub explain: bool,
}

fn parse_kind(value: &str) -> Result<OnlineMeetingKind, String> {
    match value.to_ascii_lowercase().as_str() {
        "teams" => Ok(OnlineMeetingKind::Teams),
        "sfb" => Ok(OnlineMeetingKind::SfB),
        _ => Err(format!("--kind must be Teams or SfB, not {value:?}")),
    }
}

fn parse_dial_in(value: &str) -> Result<DialInNumber, String> {
    let (number, label) = value
        .split_once('|')
        .ok_or_else(|| format!("--dial-in takes \"NUMBER|LABEL\", e.g. \"+1 206-555-0100|Seattle (Toll)\", not {value:?}"))?;
    let number = number.trim();
    if !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!("--dial-in number {number:?} has no digits"));
    }
    let lower = label.to_lowercase();
    let toll_free = lower.contains("toll-free") || lower.contains("toll free");
    Ok(DialInNumber {
        number: number.to_string(),
        label: label.trim().to_string(),
        toll_free,
    })
}

/// Runs the command on `input`; returns the exit code.
pub fn run_rewrite(
    args: &IcsRewriteArgs,
    input: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match run(args, input, out) {
        Ok(Outcome::Done) => 0,
        Ok(Outcome::Skipped(reason)) => {
            let _ = writeln!(err, "skipped: {reason}");
            3
        }
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            2
        }
    }
}

enum Outcome {
    Done,
    Skipped(String),
}

fn run(
    args: &IcsRewriteArgs,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<Outcome, String> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let ics = mms_ical::utf8(&bytes).map_err(|e| e.to_string())?;
    let now = args.now.unwrap_or_else(Utc::now);
    let selection = match select(ics, &args.organizer, args.source_meeting_type, now)
        .map_err(|e| e.to_string())?
    {
        Selected::Skip(skip) => return Ok(Outcome::Skipped(skip.reason.to_string())),
        Selected::Migrate(selection) => selection,
    };
    if args.explain {
        writeln!(
            out,
            "would migrate {:?} (UID {}): {:?} block, {} attendees, SEQUENCE {}",
            selection.summary,
            selection.uid,
            selection.kind,
            selection.attendees,
            selection.sequence
        )
        .map_err(|e| format!("cannot write stdout: {e}"))?;
        return Ok(Outcome::Done);
    }
    let join_url = args
        .join_url
        .clone()
        .ok_or("--join-url is required to rewrite (or pass --explain)")?;
    let coords = Coordinates {
        kind: args.kind,
        join_url,
        meeting_id: args.meeting_id.clone(),
        passcode: args.passcode.clone(),
        conference_id: args.conference_id.clone(),
        dial_in: args.dial_in.clone(),
        find_local_number_url: args.find_local_number_url.clone(),
    };
    let rewritten = rewrite(ics, &coords, now).map_err(|e| e.to_string())?;
    out.write_all(rewritten.ics.as_bytes())
        .map_err(|e| format!("cannot write stdout: {e}"))?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: IcsRewriteArgs,
    }

    const MEETING: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:cli@example.com\r\n\
        DTSTART:20250401T100000Z\r\nDTEND:20250401T110000Z\r\nORGANIZER:mailto:joni@contoso.com\r\n\
        ATTENDEE:mailto:adele@contoso.com\r\nDESCRIPTION:Agenda\\n\\nJoin Skype Meeting<https://meet.contoso.com/joni/AB12>\\n\
        Conference ID: 1234\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    fn run_with(argv: &[&str], input: &str) -> (u8, String, String) {
        let mut full = vec!["mms-ics-rewrite", "--now", "2025-03-01T00:00:00Z"];
        full.extend_from_slice(argv);
        let cli = Cli::try_parse_from(full).expect("valid arguments");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_rewrite(&cli.args, &mut input.as_bytes(), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn rewrites_and_exits_0() {
        let (code, out, err) = run_with(
            &[
                "--organizer",
                "Joni@Contoso.com",
                "--join-url",
                "https://teams.example.net/l/meetup-join/x/1",
                "--dial-in",
                "+1 206-555-0100|Seattle (Toll)",
                "--conference-id",
                "42",
            ],
            MEETING,
        );
        assert_eq!(code, 0, "{err}");
        let unfolded = out.replace("\r\n ", "");
        assert!(unfolded.contains("Join the meeting: https://teams.example.net/l/meetup-join/x/1"));
        assert!(unfolded.contains("+1 206-555-0100   Seattle (Toll)"));
        assert!(unfolded.contains("SEQUENCE:1\r\n"));
        assert!(!unfolded.contains("meet.contoso.com"));
    }

    #[test]
    fn skips_with_the_reason_and_exits_3() {
        let (code, out, err) =
            run_with(&["--organizer", "adele@contoso.com", "--explain"], MEETING);
        assert_eq!(code, 3);
        assert!(out.is_empty());
        assert_eq!(
            err,
            "skipped: organized by joni@contoso.com, not by the user\n"
        );
        let (code, _, err) = run_with(
            &[
                "--organizer",
                "joni@contoso.com",
                "--source-meeting-type",
                "Teams",
                "--explain",
            ],
            MEETING,
        );
        assert_eq!(code, 3);
        assert_eq!(err, "skipped: no Teams meeting block\n");
    }

    #[test]
    fn explains_a_migration_and_exits_0() {
        let (code, out, _) = run_with(&["--organizer", "joni@contoso.com", "--explain"], MEETING);
        assert_eq!(code, 0);
        assert!(
            out.starts_with("would migrate \"\" (UID cli@example.com): SfB block, 1 attendees"),
            "{out}"
        );
    }

    #[test]
    fn bad_input_exits_2_with_the_line() {
        let (code, _, err) = run_with(
            &["--organizer", "joni@contoso.com", "--join-url", "https://x"],
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n",
        );
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "error: line 2: BEGIN:VEVENT is never closed: END:VEVENT is missing\n"
        );
        let (code, _, err) = run_with(&["--organizer", "joni@contoso.com"], MEETING);
        assert_eq!(code, 2);
        assert!(err.contains("--join-url is required"));
    }

    #[test]
    fn dial_in_argument_is_checked() {
        assert!(
            parse_dial_in("+1 800 555 0199|United States (Toll-free)")
                .unwrap()
                .toll_free
        );
        assert!(parse_dial_in("no bar")
            .unwrap_err()
            .contains("NUMBER|LABEL"));
    }
}
