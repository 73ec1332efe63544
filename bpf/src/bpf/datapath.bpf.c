// SPDX-License-Identifier: Apache-2.0
/*
 * Per-endpoint policy enforcement on the host side of a pod's veth.
 *
 * from_container runs at the host veth's tc ingress (packets leaving the pod: the pod's
 * EGRESS); to_container at its tc egress (packets entering the pod: the pod's INGRESS).
 * Pod-to-pod traffic on one node crosses the sender's from_container and then the receiver's
 * to_container, and both must allow it.
 *
 * IPv4 only: every other EtherType (IPv6, ARP) passes untouched.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "myelin.h"

/* Cilium's marks (the 0x0f00 nibble): the node's TPROXY rule matches "to proxy"; the proxy's
 * upstream sockets carry "from the ingress/egress proxy" (SO_MARK). A pod cannot set a mark on
 * what it sends: crossing the veth from its namespace scrubs it. */
#define MARK_MAGIC_HOST_MASK 0x0f00
#define MARK_MAGIC_TO_PROXY 0x0200
#define MARK_MAGIC_PROXY_INGRESS 0x0a00

/* skb->cb[CB_PROXIED_REPLY]: handle() saw a reply of a connection a proxy took over. */
#define CB_PROXIED_REPLY 0

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

/* Overridden by the loader (EbpfLoader::set_max_entries); these are the defaults. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 512 * 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
} ipcache SEC(".maps");

/*
 * NetworkPolicy ipBlock identities, laid out like ipcache. Unlike ipcache they also cover pod
 * addresses (an ipBlock matches every address in it), so a pod has its pod identity in ipcache
 * and may have an ipBlock identity here, which policy_check consults only for allows.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64 * 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
} ipblock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024 * 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct datapath_config);
} config SEC(".maps");

/* Mmapable: the agent bumps it with one atomic store, not two syscalls per map write. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u32);
} policy_epoch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

/* Unread bytes that make a record wake the reader: a sixteenth of the ring. */
#define EVENTS_WAKEUP_BYTES (64 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} events_lost SEC(".maps");

struct pkt {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;       /* conntrack tuple ports, host byte order */
	__u16 dport;
	__u16 policy_port; /* destination port, or ICMP type */
	__u16 ev_sport;    /* what events report: ports, or ICMP type and code */
	__u16 ev_dport;
	__u8 proto;
	__u8 tcp_flags;
};

/* Everything one packet's decision needs, passed by pointer to stay within the stack limit. */
struct ctx {
	struct pkt p;
	__u32 endpoint_id;
	__u32 endpoint_identity;
	__u32 peer_identity;
	__u8 dir;
	__u8 ct_state;
	__u8 match_type;
	__u8 verdict;
	__u16 proxy_port;
	__u16 drop_reason;
	__u32 cookie;
};

