/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inbound authorization (section 7): the server side of a managed connection asks user space
 * through km_auth_req, and the verdict user space stores in km_auth_res under the requested tuple
 * is deleted when the connection closes. Not gated by enable_monitoring. The request is
 * assembled from zeroes and copied whole, so bytes the tuple's view does not use are zero.
 */
#ifndef KM_AUTH_H
#define KM_AUTH_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "addr.h"
#include "report.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, KM_AUTH_REQ_RINGBUF_SIZE);
} km_auth_req SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct bpf_sock_tuple);
	__type(value, __u32);
	__uint(max_entries, KM_AUTH_RES_MAX);
} km_auth_res SEC(".maps");

/* The node's own IP and the pod gateway, v4-mapped (::ffff:a.b.c.d), set by user space (.bss). */
union ip_addr node_ip;
union ip_addr pod_gateway;

static __always_inline int auth_same_ip(const union ip_addr *a, const volatile union ip_addr *b)
{
	return a->ip6[0] == b->ip6[0] && a->ip6[1] == b->ip6[1] && a->ip6[2] == b->ip6[2] && a->ip6[3] == b->ip6[3];
}

/* The peer in the globals' form: IPv4 peers v4-mapped, IPv6 peers as they are. */
static __always_inline int auth_peer_exempt(const struct km_conn_view *v)
{
	union ip_addr peer;

	if (v->family == KM_AF_INET)
		ip_set_v4_mapped(&peer, v->remote.ip4);
	else
		ip_copy(&peer, &v->remote);
	return auth_same_ip(&peer, &node_ip) || auth_same_ip(&peer, &pod_gateway);
}

static __always_inline void auth_request(const struct km_conn_view *v)
{
	struct ringbuf_msg_type msg;

	if (auth_peer_exempt(v))
		return;
	__builtin_memset(&msg, 0, sizeof(msg));
	msg.type = report_is_ipv4(v) ? KM_REPORT_TYPE_IPV4 : KM_REPORT_TYPE_IPV6;
	report_tuple(v, 1, &msg.tuple);
	bpf_ringbuf_output(&km_auth_req, &msg, sizeof(msg), 0);
}

/* Deletes the verdict keyed by the inbound tuple of the connection (absent is fine). */
static __always_inline void auth_forget(const struct km_conn_view *v)
{
	struct bpf_sock_tuple key;

	report_tuple(v, 1, &key);
	bpf_map_delete_elem(&km_auth_res, &key);
}

#endif /* KM_AUTH_H */
