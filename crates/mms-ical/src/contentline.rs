//! The lossless content-line layer: an iCalendar resource as a tree of components whose
//! properties keep their original, folded bytes.
//!
//! Semantic parsers (`icalendar`, `calcard`) rebuild the text when they serialize, so parameter
//! order, quoting, folding points, line endings and vendor oddities change even when nothing was
//! edited. MMS must hand the organizer's meeting back byte for byte except for the properties it
//! rewrites (P4), so this layer only splits the input into content lines (RFC 5545 3.1), groups
//! them by BEGIN/END, and re-serializes untouched lines from their raw bytes. Names, parameters and
//! values are read on demand from the unfolded line; a property the rewriter replaces is folded
//! anew at 75 octets, never inside a UTF-8 sequence. Edits ([`Component::set_property`],
//! [`Component::edit_properties`]) compare the old and new line by meaning (`crate::meaning`),
//! so a property a server re-spelled is not "changed" by writing it back in MMS's spelling.

use crate::error::IcalError;
use crate::meaning::same_meaning;

/// Limits that keep hostile or runaway input from costing unbounded memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest resource accepted, in bytes (default 16 MiB).
    pub max_resource_bytes: usize,
    /// Largest single unfolded property, in bytes (default 4 MiB: far above any real meeting body).
    pub max_property_bytes: usize,
    /// Deepest component nesting accepted (VCALENDAR > VEVENT > VALARM is 3).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_resource_bytes: 16 << 20,
            max_property_bytes: 4 << 20,
            max_depth: 16,
        }
    }
}

/// A parsed resource: its top-level entries (normally one VCALENDAR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub entries: Vec<Entry>,
    /// The line ending new lines get: the one the input's first line used (CRLF when unknown).
    pub line_ending: &'static str,
}

/// One element of a component body, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Property(ContentLine),
    Component(Component),
    /// An empty line: not allowed by RFC 5545 but common, kept so the round trip stays exact.
    Blank(String),
}

/// A `BEGIN:NAME ... END:NAME` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Upper-cased component name (`VEVENT`).
    pub name: String,
    pub begin: ContentLine,
    pub entries: Vec<Entry>,
    pub end: ContentLine,
}

/// One logical content line: its raw folded bytes (with line endings) and its unfolded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentLine {
    raw: String,
    unfolded: String,
    /// 1-based physical line where it starts in the input (0 for lines MMS created).
    pub line: usize,
    /// Upper-cased property name.
    name: String,
    /// Byte offset in `unfolded` of the `:` that ends name and parameters.
    colon: usize,
}

impl ContentLine {
    /// Splits one unfolded line into name and the rest; refuses lines without a name or a colon.
    fn parse(raw: String, unfolded: String, line: usize) -> Result<ContentLine, IcalError> {
        let name_end = unfolded.find([';', ':']).unwrap_or(unfolded.len());
        let name = &unfolded[..name_end];
        let valid_name =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let colon = find_value_colon(&unfolded, name_end);
        match (valid_name, colon) {
            (true, Some(colon)) => {
                let name = name.to_ascii_uppercase();
                Ok(ContentLine {
                    raw,
                    unfolded,
                    line,
                    name,
                    colon,
                })
            }
            _ => Err(IcalError::NotAContentLine {
                line,
                found: preview(&unfolded),
            }),
        }
    }

    /// A new line `NAME;PARAMS:VALUE` (`params` without the leading `;`, may be empty), folded.
    pub fn new(name: &str, params: &str, value: &str, line_ending: &str) -> ContentLine {
        let head = if params.is_empty() {
            name.to_string()
        } else {
            format!("{name};{params}")
        };
        Self::from_unfolded(format!("{head}:{value}"), head.len(), line_ending)
    }

    /// The same property (name and parameters byte for byte) with another value, or `None`
    /// when the new line would not read back that way: a parameter section with an unbalanced
    /// quote is read up to a colon that depends on the value, and a rewrite must never move it.
    pub fn with_value(&self, value: &str, line_ending: &str) -> Option<ContentLine> {
        let head = &self.unfolded[..self.colon];
        let unfolded = format!("{head}:{value}");
        let name_end = unfolded.find([';', ':']).unwrap_or(self.colon);
        (find_value_colon(&unfolded, name_end) == Some(self.colon))
            .then(|| Self::from_unfolded(unfolded, self.colon, line_ending))
    }