/*
 * Copies `len` bytes at `off` of the packet: straight from the linear data when it holds them
 * (no helper call: what nearly every packet takes), else through bpf_skb_load_bytes.
 */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (off <= 64 && data + off + len <= data_end) {
		__builtin_memcpy(to, data + off, len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	struct iphdr ip;
	__u32 off;

	if (load(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return -1;
	if (ip.version != 4 || ip.ihl < 5)
		return -1;
	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->proto = ip.protocol;
	/* A non-first fragment carries no L4 header: it is seen with ports 0. */
	if (ip.frag_off & bpf_htons(0x1fff))
		return 0;
	off = ETH_HLEN + ip.ihl * 4;

	switch (ip.protocol) {
	case IPPROTO_TCP: {
		__u8 tcp[14];

		if (load(skb, off, tcp, sizeof(tcp)) < 0)
			return -1;
		p->sport = (tcp[0] << 8) | tcp[1];
		p->dport = (tcp[2] << 8) | tcp[3];
		p->tcp_flags = tcp[13];
		p->policy_port = p->dport;
		p->ev_sport = p->sport;
		p->ev_dport = p->dport;
		break;
	}
	case IPPROTO_UDP: {
		__u8 udp[4];

		if (load(skb, off, udp, sizeof(udp)) < 0)
			return -1;
		p->sport = (udp[0] << 8) | udp[1];
		p->dport = (udp[2] << 8) | udp[3];
		p->policy_port = p->dport;
		p->ev_sport = p->sport;
		p->ev_dport = p->dport;
		break;
	}
	case IPPROTO_ICMP: {
		__u8 icmp[8];
		__u16 id;

		if (load(skb, off, icmp, sizeof(icmp)) < 0)
			return -1;
		id = (icmp[4] << 8) | icmp[5];
		/* The echo id plays the port: the request's tuple reversed is the reply's. */
		if (icmp[0] == ICMP_ECHO)
			p->sport = id;
		else if (icmp[0] == ICMP_ECHOREPLY)
			p->dport = id;
		p->policy_port = icmp[0];
		p->ev_sport = icmp[0];
		p->ev_dport = icmp[1];
		break;
	}
	default:
		break;
	}
	return 0;
}

static __always_inline void emit(struct __sk_buff *skb, struct ctx *c, __u8 type, __u16 code)
{
	__u32 zero = 0;
	struct event *ev;
	__u32 cap;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		__u64 *lost = bpf_map_lookup_elem(&events_lost, &zero);

		if (lost)
			*lost += 1;
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev) - EVENT_CAPTURE_LEN);
	ev->hdr.type = type;
	ev->hdr.version = EVENT_VERSION;
	ev->hdr.pkt_len = skb->len;
	ev->hdr.ktime_ns = bpf_ktime_get_ns();
	ev->flow.endpoint_id = c->endpoint_id;
	ev->flow.ifindex = skb->ifindex;
	if (c->dir == DIR_EGRESS) {
		ev->flow.src_identity = c->endpoint_identity;
		ev->flow.dst_identity = c->peer_identity;
	} else {
		ev->flow.src_identity = c->peer_identity;
		ev->flow.dst_identity = c->endpoint_identity;
	}
	ev->flow.saddr = c->p.saddr;
	ev->flow.daddr = c->p.daddr;
	ev->flow.sport = c->p.ev_sport;
	ev->flow.dport = c->p.ev_dport;
	ev->flow.proto = c->p.proto;
	ev->flow.tcp_flags = c->p.tcp_flags;
	ev->flow.direction = c->dir;
	ev->flow.ct_state = c->ct_state;
	ev->code = code;
	if (type == EVENT_POLICY_VERDICT) {
		ev->match_type = c->match_type;
		ev->verdict = c->verdict;
		ev->cookie = c->cookie;
	}
	ev->proxy_port = c->proxy_port;

	cap = skb->len;
	if (cap > EVENT_CAPTURE_LEN)
		cap = EVENT_CAPTURE_LEN;
	if (cap == 0 || bpf_skb_load_bytes(skb, 0, ev->data, cap) < 0)
		cap = 0;
	ev->hdr.cap_len = cap;
	/*
	 * Waking the reader for every record costs an interrupt and a context switch per event:
	 * it is woken once records pile up, and otherwise polls (bpf::EventReader::next).
	 */
	bpf_ringbuf_submit(ev, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= EVENTS_WAKEUP_BYTES
				       ? BPF_RB_FORCE_WAKEUP
				       : BPF_RB_NO_WAKEUP);
}

static __always_inline __u32 trace_mode(void)
{
	__u32 zero = 0;
	struct datapath_config *cfg = bpf_map_lookup_elem(&config, &zero);

	return cfg ? cfg->trace_mode : TRACE_AGGREGATE;
}

/*
 * Cilium's "medium" monitor aggregation: a connection's first packet, and a packet bringing a
 * SYN, FIN or RST its direction has not carried yet; retransmissions and plain ACKs are not
 * traced.
 */
static __always_inline int want_trace(struct ctx *c, __u32 mode, struct ct_entry *entry)
{
	__u8 flags = c->p.tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST);
	__u8 seen;

	if (mode == TRACE_ALL)
		return 1;
	if (mode == TRACE_NONE)
		return 0;
	if (c->ct_state == CT_STATE_NEW || !entry)
		return 1;
	seen = c->ct_state == CT_STATE_REPLY ? entry->tcp_flags_rev : entry->tcp_flags_fwd;
	return (flags & ~seen) != 0;
}

