//! `assets/phone.py`, the standard-library Python client, against the real
//! binary: one-shot send, a two-way chat with piped stdin, a fake peer that
//! sends texts, pings and errors, and mDNS browsing inside a namespace LAN.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::lan::Lan;
use common::proc::{BIN, Proc, port_of};
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/phone.py");
const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The Python interpreter: the system one if present, else `python3` from PATH.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn phone(args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(SCRIPT).args(args);
    cmd
}

/// `lantalk --no-mdns --port 0 listen` on 127.0.0.1 (root namespace, no mDNS).
fn listen_local(dir: &Path) -> (Proc, u16) {
    let mut cmd = Command::new(BIN);
    cmd.env(common::NO_USER_CONFIG.0, common::NO_USER_CONFIG.1);
    cmd.args(["--no-mdns", "--port", "0", "--data-dir"])
        .arg(dir)
        .arg("listen");
    let mut proc = Proc::spawn(cmd);
    let line = proc.wait_err(SECS(10), |l| l.contains("listening on port"));
    (proc, port_of(&line))
}

#[test]
fn send_is_acknowledged_and_printed_by_listen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut laptop, port) = listen_local(dir.path());
    let addr = format!("127.0.0.1:{port}");
    let args = [
        "--name",
        "phone",
        "--send",
        &addr,
        "Hey there, Rodrigo's laptop.",
    ];
    let mut p = Proc::spawn(phone(&args));
    let status = p.wait_exit(SECS(15));
    assert!(status.success(), "phone.py --send failed: {:?}", p.err);
    laptop.wait_out(SECS(5), |l| l == "phone: Hey there, Rodrigo's laptop.");

    // Nobody listening: exit 1 with a message.
    drop(laptop);
    let mut p = Proc::spawn(phone(&["--send", &addr, "lost"]));
    assert_eq!(p.wait_exit(SECS(15)).code(), Some(1));
    assert!(!p.err.is_empty(), "no error message on stderr");
}

#[test]
fn chat_with_piped_stdin_delivers_every_line_and_ends_with_bye() {
    let dir = tempfile::tempdir().unwrap();
    let (mut laptop, port) = listen_local(dir.path());
    let port = port.to_string();
    let (mut p, mut stdin) =
        Proc::spawn_with_stdin(phone(&["--name", "phone", "127.0.0.1", &port]));
    writeln!(stdin, "first line").unwrap();
    laptop.wait_out(SECS(10), |l| l == "phone: first line");
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

fn write_frame(s: &mut TcpStream, v: &Value) {
    let data = serde_json::to_vec(v).unwrap();
    let mut buf = (data.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(&data);
    s.write_all(&buf).unwrap();
}

fn read_frame(s: &mut TcpStream) -> Value {
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
    let (mut p, stdin) = Proc::spawn_with_stdin(phone(&["--name", "phone", "127.0.0.1", &port]));
    let (mut s, _) = server.accept().unwrap();
    s.set_read_timeout(Some(SECS(10))).unwrap();
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

#[test]
fn browse_finds_laptop_over_mdns_then_send_reaches_it() {
    let Some(lan) = Lan::new("phone_browse", 2) else {
        return;
    };
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
    assert_eq!(peer["id"].as_str().unwrap().len(), 32);

    let body = "Hey there, Rodrigo's laptop.";
    let send = [python(), SCRIPT, "--name", "phone", "--send", &want, body];
    let mut p = Proc::spawn(lan.command_raw(1, &send));
    assert!(p.wait_exit(SECS(20)).success(), "send failed: {:?}", p.err);
    laptop.wait_out(SECS(5), |l| l == format!("phone: {body}"));
}