    /// A line from its unfolded text (`NAME;PARAMS:VALUE`, as [`ContentLine::unfolded`] gives
    /// it), folded anew at 75 octets: how a line kept aside (a migration's pre-image) comes back.
    pub fn from_unfolded_text(unfolded: &str, line_ending: &str) -> Result<ContentLine, IcalError> {
        let parsed = ContentLine::parse(String::new(), unfolded.to_string(), 0)?;
        Ok(ContentLine {
            raw: fold(unfolded, line_ending),
            ..parsed
        })
    }

    fn from_unfolded(unfolded: String, colon: usize, line_ending: &str) -> ContentLine {
        let name_end = unfolded.find([';', ':']).unwrap_or(colon);
        ContentLine {
            raw: fold(&unfolded, line_ending),
            name: unfolded[..name_end].to_ascii_uppercase(),
            unfolded,
            line: 0,
            colon,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw value (still TEXT-escaped where the property is TEXT).
    pub fn value(&self) -> &str {
        &self.unfolded[self.colon + 1..]
    }

    /// The original bytes, folding and line ending included.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The line without folding (no line ending).
    pub fn unfolded(&self) -> &str {
        &self.unfolded
    }

    /// The first value of parameter `name` (case-insensitive), without its quotes.
    pub fn param(&self, name: &str) -> Option<&str> {
        let name_end = self.unfolded.find([';', ':']).unwrap_or(self.colon);
        split_params(&self.unfolded[name_end..self.colon]).find_map(|p| {
            let (key, value) = p.split_once('=')?;
            key.eq_ignore_ascii_case(name)
                .then(|| first_param_value(value))
        })
    }

    /// Every parameter in written order, as (name as written, value section as written: quotes
    /// and commas included). A parameter without `=` has an empty value.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        let name_end = self.unfolded.find([';', ':']).unwrap_or(self.colon);
        split_params(&self.unfolded[name_end..self.colon])
            .map(|p| p.split_once('=').unwrap_or((p, "")))
    }
}

/// Where the value starts: the first `:` after the name that is not inside a quoted parameter
/// value. Unbalanced quotes fall back to the first colon, as lenient readers do.
fn find_value_colon(unfolded: &str, from: usize) -> Option<usize> {
    let mut quoted = false;
    for (i, b) in unfolded.bytes().enumerate().skip(from) {
        match b {
            b'"' => quoted = !quoted,
            b':' if !quoted => return Some(i),
            _ => {}
        }
    }
    unfolded[from..].find(':').map(|i| i + from)
}

/// The `;`-separated parameters of a parameter section (which starts with `;`).
fn split_params(section: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, b) in section.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b';' if !quoted => {
                parts.push(&section[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&section[start..]);
    parts.into_iter().filter(|p| !p.is_empty())
}

fn first_param_value(value: &str) -> &str {
    let first = if let Some(rest) = value.strip_prefix('"') {
        rest.split('"').next().unwrap_or(rest)
    } else {
        value.split(',').next().unwrap_or(value)
    };
    first.trim()
}

/// The start of a line for an error message, cut at a character boundary.
fn preview(text: &str) -> String {
    let cut = text.char_indices().nth(60).map_or(text.len(), |(i, _)| i);
    text[..cut].to_string()
}

/// Folds an unfolded line at 75 octets (RFC 5545 3.1), continuation lines starting with a space,
/// never splitting a UTF-8 sequence; appends `line_ending` after every physical line.
pub fn fold(unfolded: &str, line_ending: &str) -> String {
    let mut out = String::with_capacity(unfolded.len() + unfolded.len() / 60 * 3 + 2);
    let mut rest = unfolded;
    let mut budget = 75;
    loop {
        if rest.len() <= budget {
            out.push_str(rest);
            out.push_str(line_ending);
            return out;
        }
        let mut cut = budget;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str(line_ending);
        out.push(' ');
        rest = &rest[cut..];
        budget = 74;
    }
}

/// One physical line and the 1-based number it had in the input.
struct PhysicalLine<'a> {
    number: usize,
    /// Content without the line ending.
    text: &'a str,
    /// Content with its line ending.
    raw: &'a str,
}

fn physical_lines(input: &str) -> impl Iterator<Item = PhysicalLine<'_>> {
    input.split_inclusive('\n').enumerate().map(|(i, raw)| {
        let text = raw.strip_suffix('\n').unwrap_or(raw);
        let text = text.strip_suffix('\r').unwrap_or(text);
        PhysicalLine {
            number: i + 1,
            text,
            raw,
        }
    })
}

