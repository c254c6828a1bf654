//! The conversation pane (right): the open peer's messages, newest at the
//! bottom, each as `HH:MM name: body` word-wrapped with continuation rows
//! indented under the body, a delivery mark after our own messages, system
//! lines dimmed, and a date separator wherever the local date changes. With
//! nothing open it shows a short welcome.
//!
//! With history kept, a dim line above the oldest entry says whether older
//! messages are loading, can be loaded by scrolling up, or whether this is the
//! beginning of the conversation. A search result jumped to is brought into
//! view (the scroll chosen is reported back) and drawn highlighted.
//!
//! Only what is visible is laid out: entries are wrapped from the newest
//! backwards until the scrolled-to window is full, so drawing costs the same
//! for a hundred entries as for a hundred thousand.

use chrono::{DateTime, FixedOffset, NaiveDate};
use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::text::{self, spaces, truncate, wrap};
use super::{fg, pane_block};
use crate::app::{App, Conversation, Delivery, Entry, EntryKind, Focus, Theme, TopLine, View};
use crate::sanitize::escape_for_terminal;

/// What the pane says when no conversation is open.
const WELCOME: &str = "Select a peer with ↑/↓ and Enter, or type /connect HOST:PORT. ? for help.";

/// The "HH:MM " column.
const TIME_WIDTH: usize = 6;

/// Longest sender name shown, in cells (a third of the pane if narrower).
const MAX_NAME: usize = 16;

/// Below this many cells beside the prefix, continuation rows start further left.
const MIN_BODY: usize = 12;

/// Draws the pane into `area` and reports its page height and how far the
/// open conversation can scroll.
pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App) -> View {
    let focused = app.focus == Focus::Conversation;
    let page = usize::from(area.height.saturating_sub(2));
    let Some(peer) = app.open_peer() else {
        let block = pane_block(Line::from(" lantalk "), focused, &app.theme);
        let welcome = Paragraph::new(WELCOME)
            .style(Style::new().dim())
            .wrap(Wrap { trim: true })
            .block(block);
        frame.render_widget(welcome, area);
        return View {
            page,
            max_scroll: None,
            jumped: None,
        };
    };

    let name = text::name(&peer.name);
    let host = text::line(peer.host.trim_end_matches('.'));
    let mut title = vec![
        Span::raw(" "),
        Span::styled(name.to_string(), Style::new().bold()),
        Span::raw(" "),
    ];
    // A peer known only from history has no host to show.
    if !host.is_empty() {
        title.push(Span::styled(format!("· {host} "), Style::new().dim()));
    }
    let title = Line::from(title);
    let block = pane_block(title, focused, &app.theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let conv = &peer.conversation;
    if conv.entries.is_empty() {
        let hint = if conv.top_line() == Some(TopLine::Loading) {
            format!("Loading the messages with {name}…")
        } else {
            format!("No messages with {name} yet.")
        };
        let hint = Paragraph::new(hint)
            .style(Style::new().dim())
            .wrap(Wrap { trim: true });
        frame.render_widget(hint, inner);
        return View {
            page,
            max_scroll: Some(0),
            jumped: None,
        };
    }

    let tz = zone(app.utc_offset);
    let (width, height) = (usize::from(inner.width), usize::from(inner.height));
    let jump = conv
        .jump
        .as_ref()
        .and_then(|target| conv.entries.iter().rposition(|e| target.matches(e)))
        .map(|k| jump_scroll(conv, k, &app.me.name, tz, width, height, &app.theme));
    let scroll = jump.unwrap_or(conv.scroll);
    let window = layout(conv, scroll, &app.me.name, tz, width, height, &app.theme);
    let max_scroll = window.max_scroll;
    let jumped = jump.map(|s| max_scroll.map_or(s, |max| s.min(max)));
    frame.render_widget(Paragraph::new(window.lines), inner);

    if scroll > 0 && conv.unseen_below && inner.height > 0 {
        let bottom = Rect {
            y: inner.bottom() - 1,
            height: 1,
            ..inner
        };
        let mark = Line::from(" new messages below ↓ ")
            .style(Style::new().fg(Color::Black).bg(app.theme.unread).bold())
            .alignment(Alignment::Center);
        frame.render_widget(ratatui::widgets::Clear, bottom);
        frame.render_widget(Paragraph::new(mark), bottom);
    }
    View {
        page,
        max_scroll,
        jumped,
    }
}

/// The rows of a conversation visible at some scroll position.
pub(super) struct Window {
    /// At most `height` rows, top to bottom.
    pub lines: Vec<Line<'static>>,
    /// How many entries were wrapped to produce them (for tests: the
    /// visible-only rule keeps this near `height`, whatever the length).
    #[cfg_attr(not(test), allow(dead_code))]
    pub entries_laid_out: usize,
    /// The largest useful scroll, known once the walk reached the oldest entry.
    pub max_scroll: Option<usize>,
}

/// Lays out the rows `conv.scroll` rows up from the bottom, `height` rows
/// tall, walking entries from the newest backwards and stopping as soon as
/// enough rows exist. A scroll past the top shows the top.
#[cfg(test)]
pub(super) fn visible_lines(
    conv: &Conversation,
    me: &str,
    utc_offset: i32,
    width: usize,
    height: usize,
    theme: &Theme,
) -> Window {
    layout(
        conv,
        conv.scroll,
        me,
        zone(utc_offset),
        width,
        height,
        theme,
    )
}

/// The local time zone from its offset in seconds (UTC if out of range).
fn zone(utc_offset: i32) -> FixedOffset {
    FixedOffset::east_opt(utc_offset)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("0 is a valid offset"))
}

