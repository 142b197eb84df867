//! Text that came from a request, made safe for a log line: every input-derived field goes
//! through [`escaped`] before it is logged, so a brief id with a newline cannot forge a second
//! record and a 6 MiB field cannot flood the journal.

use std::fmt;

/// Most characters of one input-derived field that reach a log line; the rest is cut and its
/// size said. Enough for any legitimate id (128 characters), topic prefix or error message.
pub(crate) const MAX_LOGGED_CHARS: usize = 200;

/// An input-derived text as it is logged: see [`escaped`].
#[derive(Clone, Copy)]
pub struct Escaped<'a>(&'a str);

/// `text` with control characters, line and paragraph separators, bidirectional overrides and
/// Unicode non-characters written as escapes (`\n`, `\u{202e}`), and cut after
/// [`MAX_LOGGED_CHARS`] characters with the number of bytes left out.
pub fn escaped(text: &str) -> Escaped<'_> {
    Escaped(text)
}

impl Escaped<'_> {
    /// The escaped, truncated text as an owned string (for structured journal fields).
    pub(crate) fn to_field(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (written, (index, character)) in self.0.char_indices().enumerate() {
            if written == MAX_LOGGED_CHARS {
                return write!(formatter, "…[{} more bytes]", self.0.len() - index);
            }
            match character {
                '\\' => formatter.write_str("\\\\")?,
                '\n' => formatter.write_str("\\n")?,
                '\r' => formatter.write_str("\\r")?,
                '\t' => formatter.write_str("\\t")?,
                character if needs_escape(character) => {
                    write!(formatter, "\\u{{{:x}}}", u32::from(character))?
                }
                character => fmt::Write::write_char(formatter, character)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "\"{self}\"")
    }
}

/// Characters that could break a line, reorder what a terminal shows, or upset a log reader.
fn needs_escape(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
        || crate::serve::route::is_non_character(character)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_controls_are_escaped_so_one_field_stays_on_one_line() {
        let logged = escaped("k-1\nINFO packd: forged\r\u{1}\u{202e}\u{ffff}\\").to_string();
        assert_eq!(
            logged,
            "k-1\\nINFO packd: forged\\r\\u{1}\\u{202e}\\u{ffff}\\\\"
        );
        assert!(!logged.contains(['\n', '\r']));
    }

    #[test]
    fn long_fields_are_cut_and_the_rest_counted() {
        let long = format!("{}{}", "é".repeat(MAX_LOGGED_CHARS), "x".repeat(10_000));
        let logged = escaped(&long).to_string();
        assert!(logged.starts_with(&"é".repeat(MAX_LOGGED_CHARS)));
        assert!(logged.ends_with("…[10000 more bytes]"), "{logged}");
        assert_eq!(escaped("short").to_string(), "short");
        assert_eq!(
            escaped(&"a".repeat(MAX_LOGGED_CHARS)).to_string().len(),
            MAX_LOGGED_CHARS
        );
    }
}
