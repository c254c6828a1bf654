//! Helpers shared by the integration tests: running the real binary with
//! its output captured ([`Proc`]), building a LAN out of network
//! namespaces ([`Lan`]), driving the chat screen in a private tmux
//! server ([`Tmux`]), and headless Chromium over WebDriver inside one of
//! those namespaces ([`browser::Browser`]).
#![allow(dead_code)] // each test crate uses a different subset

pub mod browser;
pub mod capture;
pub mod example;
/// Set on every lantalk the tests start, so that a config file in the
/// home directory of whoever runs the tests changes nothing.
pub const NO_USER_CONFIG: (&str, &str) = ("XDG_CONFIG_HOME", "/nonexistent/lantalk-tests");

/// The key met last under `name` in the data directory `dir`, as
/// lantalk's own code reads it.
pub fn pinned(dir: &std::path::Path, name: &str) -> Option<lantalk::trust::Known> {
    named(dir, name).pop()
}

/// Every key met under `name` in the data directory `dir`, oldest first.
pub fn named(dir: &std::path::Path, name: &str) -> Vec<lantalk::trust::Known> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime
        .block_on(lantalk::trust::KnownPeers::new(dir).named(name))
        .expect("the known peers can be read")
}

pub mod lan;
pub mod local;
pub mod proc;
pub mod tmux;
