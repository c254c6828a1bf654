//! Making text from peers safe to print on a terminal. Pure string functions.
//!
//! Everything a peer controls (message bodies, hello `name`, mDNS instance,
//! TXT `nick` and host names, `error` messages) goes through here before it
//! reaches a terminal, in the chat screen and in the human-readable output of
//! `listen` and `peers`. A character that would not show as itself becomes a
//! visible escape, so a peer can never move the cursor, clear the screen, set
//! the title, write the clipboard (OSC 52), ring the bell, reorder what the
//! user sees, or hide text:
//!
//! | what | shown as |
//! |---|---|
//! | C0 controls (ESC, BEL, CR, …) except newline and tab in bodies | `^[`, `^G`, `^M` … |
//! | DEL | `^?` |
//! | C1 controls (U+0080..U+009F, e.g. CSI U+009B) | `\u{9b}` |
//! | bidi controls: embeddings and overrides U+202A..U+202E, isolates U+2066..U+2069, marks U+200E, U+200F, U+061C | `\u{202e}` … |
//! | invisible characters: zero-width space U+200B, word joiner and invisible operators U+2060..U+206F, BOM U+FEFF, soft hyphen U+00AD, U+034F, U+115F, U+1160, U+17B4, U+17B5, U+180E, U+3164, U+FFA0, U+FFF0..U+FFFB, U+1BCA0..U+1BCA3, U+1D173..U+1D17A, U+E0000..U+E0FFF, line and paragraph separators U+2028, U+2029 | `\u{200b}` … |
//!
//! Some invisible characters are needed to write real text, so they are kept
//! where real text puts them and escaped anywhere else:
//!
//! - zero-width joiner and non-joiner (U+200D, U+200C): kept between two
//!   non-ASCII characters (emoji sequences such as 👩‍💻, Persian, Indic
//!   scripts); escaped next to ASCII or at either end, so `ali\u{200b}ce` or
//!   `alice\u{200d}` cannot pass for `alice`;
//! - variation selectors (U+FE00..U+FE0F, U+E0100..U+E01EF, Mongolian
//!   U+180B..U+180D, U+180F): one kept directly after a visible character
//!   (❤️, 1️⃣); any more are escaped, so nothing can be smuggled in a run of them;
//! - tag characters (U+E0020..U+E007F): up to [`MAX_FLAG_TAGS`] kept right
//!   after 🏴 (subdivision flags such as 🏴󠁧󠁢󠁳󠁣󠁴󠁿); anywhere else escaped;
//! - combining marks: up to [`MAX_MARKS`] on one character (enough for
//!   Vietnamese, Thai, Hebrew points, Indic clusters); more are escaped, so a
//!   "zalgo" flood cannot pile hundreds of marks over other lines.
//!
//! On the chat screen, [`plain_clusters`] also leaves out the parts of
//! emoji sequences that terminals draw in different widths (skin tones,
//! joiners after an emoji, variation selectors, tags), so that what ratatui
//! counts is what the terminal draws; `listen` and `peers` print them.
//!
//! Names are also cut to one line, trimmed, given a placeholder when nothing
//! is left ([`NO_NAME`]), and cut to [`MAX_NAME_WIDTH`] cells in headless
//! output ([`short_name`]). Escaping is idempotent: an escaped string is
//! plain ASCII where anything was escaped, so escaping it again changes nothing.

use std::borrow::Cow;
use std::fmt::Write;

use unicode_width::UnicodeWidthChar;

/// Combining marks kept on one character; the rest are escaped.
pub const MAX_MARKS: usize = 4;

/// Tag characters kept after 🏴 (the longest flag, 🏴󠁧󠁢󠁳󠁣󠁴󠁿, has 6).
pub const MAX_FLAG_TAGS: usize = 7;

/// Longest name in headless output, in terminal cells.
pub const MAX_NAME_WIDTH: usize = 64;

/// What is shown for a name that is empty or only whitespace.
pub const NO_NAME: &str = "(no name)";

/// Characters of a name looked at; a longer name is cut (with `…`) before
/// anything else, so a name of a megabyte costs no more to show than a short one.
pub const MAX_NAME_CHARS: usize = 256;

