//! A private tmux server (its own socket in a temporary directory, no user
//! configuration) for driving real terminal programs: start sessions of a
//! given size, type keys, paste, and poll the screen until it shows what a
//! test waits for. Panes stay after their process exits (`remain-on-exit`),
//! so an exited program can still be inspected. The server, and with it every
//! pane, is killed when the [`Tmux`] is dropped, also when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Path of the tmux binary.
pub const TMUX: &str = "/usr/bin/tmux";

/// How often the screen is captured while waiting.
const POLL: Duration = Duration::from_millis(50);

/// A tmux server of our own.
pub struct Tmux {
    dir: tempfile::TempDir,
    sock: PathBuf,
    conf: PathBuf,
    /// The server's pid, known once the first session exists.
    server: Option<u32>,
}

impl Tmux {
    /// A server-to-be on a private socket; it starts with the first session.
    /// Panics, saying how to get it, when tmux is not installed.
    #[track_caller]
    pub fn new() -> Tmux {
        assert!(
            Path::new(TMUX).exists(),
            "this test runs lantalk in a terminal through tmux and needs {TMUX} \
             (Debian package tmux); scripts/test.sh installs it when run as root"
        );
        let dir = tempfile::Builder::new()
            .prefix("lantalk-tmux")
            .tempdir()
            .expect("temporary directory for tmux");
        let sock = dir.path().join("sock");
        let conf = dir.path().join("tmux.conf");
        // Loaded when the server starts, so it holds for the first pane too:
        // a pane whose process exits stays, with its exit status.
        std::fs::write(
            &conf,
            "set-option -g default-shell /bin/sh\n\
             set-option -wg remain-on-exit on\n",
        )
        .expect("write tmux.conf");
        Tmux {
            dir,
            sock,
            conf,
            server: None,
        }
    }

    /// Like [`Tmux::new`], with `extra` appended to the server's
    /// configuration (tmux commands, one a line), e.g. `set -s set-clipboard on`.
    #[track_caller]
    pub fn with_config(extra: &str) -> Tmux {
        let tmux = Tmux::new();
        let mut conf = std::fs::read_to_string(&tmux.conf).expect("read tmux.conf");
        conf.push_str(extra);
        conf.push('\n');
        std::fs::write(&tmux.conf, conf).expect("write tmux.conf");
        tmux
    }