static __always_inline int drop(struct __sk_buff *skb, struct ctx *c, __u16 reason)
{
	emit(skb, c, EVENT_DROP, reason);
	return TC_ACT_SHOT;
}

/*
 * The entry of the peer's ipBlock identity, if it allows (or redirects): a deny there is ignored,
 * since the ipBlock identity only ever adds allows to what the pod identity gets.
 */
static __always_inline struct policy_value *ipblock_allow(struct ctx *c, __u32 peer_addr)
{
	struct ipcache_key ipk = { .prefixlen = 32, .addr = peer_addr };
	struct ipcache_value *ipv;
	struct policy_value *hit;
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_FULL,
		.endpoint_id = c->endpoint_id,
		.direction = c->dir,
		.proto = c->p.proto,
		.dport = bpf_htons(c->p.policy_port),
	};

	ipv = bpf_map_lookup_elem(&ipblock, &ipk);
	if (!ipv)
		return NULL;
	key.identity = ipv->identity;
	hit = bpf_map_lookup_elem(&policy, &key);
	if (!hit || hit->verdict == VERDICT_DENY)
		return NULL;
	return hit;
}

/*
 * MapState::decide of the policy crate, lookup for lookup: the peer's identity and the wildcard
 * identity 0. A deny in either wins; otherwise the hit with the longer L4 prefix wins (the
 * peer's on a tie). Only when neither hit does the peer's ipBlock identity get a say, and only
 * with an allow. The policy writer guarantees that within one identity no allow is more
 * specific than a deny covering it, so the longest-prefix hit of each lookup is enough.
 */
static __always_inline void policy_check(struct ctx *c, __u32 peer_addr)
{
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_FULL,
		.endpoint_id = c->endpoint_id,
		.identity = c->peer_identity,
		.direction = c->dir,
		.proto = c->p.proto,
		.dport = bpf_htons(c->p.policy_port),
	};
	struct policy_value *exact, *any, *hit;
	int exact_wins;

	exact = bpf_map_lookup_elem(&policy, &key);
	key.identity = IDENTITY_ANY;
	any = bpf_map_lookup_elem(&policy, &key);

	if (exact && exact->verdict == VERDICT_DENY)
		exact_wins = 1;
	else if (any && any->verdict == VERDICT_DENY)
		exact_wins = 0;
	else if (exact)
		exact_wins = !any || exact->l4_prefixlen >= any->l4_prefixlen;
	else if (any)
		exact_wins = 0;
	else {
		/* Reported like a hit of the peer's own key: the ipBlock peer is a specific one. */
		exact = ipblock_allow(c, peer_addr);
		if (!exact) {
			c->verdict = 0;
			c->match_type = MATCH_NONE;
			c->drop_reason = DROP_POLICY_DENIED;
			return;
		}
		exact_wins = 1;
	}
	hit = exact_wins ? exact : any;
	c->verdict = hit->verdict;
	c->cookie = hit->cookie;
	if (hit->verdict == VERDICT_REDIRECT)
		c->proxy_port = hit->proxy_port;
	if (exact_wins)
		c->match_type = hit->l4_prefixlen ? MATCH_L3_L4 : MATCH_L3_ONLY;
	else
		c->match_type = hit->l4_prefixlen ? MATCH_L4_ONLY : MATCH_ALL;
	if (hit->verdict == VERDICT_DENY)
		c->drop_reason = DROP_POLICY_DENY;
	else if (hit->verdict != VERDICT_ALLOW && hit->verdict != VERDICT_REDIRECT)
		c->drop_reason = DROP_POLICY_DENIED;
}

