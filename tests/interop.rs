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
use serde_json::Value;

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
/// interface" (python-zeroconf's `Zeroconf`) work on the hosts `routed`:
/// those get a multicast route. lantalk's hosts get none, as a bare
/// namespace: lantalk must not need it.
fn lan(test: &str, n: usize, routed: &[usize]) -> Lan {
    let lan = Lan::new(test, n);
    for &i in routed {
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
    let lan = lan("goodbye_families", 2, &[]);
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
    let quit = std::time::Instant::now();
    laptop.terminate();
    assert!(
        laptop.wait_exit(SECS(10)).success(),
        "{:?}",
        laptop.drain_err()
    );
    // mdns-sd's goodbye goes out at once; 5 s is margin for a loaded machine.
    cache.wait_out(SECS(5), |l| l == "all withdrawn");
    let malformed: Vec<String> = cache
        .drain_out()
        .into_iter()
        .filter(|l| l.starts_with("malformed"))
        .collect();
    assert!(
        malformed.is_empty(),
        "python-zeroconf could not parse: {malformed:?}"
    );
    eprintln!(
        "measured: every address record withdrawn on its family {} ms after SIGTERM",
        quit.elapsed().as_millis()
    );
}

/// A JSON line of `zeroconf_peer.py browse` with this event and name.
fn zeroconf_event(proc: &mut Proc, event: &str, name: &str) -> Value {
    let line = proc.wait_out(SECS(15), |l| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| v["event"] == event && v["name"] == name)
    });
    serde_json::from_str(&line).unwrap()
}

