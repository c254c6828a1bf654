//! The input pane (bottom right): a bordered box titled "Message" or
//! "Message to NAME" holding the rows of [`crate::app::Input::layout`],
//! growing with them up to [`MAX_ROWS`] and scrolled to keep the cursor in
//! view, plus the terminal cursor when the input has the focus. Also the
//! one-line notice (yellow) drawn just above it.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::text::{self, truncate};
use super::{fg, pane_block};
use crate::app::{App, Focus};
use crate::sanitize::escape_char;

/// The most text rows the input grows to before it scrolls.
pub(super) const MAX_ROWS: u16 = 6;

/// Height of the input box (borders included) for an outer width of
/// `width`, with at most `max_rows` text rows.
pub(super) fn height(app: &App, width: u16, max_rows: u16) -> u16 {
    let rows = app.input.layout(width.saturating_sub(2)).rows.len();
    let rows = u16::try_from(rows).unwrap_or(u16::MAX);
    rows.clamp(1, max_rows.max(1)) + 2
}

/// Draws the input box into `area` and places the cursor.
pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Input;
    let title = match app.open_peer() {
        Some(peer) => {
            let room = usize::from(area.width).saturating_sub(16);
            format!(
                " Message to {} ",
                text::truncate_name(&app.shown_name(peer), room)
            )
        }
        None => " Message ".to_owned(),
    };
    let block = pane_block(Line::from(title), focused, &app.theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }

    let layout = app.input.layout(inner.width);
    let (cursor_row, cursor_col) = layout.cursor;
    let visible = usize::from(inner.height);
    // Keep the cursor's row on screen.
    let top = (usize::from(cursor_row) + 1).saturating_sub(visible);

    let lines: Vec<Line> = if app.input.is_empty() {
        let hint = if app.open_peer().is_some() {
            "Type a message, Enter to send"
        } else {
            "Type /connect HOST, or pick a peer"
        };
        vec![Line::styled(hint, Style::new().dim())]
    } else {
        layout
            .rows
            .iter()
            .skip(top)
            .take(visible)
            // `layout` already shows unsafe characters as escapes, char by
            // char (the cursor column depends on it); this keeps the buffer
            // clean whatever it does.
            .map(|row| {
                let row: String = row
                    .chars()
                    .map(|c| escape_char(c, false).unwrap_or_else(|| c.to_string()))
                    .collect();
                Line::raw(row)
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), inner);

    if focused && !app.help && app.search.is_none() {
        let row = usize::from(cursor_row).saturating_sub(top);
        let row = u16::try_from(row).unwrap_or(0).min(inner.height - 1);
        let col = cursor_col.min(inner.width - 1);
        frame.set_cursor_position(Position::new(inner.x + col, inner.y + row));
    }
}

/// The most rows a warning above the input takes.
const MAX_ALERT_ROWS: usize = 4;

/// The warning above the input, if any, wrapped to an outer width of
/// `width`: bold in the `error` colour, at most [`MAX_ALERT_ROWS`] rows (the
/// last ending in `…` when cut).
pub(super) fn alert_rows(app: &App, width: u16) -> Vec<Line<'static>> {
    // A browser asking to join comes first: it waits for an answer.
    let Some(alert) = app.joins.front().map(|j| &j.text).or(app.alert.as_ref()) else {
        return Vec::new();
    };
    let style = fg(app.theme.error).bold();
    let width = usize::from(width.saturating_sub(2)).max(1);
    let alert = text::line(alert);
    let mut rows = text::wrap(&[(&alert, style)], width, width);
    if rows.len() > MAX_ALERT_ROWS {
        rows.truncate(MAX_ALERT_ROWS);
        let last = rows.pop().unwrap_or_default();
        let cut: String = last.spans.iter().map(|s| s.content.as_ref()).collect();
        rows.push(Line::styled(truncate(&format!("{cut}…"), width), style));
    }
    rows.into_iter()
        .map(|row| Line::from([vec![Span::raw(" ")], row.spans].concat()))
        .collect()
}

/// Draws the notice, if any, on the row `area` (`notice` colour, cut to fit).
pub(super) fn draw_notice(frame: &mut Frame, area: Rect, app: &App) {
    let Some(notice) = &app.notice else { return };
    let notice = truncate(
        &text::line(notice),
        usize::from(area.width.saturating_sub(1)),
    );
    let line = Line::styled(format!(" {notice}"), fg(app.theme.notice));
    frame.render_widget(Paragraph::new(line), area);
}
