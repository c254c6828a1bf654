//! The `/qr` overlay drawn into a `TestBackend`: a committed snapshot at
//! 80×24, and the code read back from the drawn cells as a phone would,
//! at 80×24 and on screens too small for the box or for the code.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use super::draw;
use crate::app::{App, DiscoveryState, QrView, Theme};
use crate::web::qr::{QUIET_ZONE_SCREEN, decode, half_blocks};

const URL: &str = "http://192.168.178.100:7342/#t=0123456789abcdef0123456789abcdef";
const LOCAL: &str = "http://laptop.local:7342/#t=0123456789abcdef0123456789abcdef";

fn app(others: &[&str]) -> App {
    let mut app = App::new("laptop".into(), "f".repeat(32), "abc".into(), 0);
    app.me.port = 7342;
    app.discovery = DiscoveryState::Active;
    app.qr = Some(QrView {
        url: URL.into(),
        local: Some(LOCAL.into()),
        others: others.iter().map(|s| (*s).to_owned()).collect(),
        warning: None,
        code: half_blocks(URL, QUIET_ZONE_SCREEN).unwrap(),
        new_token: false,
    });
    app
}

fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| {
            draw(f, app);
        })
        .unwrap();
    terminal
}

/// The screen's rows as text, one string per row.
fn rows(terminal: &Terminal<TestBackend>) -> Vec<String> {
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect()
        })
        .collect()
}

#[test]
fn at_80x24_the_code_and_both_addresses_show_and_the_code_reads_as_the_url() {
    let app = app(&["172.17.0.1 (docker0)"]);
    let terminal = render(&app, 80, 24);
    insta::assert_snapshot!("qr_overlay_80x24", terminal.backend());
    let screen = rows(&terminal);
    assert_eq!(decode(&screen), [URL]);
    for text in [URL, LOCAL, "172.17.0.1 (docker0)", "any key closes"] {
        assert!(
            screen.iter().any(|r| r.contains(text)),
            "{text} not on screen:\n{}",
            screen.join("\n")
        );
    }
    // White on black, whatever the terminal's colours.
    let buffer = terminal.backend().buffer();
    let code_cell = (0..24)
        .flat_map(|y| (0..80).map(move |x| (x, y)))
        .find(|&p| buffer[p].symbol() == "▄")
        .unwrap();
    assert_eq!(
        (buffer[code_cell].fg, buffer[code_cell].bg),
        (Color::White, Color::Black)
    );
}

#[test]
fn without_colour_the_code_takes_the_terminals_colours() {
    let mut app = app(&[]);
    app.theme = Theme::monochrome();
    let terminal = render(&app, 80, 24);
    assert_eq!(decode(&rows(&terminal)), [URL]);
    let buffer = terminal.backend().buffer();
    assert!(
        buffer
            .content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
    );
}

#[test]
fn a_small_screen_drops_the_box_before_the_code_and_then_asks_for_room() {
    // 21 rows: no room for the box, the code and both addresses still.
    let terminal = render(&app(&["10.0.0.9 (eth1)"]), 60, 21);
    let screen = rows(&terminal);
    assert_eq!(decode(&screen), [URL], "{}", screen.join("\n"));
    assert!(!screen.iter().any(|r| r.contains("any key closes")));
    // 19 rows: the code alone.
    let screen = rows(&render(&app(&[]), 60, 19));
    assert_eq!(decode(&screen), [URL], "{}", screen.join("\n"));
    // Too small for the code: the address, and what it takes to see the code.
    let screen = rows(&render(&app(&[]), 50, 12));
    assert_eq!(decode(&screen), Vec::<String>::new());
    let text = screen.concat();
    assert!(
        text.contains("enlarge the window to 37×19"),
        "{}",
        screen.join("\n")
    );
    assert!(
        text.contains("http://192.168.178.100:7342/"),
        "{}",
        screen.join("\n")
    );
}
