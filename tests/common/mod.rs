//! Helpers shared by the integration tests: running the real binary with
//! its output captured ([`Proc`]), building a LAN out of network
//! namespaces ([`Lan`]), and driving the chat screen in a private tmux
//! server ([`Tmux`]).
#![allow(dead_code)] // each test crate uses a different subset

pub mod example;
pub mod lan;
pub mod local;
pub mod proc;
pub mod tmux;
