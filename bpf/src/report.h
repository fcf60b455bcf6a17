/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Building and sending a connection report (section 7). A connection is seen through a small
 * view (family, local and remote address, host-order ports) that both the sockops and the
 * cgroup_skb programs can fill; the record is assembled on the stack from all zeroes and copied
 * whole into km_tcp_probe (bpf_ringbuf_output), so every byte of it is written by the program.
 * A full ring buffer drops the record.
 */
#ifndef KM_REPORT_H
#define KM_REPORT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi.h"
#include "addr.h"
#include "report_abi.h"

struct km_conn_view {
	__u32 family;
	union ip_addr local;	/* AF_INET: IPv4 form; AF_INET6: the 16 bytes */
	union ip_addr remote;
	__u16 local_port;	/* host order */
	__u16 remote_port;	/* host order */
};

/* IPv4 view: an AF_INET socket, or an AF_INET6 socket whose two ends are v4-mapped. */
static __always_inline int report_is_ipv4(const struct km_conn_view *v)
{
	return v->family == KM_AF_INET || (ip_is_v4_mapped(&v->local) && ip_is_v4_mapped(&v->remote));
}

static __always_inline __u32 report_ip4(const struct km_conn_view *v, const union ip_addr *a)
{
	return v->family == KM_AF_INET ? a->ip4 : a->ip6[3];
}

/* The connection's tuple from client to server into t (zeroed first). */
static __always_inline void report_tuple(const struct km_conn_view *v, int inbound, struct bpf_sock_tuple *t)
{
	const union ip_addr *client = inbound ? &v->remote : &v->local;
	const union ip_addr *server = inbound ? &v->local : &v->remote;
	__u16 cport = inbound ? v->remote_port : v->local_port;
	__u16 sport = inbound ? v->local_port : v->remote_port;

	__builtin_memset(t, 0, sizeof(*t));
	if (report_is_ipv4(v)) {
		t->ipv4.saddr = report_ip4(v, client);
		t->ipv4.daddr = report_ip4(v, server);
		t->ipv4.sport = cport;
		t->ipv4.dport = sport;
	} else {
		t->ipv6.saddr[0] = client->ip6[0];
		t->ipv6.saddr[1] = client->ip6[1];
		t->ipv6.saddr[2] = client->ip6[2];
		t->ipv6.saddr[3] = client->ip6[3];
		t->ipv6.daddr[0] = server->ip6[0];
		t->ipv6.daddr[1] = server->ip6[1];
		t->ipv6.daddr[2] = server->ip6[2];
		t->ipv6.daddr[3] = server->ip6[3];
		t->ipv6.sport = cport;
		t->ipv6.dport = sport;
	}
}

/* The original destination connect4/6 recorded, in the record's view (v4-mapped folded). */
static __always_inline void report_original(const struct km_conn_view *v, const struct sock_storage_data *s,
					    struct tcp_probe_info *info)
{
	union ip_addr orig;

	if (!s->has_set_ip)
		return;
	if (v->family == KM_AF_INET) {
		info->orig_dst.ipv4.addr = s->sk_tuple.ipv4.daddr;
		info->orig_dst.ipv4.port = bpf_ntohs(s->sk_tuple.ipv4.dport);
		return;
	}
	orig.ip6[0] = s->sk_tuple.ipv6.daddr[0];
	orig.ip6[1] = s->sk_tuple.ipv6.daddr[1];
	orig.ip6[2] = s->sk_tuple.ipv6.daddr[2];
	orig.ip6[3] = s->sk_tuple.ipv6.daddr[3];
	if (report_is_ipv4(v) && ip_is_v4_mapped(&orig)) {
		info->orig_dst.ipv4.addr = orig.ip6[3];
		info->orig_dst.ipv4.port = bpf_ntohs(s->sk_tuple.ipv6.dport);
		return;
	}
	if (report_is_ipv4(v))
		return; /* an IPv6 original cannot be written in an IPv4 view */
	info->orig_dst.ipv6.addr[0] = orig.ip6[0];
	info->orig_dst.ipv6.addr[1] = orig.ip6[1];
	info->orig_dst.ipv6.addr[2] = orig.ip6[2];
	info->orig_dst.ipv6.addr[3] = orig.ip6[3];
	info->orig_dst.ipv6.port = bpf_ntohs(s->sk_tuple.ipv6.dport);
}

/*
 * Sends one report of `state` for the connection and stamps last_report_ns. `sk` is the full
 * socket (for the TCP metrics); the direction comes from the storage.
 */
static __always_inline void report_send(struct bpf_sock *sk, const struct km_conn_view *v,
					struct sock_storage_data *s, __u32 state)
{
	struct tcp_probe_info info;
	struct bpf_tcp_sock *tp;
	__u64 now = bpf_ktime_get_ns();

	__builtin_memset(&info, 0, sizeof(info));
	info.type = report_is_ipv4(v) ? KM_REPORT_TYPE_IPV4 : KM_REPORT_TYPE_IPV6;
	report_tuple(v, s->direction == KM_REPORT_INBOUND, &info.tuple);
	report_original(v, s, &info);
	tp = bpf_tcp_sock(sk);
	if (tp) {
		info.sent_bytes = (__u32)tp->bytes_acked;
		info.received_bytes = (__u32)tp->bytes_received;
		info.srtt_us = tp->srtt_us;
		info.rtt_min = tp->rtt_min;
		info.total_retrans = tp->total_retrans;
		info.lost_out = tp->lost_out;
	}
	info.conn_success = s->connect_success;
	info.direction = s->direction;
	info.state = state;
	info.duration = now - s->connect_ns;
	info.start_ns = s->connect_ns;
	info.last_report_ns = now;
	info.protocol = KM_TCP_PROTOCOL;
	s->last_report_ns = now;
	bpf_ringbuf_output(&km_tcp_probe, &info, sizeof(info), 0);
}

/* Reported as established before (a close or periodic report may follow). */
static __always_inline int report_was_established(const struct sock_storage_data *s)
{
	return s->last_report_ns != 0;
}

#endif /* KM_REPORT_H */
