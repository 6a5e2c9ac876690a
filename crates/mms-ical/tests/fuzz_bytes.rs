//! Fuzzing the parser and the rewriter on bytes (proptest-driven; cargo-fuzz would need nightly):
//! arbitrary bytes and mutations of the fixtures and the corpus go through parse, select,
//! rewrite and build_update. Every outcome must be a value or a typed error, never a panic, and
//! whatever parses must serialize back to the same bytes.
//!
//! The short run is part of the normal suite; the long one is `#[ignore]`d and runs for
//! `FUZZ_SECS` seconds (default 600): `make fuzz`.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use common::{corpus_dir, fixtures_dir, pipeline};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// Fragments that steer mutations towards the interesting corners of the grammar.
const TOKENS: &[&str] = &[
    "\r\n ",
    "\n\t",
    "\r\n",
    "BEGIN:VEVENT\r\n",
    "END:VEVENT\r\n",
    "END:VCALENDAR\r\n",
    "BEGIN:VALARM\r\n",
    ";",
    ":",
    "\"",
    ",",
    "\\",
    "\\n",
    "=",
    "TZID=Pacific Standard Time",
    "TZID=Nowhere/Else",
    "RRULE:FREQ=SECONDLY\r\n",
    "RRULE:FREQ=YEARLY;BYYEARDAY=366;COUNT=100000\r\n",
    "EXDATE:99991231T235959Z\r\n",
    "RECURRENCE-ID:20250310T093000\r\n",
    "DTSTART:20250230T250000\r\n",
    "DURATION:P99999999W\r\n",
    "________________",
    "..........",
    "Microsoft Teams meeting",
    "Join Skype Meeting",
    "<div id=\"mms-online-meeting\">",
    "</div>",
    "https://meet.x/a",
    "é",
    "🎉",
    "\u{0}",
    "SEQUENCE:4294967295\r\n",
    "ORGANIZER:mailto:joni.sherman@contoso.com\r\n",
    "STATUS:CANCELLED\r\n",
];

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for dir in [fixtures_dir(), corpus_dir()] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.path().extension().is_some_and(|x| x == "ics") {
                    seeds.extend(std::fs::read(entry.path()));
                }
            }
        }
    }
    assert!(seeds.len() > 10, "fuzz seeds missing");
    seeds
}

/// One edit of a seed: where (a fraction of its length), what, and how much.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(u16, usize),
    Delete(u16, u16),
    FlipByte(u16, u8),
    DuplicateLine(u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<u16>(), 0..TOKENS.len()).prop_map(|(at, t)| Mutation::Insert(at, t)),
        (any::<u16>(), 0..64u16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<u16>(), any::<u8>()).prop_map(|(at, b)| Mutation::FlipByte(at, b)),
        any::<u16>().prop_map(Mutation::DuplicateLine),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    let at =
        |fraction: u16, len: usize| (usize::from(fraction) * len) / usize::from(u16::MAX).max(1);
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Insert(f, t) => {
                let i = at(f, len).min(len);
                bytes.splice(i..i, TOKENS[t].bytes());
            }
            Mutation::Delete(f, n) => {
                let i = at(f, len).min(len);
                let j = (i + usize::from(n)).min(len);
                bytes.drain(i..j);
            }
            Mutation::FlipByte(f, b) if len > 0 => {
                let i = at(f, len).min(len - 1);
                bytes[i] = b;
            }
            Mutation::FlipByte(..) => {}
            Mutation::DuplicateLine(f) => {
                let i = at(f, len).min(len);
                let start = bytes[..i]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = bytes[i..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(len, |p| i + p + 1);
                let line = bytes[start..end].to_vec();
                bytes.splice(start..start, line);
            }
        }
    }
    bytes
}

fn input(seed_count: usize) -> impl Strategy<Value = (usize, Vec<Mutation>, Vec<u8>, bool)> {
    (
        0..seed_count,
        prop::collection::vec(mutation(), 0..12),
        prop::collection::vec(any::<u8>(), 0..256),
        any::<bool>(),
    )
}

/// The property: a value or a typed error, and a lossless round trip for what parses.
fn exercise(bytes: &[u8]) {
    let Ok(ics) = mms_ical::utf8(bytes) else {
        return;
    };
    let organizer = "joni.sherman@contoso.com";
    let _ = pipeline(ics, organizer);
}

fn case(
    seeds: &[Vec<u8>],
    (seed, mutations, random, raw): &(usize, Vec<Mutation>, Vec<u8>, bool),
) -> Vec<u8> {
    if *raw {
        random.clone()
    } else {
        apply(&seeds[*seed], mutations)
    }
}

/// Inputs the long run once failed on (`tests/fixtures/fuzz/`), kept as regressions.
#[test]
fn past_findings_stay_fixed() {
    let dir = fixtures_dir().join("fuzz");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir)
        .expect("fuzz findings directory")
        .flatten()
    {
        exercise(&std::fs::read(entry.path()).expect("readable finding"));
        count += 1;
    }
    assert!(count >= 2, "findings missing from {}", dir.display());
}

#[test]
fn short_run_finds_no_panic() {
    let seeds = seeds();
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&input(seeds.len()), |value| {
            exercise(&case(&seeds, &value));
            Ok(())
        })
        .unwrap();
}

#[test]
#[ignore = "long run: make fuzz (FUZZ_SECS, default 600)"]
fn long_run_finds_no_panic() {
    let seconds: u64 = std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let seeds = seeds();
    let strategy = input(seeds.len());
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut cases: u64 = 0;
    let mut next_report = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let value = strategy
            .new_tree(&mut runner)
            .expect("strategy builds")
            .current();
        let bytes = case(&seeds, &value);
        if catch_unwind(AssertUnwindSafe(|| exercise(&bytes))).is_err() {
            let path = std::env::temp_dir().join(format!("mms-ical-fuzz-crash-{cases}.ics"));
            std::fs::write(&path, &bytes).expect("write crash input");
            panic!(
                "panic after {cases} cases; input saved to {}",
                path.display()
            );
        }
        cases += 1;
        if Instant::now() >= next_report {
            println!("fuzz: {cases} cases, no panic");
            next_report += Duration::from_secs(60);
        }
    }
    println!("fuzz: {cases} cases in {seconds} s, no panic");
}
