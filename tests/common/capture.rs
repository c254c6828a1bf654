//! A packet capture on one host of a namespace LAN: `tcpdump` on an
//! interface of that host, writing a pcap to a pipe the test reads, so the
//! test can search the bytes that really crossed the link.
//!
//! Needs `tcpdump` (Debian package `tcpdump`); `scripts/test.sh` installs it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::lan::Lan;

/// How long [`Capture::stop`] waits for tcpdump to end, then for its output
/// to close.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A running capture; [`Capture::stop`] ends it and returns the pcap.
pub struct Capture {
    child: Child,
    /// The pcap so far, as tcpdump writes it.
    pcap: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
    stderr: Receiver<String>,
}

impl Capture {
    /// Starts `tcpdump -i IFACE --immediate-mode -U -w -` (every packet,
    /// whole, written out as it comes) on host `i`; returns once tcpdump
    /// says it is listening.
    pub fn start(lan: &Lan, i: usize, iface: &str) -> Capture {
        let found = Command::new("tcpdump").arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "tcpdump is needed for this test (Debian package tcpdump); \
             scripts/test.sh installs it when run as root"
        );
        let mut cmd = lan.command_raw(
            i,
            &[
                "tcpdump",
                "-i",
                iface,
                "-n",
                "--immediate-mode",
                "-U",
                "-s",
                "0",
                "-w",
                "-",
            ],
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start tcpdump");
        let mut out = child.stdout.take().expect("piped stdout");
        let pcap = Arc::new(Mutex::new(Vec::new()));
        let filled = Arc::clone(&pcap);
        let reader = thread::spawn(move || {
            let mut chunk = [0u8; 16 * 1024];
            while let Ok(n @ 1..) = out.read(&mut chunk) {
                filled.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        let err = child.stderr.take().expect("piped stderr");
        let (tx, stderr) = channel();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let capture = Capture {
            child,
            pcap,
            reader: Some(reader),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match capture.stderr.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => said.push(line),
                Err(_) => panic!("tcpdump did not start listening on {iface}: {said:?}"),
            }
        }
        capture
    }

    /// Waits (up to `timeout`) until the capture holds `needle`: packets
    /// come out in order, so everything sent before it is in by then.
    /// Returns whether it came.
    pub fn wait_for(&self, needle: &[u8], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !contains(&self.pcap.lock().unwrap(), needle) {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Stops tcpdump (SIGTERM: it writes out what it holds) and returns the
    /// pcap file's bytes. Bounded: tcpdump still running 5 s after SIGTERM is
    /// killed, and a pipe still open 5 s after it ended fails the test.
    pub fn stop(mut self) -> Vec<u8> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "cannot stop tcpdump");
        let deadline = Instant::now() + STOP_WAIT;
        let exited = loop {
            if let Some(status) = self.child.try_wait().expect("wait for tcpdump") {
                break status;
            }
            if Instant::now() >= deadline {
                eprintln!("tcpdump still running {STOP_WAIT:?} after SIGTERM: killing it");
                let _ = self.child.kill();
                break self.child.wait().expect("wait for the killed tcpdump");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let reader = self.reader.take().expect("stopped once");
        let deadline = Instant::now() + STOP_WAIT;
        while !reader.is_finished() {
            assert!(
                Instant::now() < deadline,
                "tcpdump's output still open {STOP_WAIT:?} after it ended ({exited})"
            );
            thread::sleep(Duration::from_millis(20));
        }
        reader.join().unwrap();
        let pcap = std::mem::take(&mut *self.pcap.lock().unwrap());
        let said: Vec<String> = self.stderr.try_iter().collect();
        eprintln!("tcpdump ({exited}): {said:?}; {} bytes of pcap", pcap.len());
        pcap
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    count(haystack, needle) > 0
}

/// How many times `needle` occurs in `haystack` (overlaps counted).
pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|w| w == &needle)
        .count()
}
