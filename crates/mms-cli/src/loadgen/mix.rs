//! Seeded mailboxes with the mix a real tenant has (issue 11 point 7): Teams, Skype for Business
//! and plain meetings, past ones, ones organized by someone else, weekly series with a moved
//! occurrence (an exception), HTML bodies, and 1 to 500 attendees.
//!
//! The invitations come from [`demo::invitation`] (the Outlook shapes the fixtures have); this
//! module only chooses, from a seed, which shape each meeting takes, so one seed always builds the
//! same mailboxes and two runs measure the same work.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use crate::demo::{self, BlockKind, Invitation};

/// A small deterministic generator (SplitMix64): the mix needs reproducibility, not quality.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What one generated mailbox holds, by kind (the JSON report carries it, so a reader sees the mix).
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct MixCounts {
    pub teams: usize,
    pub sfb: usize,
    pub no_online_meeting: usize,
    pub past: usize,
    pub organized_by_others: usize,
    pub series_with_exception: usize,
    pub attendees_total: usize,
    pub attendees_max: usize,
}

impl MixCounts {
    pub fn add(&mut self, other: &MixCounts) {
        self.teams += other.teams;
        self.sfb += other.sfb;
        self.no_online_meeting += other.no_online_meeting;
        self.past += other.past;
        self.organized_by_others += other.organized_by_others;
        self.series_with_exception += other.series_with_exception;
        self.attendees_total += other.attendees_total;
        self.attendees_max = self.attendees_max.max(other.attendees_max);
    }
}

/// Attendee count: most meetings are small, a few are town halls (up to 500).
fn attendee_count(rng: &mut SeededRng) -> usize {
    match rng.below(100) {
        0..=59 => 1 + rng.below(5) as usize,
        60..=89 => 6 + rng.below(25) as usize,
        90..=97 => 31 + rng.below(120) as usize,
        _ => 151 + rng.below(350) as usize,
    }
}

/// One meeting of `organizer`'s mailbox, chosen from `rng`: returns its iCalendar text.
pub fn meeting(
    rng: &mut SeededRng,
    organizer: &str,
    index: usize,
    now: DateTime<Utc>,
    counts: &mut MixCounts,
) -> String {
    let uid = format!("{organizer}-bench-{index}");
    let attendees: Vec<String> = (0..attendee_count(rng))
        .map(|i| format!("attendee{i}@bench.example"))
        .collect();
    counts.attendees_total += attendees.len();
    counts.attendees_max = counts.attendees_max.max(attendees.len());
    let future = now + Duration::hours(2 + rng.below(24 * 180) as i64);
    let online = |rng: &mut SeededRng| {
        if rng.below(100) < 55 {
            BlockKind::Teams
        } else {
            BlockKind::SfB
        }
    };
    // 10 % past, 10 % organized by others, 10 % without an online block, 10 % weekly series with
    // one moved occurrence; the rest are future single meetings with a Teams or SfB block.
    let roll = rng.below(100);
    let (org, start, block, series) = match roll {
        0..=9 => {
            counts.past += 1;
            (
                organizer.to_string(),
                now - Duration::days(1 + rng.below(365) as i64),
                online(rng),
                None,
            )
        }
        10..=19 => {
            counts.organized_by_others += 1;
            (
                "someone.else@bench.example".to_string(),
                future,
                online(rng),
                None,
            )
        }
        20..=29 => (organizer.to_string(), future, BlockKind::None, None),
        30..=39 => {
            counts.series_with_exception += 1;
            (
                organizer.to_string(),
                now - Duration::days(rng.below(21) as i64),
                online(rng),
                Some(10 + rng.below(40) as u32),
            )
        }
        _ => (organizer.to_string(), future, online(rng), None),
    };
    match block {
        BlockKind::Teams => counts.teams += 1,
        BlockKind::SfB => counts.sfb += 1,
        BlockKind::None => counts.no_online_meeting += 1,
    }
    let summary = format!("Bench meeting {index}");
    let master = demo::invitation(&Invitation {
        uid: &uid,
        organizer: &org,
        attendees: &attendees,
        start,
        block,
        weekly_count: series,
        summary: &summary,
    });
    match series {
        None => master,
        Some(_) => with_moved_occurrence(&master, &uid, &org, &attendees, start, block),
    }
}

