//! The decision for one meeting (P2–P5), as pure functions: the migration ([`crate::pipeline`])
//! and the what-if ([`crate::preview`]) both call them, so a preview and the migration that
//! follows cannot disagree about a meeting.
//!
//! A meeting goes through three questions, each answered here from facts alone (no I/O):
//!
//! 1. [`after_select`]: does selection (P2) want it? Skip with a reason, fail (unreadable), or mint.
//! 2. [`after_mint`]: did the meeting platform (P3) give coordinates? A refusal fails this one
//!    meeting; only an unavailable platform is worth retrying the whole attempt.
//! 3. [`after_rewrite`]: with the rewrite (P4) in hand and what is still owed to the attendees
//!    (an update saved earlier but not yet delivered to everyone, known from this migration's
//!    journal or from the user's pending updates), what to do: nothing, save and send, or only
//!    send the owed update (P5).
//!
//! An undo (issue 9.2) answers question 3 with [`after_undo`] instead: the same actions, plus a
//! skip when the organizer changed the block since the migration.
//!
//! The I/O around them (mint, PUT with If-Match, SMTP, the journal) stays in the pipeline.

use mms_core::{Coordinates, MeetingServiceError};
use mms_ical::{IcalError, Rewritten, Selected, Selection, Undone};

/// Answer to question 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterSelect {
    /// Not MMS's to migrate, by rule; journaled as Skipped with the reason.
    Skip {
        uid: String,
        summary: String,
        reason: String,
    },
    /// The resource cannot be read; this meeting fails, the others go on.
    Fail { reason: String },
    /// Migrate it: mint coordinates of the target kind for it.
    Mint(Selection),
}

pub fn after_select(selected: Result<Selected, IcalError>) -> AfterSelect {
    match selected {
        Ok(Selected::Migrate(selection)) => AfterSelect::Mint(selection),
        Ok(Selected::Skip(skip)) => AfterSelect::Skip {
            uid: skip.uid.unwrap_or_default(),
            summary: skip.summary,
            reason: skip.reason.to_string(),
        },
        Err(e) => AfterSelect::Fail {
            reason: format!("unreadable iCalendar: {e}"),
        },
    }
}

/// Answer to question 2.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterMint {
    Rewrite(Coordinates),
    /// The platform refused this meeting (a policy, a quota): it fails with the reason; retrying
    /// the mailbox would not change the answer.
    Fail {
        reason: String,
    },
    /// The platform is unreachable: the attempt stops and is retried (P7).
    Unavailable {
        reason: String,
    },
}

pub fn after_mint(minted: Result<Coordinates, MeetingServiceError>) -> AfterMint {
    match minted {
        Ok(coordinates) => AfterMint::Rewrite(coordinates),
        Err(refused @ MeetingServiceError::Refused(_)) => AfterMint::Fail {
            reason: refused.to_string(),
        },
        Err(unavailable @ MeetingServiceError::Unavailable(_)) => AfterMint::Unavailable {
            reason: unavailable.to_string(),
        },
    }
}

/// An update MMS saved into the mailbox earlier and has not yet delivered to every attendee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwedUpdate {
    /// SEQUENCE of the meeting as MMS saved it.
    pub saved_sequence: u32,
}

/// Who tells the attendees about a saved change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notifier {
    /// MMS mails the iMIP update itself.
    Mms,
    /// The mailbox server schedules implicitly (RFC 6638 `calendar-auto-schedule`): saving the
    /// organizer's copy makes the server send the update, so MMS must not send a second one.
    Server,
}

/// Answer to question 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The resource cannot be rewritten; this meeting fails.
    Fail { reason: String },
    /// Already carries the target coordinates and nothing is owed: nothing saved, nothing sent.
    Unchanged,
    /// Save the rewritten meeting (If-Match), then deliver its update (unless the server does).
    SaveAndNotify { sequence: u32, notifier: Notifier },
    /// The text is already ours (an earlier save), but its update has not reached every attendee:
    /// deliver it now, without saving again.
    NotifyOwed { sequence: u32, notifier: Notifier },
    /// We saved it, and the organizer has since saved a later version: their client sent that
    /// update with our block in it, so ours would repeat a SEQUENCE. Done.
    OwedButSuperseded { saved: u32, current: u32 },
}

pub fn after_rewrite(
    rewritten: Result<&Rewritten, &IcalError>,
    owed: Option<OwedUpdate>,
    notifier: Notifier,
) -> Action {
    let rewritten = match rewritten {
        Ok(r) => r,
        Err(e) => {
            return Action::Fail {
                reason: format!("cannot rewrite: {e}"),
            }
        }
    };
    match (rewritten.changed, owed) {
        (true, _) => Action::SaveAndNotify {
            sequence: rewritten.sequence,
            notifier,
        },
        (false, None) => Action::Unchanged,
        (false, Some(owed)) if rewritten.sequence > owed.saved_sequence => {
            Action::OwedButSuperseded {
                saved: owed.saved_sequence,
                current: rewritten.sequence,
            }
        }
        (false, Some(_)) => Action::NotifyOwed {
            sequence: rewritten.sequence,
            notifier,
        },
    }
}

/// The answer of an undo (issue 9.2) for one meeting, in place of question 3: skip it with the
/// reason [`mms_ical::undo`] gave (the organizer changed the block since), or act on the
/// restored text exactly as on a rewrite ([`after_rewrite`]): a meeting already as before the
/// migration is `Unchanged` and gets no update. `Act` hands the restored text on with the
/// action, so the caller never has to unwrap a case this function already answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterUndo {
    Skip {
        reason: String,
    },
    Act {
        action: Action,
        restored: Result<Rewritten, IcalError>,
    },
}