/// A logical line before it is classified: raw bytes, unfolded text, first line number.
struct LogicalLine {
    raw: String,
    unfolded: String,
    line: usize,
}

fn logical_lines(input: &str, limits: &Limits) -> Result<Vec<LogicalLine>, IcalError> {
    let mut lines: Vec<LogicalLine> = Vec::new();
    for physical in physical_lines(input) {
        let continues = physical.text.starts_with([' ', '\t']);
        match lines.last_mut() {
            Some(previous) if continues && !previous.unfolded.is_empty() => {
                previous.raw.push_str(physical.raw);
                previous.unfolded.push_str(&physical.text[1..]);
            }
            _ if continues && physical.text.trim().is_empty() => {
                // Trailing whitespace-only lines (an editor's leftovers) carry nothing: keep them
                // as blank entries so the bytes survive.
                lines.push(LogicalLine {
                    raw: physical.raw.to_string(),
                    unfolded: String::new(),
                    line: physical.number,
                });
            }
            _ if continues => {
                return Err(IcalError::OrphanContinuation {
                    line: physical.number,
                })
            }
            _ => lines.push(LogicalLine {
                raw: physical.raw.to_string(),
                // A byte-order mark (Windows tools write one) stays in the raw bytes only.
                unfolded: physical
                    .text
                    .strip_prefix('\u{feff}')
                    .unwrap_or(physical.text)
                    .to_string(),
                line: physical.number,
            }),
        }
        if let Some(last) = lines
            .last()
            .filter(|l| l.unfolded.len() > limits.max_property_bytes)
        {
            let name = last.unfolded.split([';', ':']).next().unwrap_or_default();
            return Err(IcalError::PropertyTooLarge {
                line: last.line,
                name: preview(name),
                size: last.unfolded.len(),
                limit: limits.max_property_bytes,
            });
        }
    }
    Ok(lines)
}

impl Document {
    /// Parses with the default [`Limits`].
    pub fn parse(input: &str) -> Result<Document, IcalError> {
        Self::parse_with(input, &Limits::default())
    }

    /// Parses `input` into a tree of components; every byte is kept.
    pub fn parse_with(input: &str, limits: &Limits) -> Result<Document, IcalError> {
        if input.len() > limits.max_resource_bytes {
            return Err(IcalError::TooLarge {
                size: input.len(),
                limit: limits.max_resource_bytes,
            });
        }
        if input.trim().is_empty() {
            return Err(IcalError::Empty);
        }
        let line_ending = match input.find('\n') {
            Some(i) if i > 0 && input.as_bytes()[i - 1] == b'\r' => "\r\n",
            Some(_) => "\n",
            None => "\r\n",
        };
        // The open components, innermost last; `entries` collects the top level.
        let mut stack: Vec<(ContentLine, Vec<Entry>)> = Vec::new();
        let mut entries = Vec::new();
        for logical in logical_lines(input, limits)? {
            if logical.unfolded.trim().is_empty() {
                let blank = Entry::Blank(logical.raw);
                match stack.last_mut() {
                    Some((_, body)) => body.push(blank),
                    None => entries.push(blank),
                }
                continue;
            }
            let line = ContentLine::parse(logical.raw, logical.unfolded, logical.line)?;
            match line.name() {
                "BEGIN" => {
                    if stack.len() >= limits.max_depth {
                        return Err(IcalError::TooDeep {
                            line: line.line,
                            limit: limits.max_depth,
                        });
                    }
                    stack.push((line, Vec::new()));
                }
                "END" => {
                    let found = line.value().trim().to_ascii_uppercase();
                    let Some((begin, body)) = stack.pop() else {
                        return Err(IcalError::UnexpectedEnd {
                            line: line.line,
                            found,
                        });
                    };
                    let expected = begin.value().trim().to_ascii_uppercase();
                    if expected != found {
                        return Err(IcalError::MismatchedEnd {
                            line: line.line,
                            found,
                            expected,
                            opened: begin.line,
                        });
                    }
                    let component = Entry::Component(Component {
                        name: expected,
                        begin,
                        entries: body,
                        end: line,
                    });
                    match stack.last_mut() {
                        Some((_, parent)) => parent.push(component),
                        None => entries.push(component),
                    }
                }
                _ => match stack.last_mut() {
                    Some((_, body)) => body.push(Entry::Property(line)),
                    None => {
                        return Err(IcalError::OutsideComponent {
                            line: line.line,
                            name: line.name,
                        })
                    }
                },
            }
        }
        if let Some((begin, _)) = stack.pop() {
            return Err(IcalError::Unclosed {
                opened: begin.line,
                name: begin.value().trim().to_string(),
            });
        }
        Ok(Document {
            entries,
            line_ending,
        })
    }

