//! `assets/phone.py`, the standard-library Python client, against the real
//! binary: one-shot send and a two-way chat over TLS, phone.py's own key
//! (one peer across runs, authenticated; without `openssl` a stable id,
//! unauthenticated), the laptop's key checked (--fp, pinned on first contact
//! for what was dialled, advertised on mDNS) and refused when wrong before
//! phone.py says anything, the plaintext protocol for older peers and its
//! refusal under --require-encryption, a fake peer that sends texts, pings
//! and errors, and mDNS browsing inside a namespace LAN.
//!
//! Every phone.py runs with HOME set to a temporary directory: its key,
//! name, id and pins go there, never into the home of whoever runs the tests.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::lan::Lan;
use common::proc::{Proc, port_of, python};
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/phone.py");
const SECS: fn(u64) -> Duration = Duration::from_secs;

/// `phone.py ARGS...` with HOME=`home`, so its files are in
/// `home/.lantalk_phone`.
fn phone(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(SCRIPT).args(args).env("HOME", home);
    cmd
}

/// `lantalk --no-mdns --data-dir DIR --port 0 [GLOBAL...] listen` on
/// 127.0.0.1 (root namespace, no mDNS).
fn listen_local(dir: &Path, global: &[&str]) -> (Proc, u16) {
    common::local::listen_in(dir, &[&["--port", "0"][..], global, &["listen"]].concat())
}

/// The fingerprint of the laptop whose data directory is `dir`, grouped as
/// both lantalk and phone.py print it.
fn fingerprint_of(dir: &Path) -> String {
    let file = dir.join(lantalk::identity::KEY_FILE);
    assert!(file.exists(), "{} has no keys yet", dir.display());
    lantalk::identity::load_or_create_keys(dir)
        .unwrap()
        .fingerprint
        .grouped()
}

/// Where phone.py with HOME=`home` keeps its files.
fn phone_dir(home: &Path) -> std::path::PathBuf {
    home.join(".lantalk_phone")
}

/// Where phone.py with HOME=`home` pins the laptops' keys.
fn known_in(home: &tempfile::TempDir) -> String {
    phone_dir(home.path())
        .join("known")
        .to_str()
        .unwrap()
        .to_owned()
}

/// `phone.py --name phone --send ADDR BODY [EXTRA...]` with HOME=`home`,
/// run to its end.
fn send(home: &Path, addr: &str, body: &str, extra: &[&str]) -> (bool, Proc) {
    let mut args = vec!["--name", "phone", "--send", addr, body];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(phone(home, &args));
    let ok = p.wait_exit(SECS(15)).success();
    (ok, p)
}

/// The fingerprint of the certificate phone.py keeps in `home`, computed
/// here as lantalk computes every fingerprint.
fn phone_fingerprint(home: &Path) -> lantalk::protocol::Fingerprint {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::from_pem_file(phone_dir(home).join("cert.pem"))
        .expect("phone.py keeps a PEM certificate");
    lantalk::protocol::Fingerprint::of_cert(&cert)
}

/// phone.py makes its key with the `openssl` command: a test that expects
/// it to have a key says so plainly when there is none.
fn need_openssl() {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("openssl").is_file()));
    assert!(
        found,
        "this test needs the openssl command (Debian package openssl; scripts/test.sh installs it as root)"
    );
}

