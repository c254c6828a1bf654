//! The peers pane (left): one row per known peer in the App's order, with a
//! mark for its state (`●` connected, `○` online, `✗` online but we cannot
//! talk to it, `·` offline), its name, a dim host when it says something the
//! name does not, and at the right edge how its open session is protected
//! (`enc` encrypted, `enc✓` verified, `enc?` encrypted but unauthenticated,
//! `plain` in the error colour; nothing without a session) and its unread
//! count, or "offline" (after `◷N` when N of our texts wait for it). Peers
//! we only have history with are listed offline. The row under the cursor
//! is highlighted, strongly when the pane has the focus. With no peers it
//! shows a hint, and how a phone joins (`/qr`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::text::{self, spaces, truncate};
use super::{fg, pane_block, security_mark};
use crate::app::{App, DiscoveryState, Focus, PeerEntry, Theme};

/// Draws the pane into `area`.
pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Peers;
    let block = pane_block(Line::from(" Peers "), focused, &app.theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    if app.peers.is_empty() {
        let hint = match app.discovery {
            DiscoveryState::Off(_) => "discovery off: /connect HOST",
            DiscoveryState::Starting | DiscoveryState::Active | DiscoveryState::Limited(_) => {
                "no peers yet — waiting for mDNS…"
            }
        };
        // The other device is most often a phone with nothing installed.
        let hint = vec![
            Line::from(hint),
            Line::from(""),
            Line::from("A phone? /qr shows the address its browser opens."),
        ];
        let hint = Paragraph::new(hint)
            .style(Style::new().dim())
            .wrap(Wrap { trim: true });
        frame.render_widget(hint, inner);
        return;
    }

    let width = usize::from(inner.width);
    let height = usize::from(inner.height);
    let cursor = app.cursor.min(app.peers.len() - 1);
    // Scroll just enough to keep the cursor on screen.
    let offset = (cursor + 1).saturating_sub(height);
    let highlight = if focused {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    } else {
        Style::new().bg(app.theme.selection)
    };
    let lines: Vec<Line> = app
        .peers
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, peer)| {
            let open = app.open.as_deref() == Some(peer.id.as_str());
            let line = row(peer, &app.shown_name(peer), width, open, &app.theme);
            if i == cursor {
                line.style(highlight)
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// One peer's row, exactly `width` cells wide so a highlight fills it.
fn row(
    peer: &PeerEntry,
    full_name: &str,
    width: usize,
    open: bool,
    theme: &Theme,
) -> Line<'static> {
    let online = peer.online();
    let (mark, mark_style) = if peer.connected {
        ("●", fg(theme.online))
    } else if online && peer.problem.is_some() {
        // Listed, but we cannot talk to it (its conversation says why).
        ("✗", fg(theme.error))
    } else if online {
        ("○", Style::new())
    } else {
        ("·", fg(theme.offline).dim())
    };
    let badge = badge(peer, theme);
    let badge_w = if badge.is_empty() {
        0
    } else {
        badge.iter().map(|(b, _)| text::width(b)).sum::<usize>() + 1
    };

    let mut name_style = if online {
        Style::new()
    } else {
        Style::new().dim()
    };
    if open {
        name_style = name_style.bold();
    }
    let name = text::truncate_name(full_name, width.saturating_sub(2 + badge_w));
    let mut used = 2 + text::width(&name);
    let mut spans = vec![
        Span::styled(mark, mark_style),
        Span::raw(" "),
        Span::styled(name, name_style),
    ];

    let host = short_host(&peer.host);
    let room = width.saturating_sub(used + badge_w + 1);
    if room >= 4 && !host.is_empty() && !host.eq_ignore_ascii_case(full_name) {
        let host = truncate(&text::line(host), room);
        used += 1 + text::width(&host);
        spans.push(Span::styled(format!(" {host}"), Style::new().dim()));
    }

    if !badge.is_empty() {
        let pad = width.saturating_sub(used + badge_w - 1);
        used += pad + badge_w - 1;
        spans.push(Span::raw(spaces(pad)));
        spans.extend(badge.into_iter().map(|(b, style)| Span::styled(b, style)));
    }
    spans.push(Span::raw(spaces(width.saturating_sub(used))));
    Line::from(spans)
}

/// What the right edge of a row says: how the open session is protected
/// (`enc`, `enc✓`, `enc?`, `plain`), then `(3)` unread; or `offline`,
/// after `◷2` when two of our texts wait for the peer.
fn badge(peer: &PeerEntry, theme: &Theme) -> Vec<(String, Style)> {
    let mut badge = Vec::new();
    if peer.kind == crate::peer::PeerKind::Web {
        // A phone's browser: marked like raw peers are, by how it came.
        badge.push(("web ".to_owned(), fg(theme.waiting)));
    }
    if let Some(security) = peer.security() {
        let (tag, _, style) = security_mark(security, theme);
        badge.push((tag.to_owned(), style));
    }
    if peer.unread > 0 {
        if !badge.is_empty() {
            badge.push((" ".to_owned(), Style::new()));
        }
        badge.push((format!("({})", peer.unread), fg(theme.unread).bold()));
        return badge;
    }
    if peer.online() {
        return badge;
    }
    let waiting = peer.undelivered();
    if waiting > 0 {
        badge.push((format!("◷{waiting} "), fg(theme.waiting)));
    }
    badge.push(("offline".to_owned(), fg(theme.offline).dim()));
    badge
}

/// `laptop.local.` → `laptop`; addresses and other names unchanged.
fn short_host(host: &str) -> &str {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.strip_suffix(".local").unwrap_or(host)
}
