/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The DNS server a socket's most recent redirected query addressed (section 6, Normative reply
 * source), kept in a socket-storage map of our own, km_dns_server: the ABI's km_sockstorage has
 * room for one destination, the once-only original, and the reply's source must name the MOST
 * RECENT server. The entry also records the proxy that query went to, so that only a datagram from
 * that proxy (port 53) is restored. Written by the redirecting paths (sendmsg4, the connect4 DNS
 * branch); read, never created, by the receive hooks.
 */
#ifndef KM_DNS_SERVER_H
#define KM_DNS_SERVER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"

/* The IPv4 server the most recent redirected query addressed, and the proxy it went to. */
struct dns_server_data {
	__u32 server_ip4;	/* wire order */
	__u32 proxy_ip4;	/* wire order */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__type(key, int);
	__type(value, struct dns_server_data);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_dns_server SEC(".maps");

/* The socket's entry, created (zeroed) when missing; NULL when it cannot be. */
static __always_inline struct dns_server_data *dns_server_get(void *sk)
{
	return bpf_sk_storage_get(&km_dns_server, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
}

/* Records a redirected query in the socket's entry: server (as the application gave it) and proxy. */
static __always_inline void dns_server_set(struct dns_server_data *s, __u32 server_ip4, __u32 proxy_ip4)
{
	s->server_ip4 = server_ip4;
	s->proxy_ip4 = proxy_ip4;
}

/* Remembers a redirected query, when the entry can be had. */
static __always_inline void dns_server_note(void *sk, __u32 server_ip4, __u32 proxy_ip4)
{
	struct dns_server_data *s = dns_server_get(sk);

	if (s)
		dns_server_set(s, server_ip4, proxy_ip4);
}

/* The socket's entry, or NULL; never creates one (receiving creates nothing). */
static __always_inline struct dns_server_data *dns_server_lookup(void *sk)
{
	return bpf_sk_storage_get(&km_dns_server, sk, 0, 0);
}

#endif /* KM_DNS_SERVER_H */
