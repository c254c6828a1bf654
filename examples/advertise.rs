//! A deliberately careless mDNS advertiser for the tests: registers
//! `_lantalk._tcp.local.` services with whatever instance name, host, port,
//! addresses and TXT properties the command line gives, valid or not, so the
//! tests can check that lantalk copes with what others put on the network.
//!
//! It advertises on every interface of the network namespace it runs in;
//! the tests start it only inside namespaces they created.
//!
//! ```text
//! advertise [--instance NAME] [--host HOST] [--port N] [--addr IP]...
//!           [--txt KEY=VALUE | --txt KEY]... [--count N]
//! ```
//!
//! Strings take `\xNN` escapes (any byte, e.g. `\x1b` or invalid UTF-8 in a
//! TXT value) and `\\`. With `--count N`, N services are registered, named
//! `NAME-0` … `NAME-(N-1)`; in TXT values `{i}` becomes the index and `{id}`
//! a distinct 32-hex-digit id per service. Prints `ready` on stdout once
//! everything is registered, then runs until it is killed.

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;
use mdns_sd::{ServiceDaemon, ServiceInfo, TxtProperty};

#[derive(Debug, Parser)]
struct Args {
    /// Instance name (`\xNN` escapes allowed; must decode to UTF-8).
    #[arg(long, default_value = "poison")]
    instance: String,
    /// Host name; `.local.` is added when missing.
    #[arg(long, default_value = "poison")]
    host: String,
    /// SRV port (0 allowed).
    #[arg(long, default_value_t = 7342)]
    port: u16,
    /// An address for the host's A/AAAA records (repeatable). Without any,
    /// the namespace's own addresses are advertised.
    #[arg(long = "addr")]
    addrs: Vec<IpAddr>,
    /// A TXT property, `KEY=VALUE` or a bare `KEY` (repeatable, in order).
    #[arg(long = "txt")]
    txt: Vec<String>,
    /// How many services to register.
    #[arg(long, default_value_t = 1)]
    count: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let daemon = ServiceDaemon::new()?;
    let host = String::from_utf8(unescape(&args.host))?;
    let host = if host.ends_with(".local.") {
        host
    } else {
        format!("{host}.local.")
    };
    for i in 0..args.count {
        let mut instance = String::from_utf8(unescape(&args.instance))?;
        if args.count > 1 {
            instance = format!("{instance}-{i}");
        }
        let id = format!("{:032x}", 0xdead_0000_u64 + i as u64);
        let txt: Vec<TxtProperty> = args
            .txt
            .iter()
            .map(|p| {
                let p = p.replace("{i}", &i.to_string()).replace("{id}", &id);
                match p.split_once('=') {
                    Some((key, value)) => TxtProperty::from((key, unescape(value))),
                    None => TxtProperty::from(p.as_str()),
                }
            })
            .collect();
        let mut info = ServiceInfo::new(
            "_lantalk._tcp.local.",
            &instance,
            &host,
            &args.addrs[..],
            args.port,
            txt,
        )?;
        if args.addrs.is_empty() {
            info = info.enable_addr_auto();
        }
        // Nobody else uses these names: answer at once instead of probing.
        info.set_requires_probe(false);
        // The daemon's command queue is short: wait for room when it is full.
        while let Err(e) = daemon.register(info.clone()) {
            match e {
                mdns_sd::Error::Again => std::thread::sleep(Duration::from_millis(10)),
                e => return Err(e.into()),
            }
        }
    }
    println!("ready");
    std::io::stdout().flush()?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// `\xNN` → the byte NN, `\\` → `\`; everything else as is.
fn unescape(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'x')
                && let Some(hex) = s.get(i + 2..i + 4)
                && let Ok(byte) = u8::from_str_radix(hex, 16)
            {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}
