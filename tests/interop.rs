//! lantalk against another mDNS stack: python-zeroconf (PyPI `zeroconf`,
//! 0.154 tested), on hosts of a namespace LAN (`common/lan.rs`), never in
//! this machine's own network namespace. `scripts/test.sh` installs
//! zeroconf into a virtual environment in the build directory
//! (`target/zeroconf-venv`); without it these tests fail, saying so.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::lan::Lan;
use common::proc::Proc;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The Python interpreter of the virtual environment holding zeroconf.
/// Panics, saying how to get it, when it is missing.
fn zeroconf_python() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let python = target
        .parent()
        .expect("the build directory")
        .join("zeroconf-venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import zeroconf"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python-zeroconf is missing ({} cannot import zeroconf); run the tests as root with \
         scripts/test.sh, which installs it",
        python.display()
    );
    python
}

/// A script of `tests/common/`.
fn script(name: &str) -> String {
    format!("{}/tests/common/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A LAN of `n` hosts where stacks that join multicast groups on "any
/// interface" (python-zeroconf) work: each host gets a multicast route.
fn lan(test: &str, n: usize) -> Lan {
    let lan = Lan::new(test, n);
    for i in 0..n {
        let status = lan
            .command_raw(i, &["ip", "route", "add", "224.0.0.0/4", "dev", "eth0"])
            .status()
            .expect("run ip");
        assert!(status.success(), "no multicast route on host {i}");
    }
    lan
}

/// Starts `lantalk listen` on host `i` named `host`; waits until it listens.
fn listen(lan: &Lan, i: usize, host: &str, dir: &std::path::Path) -> Proc {
    let mut proc = lan.spawn(i, host, &["--data-dir", dir.to_str().unwrap(), "listen"]);
    proc.wait_err(SECS(10), |l| l.contains("listening on port"));
    proc
}

/// avahi keeps a cache per interface and IP family, and mdns-sd answers an
/// `A?` that arrives over IPv6 with an A record over IPv6 (and `AAAA?` over
/// IPv4 likewise): when lantalk quits, each address record must be withdrawn
/// on the family it went out on, or avahi resolves `laptop.local` to the
/// old address for two minutes.
#[test]
#[ignore = "needs root (network namespaces) and python-zeroconf"]
fn quitting_withdraws_every_address_record_on_every_family() {
    let python = zeroconf_python();
    let lan = lan("goodbye_families", 2);
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = listen(&lan, 0, "laptop", dir.path());
    let mut cache = Proc::spawn(lan.command_raw(
        1,
        &[
            python.to_str().unwrap(),
            &script("mdns_families.py"),
            "eth0",
            "laptop.local.",
        ],
    ));
    cache.wait_out(SECS(20), |l| l == "ready");
    let cached = cache.drain_out();
    // The records that went out on the other family are what this is about.
    for line in [
        format!("cached v6 A {}", lan.addr(0)),
        "cached v4 AAAA".to_owned(),
    ] {
        assert!(
            cached.iter().any(|l| l.starts_with(&line)),
            "{line:?} not among {cached:?}"
        );
    }
    laptop.terminate();
    assert!(
        laptop.wait_exit(SECS(10)).success(),
        "{:?}",
        laptop.drain_err()
    );
    // mdns-sd's goodbye goes out at once; 5 s is margin for a loaded machine.
    cache.wait_out(SECS(5), |l| l == "all withdrawn");
}