static __always_inline void ct_account(struct ct_entry *e, int forward, struct __sk_buff *skb,
				       __u8 tcp_flags)
{
	e->last_seen_ns = bpf_ktime_get_coarse_ns();
	if (forward) {
		__sync_fetch_and_add(&e->packets_fwd, 1);
		__sync_fetch_and_add(&e->bytes_fwd, skb->len);
		e->tcp_flags_fwd |= tcp_flags;
	} else {
		__sync_fetch_and_add(&e->packets_rev, 1);
		__sync_fetch_and_add(&e->bytes_rev, skb->len);
		e->tcp_flags_rev |= tcp_flags;
		if (!(e->flags & CT_F_REPLY_SEEN))
			e->flags |= CT_F_REPLY_SEEN;
	}
	if ((tcp_flags & (TCP_FIN | TCP_RST)) && !(e->flags & CT_F_CLOSING))
		e->flags |= CT_F_CLOSING;
}

static __always_inline __u32 read_epoch(void)
{
	__u32 zero = 0;
	__u32 *epoch = bpf_map_lookup_elem(&policy_epoch, &zero);

	return epoch ? *(volatile __u32 *)epoch : 0;
}

static __always_inline int handle(struct __sk_buff *skb, __u8 dir, int delivering)
{
	struct ctx c = { .dir = dir };
	struct endpoint_info *ep;
	struct ipcache_key ipk;
	struct ipcache_value *ipv;
	struct ct_key fwd, rev;
	struct ct_entry *entry;
	__u32 ep_addr, peer_addr, epoch, mode;
	__u16 flag;
	int trace;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	/* Before any lookup: a decision recorded under this epoch has seen its writes. */
	epoch = read_epoch();
	if (parse(skb, &c.p) < 0)
		return drop(skb, &c, DROP_INVALID_PACKET);

	ep_addr = dir == DIR_EGRESS ? c.p.saddr : c.p.daddr;
	peer_addr = dir == DIR_EGRESS ? c.p.daddr : c.p.saddr;

	ep = bpf_map_lookup_elem(&endpoints, &ep_addr);
	/* On local delivery the packet is still on the source's veth, not the destination's. */
	if (!ep || (!delivering && ep->ifindex != skb->ifindex))
		return drop(skb, &c,
			    dir == DIR_EGRESS ? DROP_INVALID_SOURCE_IP : DROP_NO_LOCAL_ENDPOINT);
	c.endpoint_id = ep->endpoint_id;
	c.endpoint_identity = ep->identity;
	flag = dir == DIR_EGRESS ? ENDPOINT_F_ENFORCE_EGRESS : ENDPOINT_F_ENFORCE_INGRESS;

	fwd = (struct ct_key){
		.saddr = c.p.saddr,
		.daddr = c.p.daddr,
		.sport = c.p.sport,
		.dport = c.p.dport,
		.proto = c.p.proto,
		.scope = dir,
	};
	rev = (struct ct_key){
		.saddr = c.p.daddr,
		.daddr = c.p.saddr,
		.sport = c.p.dport,
		.dport = c.p.sport,
		.proto = c.p.proto,
		.scope = dir == DIR_EGRESS ? CT_SCOPE_INGRESS : CT_SCOPE_EGRESS,
	};

	entry = bpf_map_lookup_elem(&conntrack, &fwd);
	if (entry) {
		c.ct_state = CT_STATE_ESTABLISHED;
	} else {
		entry = bpf_map_lookup_elem(&conntrack, &rev);
		c.ct_state = entry ? CT_STATE_REPLY : CT_STATE_NEW;
	}

	/*
	 * The peer's identity only matters to a policy decision and to events: replies and
	 * forward packets whose allow still holds take it from their conntrack entry and skip
	 * the ipcache's trie walk.
	 */
	if (entry && (c.ct_state == CT_STATE_REPLY || (epoch && entry->epoch == epoch))) {
		c.peer_identity = entry->peer_identity;
	} else {
		ipk.prefixlen = 32;
		ipk.addr = peer_addr;
		ipv = bpf_map_lookup_elem(&ipcache, &ipk);
		c.peer_identity = ipv ? ipv->identity : IDENTITY_WORLD;
	}

	/* Decided once: nothing below changes the conntrack state or the flags it depends on. */
	mode = trace_mode();
	trace = want_trace(&c, mode, entry);
	/* As in Cilium, from-* points are traced only without aggregation. */
	if (dir == DIR_EGRESS && mode == TRACE_ALL)
		emit(skb, &c, EVENT_TRACE, OBS_FROM_ENDPOINT);

	if (c.ct_state == CT_STATE_REPLY) {
		/* Replies of a connection this endpoint's policy let in or out need no lookup. */
		if (entry) {
			ct_account(entry, 0, skb, c.p.tcp_flags);
			/* The proxy's upstream socket is the real peer: the stack must deliver it. */
			if (entry->proxy_port)
				skb->cb[CB_PROXIED_REPLY] = 1;
		}
	} else if (entry && epoch && entry->epoch == epoch) {
		/* No map changed since this connection was last allowed: the same allow holds. */
		c.proxy_port = entry->proxy_port;
		c.verdict = c.proxy_port ? VERDICT_REDIRECT : VERDICT_ALLOW;
	} else if (ep->flags & flag) {
		policy_check(&c, peer_addr);
		if (c.ct_state == CT_STATE_NEW)
			emit(skb, &c, EVENT_POLICY_VERDICT, 0);
		if (c.drop_reason)
			return drop(skb, &c, c.drop_reason);
	} else {
		c.verdict = VERDICT_ALLOW;
	}

	if (c.ct_state == CT_STATE_NEW) {
		struct ct_entry fresh = {};
		long err;

		fresh.created_ns = bpf_ktime_get_coarse_ns();
		fresh.last_seen_ns = fresh.created_ns;
		fresh.packets_fwd = 1;
		fresh.bytes_fwd = skb->len;
		fresh.peer_identity = c.peer_identity;
		fresh.proxy_port = c.proxy_port;
		fresh.tcp_flags_fwd = c.p.tcp_flags;
		fresh.epoch = epoch;
		if (c.p.tcp_flags & (TCP_FIN | TCP_RST))
			fresh.flags = CT_F_CLOSING;
		err = bpf_map_update_elem(&conntrack, &fwd, &fresh, BPF_NOEXIST);
		if (err && err != -17 /* EEXIST: a racing packet of the same flow */)
			return drop(skb, &c, DROP_CT_MAP_INSERTION_FAILED);
	} else if (c.ct_state == CT_STATE_ESTABLISHED && entry) {
		if (entry->epoch != epoch) {
			/* Decided again and allowed: record it under the epoch read before. */
			entry->peer_identity = c.peer_identity;
			entry->proxy_port = c.proxy_port;
			entry->epoch = epoch;
		}
		ct_account(entry, 1, skb, c.p.tcp_flags);
	}

	/* What the ingress proxy sends on was decided by it: the pod gets it. */
	if (c.verdict == VERDICT_REDIRECT && c.proxy_port &&
	    !(dir == DIR_INGRESS && (skb->mark & MARK_MAGIC_HOST_MASK) == MARK_MAGIC_PROXY_INGRESS))
		skb->mark = MARK_MAGIC_TO_PROXY | ((__u32)c.proxy_port << 16);

	if (trace)
		emit(skb, &c, EVENT_TRACE,
		     (skb->mark & MARK_MAGIC_HOST_MASK) == MARK_MAGIC_TO_PROXY ? OBS_TO_PROXY
		     : dir == DIR_EGRESS		  ? OBS_TO_STACK
							  : OBS_TO_ENDPOINT);
	return TC_ACT_OK;
}

