use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

fn caps(per_address: usize, total: usize) -> SocketCaps {
    SocketCaps { per_address, total }
}

#[test]
fn an_address_at_its_cap_is_refused_until_a_permit_is_dropped() {
    let limits = SocketLimits::new(caps(2, 10));
    let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let first = limits.admit(a).expect("first");
    let _second = limits.admit(a).expect("second");
    assert_eq!(limits.admit(a).err(), Some(Refusal::Address));
    // Another address is not affected.
    let _other = limits.admit(b).expect("other address");
    drop(first);
    assert!(limits.admit(a).is_ok(), "a place is free again");
}

#[test]
fn the_process_cap_counts_every_address() {
    let limits = SocketLimits::new(caps(10, 3));
    let held: Vec<_> = (1..=3)
        .map(|i| limits.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))))
        .collect();
    assert!(held.iter().all(Result::is_ok));
    let fourth = limits.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 4)));
    assert_eq!(fourth.err(), Some(Refusal::Total));
    assert_eq!(limits.open_sockets(), 3);
    drop(held);
    assert_eq!(limits.open_sockets(), 0);
}

#[test]
fn ipv6_clients_are_counted_by_their_64() {
    let limits = SocketLimits::new(caps(1, 10));
    let one: IpAddr = "2001:db8:1:2::1".parse::<Ipv6Addr>().expect("v6").into();
    let same_64: IpAddr = "2001:db8:1:2:ffff::9"
        .parse::<Ipv6Addr>()
        .expect("v6")
        .into();
    let other_64: IpAddr = "2001:db8:1:3::1".parse::<Ipv6Addr>().expect("v6").into();
    let _held = limits.admit(one).expect("first");
    assert_eq!(limits.admit(same_64).err(), Some(Refusal::Address));
    assert!(limits.admit(other_64).is_ok());
}

#[test]
fn an_ipv4_mapped_address_is_its_ipv4_address() {
    let limits = SocketLimits::new(caps(1, 10));
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
    let _held = limits.admit(v4).expect("first");
    assert_eq!(limits.admit(mapped).err(), Some(Refusal::Address));
}

#[test]
fn token_keys_tell_tokens_apart() {
    let limits = SocketLimits::new(caps(1, 1));
    assert_eq!(limits.token_key("a.b.c"), limits.token_key("a.b.c"));
    assert_ne!(limits.token_key("a.b.c"), limits.token_key("a.b.d"));
}
