//! The benchmark's chart, hand-written SVG: per-user time (left axis) and worker peak RSS (right
//! axis) against mailbox size on a log axis (100 … 50,000 meetings). No plotting crate: two
//! polylines, their points, and labelled axes are all it needs.

use std::fmt::Write;

/// One mailbox size's figures.
pub struct ChartPoint {
    pub meetings: usize,
    /// Per-user seconds, p50.
    pub user_seconds_p50: f64,
    /// The highest worker VmHWM in MiB.
    pub peak_rss_mib: f64,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// The SVG document for `points` (sorted by size or not; they are sorted here).
pub fn svg(points: &[ChartPoint]) -> String {
    let mut points: Vec<&ChartPoint> = points.iter().collect();
    points.sort_by_key(|p| p.meetings);
    let min_x = points.first().map_or(100, |p| p.meetings).max(1) as f64;
    let max_x = points.last().map_or(50_000, |p| p.meetings).max(2) as f64;
    let (lx0, lx1) = (min_x.log10(), max_x.log10().max(min_x.log10() + 1.0));
    let max_t = nice_max(
        points
            .iter()
            .map(|p| p.user_seconds_p50)
            .fold(0.0, f64::max),
    );
    let max_r = nice_max(points.iter().map(|p| p.peak_rss_mib).fold(0.0, f64::max));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |m: usize| LEFT + ((m.max(1) as f64).log10() - lx0) / (lx1 - lx0) * plot_w;
    let y = |v: f64, max: f64| TOP + plot_h - v / max * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">MMS benchmark: per-user time and worker peak RSS by mailbox size</text>"#,
        WIDTH / 2.0
    );
    // Axes.
    let _ = writeln!(
        s,
        r#"<path d="M{LEFT},{TOP} V{} H{}" stroke="black" fill="none"/><path d="M{},{TOP} V{}" stroke="black"/>"#,
        TOP + plot_h,
        LEFT + plot_w,
        LEFT + plot_w,
        TOP + plot_h
    );
    for p in &points {
        let px = x(p.meetings);
        let _ = writeln!(
            s,
            r#"<line x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="black"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#,
            TOP + plot_h,
            TOP + plot_h + 5.0,
            TOP + plot_h + 18.0,
            p.meetings
        );
    }
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let py = TOP + plot_h - f * plot_h;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{py:.1}" text-anchor="end" fill="steelblue">{:.2}</text><text x="{}" y="{py:.1}" fill="firebrick">{:.0}</text>"#,
            LEFT - 6.0,
            f * max_t,
            LEFT + plot_w + 6.0,
            f * max_r
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">meetings per mailbox (log scale)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{0}" transform="rotate(-90 16 {0})" text-anchor="middle" fill="steelblue">per-user time, p50 (s)</text>"#,
        TOP + plot_h / 2.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{0}" y="{1}" transform="rotate(90 {0} {1})" text-anchor="middle" fill="firebrick">worker peak RSS (MiB)</text>"#,
        WIDTH - 16.0,
        TOP + plot_h / 2.0
    );
    series(&mut s, &points, "steelblue", |p| {
        (x(p.meetings), y(p.user_seconds_p50, max_t))
    });
    series(&mut s, &points, "firebrick", |p| {
        (x(p.meetings), y(p.peak_rss_mib, max_r))
    });
    s.push_str("</svg>\n");
    s
}

fn series(
    s: &mut String,
    points: &[&ChartPoint],
    color: &str,
    at: impl Fn(&ChartPoint) -> (f64, f64),
) {
    let path: Vec<String> = points
        .iter()
        .map(|p| {
            let (px, py) = at(p);
            format!("{px:.1},{py:.1}")
        })
        .collect();
    let _ = writeln!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
        path.join(" ")
    );
    for p in points {
        let (px, py) = at(p);
        let _ = writeln!(
            s,
            r#"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{color}"/>"#
        );
    }
}

/// A round axis maximum at or above `v` (1, 2 or 5 times a power of ten).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_plots_one_point_per_size_on_both_series() {
        let doc = svg(&[
            ChartPoint {
                meetings: 1000,
                user_seconds_p50: 2.0,
                peak_rss_mib: 20.0,
            },
            ChartPoint {
                meetings: 100,
                user_seconds_p50: 0.3,
                peak_rss_mib: 15.0,
            },
        ]);
        assert!(doc.starts_with("<svg"));
        assert_eq!(doc.matches("<circle").count(), 4);
        assert_eq!(doc.matches("<polyline").count(), 2);
        assert!(doc.contains(">100<") && doc.contains(">1000<"));
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(0.0), 1.0);
    }
}
