/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ip_addr helpers (docs/interpretation.md items 1, 2, 7, 9). All words are in wire order, so
 * the tests below compare against byte-order-converted constants.
 */
#ifndef KM_ADDR_H
#define KM_ADDR_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi.h"

/* Word 2 of a v4-mapped IPv6 address ::ffff:a.b.c.d. */
#define KM_V4_MAPPED_WORD2 bpf_htonl(0x0000ffffu)

/* An ip_addr is IPv4 when bytes 4..15 are zero (all-zero is 0.0.0.0). */
static __always_inline int ip_is_ipv4_form(const union ip_addr *a)
{
	return (a->ip6[1] | a->ip6[2] | a->ip6[3]) == 0;
}

/* All 16 bytes zero. */
static __always_inline int ip_is_all_zero(const union ip_addr *a)
{
	return (a->ip6[0] | a->ip6[1] | a->ip6[2] | a->ip6[3]) == 0;
}

/* ::ffff:a.b.c.d (socket view of 16 bytes). */
static __always_inline int ip_is_v4_mapped(const union ip_addr *a)
{
	return a->ip6[0] == 0 && a->ip6[1] == 0 && a->ip6[2] == KM_V4_MAPPED_WORD2;
}

/* The ip_addr of an IPv4 address: bytes 0..3, rest zero. */
static __always_inline void ip_set_ipv4(union ip_addr *out, __u32 ip4)
{
	out->ip6[0] = ip4;
	out->ip6[1] = 0;
	out->ip6[2] = 0;
	out->ip6[3] = 0;
}

static __always_inline void ip_copy(union ip_addr *out, const union ip_addr *in)
{
	out->ip6[0] = in->ip6[0];
	out->ip6[1] = in->ip6[1];
	out->ip6[2] = in->ip6[2];
	out->ip6[3] = in->ip6[3];
}

/* Map key of a socket-view IPv6 address: a v4-mapped address folds to its plain IPv4 key. */
static __always_inline void ip_fold_v4_mapped(union ip_addr *out, const union ip_addr *in)
{
	if (ip_is_v4_mapped(in))
		ip_set_ipv4(out, in->ip6[3]);
	else
		ip_copy(out, in);
}

/* Socket view (AF_INET6) of a stored IPv4-form address: ::ffff:a.b.c.d. */
static __always_inline void ip_set_v4_mapped(union ip_addr *out, __u32 ip4)
{
	out->ip6[0] = 0;
	out->ip6[1] = 0;
	out->ip6[2] = KM_V4_MAPPED_WORD2;
	out->ip6[3] = ip4;
}

#endif /* KM_ADDR_H */
