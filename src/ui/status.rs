//! The status bar (last row, no border): our name, our port, how many peers
//! are online, the state of mDNS discovery and, when it is not kept, of
//! history on the left, `F1 help` on the right. The left part is cut so the
//! help hint always shows.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::fg;
use super::text::{self, truncate};
use crate::app::{App, DiscoveryState, HistoryMode};

/// The hint at the right edge.
const HELP: &str = "F1 help ";

/// Draws the bar into `area` (one row).
pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let sep = || Span::styled(" · ", Style::new().dim());
    // Where others can reach us: what they would type after /connect.
    let port = match (&app.me.not_listening, app.me.addr, app.me.port) {
        (Some(why), ..) => Span::styled(
            format!("not listening ({}): outgoing only", text::line(why)),
            fg(app.theme.notice),
        ),
        (None, _, 0) => Span::raw(":…"),
        (None, Some(ip), port) => Span::raw(std::net::SocketAddr::new(ip, port).to_string()),
        (None, None, port) => Span::raw(format!("no network :{port}")),
    };
    let online = app.peers.iter().filter(|p| p.online()).count();
    let discovery = match &app.discovery {
        DiscoveryState::Starting => Span::styled("mDNS starting", Style::new().dim()),
        DiscoveryState::Active => Span::styled("mDNS on", fg(app.theme.online)),
        DiscoveryState::Off(reason) | DiscoveryState::Limited(reason) => {
            Span::styled(text::line(reason).into_owned(), fg(app.theme.notice))
        }
    };

    let room = usize::from(area.width).saturating_sub(text::width(HELP) + 1);
    let name = truncate(&text::name(&app.me.name), room.saturating_sub(1).min(24));
    let mut left = vec![
        Span::raw(" "),
        Span::styled(name, Style::new().bold()),
        sep(),
        port,
        sep(),
        Span::raw(format!("{online} online")),
        sep(),
        discovery,
    ];
    if let Some(history) = history(app) {
        left.extend([sep(), history]);
    }
    let left = Line::from(left);
    let left_area = Rect {
        width: u16::try_from(room).unwrap_or(area.width),
        ..area
    };
    frame.render_widget(Paragraph::new(left), left_area);
    let help_w = u16::try_from(text::width(HELP))
        .unwrap_or(0)
        .min(area.width);
    let help_area = Rect {
        x: area.right() - help_w,
        width: help_w,
        ..area
    };
    let help = Line::styled(HELP, Style::new().dim()).alignment(Alignment::Right);
    frame.render_widget(Paragraph::new(help), help_area);
}

/// History's state when it is not kept: discreet for `--no-history`, the
/// reason in yellow when the database failed; nothing while it works.
fn history(app: &App) -> Option<Span<'static>> {
    match &app.history_mode {
        HistoryMode::Unknown | HistoryMode::On => None,
        HistoryMode::Disabled => Some(Span::styled("history off", Style::new().dim())),
        HistoryMode::Off(why) => {
            let why = text::line(why);
            let why = if why.contains("history") {
                why.into_owned()
            } else {
                format!("history off: {why}")
            };
            Some(Span::styled(why, fg(app.theme.notice)))
        }
    }
}