    /// The directory holding the socket; free for the test's own files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `tmux ARGS` against our server; returns its output, whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(TMUX)
            .arg("-f")
            .arg(&self.conf)
            .arg("-S")
            .arg(&self.sock)
            .args(args)
            .env_remove("TMUX")
            .env("SHELL", "/bin/sh")
            // The server and every pane: no user config file.
            .env(super::NO_USER_CONFIG.0, super::NO_USER_CONFIG.1)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {TMUX}: {e}"))
    }

    /// Runs `tmux ARGS`, panicking if it fails; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts session `name`, `width`×`height`, running the shell command `cmd`.
    pub fn new_session(&mut self, name: &str, width: u16, height: u16, cmd: &str) {
        self.ok(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            cmd,
        ]);
        if self.server.is_none() {
            let pid = self.display(name, "#{pid}");
            self.server = Some(pid.parse().unwrap_or_else(|_| panic!("server pid {pid:?}")));
        }
    }

    /// Starts the chat screen called `name` in session `name`, `size` cells,
    /// on this machine without mDNS, listening on `port` with data
    /// directory `dir`; returns once its status bar shows the port.
    pub fn start_local_chat(&mut self, name: &str, dir: &Path, port: u16, size: (u16, u16)) {
        let cmd = [
            env!("CARGO_BIN_EXE_lantalk"),
            "--no-mdns",
            "--port",
            &port.to_string(),
            "--data-dir",
            dir.to_str().unwrap(),
            "--name",
            name,
        ]
        .map(super::lan::shell_quote)
        .join(" ");
        self.new_session(name, size.0, size.1, &format!("exec {cmd}"));
        self.wait_screen(
            name,
            "the status bar with our port",
            super::local::WAIT,
            |s| {
                s.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| l.contains(&format!(":{port}")))
            },
        );
    }

    /// Runs the shell command `cmd` again in session `name`'s pane (dead or
    /// not), same size. Unlike killing the session and starting a new one,
    /// the server stays: no race with a server exiting with its last session.
    pub fn respawn(&self, name: &str, cmd: &str) {
        self.ok(&["respawn-pane", "-k", "-t", name, cmd]);
    }

    /// A format (`#{pane_dead}` …) expanded for the pane of session `name`.
    pub fn display(&self, name: &str, format: &str) -> String {
        self.ok(&["display-message", "-p", "-t", name, format])
            .trim_end_matches('\n')
            .to_owned()
    }

    /// The visible screen of session `name`, one line per row, trailing spaces trimmed.
    pub fn capture(&self, name: &str) -> String {
        self.ok(&["capture-pane", "-p", "-t", name])
    }

    /// Presses keys by tmux name (`Tab`, `Enter`, `C-c`, …), in order.
    pub fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.ok(&args);
    }

    /// Types `text` literally, character by character.
    pub fn type_text(&self, name: &str, text: &str) {
        self.ok(&["send-keys", "-t", name, "-l", text]);
    }

    /// Pastes `text` into session `name` as one bracketed paste (when the
    /// program asked for bracketed paste, as a terminal would).
    pub fn paste(&self, name: &str, text: &str) {
        let file = self.dir.path().join(format!("paste-{name}"));
        std::fs::write(&file, text).expect("write paste buffer");
        let file = file.to_str().expect("utf-8 temp path");
        let buffer = format!("paste-{name}");
        self.ok(&["load-buffer", "-b", &buffer, file]);
        self.ok(&["paste-buffer", "-p", "-d", "-b", &buffer, "-t", name]);
    }

    /// Polls the screen of `name` every 50 ms until `pred` holds for it and
    /// returns that capture; after `timeout`, or as soon as the pane's
    /// process has exited (its screen will not change), panics with the last
    /// capture.
    pub fn wait_screen(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture(name);
            if pred(&screen) {
                return screen;
            }
            let dead = self.display(name, "#{pane_dead}") == "1";
            if dead || Instant::now() >= deadline {
                let why = if dead {
                    // The last capture may predate the exit.
                    let screen = self.capture(name);
                    if pred(&screen) {
                        return screen;
                    }
                    "the process exited".to_owned()
                } else {
                    format!("after {timeout:?}")
                };
                let exit = self.display(
                    name,
                    "pane_dead=#{pane_dead} status=#{pane_dead_status} signal=#{pane_dead_signal}",
                );
                panic!(
                    "{name}: no {what} on screen, {why} ({exit}); last capture:\n{}",
                    framed(&self.capture(name))
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Waits until the screen of `name` contains `needle`; returns the capture.
    pub fn wait_for(&self, name: &str, needle: &str, timeout: Duration) -> String {
        self.wait_screen(name, &format!("{needle:?}"), timeout, |s| {
            s.contains(needle)
        })
    }

    /// Waits until the process in the pane of `name` has exited and been
    /// reaped; returns its exit status, or `None` if a signal ended it.
    pub fn wait_dead(&self, name: &str, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            // The pane is dead at the terminal's EOF; the status comes once
            // the server has reaped the process.
            let dead = self.display(name, "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}");
            match dead.split(':').collect::<Vec<_>>()[..] {
                ["1", status, _] if !status.is_empty() => {
                    return Some(status.parse().expect("numeric pane_dead_status"));
                }
                ["1", "", signal] if !signal.is_empty() => return None,
                ["1", "", ""] => self.nudge_reaper(),
                _ => {}
            }
            if Instant::now() >= deadline {
                let pid = self.display(name, "#{pane_pid}");
                panic!(
                    "{name}: process {pid} not ended after {timeout:?} \
                     (pane_dead:status:signal = {dead}; {}); last capture:\n{}",
                    process_state(&pid),
                    framed(&self.capture(name))
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Makes the server reap its exited children. tmux built with
    /// libutempter swaps out its SIGCHLD handler while it removes a dead
    /// pane's utmp record, and a child exiting meanwhile stays a zombie with
    /// no exit status until some other SIGCHLD arrives
    /// (<https://github.com/tmux/tmux/issues/311>, tmux/tmux#4559).
    fn nudge_reaper(&self) {
        if let Some(pid) = self.server {
            let _ = Command::new("kill")
                .args(["-CHLD", &pid.to_string()])
                .status();
        }
    }
}

impl Default for Tmux {
    fn default() -> Self {
        Tmux::new()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let Some(pid) = self.server else { return };
        // Every pane gets SIGHUP; the server exits.
        let _ = self.run(&["kill-server"]);
        let deadline = Instant::now() + Duration::from_secs(2);
        let proc = PathBuf::from(format!("/proc/{pid}"));
        while proc.exists() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if proc.exists() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// A capture with a margin, so trailing blanks and empty rows show in a panic message.
pub fn framed(screen: &str) -> String {
    screen
        .lines()
        .map(|l| format!("    |{l}\n"))
        .collect::<String>()
}

/// What /proc says of process `pid` and its threads: `State: …` of each, or that it is gone.
fn process_state(pid: &str) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("no process {pid}");
    };
    let mut states: Vec<String> = tasks
        .flatten()
        .map(|task| {
            let path = task.path();
            let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
            let field = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .unwrap_or("?")
                    .trim()
                    .to_owned()
            };
            let wchan = std::fs::read_to_string(path.join("wchan")).unwrap_or_default();
            format!(
                "{} {} ppid {} ({wchan})",
                field("Name:"),
                field("State:"),
                field("PPid:")
            )
        })
        .collect();
    states.sort();
    format!("process {pid} threads: {}", states.join(", "))
}
