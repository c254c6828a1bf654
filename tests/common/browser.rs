//! Headless Chromium driven over WebDriver, inside one host of a [`Lan`]:
//! `chromedriver` runs in that host's network namespace (`ip netns exec`),
//! and the WebDriver client (`fantoccini`) runs on a tokio runtime whose
//! threads have joined the same namespace (setns(2)), so it reaches
//! chromedriver on that namespace's loopback. The browser then sees the LAN
//! exactly as a phone on that host would: other hosts by their IPv4
//! addresses (Chromium in a namespace cannot resolve `.local` names).
//!
//! Every [`Browser`] has a fresh profile (`--user-data-dir` in a temporary
//! directory), so localStorage never leaks between browsers or tests. The
//! session is quit, chromedriver killed by PID and the profile removed when
//! the [`Browser`] is dropped, also when the test fails.
//!
//! Needs root (namespaces) and Debian's `chromium` and `chromium-driver`,
//! which `scripts/test.sh` installs. A missing browser fails the test
//! (under CI, `LANTALK_REQUIRE_BROWSER=1`, it says so), it never skips it.

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::lan::Lan;
use super::proc::Proc;

/// Where Debian puts the browser and its driver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A phone's screen: the size every page test runs at.
pub const WIDTH: u32 = 390;
pub const HEIGHT: u32 = 844;

/// How often a condition is checked while waiting for it.
const POLL: Duration = Duration::from_millis(50);
/// How long one WebDriver command may take before the test fails.
const COMMAND: Duration = Duration::from_secs(30);

/// Panics, saying how to get them, unless Chromium and chromedriver are
/// installed. Under CI (`LANTALK_REQUIRE_BROWSER=1`) the message says that
/// the CI set-up is broken; elsewhere it says how to install them.
#[track_caller]
pub fn require(test: &str) {
    let missing: Vec<&str> = [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return;
    }
    let packages = missing.join(" ");
    if std::env::var("LANTALK_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!(
            "{test}: LANTALK_REQUIRE_BROWSER=1 but Debian's {packages} is not installed \
             ({CHROMIUM}, {CHROMEDRIVER}): scripts/test.sh should have installed it"
        );
    }
    panic!(
        "{test}: this test drives a real browser and needs Debian's {packages} \
         ({CHROMIUM}, {CHROMEDRIVER}); run the tests as root with scripts/test.sh, \
         which installs it (apt-get install chromium chromium-driver)"
    );
}

/// One headless Chromium with a profile of its own, on host `i` of a LAN.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Proc,
    profile: tempfile::TempDir,
}

/// Joins the calling thread to the network namespace `ns`.
fn enter(ns: &Path) -> nix::Result<()> {
    let file = File::open(ns)
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(nix::libc::ENOENT)))?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
}

impl Browser {
    /// Starts chromedriver on a free port in host `i`'s namespace and opens a
    /// Chromium session there (headless, phone-sized, fresh profile).
    #[track_caller]
    pub fn new(test: &str, lan: &Lan, i: usize) -> Browser {
        require(test);
        let ns = PathBuf::from("/run/netns").join(lan.ns(i));
        // Check once on a throwaway thread, so that the runtime's threads
        // below cannot fail to join it.
        let probe = ns.clone();
        thread::spawn(move || enter(&probe))
            .join()
            .expect("setns thread")
            .unwrap_or_else(|e| panic!("{test}: cannot join {}: {e}", ns.display()));
        let thread_ns = ns.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .on_thread_start(move || {
                enter(&thread_ns).expect("join the browser's network namespace");
            })
            .build()
            .expect("a runtime for the WebDriver client");

        // A port free in that namespace (nothing else binds there meanwhile
        // but what this test starts).
        let port = rt
            .block_on(rt.spawn(async {
                std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().unwrap().port())
            }))
            .expect("port task")
            .expect("a free port in the browser's namespace");
        let mut driver =
            Proc::spawn(lan.command_raw(i, &[CHROMEDRIVER, &format!("--port={port}")]));
        driver.wait_out(Duration::from_secs(20), |l| {
            l.contains("started successfully")
        });

