//! mDNS/DNS-SD: advertising ourselves as `_lantalk._tcp.local.` and browsing
//! for peers. This file wraps the daemon ([`Discovery`]) and is the only one
//! in the crate that names `mdns_sd`: it converts mdns-sd's events into plain
//! data before anything else sees them; everything outside sees [`Peer`],
//! [`PeerEvent`] and [`Health`]. It must not block the async runtime: what
//! blocks (starting the daemon, the health checks) runs on tokio's blocking
//! pool. mdns-sd settles a name conflict on each interface alone; a rename
//! on one is made ours on all ([`Discovery::advertise`]), and said
//! ([`Renamed`]).
//!
//! The rest, none of which knows mdns-sd:
//! - `book.rs`: validates each resolved advertisement (untrusted) and merges
//!   mdns-sd's several reports of one peer into one [`Peer`] per peer id,
//!   leaving out our own advertisement; pure.
//! - `peer.rs`: the types reported ([`Peer`], [`PeerEvent`], [`Ignored`]).
//! - `health.rs`: [`Health`] and who holds UDP port 5353 (mdns-sd reports
//!   nothing when it cannot open it or finds no network, so the user learns
//!   why nobody shows up); blocking.
//! - `addrs.rs`: our networks and the order to dial a peer's addresses in.
//! - `goodbye.rs`: the goodbye mdns-sd leaves out (our address records on
//!   the other IP family); blocking.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{
    DaemonEvent, DnsNameChange, IfKind, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo,
};
use tokio::sync::mpsc;

use crate::protocol::Fingerprint;

mod addrs;
mod book;
mod goodbye;
mod health;
mod peer;

use addrs::local_nets;
pub use book::{MAX_ADDRS, MAX_PEERS};
use book::{PeerBook, Resolved, Seen, instance_of, truncate};
pub use health::Health;
use health::health;
pub use peer::{Ignored, MatchRank, Peer, PeerEvent};

/// The DNS-SD service type lantalk advertises and browses.
pub const SERVICE_TYPE: &str = "_lantalk._tcp.local.";

/// How often to look for new network interfaces and addresses, in seconds.
const IP_CHECK_SECS: u32 = 30;

/// How long a goodbye or a shutdown may take before we stop waiting for it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// How long a peer that failed to answer gets to answer a verify query.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long after mDNS renamed us on one interface we advertise anew under
/// the new names on all: longer than a round of probes (750 ms), so that no
/// interface still probes the old names (it would take our new
/// announcements for a conflict), and the instance and host renames, which
/// come apart, are taken at once.
const RENAME_SETTLE: Duration = Duration::from_secs(1);

/// How long after a goodbye mdns-sd has sent it again (it does after 120 ms).
const GOODBYE_REPEATED: Duration = Duration::from_millis(250);

/// How long the daemon may take to open its sockets before we look at them.
const START_WAIT: Duration = Duration::from_secs(1);

/// Failure to start or drive the mDNS daemon. Whatever the variant, callers
/// carry on without discovery (peers can still be reached by address) and
/// tell the user the text, which starts with `mDNS` and says why, e.g.
/// `mDNS unavailable: UDP port 5353 is held by avahi-daemon (pid 612)`. The
/// variants say what else can be done about it.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// An interface we were asked to limit discovery to does not exist on
    /// this machine. Retrying will not help: the user has to correct the
    /// name (the text quotes it).
    #[error("mDNS: no network interface named {0:?}")]
    UnknownInterface(String),
    /// UDP port 5353 could not be opened, for IPv4 nor IPv6. The reason
    /// names the program holding it when we may see it (`UDP port 5353 is
    /// held by avahi-daemon (pid 612)`); otherwise it just says the port
    /// cannot be opened. Retrying helps only once that program lets go of
    /// the port or shares it: tell the user who holds it.
    #[error("mDNS unavailable: {0}")]
    PortUnusable(String),
    /// The mDNS daemon failed: it could not start (no thread or poller), or
    /// it has stopped and takes no more commands. Nothing to fix but to
    /// start discovery again; the error from mdns-sd is the source.
    #[error("mDNS: {0}")]
    Daemon(#[from] mdns_sd::Error),
    /// The async runtime shut down before the daemon could be started: the
    /// program is ending, there is nothing to do.
    #[error("mDNS: not started, shutting down")]
    ShuttingDown,
}