/// Returns `text` with every unsafe character replaced by a visible escape
/// (see the module docs). `keep_newlines` keeps `\n` and `\t` (message
/// bodies); names get them escaped too.
pub fn escape_for_terminal(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    // Fast path: printable ASCII is always safe.
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || (keep_newlines && (b == b'\n' || b == b'\t')))
    {
        return Cow::Borrowed(text);
    }
    // Built only from the first escape on: safe text is returned as it is.
    let mut out: Option<String> = None;
    let mut state = State::default();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        match state.show(c, next, keep_newlines) {
            None => {
                if let Some(out) = &mut out {
                    out.push(c);
                }
            }
            Some(escaped) => out
                .get_or_insert_with(|| {
                    let mut out = String::with_capacity(text.len() + 16);
                    out.push_str(&text[..i]);
                    out
                })
                .push_str(&escaped),
        }
    }
    out.map_or(Cow::Borrowed(text), Cow::Owned)
}

/// What the characters before the current one allow.
#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// The last character written is non-ASCII and shown as itself.
    non_ascii: bool,
    /// Zero-width marks on the current character so far.
    marks: usize,
    /// A variation selector may follow (right after a visible character).
    vs_ok: bool,
    /// Tag characters written after a 🏴, while in such a run.
    flag_tags: Option<usize>,
}

impl State {
    /// Decides how `c` shows, followed by `next`: `None` as itself, or its
    /// escape; and moves on past it.
    fn show(&mut self, c: char, next: Option<char>, keep_newlines: bool) -> Option<String> {
        // Most text is mostly printable ASCII: no lookups for it.
        if matches!(c, ' '..='~') {
            *self = State {
                vs_ok: true,
                ..State::default()
            };
            return None;
        }
        if let Some(escaped) = escape_char(c, keep_newlines) {
            // What follows an escape follows visible ASCII.
            *self = State::default();
            return Some(escaped);
        }
        let keep = match c {
            '\n' | '\t' => {
                *self = State::default();
                return None;
            }
            '\u{200c}' | '\u{200d}' => {
                self.vs_ok = false;
                self.flag_tags = None;
                self.non_ascii
                    && next.is_some_and(|n| {
                        !n.is_ascii()
                            && n.width().unwrap_or(0) > 0
                            && escape_char(n, true).is_none()
                    })
            }
            c if is_variation_selector(c) => {
                self.flag_tags = None;
                std::mem::replace(&mut self.vs_ok, false)
            }
            '\u{e0020}'..='\u{e007f}' => match self.flag_tags {
                Some(n) if n < MAX_FLAG_TAGS => {
                    self.flag_tags = Some(n + 1);
                    true
                }
                _ => false,
            },
            c if c.width().unwrap_or(0) == 0 => {
                self.marks += 1;
                self.vs_ok = false;
                self.flag_tags = None;
                self.marks <= MAX_MARKS
            }
            c => {
                *self = State {
                    non_ascii: !c.is_ascii(),
                    marks: 0,
                    vs_ok: true,
                    flag_tags: (c == '\u{1f3f4}').then_some(0),
                };
                return None;
            }
        };
        if keep {
            self.non_ascii = !c.is_ascii();
            return None;
        }
        // Escaped: visible ASCII now, but the marks on this character still count.
        *self = State {
            marks: self.marks,
            ..State::default()
        };
        let mut out = String::new();
        push_hex(&mut out, c);
        Some(out)
    }
}

/// `s` with the parts of emoji sequences that terminals disagree about left
/// out, so that every cluster drawn takes the same cells in ratatui's
/// buffer and on the screen (tmux 3.3 draws 👍🏽 in four cells and ❤️ in one,
/// where Unicode says two; the difference spilled onto later rows):
///
/// - variation selectors U+FE0E and U+FE0F (❤️ is drawn ❤);
/// - a skin-tone modifier (U+1F3FB..U+1F3FF) or a zero-width joiner right
///   after an emoji: 👍🏽 is drawn 👍, 👨‍👩‍👧 is drawn 👨👩👧 (a joiner in
///   other scripts stays);
/// - tag characters (U+E0020..U+E007F): 🏴󠁧󠁢󠁳󠁣󠁴󠁿 is drawn 🏴.
///
/// Flags (two regional indicators) stay: two cells everywhere. Only the
/// drawing changes; the text kept and sent is the text typed.
pub fn plain_clusters(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return Cow::Borrowed(s);
    }
    let mut prev = None;
    let mut out: Option<String> = None;
    for (i, c) in s.char_indices() {
        if left_out_of_cells(c, prev) {
            out.get_or_insert_with(|| s[..i].to_owned());
            continue;
        }
        if let Some(out) = &mut out {
            out.push(c);
        }
        prev = Some(c);
    }
    out.map_or(Cow::Borrowed(s), Cow::Owned)
}

