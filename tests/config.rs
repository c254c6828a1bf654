//! The config file end to end: the real binary reading `config.toml` from
//! the platform config directory or from `--config FILE`, over loopback
//! sessions (`--no-mdns`, 127.0.0.1) in this machine's network namespace,
//! plus what needs mDNS on a namespace LAN (root only).
//!
//! Every run here gets its own `XDG_CONFIG_HOME` (an empty or prepared
//! temporary directory) or `--config`, so no test reads the user's own file.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::lan::Lan;
use common::local::{Finished, WAIT, data_dir, lantalk, run};
use common::proc::{BIN, Proc, port_of};
use common::tmux::{Tmux, framed};
use tempfile::TempDir;

/// A config directory for one test: `XDG_CONFIG_HOME`, holding
/// `lantalk/config.toml` when given a text.
struct ConfigHome {
    dir: TempDir,
}

impl ConfigHome {
    /// No config file at all.
    fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// `lantalk/config.toml` holding `text`.
    fn with(text: &str) -> Self {
        let home = Self::empty();
        std::fs::create_dir_all(home.file().parent().unwrap()).unwrap();
        std::fs::write(home.file(), text).unwrap();
        home
    }

    /// Where lantalk looks for its config on Linux under this home.
    fn file(&self) -> PathBuf {
        self.dir.path().join("lantalk").join("config.toml")
    }

    /// `lantalk --no-mdns --data-dir DATA` with this config directory.
    fn lantalk(&self, data: &Path) -> Command {
        let mut cmd = lantalk();
        cmd.env("XDG_CONFIG_HOME", self.dir.path())
            .arg("--data-dir")
            .arg(data);
        cmd
    }

    /// Runs `lantalk ARGS` to completion.
    fn run(&self, data: &Path, args: &[&str]) -> Finished {
        let mut cmd = self.lantalk(data);
        cmd.args(args);
        run(cmd, None, WAIT)
    }

    /// Starts `lantalk ARGS listen` and waits for its port line.
    fn listen(&self, data: &Path, args: &[&str]) -> (Proc, String) {
        let mut cmd = self.lantalk(data);
        cmd.args(args).arg("listen");
        let mut proc = Proc::spawn(cmd);
        let line = proc.wait_err(WAIT, |l| l.contains("listening on port"));
        (proc, line)
    }
}

