//! The `/qr` overlay: the address a phone's browser opens and its QR code,
//! in a centred box over everything else (any key closes it).
//!
//! ```text
//! ╭ Open the chat on a phone on this network ───────────────────────╮
//! │ http://192.168.1.20:7342/#t=0123456789abcdef0123456789abcdef    │
//! │ http://laptop.local:7342/#t=0123456789abcdef0123456789abcdef    │
//! │              █████████████████████████████████████              │
//! │              ██ ▄▄▄▄▄ █ … 19 rows of half blocks …              │
//! │ other addresses: 172.17.0.1 (docker0)                           │
//! ╰─────────────────────────── /qr new: new token · any key closes ╯
//! ```
//!
//! The code is drawn whole or not at all (a cut code does not scan): what
//! gives way on a small screen is, in turn, the lines below the code, the
//! box, the `.local` line, and last the code itself (then the addresses
//! are shown with a request to enlarge the window). The code is white on
//! black whatever the theme, so that it reads on a light terminal too;
//! without colour (`NO_COLOR`) it relies on the terminal's dark background.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Padding, Paragraph};

use super::fg;
use super::text;
use crate::app::{QrView, Theme};

/// Draws `view` centred in `area`.
pub(super) fn draw(frame: &mut Frame, area: Rect, view: &QrView, theme: &Theme) {
    let code_w = view.code.first().map_or(0, |r| text::width(r));
    let code_h = view.code.len();
    let title = if view.new_token {
        " New address for a phone: the old one no longer works "
    } else {
        " Open the chat on a phone on this network "
    };
    let hint = " /qr new: new token · any key closes ";
    let url = text::line(&view.url);
    let local = view.local.as_deref().map(text::line);
    let others = (!view.others.is_empty())
        .then(|| text::line(&format!("other addresses: {}", view.others.join(", "))).into_owned());
    let warning = view.warning.as_deref().map(text::line);

    let widest = [Some(&url), local.as_ref()]
        .into_iter()
        .flatten()
        .map(|s| text::width(s))
        .chain([code_w, text::width(title), text::width(hint)])
        .max()
        .unwrap_or(0);
    // Borders and a space of margin each side.
    let boxed_w = u16::try_from(widest + 4)
        .unwrap_or(u16::MAX)
        .min(area.width);
    let inner_w = usize::from(boxed_w.saturating_sub(4));
    let wrapped = |s: &str, style: Style, width: usize| text::wrap(&[(s, style)], width, width);
    let url_style = fg(theme.accent).bold();
    let boxed_fits = code_w <= inner_w;
    let header = |width: usize, with_local: bool| {
        let mut lines = wrapped(&url, url_style, width);
        if let (Some(local), true) = (&local, with_local) {
            lines.extend(wrapped(local, Style::new(), width));
        }
        lines
    };
    let mut footer = Vec::new();
    if let Some(w) = &warning {
        footer.extend(wrapped(w, fg(theme.error), inner_w.max(1)));
    }
    if let Some(o) = &others {
        footer.extend(wrapped(o, Style::new().dim(), inner_w.max(1)));
    }

    let height = usize::from(area.height);
    let head = header(inner_w.max(1), true);
    if boxed_fits && head.len() + code_h + 2 <= height {
        // Lines below the code as long as they fit.
        footer.truncate(height - head.len() - code_h - 2);
        let lines: Vec<Line> = head
            .into_iter()
            .chain(code_lines(view, theme))
            .chain(footer)
            .collect();
        let rows = u16::try_from(lines.len() + 2).unwrap_or(area.height);
        let popup = centred(area, boxed_w, rows);
        let block = Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(fg(theme.accent))
            .padding(Padding::horizontal(1))
            .title(Line::from(title).bold())
            .title_bottom(Line::from(hint).right_aligned());
        frame.render_widget(Clear, popup);
        frame.render_widget(Paragraph::new(lines).block(block), popup);
        return;
    }
    // No box: the whole screen.
    let width = usize::from(area.width);
    let lines: Vec<Line> = if code_w <= width && header(width, true).len() + code_h <= height {
        header(width, true)
            .into_iter()
            .chain(code_lines(view, theme))
            .collect()
    } else if code_w <= width && header(width, false).len() + code_h <= height {
        header(width, false)
            .into_iter()
            .chain(code_lines(view, theme))
            .collect()
    } else if code_w <= width && code_h <= height {
        code_lines(view, theme)
    } else {
        let mut lines = header(width, true);
        let ask = format!("enlarge the window to {code_w}×{code_h} to see the QR code");
        lines.extend(wrapped(&ask, fg(theme.notice), width));
        lines
    };
    let rows = u16::try_from(lines.len())
        .unwrap_or(area.height)
        .min(area.height);
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines), centred(area, area.width, rows));
}

/// The code's rows, centred: white on black, or unstyled without colour.
fn code_lines(view: &QrView, theme: &Theme) -> Vec<Line<'static>> {
    let style = if *theme == Theme::monochrome() {
        Style::new()
    } else {
        Style::new().fg(Color::White).bg(Color::Black)
    };
    view.code
        .iter()
        .map(|row| Line::from(Span::styled(row.clone(), style)).centered())
        .collect()
}

/// A `width`×`height` rectangle in the middle of `area`.
fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let (width, height) = (width.min(area.width), height.min(area.height));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}
