//! The help overlay: a centred bordered box over everything else listing
//! every key (by pane), the marks of how sessions are protected, and every
//! command. Drawn when `App::help` is set, scrolled by `App::help_scroll`
//! when the screen is shorter than the list; Esc closes it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use super::fg;
use super::text::{self, spaces};
use crate::app::Theme;

/// One line of help: a heading (empty key column) or a key and what it does.
type Item = (&'static str, &'static str);

/// Everything the overlay lists, in order. An empty key makes a heading.
const ITEMS: &[Item] = &[
    ("", "Anywhere"),
    (
        "typing",
        "always goes to the input, whichever pane has focus",
    ),
    ("Tab", "cycle focus: peers → conversation → input"),
    ("Ctrl+N / Ctrl+P", "next / previous conversation"),
    ("F1", "this help (↑/↓ PgUp/PgDn scroll, Esc closes)"),
    ("Ctrl+C", "clear the input; quit when it is empty"),
    (
        "Ctrl+Y / Ctrl+D",
        "let a browser that asks to join in / turn it away",
    ),
    (
        "Shift+drag",
        "select text (the mouse is captured for the wheel)",
    ),
    ("", "Peers pane"),
    ("↑/↓", "move the cursor (the list holds still meanwhile)"),
    ("Enter", "open the conversation"),
    ("enc  enc✓", "encrypted / and verified with /verify"),
    ("enc?  plain", "encrypted, sender unproven / NOT encrypted"),
    ("", "Conversation pane"),
    ("↑/↓", "scroll a row (mouse wheel: a few rows)"),
    ("PgUp / PgDn", "scroll a page (from any pane)"),
    ("Home / End", "oldest / newest (older load from history)"),
    ("", "Input (each conversation keeps its own draft)"),
    ("Enter", "send the message or command"),
    ("Alt+Enter", "new line (pasting keeps newlines)"),
    ("←/→  Home/End", "move; Ctrl+A / Ctrl+E: start / end"),
    ("Alt+B / Alt+F", "word back / forward"),
    ("Ctrl+W/U/K", "delete word / to start / to end"),
    ("↑/↓", "previous / next line from history"),
    ("", "Commands"),
    (
        "/connect HOST[:PORT]",
        "talk to a peer by address (port 7342 unless given)",
    ),
    ("/name NEW", "change your name"),
    ("/search WORDS", "find messages in every conversation"),
    ("/verify [yes]", "show the code to compare; yes: it matched"),
    ("/trust KEY", "move this conversation to its new key"),
    (
        "/qr [new]",
        "a phone's address as a QR code (new: new token)",
    ),
    ("/forget", "in a browser's conversation: ask it again"),
    ("/help", "this help"),
    ("/quit", "leave"),
    ("//text", "send a message that starts with /"),
];

/// Draws the overlay centred in `area`, keys and border in `theme.accent`,
/// scrolled down `scroll` rows when it is taller than the screen. Returns
/// the rows shown at once and the largest useful scroll.
pub(super) fn draw(frame: &mut Frame, area: Rect, scroll: usize, theme: &Theme) -> (usize, usize) {
    let key_w = ITEMS.iter().map(|(k, _)| text::width(k)).max().unwrap_or(0);
    let text_w = ITEMS
        .iter()
        .map(|(k, d)| {
            if k.is_empty() {
                text::width(d)
            } else {
                key_w + 2 + text::width(d)
            }
        })
        .max()
        .unwrap_or(0);

    // Text plus one space of margin each side plus the borders.
    let want_w = u16::try_from(text_w + 4).unwrap_or(u16::MAX);
    let want_h = u16::try_from(ITEMS.len() + 2).unwrap_or(u16::MAX);
    let width = want_w.min(area.width);
    let height = want_h.min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };

    let heading = Style::new().bold().underlined();
    let key = fg(theme.accent);
    let lines: Vec<Line> = ITEMS
        .iter()
        .map(|&(k, d)| {
            if k.is_empty() {
                Line::styled(format!(" {d}"), heading)
            } else {
                Line::from(vec![
                    Span::raw(" "),
                    Span::styled(k, key),
                    Span::raw(spaces(key_w - text::width(k) + 2)),
                    Span::raw(d),
                ])
            }
        })
        .collect();
    let inner_h = usize::from(height.saturating_sub(2));
    let max_scroll = lines.len().saturating_sub(inner_h);
    let scroll = scroll.min(max_scroll);
    let lines: Vec<Line> = lines.into_iter().skip(scroll).take(inner_h).collect();
    // Where there is more, the bottom border says which way.
    let more = match (scroll > 0, scroll < max_scroll) {
        (false, false) => "",
        (false, true) => " ↓ more ·",
        (true, false) => " ↑ more ·",
        (true, true) => " ↑↓ more ·",
    };

    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(fg(theme.accent))
        .title(Line::from(" Help ").bold())
        .title_bottom(Line::from(format!("{more} Esc closes ")).right_aligned());
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
    (inner_h, max_scroll)
}