        let profile = tempfile::Builder::new()
            .prefix("lantalk-chromium")
            .tempdir()
            .expect("a profile directory for Chromium");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={WIDTH},{HEIGHT}"),
            // Nothing of Chromium's own traffic (updates, suggestions) leaves
            // the test's namespaces anyway; this keeps it from trying.
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                // Headless Chromium will not make a window narrower than
                // 500 px; a phone's metrics (and touch, and the viewport
                // meta tag honoured) give the page exactly 390×844.
                "mobileEmulation": {
                    "deviceMetrics": { "width": WIDTH, "height": HEIGHT, "pixelRatio": 1.0, "touch": true, "mobile": true },
                },
            },
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let connected = rt.block_on(rt.spawn(async move {
            let mut builder =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            builder.capabilities(caps);
            tokio::time::timeout(COMMAND, builder.connect(&url)).await
        }));
        let client = match connected.expect("connect task") {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!(
                "{test}: no Chromium session: {e}; chromedriver said: {:?} {:?}",
                driver.drain_out(),
                driver.drain_err()
            ),
            Err(_) => panic!("{test}: no Chromium session within {COMMAND:?}"),
        };
        Browser {
            rt,
            client: Some(client),
            driver,
            profile,
        }
    }

    /// Runs one WebDriver exchange on the runtime inside the namespace.
    fn run<T, F, Fut>(&self, what: &str, f: F) -> Result<T, fantoccini::error::CmdError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, fantoccini::error::CmdError>> + Send + 'static,
        T: Send + 'static,
    {
        let client = self.client.clone().expect("an open session");
        let fut = f(client);
        match self
            .rt
            .block_on(
                self.rt
                    .spawn(async move { tokio::time::timeout(COMMAND, fut).await }),
            )
            .expect("WebDriver task")
        {
            Ok(result) => result,
            Err(_) => panic!("WebDriver: {what} took longer than {COMMAND:?}"),
        }
    }

    /// Like `run`, panicking with `what` on an error.
    fn must<T, F, Fut>(&self, what: &str, f: F) -> T
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, fantoccini::error::CmdError>> + Send + 'static,
        T: Send + 'static,
    {
        self.run(what, f)
            .unwrap_or_else(|e| panic!("WebDriver: {what}: {e}"))
    }

    /// Opens `url` and waits for its `load` event.
    pub fn open(&self, url: &str) {
        let owned = url.to_owned();
        self.must(&format!("open {url}"), move |c| async move {
            c.goto(&owned).await
        });
    }

    /// Reloads the page (same profile: localStorage stays).
    pub fn reload(&self) {
        self.must("reload", |c| async move { c.refresh().await });
    }

    /// The address bar's URL.
    pub fn url(&self) -> String {
        self.must("current URL", |c| async move {
            c.current_url().await.map(|u| u.to_string())
        })
    }

    /// Runs `script` (a function body: `return …`, arguments as
    /// `arguments[0]`…) in the page; returns its result.
    pub fn exec(&self, script: &str, args: Vec<Value>) -> Value {
        let owned = script.to_owned();
        self.must(&format!("execute {script:?}"), move |c| async move {
            c.execute(&owned, args).await
        })
    }

    /// Polls every 50 ms until `script` returns something truthy (not
    /// `null`, `false`, `0` or `""`); returns it. Panics after `timeout`,
    /// naming `what` and the page's text.
    pub fn wait_js(&self, what: &str, timeout: Duration, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let owned = script.to_owned();
            let args = args.clone();
            // A page being (re)loaded answers with an error: poll on.
            let got = self.run(what, move |c| async move { c.execute(&owned, args).await });
            if let Ok(value) = got {
                let truthy = match &value {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    Value::String(s) => !s.is_empty(),
                    _ => true,
                };
                if truthy {
                    return value;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "browser: no {what} after {timeout:?}; page text:\n{}",
                    self.page_text()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Waits until an element matches `css`.
    pub fn wait_for(&self, css: &str, timeout: Duration) {
        self.wait_js(
            &format!("element {css:?}"),
            timeout,
            "return document.querySelector(arguments[0]) !== null",
            vec![json!(css)],
        );
    }

    /// Waits until the text of the first element matching `css` contains
    /// `needle`; returns that text.
    pub fn wait_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let got = self.wait_js(
            &format!("{needle:?} in {css:?}"),
            timeout,
            "const e = document.querySelector(arguments[0]); \
             return e && e.textContent.includes(arguments[1]) ? e.textContent : null",
            vec![json!(css), json!(needle)],
        );
        got.as_str().unwrap_or_default().to_owned()
    }

    /// The text (`textContent`) of the first element matching `css`, if any.
    pub fn text(&self, css: &str) -> Option<String> {
        let got = self.exec(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
            vec![json!(css)],
        );
        got.as_str().map(str::to_owned)
    }

    /// The texts (`textContent`) of every element matching `css`, in document order.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let got = self.exec(
            "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent)",
            vec![json!(css)],
        );
        serde_json::from_value(got).expect("a list of strings")
    }

    /// The whole page's visible text, for failure messages.
    pub fn page_text(&self) -> String {
        match self.run("page text", |c| async move {
            c.execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
        }) {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => format!("(unreadable: {e})"),
        }
    }

    /// Types `text` into the element matching `css`, as keystrokes
    /// (WebDriver key codes such as `"\u{E007}"` for Enter work too).
    pub fn type_into(&self, css: &str, text: &str) {
        let (sel, owned) = (css.to_owned(), text.to_owned());
        self.must(&format!("type into {css:?}"), move |c| async move {
            c.find(Locator::Css(&sel)).await?.send_keys(&owned).await
        });
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) {
        let sel = css.to_owned();
        self.must(&format!("click {css:?}"), move |c| async move {
            c.find(Locator::Css(&sel)).await?.click().await
        });
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self.must("screenshot", |c| async move { c.screenshot().await });
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot directory");
        }
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// The profile directory (localStorage and the rest of the browser's state).
    pub fn profile(&self) -> &Path {
        self.profile.path()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Quitting the session ends Chromium; bounded, also when the
            // test is failing because the browser hangs.
            let _ = self.rt.block_on(self.rt.spawn(async move {
                tokio::time::timeout(Duration::from_secs(10), client.close()).await
            }));
        }
        // Whatever Chromium left of this profile (a session that could not be
        // quit) is ours: killed by PID, found by its profile directory.
        let marker = format!("--user-data-dir={}", self.profile.path().display());
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|p| p.parse::<u32>().ok()) else {
                    continue;
                };
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if cmdline
                    .split(|b| *b == 0)
                    .any(|arg| arg == marker.as_bytes())
                {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
        }
        // chromedriver itself: `Proc`'s drop kills it by PID (`ip netns exec`
        // became chromedriver); the profile directory goes with `TempDir`.
        let _ = self.driver.kill();
    }
}
