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
