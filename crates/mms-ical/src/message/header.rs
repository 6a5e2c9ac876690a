//! The header block of an update, written and folded here because lettre cannot fold it.
//!
//! RFC 5322 §2.1.1 limits a line to 998 octets and asks for 78; §2.2.3 folds a field by putting
//! a line break before any whitespace. lettre 0.11 folds `Subject:` only at spaces that are
//! already in the text and writes a mailbox list on one line, so a `To:` of 60 attendees passes
//! 998 octets and a relay that enforces RFC 5321 §4.5.3.1.6 answers `500 Line too long`.
//!
//! Here a field is a sequence of *tokens*, atoms that never contain whitespace, separated by
//! folding white space: [`HeaderBlock::field`] puts them on lines of at most 78 octets, breaking
//! only between tokens. Every token is short by construction:
//!
//! - text that is not plain ASCII, or a word too long to fit a line, becomes RFC 2047 encoded
//!   words (`=?utf-8?b?...?=`) of at most [`ENCODED_WORD_TEXT_BYTES`] bytes of text each, split
//!   on character boundaries (§5: an encoded word holds whole characters);
//! - a display name is a run of atoms, a quoted string broken at its spaces, or encoded words;
//! - an address is one token; addresses are at most 254 octets (checked by the caller).
//!
//! So no line is ever longer than 78 octets, except one holding a single long address, which
//! stays far below 998.

use base64::Engine;

/// Where lines are folded (RFC 5322 §2.1.1 "SHOULD be no more than 78 characters").
pub const TARGET_LINE: usize = 78;

/// Text bytes per encoded word: 39 bytes are 52 base64 characters, so a word with its
/// `=?utf-8?b?` and `?=` is 64 characters and fits a line after `Subject: ` (RFC 2047 §2 allows 75).
pub const ENCODED_WORD_TEXT_BYTES: usize = 39;

/// The longest word of plain text written as it is; longer ones are encoded so they can be split.
const MAX_PLAIN_WORD: usize = TARGET_LINE - 10;

/// A header block under construction: fields in order, CRLF line ends.
#[derive(Debug, Default)]
pub struct HeaderBlock {
    out: String,
}

impl HeaderBlock {
    pub fn with_capacity(bytes: usize) -> HeaderBlock {
        HeaderBlock {
            out: String::with_capacity(bytes),
        }
    }

    /// Writes `name: token token ...`, folded before a token that would pass [`TARGET_LINE`].
    /// Tokens must not contain whitespace or line breaks.
    pub fn field<T: AsRef<str>>(&mut self, name: &str, tokens: impl IntoIterator<Item = T>) {
        self.out.push_str(name);
        self.out.push(':');
        let mut line_len = name.len() + 1;
        let mut tokens_on_line = 0;
        for token in tokens {
            let token = token.as_ref();
            debug_assert!(!token.is_empty() && !token.contains([' ', '\t', '\r', '\n']));
            if tokens_on_line > 0 && line_len + 1 + token.len() > TARGET_LINE {
                self.out.push_str("\r\n");
                line_len = 0;
                tokens_on_line = 0;
            }
            self.out.push(' ');
            self.out.push_str(token);
            line_len += 1 + token.len();
            tokens_on_line += 1;
        }
        self.out.push_str("\r\n");
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

/// Tokens of unstructured text (`Subject:`, RFC 5322 §3.2.5 / RFC 2047 §5(1)).
///
/// Plain ASCII words stay readable; each run of words that cannot be written as they are
/// (non-ASCII, control characters, longer than a line, or looking like an encoded word) is
/// encoded whole, so the spaces inside the run survive decoding (white space between two
/// encoded words is dropped by decoders, RFC 2047 §6.2). Whitespace is collapsed to single
/// spaces: a header has no other use for it.
pub fn unstructured(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for word in text.split_whitespace() {
        if is_plain_word(word) {
            flush_encoded(&mut run, &mut tokens);
            tokens.push(word.to_string());
        } else {
            run.push(word);
        }
    }
    flush_encoded(&mut run, &mut tokens);
    tokens
}

fn flush_encoded(run: &mut Vec<&str>, tokens: &mut Vec<String>) {
    if !run.is_empty() {
        tokens.extend(encoded_words(&run.join(" ")));
        run.clear();
    }
}

/// A word written as it is in unstructured text: printable ASCII, short enough, and not
/// something a decoder would take for an encoded word.
fn is_plain_word(word: &str) -> bool {
    word.len() <= MAX_PLAIN_WORD
        && word.bytes().all(|b| b.is_ascii_graphic())
        && !word.contains("=?")
}

/// Tokens of a display name (a `phrase`, RFC 5322 §3.2.5).
///
/// Atoms when every word is one (`Joni Sherman`); a quoted string broken at its spaces when the
/// name is printable ASCII with specials (`"Sherman, Joni"`: the comma would otherwise end the
/// mailbox); encoded words otherwise (`Søren`, `山田`, or a word too long for a line).
pub fn phrase(name: &str) -> Vec<String> {
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.is_empty() {
        return Vec::new();
    }
    let short = words.iter().all(|w| w.len() <= MAX_PLAIN_WORD);
    if short && words.iter().all(|w| w.bytes().all(is_atext)) && !name.contains("=?") {
        return words.into_iter().map(str::to_string).collect();
    }
    if short
        && words
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_graphic()))
    {
        let last = words.len() - 1;
        return words
            .iter()
            .enumerate()
            .map(|(i, word)| {
                let escaped = word.replace('\\', "\\\\").replace('"', "\\\"");
                match (i == 0, i == last) {
                    (true, true) => format!("\"{escaped}\""),
                    (true, false) => format!("\"{escaped}"),
                    (false, true) => format!("{escaped}\""),
                    (false, false) => escaped,
                }
            })
            .collect();
    }
    encoded_words(&words.join(" "))
}