    /// The exact bytes: the input's, except for lines that were replaced or added.
    pub fn serialize(&self) -> String {
        let mut out = String::new();
        write_entries(&self.entries, &mut out);
        out
    }

    /// The first VCALENDAR.
    pub fn calendar(&self) -> Option<&Component> {
        self.components().find(|c| c.name == "VCALENDAR")
    }

    pub fn calendar_mut(&mut self) -> Option<&mut Component> {
        self.entries.iter_mut().find_map(|e| match e {
            Entry::Component(c) if c.name == "VCALENDAR" => Some(c),
            _ => None,
        })
    }

    /// Runs `work` on the component whose VEVENTs MMS works on: the first VCALENDAR or, for a
    /// file that holds bare VEVENTs (exports of a single event), the top level seen as one.
    pub fn with_root<R>(&mut self, work: impl FnOnce(&mut Component) -> R) -> Result<R, IcalError> {
        if let Some(calendar) = self.calendar_mut() {
            return Ok(work(calendar));
        }
        if !self.components().any(|c| c.name == "VEVENT") {
            return Err(IcalError::NoCalendar);
        }
        let mut root = Component {
            name: "VCALENDAR".into(),
            begin: ContentLine::new("BEGIN", "", "VCALENDAR", self.line_ending),
            entries: std::mem::take(&mut self.entries),
            end: ContentLine::new("END", "", "VCALENDAR", self.line_ending),
        };
        let result = work(&mut root);
        self.entries = root.entries;
        Ok(result)
    }

    fn components(&self) -> impl Iterator<Item = &Component> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Component(c) => Some(c),
            _ => None,
        })
    }
}

fn write_entries(entries: &[Entry], out: &mut String) {
    for entry in entries {
        match entry {
            Entry::Property(line) => out.push_str(line.raw()),
            Entry::Blank(raw) => out.push_str(raw),
            Entry::Component(c) => {
                out.push_str(c.begin.raw());
                write_entries(&c.entries, out);
                out.push_str(c.end.raw());
            }
        }
    }
}