/*
 * Local delivery, as Cilium's BPF host routing does it: a packet whose source's egress and
 * destination's ingress (decided here, with the destination's conntrack, policy and events,
 * exactly as to_container would) both allow it goes straight into the destination pod with
 * bpf_redirect_peer, skipping the node's routing, netfilter and the destination veth's tc
 * egress. As a router would, it gets the destination pod's MAC, the host veth's MAC as its
 * source, and one hop less TTL. Anything marked for the proxy, or that cannot be rewritten,
 * takes the stack as before.
 */
static __always_inline int local_delivery(struct __sk_buff *skb)
{
	struct endpoint_key key = {};
	struct endpoint_info *dst;
	struct ethhdr *eth;
	struct iphdr *ip;
	void *data, *data_end;
	__u8 macs[12];
	__u8 ttl, new_ttl;
	int ret;

	if ((skb->mark & MARK_MAGIC_HOST_MASK) == MARK_MAGIC_TO_PROXY || skb->cb[CB_PROXIED_REPLY])
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + ETH_HLEN + sizeof(struct iphdr) > data_end)
		return TC_ACT_OK;
	ip = data + ETH_HLEN;
	key.addr = ip->daddr;
	dst = bpf_map_lookup_elem(&endpoints, &key);
	if (!dst || !dst->ifindex)
		return TC_ACT_OK;

	ret = handle(skb, DIR_INGRESS, 1);
	if (ret != TC_ACT_OK || (skb->mark & MARK_MAGIC_HOST_MASK) == MARK_MAGIC_TO_PROXY ||
	    skb->cb[CB_PROXIED_REPLY])
		return ret;

	/* handle() may have moved the packet data: look again. */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + ETH_HLEN + sizeof(struct iphdr) > data_end)
		return TC_ACT_OK;
	eth = data;
	ip = data + ETH_HLEN;
	ttl = ip->ttl;
	/* Expiring: the stack sends the ICMP time exceeded. */
	if (ttl <= 1)
		return TC_ACT_OK;
	__builtin_memcpy(macs, dst->mac, 6);
	__builtin_memcpy(macs + 6, eth->h_dest, 6);
	new_ttl = ttl - 1;
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return TC_ACT_OK;
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), bpf_htons(ttl << 8),
				bpf_htons(new_ttl << 8), 2) < 0)
		return TC_ACT_OK;
	if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &new_ttl, 1, 0) < 0)
		return TC_ACT_OK;
	return bpf_redirect_peer(dst->ifindex, 0);
}

