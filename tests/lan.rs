//! The product across a LAN: the real binary on hosts in network namespaces,
//! discovering each other over mDNS. See `common/lan.rs` for the set-up.

mod common;

use std::fs;
use std::time::Duration;

use common::lan::Lan;
use common::proc::port_of;
use serde_json::Value;

const LAPTOP: usize = 0;
const PHONE: usize = 1;
const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Starts `lantalk listen` on host `i` named `name`, waits until it listens.
fn listen(
    lan: &Lan,
    i: usize,
    name: &str,
    dir: &std::path::Path,
    extra: &[&str],
) -> (common::proc::Proc, u16) {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["--data-dir", dir];
    args.extend_from_slice(extra);
    args.push("listen");
    let mut proc = lan.spawn(i, name, &args);
    let line = proc.wait_err(SECS(10), |l| l.contains("listening on port"));
    (proc, port_of(&line))
}

fn peers_json(lan: &Lan, i: usize, timeout: &str) -> Vec<Value> {
    let out = lan.run(
        i,
        "phone",
        &[
            "--data-dir",
            "/nonexistent-unused",
            "peers",
            "--json",
            "--timeout",
            timeout,
        ],
        SECS(20),
    );
    assert!(
        out.status.success(),
        "peers failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("peers --json line is JSON"))
        .collect()
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn phone_sends_to_laptop_by_name_and_it_is_acknowledged() {
    let lan = Lan::new("phone_sends_to_laptop", 2);
    let dirs = tempfile::tempdir().unwrap();
    let (mut laptop, _) = listen(&lan, LAPTOP, "laptop", &dirs.path().join("laptop"), &[]);
    let phone_dir = dirs.path().join("phone");
    let out = lan.run(
        PHONE,
        "phone",
        &[
            "--data-dir",
            phone_dir.to_str().unwrap(),
            "send",
            "laptop",
            "Hey there, Rodrigo's laptop.",
            "--timeout",
            "10",
        ],
        SECS(30),
    );
    assert!(
        out.status.success(),
        "send failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    laptop.wait_out(SECS(5), |l| l == "phone: Hey there, Rodrigo's laptop.");
    // `laptop.local` names the same peer.
    let out = lan.run(
        PHONE,
        "phone",
        &[
            "--data-dir",
            phone_dir.to_str().unwrap(),
            "send",
            "LAPTOP.local",
            "again",
        ],
        SECS(30),
    );
    assert!(
        out.status.success(),
        "send to laptop.local failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    laptop.wait_out(SECS(5), |l| l == "phone: again");
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn peers_lists_laptop_with_its_id_and_port_until_it_quits() {
    let lan = Lan::new("peers_lists_laptop", 2);
    let dirs = tempfile::tempdir().unwrap();
    let laptop_dir = dirs.path().join("laptop");
    let (mut laptop, port) = listen(&lan, LAPTOP, "laptop", &laptop_dir, &["--port", "0"]);
    let id = fs::read_to_string(laptop_dir.join("id"))
        .unwrap()
        .trim()
        .to_owned();

    // Registration includes name probing (~1 s); browse long enough to see it.
    let peers = peers_json(&lan, PHONE, "3");
    let entry = peers
        .iter()
        .find(|p| p["name"] == "laptop")
        .unwrap_or_else(|| panic!("laptop not in {peers:?}"));
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["port"], u64::from(port));
    assert_eq!(entry["host"], "laptop.local.");
    assert!(
        entry["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "10.77.0.1"),
        "{entry}"
    );

    // A browser running while laptop quits sees it leave (goodbye, not the 2-minute TTL).
    let mut watcher = lan.spawn(
        PHONE,
        "phone",
        &[
            "--data-dir",
            "/nonexistent-unused",
            "peers",
            "--json",
            "--timeout",
            "5",
        ],
    );
    std::thread::sleep(SECS(2));
    laptop.terminate();
    assert!(
        laptop.wait_exit(SECS(5)).success(),
        "listen did not exit cleanly: {:?}",
        laptop.drain_err()
    );
    assert!(watcher.wait_exit(SECS(10)).success());
    let seen = watcher.drain_out();
    assert!(
        seen.iter().all(|l| !l.contains(&id)),
        "laptop still listed after it quit: {seen:?}"
    );

    // And a new browse does not find it either.
    assert!(
        peers_json(&lan, PHONE, "2")
            .iter()
            .all(|p| p["id"] != id.as_str())
    );
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn send_to_a_missing_peer_exits_3_with_a_clear_message() {
    let lan = Lan::new("send_to_missing_peer", 2);
    let dirs = tempfile::tempdir().unwrap();
    let out = lan.run(
        PHONE,
        "phone",
        &[
            "--data-dir",
            dirs.path().to_str().unwrap(),
            "send",
            "laptop",
            "hi",
            "--timeout",
            "1",
        ],
        SECS(20),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"peer "laptop" not found on the network after 1 s"#),
        "{err}"
    );
}

/// Two hosts with the same hostname (the default name: `raspberrypi`,
/// `MacBook-Pro`) both chat with a third, both ways. A name is a label: the
/// second key under "laptop" is another peer, not a changed key; the phone
/// tells them apart by instance (`laptop (2)`), host, or the start of the
/// id (`laptop#3f2a`), and shows each with its tag.
#[test]
#[ignore = "needs root (network namespaces)"]
fn two_hosts_with_the_same_hostname_both_stay_reachable() {
    let lan = Lan::new("same_hostname", 3);
    let dirs = tempfile::tempdir().unwrap();
    let (first_dir, second_dir, phone_dir) = (
        dirs.path().join("a"),
        dirs.path().join("b"),
        dirs.path().join("p"),
    );
    let (mut first, _) = listen(&lan, 0, "laptop", &first_dir, &[]);
    // Let the first one finish probing so the second is the one renamed.
    assert!(
        peers_json(&lan, 1, "2")
            .iter()
            .any(|p| p["name"] == "laptop")
    );
    let (mut second, _) = listen(&lan, 2, "laptop", &second_dir, &[]);
    second.wait_err(SECS(10), |l| l.contains(r#"advertising as "laptop (2)""#));
    let (mut phone_listen, _) = listen(&lan, 1, "phone", &phone_dir, &[]);

    let peers = peers_json(&lan, 1, "3");
    let ids: Vec<String> = [&first_dir, &second_dir]
        .iter()
        .map(|d| fs::read_to_string(d.join("id")).unwrap().trim().to_owned())
        .collect();
    for id in &ids {
        assert!(
            peers.iter().any(|p| p["id"] == id.as_str()),
            "{id} missing from {peers:?}"
        );
    }
    let phone = phone_dir.to_str().unwrap();
    let send = |query: &str, body: &str| {
        lan.run(
            1,
            "phone",
            &["--data-dir", phone, "send", query, body],
            SECS(30),
        )
    };
    let ok = |out: std::process::Output, what: &str| {
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Both are reached, neither is refused: two keys, two peers.
    ok(send("laptop", "to the first"), "send laptop");
    ok(send("laptop (2)", "to the second"), "send laptop (2)");
    ok(send("laptop-2.local", "to the second by host"), "by host");
    let tag = &ids[1][..4];
    ok(
        send(&format!("laptop#{tag}"), "to the second by tag"),
        "by tag",
    );
    first.wait_out(SECS(5), |l| l == "phone: to the first");
    for body in [
        "to the second",
        "to the second by host",
        "to the second by tag",
    ] {
        second.wait_out(SECS(5), |l| l == format!("phone: {body}"));
    }
    assert!(
        !first.drain_out().iter().any(|l| l.contains("second")),
        "first got the second's messages"
    );
    // ... and both write to the phone, which shows each with its tag.
    let dirs_and_hosts = [
        (&first_dir, 0, "from the first"),
        (&second_dir, 2, "from the second"),
    ];
    for (i, (dir, host, body)) in dirs_and_hosts.into_iter().enumerate() {
        let out = lan.run(
            host,
            "laptop",
            &["--data-dir", dir.to_str().unwrap(), "send", "phone", body],
            SECS(30),
        );
        ok(out, body);
        let shown = format!("laptop#{}: {body}", &ids[i][..4]);
        phone_listen.wait_out(SECS(5), |l| l == shown);
    }
    let all_err = phone_listen.drain_err();
    assert!(
        all_err
            .iter()
            .all(|l| !l.contains("WARNING") && !l.contains("refused")),
        "{all_err:#?}"
    );
    let out = lan.run(1, "phone", &["--data-dir", phone, "peers"], SECS(30));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("known"), "{table}");
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn interface_flag_limits_where_we_advertise() {
    let lan = Lan::new("interface_flag", 3);
    let dirs = tempfile::tempdir().unwrap();
    let (_on_lan, _) = listen(
        &lan,
        0,
        "laptop",
        &dirs.path().join("a"),
        &["--interface", "eth0"],
    );
    let (_loopback_only, _) = listen(
        &lan,
        2,
        "desktop",
        &dirs.path().join("b"),
        &["--interface", "lo"],
    );
    let names: Vec<Value> = peers_json(&lan, PHONE, "3")
        .into_iter()
        .map(|p| p["name"].clone())
        .collect();
    assert!(names.contains(&Value::from("laptop")), "{names:?}");
    assert!(
        !names.contains(&Value::from("desktop")),
        "advertised beyond --interface lo: {names:?}"
    );

    // A misspelt interface is a clear error for discovery, not a silent nothing.
    let out = lan.run(
        PHONE,
        "phone",
        &[
            "--data-dir",
            "/nonexistent-unused",
            "--interface",
            "eht0",
            "peers",
        ],
        SECS(20),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"no network interface named "eht0""#),
        "{err}"
    );
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn ipv6_link_local_addresses_are_advertised_and_dialable() {
    let lan = Lan::new("ipv6_link_local", 2);
    let dirs = tempfile::tempdir().unwrap();
    let (mut laptop, port) = listen(&lan, LAPTOP, "laptop", &dirs.path().join("laptop"), &[]);
    let peers = peers_json(&lan, PHONE, "3");
    let entry = peers
        .iter()
        .find(|p| p["name"] == "laptop")
        .unwrap_or_else(|| panic!("laptop not in {peers:?}"));
    let v6 = entry["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|a| a.starts_with("fe80::") && a.contains('%'))
        .unwrap_or_else(|| panic!("no scoped link-local address in {entry}"))
        .to_owned();
    let bare = v6.split('%').next().unwrap();
    let phone = dirs.path().join("phone");
    for (target, body) in [
        (format!("[{v6}]:{port}"), "by index"),
        (format!("[{bare}%eth0]:{port}"), "by name"),
    ] {
        let out = lan.run(
            PHONE,
            "phone",
            &["--data-dir", phone.to_str().unwrap(), "send", &target, body],
            SECS(20),
        );
        assert!(
            out.status.success(),
            "send to {target} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        laptop.wait_out(SECS(5), |l| l == format!("phone: {body}"));
    }
    laptop.wait_err(SECS(5), |l| l.contains("phone connected from [fe80::"));
}
