//! Making text from peers safe to print on a terminal. Pure string functions.
//!
//! Control characters (C0 except newline and tab, DEL, C1) become visible
//! caret or `\u{..}` escapes, and bidirectional-override characters become
//! `\u{..}` escapes, so a peer can never move the cursor, set the title, write
//! the clipboard (OSC 52) or reorder what the user sees.

use std::borrow::Cow;
use std::fmt::Write;

/// Returns `text` with every unsafe character replaced by a visible escape.
/// `keep_newlines` keeps `\n` and `\t` (message bodies); names get them escaped too.
pub fn escape_for_terminal(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c, keep_newlines)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe(c, keep_newlines) {
            out.push(c);
        } else if (c as u32) < 0x20 {
            // ESC → ^[, BEL → ^G, ...: the notation terminals users know.
            out.push('^');
            out.push(char::from(b'@' + c as u8));
        } else if c == '\x7f' {
            out.push_str("^?");
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

fn is_unsafe(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_newlines,
        '\0'..='\x1f' | '\x7f'..='\u{9f}' => true,
        // Bidi embeddings, overrides and isolates (Trojan Source).
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            escape_for_terminal("héllo 世界 👋", true),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escapes_are_made_visible() {
        let osc52 = "\x1b]52;c;aGk=\x07 hi";
        assert_eq!(escape_for_terminal(osc52, true), "^[]52;c;aGk=^G hi");
        assert_eq!(escape_for_terminal("a\u{9b}b\x7f", true), "a\\u{9b}b^?");
        assert_eq!(escape_for_terminal("x\u{202e}y", true), "x\\u{202e}y");
        assert_eq!(escape_for_terminal("a\nb\tc\r", true), "a\nb\tc^M");
        assert_eq!(escape_for_terminal("a\nb", false), "a^Jb");
    }
}