/// Whether [`plain_clusters`] leaves `c` out when it follows `prev` (the
/// last character kept). The input editor asks char by char.
pub fn left_out_of_cells(c: char, prev: Option<char>) -> bool {
    let after_emoji = prev.is_some_and(is_emoji);
    match c {
        '\u{fe0e}' | '\u{fe0f}' | '\u{e0020}'..='\u{e007f}' => true,
        '\u{200d}' | '\u{1f3fb}'..='\u{1f3ff}' => after_emoji,
        _ => false,
    }
}

/// Emoji blocks, roughly: what a skin tone or a joiner may follow.
fn is_emoji(c: char) -> bool {
    matches!(c, '\u{2300}'..='\u{23ff}' | '\u{2600}'..='\u{27bf}'
        | '\u{2b00}'..='\u{2bff}' | '\u{1f000}'..='\u{1faff}')
}

/// The visible escape for `c` if it is unsafe whatever surrounds it, or
/// `None`. Context-free: joiners, variation selectors, tags and marks are
/// left to [`escape_for_terminal`], which knows their neighbours. Used alone
/// by the input editor, which handles one character at a time.
pub fn escape_char(c: char, keep_newlines: bool) -> Option<String> {
    if !is_unsafe(c, keep_newlines) {
        return None;
    }
    let mut out = String::new();
    if (c as u32) < 0x20 {
        // ESC → ^[, BEL → ^G, ...: the notation terminals users know.
        out.push('^');
        out.push(char::from(b'@' + c as u8));
    } else if c == '\x7f' {
        out.push_str("^?");
    } else {
        push_hex(&mut out, c);
    }
    Some(out)
}

fn push_hex(out: &mut String, c: char) {
    let _ = write!(out, "\\u{{{:x}}}", c as u32);
}

/// Unsafe whatever its neighbours: controls, bidi controls, invisible characters.
fn is_unsafe(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_newlines,
        // C0, DEL, C1.
        '\0'..='\x1f' | '\x7f'..='\u{9f}' => true,
        // Bidi: embeddings, overrides, isolates, and the marks (Trojan Source).
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}' => {
            true
        }
        // Invisible (Unicode's default-ignorable code points, less the
        // joiners, variation selectors and tags handled in context), and the
        // line and paragraph separators some programs break lines at.
        '\u{ad}'
        | '\u{34f}'
        | '\u{115f}'
        | '\u{1160}'
        | '\u{17b4}'
        | '\u{17b5}'
        | '\u{180e}'
        | '\u{200b}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{2060}'..='\u{2065}'
        | '\u{206a}'..='\u{206f}'
        | '\u{3164}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{fff0}'..='\u{fffb}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e001f}'
        | '\u{e0080}'..='\u{e00ff}'
        | '\u{e01f0}'..='\u{e0fff}' => true,
        _ => false,
    }
}

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}' | '\u{180b}'..='\u{180d}' | '\u{180f}')
}

/// A peer-chosen name made fit to show on one line: trimmed, cut to
/// [`MAX_NAME_CHARS`], escaped (newlines and tabs too), and [`NO_NAME`] when
/// nothing is left. Callers cut it further to the room they have.
pub fn name(text: &str) -> Cow<'_, str> {
    let text = text.trim();
    let (head, cut) = first_chars(text, MAX_NAME_CHARS);
    match escape_for_terminal(head, false) {
        Cow::Borrowed("") => Cow::Borrowed(NO_NAME),
        shown if !cut => shown,
        shown => Cow::Owned(format!("{shown}…")),
    }
}

/// [`name`], cut to [`MAX_NAME_WIDTH`] cells with `…` when longer: for
/// headless output, where nothing else limits a line.
pub fn short_name(text: &str) -> String {
    truncate(&name(text), MAX_NAME_WIDTH)
}

/// Any other peer-supplied text (an error message, a close reason) as one
/// escaped line of at most `max_width` cells, ending in `…` when cut.
pub fn one_line(text: &str, max_width: usize) -> String {
    // Only what can show is escaped. A cell holds at most a character, a
    // variation selector, a joiner and MAX_MARKS marks: 8 chars are plenty.
    let (head, cut) = first_chars(text, max_width.saturating_mul(8));
    cut_to(&escape_for_terminal(head, false), max_width, cut)
}

