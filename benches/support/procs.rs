//! Whole processes for the benches that run the binary (`processes`, `web`):
//! started with a guard that kills them when dropped (also when the bench
//! panics), their stderr collected by a reader thread, and what /proc says
//! about their CPU time, wake-ups and memory.
#![allow(dead_code)] // each bench program uses a different subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The release binary under `cargo bench`.
pub const BIN: &str = env!("CARGO_BIN_EXE_lantalk");

/// A child process, killed and reaped when dropped.
pub struct Running {
    child: Child,
    what: String,
    err_rx: Receiver<String>,
    /// Every stderr line read so far.
    pub err: Vec<String>,
}

impl Running {
    /// Starts `cmd` with the given stdin and stdout; stderr is collected.
    pub fn spawn(mut cmd: Command, stdin: Stdio, stdout: Stdio) -> Running {
        let what = format!("{cmd:?}");
        cmd.stdin(stdin).stdout(stdout).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stream = child.stderr.take().expect("piped stderr");
        let (tx, err_rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            what,
            err_rx,
            err: Vec::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stderr lines available now.
    pub fn drain_err(&mut self) -> &[String] {
        while let Ok(line) = self.err_rx.try_recv() {
            self.err.push(line);
        }
        &self.err
    }

    /// Waits for a stderr line satisfying `pred`, up to `timeout`; panics with
    /// what was seen otherwise.
    pub fn wait_err(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.err.iter().find(|l| pred(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err_rx.recv_timeout(left) {
                Ok(line) => {
                    self.err.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "{}: no matching stderr line after {timeout:?} (exit: {status:?}); stderr: {:?}",
                        self.what, self.err
                    );
                }
            }
        }
    }

    /// The exit status if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for the process to exit, up to `timeout`; panics with its
    /// stderr otherwise.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let err = self.drain_err().to_vec();
                panic!(
                    "{}: still running after {timeout:?}; stderr: {err:?}",
                    self.what
                );
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Panics (with stderr) unless `status` is success.
    pub fn expect_success(&mut self, status: ExitStatus) {
        if !status.success() {
            // The reader thread may still be delivering the last lines.
            thread::sleep(Duration::from_millis(50));
            let err = self.drain_err().to_vec();
            panic!("{}: exited with {status}; stderr: {err:?}", self.what);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A [`Running`] process watched by a thread that notes, within about a
/// millisecond, when it exits. Dropping the watch stops the thread, which
/// kills the process if it is still running.
pub struct Watch {
    stop: Arc<AtomicBool>,
    exited: Arc<Mutex<Option<Instant>>>,
    thread: Option<JoinHandle<(Running, Option<ExitStatus>)>>,
}

impl Watch {
    /// Starts watching `run`.
    pub fn new(mut run: Running) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let exited = Arc::new(Mutex::new(None));
        let (stop2, exited2) = (stop.clone(), exited.clone());
        let thread = thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                if let Some(status) = run.try_wait() {
                    *exited2.lock().expect("exit time") = Some(Instant::now());
                    return (run, Some(status));
                }
                thread::sleep(Duration::from_millis(1));
            }
            (run, None)
        });
        Watch {
            stop,
            exited,
            thread: Some(thread),
        }
    }

    /// When the process exited, if it has.
    pub fn exited_at(&self) -> Option<Instant> {
        *self.exited.lock().expect("exit time")
    }

    /// Waits up to `timeout` for the exit; panics (with stderr) if the
    /// process is still running then or exited unsuccessfully. Returns when
    /// it exited.
    pub fn finish(mut self, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        while self.exited_at().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        self.stop.store(true, Ordering::Relaxed);
        let (mut run, status) = self
            .thread
            .take()
            .expect("not finished yet")
            .join()
            .expect("watch thread");
        match (status, self.exited_at()) {
            (Some(status), Some(at)) => {
                run.expect_success(status);
                at
            }
            _ => {
                let err = run.drain_err().to_vec();
                panic!(
                    "{}: still running after {timeout:?}; stderr: {err:?}",
                    run.what
                );
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that fails).
pub fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// One thread as /proc sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Task {
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// Time on the CPU in ns (first field of `schedstat`), when available.
    pub run_ns: Option<u64>,
    /// voluntary + nonvoluntary context switches.
    pub switches: u64,
}

/// A process's counters at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime of the whole process (`/proc/PID/stat`: every thread,
    /// also those that already exited), in clock ticks.
    pub ticks: u64,
    /// Each live thread, by tid.
    pub tasks: HashMap<u32, Task>,
    /// Each live thread's name (`comm`), by tid.
    pub names: HashMap<u32, String>,
}

/// Fields 14 and 15 (utime, stime) of a `stat` line.
fn stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The counters of process `pid` now.
pub fn sample(pid: u32) -> Sample {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("process {pid} is gone: {e}"));
    let ticks = stat_ticks(&stat).unwrap_or_else(|| panic!("cannot parse /proc/{pid}/stat"));
    let mut tasks = HashMap::new();
    let mut names = HashMap::new();
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("process {pid} is gone: {e}"));
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let path = entry.path();
        let Some(ticks) = std::fs::read_to_string(path.join("stat"))
            .ok()
            .and_then(|s| stat_ticks(&s))
        else {
            continue; // exited meanwhile
        };
        let run_ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let switches = status
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches:")
                    || l.starts_with("nonvoluntary_ctxt_switches:")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        names.insert(tid, comm.trim().to_owned());
        tasks.insert(
            tid,
            Task {
                ticks,
                run_ns,
                switches,
            },
        );
    }
    Sample {
        at,
        ticks,
        tasks,
        names,
    }
}