/// Add an exception to a weekly series: its third occurrence moved one hour later, as its own
/// VEVENT with a RECURRENCE-ID (how Outlook exports a moved occurrence).
fn with_moved_occurrence(
    master: &str,
    uid: &str,
    organizer: &str,
    attendees: &[String],
    start: DateTime<Utc>,
    block: BlockKind,
) -> String {
    let original = start + Duration::weeks(2);
    let exception = demo::invitation(&Invitation {
        uid,
        organizer,
        attendees,
        start: original + Duration::hours(1),
        block,
        weekly_count: None,
        summary: "Bench meeting (moved occurrence)",
    });
    let Some(begin) = exception.find("BEGIN:VEVENT\r\n") else {
        return master.to_string();
    };
    let Some(end) = exception.rfind("END:VCALENDAR\r\n") else {
        return master.to_string();
    };
    let recurrence_id = format!(
        "BEGIN:VEVENT\r\nRECURRENCE-ID:{}\r\n",
        original.format("%Y%m%dT%H%M%SZ")
    );
    let event = exception[begin..end].replacen("BEGIN:VEVENT\r\n", &recurrence_id, 1);
    let Some(tail) = master.rfind("END:VCALENDAR\r\n") else {
        return master.to_string();
    };
    format!("{}{}END:VCALENDAR\r\n", &master[..tail], event)
}

/// Write a mailbox of `count` seeded meetings as a vdir folder `root/<organizer>/`, one `.ics`
/// per meeting; returns the mix it holds.
pub fn write_mailbox(
    root: &Path,
    organizer: &str,
    count: usize,
    seed: u64,
    now: DateTime<Utc>,
) -> std::io::Result<MixCounts> {
    let dir = root.join(organizer);
    std::fs::create_dir_all(&dir)?;
    let mut rng = SeededRng::new(seed);
    let mut counts = MixCounts::default();
    for i in 0..count {
        let ics = meeting(&mut rng, organizer, i, now, &mut counts);
        std::fs::write(dir.join(format!("{organizer}-bench-{i}.ics")), ics)?;
    }
    Ok(counts)
}

/// The same seeded meetings as (file name, iCalendar text), for a CalDAV calendar.
pub fn meetings(
    organizer: &str,
    count: usize,
    seed: u64,
    now: DateTime<Utc>,
) -> (Vec<(String, String)>, MixCounts) {
    let mut rng = SeededRng::new(seed);
    let mut counts = MixCounts::default();
    let list = (0..count)
        .map(|i| {
            (
                format!("{organizer}-bench-{i}.ics"),
                meeting(&mut rng, organizer, i, now, &mut counts),
            )
        })
        .collect();
    (list, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_builds_the_same_mailbox_and_the_mix_has_every_kind() {
        let now = Utc::now();
        let (a, counts) = meetings("u@bench.example", 400, 7, now);
        let (b, _) = meetings("u@bench.example", 400, 7, now);
        assert_eq!(a, b);
        assert!(counts.teams > 0 && counts.sfb > 0 && counts.no_online_meeting > 0);
        assert!(counts.past > 0 && counts.organized_by_others > 0);
        assert!(counts.series_with_exception > 0);
        assert!(counts.attendees_max > 100, "{counts:?}");
        let series = a
            .iter()
            .find(|(_, ics)| ics.contains("RECURRENCE-ID:"))
            .expect("a series with an exception");
        assert_eq!(series.1.matches("BEGIN:VEVENT").count(), 2);
        assert!(series.1.contains("X-ALT-DESC;FMTTYPE=text/html"));
    }
}
