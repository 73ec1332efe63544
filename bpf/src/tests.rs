//! The layout test: Rust's sizes and offsets of every shared struct against what the C compiler
//! made of myelin.h (printed by build.rs's host program). Any drift fails here.

use std::fmt::Write as _;
use std::mem::offset_of;

use aya::maps::lpm_trie::Key;

use crate::events::{EventFlow, EventHeader, RawEvent};
use crate::maps::config::DatapathConfig;
use crate::maps::conntrack::{CtEntry, CtKey};
use crate::maps::endpoints::EndpointInfo;
use crate::maps::ipcache::IpcacheValue;
use crate::maps::policy::{PolicyKeyData, PolicyValueRaw};

const C_LAYOUT: &str = include_str!(concat!(env!("OUT_DIR"), "/layout.txt"));

fn size_of_field<T, F>(_: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Lines `name.field offset=N size=N`, fields at `base` + their offset in `$t`.
macro_rules! fields {
    ($out:ident, $c:literal, $base:expr, $t:ty, [$($f:ident),*]) => {
        $(
            writeln!(
                $out,
                "{}.{} offset={} size={}",
                $c,
                stringify!($f).trim_start_matches("r#"),
                $base + offset_of!($t, $f),
                size_of_field(|v: &$t| &v.$f),
            )
            .unwrap();
        )*
    };
}

/// The line `name size=N`, then its fields.
macro_rules! layout {
    ($out:ident, $c:literal, $t:ty, [$($f:ident),*]) => {
        writeln!($out, "{} size={}", $c, size_of::<$t>()).unwrap();
        fields!($out, $c, 0, $t, [$($f),*]);
    };
}

fn rust_layout() -> String {
    let mut out = String::new();
    // LPM keys are aya's packed `Key { prefix_len: u32, data }`.
    writeln!(out, "ipcache_key size={}", size_of::<Key<[u8; 4]>>()).unwrap();
    writeln!(out, "ipcache_key.prefixlen offset=0 size=4").unwrap();
    writeln!(
        out,
        "ipcache_key.addr offset=4 size={}",
        size_of::<[u8; 4]>()
    )
    .unwrap();
    layout!(
        out,
        "ipcache_value",
        IpcacheValue,
        [identity, tunnel_endpoint, flags]
    );
    writeln!(out, "endpoint_key size={}", size_of::<[u8; 4]>()).unwrap();
    writeln!(out, "endpoint_key.addr offset=0 size=4").unwrap();
    layout!(
        out,
        "endpoint_info",
        EndpointInfo,
        [endpoint_id, ifindex, identity, mac, flags]
    );
    writeln!(out, "policy_key size={}", size_of::<Key<PolicyKeyData>>()).unwrap();
    writeln!(out, "policy_key.prefixlen offset=0 size=4").unwrap();
    fields!(
        out,
        "policy_key",
        4,
        PolicyKeyData,
        [endpoint_id, identity, direction, proto, dport]
    );
    layout!(
        out,
        "policy_value",
        PolicyValueRaw,
        [verdict, l4_prefixlen, proxy_port, cookie]
    );
    layout!(
        out,
        "ct_key",
        CtKey,
        [saddr, daddr, sport, dport, proto, scope]
    );
    layout!(
        out,
        "ct_entry",
        CtEntry,
        [
            created_ns,
            last_seen_ns,
            packets_fwd,
            bytes_fwd,
            packets_rev,
            bytes_rev,
            peer_identity,
            proxy_port,
            tcp_flags_fwd,
            tcp_flags_rev,
            flags,
            epoch
        ]
    );
    layout!(out, "datapath_config", DatapathConfig, [trace_mode]);
    layout!(
        out,
        "event_header",
        EventHeader,
        [r#type, version, cap_len, pkt_len, ktime_ns]
    );
    layout!(
        out,
        "event_flow",
        EventFlow,
        [
            endpoint_id,
            ifindex,
            src_identity,
            dst_identity,
            saddr,
            daddr,
            sport,
            dport,
            proto,
            tcp_flags,
            direction,
            ct_state
        ]
    );
    layout!(
        out,
        "event",
        RawEvent,
        [
            hdr, flow, code, match_type, verdict, proxy_port, cookie, data
        ]
    );
    writeln!(out, "MYELIN_LAYOUT_VERSION={}", crate::LAYOUT_VERSION).unwrap();
    out
}

#[test]
fn rust_layouts_match_the_c_header() {
    let rust = rust_layout();
    for (c, r) in C_LAYOUT.lines().zip(rust.lines()) {
        assert_eq!(c, r, "C (left) and Rust (right) disagree");
    }
    assert_eq!(C_LAYOUT, rust);
}

#[test]
fn event_capture_len_matches() {
    assert_eq!(crate::events::CAPTURE_LEN, 128);
    expect_test::expect![[r#"
        ipcache_key size=8
        ipcache_value size=12
        endpoint_key size=4
        endpoint_info size=20
        policy_key size=16
        policy_value size=8
        ct_key size=16
        ct_entry size=64
        datapath_config size=8
        event_header size=16
        event_flow size=32
        event size=192
    "#]]
    .assert_eq(
        &C_LAYOUT
            .lines()
            .filter(|line| !line.contains('.') && line.contains("size="))
            .map(|line| format!("{line}\n"))
            .collect::<String>(),
    );
}
