/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The acceleration filter (section 8), applied to a connection's four addresses (both ends' local
 * and remote) and four ports, all host order here:
 *  - an empty list constrains nothing;
 *  - a return CIDR that matches any address, or a return range that holds any port, rejects;
 *  - with accept CIDRs, every address must lie in one of them (each address its own CIDR);
 *  - with accept ranges, one port lying in one of them suffices.
 * Loops are bounded by MA_FILTER_SLOTS; counts above it read as MA_FILTER_SLOTS.
 */
#ifndef KM_ACCEL_FILTER_H
#define KM_ACCEL_FILTER_H

#include "accel_abi.h"

#define MA_FOUR 4

static __always_inline __u32 ma_count(__u8 count)
{
	return count > MA_FILTER_SLOTS ? MA_FILTER_SLOTS : count;
}

/*
 * Which of the four values lie in the list: bit j set when value j matches an entry. These are
 * global (not inlined) functions, so the verifier checks each once with unknown arguments
 * instead of once per path through the caller (inlined, the four lists times four values times
 * ten entries exceed its one million instructions).
 */
__attribute__((noinline)) int ma_cidr_bits(const struct ma_cidr_list *l, __u32 a0, __u32 a1, __u32 a2, __u32 a3)
{
	__u32 n, bits = 0;

	if (!l)
		return 0;
	n = ma_count(l->count);
	for (__u32 i = 0; i < MA_FILTER_SLOTS; i++) {
		__u32 ip, mask;

		if (i >= n)
			break;
		ip = l->entry[i].ip;
		mask = l->entry[i].mask;
		if (((a0 ^ ip) & mask) == 0)
			bits |= 1;
		if (((a1 ^ ip) & mask) == 0)
			bits |= 2;
		if (((a2 ^ ip) & mask) == 0)
			bits |= 4;
		if (((a3 ^ ip) & mask) == 0)
			bits |= 8;
	}
	return bits;
}

__attribute__((noinline)) int ma_port_bits(const struct ma_port_list *l, __u32 p0, __u32 p1, __u32 p2, __u32 p3)
{
	__u32 n, bits = 0;

	if (!l)
		return 0;
	n = ma_count(l->count);
	for (__u32 i = 0; i < MA_FILTER_SLOTS; i++) {
		__u32 begin, end;

		if (i >= n)
			break;
		begin = l->entry[i].begin;
		end = l->entry[i].end;
		if (begin <= p0 && p0 <= end)
			bits |= 1;
		if (begin <= p1 && p1 <= end)
			bits |= 2;
		if (begin <= p2 && p2 <= end)
			bits |= 4;
		if (begin <= p3 && p3 <= end)
			bits |= 8;
	}
	return bits;
}

#define MA_ALL_FOUR 0xf

/* 1 when the connection may be accelerated. addr[] and port[] are host order. */
static __always_inline int ma_filter_admits(const struct sock_param *p, const __u32 addr[MA_FOUR],
					    const __u32 port[MA_FOUR])
{
	int accept_addr, accept_port;

	if (ma_cidr_bits(&p->return_cidr, addr[0], addr[1], addr[2], addr[3]) != 0)
		return 0;
	if (ma_port_bits(&p->return_port, port[0], port[1], port[2], port[3]) != 0)
		return 0;
	accept_addr = ma_cidr_bits(&p->accept_cidr, addr[0], addr[1], addr[2], addr[3]);
	accept_port = ma_port_bits(&p->accept_port, port[0], port[1], port[2], port[3]);
	if (ma_count(p->accept_cidr.count) && accept_addr != MA_ALL_FOUR)
		return 0;
	if (ma_count(p->accept_port.count) && accept_port == 0)
		return 0;
	return 1;
}

#endif /* KM_ACCEL_FILTER_H */
