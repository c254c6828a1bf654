//! `lantalk web [--new-token]`: prints the address a phone's browser opens
//! (`http://ADDR:PORT/#t=TOKEN`, and by `.local` name) and its QR code on
//! stderr, then exits; `--new-token` first replaces the join token, so
//! every address shown before stops working, and `--forget-browsers`
//! forgets the browsers let in without it. Reads the interface list and
//! the data directory only: no socket, no mDNS. Also what `listen --qr`
//! prints once it listens ([`print_address`]).

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::anyhow;

use super::{Exit, Failure, identity_of};
use crate::options::Options;
use crate::peer::DEFAULT_PORT;
use crate::sanitize::escape_for_terminal;
use crate::web::browsers::Browsers;
use crate::web::qr::{self, QUIET_ZONE_PRINTED};
use crate::web::url::{self, WebAddress};

/// What it takes to make the address: the data directory (its token), the
/// interfaces mDNS is limited to, and our mDNS host name.
pub(crate) struct AddressSource {
    /// The data directory holding the token.
    pub dir: PathBuf,
    /// `--interface`: the address comes from these (empty: any).
    pub interfaces: Vec<String>,
    /// `laptop.local`, `None` without mDNS.
    pub host: Option<String>,
}

impl AddressSource {
    /// The source for `options`, with the data directory `dir`.
    pub(crate) fn new(options: &Options, dir: PathBuf, name: &str) -> Self {
        let label = crate::identity::hostname_label().unwrap_or_else(|| name.to_owned());
        Self {
            dir,
            interfaces: options.interfaces.clone(),
            host: options.mdns.then(|| format!("{label}.local")),
        }
    }

    /// The address for `port` (a new token first when `new_token`).
    pub(crate) fn address(&self, port: u16, new_token: bool) -> anyhow::Result<WebAddress> {
        url::current(
            &self.dir,
            new_token,
            port,
            &self.interfaces,
            self.host.as_deref(),
        )
    }
}

/// `lantalk web`.
pub async fn web(options: &Options, new_token: bool, forget_browsers: bool) -> Result<(), Failure> {
    let port = match options.port {
        Some(0) => {
            return Err(Failure::new(
                Exit::Usage,
                anyhow!(
                    "with --port 0 the port is picked when lantalk starts: \
                     `lantalk listen --qr` shows the address with it"
                ),
            ));
        }
        port => port.unwrap_or(DEFAULT_PORT),
    };
    let me = identity_of(options, false)?;
    let source = AddressSource::new(options, me.dir.clone(), &me.hello.name);
    let address = source.address(port, new_token)?;
    if new_token {
        status!("new join token: the addresses shown before no longer work");
    }
    print_address(&address);
    status!(
        "the page shows this fingerprint: {}",
        me.keys.fingerprint.grouped()
    );
    let browsers = Browsers::load(&me.dir);
    let names: Vec<String> = if forget_browsers {
        browsers.forget_all()
    } else {
        browsers.known().into_values().collect()
    };
    let names: Vec<String> = names
        .iter()
        .map(|n| escape_for_terminal(n, false).into_owned())
        .collect();
    match (names.is_empty(), forget_browsers) {
        (true, true) => status!("no browser was remembered"),
        (true, false) => {}
        (false, true) => status!(
            "forgot {} browser(s) let in without the token: {}",
            names.len(),
            names.join(", ")
        ),
        (false, false) => status!(
            "{} browser(s) let in without the token join at once: {} \
             (`lantalk web --forget-browsers` forgets them)",
            names.len(),
            names.join(", ")
        ),
    }
    Ok(())
}

/// Prints `address` and its QR code on stderr: the URLs indented on lines
/// of their own (to copy), the code white on black when stderr is a
/// terminal that takes colour.
pub(crate) fn print_address(address: &WebAddress) {
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut text = String::from("lantalk: to chat from a phone on this network, open\n");
    text.push_str(&format!("  {}\n", address.url));
    if let Some(local) = &address.local {
        text.push_str(&format!("  {}\n", escape_for_terminal(local, false)));
    }
    match qr::half_blocks(&address.url, QUIET_ZONE_PRINTED) {
        Ok(rows) => {
            text.push_str("lantalk: or scan this code with its camera:\n");
            for row in rows {
                if colour {
                    text.push_str(&format!("\x1b[97;40m{row}\x1b[0m\n"));
                } else {
                    text.push_str(&format!("{row}\n"));
                }
            }
        }
        Err(e) => text.push_str(&format!("lantalk: no QR code: {e}\n")),
    }
    if !address.others.is_empty() {
        let others = escape_for_terminal(&address.others.join(", "), false).into_owned();
        text.push_str(&format!(
            "lantalk: on another network, use another address of this machine: {others}\n"
        ));
    }
    if let Some(warning) = &address.warning {
        text.push_str(&format!("lantalk: {warning}\n"));
    }
    // One write: the lines stay together; a closed stderr is ignored.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