/// [`visible_lines`] at `scroll` rows up from the bottom.
fn layout(
    conv: &Conversation,
    scroll: usize,
    me: &str,
    tz: FixedOffset,
    width: usize,
    height: usize,
    theme: &Theme,
) -> Window {
    let need = scroll.saturating_add(height);

    // Blocks of rows, newest entry first.
    let mut blocks: Vec<Vec<Line<'static>>> = Vec::new();
    let mut total = 0;
    let mut i = conv.entries.len();
    while i > 0 && total < need {
        i -= 1;
        let rows = block(conv, i, me, tz, width, theme);
        total += rows.len();
        blocks.push(rows);
    }
    let entries_laid_out = blocks.len();
    if i == 0
        && let Some(top) = conv.top_line()
    {
        blocks.push(vec![top_line(top, width)]);
        total += 1;
    }
    let max_scroll = (i == 0).then(|| total.saturating_sub(height));

    let (start, end) = if total >= need {
        (total - need, total - scroll)
    } else {
        // Scrolled past the top, or everything fits: show from the top.
        (0, total.min(height))
    };
    let lines = blocks
        .into_iter()
        .rev()
        .flatten()
        .skip(start)
        .take(end - start)
        .collect();
    Window {
        lines,
        entries_laid_out,
        max_scroll,
    }
}

/// The rows of entry `i`: a date separator when the local date changes
/// there, then the entry itself (highlighted when it is the search result
/// jumped to).
fn block(
    conv: &Conversation,
    i: usize,
    me: &str,
    tz: FixedOffset,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let entries = &conv.entries;
    let entry = &entries[i];
    let date = local(entry.ts, tz).map(|t| t.date_naive());
    let prev = i
        .checked_sub(1)
        .map(|p| local(entries[p].ts, tz).map(|t| t.date_naive()));
    let mut rows = Vec::new();
    if let Some(date) = date
        && prev.is_none_or(|prev| prev != Some(date))
    {
        rows.push(separator(date, width));
    }
    let lines = entry_lines(entry, me, tz, width, theme);
    if conv.highlight.as_ref().is_some_and(|h| h.matches(entry)) {
        let mark = Style::new().add_modifier(Modifier::REVERSED);
        rows.extend(lines.into_iter().map(|l| l.patch_style(mark)));
    } else {
        rows.extend(lines);
    }
    rows
}

/// The scroll that shows entry `k` in the middle of the pane (its start,
/// when it is taller than the pane).
fn jump_scroll(
    conv: &Conversation,
    k: usize,
    me: &str,
    tz: FixedOffset,
    width: usize,
    height: usize,
    theme: &Theme,
) -> usize {
    let below: usize = (k + 1..conv.entries.len())
        .map(|i| block(conv, i, me, tz, width, theme).len())
        .sum();
    let own = block(conv, k, me, tz, width, theme).len();
    if own >= height {
        below + own - height
    } else {
        (below + own / 2).saturating_sub(height / 2)
    }
}

/// The dim line above the oldest entry: loading, more to load, or the beginning.
fn top_line(top: TopLine, width: usize) -> Line<'static> {
    Line::styled(truncate(top.text(), width), Style::new().dim().italic())
        .alignment(Alignment::Center)
}

