use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;

fn check(lo: u16, hi: u16, expected: Expect) {
    let blocks = port_range_to_prefixes(lo, hi).unwrap();
    let text = blocks
        .iter()
        .map(|b| format!("{}/{} ({b})", b.port(), b.prefix_len()))
        .collect::<Vec<_>>()
        .join(", ");
    expected.assert_eq(&text);
}

#[test]
fn examples() {
    check(80, 80, expect!["80/16 (80)"]);
    check(
        8080,
        8090,
        expect!["8080/13 (8080-8087), 8088/15 (8088-8089), 8090/16 (8090)"],
    );
    check(0, 65535, expect!["0/0 (0-65535)"]);
    check(
        1,
        65535,
        expect![
            "1/16 (1), 2/15 (2-3), 4/14 (4-7), 8/13 (8-15), 16/12 (16-31), 32/11 (32-63), 64/10 (64-127), 128/9 (128-255), 256/8 (256-511), 512/7 (512-1023), 1024/6 (1024-2047), 2048/5 (2048-4095), 4096/4 (4096-8191), 8192/3 (8192-16383), 16384/2 (16384-32767), 32768/1 (32768-65535)"
        ],
    );
    check(1024, 2047, expect!["1024/6 (1024-2047)"]);
}

#[test]
fn rejects_reversed_range_and_bad_prefixes() {
    expect!["invalid port range 90-80: the low end is above the high end"]
        .assert_eq(&port_range_to_prefixes(90, 80).unwrap_err().to_string());
    expect!["invalid port prefix 81/15: bits past the prefix length are set"]
        .assert_eq(&PortPrefix::new(81, 15).unwrap_err().to_string());
    expect!["invalid port prefix 0/17: the length must be at most 16"]
        .assert_eq(&PortPrefix::new(0, 17).unwrap_err().to_string());
}

proptest! {
    #[test]
    fn blocks_cover_exactly_the_range(lo in any::<u16>(), hi in any::<u16>()) {
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        let blocks = port_range_to_prefixes(lo, hi).unwrap();
        prop_assert_eq!(blocks.first().unwrap().first(), lo);
        prop_assert_eq!(blocks.last().unwrap().last(), hi);
        for pair in blocks.windows(2) {
            // Ascending, touching, never overlapping.
            prop_assert_eq!(u32::from(pair[0].last()) + 1, u32::from(pair[1].first()));
        }
        for block in &blocks {
            prop_assert_eq!(PortPrefix::new(block.port(), block.prefix_len()).unwrap(), *block);
        }
    }

    #[test]
    fn blocks_are_the_fewest(lo in any::<u16>(), hi in any::<u16>()) {
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        let blocks = port_range_to_prefixes(lo, hi).unwrap();
        prop_assert!(blocks.len() <= 30);
        // No two neighbours could be merged into one aligned block.
        for pair in blocks.windows(2) {
            let merged = pair[0].prefix_len() == pair[1].prefix_len()
                && pair[0].prefix_len() > 0
                && PortPrefix::new(pair[0].port(), pair[0].prefix_len() - 1).is_ok();
            prop_assert!(!merged, "{:?} and {:?} merge", pair[0], pair[1]);
        }
    }

    #[test]
    fn contains_agrees_with_bounds(port in any::<u16>(), len in 0u8..=16, probe in any::<u16>()) {
        let block = PortPrefix::new(port & mask(len), len).unwrap();
        prop_assert_eq!(block.contains(probe), block.first() <= probe && probe <= block.last());
    }
}
