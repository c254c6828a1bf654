//! The example programs (`examples/*.rs`) that tests run as helpers, e.g. the
//! careless mDNS advertiser. `cargo test` builds examples, but `cargo test
//! --test NAME` does not: [`example`] builds the one asked for (a no-op when
//! it is up to date) next to the binary under test, so it is never missing
//! or stale.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::proc::BIN;

/// The path of example `name`, built with the profile and target directory
/// of the binary under test (`target/debug/examples/NAME`).
pub fn example(name: &str) -> PathBuf {
    // One build at a time: parallel tests would only wait on cargo's lock.
    static BUILD: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let profile_dir = Path::new(BIN)
        .parent()
        .expect("the binary is in a directory");
    let exe = profile_dir.join("examples").join(name);
    let mut built = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if built.iter().any(|b| b == name) {
        return exe;
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // The test process has the variables Cargo sets for the crate under
    // test (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...). Some build scripts
    // (ring's) depend on them: passed on, they would make this build
    // rebuild ring and everything above it, and the next `cargo test`
    // rebuild it all back (about 10 s each way, measured).
    for (key, _) in std::env::vars_os() {
        let Some(k) = key.to_str() else { continue };
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_")
            || matches!(
                k,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            )
        {
            cmd.env_remove(&key);
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        cmd.arg("--target-dir").arg(target_dir);
    }
    match profile_dir.file_name().and_then(|p| p.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build example {name}: {e}"));
    assert!(
        out.status.success(),
        "cargo build --example {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(exe.is_file(), "example {name} is not at {}", exe.display());
    built.push(name.to_owned());
    exe
}