/// A config file outside any config directory, for `--config`.
fn file_with(dir: &TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("other.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn addr(line: &str) -> String {
    format!("127.0.0.1:{}", port_of(line))
}

#[test]
fn the_files_name_is_what_the_peer_sees_and_a_flag_overrides_it() {
    let listener_home = ConfigHome::with("name = \"desk\"\n");
    let sender_home = ConfigHome::with("# the phone\nname = \"phone-from-file\"\n");
    let (ld, sd) = (data_dir(), data_dir());

    let (mut listen, line) = listener_home.listen(ld.path(), &["--port", "0"]);
    assert!(line.ends_with(" as \"desk\""), "{line}");
    let to = addr(&line);

    sender_home
        .run(sd.path(), &["send", &to, "from", "the", "file"])
        .assert_success();
    listen.wait_out(WAIT, |l| l == "phone-from-file: from the file");

    sender_home
        .run(
            sd.path(),
            &["--name", "flagged", "send", &to, "from a flag"],
        )
        .assert_success();
    listen.wait_out(WAIT, |l| l == "flagged: from a flag");
}

#[test]
fn the_files_port_is_used_and_a_flag_overrides_it() {
    // A port free a moment ago: listen must take exactly it.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = ConfigHome::with(&format!("port = {free}\n"));
    let data = data_dir();
    let (listen, line) = home.listen(data.path(), &[]);
    assert_eq!(port_of(&line), free, "{line}");
    drop(listen);

    // Held by us now: from the file, listen would say it is busy.
    let held = TcpListener::bind("0.0.0.0:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    let home = ConfigHome::with(&format!("port = {busy}\n"));
    let data = data_dir();
    let (_listen, line) = home.listen(data.path(), &["--port", "0"]);
    assert_ne!(port_of(&line), busy, "{line}");
    assert!(!line.contains("busy"), "--port 0 did not win: {line}");
}

/// `require-encryption = true` in the file: a raw text client is refused
/// with the line saying why, an encrypted `send` still goes through.
#[test]
fn require_encryption_from_the_file() {
    use std::io::{Read, Write};
    let home = ConfigHome::with("require-encryption = true\n");
    let data = data_dir();
    let (mut listen, line) = home.listen(data.path(), &["--port", "0"]);
    let to = addr(&line);
    let mut raw = std::net::TcpStream::connect(&to).unwrap();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    raw.write_all(b"hello in clear\n").unwrap();
    let mut told = String::new();
    raw.read_to_string(&mut told).unwrap();
    assert!(
        told.starts_with("lantalk: this lantalk accepts only encrypted sessions"),
        "{told:?}"
    );
    ConfigHome::empty()
        .run(data_dir().path(), &["send", &to, "encrypted"])
        .assert_success();
    listen.wait_out(WAIT, |l| l.ends_with(": encrypted"));
    assert!(
        !listen.drain_out().iter().any(|l| l.contains("in clear")),
        "the raw text was shown"
    );
}

#[test]
fn a_missing_file_is_fine() {
    let home = ConfigHome::empty();
    assert!(!home.file().exists());
    let data = data_dir();
    let (mut listen, line) = home.listen(data.path(), &["--port", "0", "--name", "desk"]);
    home.run(
        data_dir().path(),
        &["--name", "phone", "send", &addr(&line), "hi"],
    )
    .assert_success();
    listen.wait_out(WAIT, |l| l == "phone: hi");
}

/// Runs each command under a home whose file is `text` and checks that
/// every one fails with exit 2 and exactly `lantalk: FILE:ERROR`.
fn fails_naming_the_line(text: &str, error: &str) {
    let home = ConfigHome::with(text);
    let expected = format!("lantalk: {}:{error}\n", home.file().display());
    let data = data_dir();
    for args in [
        &["send", "127.0.0.1:9", "hi"][..],
        &["listen"],
        &["--port", "0", "--name", "x", "listen"],
        // The chat screen (no terminal here) stops at the config too.
        &[],
    ] {
        let out = home.run(data.path(), args);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr, expected, "{args:?}");
        assert_eq!(out.stdout, "", "{args:?}");
    }
}

#[test]
fn a_broken_file_fails_with_exit_2_naming_file_line_and_column() {
    fails_naming_the_line(
        "name = \"desk\"\n\nport = \"seven\"\n",
        "3:8: invalid type: string \"seven\", expected u16",
    );
    fails_naming_the_line(
        "name = \"desk\"\nport = = 3\n",
        "2:8: extra `=`, expected nothing",
    );
    fails_naming_the_line(
        "name = \"desk\"\n[colours]\nown = \"grene\"\n",
        "3:7: unknown colour \"grene\": give a name (green, light-blue, dark-gray, default), \
         \"#rrggbb\" or a palette index 0-255",
    );
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let home = ConfigHome::with("name = \"desk\"\n  nmae = \"typo\"\n");
    let out = home.run(data_dir().path(), &["send", "127.0.0.1:9", "hi"]);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    let expected = format!(
        "lantalk: {}:2:3: unknown field `nmae`, expected one of `name`, `port`",
        home.file().display()
    );
    assert!(out.stderr.starts_with(&expected), "{}", out.stderr);
}

#[test]
fn help_and_version_work_whatever_the_file_says() {
    let home = ConfigHome::with("port = = =\n");
    for flag in ["--help", "--version"] {
        home.run(data_dir().path(), &[flag]).assert_success();
    }
}

#[test]
fn config_names_another_file_which_must_exist() {
    // The usual file is broken: with --config it is not even read.
    let home = ConfigHome::with("port = \"broken\"\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let other = file_with(&elsewhere, "name = \"other\"\n");
    let other = other.to_str().unwrap();

    let data = data_dir();
    let (mut listen, line) = home.listen(data.path(), &["--config", other, "--port", "0"]);
    assert!(line.ends_with(" as \"other\""), "{line}");
    home.run(
        data_dir().path(),
        &["--config", other, "send", &addr(&line), "hello"],
    )
    .assert_success();
    listen.wait_out(WAIT, |l| l == "other: hello");

    let missing = elsewhere.path().join("missing.toml");
    let out = ConfigHome::empty().run(
        data_dir().path(),
        &[
            "--config",
            missing.to_str().unwrap(),
            "send",
            "127.0.0.1:9",
            "x",
        ],
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "lantalk: cannot read the config file {}: ",
            missing.display()
        )),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------
// What needs mDNS: on a namespace LAN, never in this machine's namespace
// ---------------------------------------------------------------------------

/// `lantalk --config FILE ARGS` on the one host of `lan`, to completion.
fn run_on(lan: &Lan, config: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    lan.run(0, "desk", &all, Duration::from_secs(20))
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn mdns_and_interfaces_from_the_file() {
    let lan = Lan::new("mdns_and_interfaces_from_the_file", 1);
    let dir = tempfile::tempdir().unwrap();
    let peers = [
        "--data-dir",
        "/nonexistent-unused",
        "peers",
        "--timeout",
        "0.5",
    ];

    let off = dir.path().join("off.toml");
    std::fs::write(&off, "mdns = false\n").unwrap();
    let out = run_on(&lan, &off, &peers);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("discovery is off"), "{stderr}");

    let nowhere = dir.path().join("nowhere.toml");
    std::fs::write(&nowhere, "interfaces = [\"nosuch0\"]\n").unwrap();
    let out = run_on(&lan, &nowhere, &peers);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("\"nosuch0\""), "{stderr}");

    // The flag replaces the file's list.
    let mut flagged = vec!["--interface", "eth0"];
    flagged.extend_from_slice(&peers);
    let out = run_on(&lan, &nowhere, &flagged);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// The chat screen, in tmux (loopback, --no-mdns)
// ---------------------------------------------------------------------------

/// BEL flags the window.
const TMUX_CONF: &str = "set-option -g bell-action any\nset-option -wg monitor-bell on";

/// The port in the status bar: " me · ADDR:PORT · …".
fn status_port(screen: &str) -> Option<u16> {
    let bar = screen.lines().rev().find(|l| !l.trim().is_empty())?;
    let addr = bar.split(" · ").nth(1)?;
    addr.rsplit(':').next()?.trim().parse().ok()
}

/// Starts the chat screen in session `name` with `config` (or an empty
/// config directory), has two senders write to it, and returns the screen
/// with colours (`capture-pane -e`) and whether the bell rang. The first
/// sender's conversation opens by itself; the second's is not on screen,
/// which is what rings the bell.
fn chat_screen(tmux: &mut Tmux, name: &str, config: Option<&Path>) -> (String, String, bool) {
    chat_screen_with(tmux, name, config, "")
}

/// [`chat_screen`] with `env` (`NAME=VALUE ...`) in lantalk's environment.
fn chat_screen_with(
    tmux: &mut Tmux,
    name: &str,
    config: Option<&Path>,
    env: &str,
) -> (String, String, bool) {
    let home = ConfigHome::empty();
    let data = data_dir();
    let config = config.map_or(String::new(), |c| format!("--config {}", c.display()));
    let cmd = format!(
        "exec env XDG_CONFIG_HOME={} {env} {BIN} --no-mdns --port 0 --data-dir {} {config}",
        home.dir.path().display(),
        data.path().display()
    );
    tmux.new_session(name, 100, 30, &cmd);
    let screen = tmux.wait_screen(name, "the port in the status bar", WAIT, |s| {
        status_port(s).is_some()
    });
    let to = format!("127.0.0.1:{}", status_port(&screen).unwrap());
    for sender in ["alpha", "beta"] {
        home.run(data_dir().path(), &["--name", sender, "send", &to, "hi"])
            .assert_success();
    }
    let screen = tmux.wait_screen(name, "beta's unread count", WAIT, |s| {
        s.lines().any(|l| l.contains("beta") && l.contains("(1)"))
    });
    // The bell goes out before the frame that shows the count; a little
    // more time all the same before saying it did not ring.
    std::thread::sleep(Duration::from_millis(300));
    let bell = tmux.display(name, "#{window_bell_flag}") == "1";
    let colours = tmux.ok(&["capture-pane", "-p", "-e", "-t", name]);
    (screen, colours, bell)
}

#[test]
#[ignore = "needs tmux"]
fn the_chat_screen_takes_name_bell_and_colours_from_the_file() {
    let mut tmux = Tmux::with_config(TMUX_CONF);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quiet.toml");
    std::fs::write(
        &file,
        "name = \"painter\"\nbell = false\n\n[colours]\naccent = 201\npeer = \"#ff0080\"\n",
    )
    .unwrap();

    // Without a file: the built-in colours, and the bell rings.
    let (screen, colours, bell) = chat_screen(&mut tmux, "plain", None);
    assert!(
        bell,
        "the bell did not ring without a file:\n{}",
        framed(&screen)
    );
    assert!(!colours.contains("38;5;201"), "{colours:?}");
    assert!(!colours.contains("38;2;255;0;128"), "{colours:?}");

    let (screen, colours, bell) = chat_screen(&mut tmux, "quiet", Some(&file));
    assert!(!bell, "bell = false, and the bell rang");
    let status = screen.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(status.starts_with(" painter · "), "{status}");
    // The focused input's border in colour 201, alpha's name on its
    // message in #ff0080.
    assert!(
        sgr_before(&colours, "┏")
            .iter()
            .any(|s| s.contains("38;5;201")),
        "{colours:?}"
    );
    assert!(
        sgr_before(&colours, "alpha")
            .iter()
            .any(|s| s.contains("38;2;255;0;128")),
        "{colours:?}"
    );
}

/// The colour parameters (30–38, 40–48, 90–97, 100–107: a foreground or
/// background colour; 39 and 49 are the terminal's own) of the SGR
/// sequences in a `capture-pane -e` screen.
fn colours_in(screen: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in screen.match_indices("\x1b[") {
        let rest = &screen[at + 2..];
        let Some(end) = rest.find(|c: char| !(c.is_ascii_digit() || c == ';')) else {
            continue;
        };
        if !rest[end..].starts_with('m') {
            continue;
        }
        let params = &rest[..end];
        let colour = params.split(';').any(|p| {
            matches!(
                p.parse::<u16>(),
                Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)
            )
        });
        if colour {
            found.push(params.to_owned());
        }
    }
    found
}

