use bpf::Event;

use crate::fixtures;

#[test]
fn fixtures_round_trip_through_ring_buffer_bytes() {
    for event in [
        fixtures::starwars_drop(),
        fixtures::starwars_verdict(),
        fixtures::sleep_httpbin_trace(),
        fixtures::dns_drop(),
        fixtures::icmp_verdict(),
    ] {
        let bytes = fixtures::encode(&event);
        assert_eq!(Event::decode(&bytes).expect("decodes"), event);
        assert_eq!(
            fixtures::decoder().decode(&bytes).expect("decodes"),
            fixtures::decoder().flow(&event)
        );
    }
}

#[test]
fn short_records_are_errors() {
    let err = fixtures::decoder()
        .decode(&[1, 1, 0])
        .expect_err("three bytes are no event");
    let source = std::error::Error::source(&err).expect("the bpf error");
    assert_eq!(err.to_string(), "decoding a ring buffer record");
    assert!(source.to_string().contains("3"), "{source}");
}

#[test]
fn addresses_print_as_the_standard_library_does() {
    for addr in [
        std::net::Ipv4Addr::new(0, 0, 0, 0),
        std::net::Ipv4Addr::new(10, 244, 1, 9),
        std::net::Ipv4Addr::new(255, 100, 99, 1),
        std::net::Ipv4Addr::new(192, 168, 10, 200),
    ] {
        assert_eq!(super::ipv4(addr), addr.to_string());
    }
    assert_eq!(
        super::mac(&[0x0a, 0xff, 0, 0x10, 0xab, 0x01]),
        "0a:ff:00:10:ab:01"
    );
}
