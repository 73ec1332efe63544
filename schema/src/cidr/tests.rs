use expect_test::{Expect, expect};

use super::Cidr;

fn check_parse(inputs: &[&str], expect: Expect) {
    let rendered = inputs
        .iter()
        .map(|input| match input.parse::<Cidr>() {
            Ok(cidr) => format!("{input} -> {cidr} (network {})", cidr.network()),
            Err(err) => format!("{input} -> error: {err}"),
        })
        .collect::<Vec<_>>()
        .join("\n");
    expect.assert_eq(&rendered);
}

#[test]
fn parses_prefixes() {
    check_parse(
        &[
            "10.0.0.0/8",
            "10.1.2.3/8",
            "0.0.0.0/0",
            "192.168.1.1/32",
            "2001:db8::1/32",
            "::/0",
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/08",
            "10.0.0.0/-1",
            "fe80::1%eth0/64",
            "2001:db8::/129",
        ],
        expect![[r#"
            10.0.0.0/8 -> 10.0.0.0/8 (network 10.0.0.0/8)
            10.1.2.3/8 -> 10.1.2.3/8 (network 10.0.0.0/8)
            0.0.0.0/0 -> 0.0.0.0/0 (network 0.0.0.0/0)
            192.168.1.1/32 -> 192.168.1.1/32 (network 192.168.1.1/32)
            2001:db8::1/32 -> 2001:db8::1/32 (network 2001:db8::/32)
            ::/0 -> ::/0 (network ::/0)
            10.0.0.0 -> error: missing prefix length
            10.0.0.0/33 -> error: prefix length 33 is longer than 32
            10.0.0/8 -> error: "10.0.0" is not an IP address
            10.0.0.0/08 -> error: "08" is not a prefix length
            10.0.0.0/-1 -> error: "-1" is not a prefix length
            fe80::1%eth0/64 -> error: "fe80::1%eth0" is not an IP address
            2001:db8::/129 -> error: prefix length 129 is longer than 128"#]],
    );
}

#[test]
fn bare_addresses_are_host_prefixes() {
    let v4 = Cidr::parse_prefix_or_addr("1.2.3.4").unwrap();
    let v6 = Cidr::parse_prefix_or_addr("2001:db8::1").unwrap();
    assert_eq!(v4.to_string(), "1.2.3.4/32");
    assert_eq!(v6.to_string(), "2001:db8::1/128");
    assert!(Cidr::parse_prefix_or_addr("nope").is_err());
}

#[test]
fn containment() {
    let cidr = |s: &str| s.parse::<Cidr>().unwrap();
    let net = cidr("10.0.0.0/8");
    assert!(net.contains(&cidr("10.96.0.0/12")));
    assert!(net.contains(&cidr("10.0.0.0/8")));
    assert!(!net.contains(&cidr("0.0.0.0/0")));
    assert!(!net.contains(&cidr("11.0.0.0/16")));
    assert!(!net.contains(&cidr("::/0")));
    assert!(cidr("0.0.0.0/0").contains(&cidr("255.255.255.255/32")));
    assert!(cidr("::/0").contains(&cidr("2001:db8::/32")));
    assert!(!cidr("::/0").contains(&cidr("10.0.0.0/8")));
    assert!(cidr("2001:db8::/32").contains_addr("2001:db8:ffff::1".parse().unwrap()));
}