/// no-color.org: a non-empty `NO_COLOR` turns colour off (an empty one
/// does not), and a colour the config file names is still used.
#[test]
#[ignore = "needs tmux"]
fn no_color_turns_the_chat_screens_colours_off() {
    let mut tmux = Tmux::with_config(TMUX_CONF);
    let (_, colours, _) = chat_screen_with(&mut tmux, "coloured", None, "NO_COLOR=");
    assert!(
        !colours_in(&colours).is_empty(),
        "no colour without NO_COLOR: {colours:?}"
    );
    let (screen, colours, _) = chat_screen_with(&mut tmux, "plain", None, "NO_COLOR=1");
    assert!(
        colours_in(&colours).is_empty(),
        "colours with NO_COLOR=1: {:?}\n{}",
        colours_in(&colours),
        framed(&screen)
    );
    // Still bold, reversed: the focused pane and the unread count stand out.
    assert!(colours.contains("\x1b[1m"), "{colours:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pink.toml");
    std::fs::write(&file, "[colours]\npeer = \"#ff0080\"\n").unwrap();
    let (_, colours, _) = chat_screen_with(&mut tmux, "pink", Some(&file), "NO_COLOR=1");
    assert_eq!(colours_in(&colours), ["38;2;255;0;128"], "{colours:?}");
}

/// For each `needle` in a `capture-pane -e` screen, the SGR sequences
/// (`ESC [ … m`) right before it, run together.
fn sgr_before(screen: &str, needle: &str) -> Vec<String> {
    let found: Vec<String> = screen
        .match_indices(needle)
        .map(|(at, _)| {
            let mut start = at;
            while let Some(esc) = screen[..start]
                .strip_suffix('m')
                .and_then(|s| s.rfind("\x1b["))
            {
                let params = &screen[esc + 2..start - 1];
                if !params.bytes().all(|b| b.is_ascii_digit() || b == b';') {
                    break;
                }
                start = esc;
            }
            screen[start..at].to_owned()
        })
        .collect();
    assert!(!found.is_empty(), "{needle:?} not on screen: {screen:?}");
    found
}
