/* Host program run by build.rs: prints the size and field offsets of every shared struct,
 * one line each, for the `layout` unit test to compare with Rust's view. */
#include <stddef.h>
#include <stdio.h>

#include "myelin.h"

#define S(t) printf("%s size=%zu\n", #t, sizeof(struct t))
#define F(t, f) \
	printf("%s.%s offset=%zu size=%zu\n", #t, #f, offsetof(struct t, f), sizeof(((struct t *)0)->f))

int main(void)
{
	S(ipcache_key);
	F(ipcache_key, prefixlen);
	F(ipcache_key, addr);
	S(ipcache_value);
	F(ipcache_value, identity);
	F(ipcache_value, tunnel_endpoint);
	F(ipcache_value, flags);
	S(endpoint_key);
	F(endpoint_key, addr);
	S(endpoint_info);
	F(endpoint_info, endpoint_id);
	F(endpoint_info, ifindex);
	F(endpoint_info, identity);
	F(endpoint_info, mac);
	F(endpoint_info, flags);
	S(policy_key);
	F(policy_key, prefixlen);
	F(policy_key, endpoint_id);
	F(policy_key, identity);
	F(policy_key, direction);
	F(policy_key, proto);
	F(policy_key, dport);
	S(policy_value);
	F(policy_value, verdict);
	F(policy_value, l4_prefixlen);
	F(policy_value, proxy_port);
	F(policy_value, cookie);
	S(ct_key);
	F(ct_key, saddr);
	F(ct_key, daddr);
	F(ct_key, sport);
	F(ct_key, dport);
	F(ct_key, proto);
	F(ct_key, scope);
	S(ct_entry);
	F(ct_entry, created_ns);
	F(ct_entry, last_seen_ns);
	F(ct_entry, packets_fwd);
	F(ct_entry, bytes_fwd);
	F(ct_entry, packets_rev);
	F(ct_entry, bytes_rev);
	F(ct_entry, peer_identity);
	F(ct_entry, proxy_port);
	F(ct_entry, tcp_flags_fwd);
	F(ct_entry, tcp_flags_rev);
	F(ct_entry, flags);
	F(ct_entry, epoch);
	S(datapath_config);
	F(datapath_config, trace_mode);
	S(event_header);
	F(event_header, type);
	F(event_header, version);
	F(event_header, cap_len);
	F(event_header, pkt_len);
	F(event_header, ktime_ns);
	S(event_flow);
	F(event_flow, endpoint_id);
	F(event_flow, ifindex);
	F(event_flow, src_identity);
	F(event_flow, dst_identity);
	F(event_flow, saddr);
	F(event_flow, daddr);
	F(event_flow, sport);
	F(event_flow, dport);
	F(event_flow, proto);
	F(event_flow, tcp_flags);
	F(event_flow, direction);
	F(event_flow, ct_state);
	S(event);
	F(event, hdr);
	F(event, flow);
	F(event, code);
	F(event, match_type);
	F(event, verdict);
	F(event, proxy_port);
	F(event, cookie);
	F(event, data);
	printf("MYELIN_LAYOUT_VERSION=%d\n", MYELIN_LAYOUT_VERSION);
	return 0;
}