/// `atext` of RFC 5322 §3.2.3: what an atom may hold.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// `text` as RFC 2047 "B" encoded words, each holding whole characters and at most
/// [`ENCODED_WORD_TEXT_BYTES`] bytes of UTF-8.
pub fn encoded_words(text: &str) -> Vec<String> {
    let mut words = Vec::with_capacity(text.len() / ENCODED_WORD_TEXT_BYTES + 1);
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            if i + c.len_utf8() > ENCODED_WORD_TEXT_BYTES {
                break;
            }
            end = i + c.len_utf8();
        }
        // A character longer than the budget cannot happen (UTF-8 is at most 4 bytes), but a
        // word must always make progress.
        let end = end.max(rest.chars().next().map_or(rest.len(), char::len_utf8));
        let (chunk, tail) = rest.split_at(end);
        words.push(format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(chunk)
        ));
        rest = tail;
    }
    words
}

/// Tokens of one mailbox (`name <address>` or `address`), for [`mailbox_list`].
pub fn mailbox(name: Option<&str>, address: &str) -> Vec<String> {
    let mut tokens = name.map(phrase).unwrap_or_default();
    if tokens.is_empty() {
        tokens.push(address.to_string());
    } else {
        tokens.push(format!("<{address}>"));
    }
    tokens
}

/// Tokens of a mailbox list (`To:`): the mailboxes' tokens, a comma after each but the last.
pub fn mailbox_list<'a>(
    mailboxes: impl IntoIterator<Item = (Option<&'a str>, &'a str)>,
) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    for (name, address) in mailboxes {
        if let Some(last) = tokens.last_mut() {
            last.push(',');
        }
        tokens.extend(mailbox(name, address));
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_word(word: &str) -> String {
        let inner = word
            .strip_prefix("=?utf-8?b?")
            .and_then(|w| w.strip_suffix("?="))
            .expect("an encoded word");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(inner)
                .unwrap(),
        )
        .expect("whole characters in every word")
    }

    fn block(name: &str, tokens: Vec<String>) -> String {
        let mut block = HeaderBlock::default();
        block.field(name, tokens);
        String::from_utf8(block.into_bytes()).unwrap()
    }

    #[test]
    fn a_long_list_folds_between_mailboxes_at_78() {
        let list: Vec<(Option<&str>, String)> = (0..300)
            .map(|i| (None, format!("attendee{i:04}@fabrikam.example")))
            .collect();
        let text = block(
            "To",
            mailbox_list(list.iter().map(|(n, a)| (*n, a.as_str()))),
        );
        assert!(text.ends_with("\r\n"));
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= TARGET_LINE, "{line:?}");
        }
        let unfolded = text.replace("\r\n ", " ");
        assert_eq!(unfolded.matches('@').count(), 300);
        assert!(unfolded.starts_with("To: attendee0000@fabrikam.example, attendee0001@"));
    }

    #[test]
    fn a_subject_with_no_spaces_becomes_encoded_words_split_on_characters() {
        let subject = "予算会議".repeat(100) + &"x".repeat(500);
        let tokens = unstructured(&subject);
        assert!(tokens.len() > 10);
        let decoded: String = tokens.iter().map(|t| decode_word(t)).collect();
        assert_eq!(decoded, subject);
        let text = block("Subject", tokens);
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= TARGET_LINE, "{line:?}");
        }
    }

    #[test]
    fn plain_words_stay_readable_and_runs_keep_their_spaces() {
        let tokens = unstructured("Weekly sync: Budget\u{a0}review für Q3  ok");
        // "für" is not ASCII, and neither is the no-break space: each run is encoded whole.
        assert_eq!(tokens[0], "Weekly");
        assert_eq!(tokens[1], "sync:");
        let encoded: Vec<&String> = tokens.iter().filter(|t| t.starts_with("=?")).collect();
        let decoded: Vec<String> = encoded.iter().map(|t| decode_word(t)).collect();
        assert!(
            decoded.contains(&"Budget\u{a0}review".to_string()),
            "{decoded:?}"
        );
        assert!(decoded.contains(&"für".to_string()), "{decoded:?}");
        assert_eq!(tokens.last().unwrap(), "ok");
        // Something that looks like an encoded word is itself encoded, so it reads back as typed.
        let tricky = unstructured("=?utf-8?q?x?=");
        assert_eq!(decode_word(&tricky[0]), "=?utf-8?q?x?=");
    }

    #[test]
    fn display_names_are_atoms_quoted_or_encoded() {
        assert_eq!(phrase("Joni  Sherman"), vec!["Joni", "Sherman"]);
        assert_eq!(phrase("Sherman, Joni"), vec!["\"Sherman,", "Joni\""]);
        assert_eq!(phrase("say \"hi\""), vec!["\"say", "\\\"hi\\\"\""]);
        let encoded = phrase("Søren Ærø");
        assert_eq!(
            encoded.iter().map(|w| decode_word(w)).collect::<String>(),
            "Søren Ærø"
        );
        assert!(phrase("  ").is_empty());
        assert_eq!(
            mailbox(Some("Søren"), "soren@fabrikam.dk").last().unwrap(),
            "<soren@fabrikam.dk>"
        );
        assert_eq!(mailbox(Some(""), "a@b.c"), vec!["a@b.c"]);
    }

    #[test]
    fn a_field_never_folds_before_its_first_token() {
        let long = format!("{}@example.com", "a".repeat(90));
        let text = block("To", mailbox_list([(None, long.as_str())]));
        assert_eq!(text, format!("To: {long}\r\n"));
    }
}