impl Component {
    pub fn properties(&self) -> impl Iterator<Item = &ContentLine> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Property(p) => Some(p),
            _ => None,
        })
    }

    /// The first property called `name` (upper case).
    pub fn property(&self, name: &str) -> Option<&ContentLine> {
        self.properties().find(|p| p.name() == name)
    }

    /// The VEVENT that stands for the resource: the recurring master (the one without
    /// RECURRENCE-ID), else the first event (a resource holding only exceptions).
    pub fn master_event(&self) -> Option<&Component> {
        let mut events = self.components().filter(|c| c.name == "VEVENT").peekable();
        let first = *events.peek()?;
        Some(
            events
                .find(|e| e.property("RECURRENCE-ID").is_none())
                .unwrap_or(first),
        )
    }

    pub fn components(&self) -> impl Iterator<Item = &Component> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Component(c) => Some(c),
            _ => None,
        })
    }

    pub fn components_mut(&mut self) -> impl Iterator<Item = &mut Component> {
        self.entries.iter_mut().filter_map(|e| match e {
            Entry::Component(c) => Some(c),
            _ => None,
        })
    }

    /// The first `name` property, for replacement in place.
    fn property_slot(&mut self, name: &str) -> Option<&mut ContentLine> {
        self.entries.iter_mut().find_map(|e| match e {
            Entry::Property(p) if p.name() == name => Some(p),
            _ => None,
        })
    }

    /// Sets the first `name` property to `line`, or inserts `line` after the last property when
    /// there is none. Returns whether the meaning changed: an existing property that says the
    /// same as `line` in another spelling ([`same_meaning`]) keeps its bytes.
    pub fn set_property(&mut self, name: &str, line: ContentLine) -> bool {
        match self.property_slot(name) {
            Some(existing) if same_meaning(existing, &line) => false,
            Some(existing) => {
                *existing = line;
                true
            }
            None => {
                self.insert_property(line);
                true
            }
        }
    }

    /// Inserts a property after the last existing property (before sub-components such as VALARM).
    pub fn insert_property(&mut self, line: ContentLine) {
        let at = self
            .entries
            .iter()
            .rposition(|e| matches!(e, Entry::Property(_)))
            .map_or(0, |i| i + 1);
        self.entries.insert(at, Entry::Property(line));
    }

    /// Applies `edit` to every property: [`Edit::Keep`] it, or [`Edit::Replace`] it by zero or
    /// more lines, which take its place (zero lines remove it). Returns whether the meaning
    /// changed: a property replaced by one line that says the same ([`same_meaning`]) keeps its
    /// bytes and does not count as a change.
    pub fn edit_properties(&mut self, mut edit: impl FnMut(&ContentLine) -> Edit) -> bool {
        let mut changed = false;
        let old = std::mem::take(&mut self.entries);
        for entry in old {
            match entry {
                Entry::Property(p) => match edit(&p) {
                    Edit::Keep => self.entries.push(Entry::Property(p)),
                    Edit::Replace(lines) => {
                        let same = lines.len() == 1 && same_meaning(&lines[0], &p);
                        if same {
                            self.entries.push(Entry::Property(p));
                        } else {
                            changed = true;
                            self.entries.extend(lines.into_iter().map(Entry::Property));
                        }
                    }
                },
                other => self.entries.push(other),
            }
        }
        changed
    }
}

/// What [`Component::edit_properties`] does with one property.
pub enum Edit {
    Keep,
    /// Replace by these lines (none removes the property).
    Replace(Vec<ContentLine>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_never_splits_utf8_and_respects_75_octets() {
        let value = "é".repeat(100);
        let folded = fold(&format!("SUMMARY:{value}"), "\r\n");
        for physical in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(physical.len() <= 75, "{} octets", physical.len());
        }
        let unfolded = folded.replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{value}\r\n"));
    }

    #[test]
    fn round_trip_keeps_odd_bytes() {
        let input = "\u{feff}BEGIN:VCALENDAR\nX-A;P=\"a:b\";Q=c:v:w\r\nSUMMARY:long\r\n  folded\n\nEND:VCALENDAR  \n  \n";
        let doc = Document::parse(input).unwrap();
        assert_eq!(doc.serialize(), input);
        let cal = doc.calendar().unwrap();
        let x = cal.property("X-A").unwrap();
        assert_eq!(x.param("p"), Some("a:b"));
        assert_eq!(x.value(), "v:w");
        assert_eq!(cal.property("SUMMARY").unwrap().value(), "long folded");
    }

    #[test]
    fn structural_errors_name_the_line() {
        let err = Document::parse("BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VCALENDAR\n").unwrap_err();
        assert_eq!(
            err,
            IcalError::MismatchedEnd {
                line: 3,
                found: "VCALENDAR".into(),
                expected: "VEVENT".into(),
                opened: 2
            }
        );
        let err = Document::parse("BEGIN:VCALENDAR\nBEGIN:VEVENT\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: BEGIN:VEVENT is never closed: END:VEVENT is missing"
        );
        assert_eq!(
            Document::parse(" x\n").unwrap_err(),
            IcalError::OrphanContinuation { line: 1 }
        );
        assert!(matches!(
            Document::parse("BEGIN:VCALENDAR\nno colon\nEND:VCALENDAR\n"),
            Err(IcalError::NotAContentLine { line: 2, .. })
        ));
    }
}
