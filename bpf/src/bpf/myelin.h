/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Map and event layouts shared by the datapath programs and the Rust loader.
 *
 * The Rust mirror is bpf/src/maps/ and bpf/src/events.rs; bpf/build.rs compiles
 * bpf/src/bpf/layout.c against this header on the host and the `layout` unit test compares
 * every size and offset, so the two cannot drift silently. Any change here that is not purely
 * additive must bump MYELIN_LAYOUT_VERSION: pins live under <pin dir>/v<version>/ and aya does
 * not check a reused pin's layout.
 */
#ifndef MYELIN_H
#define MYELIN_H

#include <linux/types.h>

#define MYELIN_LAYOUT_VERSION 1

/* Reserved security identities (Cilium's numbers). 0 is the policy wildcard. */
#define IDENTITY_ANY 0
#define IDENTITY_HOST 1
#define IDENTITY_WORLD 2

/* Direction of traffic relative to the endpoint. */
#define DIR_INGRESS 0
#define DIR_EGRESS 1

/* ---- ipcache and ipblock: LPM tries, IPv4 prefix -> identity ---- */
struct ipcache_key {
	__u32 prefixlen; /* 0..=32 */
	__u32 addr;      /* network byte order */
};

struct ipcache_value {
	__u32 identity;
	__u32 tunnel_endpoint; /* IPv4, network byte order; 0 = not tunnelled */
	__u8 flags;
	__u8 pad[3];
};

/* ---- endpoints: hash, local pod IPv4 -> endpoint ---- */
struct endpoint_key {
	__u32 addr; /* network byte order */
};

#define ENDPOINT_F_ENFORCE_INGRESS (1 << 0)
#define ENDPOINT_F_ENFORCE_EGRESS (1 << 1)

struct endpoint_info {
	__u32 endpoint_id;
	__u32 ifindex;  /* host side of the pod's veth, in the namespace the program runs in */
	__u32 identity; /* the endpoint's own security identity */
	__u8 mac[6];
	__u16 flags;    /* ENDPOINT_F_* */
};

/* ---- policy: LPM trie over [endpoint | identity | direction | proto | dport] ---- */
struct policy_key {
	__u32 prefixlen;   /* POLICY_PREFIX_FIXED + (proto ? 8 + port bits : 0) */
	__u32 endpoint_id; /* matched in full: byte order is irrelevant */
	__u32 identity;    /* matched in full; 0 = any peer */
	__u8 direction;    /* DIR_* */
	__u8 proto;        /* IPPROTO_*; 0 with prefixlen POLICY_PREFIX_FIXED = any */
	__u16 dport;       /* network byte order so a prefix is a port block; ICMP: type */
};

#define POLICY_PREFIX_FIXED 72 /* endpoint_id, identity, direction */
#define POLICY_PREFIX_PROTO 80
#define POLICY_PREFIX_FULL 96

#define VERDICT_ALLOW 1
#define VERDICT_DENY 2
#define VERDICT_REDIRECT 3

struct policy_value {
	__u8 verdict;       /* VERDICT_* */
	__u8 l4_prefixlen;  /* the key's prefixlen - POLICY_PREFIX_FIXED: which hit is more specific */
	__u16 proxy_port;   /* host byte order; VERDICT_REDIRECT only */
	__u32 cookie;       /* opaque to the datapath, echoed in policy-verdict events */
};

/* ---- conntrack: LRU hash, tuple of the connection's first packet + scope ---- */
#define CT_SCOPE_INGRESS DIR_INGRESS
#define CT_SCOPE_EGRESS DIR_EGRESS

struct ct_key {
	__u32 saddr; /* network byte order */
	__u32 daddr;
	__u16 sport; /* host byte order; ICMP echo: id on the request side, 0 on the other */
	__u16 dport;
	__u8 proto;
	__u8 scope; /* CT_SCOPE_* */
	__u16 pad;
};

#define CT_F_REPLY_SEEN (1 << 0)
#define CT_F_CLOSING (1 << 1) /* FIN or RST seen */

