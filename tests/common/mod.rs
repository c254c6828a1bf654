//! Helpers shared by the integration tests: running the real binary with
//! its output captured ([`Proc`]), building a LAN out of network
//! namespaces ([`Lan`]), and driving the chat screen in a private tmux
//! server ([`Tmux`]).
#![allow(dead_code)] // each test crate uses a different subset

pub mod capture;
pub mod example;
/// Set on every lantalk the tests start, so that a config file in the
/// home directory of whoever runs the tests changes nothing.
pub const NO_USER_CONFIG: (&str, &str) = ("XDG_CONFIG_HOME", "/nonexistent/lantalk-tests");

pub mod lan;
pub mod local;
pub mod proc;
pub mod tmux;
