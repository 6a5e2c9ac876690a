//! Building one meeting's update messages (`build_updates`) for 1,000, 10,000 and 100,000
//! attendees, in batches of 100. Linear building shows as a constant time per attendee across
//! the three sizes (criterion's "thrpt" in attendees/s); the quadratic builder it replaced took
//! 134 CPU-seconds for 10,000 attendees and never finished 100,000 (issue 7).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mms_ical::{build_updates, UpdateContext};
use mms_testkit::smtp::meeting_with_attendees;

const ORGANIZER: &str = "joni.sherman@contoso.com";

fn bench(c: &mut Criterion) {
    let date = "2025-03-03T12:00:00Z".parse().expect("RFC 3339");
    let ctx = UpdateContext {
        tenant: "bench",
        organizer: ORGANIZER,
        service_address: "mms@contoso.com",
        max_recipients_per_message: 100,
        notify_declined: false,
        date,
    };
    let mut group = c.benchmark_group("build_updates");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for attendees in [1_000usize, 10_000, 100_000] {
        let ics = meeting_with_attendees("bench-1", ORGANIZER, attendees);
        group.throughput(Throughput::Elements(attendees as u64));
        group.bench_with_input(BenchmarkId::from_parameter(attendees), &ics, |b, ics| {
            b.iter(|| {
                let plan = build_updates(ics, &ctx).expect("builds");
                assert_eq!(plan.recipient_count(), attendees);
                plan
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