/// python-zeroconf finds lantalk's advertisement and resolves it (service,
/// host, addresses on both families, TXT), and sees it leave when lantalk
/// quits.
#[test]
#[ignore = "needs root (network namespaces) and python-zeroconf"]
fn zeroconf_resolves_lantalk_and_sees_it_leave() {
    let python = zeroconf_python();
    let lan = lan("zeroconf_sees_us", 2, &[1]);
    let dir = tempfile::tempdir().unwrap();
    let mut browser = Proc::spawn(lan.command_raw(
        1,
        &[
            python.to_str().unwrap(),
            &script("zeroconf_peer.py"),
            "browse",
        ],
    ));
    let mut laptop = listen(&lan, 0, "laptop", dir.path());
    let id = std::fs::read_to_string(dir.path().join("id")).unwrap();
    let name = "laptop._lantalk._tcp.local.";
    let found = zeroconf_event(&mut browser, "resolved", name);
    assert_eq!(found["server"], "laptop.local.", "{found}");
    assert_eq!(found["port"], 7342, "{found}");
    assert_eq!(found["txt"]["id"], id.trim(), "{found}");
    assert_eq!(found["txt"]["nick"], "laptop", "{found}");
    assert_eq!(found["txt"]["proto"], "1", "{found}");
    let addrs: Vec<&str> = found["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(addrs.contains(&lan.addr(0).as_str()), "{found}");
    assert!(addrs.iter().any(|a| a.starts_with("fe80::")), "{found}");
    laptop.terminate();
    assert!(laptop.wait_exit(SECS(10)).success());
    zeroconf_event(&mut browser, "removed", name);
}

/// A `_lantalk._tcp` service registered by python-zeroconf with lantalk's
/// TXT keys is a peer: `lantalk peers` lists it and `lantalk send` reaches
/// the lantalk behind it. One without a peer id is not a lantalk peer: it
/// is left out, and said why.
#[test]
#[ignore = "needs root (network namespaces) and python-zeroconf"]
fn lantalk_lists_and_reaches_what_zeroconf_registers() {
    let python = zeroconf_python();
    let lan = lan("zeroconf_registers", 2, &[1]);
    let dirs = tempfile::tempdir().unwrap();
    let (desk_dir, phone_dir) = (dirs.path().join("desk"), dirs.path().join("phone"));
    // A lantalk without mDNS on host 1; zeroconf advertises it.
    let mut desk = lan.spawn(
        1,
        "desk",
        &[
            "--data-dir",
            desk_dir.to_str().unwrap(),
            "--no-mdns",
            "listen",
        ],
    );
    desk.wait_err(SECS(10), |l| l.contains("listening on port"));
    let id = std::fs::read_to_string(desk_dir.join("id")).unwrap();
    let register = |instance: &str, txt: &[&str]| {
        let mut argv = vec![
            python.to_str().unwrap().to_owned(),
            script("zeroconf_peer.py"),
            "register".into(),
            instance.into(),
            "zc-desk".into(),
            lan.addr(1),
            "7342".into(),
        ];
        argv.extend(txt.iter().map(|t| t.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut proc = Proc::spawn(lan.command_raw(1, &argv));
        proc.wait_out(SECS(15), |l| l == "registered");
        proc
    };
    let _desk_ad = register(
        "desk",
        &[
            "txtvers=1",
            "proto=1",
            &format!("id={}", id.trim()),
            "nick=desk",
        ],
    );
    let _printer = register("printer", &["txtvers=1", "nick=printer"]);
    let phone = phone_dir.to_str().unwrap();
    let out = lan.run(
        0,
        "phone",
        &["--data-dir", phone, "peers", "--json", "--timeout", "3"],
        SECS(20),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let peers: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(peers.len(), 1, "{stdout}");
    assert_eq!(peers[0]["name"], "desk");
    assert_eq!(peers[0]["host"], "zc-desk.local.");
    assert_eq!(peers[0]["id"], id.trim());
    assert_eq!(peers[0]["addresses"], serde_json::json!([lan.addr(1)]));
    assert!(
        stderr.contains(r#"ignored "printer" on zc-desk.local.: no peer id"#),
        "{stderr}"
    );
    let sent = lan.run(
        0,
        "phone",
        &[
            "--data-dir",
            phone,
            "send",
            "desk",
            "found through zeroconf",
        ],
        SECS(30),
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    desk.wait_out(SECS(10), |l| l == "phone: found through zeroconf");
}

/// Two devices named `laptop`: the second is renamed on the LAN
/// (`laptop (2)` on `laptop-2.local`), and takes the new names on every
/// interface, loopback included, so another lantalk on the same machine
/// does not see it flip between two names. Both renames are said.
#[test]
#[ignore = "needs root (network namespaces) and python-zeroconf"]
fn a_rename_on_the_lan_is_one_name_on_every_interface_and_is_said() {
    let python = zeroconf_python();
    let lan = lan("rename_everywhere", 2, &[0]);
    let dirs = tempfile::tempdir().unwrap();
    let (first_dir, second_dir) = (dirs.path().join("a"), dirs.path().join("b"));
    let mut first = listen(&lan, 0, "laptop", &first_dir);
    // The first one has finished probing once a browser sees it.
    let seen = lan.run(
        1,
        "phone",
        &[
            "--data-dir",
            "/nonexistent-unused",
            "peers",
            "--json",
            "--timeout",
            "3",
        ],
        SECS(20),
    );
    assert!(
        String::from_utf8_lossy(&seen.stdout).contains(r#""name":"laptop""#),
        "{}",
        String::from_utf8_lossy(&seen.stderr)
    );
    // What the first machine hears of the second (python-zeroconf reports a
    // service removed at its first goodbye).
    let mut browser = Proc::spawn(lan.command_raw(
        0,
        &[
            python.to_str().unwrap(),
            &script("zeroconf_peer.py"),
            "browse",
        ],
    ));
    let mut second = listen(&lan, 1, "laptop", &second_dir);
    second.wait_err(SECS(10), |l| l.contains(r#"advertising as "laptop (2)""#));
    second.wait_err(SECS(10), |l| {
        l.contains("another device on this network has our host name")
            && l.contains(r#""laptop-2.local""#)
    });
    // What a lantalk on the second machine hears on loopback.
    let mut names = Proc::spawn(lan.command_raw(
        1,
        &[
            python.to_str().unwrap(),
            &script("mdns_names.py"),
            "lo",
            "2",
        ],
    ));
    names.wait_out(SECS(20), |l| l == "done");
    let heard: Vec<String> = names
        .drain_out()
        .into_iter()
        .filter(|l| l != "done")
        .collect();
    assert_eq!(
        heard,
        [r"srv laptop (2)._lantalk._tcp.local. laptop-2.local."],
        "on loopback; second: {:?}",
        second.drain_err()
    );
    // Advertised anew under the same names, the second never left the LAN.
    zeroconf_event(&mut browser, "resolved", "laptop (2)._lantalk._tcp.local.");
    let heard = browser.drain_out();
    assert!(
        !heard.iter().any(|l| l.contains(r#""removed""#)),
        "the first machine saw a service leave: {heard:?}"
    );
    first.terminate();
    second.terminate();
    assert!(first.wait_exit(SECS(10)).success());
    assert!(second.wait_exit(SECS(10)).success());
}