struct ct_entry {
	__u64 created_ns; /* bpf_ktime_get_coarse_ns: CLOCK_MONOTONIC at tick resolution, cheap */
	__u64 last_seen_ns;
	__u64 packets_fwd;
	__u64 bytes_fwd;
	__u64 packets_rev;
	__u64 bytes_rev;
	__u32 peer_identity; /* as of the last policy decision */
	__u16 proxy_port;    /* host byte order; 0 = not redirected (as of that decision) */
	__u8 tcp_flags_fwd;  /* union of flags seen from the initiator */
	__u8 tcp_flags_rev;  /* ... and from the responder */
	__u8 flags;          /* CT_F_* */
	__u8 pad[3];
	__u32 epoch;         /* the policy epoch of the last allow; 0 = decide again */
};

/* ---- policy epoch: array of one __u32 ----
 * Userspace bumps it (never to 0) after every write to ipcache, ipblock, endpoints or policy.
 * A connection's forward packets reuse the allow recorded in its conntrack entry while the
 * entry's epoch equals this one; any map change makes every connection decide again. A program
 * reads the epoch before its lookups, so a decision can only be recorded under an epoch whose
 * writes it has seen. */

/* ---- datapath configuration: array of one ---- */
#define TRACE_AGGREGATE 0 /* to-* traces of new connections and of SYN/FIN/RST new to their direction */
#define TRACE_ALL 1
#define TRACE_NONE 2

struct datapath_config {
	__u32 trace_mode; /* TRACE_* */
	__u32 pad;
};

/* ---- events: ring buffer records ---- */
#define EVENT_DROP 1
#define EVENT_POLICY_VERDICT 2
#define EVENT_TRACE 3

#define EVENT_VERSION 1
#define EVENT_CAPTURE_LEN 128

/* Drop reasons, Cilium's codes (flow.proto DropReason). */
#define DROP_INVALID_SOURCE_IP 132
#define DROP_POLICY_DENIED 133
#define DROP_INVALID_PACKET 134
#define DROP_NO_LOCAL_ENDPOINT 152
#define DROP_CT_MAP_INSERTION_FAILED 155
#define DROP_POLICY_DENY 181

/* Trace observation points, flow.proto TraceObservationPoint. */
#define OBS_TO_PROXY 1
#define OBS_TO_STACK 3
#define OBS_FROM_ENDPOINT 5
#define OBS_TO_ENDPOINT 101

/* Policy match types, flow.proto policy_match_type. */
#define MATCH_NONE 0
#define MATCH_L3_ONLY 1
#define MATCH_L3_L4 2
#define MATCH_L4_ONLY 3
#define MATCH_ALL 4

#define CT_STATE_NEW 0
#define CT_STATE_ESTABLISHED 1
#define CT_STATE_REPLY 2

struct event_header {
	__u8 type;    /* EVENT_* */
	__u8 version; /* EVENT_VERSION */
	__u16 cap_len; /* bytes of the packet in event.data */
	__u32 pkt_len; /* skb->len */
	__u64 ktime_ns;
};

struct event_flow {
	__u32 endpoint_id;
	__u32 ifindex;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 saddr; /* network byte order */
	__u32 daddr;
	__u16 sport; /* host byte order; ICMP: the type */
	__u16 dport; /* host byte order; ICMP: the code */
	__u8 proto;
	__u8 tcp_flags;
	__u8 direction; /* DIR_* relative to the endpoint */
	__u8 ct_state;  /* CT_STATE_* */
};

struct event {
	struct event_header hdr;
	struct event_flow flow;
	__u16 code;        /* DROP: reason; TRACE: observation point; POLICY_VERDICT: 0 */
	__u8 match_type;   /* POLICY_VERDICT: MATCH_* */
	__u8 verdict;      /* POLICY_VERDICT: VERDICT_*, 0 = no match */
	__u16 proxy_port;  /* host byte order */
	__u16 pad;
	__u32 cookie;      /* POLICY_VERDICT: the deciding entry's cookie */
	__u32 pad2;
	__u8 data[EVENT_CAPTURE_LEN];
};

#endif