pub fn after_undo(
    undone: Result<Undone, IcalError>,
    owed: Option<OwedUpdate>,
    notifier: Notifier,
) -> AfterUndo {
    match undone {
        Err(e) => AfterUndo::Act {
            action: Action::Fail {
                reason: format!("cannot undo: {e}"),
            },
            restored: Err(e),
        },
        Ok(Undone::Skipped(skip)) => AfterUndo::Skip {
            reason: format!("not undone: {skip}"),
        },
        Ok(Undone::Restored(restored)) => AfterUndo::Act {
            action: after_rewrite(Ok(&restored), owed, notifier),
            restored: Ok(restored),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mms_core::OnlineMeetingKind;

    fn rewritten(changed: bool, sequence: u32) -> Rewritten {
        Rewritten {
            ics: String::new(),
            changed,
            uid: "u".into(),
            sequence,
            pre_image: Default::default(),
        }
    }

    /// The table of question 3: rewrite result × owed update × notifier.
    #[test]
    fn after_rewrite_table() {
        use Notifier::{Mms, Server};
        let owed = |s| Some(OwedUpdate { saved_sequence: s });
        let rows: Vec<(Rewritten, Option<OwedUpdate>, Notifier, Action)> = vec![
            // Changed: always save, whoever notifies, whatever was owed.
            (
                rewritten(true, 2),
                None,
                Mms,
                Action::SaveAndNotify {
                    sequence: 2,
                    notifier: Mms,
                },
            ),
            (
                rewritten(true, 2),
                owed(1),
                Server,
                Action::SaveAndNotify {
                    sequence: 2,
                    notifier: Server,
                },
            ),
            // Unchanged and nothing owed: nothing at all (a re-run sends nothing).
            (rewritten(false, 1), None, Mms, Action::Unchanged),
            (rewritten(false, 1), None, Server, Action::Unchanged),
            // Unchanged but owed (saved earlier, update not delivered): send, do not save.
            (
                rewritten(false, 1),
                owed(1),
                Mms,
                Action::NotifyOwed {
                    sequence: 1,
                    notifier: Mms,
                },
            ),
            (
                rewritten(false, 1),
                owed(1),
                Server,
                Action::NotifyOwed {
                    sequence: 1,
                    notifier: Server,
                },
            ),
            // The organizer saved a later version since: their update carried our block.
            (
                rewritten(false, 3),
                owed(1),
                Mms,
                Action::OwedButSuperseded {
                    saved: 1,
                    current: 3,
                },
            ),
        ];
        for (r, owed, notifier, expected) in rows {
            assert_eq!(
                after_rewrite(Ok(&r), owed, notifier),
                expected,
                "changed={} seq={} owed={owed:?} {notifier:?}",
                r.changed,
                r.sequence
            );
        }
        let err = IcalError::NoCalendar;
        assert!(matches!(
            after_rewrite(Err(&err), owed(1), Mms),
            Action::Fail { reason } if reason.starts_with("cannot rewrite")
        ));
    }

    #[test]
    fn an_undo_skips_an_edited_block_and_otherwise_decides_as_a_rewrite() {
        let skip = Undone::Skipped(mms_ical::UndoSkip::BlockChanged {
            property: "DESCRIPTION",
            recurrence_id: None,
        });
        assert!(matches!(
            after_undo(Ok(skip), None, Notifier::Mms),
            AfterUndo::Skip { reason } if reason.starts_with("not undone: the organizer changed")
        ));
        let restored = Undone::Restored(rewritten(true, 5));
        assert_eq!(
            after_undo(Ok(restored), None, Notifier::Mms),
            AfterUndo::Act {
                action: Action::SaveAndNotify {
                    sequence: 5,
                    notifier: Notifier::Mms
                },
                restored: Ok(rewritten(true, 5)),
            }
        );
        let as_before = Undone::Restored(rewritten(false, 5));
        assert!(matches!(
            after_undo(Ok(as_before), None, Notifier::Mms),
            AfterUndo::Act {
                action: Action::Unchanged,
                ..
            }
        ));
    }

    #[test]
    fn a_refused_mint_fails_one_meeting_and_an_unavailable_platform_the_attempt() {
        assert!(matches!(
            after_mint(Err(MeetingServiceError::Refused("quota".into()))),
            AfterMint::Fail { reason } if reason.contains("quota")
        ));
        assert!(matches!(
            after_mint(Err(MeetingServiceError::Unavailable("down".into()))),
            AfterMint::Unavailable { reason } if reason.contains("down")
        ));
        let coords = Coordinates {
            kind: OnlineMeetingKind::Teams,
            join_url: "https://t/1".into(),
            meeting_id: String::new(),
            passcode: None,
            conference_id: None,
            dial_in: vec![],
            find_local_number_url: None,
        };
        assert_eq!(after_mint(Ok(coords.clone())), AfterMint::Rewrite(coords));
    }

    #[test]
    fn selection_outcomes_map_to_skip_fail_or_mint() {
        let now = chrono::Utc::now();
        let unreadable = mms_ical::select("not a calendar", "o@x", Default::default(), now);
        assert!(
            matches!(after_select(unreadable), AfterSelect::Fail { reason } if reason.starts_with("unreadable"))
        );
        let past = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:p\r\nSUMMARY:old\r\n\
                    DTSTART:20000101T100000Z\r\nDTEND:20000101T110000Z\r\nORGANIZER:mailto:o@x\r\n\
                    DESCRIPTION:no block\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let skipped = mms_ical::select(past, "o@x", Default::default(), now);
        assert!(matches!(after_select(skipped), AfterSelect::Skip { uid, .. } if uid == "p"));
    }
}
