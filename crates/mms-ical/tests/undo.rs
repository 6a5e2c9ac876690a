//! The undo of a migration (issue 9.2) on realistic fixtures and the corpus.
//!
//! - Golden files per fixture: the fixture (before), migrated to Teams (`<stem>.teams.ics`, the
//!   rewrite's golden file), then edited by its organizer outside the block (`<stem>.edited.ics`:
//!   a new agenda line in DESCRIPTION, a changed SUMMARY and DTSTART), then undone
//!   (`<stem>.undone.ics`), all under `tests/fixtures/expected/`. Regenerate with
//!   `MMS_BLESS=1 cargo test -p mms-ical --test undo` and review the diff by eye.
//! - `undo(rewrite(x))` equals `x` in meaning (SEQUENCE, DTSTAMP and LAST-MODIFIED aside) for
//!   every fixture and every corpus file the rewrite changed, to Teams and to SfB coordinates,
//!   also after a server re-spelled the migrated copy.
//! - Edits inside the block make the meeting a skip; a second undo changes nothing.

mod common;

use std::collections::BTreeMap;

use common::respell::{respell, Respelling};
use common::{corpus_dir, fixtures_dir, now, sfb_coords, teams_coords};
use mms_ical::contentline::{Component, Entry};
use mms_ical::meaning::{meaning, Meaning};
use mms_ical::{rewrite, undo, Document, UndoSkip, Undone};

fn fixture(name: &str) -> String {
    let path = fixtures_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn golden(name: &str, actual: &str) {
    let path = fixtures_dir().join("expected").join(name);
    if std::env::var_os("MMS_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with MMS_BLESS=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its golden file; rerun with MMS_BLESS=1 and review the diff"
    );
}

/// The fixtures a migration rewrites.
const MIGRATED: &[&str] = &[
    "teams_outlook.ics",
    "sfb_outlook.ics",
    "weekly_dst_exceptions.ics",
    "floating_time.ics",
    "non_ascii.ics",
    "attendees_300.ics",
    "two_blocks.ics",
];

/// Properties an undo sets anew, as a rewrite does: left out of "the same meaning".
const STAMPS: &[&str] = &["SEQUENCE", "DTSTAMP", "LAST-MODIFIED"];

/// A component's meaning: its name, its properties as a multiset of meanings (stamps aside)
/// and its sub-components' (in any order: servers reorder them too).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ComponentMeaning {
    name: String,
    properties: BTreeMap<Meaning, usize>,
    children: Vec<ComponentMeaning>,
}

fn component_meaning(component: &Component) -> ComponentMeaning {
    let mut properties = BTreeMap::new();
    for p in component.properties() {
        if !STAMPS.contains(&p.name()) {
            *properties.entry(meaning(p)).or_insert(0) += 1;
        }
    }
    let mut children: Vec<ComponentMeaning> =
        component.components().map(component_meaning).collect();
    children.sort();
    ComponentMeaning {
        name: component.name.clone(),
        properties,
        children,
    }
}

fn resource_meaning(ics: &str) -> Vec<ComponentMeaning> {
    let doc = Document::parse(ics).expect("parses");
    doc.entries
        .iter()
        .filter_map(|e| match e {
            Entry::Component(c) => Some(component_meaning(c)),
            _ => None,
        })
        .collect()
}

fn restored(undone: Undone, what: &str) -> mms_ical::Rewritten {
    match undone {
        Undone::Restored(r) => r,
        Undone::Skipped(skip) => panic!("{what}: skipped: {skip}"),
    }
}

