use std::net::Ipv4Addr;

use expect_test::expect;
use schema::cidr::Cidr;

use super::{Ipam, IpamError};

fn ipam(cidr: &str) -> Ipam {
    Ipam::new(cidr.parse().expect("cidr")).expect("pool")
}

fn show(ipam: &Ipam) -> String {
    ipam.allocations()
        .map(|(ip, owner)| format!("{ip} {owner}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn skips_network_router_and_broadcast() {
    let mut pool = ipam("10.244.1.0/29");
    assert_eq!(pool.total(), 5);
    let got: Vec<_> = (0..5)
        .map(|n| pool.allocate(&format!("c{n}")).expect("free address"))
        .collect();
    let want: Vec<Ipv4Addr> = (2..=6)
        .map(|host| Ipv4Addr::new(10, 244, 1, host))
        .collect();
    assert_eq!(got, want);
    assert_eq!(pool.free(), 0);
    expect!["no free address in pod cidr 10.244.1.0/29 (5 allocated)"]
        .assert_eq(&pool.allocate("c5").expect_err("exhausted").to_string());
}

#[test]
fn host_bits_of_the_cidr_are_ignored() {
    let mut pool = ipam("10.244.1.77/30");
    assert_eq!(pool.cidr().to_string(), "10.244.1.76/30");
    assert_eq!(pool.allocate("a"), Ok(Ipv4Addr::new(10, 244, 1, 78)));
    assert!(matches!(
        pool.allocate("b"),
        Err(IpamError::Exhausted { .. })
    ));
}

#[test]
fn an_owner_keeps_its_address() {
    let mut pool = ipam("10.244.0.0/24");
    let a = pool.allocate("a").expect("free");
    let b = pool.allocate("b").expect("free");
    assert_ne!(a, b);
    assert_eq!(pool.allocate("a"), Ok(a));
    assert_eq!(pool.free(), 251);
}

#[test]
fn released_addresses_are_reused_last() {
    let mut pool = ipam("10.244.0.0/29");
    let a = pool.allocate("a").expect("free");
    assert_eq!(pool.release(a).as_deref(), Some("a"));
    assert_eq!(pool.release(a), None, "released twice");
    // Next-fit: the rest of the pool comes first, then the wrap-around finds `a` again.
    let later: Vec<_> = ["b", "c", "d", "e", "f"]
        .iter()
        .map(|owner| pool.allocate(owner).expect("free"))
        .collect();
    assert_eq!(later.last(), Some(&a));
    assert!(!later[..4].contains(&a));
    expect![[r#"
        10.244.0.2 f
        10.244.0.3 b
        10.244.0.4 c
        10.244.0.5 d
        10.244.0.6 e"#]]
    .assert_eq(&show(&pool));
    // Exhausted and freed again: allocation works after a release.
    pool.release(Ipv4Addr::new(10, 244, 0, 4));
    assert_eq!(pool.allocate("g"), Ok(Ipv4Addr::new(10, 244, 0, 4)));
}

#[test]
fn reserve_restores_and_checks() {
    let mut pool = ipam("10.244.0.0/24");
    pool.reserve(Ipv4Addr::new(10, 244, 0, 9), "a")
        .expect("in pool");
    pool.reserve(Ipv4Addr::new(10, 244, 0, 9), "a")
        .expect("idempotent");
    let errors = [
        pool.reserve(Ipv4Addr::new(10, 244, 0, 9), "b"),
        pool.reserve(Ipv4Addr::new(10, 244, 0, 1), "b"),
        pool.reserve(Ipv4Addr::new(10, 244, 0, 255), "b"),
        pool.reserve(Ipv4Addr::new(10, 245, 0, 9), "b"),
    ]
    .map(|r| r.expect_err("rejected").to_string());
    expect![[r#"
        [
            "10.244.0.9 is already allocated to a",
            "10.244.0.1 is outside the pool of pod cidr 10.244.0.0/24",
            "10.244.0.255 is outside the pool of pod cidr 10.244.0.0/24",
            "10.245.0.9 is outside the pool of pod cidr 10.244.0.0/24",
        ]
    "#]]
    .assert_debug_eq(&errors);
    assert_eq!(pool.allocate("a"), Ok(Ipv4Addr::new(10, 244, 0, 9)));
}

#[test]
fn rejects_unusable_cidrs() {
    let err = |cidr: &str| {
        Ipam::new(cidr.parse::<Cidr>().expect("cidr"))
            .expect_err("unusable")
            .to_string()
    };
    expect!["pod cidr 10.0.0.0/31 is too small: a pool needs a /30 or larger"]
        .assert_eq(&err("10.0.0.0/31"));
    expect!["pod cidr fd00::/64 is not ipv4"].assert_eq(&err("fd00::/64"));
}
