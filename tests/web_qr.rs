//! Getting a phone to the chat page: the address and QR code that
//! `lantalk web`, `lantalk listen --qr` and the chat screen's `/qr` show,
//! run as the real binary, read back from stderr or the screen, and the QR
//! code decoded as a phone's camera would (`rqrr`). In a namespace LAN the
//! address is known (`10.77.0.1`), so the choice of interface is checked
//! too.

mod common;

use std::path::Path;
use std::time::Duration;

use common::lan::Lan;
use common::local::{data_dir, lantalk_in};
use common::tmux::{Tmux, framed};

/// How long any one thing may take to show up.
const WAIT: Duration = Duration::from_secs(10);

/// Reads the QR codes in text drawn with half blocks (`█▀▄` light,
/// anything else dark), each character 4×8 pixels, inside a dark margin.
fn decode(lines: &[String]) -> Vec<String> {
    const SCALE: usize = 4;
    let cells: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
    let cols = cells.iter().map(Vec::len).max().unwrap_or(0);
    let margin = 4 * SCALE;
    let (w, h) = (
        cols * SCALE + 2 * margin,
        cells.len() * 2 * SCALE + 2 * margin,
    );
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let (Some(x), Some(y)) = (x.checked_sub(margin), y.checked_sub(margin)) else {
            return 0;
        };
        let lower = (y / SCALE) % 2 == 1;
        let c = cells
            .get(y / (2 * SCALE))
            .and_then(|r| r.get(x / SCALE))
            .copied();
        let lit = match c {
            Some('█') => true,
            Some('▀') => !lower,
            Some('▄') => lower,
            _ => false,
        };
        if lit { 255 } else { 0 }
    });
    image
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

/// The data directory's join token.
fn token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("web-token"))
        .expect("the token file")
        .trim()
        .to_owned()
}

/// The addresses printed on lines of their own (`  http://…`).
fn urls(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("  http://"))
        .map(|rest| format!("http://{rest}"))
        .collect()
}

#[test]
fn web_prints_the_address_with_the_token_and_a_code_that_reads_as_it() {
    let dir = data_dir();
    let run = lantalk_in(dir.path(), &["web"]);
    run.assert_success();
    let err: Vec<String> = run.stderr.lines().map(str::to_owned).collect();
    let first = token(dir.path());
    let shown = urls(&err);
    // --no-mdns: no `.local` name to give.
    assert_eq!(shown.len(), 1, "{}", run.stderr);
    assert!(
        shown[0].starts_with("http://") && shown[0].ends_with(&format!(":7342/#t={first}")),
        "{}",
        run.stderr
    );
    assert_eq!(decode(&err), shown, "{}", run.stderr);
    // Piped: no colour codes.
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    // The same token while it is not replaced.
    let again = lantalk_in(dir.path(), &["web"]);
    assert_eq!(
        urls(&again.stderr.lines().map(str::to_owned).collect::<Vec<_>>()),
        shown
    );

    let rotated = lantalk_in(dir.path(), &["--port", "7400", "web", "--new-token"]);
    rotated.assert_success();
    let err: Vec<String> = rotated.stderr.lines().map(str::to_owned).collect();
    let second = token(dir.path());
    assert_ne!(second, first);
    let shown = urls(&err);
    assert!(
        shown.len() == 1 && shown[0].ends_with(&format!(":7400/#t={second}")),
        "{}",
        rotated.stderr
    );
    assert_eq!(decode(&err), shown, "{}", rotated.stderr);
    assert!(
        rotated.stderr.contains("no longer work"),
        "{}",
        rotated.stderr
    );
}

