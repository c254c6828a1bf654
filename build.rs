//! Puts the commit into `--version` (`lantalk 0.1.0 (2418218)`): the short
//! hash from `git rev-parse --short HEAD` when the sources are a git
//! checkout and git is installed, the crate version alone otherwise (a
//! tarball, a crate from a registry).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    println!("cargo:rerun-if-changed=build.rs");
    let full = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => {
            // A new commit or a checkout moves HEAD (or its log): build again.
            for path in ["HEAD", "logs/HEAD"] {
                if let Some(file) = git(&["rev-parse", "--git-path", path]) {
                    println!("cargo:rerun-if-changed={file}");
                }
            }
            format!("{version} ({commit})")
        }
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=LANTALK_VERSION={full}");
}
