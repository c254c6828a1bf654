//! Measuring, cutting and wrapping text in terminal cells, shared by the
//! panes. Widths come from ratatui's own grapheme segmentation and
//! [`CellWidth`], so what we measure is exactly what the buffer will draw: a
//! CJK character or an emoji takes two cells and is never split across an edge.
//!
//! Expects text already passed through `escape_for_terminal`: tabs become
//! spaces here, any other control character is dropped (as ratatui would).

use std::borrow::Cow;

use ratatui::buffer::CellWidth;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::sanitize;

/// Cells a tab takes in a message body.
const TAB: &str = "    ";

/// Display width of `s` in cells, as ratatui draws it.
pub fn width(s: &str) -> usize {
    graphemes(s).map(|g| g.cell_width() as usize).sum()
}

use crate::sanitize::plain_clusters;

/// The graphemes ratatui would draw for `s` (control characters dropped),
/// after [`plain_clusters`].
fn graphemes(s: &str) -> impl Iterator<Item = String> + '_ {
    let s = plain_clusters(s);
    let span = Span::raw(s.as_ref());
    // Collected because the iterator borrows the temporary span.
    span.styled_graphemes(Style::default())
        .map(|g| g.symbol.to_owned())
        .filter(|g| g.cell_width() > 0)
        .collect::<Vec<_>>()
        .into_iter()
}

/// A peer-supplied name made safe, single-line and never blank (see
/// [`crate::sanitize::name`]); callers cut it to the room they have.
pub fn name(s: &str) -> Cow<'_, str> {
    sanitize::name(s)
}

/// Any other peer-supplied text shown on one line (a host, a reason).
pub fn line(s: &str) -> Cow<'_, str> {
    sanitize::escape_for_terminal(s, false)
}

/// A shown name (see [`crate::app::App::shown_name`]) cut to `max` cells,
/// keeping a `#tag` ending whole: it is what tells two peers of one name
/// apart.
pub fn truncate_name(s: &str, max: usize) -> String {
    let tag_len = crate::peer::TAG_LEN + 1;
    let tagged = s.len() > tag_len
        && s.is_char_boundary(s.len() - tag_len)
        && s[s.len() - tag_len..].starts_with('#')
        && s[s.len() - tag_len + 1..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit());
    if !tagged || width(s) <= max || max <= tag_len + 1 {
        return truncate(s, max);
    }
    let (name, tag) = s.split_at(s.len() - tag_len);
    format!("{}{tag}", truncate(name, max - tag_len))
}

/// `s` cut to at most `max` cells, ending in `…` when something was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return plain_clusters(s).into_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in graphemes(s) {
        let w = g.cell_width() as usize;
        if used + w > max - 1 {
            break;
        }
        used += w;
        out.push_str(&g);
    }
    out.push('…');
    out
}

/// `n` spaces.
pub fn spaces(n: usize) -> String {
    " ".repeat(n)
}

/// One grapheme with its width and style, the unit of wrapping.
struct Cell {
    symbol: String,
    width: usize,
    style: Style,
}

impl Cell {
    fn is_space(&self) -> bool {
        self.symbol == " "
    }
}

/// Wraps one logical line (no `\n`) made of styled pieces into rows: the
/// first row holds `first` cells, every later row `rest`. Breaks after
/// spaces and around wide characters (CJK has no spaces); a word longer
/// than a row is cut at a grapheme boundary. Always returns at least one row.
pub fn wrap(pieces: &[(&str, Style)], first: usize, rest: usize) -> Vec<Line<'static>> {
    let cells = pieces.iter().flat_map(|(text, style)| {
        let text: Cow<str> = if text.contains('\t') {
            Cow::Owned(text.replace('\t', TAB))
        } else {
            Cow::Borrowed(text)
        };
        graphemes(&text)
            .map(|symbol| Cell {
                width: symbol.cell_width() as usize,
                symbol,
                style: *style,
            })
            .collect::<Vec<_>>()
    });

    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut row: Vec<Cell> = Vec::new();
    let mut used = 0;
    // Index in `row` where the next row may start.
    let mut brk: Option<usize> = None;
    // After a soft break, spaces at the start of the new row are dropped.
    let mut skip_spaces = false;
    let limit = |rows: &Vec<Vec<Cell>>| if rows.is_empty() { first } else { rest };

    for cell in cells {
        if skip_spaces && cell.is_space() {
            continue;
        }
        skip_spaces = false;
        // An empty later row takes the cell even if it is too wide (a
        // two-cell emoji in a one-cell pane), so wrapping always advances.
        if used + cell.width > limit(&rows) && (used > 0 || rows.is_empty()) {
            if cell.is_space() {
                rows.push(std::mem::take(&mut row));
                used = 0;
                brk = None;
                skip_spaces = true;
                continue;
            }
            let tail = match brk {
                Some(i) if i > 0 && i < row.len() => row.split_off(i),
                _ => Vec::new(),
            };
            // `brk` always points past the last space, so `tail` starts
            // with a visible cell.
            rows.push(std::mem::replace(&mut row, tail));
            used = row.iter().map(|c| c.width).sum();
            brk = None;
            if used + cell.width > limit(&rows) && used > 0 {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
        }
        let wide = cell.width > 1;
        if wide && !row.is_empty() {
            brk = Some(row.len());
        }
        let space = cell.is_space();
        used += cell.width;
        row.push(cell);
        if space || wide {
            brk = Some(row.len());
        }
    }
    rows.push(row);
    rows.into_iter().map(to_line).collect()
}

/// Joins consecutive cells of one style into spans; trailing spaces go.
fn to_line(mut cells: Vec<Cell>) -> Line<'static> {
    while cells.last().is_some_and(Cell::is_space) {
        cells.pop();
    }
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut text = String::new();
    let mut style: Option<Style> = None;
    for cell in cells {
        if style.is_some_and(|s| s != cell.style) {
            spans.push(Span::styled(
                std::mem::take(&mut text),
                style.unwrap_or_default(),
            ));
        }
        style = Some(cell.style);
        text.push_str(&cell.symbol);
    }
    if let Some(style) = style {
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_words_cjk_and_long_runs() {
        let rows = |s: &str, first, rest| -> Vec<String> {
            wrap(&[(s, Style::new())], first, rest)
                .iter()
                .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
                .collect()
        };
        assert_eq!(rows("hello big world", 9, 9), ["hello big", "world"]);
        assert_eq!(rows("hello   world", 6, 6), ["hello", "world"]);
        assert_eq!(rows("abcdefghij", 4, 4), ["abcd", "efgh", "ij"]);
        assert_eq!(rows("ab你好世界", 5, 4), ["ab你", "好世", "界"]);
        assert_eq!(rows("a\tb", 10, 10), ["a    b"]);
        assert_eq!(rows("", 5, 5), [""]);
        // No room on the first row: the text starts on the second.
        assert_eq!(rows("hi", 0, 5), ["", "hi"]);
        // A two-cell emoji in a one-cell pane still advances.
        assert_eq!(rows("👋👋", 1, 1), ["", "👋", "👋"]);
        // Sequences terminals draw in different widths are drawn plainly.
        assert_eq!(
            rows("👍🏽❤️👨\u{200d}👩\u{200d}👧🇫🇷", 20, 20),
            ["👍❤👨👩👧🇫🇷"]
        );
        assert_eq!(width("👍🏽❤️👨\u{200d}👩\u{200d}👧🇫🇷"), 2 + 1 + 6 + 2);
        // A joiner between letters of other scripts stays.
        assert_eq!(plain_clusters("क्\u{200d}ष"), "क्\u{200d}ष");
    }
}
