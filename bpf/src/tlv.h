/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The original-destination TLV (section 4; interpretation item 11), big-endian:
 *   01 | length (4 B) | original address | original port (2 B, network order) | fe 00 00 00 00
 * AF_INET: 16 bytes, length 6, 4-byte address. AF_INET6: 28 bytes, length 18, 16-byte address
 * (v4-mapped stays mapped). The address and port come from the storage's sk_tuple, in the
 * socket's family view.
 */
#ifndef KM_TLV_H
#define KM_TLV_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"

/* Type and big-endian length: 5 bytes. */
static __always_inline void tlv_put_header(__u8 *p, __u8 payload_len)
{
	p[0] = KM_TLV_TYPE_ORIG_DST;
	p[1] = 0;
	p[2] = 0;
	p[3] = 0;
	p[4] = payload_len;
}

/* End marker: 5 bytes. */
static __always_inline void tlv_put_end(__u8 *p)
{
	p[0] = KM_TLV_TYPE_END;
	p[1] = 0;
	p[2] = 0;
	p[3] = 0;
	p[4] = 0;
}

/* Bytes of a network-order word or port, first byte first (they are already wire order). */
static __always_inline void tlv_put_word(__u8 *p, __u32 wire_word)
{
	const __u8 *b = (const __u8 *)&wire_word;

	p[0] = b[0];
	p[1] = b[1];
	p[2] = b[2];
	p[3] = b[3];
}

static __always_inline void tlv_put_port(__u8 *p, __u16 wire_port)
{
	const __u8 *b = (const __u8 *)&wire_port;

	p[0] = b[0];
	p[1] = b[1];
}

/* Pushes `len` bytes at the start of the message; the writable prefix, or NULL. */
static __always_inline __u8 *tlv_make_room(struct sk_msg_md *msg, __u32 len)
{
	void *data, *data_end;

	if (bpf_msg_push_data(msg, 0, len, 0))
		return NULL;
	data = (void *)(long)msg->data;
	data_end = (void *)(long)msg->data_end;
	if (data + len > data_end)
		return NULL;
	return data;
}

static __always_inline int tlv_push_inet(struct sk_msg_md *msg, const struct bpf_sock_tuple *orig)
{
	__u32 addr = orig->ipv4.daddr;
	__u16 port = orig->ipv4.dport;
	__u8 *p = tlv_make_room(msg, KM_TLV_LEN_INET);

	if (!p)
		return -1;
	tlv_put_header(p, KM_TLV_PAYLOAD_INET);
	tlv_put_word(p + 5, addr);
	tlv_put_port(p + 9, port);
	tlv_put_end(p + 11);
	return 0;
}

static __always_inline int tlv_push_inet6(struct sk_msg_md *msg, const struct bpf_sock_tuple *orig)
{
	__u32 a0 = orig->ipv6.daddr[0], a1 = orig->ipv6.daddr[1];
	__u32 a2 = orig->ipv6.daddr[2], a3 = orig->ipv6.daddr[3];
	__u16 port = orig->ipv6.dport;
	__u8 *p = tlv_make_room(msg, KM_TLV_LEN_INET6);

	if (!p)
		return -1;
	tlv_put_header(p, KM_TLV_PAYLOAD_INET6);
	tlv_put_word(p + 5, a0);
	tlv_put_word(p + 9, a1);
	tlv_put_word(p + 13, a2);
	tlv_put_word(p + 17, a3);
	tlv_put_port(p + 21, port);
	tlv_put_end(p + 23);
	return 0;
}

/* The TLV in the socket's family. */
static __always_inline int tlv_push(struct sk_msg_md *msg, __u32 family,
				    const struct bpf_sock_tuple *orig)
{
	if (family == KM_AF_INET)
		return tlv_push_inet(msg, orig);
	if (family == KM_AF_INET6)
		return tlv_push_inet6(msg, orig);
	return -1;
}

#endif /* KM_TLV_H */