/// `lantalk web` names the browsers let in without the token, and
/// `--forget-browsers` forgets them (the running lantalk reads the file at
/// every join, so it counts at once).
#[test]
fn web_names_the_browsers_let_in_and_forgets_them() {
    let dir = data_dir();
    let none = lantalk_in(dir.path(), &["web", "--forget-browsers"]);
    none.assert_success();
    assert!(
        none.stderr.contains("no browser was remembered"),
        "{}",
        none.stderr
    );
    let browsers = lantalk::web::browsers::Browsers::load(dir.path());
    browsers.remember(&"ab".repeat(16), "Ana's phone");
    browsers.remember(&"cd".repeat(16), "tablet\u{1b}[2J");
    let shown = lantalk_in(dir.path(), &["web"]);
    shown.assert_success();
    assert!(
        shown
            .stderr
            .contains("2 browser(s) let in without the token join at once")
            && shown.stderr.contains("Ana's phone")
            && shown.stderr.contains("--forget-browsers"),
        "{}",
        shown.stderr
    );
    assert!(
        !shown.stderr.contains('\x1b'),
        "escaped: {:?}",
        shown.stderr
    );
    let forgot = lantalk_in(dir.path(), &["web", "--forget-browsers"]);
    forgot.assert_success();
    assert!(
        forgot.stderr.contains("forgot 2 browser(s)"),
        "{}",
        forgot.stderr
    );
    assert!(browsers.known().is_empty());
    let after = lantalk_in(dir.path(), &["web"]);
    assert!(!after.stderr.contains("browser(s)"), "{}", after.stderr);
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn on_a_lan_web_and_listen_qr_give_the_lans_address_and_the_local_name() {
    let lan = Lan::new("web_qr", 1);
    let dirs = data_dir();
    let dir = dirs.path().join("laptop");
    let dir_arg = dir.to_str().unwrap();
    let out = lan.run(0, "qrlaptop", &["--data-dir", dir_arg, "web"], WAIT);
    let err: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(out.status.success(), "{err:?}");
    let t = token(&dir);
    assert_eq!(
        urls(&err),
        [
            format!("http://10.77.0.1:7342/#t={t}"),
            format!("http://qrlaptop.local:7342/#t={t}")
        ],
        "{err:?}"
    );
    assert_eq!(decode(&err), [format!("http://10.77.0.1:7342/#t={t}")]);

    // `listen --qr` prints it once listening, with the port it got.
    let mut listen = lan.spawn(
        0,
        "qrlaptop",
        &["--data-dir", dir_arg, "--port", "0", "listen", "--qr"],
    );
    let line = listen.wait_err(WAIT, |l| l.contains("listening on port "));
    let port = common::proc::port_of(&line);
    let url = format!("http://10.77.0.1:{port}/#t={t}");
    listen.wait_err(WAIT, |l| l == format!("  {url}"));
    listen.wait_err(WAIT, |l| {
        l.contains(&format!("  http://qrlaptop.local:{port}/#t={t}"))
    });
    // The code's last row: the quiet zone's upper half.
    listen.wait_err(WAIT, |l| !l.is_empty() && l.chars().all(|c| c == '▀'));
    assert_eq!(decode(&listen.drain_err()), [url]);
}

/// The URLs on the chat screen (inside the overlay's borders).
fn screen_urls(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| l.find("http://").map(|at| &l[at..]))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
#[ignore = "needs root (network namespaces) and tmux"]
fn qr_in_the_chat_screen_shows_a_code_that_reads_and_qr_new_replaces_the_token() {
    let lan = Lan::new("web_qr_tui", 1);
    let dirs = data_dir();
    let dir = dirs.path().join("laptop");
    let mut tmux = Tmux::new();
    let cmd = lan.shell_command(0, "qrlaptop", &["--data-dir", dir.to_str().unwrap()]);
    // The smallest usual terminal: the whole code must fit.
    tmux.new_session("laptop", 80, 24, &format!("exec {cmd}"));
    tmux.wait_for("laptop", "F1 help", WAIT);
    // Typed before the port is known, /qr says so; wait for the port.
    tmux.wait_screen("laptop", "the port", WAIT, |s| s.contains(":7342"));
    tmux.type_text("laptop", "/qr");
    tmux.keys("laptop", &["Enter"]);
    let screen = tmux.wait_for("laptop", "any key closes", WAIT);
    let first = token(&dir);
    let url = format!("http://10.77.0.1:7342/#t={first}");
    assert_eq!(
        screen_urls(&screen),
        [
            url.clone(),
            format!("http://qrlaptop.local:7342/#t={first}")
        ],
        "{}",
        framed(&screen)
    );
    let lines: Vec<String> = screen.lines().map(str::to_owned).collect();
    assert_eq!(decode(&lines), [url], "{}", framed(&screen));

    // Any key closes it.
    tmux.keys("laptop", &["Escape"]);
    tmux.wait_screen("laptop", "the overlay closed", WAIT, |s| {
        !s.contains("any key closes")
    });

    tmux.type_text("laptop", "/qr new");
    tmux.keys("laptop", &["Enter"]);
    let screen = tmux.wait_for("laptop", "the old one no longer works", WAIT);
    let second = token(&dir);
    assert_ne!(second, first);
    let url = format!("http://10.77.0.1:7342/#t={second}");
    assert_eq!(screen_urls(&screen)[0], url, "{}", framed(&screen));
    let lines: Vec<String> = screen.lines().map(str::to_owned).collect();
    assert_eq!(decode(&lines), [url], "{}", framed(&screen));
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn listen_qr_gives_the_new_local_name_when_mdns_renames_the_host() {
    let lan = Lan::new("web_qr_rename", 3);
    let dirs = data_dir();
    let dir = |n: &str| dirs.path().join(n).to_str().unwrap().to_owned();
    let (first, second, phone) = (dir("first"), dir("second"), dir("phone"));
    let mut first = lan.spawn(0, "qrlaptop", &["--data-dir", &first, "listen"]);
    first.wait_err(WAIT, |l| l.contains("listening on port "));
    // The first one holds the name before the second asks for it.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let out = lan.run(
            1,
            "phone",
            &["--data-dir", &phone, "peers", "--json", "--timeout", "2"],
            WAIT,
        );
        if String::from_utf8_lossy(&out.stdout).contains("\"qrlaptop\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "qrlaptop never advertised"
        );
    }
    let mut second = lan.spawn(2, "qrlaptop", &["--data-dir", &second, "listen", "--qr"]);
    // The address by number first (the token is made for it).
    second.wait_err(WAIT, |l| l.starts_with("  http://10.77.0.3:7342/#t="));
    let t = token(&dirs.path().join("second"));
    // The old name leads to the first laptop: the new one is given.
    let line = second.wait_err(WAIT, |l| l.contains("a phone opens the chat at"));
    assert!(
        line.ends_with(&format!("http://qrlaptop-2.local:7342/#t={t}")),
        "{line}"
    );
}

#[test]
#[ignore = "needs tmux"]
fn on_a_terminal_the_printed_code_is_white_on_black_unless_no_color() {
    let dir = data_dir();
    let mut tmux = Tmux::new();
    let command = |env: &str| {
        format!(
            "exec env {env} {} --no-mdns --data-dir {} web",
            common::proc::BIN,
            dir.path().display()
        )
    };
    for (name, env, coloured) in [
        ("colour", "NO_COLOR=", true),
        ("plain", "NO_COLOR=1", false),
    ] {
        tmux.new_session(name, 80, 40, &command(env));
        assert_eq!(tmux.wait_dead(name, WAIT), Some(0));
        let screen = tmux.ok(&["capture-pane", "-p", "-e", "-t", name]);
        let styled = screen.contains("\x1b[97m") && screen.contains("\x1b[40m")
            || screen.contains("\x1b[97;40m");
        assert_eq!(styled, coloured, "{name}: {screen:?}");
        // Either way the code reads.
        let lines: Vec<String> = tmux.capture(name).lines().map(str::to_owned).collect();
        assert_eq!(decode(&lines).len(), 1, "{}", framed(&tmux.capture(name)));
    }
}