/// What happened between two samples.
#[derive(Debug, Clone, Copy)]
pub struct Delta {
    /// Wall time between them.
    pub secs: f64,
    /// CPU time of the whole process in clock ticks.
    pub ticks: u64,
    /// utime + stime summed over the threads' own `task/*/stat` (threads
    /// that ended in between are missing).
    pub task_ticks: u64,
    /// CPU time in ns from `schedstat`, summed over threads (threads that
    /// ended in between are missing), when available.
    pub run_ns: Option<u64>,
    /// Context switches summed over threads (same caveat).
    pub switches: u64,
    /// Threads in `before` but not in `after`.
    pub gone: usize,
    /// Threads in `after` but not in `before`.
    pub new: usize,
}

impl Delta {
    /// Between `before` and `after` (of the same process).
    pub fn between(before: &Sample, after: &Sample) -> Delta {
        let mut run_ns = Some(0u64);
        let mut switches = 0;
        let mut task_ticks = 0;
        let mut new = 0;
        for (tid, task) in &after.tasks {
            let old = before.tasks.get(tid).copied().unwrap_or_else(|| {
                new += 1;
                Task {
                    run_ns: Some(0),
                    ..Task::default()
                }
            });
            switches += task.switches.saturating_sub(old.switches);
            task_ticks += task.ticks.saturating_sub(old.ticks);
            run_ns = match (run_ns, task.run_ns, old.run_ns) {
                (Some(sum), Some(a), Some(b)) => Some(sum + a.saturating_sub(b)),
                _ => None,
            };
        }
        let gone = before
            .tasks
            .keys()
            .filter(|tid| !after.tasks.contains_key(tid))
            .count();
        Delta {
            secs: after.at.duration_since(before.at).as_secs_f64(),
            ticks: after.ticks.saturating_sub(before.ticks),
            task_ticks,
            run_ns,
            switches,
            gone,
            new,
        }
    }
}

/// Per thread name (threads of one name summed): (context switches, ms on
/// the CPU from schedstat) between `before` and `after`, busiest first.
pub fn per_thread(before: &Sample, after: &Sample) -> Vec<(String, u64, f64)> {
    let mut by_name: HashMap<String, (u64, f64)> = HashMap::new();
    for (tid, task) in &after.tasks {
        let old = before.tasks.get(tid).copied().unwrap_or_default();
        let name = after.names.get(tid).cloned().unwrap_or_default();
        let entry = by_name.entry(name).or_default();
        entry.0 += task.switches.saturating_sub(old.switches);
        let ns = task
            .run_ns
            .unwrap_or(0)
            .saturating_sub(old.run_ns.unwrap_or(0));
        entry.1 += ns as f64 / 1e6;
    }
    let mut out: Vec<(String, u64, f64)> =
        by_name.into_iter().map(|(n, (s, ms))| (n, s, ms)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.total_cmp(&a.2)));
    out
}

/// `VmRSS` of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("process {pid} is gone: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}
