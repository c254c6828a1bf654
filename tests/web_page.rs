//! The web client's page, `assets/web/index.html`: what its file must be (one
//! self-contained file under 30 KB whose only inline script and style the
//! server's Content-Security-Policy allows by hash, with no way for text to
//! become markup), and what it does in headless Chromium against the stand-in
//! for lantalk's side of the protocol in `tests/common/web_page.py`, run in a
//! network namespace of its own.

mod common;

use std::path::Path;
use std::process::Command;

use common::proc::python;

const PAGE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/web/index.html");
const PAGE: &str = include_str!("../assets/web/index.html");
const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/web_page.py");

/// Everything between `<tag` … `>` and `</tag>`, for each occurrence.
fn elements<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start..];
        let body_start = after.find('>').expect("an unclosed tag") + 1;
        let end = after.find(&close).expect("an element without its end tag");
        out.push(&after[body_start..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// The page with its script and style taken out: the markup alone.
fn markup() -> String {
    let mut html = PAGE.to_string();
    for tag in ["script", "style"] {
        for inner in elements(PAGE, tag) {
            html = html.replacen(inner, "", 1);
        }
    }
    html
}

#[test]
fn page_is_one_small_self_contained_file() {
    assert!(PAGE.len() <= 30 * 1024, "{} bytes", PAGE.len());
    assert_eq!(elements(PAGE, "script").len(), 1, "one inline <script>");
    assert_eq!(elements(PAGE, "style").len(), 1, "one inline <style>");
    assert!(
        PAGE.contains("<script>"),
        "the script is inline, without attributes"
    );
    assert!(
        PAGE.contains("<style>"),
        "the style is inline, without attributes"
    );
    let html = markup();
    for outside in [
        "src=", "href=", "<link", "@import", "url(", "http://", "https://",
    ] {
        assert!(!html.contains(outside), "{outside:?} in the markup");
    }
    for inner in [elements(PAGE, "style")[0], elements(PAGE, "script")[0]] {
        for outside in ["@import", "url(", "http://", "https://", "//cdn"] {
            assert!(!inner.contains(outside), "{outside:?} loads something");
        }
    }
}

#[test]
fn page_never_turns_text_into_markup() {
    let script = elements(PAGE, "script")[0];
    for banned in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "setAttribute('style'",
        "setTimeout('",
        "setInterval('",
    ] {
        assert!(!script.contains(banned), "{banned:?} in the script");
    }
    let html = markup().to_ascii_lowercase();
    // No inline handlers and no style attributes: the CSP would block them.
    for (at, _) in html.match_indices(" on") {
        let name: String = html[at + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let next = html[at + 3 + name.len()..].trim_start();
        let inside_tag = html[..at].rfind('<') > html[..at].rfind('>');
        assert!(
            !(inside_tag && !name.is_empty() && next.starts_with('=')),
            "inline handler on{name}"
        );
    }
    assert!(!html.contains("style="), "a style attribute");
    assert!(!html.contains("javascript:"), "a javascript: URL");
}

#[test]
fn page_is_made_for_phones() {
    let style = elements(PAGE, "style")[0];
    assert!(PAGE.contains(r#"<meta name="viewport" content="width=device-width"#));
    assert!(PAGE.contains("viewport-fit=cover"));
    assert!(PAGE.contains(r#"<meta charset="utf-8">"#));
    for inset in ["top", "right", "bottom", "left"] {
        assert!(
            style.contains(&format!("env(safe-area-inset-{inset})")),
            "safe-area-inset-{inset}"
        );
    }
    assert!(style.contains("@media (prefers-color-scheme:dark)"));
    assert!(style.contains("min-height:44px"), "tap targets of 44 px");
    for id in [
        "state", "laptop", "fp", "log", "input", "send", "name", "name-ok",
    ] {
        assert_eq!(
            PAGE.matches(&format!(r#"id="{id}""#)).count(),
            1,
            "element #{id}"
        );
    }
}

/// Why the browser test cannot run here, or `None`.
fn browser_unavailable() -> Option<String> {
    if !common::lan::is_root() {
        return Some("not root (needs a network namespace)".into());
    }
    let missing: Vec<&str> = ["chromium", "chromedriver", "unshare", "ip"]
        .into_iter()
        .filter(|p| {
            !std::env::var_os("PATH")
                .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(p).exists()))
        })
        .collect();
    (!missing.is_empty()).then(|| format!("missing {}", missing.join(", ")))
}

/// The page in headless Chromium at 390×844: name asked once, the token
/// taken from the fragment, Enter / Shift+Enter, ◷ then ✓, the laptop's
/// text shown as text and acked, unread count in the title, the outbox
/// kept across a reload and sent after reconnecting, reconnecting at once
/// on `visibilitychange`, history merged without duplicates, dark mode, a
/// changed name, a wrong token, a declined and an accepted request.
/// Screenshots go to `$CARGO_TARGET_DIR/web-page/` (or `target/`).
#[test]
#[ignore = "needs root (a network namespace), chromium and chromedriver"]
fn page_in_headless_chromium() {
    if let Some(why) = browser_unavailable() {
        panic!("cannot run the page in Chromium: {why} (scripts/test.sh installs chromium)");
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(target)
        .join("web-page");
    std::fs::create_dir_all(&shots).unwrap();
    // A network namespace with only loopback: nothing the browser does
    // can leave the machine.
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#])
        .arg(python())
        .args([DRIVER, PAGE_PATH])
        .arg(&shots)
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().last() == Some("ok"),
        "the page failed in Chromium:\n{stdout}\n{stderr}"
    );
}
