//! Drawing: the whole screen as a pure function of [`App`], one file per
//! pane. Reads the App, never changes it, and does no I/O; every peer-supplied
//! string goes through [`crate::sanitize`] (`text::name` for names,
//! `escape_for_terminal` for the rest) before it reaches the buffer, and the
//! terminal title ([`title`]) holds no peer string at all.
//!
//! ```text
//! ┌ Peers ───────────┐┌ alice · laptop.local ────── encrypted ┐
//! │● alice    enc (2)││─────────── Thu 26 Nov 2026 ───────────│
//! │○ bob bob-pc      ││09:15 alice: hi, wrapped body rows are │
//! │· carol    offline││             indented under the body   │
//! │                  ││09:16 me: hello ✓                      │
//! │                  │└───────────────────────────────────────┘
//! │                  │ a warning (in red, until Esc) and a notice (a row each
//! │                  │ only when there is one)
//! │                  │┌ Message to alice ─────────────────────┐
//! │                  ││grows to 6 rows                        │
//! └──────────────────┘└───────────────────────────────────────┘
//!  me · :7654 · 2 online · mDNS on                      F1 help
//! ```
//!
//! The search results overlay (`/search`), the help overlay and the phone's
//! address with its QR code (`/qr`, `qr.rs`) go on top;
//! below 40×10 only a request to enlarge.

mod conversation;
mod help;
mod input;
mod peers;
mod qr;
mod search;
mod status;
mod text;

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod qr_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod theme_tests;
#[cfg(test)]
mod trust_tests;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Paragraph};

use crate::app::{App, Security, Theme, View};

/// Smallest terminal drawn normally, in columns.
pub const MIN_WIDTH: u16 = 40;
/// Smallest terminal drawn normally, in rows.
pub const MIN_HEIGHT: u16 = 10;

/// Rows the conversation pane keeps (borders plus one) however tall the input grows.
const MIN_CONVERSATION: u16 = 3;

/// Draws the whole screen for `app` and returns what only drawing can know
/// about the conversation pane (its page height and how far it scrolls), for
/// the caller to feed back with [`App::set_view`]. Below the minimum size,
/// `app.view` comes back unchanged.
pub fn draw(frame: &mut Frame, app: &App) -> View {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return app.view;
    }

    let [main, status_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    let peers_width = (main.width / 3).clamp(16, 26);
    let [left, right] =
        Layout::horizontal([Constraint::Length(peers_width), Constraint::Fill(1)]).areas(main);

    let notice_height = u16::from(app.notice.is_some());
    // A warning takes rows from the conversation, never the input's one row.
    let alert = input::alert_rows(app, right.width);
    let alert_height = u16::try_from(alert.len()).unwrap_or(u16::MAX).min(
        right
            .height
            .saturating_sub(notice_height + MIN_CONVERSATION + 3),
    );
    let max_rows = right
        .height
        .saturating_sub(alert_height + notice_height + MIN_CONVERSATION + 2)
        .min(input::MAX_ROWS);
    let input_height = input::height(app, right.width, max_rows);
    let [conversation_area, alert_area, notice_area, input_area] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(alert_height),
        Constraint::Length(notice_height),
        Constraint::Length(input_height),
    ])
    .areas(right);

    peers::draw(frame, left, app);
    let mut view = conversation::draw(frame, conversation_area, app);
    frame.render_widget(Paragraph::new(alert), alert_area);
    input::draw_notice(frame, notice_area, app);
    input::draw(frame, input_area, app);
    status::draw(frame, status_area, app);
    if let Some(results) = &app.search {
        search::draw(frame, area, app, results);
    }
    if app.help {
        (view.help_page, view.help_max_scroll) =
            help::draw(frame, area, app.help_scroll, &app.theme);
    }
    if let Some(qr) = &app.qr {
        qr::draw(frame, area, qr, &app.theme);
    }
    view
}

/// The terminal title: `lantalk`, or `lantalk (N)` with N unread messages in all.
#[must_use]
pub fn title(app: &App) -> String {
    let unread = app.unread_total();
    if unread == 0 {
        "lantalk".to_owned()
    } else {
        format!("lantalk ({unread})")
    }
}

/// A pane's bordered block; the focused pane's border is highlighted in
/// the theme's `accent`.
fn pane_block<'a>(title: Line<'a>, focused: bool, theme: &Theme) -> Block<'a> {
    let border = if focused {
        fg(theme.accent)
    } else {
        Style::new().dim()
    };
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(border)
        .title(title)
}

/// How a session's protection is marked: a short tag for the peers list,
/// words for the conversation's title, and their style. Plain words (and
/// the `✓` the screen already uses), readable on any terminal; the
/// plaintext mark in the theme's `error` colour.
fn security_mark(security: Security, theme: &Theme) -> (&'static str, &'static str, Style) {
    match security {
        Security::Verified => ("enc✓", "encrypted, verified ✓", fg(theme.delivered).bold()),
        Security::Encrypted => ("enc", "encrypted", fg(theme.online)),
        Security::Unauthenticated => ("enc?", "encrypted, unauthenticated", fg(theme.notice)),
        Security::Plaintext => ("plain", "plaintext, not encrypted", fg(theme.error).bold()),
    }
}

/// A style in the foreground colour `colour`; none for `Color::Reset`, so
/// that a role left at the terminal's colour styles nothing.
fn fg(colour: Color) -> Style {
    if colour == Color::Reset {
        Style::new()
    } else {
        Style::new().fg(colour)
    }
}

/// The whole screen when it is below [`MIN_WIDTH`]×[`MIN_HEIGHT`].
fn too_small(frame: &mut Frame, area: Rect) {
    let message = format!("enlarge the window (min {MIN_WIDTH}×{MIN_HEIGHT})");
    let lines: Vec<Line> = text::wrap(
        &[(&message, Style::new().bold())],
        usize::from(area.width),
        usize::from(area.width),
    )
    .into_iter()
    .map(Line::centered)
    .collect();
    let rows = u16::try_from(lines.len())
        .unwrap_or(area.height)
        .min(area.height);
    let middle = Rect {
        y: area.y + (area.height - rows) / 2,
        height: rows,
        ..area
    };
    frame.render_widget(Paragraph::new(lines), middle);
}
