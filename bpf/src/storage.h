/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Socket storage (section 3.4, 3.8; interpretation items 3, 6, 10): created on demand with the
 * connect time, the original destination recorded once per socket (has_set_ip guards it),
 * via_waypoint sticky.
 */
#ifndef KM_STORAGE_H
#define KM_STORAGE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "maps.h"
#include "dest.h"

/* The socket's storage, or NULL; never creates it. */
static __always_inline struct sock_storage_data *storage_lookup(void *sk)
{
	return bpf_sk_storage_get(&km_sockstorage, sk, 0, 0);
}

/* The socket's storage, created (zeroed, with connect_ns) when missing; NULL on failure. */
static __always_inline struct sock_storage_data *storage_get_or_create(void *sk)
{
	struct sock_storage_data *s = storage_lookup(sk);

	if (s)
		return s;
	s = bpf_sk_storage_get(&km_sockstorage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s)
		s->connect_ns = bpf_ktime_get_ns();
	return s;
}

/*
 * Records the destination the application asked for, in the socket family's view of
 * sk_tuple (AF_INET: daddr @4, dport @10; AF_INET6: daddr @16, dport @34, v4-mapped kept),
 * once per socket.
 */
static __always_inline void storage_record_original(struct sock_storage_data *s,
						    const struct km_dest *d)
{
	if (s->has_set_ip)
		return;
	if (d->family == KM_AF_INET) {
		s->sk_tuple.ipv4.daddr = d->addr.ip4;
		s->sk_tuple.ipv4.dport = (__u16)d->port;
	} else {
		s->sk_tuple.ipv6.daddr[0] = d->addr.ip6[0];
		s->sk_tuple.ipv6.daddr[1] = d->addr.ip6[1];
		s->sk_tuple.ipv6.daddr[2] = d->addr.ip6[2];
		s->sk_tuple.ipv6.daddr[3] = d->addr.ip6[3];
		s->sk_tuple.ipv6.dport = (__u16)d->port;
	}
	s->has_set_ip = 1;
}

/* Set by every waypoint pass, never cleared. */
static __always_inline void storage_mark_waypoint(struct sock_storage_data *s)
{
	s->via_waypoint = 1;
}

static __always_inline int storage_via_waypoint(const struct sock_storage_data *s)
{
	return s->via_waypoint != 0;
}

static __always_inline int storage_has_encoded(const struct sock_storage_data *s)
{
	return s->has_encoded != 0;
}

static __always_inline void storage_mark_encoded(struct sock_storage_data *s)
{
	s->has_encoded = 1;
}

#endif /* KM_STORAGE_H */
