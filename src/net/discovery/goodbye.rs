//! The goodbye mdns-sd leaves out. mdns-sd (0.21.7, the newest) answers an
//! `A?` question that arrives over IPv6 with an A record sent over IPv6, and
//! `AAAA?` over IPv4 likewise, but its goodbye withdraws on each family only
//! that family's records. Stacks that cache per interface and IP family
//! (avahi) then keep resolving our host name to our old address for the
//! record's TTL (two minutes) after we quit. This sends, on each interface
//! and each family, a goodbye (TTL 0) for every address record of our host
//! name on that interface, as RFC 6762 §10.1 wants. Blocking (a few UDP
//! sends): run it off the async runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use simple_dns::rdata::{A, AAAA, RData};
use simple_dns::{CLASS, Name, Packet, PacketFlag, ResourceRecord};
use socket2::{Domain, Protocol, Socket, Type};

/// The mDNS port and groups.
const PORT: u16 = 5353;
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);

/// At most this many addresses per interface are withdrawn, so one packet
/// stays well under the 1,500-byte Ethernet payload.
const MAX_ADDRS: usize = 24;

/// One interface: its index, and its addresses of each family.
#[derive(Debug, Default, PartialEq)]
struct Iface {
    index: u32,
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

/// Withdraws `host`'s (`laptop.local.`) address records on every interface
/// that is up (only `interfaces`, when not empty), over IPv4 and IPv6 both.
/// Failures are logged and otherwise ignored: the records then expire with
/// their TTL, as they did before.
pub(super) fn withdraw_addresses(host: &str, interfaces: &[String]) {
    let all = match if_addrs::get_if_addrs() {
        Ok(all) => all,
        Err(e) => {
            tracing::debug!("mDNS goodbye: no interface list: {e}");
            return;
        }
    };
    let mut ifaces: Vec<(String, Iface)> = Vec::new();
    for i in all
        .into_iter()
        .filter(|i| i.is_oper_up() || i.is_loopback())
    {
        if !interfaces.is_empty() && !interfaces.contains(&i.name) {
            continue;
        }
        let pos = match ifaces.iter().position(|(name, _)| *name == i.name) {
            Some(pos) => pos,
            None => {
                ifaces.push((i.name.clone(), Iface::default()));
                ifaces.len() - 1
            }
        };
        let entry = &mut ifaces[pos].1;
        entry.index = i.index.unwrap_or(0);
        match i.ip() {
            IpAddr::V4(v4) => entry.v4.push(v4),
            IpAddr::V6(v6) => entry.v6.push(v6),
        }
    }
    let sockets = (socket(Domain::IPV4), socket(Domain::IPV6));
    for (name, iface) in &ifaces {
        let Some(packet) = packet(host, iface) else {
            continue;
        };
        if let (Ok(sock), Some(addr)) = (&sockets.0, iface.v4.first()) {
            let sent = sock
                .set_multicast_if_v4(addr)
                .and_then(|()| sock.send_to(&packet, &SocketAddrV4::new(GROUP_V4, PORT).into()));
            if let Err(e) = sent {
                tracing::debug!("mDNS goodbye over IPv4 on {name}: {e}");
            }
        }
        if let (Ok(sock), false) = (&sockets.1, iface.v6.is_empty()) {
            let to = SocketAddrV6::new(GROUP_V6, PORT, 0, iface.index);
            let sent = sock
                .set_multicast_if_v6(iface.index)
                .and_then(|()| sock.send_to(&packet, &to.into()));
            if let Err(e) = sent {
                tracing::debug!("mDNS goodbye over IPv6 on {name}: {e}");
            }
        }
    }
}

/// A UDP socket on the mDNS port (shared with anyone holding it: an mDNS
/// response must come from port 5353), for sending to the group.
fn socket(domain: Domain) -> std::io::Result<Socket> {
    let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    let local: SocketAddr = if domain == Domain::IPV4 {
        sock.set_multicast_ttl_v4(255)?;
        sock.set_multicast_loop_v4(true)?;
        (Ipv4Addr::UNSPECIFIED, PORT).into()
    } else {
        sock.set_only_v6(true)?;
        sock.set_multicast_hops_v6(255)?;
        sock.set_multicast_loop_v6(true)?;
        (Ipv6Addr::UNSPECIFIED, PORT).into()
    };
    sock.bind(&local.into())?;
    Ok(sock)
}

/// The goodbye for `host`'s addresses on `iface`: an authoritative response
/// holding an A or AAAA record with TTL 0 for each address. Without the
/// cache-flush bit: a goodbye withdraws these addresses only, never another
/// host's records under the same name. `None` when there is nothing to
/// withdraw or `host` is not a valid name.
fn packet(host: &str, iface: &Iface) -> Option<Vec<u8>> {
    let name = Name::new(host.trim_end_matches('.')).ok()?;
    let mut packet = Packet::new_reply(0);
    packet.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    let record = |data| ResourceRecord::new(name.clone(), CLASS::IN, 0, data);
    for v4 in iface.v4.iter().take(MAX_ADDRS) {
        packet.answers.push(record(RData::A(A::from(*v4))));
    }
    for v6 in iface.v6.iter().take(MAX_ADDRS) {
        packet.answers.push(record(RData::AAAA(AAAA::from(*v6))));
    }
    if packet.answers.is_empty() {
        return None;
    }
    packet.build_bytes_vec_compressed().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_goodbye_holds_every_address_with_ttl_zero_and_no_cache_flush() {
        let iface = Iface {
            index: 2,
            v4: vec![Ipv4Addr::new(10, 77, 0, 1)],
            v6: vec!["fe80::1".parse().unwrap(), "fd00::1".parse().unwrap()],
        };
        let bytes = packet("laptop-2.local.", &iface).unwrap();
        let parsed = Packet::parse(&bytes).unwrap();
        assert!(parsed.has_flags(PacketFlag::RESPONSE | PacketFlag::AUTHORITATIVE_ANSWER));
        assert!(parsed.questions.is_empty());
        let records: Vec<(String, u32, bool, RData)> = parsed
            .answers
            .into_iter()
            .map(|r| (r.name.to_string(), r.ttl, r.cache_flush, r.rdata))
            .collect();
        let expect = |data| ("laptop-2.local".to_owned(), 0, false, data);
        assert_eq!(
            records,
            [
                expect(RData::A(A::from(iface.v4[0]))),
                expect(RData::AAAA(AAAA::from(iface.v6[0]))),
                expect(RData::AAAA(AAAA::from(iface.v6[1]))),
            ]
        );
    }

    #[test]
    fn nothing_to_withdraw_sends_nothing() {
        assert_eq!(packet("laptop.local.", &Iface::default()), None);
        let v4 = Iface {
            v4: vec![Ipv4Addr::LOCALHOST],
            ..Iface::default()
        };
        assert_eq!(packet(&format!("{}.local.", "x".repeat(64)), &v4), None);
    }

    #[test]
    fn a_packet_stays_small_however_many_addresses() {
        let iface = Iface {
            index: 1,
            v4: vec![Ipv4Addr::LOCALHOST; 100],
            v6: vec![Ipv6Addr::LOCALHOST; 100],
        };
        let bytes = packet(&format!("{}.local.", "h".repeat(63)), &iface).unwrap();
        assert!(bytes.len() < 1400, "{}", bytes.len());
        assert_eq!(Packet::parse(&bytes).unwrap().answers.len(), 2 * MAX_ADDRS);
    }
}
