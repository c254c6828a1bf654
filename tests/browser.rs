//! The browser harness itself (`common/browser.rs`): headless Chromium in
//! one namespace loads a page that another namespace serves, by IP, and its
//! localStorage lives exactly as long as its profile.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::lan::Lan;
use common::proc::{Proc, python};
use serde_json::json;

const SERVER: usize = 0;
const PHONE: usize = 1;
const WAIT: Duration = Duration::from_secs(20);

/// A page that shows what its origin's localStorage holds under `k`.
const PAGE: &str = "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>harness</title>\
<p id=stored></p><script>\
document.getElementById('stored').textContent = 'stored:' + (localStorage.getItem('k') ?? 'none');\
</script>";

/// Serves `dir` with Python's http.server on host `i`, port 8000; waits
/// until it answers.
fn serve(lan: &Lan, i: usize, dir: &std::path::Path) -> Proc {
    let addr = lan.addr(i);
    let mut server = Proc::spawn(lan.command_raw(
        i,
        &[
            python(),
            "-u",
            "-m",
            "http.server",
            "8000",
            "--bind",
            &addr,
            "--directory",
            dir.to_str().unwrap(),
        ],
    ));
    server.wait_out(WAIT, |l| l.starts_with("Serving HTTP on"));
    server
}

#[test]
#[ignore = "needs root, chromium"]
fn chromium_in_one_namespace_loads_a_page_served_from_another_and_keeps_local_storage_per_profile()
{
    let lan = Lan::new("browser_harness", 2);
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), PAGE).unwrap();
    let mut server = serve(&lan, SERVER, site.path());
    let url = format!("http://{}:8000/", lan.addr(SERVER));

    let browser = Browser::new("browser_harness", &lan, PHONE);
    browser.open(&url);
    browser.wait_text("#stored", "stored:none", WAIT);
    // The request crossed the LAN: the server saw the phone's address.
    let phone = lan.addr(PHONE);
    server.wait_err(WAIT, |l| {
        l.starts_with(&phone) && l.contains("\"GET / HTTP/1.1\" 200")
    });
    // A phone-sized viewport.
    let size = browser.exec("return [innerWidth, innerHeight]", vec![]);
    assert_eq!(size[0], json!(common::browser::WIDTH), "viewport {size}");
    assert_eq!(size[1], json!(common::browser::HEIGHT), "viewport {size}");

    browser.exec(
        "localStorage.setItem('k', arguments[0])",
        vec![json!("kept")],
    );
    browser.reload();
    browser.wait_text("#stored", "stored:kept", WAIT);

    // A second browser has a profile of its own: nothing leaks into it.
    let fresh = Browser::new("browser_harness", &lan, PHONE);
    assert_ne!(fresh.profile(), browser.profile());
    fresh.open(&url);
    fresh.wait_text("#stored", "stored:", WAIT);
    assert_eq!(fresh.text("#stored").as_deref(), Some("stored:none"));
    assert_eq!(browser.texts("#stored"), vec!["stored:kept".to_owned()]);

    let shot = site.path().join("shot.png");
    browser.screenshot(&shot);
    let png = std::fs::read(&shot).unwrap();
    // PNG header: width and height at bytes 16..24 (device pixels).
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, common::browser::WIDTH, "screenshot width");

    // Dropping a browser ends its Chromium and removes its profile.
    let profile = fresh.profile().to_owned();
    drop(fresh);
    assert!(!profile.exists(), "the profile directory is removed");
}
