//! A one-host LAN for running lantalk with mDNS on without touching this
//! machine's own network: namespace `A` (lantalk's, with `lo` and `eth0`,
//! 10.78.0.1/24) joined by a veth pair to namespace `B` (the other end,
//! 10.78.0.2/24, nothing running). Named after our pid; everything is
//! deleted when the [`Netns`] is dropped, also when the bench panics.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Two namespaces joined by a veth pair.
pub struct Netns {
    /// Where lantalk runs.
    pub host: String,
    other: String,
    made: Vec<String>,
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

/// Whether we are root and `ip` exists: what [`Netns::new`] needs.
pub fn available() -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Err("not running as root".into());
    }
    let has_ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_ip {
        return Err("no `ip` command (iproute2)".into());
    }
    Ok(())
}

impl Netns {
    /// Builds the namespaces; `tag` makes the names unique within this process.
    pub fn new(tag: &str) -> Netns {
        let base = format!("ltbench{}-{tag}", std::process::id());
        let mut ns = Netns {
            host: format!("{base}-a"),
            other: format!("{base}-b"),
            made: Vec::new(),
        };
        for name in [ns.host.clone(), ns.other.clone()] {
            ip(&["netns", "add", &name]);
            ns.made.push(name.clone());
            ip(&["-n", &name, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link", "add", "eth0", "netns", &ns.host, "type", "veth", "peer", "name", "eth0",
            "netns", &ns.other,
        ]);
        for (name, addr) in [(&ns.host, "10.78.0.1/24"), (&ns.other, "10.78.0.2/24")] {
            ip(&["-n", name, "addr", "add", addr, "dev", "eth0"]);
            // No duplicate address detection: the link-local IPv6 address is
            // usable at once, so mdns-sd sees it when it starts.
            let dad = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    name,
                    "sh",
                    "-c",
                    "echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad",
                ])
                .status()
                .expect("run ip netns exec");
            assert!(dad.success(), "cannot turn off DAD in {name}");
            ip(&["-n", name, "link", "set", "eth0", "up"]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v6 = Command::new("ip")
                .args(["-n", &ns.host, "-6", "addr", "show", "dev", "eth0"])
                .output()
                .expect("run ip");
            let v6 = String::from_utf8_lossy(&v6.stdout);
            if v6.contains("fe80::") && !v6.contains("tentative") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "eth0 in {} never came up",
                ns.host
            );
            thread::sleep(Duration::from_millis(20));
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for name in self.made.iter().rev() {
            // Only processes we started live in namespaces we made.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}
