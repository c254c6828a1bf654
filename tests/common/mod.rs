//! Helpers shared by the integration tests: running the real binary with
//! its output captured ([`Proc`]) and building a LAN out of network
//! namespaces ([`Lan`]).
#![allow(dead_code)] // each test crate uses a different subset

pub mod lan;
pub mod proc;