/// `ts` (Unix ms, UTC) in the local time zone.
fn local(ts: u64, tz: FixedOffset) -> Option<DateTime<FixedOffset>> {
    let ms = i64::try_from(ts).ok()?;
    Some(DateTime::from_timestamp_millis(ms)?.with_timezone(&tz))
}

/// `──── Thu 26 Nov 2026 ────`, centred across the pane.
fn separator(date: NaiveDate, width: usize) -> Line<'static> {
    let label = format!(" {} ", date.format("%a %d %b %Y"));
    let label_w = text::width(&label);
    let fill = width.saturating_sub(label_w);
    let left = (fill / 2).max(2);
    let right = (fill - fill / 2).max(2);
    let line = format!("{}{label}{}", "─".repeat(left), "─".repeat(right));
    Line::styled(truncate(&line, width), Style::new().dim())
}

/// The rows of one entry at `width` cells.
fn entry_lines(
    entry: &Entry,
    me: &str,
    tz: FixedOffset,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let time =
        local(entry.ts, tz).map_or_else(|| "--:--".to_owned(), |t| t.format("%H:%M").to_string());
    let time = Span::styled(format!("{time} "), Style::new().dim());
    // Only messages have lines of their own: a system line that quotes a
    // peer's name or error message stays one line.
    let body = escape_for_terminal(&entry.body, !matches!(entry.kind, EntryKind::System));

    let system = fg(theme.system).dim().italic();
    let (prefix, body_style, mark): (Vec<Span<'static>>, Style, Vec<(String, Style)>) =
        match &entry.kind {
            EntryKind::System => (vec![time, Span::styled("-- ", system)], system, Vec::new()),
            EntryKind::Own { state, .. } => {
                let own = fg(theme.own).bold();
                let mark = delivery(state, theme);
                (sender(time, me, own, width), Style::new(), mark)
            }
            EntryKind::Peer { from, .. } => {
                let theirs = fg(theme.peer).bold();
                (sender(time, from, theirs, width), Style::new(), Vec::new())
            }
        };

    let prefix_w: usize = prefix.iter().map(|s| text::width(&s.content)).sum();
    let indent = if width >= prefix_w + MIN_BODY {
        prefix_w
    } else {
        TIME_WIDTH.min(width / 2)
    };
    let first = width.saturating_sub(prefix_w);
    let rest = width.saturating_sub(indent);

    let logical: Vec<&str> = body.split('\n').collect();
    let last = logical.len() - 1;
    let mut out: Vec<Line<'static>> = Vec::new();
    for (n, part) in logical.iter().enumerate() {
        let mut pieces: Vec<(&str, Style)> = vec![(part, body_style)];
        if n == last {
            pieces.extend(mark.iter().map(|(s, st)| (s.as_str(), *st)));
        }
        let rows = wrap(&pieces, if n == 0 { first } else { rest }, rest);
        for (r, row) in rows.into_iter().enumerate() {
            let lead = if n == 0 && r == 0 {
                prefix.clone()
            } else {
                vec![Span::raw(spaces(indent))]
            };
            out.push(Line::from([lead, row.spans].concat()));
        }
    }
    out
}

/// `HH:MM name: ` with the name escaped and cut to fit.
fn sender(time: Span<'static>, name: &str, style: Style, width: usize) -> Vec<Span<'static>> {
    let max = MAX_NAME.min(width / 3).max(1);
    let name = truncate(&text::name(name), max);
    vec![time, Span::styled(name, style), Span::raw(": ")]
}

/// The mark after one of our messages: ` …`, ` ✓` or ` ✗ why`.
fn delivery(state: &Delivery, theme: &Theme) -> Vec<(String, Style)> {
    match state {
        Delivery::Sending => vec![(" …".to_owned(), Style::new().dim())],
        Delivery::Delivered => vec![(" ✓".to_owned(), fg(theme.delivered))],
        Delivery::Sent => vec![(" (sent)".to_owned(), Style::new().dim())],
        Delivery::Waiting(why) => {
            let waiting = fg(theme.waiting);
            vec![
                (" ◷ ".to_owned(), waiting),
                (text::name(why).into_owned(), waiting),
            ]
        }
        Delivery::Failed(why) => {
            let error = fg(theme.error);
            let why = text::line(why);
            vec![(" ✗ ".to_owned(), error), (why.into_owned(), error)]
        }
    }
}