/// The organizer's edits outside the block: a first agenda line in the master's DESCRIPTION, a
/// new SUMMARY and a DTSTART one hour later (the same time zone parameters).
fn organizer_edits(ics: &str) -> String {
    let mut doc = Document::parse(ics).expect("parses");
    let ending = doc.line_ending;
    doc.with_root(|calendar| {
        let master = calendar
            .components_mut()
            .find(|c| c.name == "VEVENT" && c.property("RECURRENCE-ID").is_none())
            .expect("a master");
        for entry in master.entries.iter_mut() {
            let Entry::Property(p) = entry else { continue };
            let value = p.value().to_string();
            let new_value = match p.name() {
                "DESCRIPTION" => format!("Agenda v2: budget first\\n{value}"),
                "SUMMARY" => format!("{value} (moved)"),
                _ => continue,
            };
            if let Some(line) = p.with_value(&new_value, ending) {
                *p = line;
            }
        }
        // DTSTART moved: write a different hour digit (still a valid DATE-TIME).
        for entry in master.entries.iter_mut() {
            let Entry::Property(p) = entry else { continue };
            if p.name() == "DTSTART" && p.value().len() >= 11 {
                let mut value = p.value().to_string();
                let hour_tens = value.as_bytes()[9];
                let replacement = if hour_tens == b'0' { "1" } else { "0" };
                value.replace_range(9..10, replacement);
                if let Some(line) = p.with_value(&value, ending) {
                    *p = line;
                }
            }
        }
    })
    .expect("a calendar");
    doc.serialize()
}

#[test]
fn golden_before_migrated_edited_undone() {
    for name in MIGRATED {
        let before = fixture(name);
        let stem = name.trim_end_matches(".ics");
        let migrated = rewrite(&before, &teams_coords(), now()).expect("rewrite");
        assert!(migrated.changed, "{name}");
        let edited = organizer_edits(&migrated.ics);
        assert_ne!(edited, migrated.ics, "{name}: the edits changed something");
        golden(&format!("{stem}.edited.ics"), &edited);
        let undone = restored(
            undo(&edited, &migrated.pre_image, now()).expect("undo"),
            name,
        );
        assert!(undone.changed, "{name}");
        assert!(
            undone.sequence > migrated.sequence,
            "{name}: SEQUENCE raised over the migration's"
        );
        golden(&format!("{stem}.undone.ics"), &undone.ics);
        // The same edits made to the meeting before the migration: what the undo must give.
        assert_eq!(
            resource_meaning(&undone.ics),
            resource_meaning(&organizer_edits(&before)),
            "{name}: the old block is back and the organizer's edits are kept"
        );
        let agenda = undone.ics.replace("\r\n ", "").replace("\n ", "");
        assert!(agenda.contains("Agenda v2: budget first"), "{name}");
        assert!(
            !agenda.contains(mms_ical::render::MMS_MARKER),
            "{name}: our block is gone"
        );
    }
}

#[test]
fn undo_of_a_rewrite_is_the_original_in_meaning_for_every_fixture() {
    for name in MIGRATED {
        let before = fixture(name);
        for coords in [teams_coords(), sfb_coords()] {
            let migrated = rewrite(&before, &coords, now()).expect("rewrite");
            if !migrated.changed {
                continue;
            }
            let undone = restored(
                undo(&migrated.ics, &migrated.pre_image, now()).unwrap(),
                name,
            );
            assert!(undone.changed);
            assert_eq!(
                resource_meaning(&undone.ics),
                resource_meaning(&before),
                "{name} to {:?}",
                coords.kind
            );
            // The undone meeting is as before: a second undo changes nothing, sends nothing.
            let again = restored(undo(&undone.ics, &migrated.pre_image, now()).unwrap(), name);
            assert!(!again.changed, "{name}: a second undo is a no-op");
            assert_eq!(again.ics, undone.ics);
        }
    }
}

#[test]
fn undo_works_on_the_copy_a_server_stored_in_its_own_spelling() {
    let spellings = [
        Respelling {
            shuffle_params: Some(7),
            recase_params: true,
            quote: Some(true),
            unescape_text: Some(false),
            upper_n: true,
            shuffle_properties: Some(11),
            fold_width: 60,
            fold_with_tab: true,
            lf: true,
        },
        Respelling {
            shuffle_params: Some(3),
            recase_params: false,
            quote: Some(false),
            unescape_text: Some(true),
            upper_n: false,
            shuffle_properties: None,
            fold_width: 75,
            fold_with_tab: false,
            lf: false,
        },
    ];
    for name in MIGRATED {
        let before = fixture(name);
        let migrated = rewrite(&before, &teams_coords(), now()).unwrap();
        for how in &spellings {
            let stored = respell(&migrated.ics, how);
            let undone = restored(undo(&stored, &migrated.pre_image, now()).unwrap(), name);
            assert!(undone.changed, "{name} {how:?}");
            assert_eq!(
                resource_meaning(&undone.ics),
                resource_meaning(&before),
                "{name} {how:?}"
            );
        }
    }
}