/// The first `n` chars of `s`, and whether anything was left out.
fn first_chars(s: &str, n: usize) -> (&str, bool) {
    match s.char_indices().nth(n) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

/// `s` cut to at most `max` cells (by `unicode-width`), ending in `…` when
/// something was cut. Zero-width characters stay with the one before them.
pub fn truncate(s: &str, max: usize) -> String {
    cut_to(s, max, false)
}

/// [`truncate`]; `more` says something was already left out, so `…` is due anyway.
fn cut_to(s: &str, max: usize, more: bool) -> String {
    use unicode_width::UnicodeWidthStr;
    if !more && s.width() <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max.saturating_sub(1) {
            break;
        }
        used += w;
        out.push(c);
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// Serialized JSON made safe for a terminal without changing what it means:
/// every character that [`escape_char`] would escape (DEL, C1, bidi,
/// invisible) is written as a JSON `\uXXXX` escape, which every JSON parser
/// reads back as the same character. `serde_json` already escapes C0.
/// Such characters only ever occur inside strings in serialized JSON, so
/// replacing them anywhere is safe.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    // Fast path: ASCII below DEL (serde_json has escaped C0 already).
    let unsafe_char = |c: char| c >= '\x7f' && escape_char(c, true).is_some();
    if json.bytes().all(|b| b < 0x7f) || !json.chars().any(unsafe_char) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_char(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        escape_for_terminal(s, true).into_owned()
    }

    #[test]
    fn plain_text_is_borrowed() {
        for s in [
            "hello",
            "héllo 世界 👋",
            "👩‍💻 ❤️ 1️⃣ 🏴󠁧󠁢󠁳󠁣󠁴󠁿 👋🏽",
            "می‌خواهم",
            "क्‍ष",
            "Tiếng Việt",
            "e\u{301}\u{302}\u{303}\u{304}",
        ] {
            assert!(
                matches!(escape_for_terminal(s, true), Cow::Borrowed(_)),
                "{s:?} became {:?}",
                escape_for_terminal(s, true)
            );
        }
    }

    #[test]
    fn escapes_are_made_visible() {
        let osc52 = "\x1b]52;c;aGk=\x07 hi";
        assert_eq!(escape_for_terminal(osc52, true), "^[]52;c;aGk=^G hi");
        assert_eq!(escape_for_terminal("a\u{9b}b\x7f", true), "a\\u{9b}b^?");
        assert_eq!(escape_for_terminal("x\u{202e}y", true), "x\\u{202e}y");
        assert_eq!(escape_for_terminal("a\nb\tc\r", true), "a\nb\tc^M");
        assert_eq!(escape_for_terminal("a\nb", false), "a^Jb");
        assert_eq!(esc("\x1b]0;title\x07"), "^[]0;title^G");
        assert_eq!(esc("\x07\x07\x07"), "^G^G^G");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}',
        ] {
            let s = format!("a{c}b");
            assert_eq!(esc(&s), format!("a\\u{{{:x}}}b", c as u32));
        }
        // Trojan Source in Arabic text too: the override goes, the letters stay.
        assert_eq!(esc("سلام\u{202e}"), "سلام\\u{202e}");
    }

    #[test]
    fn invisible_characters_are_escaped() {
        for c in [
            '\u{200b}',
            '\u{2060}',
            '\u{2061}',
            '\u{2064}',
            '\u{feff}',
            '\u{ad}',
            '\u{180e}',
            '\u{3164}',
            '\u{115f}',
            '\u{ffa0}',
            '\u{2028}',
            '\u{2029}',
            '\u{e0001}',
        ] {
            let s = format!("ali{c}ce");
            assert_eq!(esc(&s), format!("ali\\u{{{:x}}}ce", c as u32), "{c:?}");
        }
    }

    #[test]
    fn joiners_are_kept_only_between_non_ascii() {
        // Emoji sequence and scripts that need them: kept (plain_text_is_borrowed).
        // Next to ASCII or at an end: escaped.
        assert_eq!(esc("ali\u{200d}ce"), "ali\\u{200d}ce");
        assert_eq!(esc("ali\u{200c}ce"), "ali\\u{200c}ce");
        assert_eq!(esc("alice\u{200d}"), "alice\\u{200d}");
        assert_eq!(esc("\u{200c}é"), "\\u{200c}é");
        assert_eq!(esc("é\u{200c}"), "é\\u{200c}");
        assert_eq!(esc("👩\u{200d}\u{200d}💻"), "👩\\u{200d}\\u{200d}💻");
        assert_eq!(esc("👩\u{200d}\x1b"), "👩\\u{200d}^[");
    }

    #[test]
    fn one_variation_selector_per_character() {
        assert_eq!(esc("❤\u{fe0f}"), "❤\u{fe0f}");
        assert_eq!(esc("a\u{fe0f}"), "a\u{fe0f}");
        assert_eq!(
            esc("😀\u{fe0f}\u{fe01}\u{e0100}"),
            "😀\u{fe0f}\\u{fe01}\\u{e0100}"
        );
        assert_eq!(esc("\u{fe0f}x"), "\\u{fe0f}x");
        assert_eq!(esc("\x1b\u{fe0f}"), "^[\\u{fe0f}");
    }

    #[test]
    fn tags_only_in_flags() {
        let scotland = "🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}";
        assert_eq!(esc(scotland), scotland);
        // "hi" smuggled in tags after ordinary text.
        assert_eq!(esc("ok\u{e0068}\u{e0069}"), "ok\\u{e0068}\\u{e0069}");
        // A flag carrying a long tag payload keeps only the first few.
        let long: String = std::iter::once('🏴')
            .chain(std::iter::repeat_n('\u{e0061}', 10))
            .collect();
        let out = esc(&long);
        assert_eq!(out.matches('\u{e0061}').count(), MAX_FLAG_TAGS);
        assert_eq!(out.matches("\\u{e0061}").count(), 10 - MAX_FLAG_TAGS);
    }

    #[test]
    fn combining_floods_are_cut_to_a_few_marks() {
        let zalgo: String = std::iter::once('Z')
            .chain(std::iter::repeat_n('\u{301}', 100))
            .chain("ok".chars())
            .collect();
        let out = esc(&zalgo);
        assert!(out.starts_with(&format!("Z{}\\u{{301}}", "\u{301}".repeat(MAX_MARKS))));
        assert_eq!(out.matches('\u{301}').count(), MAX_MARKS);
        assert_eq!(out.matches("\\u{301}").count(), 100 - MAX_MARKS);
        assert!(out.ends_with("ok"));
        // Every base gets its own allowance.
        let ok = "a\u{301}\u{302}\u{303}\u{304}b\u{301}\u{302}\u{303}\u{304}";
        assert_eq!(esc(ok), ok);
    }

    #[test]
    fn escaping_is_idempotent() {
        let hostile = "\x1b]2;x\x07 a\u{200b}b \u{202e}c ali\u{200d}ce 😀\u{fe0f}\u{fe0f} Z\u{301}\u{301}\u{301}\u{301}\u{301}\u{301} ok\u{e0068}";
        let once = esc(hostile);
        assert_eq!(esc(&once), once);
        assert!(once.is_ascii() || once.chars().all(|c| escape_char(c, true).is_none()));
    }

    #[test]
    fn names_are_one_line_trimmed_and_never_empty() {
        assert_eq!(name("alice"), "alice");
        assert!(matches!(name("alice"), Cow::Borrowed(_)));
        assert_eq!(name("  alice \n"), "alice");
        assert_eq!(name("a\nb"), "a^Jb");
        assert_eq!(name(""), NO_NAME);
        assert_eq!(name(" \t\n "), NO_NAME);
        assert_eq!(name("\u{200b}"), "\\u{200b}");
        let long = "x".repeat(10_000);
        let short = short_name(&long);
        assert_eq!(short, format!("{}…", "x".repeat(MAX_NAME_WIDTH - 1)));
        assert_eq!(short_name("世界".repeat(100).as_str()).chars().count(), 32);
    }

    #[test]
    fn huge_names_and_reasons_cost_little_and_say_they_were_cut() {
        let huge = "\x1b".repeat(1 << 20);
        let shown = name(&huge);
        assert_eq!(shown.chars().count(), 2 * MAX_NAME_CHARS + 1, "{shown}");
        assert!(shown.starts_with("^[^[") && shown.ends_with('…'));
        let line = one_line(&format!("boom\n{}", "x".repeat(1 << 20)), 20);
        assert_eq!(line, format!("boom^J{}…", "x".repeat(13)));
        assert_eq!(one_line("short\x07", 20), "short^G");
        // Cut by cells: an escape of a char that fits is not lost to the cut.
        assert_eq!(one_line("ab\x1b", 4), "ab^[");
        assert_eq!(one_line("abc\x1b", 4), "abc…");
    }

    #[test]
    fn json_stays_faithful_and_loses_its_teeth() {
        let body = "\x1b]52;c;aGk=\x07 \u{9b}31m \x7f \u{202e}x \u{200b} \u{e0001} 👩‍💻";
        let json = serde_json::json!({ "body": body }).to_string();
        let safe = json_for_terminal(&json);
        assert!(
            safe.chars().all(|c| escape_char(c, true).is_none()),
            "{safe}"
        );
        assert!(
            safe.contains("\\u009b") && safe.contains("\\u202e") && safe.contains("\\udb40\\udc01")
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["body"], body);
        assert!(matches!(
            json_for_terminal("{\"a\":\"é\"}"),
            Cow::Borrowed(_)
        ));
    }
}
