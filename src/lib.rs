//! lantalk: a terminal chat between devices on the same LAN.
//!
//! Peers find each other with mDNS (`_lantalk._tcp.local.`) and talk over TCP
//! with length-prefixed JSON frames (see `assets/PROTOCOL.md`).
//!
//! # Layout
//!
//! ```text
//! main.rs      thin: parse arguments, set up logging, run, map errors to exit codes
//! tui.rs       the only owner of the terminal and of the interactive event loop
//! app/         TUI state and update(): pure, no tokio, no clocks
//! ui/          drawing from &App only, one file per pane
//! cli.rs       clap argument types only
//! config.rs    the config file: finding, parsing, filling in what the flags left out
//! protocol/    wire format: messages, codec, handshake rules, fingerprints and the
//!              verification code (no sockets)
//! identity.rs  who we are: display name, key pair and certificate in the data directory
//! trust.rs     whom we know: fingerprints pinned per peer name, verified or not
//! net/         listener (connection caps), TLS (the only module configuring rustls), sessions
//!              (heartbeat, deadlines, who is trusted), connecting, discovery (the only
//!              module naming mdns_sd), retries, duplicate detection
//! headless/    the `send`, `peers`, `listen`, `history` commands and `trust`/`verify` (one
//!              file each), built on net
//! store/       history and outbox in SQLite (the only module naming rusqlite); plain data types
//! sanitize.rs  making peers' text safe to print on a terminal
//! ```
//!
//! Dependency rule (an arrow means "may import"): `main → cli, config, tui, headless, sanitize, store, net (its Policy)` ·
//! `config → cli, app (its Theme)` ·
//! `tui → app, ui, net` · `ui → app` (read-only) · `app → plain data of net, protocol, store` ·
//! `headless → net, protocol, identity, store, trust` · `tui → store` · `app, ui, headless → sanitize` ·
//! `net → protocol, store, trust, identity (its keys)` · `store → protocol` ·
//! `trust → protocol` · `identity → protocol` · `protocol, sanitize → nothing`.
#![forbid(unsafe_code)]

/// Prints a status line on stderr, prefixed with `lantalk: `. A closed or full
/// stderr is ignored (`eprintln!` would panic): a status line is never worth
/// dying for.
#[macro_export]
macro_rules! status {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), "lantalk: {}", ::std::format_args!($($arg)*));
    }};
}

pub mod app;
pub mod cli;
pub mod config;
pub mod headless;
pub mod identity;
pub mod net;
pub mod protocol;
pub mod sanitize;
pub mod store;
pub mod trust;
pub mod tui;
pub mod ui;