#[test]
fn an_edit_inside_the_block_makes_the_meeting_a_skip_and_changes_nothing() {
    for name in MIGRATED {
        let migrated = rewrite(&fixture(name), &teams_coords(), now()).unwrap();
        // The organizer typed a new passcode into MMS's block.
        let edited = migrated
            .ics
            .replace("Passcode: x7Kp2Q", "Passcode: changed");
        assert_ne!(edited, migrated.ics, "{name}: the block holds the passcode");
        match undo(&edited, &migrated.pre_image, now()).unwrap() {
            Undone::Skipped(UndoSkip::BlockChanged { property, .. }) => {
                assert!(
                    ["DESCRIPTION", "X-ALT-DESC"].contains(&property),
                    "{name}: {property}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn undo_of_a_rewrite_is_the_original_in_meaning_for_the_corpus() {
    let dir = corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus missing at {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ics"))
        .collect();
    files.sort();
    let (mut undone_count, mut as_found) = (0, 0);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let Ok(found) = mms_ical::utf8(&bytes) else {
            continue;
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // Corpus events seldom carry an online meeting: each file is also tried with a Teams
        // meeting URL property added to every VEVENT, so that the rewrite adds its block to the
        // corpus's real-world bodies (or adds a DESCRIPTION) and the undo takes it out again.
        let Some(with_meeting) = with_teams_url(found) else {
            continue;
        };
        for (ics, coords) in [
            (found, teams_coords()),
            (found, sfb_coords()),
            (with_meeting.as_str(), teams_coords()),
            (with_meeting.as_str(), sfb_coords()),
        ] {
            let Ok(migrated) = rewrite(ics, &coords, now()) else {
                continue;
            };
            if !migrated.changed {
                continue;
            }
            let undone = restored(
                undo(&migrated.ics, &migrated.pre_image, now())
                    .unwrap_or_else(|e| panic!("{name}: {e}")),
                &name,
            );
            assert_eq!(
                resource_meaning(&undone.ics),
                resource_meaning(ics),
                "{name} to {:?}",
                coords.kind
            );
            undone_count += 1;
            if ics == found {
                as_found += 1;
            }
        }
    }
    println!("{undone_count} corpus rewrites undone ({as_found} of the files as found)");
    assert!(undone_count > 100, "{undone_count}: the corpus was swept");
}

/// `ics` with `X-MICROSOFT-SKYPETEAMSMEETINGURL` added to every VEVENT; `None` when it does not
/// parse or has no VEVENT.
fn with_teams_url(ics: &str) -> Option<String> {
    let mut doc = Document::parse(ics).ok()?;
    let ending = doc.line_ending;
    let mut events = 0;
    doc.with_root(|calendar| {
        for event in calendar.components_mut().filter(|c| c.name == "VEVENT") {
            event.insert_property(mms_ical::contentline::ContentLine::new(
                "X-MICROSOFT-SKYPETEAMSMEETINGURL",
                "",
                "https://teams.microsoft.com/l/meetup-join/corpus",
                ending,
            ));
            events += 1;
        }
    })
    .ok()?;
    (events > 0).then(|| doc.serialize())
}

#[test]
fn a_pre_image_costs_a_few_kilobytes_per_meeting() {
    // The number ARCHITECTURE.md gives for the store's pre-image hash.
    for name in MIGRATED {
        let migrated = rewrite(&fixture(name), &teams_coords(), now()).unwrap();
        let bytes = serde_json::to_string(&migrated.pre_image).unwrap().len();
        println!("{name}: {bytes} bytes of pre-image JSON");
        assert!(bytes < 64 * 1024, "{name}: {bytes}");
    }
}
