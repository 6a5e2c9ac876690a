//! TEXT values (RFC 5545 3.3.11): escaping, and unescaping with a map back to the raw bytes.
//!
//! The map is what lets the rewriter replace a block found in the unescaped text while every
//! byte of the escaped value outside the block stays as the organizer's client wrote it (an
//! unnecessary `\:` or a `\N` is not normalised away).

/// An unescaped TEXT value and, for every byte of it, the offset of its source in the raw value.
pub struct Unescaped {
    pub text: String,
    /// `raw_offset[i]` is where unescaped byte `i` came from; one extra entry for the end.
    raw_offset: Vec<usize>,
}

impl Unescaped {
    /// Unescapes `raw`; an unknown escape (`\x`) or a trailing backslash is kept as written.
    pub fn new(raw: &str) -> Unescaped {
        let mut text = String::with_capacity(raw.len());
        let mut raw_offset = Vec::with_capacity(raw.len() + 1);
        let mut chars = raw.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let produced = match (c, chars.peek()) {
                ('\\', Some(&(_, next))) if matches!(next, 'n' | 'N' | '\\' | ';' | ',') => {
                    chars.next();
                    if next.eq_ignore_ascii_case(&'n') {
                        '\n'
                    } else {
                        next
                    }
                }
                _ => c,
            };
            let before = text.len();
            text.push(produced);
            raw_offset.extend(std::iter::repeat_n(i, text.len() - before));
        }
        raw_offset.push(raw.len());
        Unescaped { text, raw_offset }
    }

    /// The raw byte range that produced unescaped range `start..end`.
    pub fn raw_range(&self, start: usize, end: usize) -> std::ops::Range<usize> {
        self.raw_offset[start]..self.raw_offset[end]
    }
}

/// Escapes text for a TEXT value: backslash, `;`, `,` and newlines (CR dropped, LF as `\n`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Unescapes a TEXT value.
pub fn unescape(raw: &str) -> String {
    Unescaped::new(raw).text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_points_back_at_raw_bytes() {
        let raw = r"a\,b\nçd\x";
        let u = Unescaped::new(raw);
        assert_eq!(u.text, "a,b\nçd\\x");
        let at = u.text.find('ç').unwrap();
        assert_eq!(&raw[u.raw_range(at, at + 'ç'.len_utf8())], "ç");
        assert_eq!(&raw[u.raw_range(1, 4)], r"\,b\n");
    }

    #[test]
    fn escape_then_unescape_is_identity_without_cr() {
        let text = "x;y,z\\w\nnext";
        assert_eq!(unescape(&escape(text)), text);
    }
}