SEC("classifier")
int from_container(struct __sk_buff *skb)
{
	int ret;

	/* Hairpinned by to_container for the ingress proxy: decided already. */
	if ((skb->mark & MARK_MAGIC_HOST_MASK) == MARK_MAGIC_TO_PROXY)
		return TC_ACT_OK;
	skb->cb[CB_PROXIED_REPLY] = 0;
	ret = handle(skb, DIR_EGRESS, 0);
	if (ret != TC_ACT_OK)
		return ret;
	return local_delivery(skb);
}

/*
 * A connection from outside the node (or from the egress proxy) that the pod's ingress policy
 * redirects must reach the ingress listener, but this hook runs after the node's routing: as
 * Cilium's hairpin to cilium_host, the marked packet goes back in through this veth's ingress,
 * addressed to the veth's own MAC (the routed packet's source), for TPROXY to take it. What the
 * ingress proxy sends on keeps its mark and is delivered.
 */
SEC("classifier")
int to_container(struct __sk_buff *skb)
{
	struct ethhdr *eth;
	void *data, *data_end;
	__u8 mac[6];
	int ret;

	skb->cb[CB_PROXIED_REPLY] = 0;
	ret = handle(skb, DIR_INGRESS, 0);
	if (ret != TC_ACT_OK || (skb->mark & MARK_MAGIC_HOST_MASK) != MARK_MAGIC_TO_PROXY)
		return ret;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + ETH_HLEN > data_end)
		return TC_ACT_SHOT;
	eth = data;
	__builtin_memcpy(mac, eth->h_source, 6);
	if (bpf_skb_store_bytes(skb, 0, mac, sizeof(mac), 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
}

char _license[] SEC("license") = "Apache-2.0";
