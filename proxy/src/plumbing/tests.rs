use expect_test::expect;

use super::{ListenerKind, proxy_mark, ruleset};

#[test]
fn the_mark_carries_the_port_as_the_datapath_sets_it() {
    // myelin.h / datapath.bpf.c: MARK_MAGIC_TO_PROXY | proxy_port << 16.
    assert_eq!(proxy_mark(10000), 0x2710_0200);
}

#[test]
fn ruleset_replaces_the_table_with_one_tproxy_rule_per_listener() {
    let [ingress, egress, dns] = ListenerKind::ALL;
    expect![[r#"
        table ip myelin_proxy
        delete table ip myelin_proxy
        table ip myelin_proxy {
        	chain prerouting {
        		type filter hook prerouting priority mangle; policy accept;
        		meta l4proto { tcp, udp } socket transparent 1 meta mark set 0x00000200 accept comment "to a proxy socket"
        		meta mark 0x27100200 meta l4proto tcp tproxy to 127.0.0.1:10000 meta mark set 0x00000200 accept comment "http-ingress"
        		meta mark 0x27110200 meta l4proto tcp tproxy to 127.0.0.1:10001 meta mark set 0x00000200 accept comment "http-egress"
        		meta mark 0x27120200 meta l4proto { tcp, udp } tproxy to 127.0.0.1:10002 meta mark set 0x00000200 accept comment "dns-egress"
        	}
        }
    "#]]
    .assert_eq(&ruleset(&[(ingress, 10000), (egress, 10001), (dns, 10002)]));
}
