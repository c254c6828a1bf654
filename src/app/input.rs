//! The input line editor: a multi-line string and a cursor, with readline
//! editing. Pure string handling; drawing asks [`Input::layout`] where each
//! row and the cursor go at a given width.
//!
//! The text may hold `'\n'` (Alt+Enter). "Line" below always means a piece
//! between newlines; "row" means a screen row after wrapping.
//!
//! How chars are shown (the same rule for [`InputLayout::rows`] and the
//! cursor): printable chars as themselves, taking their `unicode-width`
//! cells (CJK and most emoji 2, combining marks 0); a tab as one space;
//! control and other unsafe chars (which can arrive in a paste) as their
//! visible escape from [`escape_char`], e.g. ESC as `^[` (2 cells).
//! Widths are counted per char; the parts of emoji sequences that terminals
//! draw in different widths (skin tones and joiners after an emoji,
//! variation selectors, tags) are not shown at all, as everywhere on the
//! chat screen ([`plain_clusters`](crate::sanitize::plain_clusters)).

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::sanitize::{escape_char, left_out_of_cells};

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;

/// The text being typed and the cursor (a byte index on a char boundary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    text: String,
    cursor: usize,
}

/// Where the input's text goes on screen at some width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLayout {
    /// Display rows after splitting at newlines and wrapping at the width,
    /// with unsafe chars already escaped (see the module docs).
    pub rows: Vec<String>,
    /// Row and column (in terminal cells) of the cursor: where the next
    /// typed char would appear. Always names an existing row.
    pub cursor: (u16, u16),
}

/// How `c` is drawn: `None` means as itself; and how many cells it takes.
fn shown(c: char) -> (Option<String>, usize) {
    if c == '\t' {
        return (Some(" ".to_owned()), 1);
    }
    match escape_char(c, true) {
        // Safe chars all have a width; a control would be shown as `^X`.
        None => (None, c.width().unwrap_or(2)),
        Some(s) => {
            let width = s.width();
            (Some(s), width)
        }
    }
}

/// True for a zero-width char (combining mark, ZWJ, ...) that sticks to the
/// char before it; cursor moves by char skip over these.
fn attached(c: char) -> bool {
    c != '\n' && (shown(c).1 == 0 || left_out_of_cells(c, Some('\u{1f44d}')))
}

