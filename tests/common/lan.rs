//! A LAN of N hosts on one machine: one network namespace per host, joined by
//! a bridge in a namespace of its own, with addresses `10.77.0.(i+1)/24`.
//! Everything the test creates is deleted when the [`Lan`] is dropped, also
//! when the test fails.
//!
//! Needs root, `ip` (iproute2) and `unshare` (util-linux): the tests using
//! it are `#[ignore]`d with that reason, and fail when run without them
//! (`scripts/test.sh` installs the tools and runs them).

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::proc::{BIN, Proc};

/// A set of namespaces forming one Ethernet segment.
pub struct Lan {
    bridge: String,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether `program` can be run (it is on PATH).
fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Why network namespaces cannot be made here, or `None` when they can:
/// they need root, `ip` (iproute2) and `unshare` (util-linux).
pub fn unavailable() -> Option<String> {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root");
    }
    if !on_path("ip") {
        missing.push("`ip` (Debian package iproute2)");
    }
    if !on_path("unshare") {
        missing.push("`unshare` (Debian package util-linux)");
    }
    (!missing.is_empty()).then(|| format!("network namespaces need {}", missing.join(", ")))
}

/// Panics, saying why and how to get it, unless this process runs as root.
#[track_caller]
pub fn require_root(test: &str, what: &str) {
    assert!(
        is_root(),
        "{test}: {what} need root; run the tests as root with scripts/test.sh"
    );
}

impl Lan {
    /// Builds a LAN of `n` hosts. Panics, saying what is missing, when
    /// network namespaces cannot be made here (not root, no `ip`).
    #[track_caller]
    pub fn new(test: &str, n: usize) -> Lan {
        if let Some(why) = unavailable() {
            panic!(
                "{test}: {why}; run the tests as root with scripts/test.sh, which installs the tools"
            );
        }
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "lt{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut lan = Lan {
            bridge: format!("{tag}-br"),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &lan.bridge]);
        ip(&["-n", &lan.bridge, "link", "set", "lo", "up"]);
        ip(&["-n", &lan.bridge, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &lan.bridge,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        ip(&["-n", &lan.bridge, "link", "set", "br0", "up"]);
        for i in 0..n {
            let ns = format!("{tag}-{i}");
            ip(&["netns", "add", &ns]);
            lan.hosts.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let port = format!("v{i}");
            ip(&[
                "link",
                "add",
                &port,
                "netns",
                &lan.bridge,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns,
            ]);
            ip(&["-n", &lan.bridge, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &lan.bridge, "link", "set", &port, "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", lan.addr(i)),
                "dev",
                "eth0",
            ]);
            // No duplicate address detection: the IPv6 link-local address is
            // usable at once instead of after ~2 s as "tentative".
            let dad = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "sh",
                    "-c",
                    "echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad",
                ])
                .status()
                .expect("run ip netns exec");
            assert!(dad.success(), "cannot turn off DAD in {ns}");
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        // mdns-sd only uses interfaces and addresses present when it starts.
        let deadline = Instant::now() + Duration::from_secs(10);
        for ns in &lan.hosts {
            loop {
                let out = Command::new("ip")
                    .args(["-n", ns, "-br", "link", "show", "eth0"])
                    .output()
                    .expect("run ip");
                let v6 = Command::new("ip")
                    .args(["-n", ns, "-6", "addr", "show", "dev", "eth0"])
                    .output()
                    .expect("run ip");
                let v6 = String::from_utf8_lossy(&v6.stdout);
                if String::from_utf8_lossy(&out.stdout).contains(" UP ")
                    && v6.contains("fe80::")
                    && !v6.contains("tentative")
                {
                    break;
                }
                assert!(Instant::now() < deadline, "eth0 in {ns} never came up");
                thread::sleep(Duration::from_millis(20));
            }
        }
        lan
    }

    /// Cuts (`up = false`) or restores host `i`'s link to the LAN, as
    /// unplugging its cable or leaving the Wi-Fi would.
    pub fn set_link(&self, i: usize, up: bool) {
        ip(&[
            "-n",
            &self.hosts[i],
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ]);
    }

    /// The name of host `i`'s network namespace (for `ip netns exec`, or
    /// `/run/netns/NAME` for setns(2)).
    pub fn ns(&self, i: usize) -> &str {
        &self.hosts[i]
    }

    /// The IPv4 address of host `i`.
    pub fn addr(&self, i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// A command running the binary on host `i` with its own hostname.
    pub fn command(&self, i: usize, hostname: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        // `exec` all the way down, so the child's pid is lantalk's own.
        cmd.args([
            "netns",
            "exec",
            &self.hosts[i],
            "unshare",
            "--uts",
            "sh",
            "-c",
            "hostname \"$0\" && exec \"$@\"",
            hostname,
            BIN,
        ]);
        cmd.args(args)
            .env(super::NO_USER_CONFIG.0, super::NO_USER_CONFIG.1);
        cmd
    }

    /// A command running `argv` (any program, not only lantalk) on host `i`,
    /// with the machine's hostname: `ip netns exec NS argv...`.
    pub fn command_raw(&self, i: usize, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.hosts[i]]);
        cmd.args(argv);
        cmd
    }

    /// [`Lan::command`] as one shell command line (`ip netns exec …`, every
    /// word quoted), for programs that take one, like tmux. After `exec `,
    /// the process the shell leaves is lantalk itself.
    pub fn shell_command(&self, i: usize, hostname: &str, args: &[&str]) -> String {
        let cmd = self.command(i, hostname, args);
        let words: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|w| shell_quote(&w.to_string_lossy()))
            .collect();
        words.join(" ")
    }

    /// Starts the binary on host `i`, output captured.
    pub fn spawn(&self, i: usize, hostname: &str, args: &[&str]) -> Proc {
        Proc::spawn(self.command(i, hostname, args))
    }

    /// Runs the binary on host `i` to completion (killed after `timeout`).
    pub fn run(&self, i: usize, hostname: &str, args: &[&str], timeout: Duration) -> Output {
        let mut proc = self.spawn(i, hostname, args);
        let status = proc.wait_exit(timeout);
        Output {
            status,
            stdout: proc.drain_out().join("\n").into_bytes(),
            stderr: proc.drain_err().join("\n").into_bytes(),
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace ends its veths; the bridge namespace goes last.
        for ns in self.hosts.iter().chain(std::iter::once(&self.bridge)) {
            // Processes still running inside keep the namespace's network alive; end them.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Quotes `word` for a POSIX shell.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
