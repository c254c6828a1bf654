//! The search results overlay: a centred bordered box over everything else,
//! one line per matching message, newest first, as
//! `YYYY-MM-DD HH:MM · name · body` (`me → name` for our own), the body
//! escaped and cut to one line. The highlighted row follows ↑/↓; Enter opens
//! that conversation at the message, Esc closes. Drawn while `App::search` is
//! set.

use chrono::{DateTime, FixedOffset};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use super::text::{self, truncate};
use crate::app::{App, SearchHit, SearchView};

/// Columns and rows left around the box.
const MARGIN: u16 = 2;

/// Longest conversation name shown, in cells.
const MAX_NAME: usize = 20;

/// Draws the overlay for `view` centred in `area`.
pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App, view: &SearchView) {
    let width = area
        .width
        .saturating_sub(2 * MARGIN)
        .max(area.width.min(20));
    let want_h = u16::try_from(view.hits.len() + 2).unwrap_or(u16::MAX);
    let height = want_h.min(
        area.height
            .saturating_sub(2 * MARGIN)
            .max(area.height.min(5)),
    );
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };

    let count = match view.hits.len() {
        1 => "1 message".to_owned(),
        n => format!("{n} messages"),
    };
    let words = truncate(&text::line(&view.words), usize::from(width) / 2);
    let title = Line::from(vec![
        Span::raw(" Search: ").bold(),
        Span::raw(words).bold(),
        Span::styled(format!(" · {count} "), Style::new().dim()),
    ]);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(super::fg(app.theme.accent))
        .title(title)
        .title_bottom(Line::from(" ↑/↓ move · Enter opens · Esc closes ").right_aligned());
    let inner = block.inner(popup);
    let rows = usize::from(inner.height);
    let cols = usize::from(inner.width);
    // Scroll just enough to keep the cursor on screen.
    let offset = (view.cursor + 1).saturating_sub(rows);
    let tz = FixedOffset::east_opt(app.utc_offset)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("0 is a valid offset"));
    let lines: Vec<Line> = view
        .hits
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows)
        .map(|(i, hit)| {
            let name = app.name_of(&hit.name, &hit.record.peer);
            let line = row(hit, &name, &app.me.name, tz, cols, &app.theme);
            if i == view.cursor {
                line.patch_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

/// One result, exactly `width` cells wide so the highlight fills it.
fn row(
    hit: &SearchHit,
    name: &str,
    me: &str,
    tz: FixedOffset,
    width: usize,
    theme: &crate::app::Theme,
) -> Line<'static> {
    let r = &hit.record;
    let when = i64::try_from(r.ts)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map_or_else(
            || "---------- --:--".to_owned(),
            |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        );
    let name = text::truncate_name(name, MAX_NAME);
    let who = if r.outgoing {
        format!("{} → {name}", truncate(&text::name(me), MAX_NAME))
    } else {
        name
    };
    let sep = || Span::styled(" · ", Style::new().dim());
    let mut spans = vec![
        Span::raw(" "),
        Span::styled(when, Style::new().dim()),
        sep(),
        Span::styled(
            who,
            super::fg(if r.outgoing { theme.own } else { theme.peer }).bold(),
        ),
        sep(),
    ];
    let used: usize = spans.iter().map(|s| text::width(&s.content)).sum();
    // One line: a message's own line breaks become spaces, the rest is escaped.
    let body = text::line(&r.body.replace("\r\n", " ").replace('\n', " ")).into_owned();
    let body = truncate(&body, width.saturating_sub(used));
    let used = used + text::width(&body);
    spans.push(Span::raw(body));
    spans.push(Span::raw(text::spaces(width.saturating_sub(used))));
    Line::from(spans)
}
