// SPDX-License-Identifier: GPL-2.0
/*
 * ma_ops: the sockops half of same-node acceleration (kmesh-dataplane.md section 8). IPv4 TCP
 * only (an AF_INET6 socket, v4-mapped or not, is left alone).
 *  - ACTIVE_ESTABLISHED: the socket goes into sock_ops_map under its own key (local -> remote).
 *  - PASSIVE_ESTABLISHED: if the filter admits the connection, the socket goes into
 *    sock_ops_map under its own key, and sock_proxy_map gets both directions (own key -> peer
 *    key, peer key -> own key). The peer key is the exact reverse of the own key: this data
 *    path knows no NAT original destination.
 *  - STATE_CB to CLOSE, CLOSE_WAIT or FIN_WAIT1: both sock_proxy_map entries of the connection
 *    are deleted (sock_ops_map drops a closed socket by itself).
 * Both established callbacks ask for STATE_CB, so that the cleanup runs for every socket seen.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "accel_abi.h"
#include "accel_key.h"
#include "accel_filter.h"

/* The socket's own key, read from the context with one u32 load per field. */
static __always_inline int ma_own_key(struct bpf_sock_ops *skops, struct sock_key *k)
{
	__u32 family = skops->family;
	__u32 local4 = skops->local_ip4, remote4 = skops->remote_ip4;
	__u32 local_port = skops->local_port, remote_port = skops->remote_port;

	if (family != MA_AF_INET)
		return 0;
	ma_key_set(k, local4, remote4, local_port, remote_port, bpf_get_netns_cookie(skops));
	return 1;
}

static __always_inline __u32 ma_port_host(__u32 key_port)
{
	return bpf_ntohs((__u16)key_port);
}

static __always_inline int ma_admits(const struct sock_key *own, const struct sock_key *peer)
{
	__u32 zero = 0;
	struct sock_param *p = bpf_map_lookup_elem(&sock_param_map, &zero);
	__u32 addr[MA_FOUR], port[MA_FOUR];

	if (!p)
		return 1;
	addr[0] = bpf_ntohl(own->sip4);
	addr[1] = bpf_ntohl(own->dip4);
	addr[2] = bpf_ntohl(peer->sip4);
	addr[3] = bpf_ntohl(peer->dip4);
	port[0] = ma_port_host(own->sport);
	port[1] = ma_port_host(own->dport);
	port[2] = ma_port_host(peer->sport);
	port[3] = ma_port_host(peer->dport);
	return ma_filter_admits(p, addr, port);
}

static __always_inline void ma_watch_state(struct bpf_sock_ops *skops)
{
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void on_active(struct bpf_sock_ops *skops)
{
	struct sock_key own = {};

	if (!ma_own_key(skops, &own))
		return;
	ma_watch_state(skops);
	bpf_sock_hash_update(skops, &sock_ops_map, &own, BPF_ANY);
}

static __always_inline void on_passive(struct bpf_sock_ops *skops)
{
	struct sock_key own = {}, peer = {};

	if (!ma_own_key(skops, &own))
		return;
	ma_watch_state(skops);
	ma_key_reverse(&own, &peer);
	if (!ma_admits(&own, &peer))
		return;
	bpf_sock_hash_update(skops, &sock_ops_map, &own, BPF_ANY);
	bpf_map_update_elem(&sock_proxy_map, &own, &peer, BPF_ANY);
	bpf_map_update_elem(&sock_proxy_map, &peer, &own, BPF_ANY);
}

static __always_inline void on_state(struct bpf_sock_ops *skops)
{
	__u32 state = skops->args[1];
	struct sock_key own = {}, peer = {};

	if (state != MA_TCP_CLOSE && state != MA_TCP_CLOSE_WAIT && state != MA_TCP_FIN_WAIT1)
		return;
	if (!ma_own_key(skops, &own))
		return;
	ma_key_reverse(&own, &peer);
	bpf_map_delete_elem(&sock_proxy_map, &own);
	bpf_map_delete_elem(&sock_proxy_map, &peer);
}

SEC("sockops")
int ma_ops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		on_active(skops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		on_passive(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		on_state(skops);
		break;
	default:
		break;
	}
	return 1;
}

char _license[] SEC("license") = "GPL";
