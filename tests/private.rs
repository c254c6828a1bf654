//! The data directory is private, against the real binary: after `listen`
//! and a `send` to it (history, known peers, locks written), the directory
//! is 0700 and every file in it 0600, the WAL included; a key file other
//! users can open is used with a warning that says how to fix it; a key
//! file that cannot be read is fatal, never replaced by a temporary key.
//!
//! Loopback only, `--no-mdns`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::lan::{require_root, shell_quote};
use common::local::{data_dir, lantalk, listen_in, run, send};
use common::proc::BIN;
use common::tmux::{Tmux, framed};

const WAIT: Duration = Duration::from_secs(10);

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Asserts `dir` is 0700 and holds only regular files (and the control
/// socket of a running lantalk), each 0600, among them every one of
/// `expected`; returns the names found.
#[track_caller]
fn assert_private(dir: &Path, expected: &[&str]) -> Vec<String> {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let names = names(dir);
    let mut wider = Vec::new();
    for name in &names {
        let path = dir.join(name);
        let meta = fs::symlink_metadata(&path).unwrap();
        let socket = name == "control.sock" && {
            use std::os::unix::fs::FileTypeExt as _;
            meta.file_type().is_socket()
        };
        assert!(
            meta.is_file() || socket,
            "{} is not a regular file",
            path.display()
        );
        let mode = mode(&path);
        if mode != 0o600 {
            wider.push(format!("{name} {mode:04o}"));
        }
    }
    assert!(wider.is_empty(), "not 0600 in {}: {wider:?}", dir.display());
    for name in expected {
        assert!(names.iter().any(|n| n == name), "no {name} in {names:?}");
    }
    names
}

#[test]
fn the_data_directory_and_every_file_in_it_are_private() {
    // Two directories as `tempfile` makes them (0755 here, empty): lantalk
    // makes them private itself, quietly.
    let laptop_dir = data_dir();
    let phone_dir = data_dir();
    let (mut laptop, port) = listen_in(
        laptop_dir.path(),
        &["--port", "0", "--name", "laptop", "listen"],
    );
    let out = send(
        &format!("127.0.0.1:{port}"),
        phone_dir.path(),
        "phone",
        &["hello"],
    );
    out.assert_success();
    laptop.wait_out(WAIT, |l| l == "phone: hello");
    assert!(
        out.stderr
            .lines()
            .all(|l| l.starts_with("lantalk: reached ")),
        "nothing to warn about: {}",
        out.stderr
    );

    // While `listen` runs: its history's WAL and shared memory are there.
    let found = assert_private(
        laptop_dir.path(),
        &[
            "id",
            "identity.pem",
            "lock",
            "history.sqlite3",
            "history.sqlite3-wal",
            "history.sqlite3-shm",
            "known_peers.json",
            "control.sock",
        ],
    );
    println!("listen's data directory: {found:?}");
    let found = assert_private(
        phone_dir.path(),
        &["id", "identity.pem", "history.sqlite3", "known_peers.json"],
    );
    println!("send's data directory: {found:?}");

    laptop.terminate();
    assert_eq!(laptop.wait_exit(WAIT).code(), Some(0), "{:?}", laptop.err);
    assert!(
        !laptop.err.iter().any(|l| l.contains("private")),
        "{:?}",
        laptop.err
    );
    assert_private(laptop_dir.path(), &["history.sqlite3"]);
}

/// A directory an earlier lantalk left open to others is made private,
/// and that is said once.
#[test]
fn an_older_open_data_directory_is_made_private_and_told_once() {
    let tmp = data_dir();
    let dir = tmp.path().join("older");
    lantalk::identity::load_or_create_keys(&dir).unwrap();
    set_mode(&dir, 0o755);
    let said = format!(
        "lantalk: made the data directory {} private (mode 0700; it was 0755, open to other users)",
        dir.display()
    );
    // Nobody listens on port 9: `send` fails (4), after the data directory.
    let (code, stderr) = fails(&dir, &["send", "127.0.0.1:9", "hi"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert_eq!(stderr.lines().next(), Some(said.as_str()), "{stderr}");
    assert_private(&dir, &["identity.pem", "history.sqlite3"]);
    let (_, stderr) = fails(&dir, &["send", "127.0.0.1:9", "hi"]);
    assert!(!stderr.contains("private"), "said once: {stderr}");
}

/// Root ignores permission bits; a read-only bind mount (in a mount
/// namespace of its own) really refuses the change. Needs root.
#[test]
#[ignore = "needs root (read-only bind mounts)"]
fn an_open_data_directory_that_cannot_be_changed_is_told_with_the_fix() {
    require_root(
        "an_open_data_directory_that_cannot_be_changed",
        "read-only bind mounts",
    );
    let tmp = data_dir();
    let dir = tmp.path().join("older");
    lantalk::identity::load_or_create_keys(&dir).unwrap();
    set_mode(&dir, 0o755);
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "sh",
        "-c",
        r#"mount --bind -o ro "$0" "$0" && shift && exec "$@""#,
    ])
    .arg(&dir)
    .arg("ignored")
    .arg(BIN)
    .args(["--no-mdns", "--data-dir"])
    .arg(&dir)
    .args(["send", "127.0.0.1:9", "hi"])
    .env(common::NO_USER_CONFIG.0, common::NO_USER_CONFIG.1)
    .env_remove("LANTALK_LOG")
    .stdin(Stdio::null());
    let out = run(cmd, None, WAIT);
    assert_eq!(
        out.stderr.lines().next(),
        Some(
            format!(
                "lantalk: the data directory {0} is open to other users (mode 0755) and cannot be made private: Read-only file system (os error 30); make it private with: chmod 700 {0}",
                dir.display()
            )
            .as_str()
        ),
        "{}",
        out.stderr
    );
    assert_eq!(mode(&dir), 0o755);
}

/// A data directory with a key made by lantalk's own code, the key file then
/// set to `mode`.
fn dir_with_key(mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = data_dir();
    lantalk::identity::load_or_create_keys(dir.path()).unwrap();
    let key = dir.path().join(lantalk::identity::KEY_FILE);
    set_mode(&key, mode);
    (dir, key)
}

#[test]
fn a_key_file_other_users_can_read_is_used_with_a_warning() {
    let (dir, key) = dir_with_key(0o644);
    let warning = format!(
        "lantalk: the key file {0} is open to other users (mode 0644): anyone who can read it can pose as this lantalk; make it private with: chmod 600 {0}",
        key.display()
    );
    let (mut laptop, port) = listen_in(dir.path(), &["--port", "0", "--name", "laptop", "listen"]);
    assert_eq!(laptop.err[0], warning, "{:?}", laptop.err);

    // `send` says it too, and works. (`--no-history`: on a node of its
    // own, with its own name, not through the listen on that directory.)
    let mut cmd = lantalk();
    cmd.arg("--data-dir")
        .arg(dir.path())
        .args(["--name", "laptop-too", "--no-history", "send"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("from the same key");
    let out = run(cmd, None, WAIT);
    out.assert_success();
    let mut said = out.stderr.lines();
    assert_eq!(said.next(), Some(warning.as_str()), "{}", out.stderr);
    // Without history its node knows no key: it says whom it reached.
    assert!(
        said.all(|l| l.starts_with("lantalk: reached laptop#")),
        "{}",
        out.stderr
    );
    laptop.wait_out(WAIT, |l| l == "laptop-too: from the same key");
    // Told, not changed behind the user's back.
    assert_eq!(mode(&key), 0o644);
}

/// `lantalk ARGS` in `dir` (which must not start a session): its exit
/// code and stderr.
fn fails(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = lantalk();
    cmd.arg("--data-dir").arg(dir).args(args);
    let out = run(cmd, None, WAIT);
    (out.code(), out.stderr)
}

#[test]
fn a_key_file_that_cannot_be_read_is_fatal() {
    // A directory where the key file should be: reading it fails with
    // EISDIR (for root too), not "not found".
    let dir = data_dir();
    let key = dir.path().join(lantalk::identity::KEY_FILE);
    fs::create_dir(&key).unwrap();
    let want = format!(
        "lantalk: cannot read the key file {}: Is a directory (os error 21); move it away to make a new identity (peers that pinned the old one will warn)\n",
        key.display()
    );
    for args in [
        &["--port", "0", "listen"][..],
        &["send", "127.0.0.1:9", "hi"],
    ] {
        let (code, stderr) = fails(dir.path(), args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr, want, "{args:?}");
    }
    // No temporary identity, nothing made but the lock `listen` takes first.
    assert_eq!(names(dir.path()), ["identity.pem", "lock"]);
}

/// Root reads any file: the key file's owner, without root, cannot read a
/// key file mode 0000. Run as `nobody` (setpriv, util-linux).
#[test]
#[ignore = "needs root (to run lantalk as another user)"]
fn a_key_file_its_user_cannot_read_is_fatal_and_says_how_to_fix_it() {
    require_root("a_key_file_its_user_cannot_read", "running as another user");
    const NOBODY: u32 = 65534;
    let tmp = data_dir();
    // `nobody` may pass through, not list.
    set_mode(tmp.path(), 0o711);
    let dir = tmp.path().join("nobody's data");
    lantalk::identity::load_or_create_keys(&dir).unwrap();
    for name in ["", "identity.pem", "id"] {
        std::os::unix::fs::chown(dir.join(name), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let key = dir.join(lantalk::identity::KEY_FILE);
    set_mode(&key, 0o000);

    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            BIN,
            "--no-mdns",
            "--data-dir",
        ])
        .arg(&dir)
        .args(args)
        .env(common::NO_USER_CONFIG.0, common::NO_USER_CONFIG.1)
        .env_remove("LANTALK_LOG")
        .stdin(Stdio::null());
        run(cmd, None, WAIT)
    };
    let want = format!(
        "lantalk: cannot read the key file {0}: Permission denied (os error 13); make it readable by the user running lantalk (as its owner: chmod 600 {1}), or move it away to make a new identity (peers that pinned the old one will warn)\n",
        key.display(),
        shell_quote(key.to_str().unwrap())
    );
    for args in [
        &["--port", "0", "listen"][..],
        &["send", "127.0.0.1:9", "hi"],
    ] {
        let out = as_nobody(args);
        assert_eq!(out.code(), Some(1), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr, want, "{args:?}");
    }
    assert_eq!(names(&dir), ["id", "identity.pem", "lock"]);

    // The fix it names works.
    set_mode(&key, 0o600);
    let out = as_nobody(&["send", "127.0.0.1:9", "hi"]);
    assert!(
        !out.stderr.contains("key file"),
        "readable again: {}",
        out.stderr
    );
}

/// The port in the chat screen's status bar (`… · ADDR:PORT · …`), once
/// it listens.
fn port_in_status_bar(screen: &str) -> Option<u16> {
    let bar = screen.lines().rev().find(|l| !l.trim().is_empty())?;
    let addr = bar.split(" · ").nth(1)?;
    addr.rsplit(':').next()?.trim().parse().ok()
}

/// The chat screen with a key file other users can read: the warning goes
/// to its log (0600, like the rest) and is said again once the screen has
/// closed.
#[test]
#[ignore = "needs tmux"]
fn the_chat_screen_logs_an_open_key_file_and_says_so_on_leaving() {
    let (dir, key) = dir_with_key(0o640);
    let warning = format!(
        "the key file {0} is open to other users (mode 0640): anyone who can read it can pose as this lantalk; make it private with: chmod 600 {0}",
        key.display()
    );
    let mut tmux = Tmux::new();
    let cmd = format!(
        "{BIN} --no-mdns --port 0 --name laptop --data-dir {}",
        shell_quote(dir.path().to_str().unwrap())
    );
    tmux.new_session(
        "laptop",
        120,
        30,
        &format!("{cmd}; echo exited $?; exec cat"),
    );
    tmux.wait_screen("laptop", "the port in the status bar", WAIT, |s| {
        port_in_status_bar(s).is_some()
    });
    let log = dir.path().join("lantalk.log");
    assert_eq!(mode(&log), 0o600);
    tmux.keys("laptop", &["C-c"]);
    tmux.wait_for("laptop", "exited 0", WAIT);
    let screen = tmux.ok(&["capture-pane", "-p", "-J", "-t", "laptop"]);
    // Said last, right before the shell's line (wrapped rows joined).
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let exited = lines.iter().position(|l| *l == "exited 0").unwrap();
    assert_eq!(
        lines[..exited].last().copied(),
        Some(format!("lantalk: {warning}").as_str()),
        "{}",
        framed(&screen)
    );
    let logged = fs::read_to_string(&log).unwrap();
    assert!(logged.contains(&warning), "{logged}");
    // The rest is private; the key file was left as it was.
    assert_eq!(mode(&key), 0o640);
    set_mode(&key, 0o600);
    assert_private(
        dir.path(),
        &["id", "lock", "history.sqlite3", "lantalk.log"],
    );
}