/// Parses a `listen --json` line.
fn json_line(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn send_over_tls_shows_the_laptops_fingerprint_and_is_acknowledged() {
    need_openssl();
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let known = known_in(&home);
    let (mut laptop, port) = listen_local(dir.path(), &["--name", "laptop"]);
    let fp = fingerprint_of(dir.path());
    assert_eq!(fp.len(), 79, "{fp}");
    // The laptop shows its own fingerprint, for people to compare.
    laptop.wait_err(SECS(5), |l| l == format!("lantalk: fingerprint {fp}"));
    let addr = format!("127.0.0.1:{port}");

    let (ok, p) = send(home.path(), &addr, "Hey there, Rodrigo's laptop.", &[]);
    assert!(ok, "phone.py --send failed: {:?}", p.err);
    laptop.wait_out(SECS(5), |l| l == "phone: Hey there, Rodrigo's laptop.");
    laptop.wait_err(SECS(5), |l| {
        l.contains("phone connected from 127.0.0.1:") && l.ends_with("(encrypted, key pinned now)")
    });
    let shown = format!("phone.py: fingerprint of {addr}: {fp}");
    assert!(p.err.contains(&shown), "want {shown:?} in {:?}", p.err);
    assert!(
        p.err.iter().any(|l| l.contains("connected to laptop")
            && l.contains("(encrypted, first contact, pinned in")),
        "{:?}",
        p.err
    );
    // Pinned under what was dialled, not under the name the laptop claims.
    let pins: Value = serde_json::from_str(&std::fs::read_to_string(&known).unwrap()).unwrap();
    assert_eq!(pins, json!({ &addr: fp.replace(' ', "") }));

    // The second time, the key is the pinned one.
    let (ok, p) = send(home.path(), &addr, "again", &[]);
    assert!(ok, "{:?}", p.err);
    assert!(
        p.err
            .iter()
            .any(|l| l.ends_with("(encrypted, key as pinned)")),
        "{:?}",
        p.err
    );
    laptop.wait_out(SECS(5), |l| l == "phone: again");
    laptop.wait_err(SECS(5), |l| l.ends_with("(encrypted)"));

    // Nobody listening: exit 1 with a message.
    drop(laptop);
    let args = ["--name", "phone", "--send", &addr, "lost"];
    let mut p = Proc::spawn(phone(home.path(), &args));
    assert_eq!(p.wait_exit(SECS(15)).code(), Some(1), "{:?}", p.err);
    assert!(!p.err.is_empty(), "no error message on stderr");
}

/// `lantalk --no-mdns --data-dir DIR --port 0 --name laptop listen --json`.
fn listen_json(dir: &Path) -> (Proc, u16) {
    common::local::listen_in(
        dir,
        &["--port", "0", "--name", "laptop", "listen", "--json"],
    )
}

/// phone.py makes a key on first run and presents it every time: run twice
/// (and a third time without --name, which it kept), it is one peer to the
/// laptop, authenticated, under the id its certificate proves; lantalk
/// checks that the hello id is that one, so texts arriving at all show it.
#[test]
fn phone_py_is_one_peer_across_runs_with_a_key_of_its_own() {
    need_openssl();
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (mut laptop, port) = listen_json(dir.path());
    let addr = format!("127.0.0.1:{port}");

    let (ok, first) = send(home.path(), &addr, "one", &[]);
    assert!(ok, "{:?}", first.err);
    let files = phone_dir(home.path());
    let fp = phone_fingerprint(home.path());
    assert!(
        first
            .err
            .iter()
            .any(|l| l.starts_with("phone.py: made our key with openssl")),
        "{:?}",
        first.err
    );
    let ours = format!(
        "phone.py: our fingerprint {} (id {}, key in {})",
        fp.grouped(),
        fp.peer_id(),
        files.display()
    );
    assert!(
        first.err.contains(&ours),
        "want {ours:?} in {:?}",
        first.err
    );
    let one = json_line(&laptop.wait_out(SECS(5), |l| l.contains(r#""body":"one""#)));
    laptop.wait_err(SECS(5), |l| {
        l.starts_with("lantalk: phone connected from") && l.ends_with("(encrypted, key pinned now)")
    });
    assert_eq!(one["from"], "phone");
    assert_eq!(
        one["from_id"],
        fp.peer_id(),
        "the id its certificate proves"
    );

    // The verification code it shows is the one the laptop computes.
    let laptop_fp = lantalk::identity::load_or_create_keys(dir.path())
        .unwrap()
        .fingerprint;
    let code = lantalk::protocol::verification_code(&fp, &laptop_fp);
    let shown = format!("phone.py: verification code {code}: `lantalk verify phone` on the laptop");
    assert!(
        first.err.iter().any(|l| l.starts_with(&shown)),
        "want {shown:?} in {:?}",
        first.err
    );
    let verify = common::local::lantalk_in(dir.path(), &["verify", "phone"]);
    verify.assert_success();
    assert!(verify.stdout.contains(&code), "{}", verify.stdout);

    // Its files, its own only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |f: &str| {
        let path = files.join(f);
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        meta.permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o700);
    for f in ["key.pem", "cert.pem", "me.json", "known"] {
        assert_eq!(mode(f), 0o600, "{f}");
    }
    let me: Value =
        serde_json::from_str(&std::fs::read_to_string(files.join("me.json")).unwrap()).unwrap();
    assert_eq!(me["name"], "phone", "{me}");

    // Again: the same key, the same peer.
    let (ok, second) = send(home.path(), &addr, "two", &[]);
    assert!(ok, "{:?}", second.err);
    assert!(second.err.contains(&ours), "{:?}", second.err);
    assert!(
        !second.err.iter().any(|l| l.contains("made our key")),
        "{:?}",
        second.err
    );
    let two = json_line(&laptop.wait_out(SECS(5), |l| l.contains(r#""body":"two""#)));
    assert_eq!(two["from_id"], one["from_id"]);
    laptop.wait_err(SECS(5), |l| {
        l.starts_with("lantalk: phone connected from") && l.ends_with("(encrypted)")
    });

    // The name was kept: no --name this time.
    let mut p = Proc::spawn(phone(home.path(), &["--send", &addr, "three"]));
    assert!(p.wait_exit(SECS(15)).success(), "{:?}", p.err);
    let three = json_line(&laptop.wait_out(SECS(5), |l| l.contains(r#""body":"three""#)));
    assert_eq!(three["from"], "phone");
    assert_eq!(three["from_id"], one["from_id"]);
}

/// Without the openssl command phone.py cannot make a key: it says so,
/// and goes on, encrypted but unauthenticated, under a random id it keeps,
/// so that it is still one conversation. Once openssl is there it makes its
/// key: a key is a new peer, so the laptop tells the key-less phone's
/// conversation how to move to it, and moves nothing by itself.
#[test]
fn without_openssl_phone_py_says_it_has_no_key_and_keeps_its_id() {
    need_openssl();
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let no_openssl = tempfile::tempdir().unwrap(); // an empty PATH
    let (mut laptop, port) = listen_json(dir.path());
    let addr = format!("127.0.0.1:{port}");
    let files = phone_dir(home.path());
    let keyless = |body: &str| {
        let args = ["--name", "phone", "--send", &addr, body];
        let mut cmd = phone(home.path(), &args);
        cmd.env("PATH", no_openssl.path());
        let mut p = Proc::spawn(cmd);
        assert!(p.wait_exit(SECS(15)).success(), "{:?}", p.err);
        p
    };

    let p = keyless("one");
    let me: Value =
        serde_json::from_str(&std::fs::read_to_string(files.join("me.json")).unwrap()).unwrap();
    let id = me["id"].as_str().expect("an id in me.json").to_owned();
    let said = format!(
        "phone.py: no key: there is no openssl command to make one. The laptop shows this \
         phone as encrypted, unauthenticated; its id {id} is kept in {}",
        files.join("me.json").display()
    );
    assert!(p.err.contains(&said), "want {said:?} in {:?}", p.err);
    assert!(!files.join("key.pem").exists() && !files.join("cert.pem").exists());
    let one = json_line(&laptop.wait_out(SECS(5), |l| l.contains(r#""body":"one""#)));
    assert_eq!(one["from_id"], id.as_str());
    laptop.wait_err(SECS(5), |l| l.ends_with("(encrypted, unauthenticated)"));

    let p = keyless("two");
    assert!(p.err.contains(&said), "{:?}", p.err);
    let two = json_line(&laptop.wait_out(SECS(5), |l| l.contains(r#""body":"two""#)));
    assert_eq!(two["from_id"], id.as_str(), "a new id on the second run");

    // With openssl: a key now, a peer of its own; the old conversation is
    // told the command that moves it to that key.
    let (ok, p) = send(home.path(), &addr, "three", &[]);
    assert!(ok, "{:?}", p.err);
    let fp = phone_fingerprint(home.path());
    let three = json_line(&laptop.wait_out(SECS(5), |l| l.contains(r#""body":"three""#)));
    assert_eq!(three["from_id"], fp.peer_id());
    let told = laptop.wait_err(SECS(5), |l| {
        l.contains("a new key named \"phone\" connected")
    });
    assert!(
        told.contains(&format!("(id {id})"))
            && told.contains(&format!(
                "lantalk trust phone#{} --fingerprint {fp}",
                &id[..4]
            )),
        "{told}"
    );
}

/// Pins of an earlier phone.py (`~/.lantalk_phone_known`, by the name in
/// the laptop's hello) are read: they count for the laptop's mDNS name, and
/// a laptop dialled by address with one of those keys is known.
#[test]
fn pins_of_an_earlier_phone_py_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (mut laptop, port) = listen_local(dir.path(), &["--name", "laptop"]);
    let fp = fingerprint_of(dir.path()).replace(' ', "");
    let old = home.path().join(".lantalk_phone_known");
    let old_pins = json!({"laptop": fp}).to_string();
    std::fs::write(&old, &old_pins).unwrap();
    let addr = format!("127.0.0.1:{port}");

    let (ok, p) = send(home.path(), &addr, "hi", &[]);
    assert!(ok, "{:?}", p.err);
    laptop.wait_out(SECS(5), |l| l == "phone: hi");
    let known = known_in(&home);
    let how =
        format!("(encrypted, key as pinned for \"laptop._lantalk._tcp.local\", pinned in {known})");
    assert!(p.err.iter().any(|l| l.ends_with(&how)), "{:?}", p.err);
    let pins: Value = serde_json::from_str(&std::fs::read_to_string(&known).unwrap()).unwrap();
    assert_eq!(
        pins,
        json!({"laptop._lantalk._tcp.local": fp, &addr: fp}),
        "moved into the new file"
    );
    assert_eq!(
        std::fs::read_to_string(&old).unwrap(),
        old_pins,
        "left as it was"
    );
}

#[test]
fn chat_over_tls_with_piped_stdin_delivers_every_line_and_ends_with_bye() {
    need_openssl();
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (mut laptop, port) = listen_local(dir.path(), &[]);
    let port = port.to_string();
    let args = ["--name", "phone", "127.0.0.1", &port];
    let (mut p, mut stdin) = Proc::spawn_with_stdin(phone(home.path(), &args));
    writeln!(stdin, "first line").unwrap();
    laptop.wait_out(SECS(10), |l| l == "phone: first line");
    laptop.wait_err(SECS(5), |l| l.ends_with("(encrypted, key pinned now)"));
    p.wait_out(SECS(5), |l| l.contains("✓ delivered"));
    writeln!(stdin, "Sure. 好的 👍").unwrap();
    drop(stdin); // Ctrl+D: phone.py says bye and waits for the peer's
    let status = p.wait_exit(SECS(15));
    assert!(status.success(), "phone.py failed: {:?}", p.err);
    laptop.wait_out(SECS(5), |l| l == "phone: Sure. 好的 👍");
    let marks = p.out.iter().filter(|l| l.contains("✓ delivered")).count();
    assert_eq!(marks, 2, "stdout: {:?}", p.out);
    laptop.wait_err(SECS(5), |l| l.contains("phone left"));
}

/// Lines piped as fast as phone.py reads them, over TLS and in clear: the
/// chat's two threads share one TLS connection (one writes texts, the other
/// reads acks and writes nothing else), and every line arrives and is
/// acknowledged.
#[test]
fn a_flood_of_lines_over_tls_is_all_delivered_and_acknowledged() {
    const LINES: usize = 20_000;
    let home = tempfile::tempdir().unwrap();
    let input: String = (1..=LINES).map(|i| format!("line {i}\n")).collect();
    for mode in ["TLS", "plaintext"] {
        // A laptop each: once it knows "phone" by its key, it rightly
        // refuses "phone" in clear.
        let dir = tempfile::tempdir().unwrap();
        let (mut laptop, port) = listen_local(dir.path(), &[]);
        let port = port.to_string();
        let mut args = vec!["--name", "phone", "127.0.0.1", &port];
        if mode == "plaintext" {
            args.insert(0, "--plaintext");
        }
        let started = std::time::Instant::now();
        let (mut p, mut stdin) = Proc::spawn_with_stdin(phone(home.path(), &args));
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let status = p.wait_exit(SECS(120));
        let took = started.elapsed();
        assert!(status.success(), "{mode}: {:?}", p.err);
        let marks = p.out.iter().filter(|l| l.contains("✓ delivered")).count();
        assert_eq!(marks, LINES, "{mode}: stderr {:?}", p.err);
        laptop.wait_out(SECS(30), |l| l == format!("phone: line {LINES}"));
        let got = laptop.drain_out();
        let got = got.iter().filter(|l| l.starts_with("phone: line ")).count();
        assert_eq!(got, LINES, "{mode}");
        println!(
            "phone.py chat, {mode}: {LINES} lines delivered and acknowledged in {took:.2?} ({:.0} lines/s)",
            LINES as f64 / took.as_secs_f64()
        );
    }
}

#[test]
fn a_wrong_fp_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let known = known_in(&home);
    let (mut laptop, port) = listen_local(dir.path(), &[]);
    // `other` never ran: a key made here is one no laptop presents.
    let wrong = lantalk::identity::load_or_create_keys(other.path())
        .unwrap()
        .fingerprint
        .grouped();
    let fp = fingerprint_of(dir.path());
    let addr = format!("127.0.0.1:{port}");

    let (ok, p) = send(home.path(), &addr, "to an impostor", &["--fp", &wrong]);
    assert!(!ok, "sent despite a wrong --fp: {:?}", p.err);
    let refusal = p.err.iter().find(|l| l.contains("REFUSED")).cloned();
    let refusal = refusal.unwrap_or_else(|| panic!("no refusal: {:?}", p.err));
    assert!(
        refusal.contains(&fp) && refusal.contains(&wrong) && refusal.contains("Nothing was sent"),
        "{refusal}"
    );
    assert!(!Path::new(&known).exists(), "a refused key was pinned");

    // The right one (copied with colons, upper case) goes through; the
    // laptop prints texts in order, so the refused one never arrived.
    let colons = fp.replace(' ', ":").to_uppercase();
    let (ok, p) = send(home.path(), &addr, "to the laptop", &["--fp", &colons]);
    assert!(ok, "{:?}", p.err);
    assert!(
        p.err
            .iter()
            .any(|l| l.contains("(encrypted, key as given with --fp, pinned in")),
        "{:?}",
        p.err
    );
    laptop.wait_out(SECS(5), |l| l == "phone: to the laptop");
    assert!(
        !laptop.drain_out().iter().any(|l| l.contains("impostor")),
        "{:?}",
        laptop.out
    );
}

/// Listens as `lantalk --data-dir DIR --port PORT --name NAME listen`.
fn listen_on(dir: &Path, port: u16, name: &str) -> Proc {
    let port = port.to_string();
    common::local::listen_in(dir, &["--port", &port, "--name", name, "listen"]).0
}

/// Laptop A answers at an address; later another lantalk, B, with another
/// key and another name, answers there (A reinstalled, or an impostor that
/// took its address). phone.py pinned A's key under the address it dialled,
/// so B is a changed key, refused loudly right after the TLS handshake:
/// B never gets phone.py's hello, let alone a text.
#[test]
fn another_server_at_a_pinned_address_is_refused_before_hello_until_accepted_with_fp() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let home = tempfile::tempdir().unwrap();
    let port = common::local::fixed_port();
    let addr = format!("127.0.0.1:{port}");
    let mut a = listen_on(dir_a.path(), port, "laptop");
    let fp_a = fingerprint_of(dir_a.path());

    let (ok, p) = send(home.path(), &addr, "first contact", &[]);
    assert!(ok, "{:?}", p.err);
    a.wait_out(SECS(5), |l| l == "phone: first contact");
    drop(a);

    let mut b = listen_on(dir_b.path(), port, "other");
    let fp_b = fingerprint_of(dir_b.path());
    let (ok, p) = send(home.path(), &addr, "must not arrive", &[]);
    assert!(!ok, "a changed key was accepted: {:?}", p.err);
    let want = format!(
        "phone.py: WARNING: THE KEY OF \"{addr}\" HAS CHANGED: pinned {fp_a}, presented {fp_b}."
    );
    let warning = p.err.iter().find(|l| l.starts_with(&want)).cloned();
    let warning = warning.unwrap_or_else(|| panic!("want {want:?} in {:?}", p.err));
    let hex_b = fp_b.replace(' ', "");
    assert!(warning.contains("Nothing was sent"), "{warning}");
    assert!(warning.ends_with(&format!("--fp {hex_b}")), "{warning}");
    assert!(
        !p.err.iter().any(|l| l.contains("connected to")),
        "{:?}",
        p.err
    );

    // Accepted with the fingerprint read off B: B is pinned now. B prints a
    // "connected" line for each hello it gets: this one is its first.
    std::thread::sleep(Duration::from_millis(300));
    let (ok, p) = send(home.path(), &addr, "accepted", &["--fp", &hex_b]);
    assert!(ok, "{:?}", p.err);
    b.wait_out(SECS(5), |l| l == "phone: accepted");
    b.wait_err(SECS(5), |l| l.contains("phone connected from"));
    let connected: Vec<String> = b
        .drain_err()
        .into_iter()
        .filter(|l| l.contains("connected"))
        .collect();
    assert_eq!(connected.len(), 1, "B saw a hello before: {connected:?}");
    assert!(
        !b.drain_out().iter().any(|l| l.contains("must not arrive")),
        "{:?}",
        b.out
    );
    let (ok, p) = send(home.path(), &addr, "pinned", &[]);
    assert!(ok, "{:?}", p.err);
    b.wait_out(SECS(5), |l| l == "phone: pinned");
    assert!(
        p.err
            .iter()
            .any(|l| l.ends_with("(encrypted, key as pinned)")),
        "{:?}",
        p.err
    );
    drop(b);

    // A back at its address is now the stranger.
    let mut a = listen_on(dir_a.path(), port, "laptop");
    let (ok, p) = send(home.path(), &addr, "old key", &[]);
    assert!(!ok, "{:?}", p.err);
    assert!(
        p.err
            .iter()
            .any(|l| l.contains(&format!("HAS CHANGED: pinned {fp_b}, presented {fp_a}"))),
        "{:?}",
        p.err
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !a.drain_err().iter().any(|l| l.contains("connected")),
        "{:?}",
        a.err
    );
}

#[test]
fn plaintext_still_works_and_require_encryption_refuses_it() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut laptop, port) = listen_local(dir.path(), &[]);
    let addr = format!("127.0.0.1:{port}");
    let (ok, p) = send(home.path(), &addr, "in clear", &["--plaintext"]);
    assert!(ok, "{:?}", p.err);
    laptop.wait_out(SECS(5), |l| l == "phone: in clear");
    laptop.wait_err(SECS(5), |l| l.ends_with("(plaintext)"));
    assert!(
        p.err
            .iter()
            .any(|l| l.contains("(plaintext: anyone on the network")),
        "{:?}",
        p.err
    );
    assert!(
        !p.err.iter().any(|l| l.contains("fingerprint of")),
        "{:?}",
        p.err
    );
    drop(laptop);

    let dir = tempfile::tempdir().unwrap();
    let (mut strict, port) = listen_local(dir.path(), &["--require-encryption"]);
    let addr = format!("127.0.0.1:{port}");
    let (ok, p) = send(home.path(), &addr, "refused in clear", &["--plaintext"]);
    assert!(!ok, "{:?}", p.err);
    assert!(
        p.err.iter().any(|l| l.contains("encryption_required")
            && l.contains("accepts only encrypted sessions")
            && l.contains("leave out --plaintext")),
        "{:?}",
        p.err
    );
    strict.wait_err(SECS(5), |l| l.contains("refused a plaintext session"));
    let (ok, p) = send(home.path(), &addr, "encrypted", &[]);
    assert!(ok, "{:?}", p.err);
    strict.wait_out(SECS(5), |l| l == "phone: encrypted");
    assert!(
        !strict
            .drain_out()
            .iter()
            .any(|l| l.contains("refused in clear")),
        "{:?}",
        strict.out
    );
}

/// The first connection to `server` within 10 s, in blocking mode; panics
/// (instead of hanging) when phone.py never connects.
fn accept(server: &TcpListener, p: &mut Proc) -> TcpStream {
    server.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + SECS(10);
    loop {
        match server.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(SECS(10))).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    panic!("phone.py never connected; stderr: {:?}", p.drain_err());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn write_frame(s: &mut impl Write, v: &Value) {
    let data = serde_json::to_vec(v).unwrap();
    let mut buf = (data.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(&data);
    s.write_all(&buf).unwrap();
}

fn read_frame(s: &mut impl Read) -> Value {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut data = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut data).unwrap();
    serde_json::from_slice(&data).unwrap()
}

#[test]
fn chat_shows_peer_texts_acks_them_answers_pings_and_fails_on_error() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    // The framed protocol in clear (--plaintext), as older lantalks speak it.
    let home = tempfile::tempdir().unwrap();
    let args = ["--plaintext", "--name", "phone", "127.0.0.1", &port];
    let (mut p, stdin) = Proc::spawn_with_stdin(phone(home.path(), &args));
    let mut s = accept(&server, &mut p);
    let hello = read_frame(&mut s);
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["proto"], 1);
    assert_eq!(hello["name"], "phone");
    let id = hello["id"].as_str().unwrap();
    assert!(id.len() == 32 && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    let peer_hello = json!({"type":"hello","proto":1,"id":"0123456789abcdef0123456789abcdef",
        "name":"laptop","app":"fake/1"});
    write_frame(&mut s, &peer_hello);
    // A text split across two writes, with an escape sequence in it.
    let text =
        serde_json::to_vec(&json!({"type":"text","id":"t1","ts":1,"body":"hi \u{1b}[2J"})).unwrap();
    let mut buf = (text.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(&text);
    s.write_all(&buf[..6]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(&buf[6..]).unwrap();
    write_frame(&mut s, &json!({"type":"wave","x":1}));
    write_frame(&mut s, &json!({"type":"ping","nonce":42}));
    assert_eq!(read_frame(&mut s), json!({"type":"ack","id":"t1"}));
    assert_eq!(read_frame(&mut s), json!({"type":"pong","nonce":42}));
    p.wait_out(SECS(5), |l| l == r"laptop: hi \u001b[2J");
    write_frame(
        &mut s,
        &json!({"type":"error","code":"bad_json","message":"test error"}),
    );
    let status = p.wait_exit(SECS(10));
    assert_eq!(status.code(), Some(1), "stderr: {:?}", p.err);
    assert!(
        p.err.iter().any(|l| l.contains("test error")),
        "stderr: {:?}",
        p.err
    );
    drop(stdin);
}

/// A lantalk from before encryption closes a connection that starts with a
/// TLS ClientHello without a word: phone.py says what to do.
#[test]
fn an_older_lantalk_without_tls_gets_a_hint_to_use_plaintext() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("127.0.0.1:{}", server.local_addr().unwrap().port());
    let home = tempfile::tempdir().unwrap();
    let known = known_in(&home);
    let args = ["--known", &known, "--send", &addr, "hi"];
    let mut p = Proc::spawn(phone(home.path(), &args));
    let mut s = accept(&server, &mut p);
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    assert_eq!(first[0], 0x16, "not a TLS handshake");
    s.shutdown(std::net::Shutdown::Both).unwrap();
    let status = p.wait_exit(SECS(15));
    assert_eq!(status.code(), Some(1), "{:?}", p.err);
    assert!(
        p.err
            .iter()
            .any(|l| l.contains(&format!("no encrypted session with {addr}"))
                && l.contains("--plaintext")),
        "{:?}",
        p.err
    );
}

/// A laptop whose certificate is real but whose hello claims another id
/// (a relay that passes on someone else's hello): refused, and told why.
#[test]
fn a_hello_id_that_the_certificate_does_not_prove_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = lantalk::identity::load_or_create_keys(dir.path()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![keys.cert.clone()], keys.key.clone_key())
        .unwrap();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("127.0.0.1:{}", server.local_addr().unwrap().port());
    let home = tempfile::tempdir().unwrap();
    let known = known_in(&home);
    let args = [
        "--name", "phone", "--known", &known, "--send", &addr, "secret",
    ];
    let mut p = Proc::spawn(phone(home.path(), &args));
    let tcp = accept(&server, &mut p);
    let conn = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let claimed = "0123456789abcdef0123456789abcdef";
    assert_ne!(claimed, keys.fingerprint.peer_id());
    write_frame(
        &mut tls,
        &json!({"type":"hello","proto":1,"id":claimed,"name":"laptop","app":"fake/1"}),
    );
    assert_eq!(read_frame(&mut tls)["type"], "hello");
    let error = read_frame(&mut tls);
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "untrusted", "{error}");
    let status = p.wait_exit(SECS(15));
    assert_eq!(status.code(), Some(1), "{:?}", p.err);
    let want = format!(
        "phone.py: REFUSED: {addr} claims the id {claimed} but its certificate proves the id {}",
        keys.fingerprint.peer_id()
    );
    assert!(p.err.contains(&want), "want {want:?} in {:?}", p.err);
    assert_eq!(error["message"], want["phone.py: ".len()..]);
    assert!(!Path::new(&known).exists(), "a refused key was pinned");
}

#[test]
#[ignore = "needs root (network namespaces)"]
fn browse_finds_laptop_over_mdns_then_send_reaches_it() {
    need_openssl();
    let lan = Lan::new("phone_browse", 2);
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("laptop");
    let mut laptop = lan.spawn(
        0,
        "laptop",
        &["--data-dir", dir.to_str().unwrap(), "listen"],
    );
    let line = laptop.wait_err(SECS(10), |l| l.contains("listening on port"));
    let port = port_of(&line);
    let want = format!("{}:{port}", lan.addr(0));
    // The advertisement goes out shortly after the listener starts: allow a retry.
    let mut found = None;
    for _ in 0..3 {
        let cmd = lan.command_raw(1, &[python(), SCRIPT, "--browse", "--timeout", "3"]);
        let mut p = Proc::spawn(cmd);
        let status = p.wait_exit(SECS(20));
        if let Some(l) = p
            .out
            .iter()
            .find(|l| l.contains("laptop") && l.contains(&want))
        {
            assert!(status.success(), "browse failed: {:?}", p.err);
            found = Some(l.clone());
            break;
        }
    }
    let found = found.expect("phone.py --browse never listed laptop");
    assert!(found.contains("id "), "no id in: {found}");

    let json_cmd = lan.command_raw(1, &[python(), SCRIPT, "--browse", "--json"]);
    let mut p = Proc::spawn(json_cmd);
    assert!(p.wait_exit(SECS(20)).success(), "{:?}", p.err);
    let peer: Value = serde_json::from_str(&p.out[0]).expect("--json line is JSON");
    assert_eq!(peer["name"], "laptop");
    assert_eq!(peer["address"], lan.addr(0));
    assert_eq!(peer["port"], port);
    let fp = fingerprint_of(&dir);
    let hex = fp.replace(' ', "");
    assert_eq!(peer["id"], hex[..32]);
    assert_eq!(peer["fp"], hex, "the advertised fingerprint");

    // By name: found on mDNS, its key checked against the advertised one,
    // and pinned under its mDNS name.
    let home = tempfile::tempdir().unwrap();
    let known = known_in(&home);
    let body = "Hey there, Rodrigo's laptop.";
    let by_name = [
        python(),
        SCRIPT,
        "--name",
        "phone",
        "--known",
        &known,
        "--browse",
        "--send",
        "laptop",
        body,
    ];
    let mut p = Proc::spawn(with_home(lan.command_raw(1, &by_name), home.path()));
    assert!(p.wait_exit(SECS(20)).success(), "send failed: {:?}", p.err);
    laptop.wait_out(SECS(5), |l| l == format!("phone: {body}"));
    assert!(
        p.err
            .contains(&format!("phone.py: fingerprint of {want}: {fp}")),
        "{:?}",
        p.err
    );
    assert!(
        p.err.iter().any(|l| l.ends_with(&format!(
            "(encrypted, key as advertised on mDNS, pinned in {known})"
        ))),
        "{:?}",
        p.err
    );
    laptop.wait_err(SECS(5), |l| l.ends_with("(encrypted, key pinned now)"));
    let pins: Value = serde_json::from_str(&std::fs::read_to_string(&known).unwrap()).unwrap();
    assert_eq!(pins, json!({"laptop._lantalk._tcp.local": hex}));

    // By address: a first contact there, with a key pinned for another way
    // to reach the same laptop.
    let send = [
        python(),
        SCRIPT,
        "--name",
        "phone",
        "--known",
        &known,
        "--send",
        &want,
        "2",
    ];
    let mut p = Proc::spawn(with_home(lan.command_raw(1, &send), home.path()));
    assert!(p.wait_exit(SECS(20)).success(), "send failed: {:?}", p.err);
    laptop.wait_out(SECS(5), |l| l == "phone: 2");
    let how =
        format!("(encrypted, key as pinned for \"laptop._lantalk._tcp.local\", pinned in {known})");
    assert!(p.err.iter().any(|l| l.ends_with(&how)), "{:?}", p.err);
    laptop.wait_err(SECS(5), |l| l.ends_with("(encrypted)"));

    // Pins of an earlier phone.py (~/.lantalk_phone_known, by the name in
    // the laptop's hello) count for the laptop's mDNS name: a key that is not
    // the one pinned there is refused before anything is sent.
    let old_home = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let wrong = lantalk::identity::load_or_create_keys(other.path())
        .unwrap()
        .fingerprint;
    let old_pins = json!({"laptop": wrong.grouped().replace(' ', "")}).to_string();
    std::fs::write(old_home.path().join(".lantalk_phone_known"), old_pins).unwrap();
    let by_name = [
        python(),
        SCRIPT,
        "--browse",
        "--send",
        "laptop",
        "must not arrive",
    ];
    let mut p = Proc::spawn(with_home(lan.command_raw(1, &by_name), old_home.path()));
    assert!(!p.wait_exit(SECS(20)).success(), "{:?}", p.err);
    let warning = format!(
        "THE KEY OF \"laptop._lantalk._tcp.local\" HAS CHANGED: pinned {}, presented {fp}",
        wrong.grouped()
    );
    assert!(
        p.err.iter().any(|l| l.contains(&warning)),
        "want {warning:?} in {:?}",
        p.err
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !laptop
            .drain_out()
            .iter()
            .any(|l| l.contains("must not arrive")),
        "{:?}",
        laptop.out
    );
}

/// `cmd` with HOME=`home`: phone.py keeps its files there.
fn with_home(mut cmd: Command, home: &Path) -> Command {
    cmd.env("HOME", home);
    cmd
}
