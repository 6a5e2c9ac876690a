//! A server simulator for spelling only: re-writes an iCalendar resource the ways CalDAV servers
//! are known to store one, without changing what it says (the real Radicale and Xandikos
//! captures are in `tests/fixtures/stored/`; this covers the combinations no single server
//! makes). It is written here, apart from the crate's parser, so that a bug in `mms_ical`'s
//! reading cannot hide itself in the test.

/// One way of re-spelling a resource; [`respell`] applies every one that is set.
#[derive(Debug, Clone)]
pub struct Respelling {
    /// Shuffle each line's parameters (Radicale and Xandikos sort them).
    pub shuffle_params: Option<u64>,
    /// Lower-case parameter names and enumerated parameter values.
    pub recase_params: bool,
    /// Quote every unquoted parameter value (Xandikos quotes CN), or unquote what needs no quotes.
    pub quote: Option<bool>,
    /// Leave `;` and `,` unescaped in X-ALT-DESC (Cyrus) and, with `true`, in DESCRIPTION too.
    pub unescape_text: Option<bool>,
    /// Write line breaks in TEXT as `\N` instead of `\n`.
    pub upper_n: bool,
    /// Shuffle the properties and sub-components of every component (Radicale sorts them and
    /// moves VALARM between properties).
    pub shuffle_properties: Option<u64>,
    /// Fold at this many octets (at least 8), continuation lines starting with a tab when set.
    pub fold_width: usize,
    pub fold_with_tab: bool,
    /// LF line ends instead of CRLF.
    pub lf: bool,
}

const ENUMERATED_PARAMS: &[&str] = &[
    "VALUE", "FEATURE", "PARTSTAT", "ROLE", "RSVP", "CUTYPE", "FMTTYPE", "RELATED",
];

/// A deterministic shuffle from a seed (xorshift; the test only needs "some other order").
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// Logical lines of `ics`, unfolded.
fn logical_lines(ics: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for physical in ics.split('\n') {
        let physical = physical.strip_suffix('\r').unwrap_or(physical);
        match physical.strip_prefix([' ', '\t']) {
            Some(rest) if !lines.is_empty() => lines.last_mut().expect("a line").push_str(rest),
            _ if physical.is_empty() => {}
            _ => lines.push(physical.to_string()),
        }
    }
    lines
}

/// Splits `line` at the first `;`/`:` outside quotes into name, parameters and value.
fn split_line(line: &str) -> (String, Vec<String>, String) {
    let mut quoted = false;
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                pieces.push(line[start..i].to_string());
                start = i + 1;
            }
            ':' if !quoted => {
                pieces.push(line[start..i].to_string());
                let name = pieces.remove(0);
                return (name, pieces, line[i + 1..].to_string());
            }
            _ => {}
        }
    }
    (line.to_string(), Vec::new(), String::new())
}

fn unescape_semicolon_comma(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next @ (';' | ',')) => out.push(next),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn upper_n(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push_str("\\N"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn respell_line(line: &str, how: &Respelling, index: usize) -> String {
    let (name, mut params, mut value) = split_line(line);
    let upper = name.to_ascii_uppercase();
    if upper == "BEGIN" || upper == "END" {
        return line.to_string();
    }
    if let Some(seed) = how.shuffle_params {
        shuffle(&mut params, seed.wrapping_add(index as u64));
    }
    for param in params.iter_mut() {
        let (key, val) = param.split_once('=').unwrap_or((param.as_str(), ""));
        let mut key = key.to_string();
        let mut val = val.to_string();
        if how.recase_params {
            if ENUMERATED_PARAMS.contains(&key.to_ascii_uppercase().as_str()) {
                val = val.to_lowercase();
            }
            key = key.to_lowercase();
        }
        match how.quote {
            Some(true) if !val.contains('"') => {
                val = val
                    .split(',')
                    .map(|v| format!("\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(",");
            }
            Some(false)
                if val.len() >= 2
                    && val.starts_with('"')
                    && val.ends_with('"')
                    && !val[1..val.len() - 1].contains([':', ';', ',', '"']) =>
            {
                val = val[1..val.len() - 1].to_string();
            }
            _ => {}
        }
        *param = format!("{key}={val}");
    }
    let text_body = upper == "X-ALT-DESC" || upper == "DESCRIPTION";
    match how.unescape_text {
        Some(also_description) if upper == "X-ALT-DESC" || (also_description && text_body) => {
            value = unescape_semicolon_comma(&value);
        }
        _ => {}
    }
    if how.upper_n && text_body {
        value = upper_n(&value);
    }
    let mut out = name;
    for param in params {
        out.push(';');
        out.push_str(&param);
    }
    out.push(':');
    out.push_str(&value);
    out
}

/// An item of a component body: a property line or a whole sub-component.
enum Item {
    Line(String),
    Component(Vec<String>),
}

/// Shuffles the body of every component, recursively (BEGIN and END stay in place).
fn shuffle_bodies(lines: &[String], seed: u64) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if lines[i].to_ascii_uppercase().starts_with("BEGIN:") {
            let end = matching_end(lines, i);
            out.push(lines[i].clone());
            let mut items = Vec::new();
            let mut j = i + 1;
            while j < end {
                if lines[j].to_ascii_uppercase().starts_with("BEGIN:") {
                    let sub_end = matching_end(lines, j);
                    items.push(Item::Component(shuffle_bodies(
                        &lines[j..=sub_end],
                        seed ^ j as u64,
                    )));
                    j = sub_end + 1;
                } else {
                    items.push(Item::Line(lines[j].clone()));
                    j += 1;
                }
            }
            shuffle(&mut items, seed.wrapping_add(i as u64));
            for item in items {
                match item {
                    Item::Line(line) => out.push(line),
                    Item::Component(sub) => out.extend(sub),
                }
            }
            out.push(lines[end].clone());
            i = end + 1;
        } else {
            out.push(lines[i].clone());
            i += 1;
        }
    }
    out
}

fn matching_end(lines: &[String], begin: usize) -> usize {
    let mut depth = 0;
    for (i, line) in lines.iter().enumerate().skip(begin) {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("BEGIN:") {
            depth += 1;
        } else if upper.starts_with("END:") {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    lines.len() - 1
}

fn fold(line: &str, width: usize, tab: bool, ending: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / width * 3 + 2);
    let mut rest = line;
    let mut budget = width;
    loop {
        if rest.len() <= budget {
            out.push_str(rest);
            out.push_str(ending);
            return out;
        }
        let mut cut = budget;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str(ending);
        out.push(if tab { '\t' } else { ' ' });
        rest = &rest[cut..];
        budget = width - 1;
    }
}

/// `ics` as a server following `how` would store it.
pub fn respell(ics: &str, how: &Respelling) -> String {
    let mut lines: Vec<String> = logical_lines(ics)
        .iter()
        .enumerate()
        .map(|(i, line)| respell_line(line, how, i))
        .collect();
    if let Some(seed) = how.shuffle_properties {
        lines = shuffle_bodies(&lines, seed);
    }
    let ending = if how.lf { "\n" } else { "\r\n" };
    let width = how.fold_width.max(8);
    lines
        .iter()
        .map(|line| fold(line, width, how.fold_with_tab, ending))
        .collect()
}
