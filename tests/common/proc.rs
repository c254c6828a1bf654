//! A running `lantalk` (or other) process whose stdout and stderr lines are
//! collected by reader threads, so tests can wait for a line with a timeout
//! instead of sleeping. The process is killed when the guard is dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_lantalk");

/// A child process with captured output.
pub struct Proc {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// Every stdout line read so far.
    pub out: Vec<String>,
    /// Every stderr line read so far.
    pub err: Vec<String>,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr captured and stdin closed.
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let stderr = lines(child.stderr.take().expect("piped stderr"));
        Proc {
            child,
            stdout,
            stderr,
            out: Vec::new(),
            err: Vec::new(),
        }
    }

    /// Like [`Proc::spawn`], but with stdin piped: returns the write end too.
    /// Dropping it closes the child's stdin (EOF).
    pub fn spawn_with_stdin(mut cmd: Command) -> (Proc, ChildStdin) {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let stderr = lines(child.stderr.take().expect("piped stderr"));
        let proc = Proc {
            child,
            stdout,
            stderr,
            out: Vec::new(),
            err: Vec::new(),
        };
        (proc, stdin)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a stdout line satisfies `pred`; returns it.
    pub fn wait_out(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        match wait_line(&self.stdout, &mut self.out, timeout, &pred) {
            Some(line) => line,
            None => {
                let err = self.drain_err();
                panic!(
                    "no matching stdout line in {timeout:?}; stdout: {:?}; stderr: {err:?}",
                    self.out
                )
            }
        }
    }

    /// Waits until a stderr line satisfies `pred`; returns it.
    pub fn wait_err(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let found = wait_line(&self.stderr, &mut self.err, timeout, &pred);
        found.unwrap_or_else(|| {
            panic!(
                "no matching stderr line in {timeout:?}; stderr: {:?}",
                self.err
            )
        })
    }

    /// Reads the stderr lines available now.
    pub fn drain_err(&mut self) -> Vec<String> {
        while let Ok(line) = self.stderr.try_recv() {
            self.err.push(line);
        }
        self.err.clone()
    }

    /// Reads the stdout lines available now.
    pub fn drain_out(&mut self) -> Vec<String> {
        while let Ok(line) = self.stdout.try_recv() {
            self.out.push(line);
        }
        self.out.clone()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Sends SIGKILL (no chance to clean up) and waits for the process to end.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("wait for a killed process")
    }

    /// Waits for the process to exit, up to `timeout`; collects the rest of its output.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The reader threads end at EOF; give them a moment to deliver.
                thread::sleep(Duration::from_millis(50));
                self.drain_out();
                self.drain_err();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process {} still running after {timeout:?}; stderr: {:?}",
                self.pid(),
                self.drain_err()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(line) => {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    rx
}

fn wait_line(
    rx: &Receiver<String>,
    seen: &mut Vec<String>,
    timeout: Duration,
    pred: &dyn Fn(&str) -> bool,
) -> Option<String> {
    if let Some(line) = seen.iter().find(|l| pred(l)) {
        return Some(line.clone());
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let line = rx.recv_timeout(left).ok()?;
        seen.push(line.clone());
        if pred(&line) {
            return Some(line);
        }
    }
}

/// The port from a `listening on port N` stderr line.
pub fn port_of(line: &str) -> u16 {
    let rest = line
        .split("listening on port ")
        .nth(1)
        .unwrap_or_else(|| panic!("not a listening line: {line}"));
    rest.split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in: {line}"))
}

/// Resident memory (`VmRSS`) of process `pid` in KiB, or `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The Python interpreter: the system one if present (a test's PATH may
/// hold another), else `python3` from PATH.
pub fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}
