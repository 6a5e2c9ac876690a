//! Events rewritten per second on a 1,000-event mailbox built from the realistic fixtures (UID
//! and times varied per event): select + rewrite, as the worker runs them, and rewrite alone.

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mms_core::{Coordinates, DialInNumber, OnlineMeetingKind, SourceMeetingType};

const FIXTURES: &[&str] = &[
    "teams_outlook.ics",
    "sfb_outlook.ics",
    "weekly_dst_exceptions.ics",
    "non_ascii.ics",
    "two_blocks.ics",
];

fn mailbox() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let templates: Vec<String> = FIXTURES
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).expect("fixture"))
        .collect();
    (0..1000)
        .map(|i| {
            let template = &templates[i % templates.len()];
            // A distinct UID and a start moved by whole days keep every event distinct and future.
            template
                .replace("UID:", &format!("UID:bench-{i:04}-"))
                .replace("2025031", &format!("2025{:02}1", 4 + i % 6))
                .replace("2025041", &format!("2025{:02}1", 4 + i % 6))
        })
        .collect()
}

fn coords() -> Coordinates {
    Coordinates {
        kind: OnlineMeetingKind::Teams,
        join_url: "https://teams.example.net/l/meetup-join/contoso/482913657201".into(),
        meeting_id: "482 913 657 201".into(),
        passcode: Some("x7Kp2Q".into()),
        conference_id: Some("731204558".into()),
        dial_in: vec![DialInNumber {
            number: "+1 206-555-0134".into(),
            label: "Seattle".into(),
            toll_free: false,
        }],
        find_local_number_url: Some("https://dialin.example.net/contoso".into()),
    }
}

fn bench(c: &mut Criterion) {
    let events = mailbox();
    let now: DateTime<Utc> = "2025-03-03T12:00:00Z".parse().expect("RFC 3339");
    let coords = coords();
    let mut group = c.benchmark_group("mailbox_1000");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(20);
    group.bench_function("select_and_rewrite", |b| {
        b.iter(|| {
            let mut rewritten = 0;
            for ics in &events {
                if let Ok(mms_ical::Selected::Migrate(_)) =
                    mms_ical::select(ics, "joni.sherman@contoso.com", SourceMeetingType::All, now)
                {
                    rewritten += usize::from(
                        mms_ical::rewrite(ics, &coords, now)
                            .expect("rewrite")
                            .changed,
                    );
                }
            }
            assert_eq!(rewritten, events.len());
        })
    });
    group.bench_function("rewrite", |b| {
        b.iter(|| {
            events
                .iter()
                .filter(|ics| {
                    mms_ical::rewrite(ics, &coords, now)
                        .expect("rewrite")
                        .changed
                })
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