/// What [`Discovery::find`] found for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A peer to dial (check [`Peer::problem`] first).
    Found(Peer),
    /// Something by that name is advertised, but it is not usable, and why.
    Unusable(Ignored),
    /// Nothing by that name answered.
    NotFound,
}

/// What to advertise about ourselves.
#[derive(Debug, Clone)]
pub struct Advert {
    /// Display name: instance name and TXT `nick`.
    pub name: String,
    /// Host label, without `.local.`.
    pub host: String,
    /// Our listening port.
    pub port: u16,
    /// Our peer id.
    pub id: String,
    /// Our certificate's fingerprint (TXT `fp`), if we speak TLS.
    pub fp: Option<Fingerprint>,
}

/// A running mDNS daemon, advertising at most one service.
pub struct Discovery {
    daemon: ServiceDaemon,
    /// The names we advertise under; shared with the task that follows
    /// renames.
    names: Arc<Mutex<Names>>,
    /// The interfaces we were limited to (empty: all).
    interfaces: Vec<String>,
}

impl Discovery {
    /// Starts the daemon, limited to `interfaces` when not empty. Fails, with
    /// the reason, when mDNS cannot work at all: an unknown interface, or UDP
    /// port 5353 held by a program that does not share it. Takes as long as
    /// the daemon takes to open its sockets (a few milliseconds, at most
    /// `START_WAIT`), waiting on tokio's blocking pool, not on the runtime.
    pub async fn start(interfaces: &[String]) -> Result<Self, DiscoveryError> {
        let interfaces = interfaces.to_vec();
        blocking(move || Self::start_blocking(interfaces))
            .await
            .unwrap_or(Err(DiscoveryError::ShuttingDown))
    }

    /// [`Discovery::start`], blocking: it waits for the daemon and reads
    /// `/sys` and `/proc`.
    fn start_blocking(interfaces: Vec<String>) -> Result<Self, DiscoveryError> {
        for name in &interfaces {
            if cfg!(target_os = "linux")
                && !std::path::Path::new("/sys/class/net").join(name).exists()
            {
                return Err(DiscoveryError::UnknownInterface(name.clone()));
            }
        }
        let daemon = ServiceDaemon::new()?;
        // The daemon answers a status query only once it has opened its
        // sockets: after that, what it holds can be looked at.
        if let Ok(status) = daemon.status() {
            let _ = status.recv_timeout(START_WAIT);
        }
        if let Some(why) = health::port_unusable() {
            let _ = daemon.shutdown();
            return Err(DiscoveryError::PortUnusable(why));
        }
        // mdns-sd re-reads the interface list every 5 s by default, the main
        // source of wake-ups while idle; a new address is picked up within
        // this interval instead.
        daemon.set_ip_check_interval(IP_CHECK_SECS)?;
        if !interfaces.is_empty() {
            daemon.disable_interface(IfKind::All)?;
            let kinds: Vec<IfKind> = interfaces.iter().map(|i| IfKind::Name(i.clone())).collect();
            daemon.enable_interface(kinds)?;
        }
        Ok(Self {
            daemon,
            names: Arc::default(),
            interfaces,
        })
    }

    /// How well discovery can work right now (see [`Health`]). The check
    /// reads `/proc` and the interface list on tokio's blocking pool.
    pub async fn health(&self) -> Health {
        check_health(self.interfaces.clone())
            .await
            // Only while the runtime shuts down: nobody is left to tell.
            .unwrap_or(Health::Working)
    }

