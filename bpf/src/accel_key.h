/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sock_key of the acceleration maps, built from a sockops or sk_msg context (section 8). Both
 * contexts give remote_port in network order loaded into the upper 16 bits (little-endian host)
 * and local_port in host order; the key holds both in network order in the low 16 bits.
 * The namespace cookie goes into every key (Normative isolation).
 */
#ifndef KM_ACCEL_KEY_H
#define KM_ACCEL_KEY_H

#include <bpf/bpf_endian.h>
#include "accel_abi.h"

static __always_inline void ma_key_set(struct sock_key *k, __u32 local_ip4, __u32 remote_ip4,
				       __u32 local_port, __u32 remote_port, __u64 cookie)
{
	k->sip4 = local_ip4;
	k->dip4 = remote_ip4;
	k->sport = bpf_htons((__u16)local_port);
	k->dport = remote_port >> 16;
	k->netns_cookie = cookie;
}

/* The other end's key of the same connection: addresses and ports swapped, same namespace. */
static __always_inline void ma_key_reverse(const struct sock_key *k, struct sock_key *r)
{
	r->sip4 = k->dip4;
	r->dip4 = k->sip4;
	r->sport = k->dport;
	r->dport = k->sport;
	r->netns_cookie = k->netns_cookie;
}

#endif /* KM_ACCEL_KEY_H */