/// Readline's word chars (Alt+B / Alt+F).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Clamps a count into a `u16` screen coordinate.
fn to_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl Input {
    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Cursor position as a byte index into [`Input::text`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// True when nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Replaces the text, cursor at the end (history recall).
    pub fn set(&mut self, text: String) {
        self.cursor = text.len();
        self.text = text;
    }

    /// Takes the text out, leaving the input empty.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Inserts a character (or a newline) at the cursor.
    pub fn insert_char(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Inserts a string (a paste) at the cursor, turning `"\r\n"` and lone
    /// `'\r'` into `'\n'`; everything else (tabs too) is kept as is.
    pub fn insert_str(&mut self, s: &str) {
        let s = s.replace("\r\n", "\n").replace('\r', "\n");
        self.text.insert_str(self.cursor, &s);
        self.cursor += s.len();
    }

    /// Byte index where the line holding byte `pos` starts.
    fn line_start(&self, pos: usize) -> usize {
        self.text[..pos].rfind('\n').map_or(0, |i| i + 1)
    }

    /// Byte index of the end of the line holding byte `pos` (its `'\n'` or
    /// the end of the text).
    fn line_end(&self, pos: usize) -> usize {
        self.text[pos..]
            .find('\n')
            .map_or(self.text.len(), |i| pos + i)
    }

    /// Removes `start..end` and puts the cursor at `start`.
    fn remove(&mut self, start: usize, end: usize) {
        self.text.replace_range(start..end, "");
        self.cursor = start;
    }

    /// Deletes the char before the cursor (Backspace); a newline joins lines.
    pub fn backspace(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.remove(self.cursor - c.len_utf8(), self.cursor);
        }
    }

    /// Deletes the char at the cursor (Delete); a newline joins lines.
    pub fn delete(&mut self) {
        if let Some(c) = self.text[self.cursor..].chars().next() {
            self.remove(self.cursor, self.cursor + c.len_utf8());
        }
    }

    /// Moves one char left (crossing newlines), also skipping zero-width
    /// chars so the cursor does not land inside "e" + combining accent.
    pub fn left(&mut self) {
        for (i, c) in self.text[..self.cursor].char_indices().rev() {
            self.cursor = i;
            if !attached(c) {
                break;
            }
        }
    }

    /// Moves one char right (crossing newlines), plus any zero-width chars
    /// attached to it.
    pub fn right(&mut self) {
        let mut chars = self.text[self.cursor..].chars();
        if let Some(c) = chars.next() {
            self.cursor += c.len_utf8();
            for c in chars.take_while(|&c| attached(c)) {
                self.cursor += c.len_utf8();
            }
        }
    }

    /// Moves to the start of the current line (Home, Ctrl+A).
    pub fn home(&mut self) {
        self.cursor = self.line_start(self.cursor);
    }

    /// Moves to the end of the current line (End, Ctrl+E).
    pub fn end(&mut self) {
        self.cursor = self.line_end(self.cursor);
    }

    /// Moves to the start of the previous word (Alt+B): skips non-word
    /// chars, then word chars (alphanumeric or `_`), backwards.
    pub fn word_left(&mut self) {
        let before = self.text[..self.cursor].trim_end_matches(|c| !is_word(c));
        self.cursor = before.trim_end_matches(is_word).len();
    }

    /// Moves to the end of the next word (Alt+F): skips non-word chars,
    /// then word chars, forwards.
    pub fn word_right(&mut self) {
        let after = self.text[self.cursor..].trim_start_matches(|c| !is_word(c));
        self.cursor = self.text.len() - after.trim_start_matches(is_word).len();
    }

    /// Deletes back to the previous whitespace boundary (Ctrl+W,
    /// unix-word-rubout): skips whitespace (newlines too), then non-whitespace.
    pub fn kill_word_back(&mut self) {
        let before = self.text[..self.cursor].trim_end_matches(char::is_whitespace);
        let start = before.trim_end_matches(|c: char| !c.is_whitespace()).len();
        self.remove(start, self.cursor);
    }

    /// Deletes from the start of the current line to the cursor (Ctrl+U).
    /// At the start of a line it deletes the newline before it instead, so
    /// repeated presses clear a multi-line text.
    pub fn kill_to_line_start(&mut self) {
        let start = self.line_start(self.cursor);
        if start == self.cursor && start > 0 {
            self.remove(start - 1, start);
        } else {
            self.remove(start, self.cursor);
        }
    }

    /// Deletes from the cursor to the end of the current line (Ctrl+K).
    /// At the end of a line it deletes the newline, joining the next line
    /// (like readline / emacs).
    pub fn kill_to_line_end(&mut self) {
        let end = self.line_end(self.cursor);
        if end == self.cursor && end < self.text.len() {
            self.remove(end, end + 1);
        } else {
            self.remove(self.cursor, end);
        }
    }

    /// True when no newline comes before the cursor.
    pub fn is_on_first_line(&self) -> bool {
        !self.text[..self.cursor].contains('\n')
    }

    /// True when no newline comes after the cursor.
    pub fn is_on_last_line(&self) -> bool {
        !self.text[self.cursor..].contains('\n')
    }

    /// Puts the cursor `col` chars into the line `start..end`, or at `end`
    /// when the line is shorter.
    fn go_to_column(&mut self, start: usize, end: usize, col: usize) {
        self.cursor = self.text[start..end]
            .char_indices()
            .nth(col)
            .map_or(end, |(i, _)| start + i);
    }

    /// Chars between the start of the current line and the cursor.
    fn column(&self) -> usize {
        let start = self.line_start(self.cursor);
        self.text[start..self.cursor].chars().count()
    }

    /// Moves to the previous line keeping the column (in chars) when it is
    /// long enough, else to its end. False, without moving, on the first
    /// line (the app then recalls history).
    pub fn move_up(&mut self) -> bool {
        let start = self.line_start(self.cursor);
        if start == 0 {
            return false;
        }
        let col = self.column();
        self.go_to_column(self.line_start(start - 1), start - 1, col);
        true
    }

    /// Moves to the next line keeping the column (in chars) when it is long
    /// enough, else to its end. False, without moving, on the last line.
    pub fn move_down(&mut self) -> bool {
        let end = self.line_end(self.cursor);
        if end == self.text.len() {
            return false;
        }
        let col = self.column();
        self.go_to_column(end + 1, self.line_end(end + 1), col);
        true
    }

    /// Rows and cursor position at `width` cells (0 counts as 1).
    ///
    /// Each line is hard-wrapped at char boundaries: a char that does not
    /// fit in what is left of a row (a wide char in the last cell) starts
    /// the next row; zero-width chars stay on their base char's row; a char
    /// wider than the whole width gets a row of its own (and is clipped).
    /// A cursor at a wrap point is at column 0 of the next row; at the end
    /// of a full row it is at column 0 of an extra empty row.
    pub fn layout(&self, width: u16) -> InputLayout {
        let width = usize::from(width.max(1));
        let mut rows = Vec::new();
        let mut cursor = (0, 0);
        let mut line_start = 0;
        for line in self.text.split('\n') {
            let mut row = String::new();
            let mut col = 0;
            let mut prev = None;
            for (i, c) in line.char_indices() {
                let hidden = left_out_of_cells(c, prev);
                let (escaped, w) = if hidden { (None, 0) } else { shown(c) };
                if w > 0 && col > 0 && col + w > width {
                    rows.push(std::mem::take(&mut row));
                    col = 0;
                }
                if line_start + i == self.cursor {
                    // Only before a zero-width char can `col` be past the
                    // row; keep the cursor on it.
                    cursor = (rows.len(), col.min(width - 1));
                }
                match escaped {
                    Some(s) => row.push_str(&s),
                    None if hidden => {}
                    None => row.push(c),
                }
                if !hidden {
                    prev = Some(c);
                }
                col += w;
            }
            let line_end = line_start + line.len();
            if line_end == self.cursor {
                if col >= width {
                    rows.push(std::mem::take(&mut row));
                    col = 0;
                }
                cursor = (rows.len(), col);
            }
            rows.push(row);
            line_start = line_end + 1;
        }
        InputLayout {
            rows,
            cursor: (to_u16(cursor.0), to_u16(cursor.1)),
        }
    }
}