    /// The [`Health`] as it changes: a new value each time it differs from
    /// the one before (which starts as [`Discovery::health`] when the
    /// monitor starts). The daemon notices new and lost addresses within
    /// `IP_CHECK_SECS`; each check runs on tokio's blocking pool.
    pub fn health_changes(&self) -> Result<mpsc::Receiver<Health>, DiscoveryError> {
        let monitor = self.daemon.monitor()?;
        let interfaces = self.interfaces.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let Some(mut last) = check_health(interfaces.clone()).await else {
                return;
            };
            while let Ok(event) = monitor.recv_async().await {
                if !matches!(event, DaemonEvent::IpAdd(_) | DaemonEvent::IpDel(_)) {
                    continue;
                }
                let Some(now) = check_health(interfaces.clone()).await else {
                    break;
                };
                if now != last {
                    last = now.clone();
                    if tx.send(now).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Advertises our service (with name probing, so conflicts are resolved).
    /// Returns a receiver of the renames mDNS makes to settle a conflict
    /// (each once). A rename on one interface is made ours on all of them:
    /// we advertise again under the new names everywhere (without probing
    /// again, the names having won), so that every interface, loopback
    /// included, carries one name.
    pub fn advertise(&mut self, ad: &Advert) -> Result<mpsc::Receiver<Renamed>, DiscoveryError> {
        let instance = truncate(&ad.name, 63).to_owned();
        let (fullname, generation) = {
            let mut names = lock(&self.names);
            let host = names
                .host
                .get_or_insert_with(|| format!("{}.local.", ad.host))
                .clone();
            let info = service_info(ad, &instance, &host)?;
            let fullname = info.get_fullname().to_owned();
            names.generation += 1;
            names.fullname = Some(fullname.clone());
            // Registered under the lock: a rename of an earlier
            // advertisement can no longer slip in between.
            self.daemon.register(info)?;
            (fullname, names.generation)
        };
        let monitor = self.daemon.monitor()?;
        let (daemon, names, ad) = (self.daemon.clone(), self.names.clone(), ad.clone());
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            tracing::debug!("mDNS: advertising {fullname}");
            // Renames seen and not yet acted on, and when to act on them.
            let mut pending: Vec<Renamed> = Vec::new();
            let mut renamed_on: Vec<String> = Vec::new();
            let mut settle = None;
            loop {
                let event = match settle {
                    None => monitor.recv_async().await,
                    Some(at) => match tokio::time::timeout_at(at, monitor.recv_async()).await {
                        Ok(event) => event,
                        Err(_) => {
                            settle = None;
                            // Err: this advertisement was withdrawn, or the daemon stopped.
                            let renamed_on = std::mem::take(&mut renamed_on);
                            let again = readvertise(
                                &daemon,
                                &names,
                                generation,
                                &ad,
                                &pending,
                                &renamed_on,
                            );
                            if again.await.is_err() {
                                break;
                            }
                            for renamed in pending.drain(..) {
                                if tx.send(renamed).await.is_err() {
                                    return;
                                }
                            }
                            continue;
                        }
                    },
                };
                let Ok(event) = event else { break };
                let DaemonEvent::NameChange(change) = event else {
                    continue;
                };
                tracing::debug!("mDNS: {change:?}");
                if let Some(renamed) = rename_of(&lock(&names), &change) {
                    pending
                        .retain(|p| std::mem::discriminant(p) != std::mem::discriminant(&renamed));
                    pending.push(renamed);
                    if !renamed_on.contains(&change.intf_name) {
                        renamed_on.push(change.intf_name.clone());
                    }
                    settle.get_or_insert(tokio::time::Instant::now() + RENAME_SETTLE);
                }
            }
        });
        Ok(rx)
    }

    /// Withdraws our advertisement (goodbye), e.g. before advertising a new name.
    pub fn unadvertise(&mut self) {
        if let Some(fullname) = lock(&self.names).fullname.take() {
            let _ = self.daemon.unregister(&fullname);
        }
    }

    /// Starts browsing. Peers with `own_id` (our own advertisement) are left
    /// out. Changes of [`Health`] come on the same channel.
    pub fn browse(
        &self,
        own_id: Option<String>,
    ) -> Result<mpsc::Receiver<PeerEvent>, DiscoveryError> {
        let events = self.daemon.browse(SERVICE_TYPE)?;
        let mut health = self.health_changes()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut book = PeerBook::new(own_id);
            loop {
                let changes = tokio::select! {
                    event = events.recv_async() => match event {
                        // local_nets() is one getifaddrs call (a netlink dump,
                        // no disk, no network) per resolution: cheap enough
                        // for the runtime.
                        Ok(event) => match seen(event) {
                            Some(seen) => book.apply(seen, &local_nets()),
                            None => continue,
                        },
                        Err(_) => break,
                    },
                    Some(now) = health.recv() => vec![PeerEvent::Health(now)],
                };
                for change in changes {
                    if tx.send(change).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Asks the network whether `peer` is still there; if it does not answer
    /// in a short while its records are dropped and browsers see it leave.
    /// Call this when connecting to a discovered peer failed.
    pub fn verify(&self, peer: &Peer) {
        if let Err(e) = self.daemon.verify(peer.fullname.clone(), VERIFY_TIMEOUT) {
            tracing::debug!("mDNS verify of {} failed: {e}", peer.fullname);
        }
    }

    /// Says goodbye (so peers drop us within about a second) and stops the daemon.
    pub async fn shutdown(self) {
        let fullname = lock(&self.names).fullname.take();
        if let Some(fullname) = fullname
            && let Ok(done) = self.daemon.unregister(&fullname)
        {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, done.recv_async()).await;
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, done.recv_async()).await;
        }
        let host = lock(&self.names).host.take();
        if let Some(host) = host {
            let interfaces = self.interfaces.clone();
            blocking(move || goodbye::withdraw_addresses(&host, &interfaces)).await;
        }
    }

    /// Browses until a peer matching `query` (see [`Peer::match_rank`]) is
    /// found or `timeout` passes. An exact instance-name or host match ends the
    /// search at once; a match on the nickname only is taken at the deadline.
    /// With no peer by that name, an unusable advertisement by that name is
    /// reported at the deadline, so the user learns why it cannot be reached.
    ///
    /// With `preferred` keys (those known by that name), only an exact
    /// match offering one of them ends the search at once; others are kept,
    /// behind the preferred ones, for the deadline: another device that
    /// goes by the same name does not stand in for the one we know.
    pub async fn find(
        &self,
        query: &str,
        timeout: Duration,
        preferred: &[Fingerprint],
    ) -> Result<Lookup, DiscoveryError> {
        let unpreferred =
            |p: &Peer| !preferred.is_empty() && !p.fp.is_some_and(|fp| preferred.contains(&fp));
        let mut events = self.browse(None)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen: HashMap<String, Peer> = HashMap::new();
        let mut unusable: Option<Ignored> = None;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(PeerEvent::Up(peer)) => {
                        if peer.match_rank(query) == Some(MatchRank::Exact) && !unpreferred(&peer) {
                            return Ok(Lookup::Found(peer));
                        }
                        seen.insert(peer.id.clone(), peer);
                    }
                    Some(PeerEvent::Down(peer)) => {
                        seen.remove(&peer.id);
                    }
                    Some(PeerEvent::Ignored(ignored)) => {
                        if ignored.matches(query) {
                            unusable = Some(ignored);
                        }
                    }
                    Some(PeerEvent::Health(_)) => {}
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let mut candidates: Vec<Peer> = seen
            .into_values()
            .filter(|p| p.match_rank(query).is_some())
            .collect();
        candidates.sort_by_key(|p| (unpreferred(p), p.match_rank(query), p.name.clone()));
        Ok(match (candidates.into_iter().next(), unusable) {
            (Some(peer), _) => Lookup::Found(peer),
            (None, Some(ignored)) => Lookup::Unusable(ignored),
            (None, None) => Lookup::NotFound,
        })
    }
}

impl Drop for Discovery {
    /// Best effort on paths that did not call [`Discovery::shutdown`]: the
    /// goodbye is queued, but nothing waits for it to go out.
    fn drop(&mut self) {
        let mut names = lock(&self.names);
        if let Some(fullname) = names.fullname.take() {
            let _ = self.daemon.unregister(&fullname);
        }
        let _ = self.daemon.shutdown();
        // A few UDP sends: short enough to do here, on whatever thread drops us.
        if let Some(host) = names.host.take() {
            goodbye::withdraw_addresses(&host, &self.interfaces);
        }
    }
}

/// A rename mDNS made to settle a conflict with another device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renamed {
    /// Our instance name was taken: we are advertised as this (`laptop (2)`).
    Instance(String),
    /// Our host name was taken: we are reachable as this (`laptop-2.local`),
    /// and our usual host name may reach another device.
    Host(String),
}

/// The names we advertise under.
#[derive(Debug, Default)]
struct Names {
    /// Our service's full name, while advertised.
    fullname: Option<String>,
    /// Our host name (`laptop.local.`), once advertised: kept across
    /// advertisements, so a rename sticks; its address records are withdrawn
    /// on every family when we stop.
    host: Option<String>,
    /// Counts advertisements, so a task following an earlier one stops.
    generation: u64,
}

/// Locks `names`; a task that panicked holding the lock left plain names,
/// still good to use.
fn lock(names: &Mutex<Names>) -> std::sync::MutexGuard<'_, Names> {
    names
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Our service as mdns-sd registers it.
fn service_info(ad: &Advert, instance: &str, host: &str) -> Result<ServiceInfo, DiscoveryError> {
    let nick = truncate(&ad.name, 200);
    let fp = ad.fp.map(|fp| fp.to_string());
    let mut txt = vec![
        ("txtvers", "1"),
        ("proto", "1"),
        ("id", ad.id.as_str()),
        ("nick", nick),
        ("status", "avail"),
    ];
    if let Some(fp) = &fp {
        txt.push(("fp", fp.as_str()));
    }
    Ok(ServiceInfo::new(SERVICE_TYPE, instance, host, "", ad.port, &txt[..])?.enable_addr_auto())
}

/// What `change` renames of our current names, if anything (not: an
/// earlier advertisement's names).
fn rename_of(names: &Names, change: &DnsNameChange) -> Option<Renamed> {
    let is = |name: &Option<String>| {
        name.as_ref()
            .is_some_and(|n| n.eq_ignore_ascii_case(&change.original))
    };
    if is(&names.fullname) {
        Some(Renamed::Instance(instance_of(&change.new_name)))
    } else if is(&names.host) {
        Some(Renamed::Host(
            change.new_name.trim_end_matches('.').to_owned(),
        ))
    } else {
        None
    }
}

/// Makes the names `renames` gave us on the interfaces `renamed_on` ours
/// on every interface. The advertisement under the old names is first
/// narrowed to the other interfaces (replacing a registration sends no
/// goodbye), withdrawn there, and, once mdns-sd has repeated that goodbye,
/// the new one is registered everywhere: on the interfaces where the new
/// names were chosen it only repeats what was announced, so peers there see
/// no change. `Err` when advertisement `generation` is over (withdrawn, or
/// the daemon stopped).
async fn readvertise(
    daemon: &ServiceDaemon,
    names: &Mutex<Names>,
    generation: u64,
    ad: &Advert,
    renames: &[Renamed],
    renamed_on: &[String],
) -> Result<(), ()> {
    let mut others: Vec<String> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.name)
        .filter(|name| !renamed_on.contains(name))
        .collect();
    others.sort_unstable();
    others.dedup();
    let (info, fullname) = {
        let mut names = lock(names);
        let (Some(old), Some(old_host)) = (names.fullname.clone(), names.host.clone()) else {
            return Err(());
        };
        if names.generation != generation {
            return Err(());
        }
        if others.is_empty() {
            // Renamed everywhere already: one name on every interface.
            return Ok(());
        }
        let old_instance = instance_of(&old);
        let (mut instance, mut host) = (old_instance.clone(), old_host.clone());
        for renamed in renames {
            match renamed {
                Renamed::Instance(name) => instance.clone_from(name),
                Renamed::Host(name) => host = format!("{name}."),
            }
        }
        let (Ok(mut narrowed), Ok(mut info)) = (
            service_info(ad, &old_instance, &old_host),
            service_info(ad, &instance, &host),
        ) else {
            return Ok(());
        };
        narrowed.set_requires_probe(false);
        narrowed.set_interfaces(others.iter().map(|i| IfKind::Name(i.clone())).collect());
        // The new names won their probe where the conflict was; elsewhere
        // nobody held even the old ones.
        info.set_requires_probe(false);
        tracing::debug!("mDNS: advertising {old} anew as {instance} on {host} (was on {others:?})");
        daemon.register(narrowed).map_err(|_| ())?;
        let _ = daemon.unregister(&old);
        let fullname = info.get_fullname().to_owned();
        names.fullname = Some(fullname.clone());
        names.host = Some(host);
        (info, fullname)
    };
    tokio::time::sleep(GOODBYE_REPEATED).await;
    let names = lock(names);
    if names.generation != generation || names.fullname.as_ref() != Some(&fullname) {
        return Err(());
    }
    daemon.register(info).map_err(|_| ())
}

