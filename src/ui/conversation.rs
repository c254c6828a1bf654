//! The conversation pane (right): the open peer's messages, newest at the
//! bottom, each as `HH:MM name: body` word-wrapped with continuation rows
//! indented under the body, a delivery mark after our own messages, system
//! lines dimmed, warnings (`!! `, a refused key) bold in the error colour, a
//! verification code bold on a row of its own, and a date separator
//! wherever the local date changes. The title names the peer and its host;
//! at the right end of the border, how the open session is protected
//! (`encrypted`, `encrypted, verified ✓`, `encrypted, unauthenticated`, or
//! `plaintext, not encrypted` in the error colour). With nothing open it
//! shows a short welcome.
//!
//! With history kept, a dim line above the oldest entry says whether older
//! messages are loading, can be loaded by scrolling up, or whether this is the
//! beginning of the conversation. A search result jumped to is brought into
//! view (the scroll chosen is reported back) and drawn highlighted.
//!
//! Only what is visible is laid out: entries are wrapped from the newest
//! backwards until the scrolled-to window is full, so drawing costs the same
//! for a hundred entries as for a hundred thousand.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, NaiveDate};
use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::text::{self, spaces, truncate, wrap};
use super::{fg, pane_block, security_mark};
use crate::app::{
    App, Conversation, Delivery, Entry, EntryKind, Focus, PeerEntry, Theme, TopLine, View,
};
use crate::sanitize::escape_for_terminal;

/// What the pane says when no conversation is open.
const WELCOME: &str = "Select a peer with ↑/↓ and Enter, or type /connect HOST. F1 for help.";

/// The "HH:MM " column.
const TIME_WIDTH: usize = 6;

/// Longest sender name shown, in cells (a third of the pane if narrower).
const MAX_NAME: usize = 16;

/// Below this many cells beside the prefix, continuation rows start further left.
const MIN_BODY: usize = 12;

/// The title keeps at least this much of a peer's name (or all of a
/// shorter one) beside the protection mark's words; with less room the
/// mark is the short tag.
const MIN_TITLE_NAME: usize = 8;

/// A host is shown in the title only if at least this much of it fits.
const MIN_TITLE_HOST: usize = 6;

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
            ..View::default()
        };
    };

    let name = app.shown_name(peer);
    // How the session is protected, at the right end of the top border.
    let mark = mark(peer, &name, area.width, &app.theme);
    let mark_w = mark.as_ref().map_or(0, |m| m.width() + 1);
    let block = pane_block(title(peer, &name, area.width, mark_w), focused, &app.theme);
    let block = match mark {
        Some(mark) => block.title(mark.right_aligned()),
        None => block,
    };
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
            ..View::default()
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
            .style(if app.theme.unread == Color::Reset {
                // No colour (NO_COLOR): reversed stands out as well.
                Style::new().reversed().bold()
            } else {
                Style::new().fg(Color::Black).bg(app.theme.unread).bold()
            })
            .alignment(Alignment::Center);
        frame.render_widget(ratatui::widgets::Clear, bottom);
        frame.render_widget(Paragraph::new(mark), bottom);
    }
    View {
        page,
        max_scroll,
        jumped,
        ..View::default()
    }
}

/// The words marking how the session with `peer` is protected (the short
/// tag when the words would leave the name no room), padded with a space
/// each side; `None` without a session.
fn mark(peer: &PeerEntry, name: &str, width: u16, theme: &Theme) -> Option<Line<'static>> {
    let (tag, words, style) = security_mark(peer.security()?, theme);
    // Two corners, the mark's padding, one cell between the titles.
    let room = usize::from(width).saturating_sub(text::width(words) + 5);
    let shown = if room >= text::width(name).min(MIN_TITLE_NAME) + 2 {
        words
    } else {
        tag
    };
    Some(Line::from(vec![
        Span::raw(" "),
        Span::styled(shown, style),
        Span::raw(" "),
    ]))
}

/// ` name · host ` (the host dim, and only when there is room), cut to
/// leave the protection mark (`mark_w` cells with its gap) its room in a
/// pane `width` cells wide.
fn title(peer: &PeerEntry, name: &str, width: u16, mark_w: usize) -> Line<'static> {
    let room = usize::from(width).saturating_sub(2 + mark_w);
    let name = text::truncate_name(name, room.saturating_sub(2).max(1));
    let used = text::width(&name) + 2;
    let mut title = vec![
        Span::raw(" "),
        Span::styled(name, Style::new().bold()),
        Span::raw(" "),
    ];
    // A peer known only from history has no host to show.
    let host = text::line(peer.host.trim_end_matches('.'));
    if !host.is_empty() && used + 3 + MIN_TITLE_HOST.min(text::width(&host)) <= room {
        let host = truncate(&host, room - used - 3);
        title.push(Span::styled(format!("· {host} "), Style::new().dim()));
    }
    Line::from(title)
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
    // Only messages have lines of their own: a line from lantalk that
    // quotes a peer's name or error message stays one line.
    let body = escape_for_terminal(&entry.body, entry.kind.is_message());

    let system = fg(theme.system).dim().italic();
    let code = match &entry.kind {
        EntryKind::Code { code, .. } => text::line(code),
        _ => Cow::Borrowed(""),
    };
    let mark = match &entry.kind {
        EntryKind::Own { state, .. } => delivery(state, theme),
        _ => Vec::new(),
    };
    let mark: Vec<(&str, Style)> = mark.iter().map(|(s, st)| (s.as_str(), *st)).collect();
    // Each entry is one or more logical lines of styled pieces.
    let (prefix, logical): (Vec<Span<'static>>, Vec<Pieces>) = match &entry.kind {
        EntryKind::System => (
            vec![time, Span::styled("-- ", system)],
            vec![vec![(&body, system)]],
        ),
        EntryKind::Warning => {
            let loud = fg(theme.error).bold();
            (
                vec![time, Span::styled("!! ", loud)],
                vec![vec![(&body, loud)]],
            )
        }
        EntryKind::Code { verified, .. } => {
            // The code on a row of its own (green once verified), then
            // what to do with it.
            let colour = if *verified {
                theme.delivered
            } else {
                theme.accent
            };
            (
                vec![time, Span::styled("-- ", system)],
                vec![
                    vec![("verification code: ", system), (&code, fg(colour).bold())],
                    vec![(&body, system)],
                ],
            )
        }
        EntryKind::Own { .. } => {
            let own = fg(theme.own).bold();
            let mut lines = message_lines(&body);
            if let Some(last) = lines.last_mut() {
                last.extend(mark);
            }
            (sender(time, me, own, width), lines)
        }
        EntryKind::Peer { from, .. } => {
            let theirs = fg(theme.peer).bold();
            (sender(time, from, theirs, width), message_lines(&body))
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

    let mut out: Vec<Line<'static>> = Vec::new();
    for (n, pieces) in logical.iter().enumerate() {
        let rows = wrap(pieces, if n == 0 { first } else { rest }, rest);
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

/// One logical line (no `\n`) as styled pieces, for [`wrap`].
type Pieces<'a> = Vec<(&'a str, Style)>;

/// A message body's lines, unstyled.
fn message_lines(body: &str) -> Vec<Pieces<'_>> {
    body.split('\n')
        .map(|part| vec![(part, Style::new())])
        .collect()
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
