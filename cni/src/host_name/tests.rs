use expect_test::expect;

use super::{fnv1a64, host_ifname};

#[test]
fn names_are_short_stable_and_distinct() {
    // The reference values of FNV-1a 64.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    let names: Vec<String> = [
        "c0ffee",
        "c0ffef",
        "a-much-longer-container-id-0123456789abcdef",
    ]
    .iter()
    .map(|id| host_ifname(id))
    .collect();
    expect![[r#"
        [
            "lxcee38e37d052d",
            "lxce9a1ae432f20",
            "lxcf24d2264b552",
        ]
    "#]]
    .assert_debug_eq(&names);
    assert!(names.iter().all(|name| name.len() == 15));
}