/// Runs `f` on tokio's blocking pool, so the runtime (shared with the chat
/// screen) goes on meanwhile. A panic in `f` is raised again here. `None`
/// only when the runtime shuts down before `f` could run.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Some(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

/// [`health()`] for `interfaces`, off the runtime (see [`blocking`]).
async fn check_health(interfaces: Vec<String>) -> Option<Health> {
    blocking(move || health(&interfaces)).await
}

/// mdns-sd's event in our own terms, for the book; `None` for the events it
/// does not need (search started or stopped, found but not yet resolved).
fn seen(event: ServiceEvent) -> Option<Seen> {
    match event {
        ServiceEvent::ServiceResolved(r) => Some(Seen::Resolved(Resolved {
            ips: r
                .addresses
                .iter()
                .map(|ip| match ip {
                    ScopedIp::V6(v6) => (ip.to_ip_addr(), v6.scope_id().index),
                    other => (other.to_ip_addr(), 0),
                })
                .collect(),
            txt: r
                .txt_properties
                .iter()
                .map(|p| (p.key().to_owned(), p.val_str().to_owned()))
                .collect(),
            fullname: r.fullname,
            host: r.host,
            port: r.port,
        })),
        ServiceEvent::ServiceRemoved(_, fullname) => Some(Seen::Removed(fullname)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use mdns_sd::TxtProperty;

    use super::*;

    #[test]
    fn errors_read_as_before_and_keep_their_source() {
        use std::error::Error as _;
        let held =
            DiscoveryError::PortUnusable("UDP port 5353 is held by avahi-daemon (pid 612)".into());
        assert_eq!(
            held.to_string(),
            "mDNS unavailable: UDP port 5353 is held by avahi-daemon (pid 612)"
        );
        assert_eq!(
            DiscoveryError::UnknownInterface("eth9".into()).to_string(),
            "mDNS: no network interface named \"eth9\""
        );
        let daemon = DiscoveryError::from(mdns_sd::Error::Msg("no poller".into()));
        assert_eq!(daemon.to_string(), "mDNS: no poller");
        assert_eq!(daemon.source().unwrap().to_string(), "no poller");
    }

    /// Fails before any daemon starts: safe in this machine's namespace.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn an_unknown_interface_is_refused_before_starting() {
        let Err(e) = Discovery::start(&["lt-no-such-if0".to_owned()]).await else {
            panic!("no such interface")
        };
        assert!(
            matches!(&e, DiscoveryError::UnknownInterface(name) if name == "lt-no-such-if0"),
            "{e}"
        );
    }

    #[test]
    fn resolutions_become_plain_data() {
        let txt = [
            TxtProperty::from(("id", "0123456789abcdef0123456789abcdef")),
            TxtProperty::from(("nick", vec![0xff, 0xfe])),
            TxtProperty::from("flag"),
        ];
        let info = ServiceInfo::new(
            SERVICE_TYPE,
            "laptop (2)",
            "laptop-2.local.",
            "10.0.0.1",
            7342,
            txt.to_vec(),
        )
        .unwrap();
        let event = ServiceEvent::ServiceResolved(Box::new(info.as_resolved_service()));
        let Some(Seen::Resolved(r)) = seen(event) else {
            panic!("a resolution is passed on")
        };
        assert_eq!(r.fullname, format!("laptop (2).{SERVICE_TYPE}"));
        assert_eq!((r.host.as_str(), r.port), ("laptop-2.local.", 7342));
        assert_eq!(r.ips, [("10.0.0.1".parse::<IpAddr>().unwrap(), 0)]);
        // A value that is not UTF-8, or none, reads as empty (as mdns-sd reads it).
        assert_eq!(
            r.txt,
            [
                ("id".into(), "0123456789abcdef0123456789abcdef".into()),
                ("nick".into(), String::new()),
                ("flag".into(), String::new()),
            ]
        );
    }

    #[test]
    fn renames_of_our_current_names_are_told_apart_and_others_ignored() {
        let names = Names {
            fullname: Some(format!("laptop.{SERVICE_TYPE}")),
            host: Some("laptop.local.".into()),
            generation: 1,
        };
        let change = |original: &str, new_name: &str| DnsNameChange {
            original: original.into(),
            new_name: new_name.into(),
            rr_type: mdns_sd::RRType::SRV,
            intf_name: "eth0".into(),
        };
        assert_eq!(
            rename_of(
                &names,
                &change(
                    &format!("LAPTOP.{SERVICE_TYPE}"),
                    &format!("laptop (2).{SERVICE_TYPE}")
                )
            ),
            Some(Renamed::Instance("laptop (2)".into()))
        );
        assert_eq!(
            rename_of(&names, &change("laptop.local.", "laptop-2.local.")),
            Some(Renamed::Host("laptop-2.local".into()))
        );
        // An earlier advertisement's name, or someone else's.
        let old = change(
            &format!("desk.{SERVICE_TYPE}"),
            &format!("desk (2).{SERVICE_TYPE}"),
        );
        assert_eq!(rename_of(&names, &old), None);
        assert_eq!(
            rename_of(&Names::default(), &change("laptop.local.", "x.local.")),
            None
        );
    }

    #[test]
    fn removals_are_passed_on_and_the_rest_dropped() {
        let fullname = format!("laptop.{SERVICE_TYPE}");
        assert_eq!(
            seen(ServiceEvent::ServiceRemoved(
                SERVICE_TYPE.into(),
                fullname.clone()
            )),
            Some(Seen::Removed(fullname.clone()))
        );
        assert_eq!(
            seen(ServiceEvent::ServiceFound(SERVICE_TYPE.into(), fullname)),
            None
        );
        assert_eq!(seen(ServiceEvent::SearchStarted(SERVICE_TYPE.into())), None);
    }
}
