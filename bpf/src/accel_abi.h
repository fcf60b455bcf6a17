/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Same-node acceleration (kmesh-dataplane.md section 8): its byte layouts, constants and maps.
 * A component of its own: nothing here is shared with the routing data path (abi.h, maps.h), so
 * the pair ma_ops.o / ma_redirect.o loads and attaches alone. Both objects include this header
 * and get identical map definitions, shared by name at load.
 *
 * Byte order: sock_key addresses are in network order; its ports are u32 whose low 16 bits hold
 * the port in network order (like bpf_sock_addr.user_port). The filter's CIDRs and port ranges in
 * sock_param are host order. Every size and offset is pinned at the end of this file.
 */
#ifndef KM_ACCEL_ABI_H
#define KM_ACCEL_ABI_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MA_MAP_SOCK_MAX		196608	/* sock_ops_map, sock_proxy_map */
#define MA_FILTER_SLOTS		10	/* entries per filter list */
#define MA_DUMP_BYTES		166	/* dump settings at the end of sock_param (unused here) */
#define MA_AF_INET		2

/* TCP states of the kernel's enum (include/net/tcp_states.h), for STATE_CB's new state. */
#define MA_TCP_FIN_WAIT1	4
#define MA_TCP_CLOSE		7
#define MA_TCP_CLOSE_WAIT	8

#pragma pack(push, 1)

/* One end of a connection as seen from that end, plus its network namespace. */
struct sock_key {
	__u32 sip4;		/* local address, network order */
	__u32 dip4;		/* remote address, network order */
	__u32 sport;		/* low 16 bits: local port, network order */
	__u32 dport;		/* low 16 bits: remote port, network order */
	__u64 netns_cookie;	/* keeps equal four-tuples of two namespaces apart */
};

struct ma_cidr {
	__u32 ip;		/* host order */
	__u32 mask;		/* host order netmask: addr matches when (addr & mask) == (ip & mask) */
};

struct ma_port_range {
	__u32 begin;		/* host order, inclusive */
	__u32 end;		/* host order, inclusive */
};

struct ma_cidr_list {
	__u8 count;		/* entries in use; values above MA_FILTER_SLOTS read as MA_FILTER_SLOTS */
	struct ma_cidr entry[MA_FILTER_SLOTS];
};

struct ma_port_list {
	__u8 count;
	struct ma_port_range entry[MA_FILTER_SLOTS];
};

/* sock_param_map[0]: the filter, then the dump settings of the user-space tool. */
struct sock_param {
	struct ma_cidr_list accept_cidr;
	struct ma_cidr_list return_cidr;
	struct ma_port_list accept_port;
	struct ma_port_list return_port;
	__u8 dump[MA_DUMP_BYTES];
};

#pragma pack(pop)

/* Connected sockets by their own key; ma_redirect is attached to it as msg_verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, struct sock_key);
	__type(value, int);
	__uint(max_entries, MA_MAP_SOCK_MAX);
} sock_ops_map SEC(".maps");

/* An accelerated connection: each end's key -> the other end's key. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sock_key);
	__type(value, struct sock_key);
	__uint(max_entries, MA_MAP_SOCK_MAX);
} sock_proxy_map SEC(".maps");

/* The filter, written by user space (all zero: no list, everything admitted). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sock_param);
	__uint(max_entries, 1);
} sock_param_map SEC(".maps");

/* ---- layout pins ------------------------------------------------------------------------ */

#define MA_ASSERT_SIZE(t, n) _Static_assert(sizeof(t) == (n), #t " must be " #n " bytes")
#define MA_ASSERT_OFF(t, f, n) \
	_Static_assert(__builtin_offsetof(t, f) == (n), #t "." #f " must be at offset " #n)

MA_ASSERT_SIZE(struct sock_key, 24);
MA_ASSERT_OFF(struct sock_key, sip4, 0);
MA_ASSERT_OFF(struct sock_key, dip4, 4);
MA_ASSERT_OFF(struct sock_key, sport, 8);
MA_ASSERT_OFF(struct sock_key, dport, 12);
MA_ASSERT_OFF(struct sock_key, netns_cookie, 16);
MA_ASSERT_SIZE(struct ma_cidr_list, 81);
MA_ASSERT_SIZE(struct ma_port_list, 81);
MA_ASSERT_SIZE(struct sock_param, 490);
MA_ASSERT_OFF(struct sock_param, accept_cidr, 0);
MA_ASSERT_OFF(struct sock_param, return_cidr, 81);
MA_ASSERT_OFF(struct sock_param, accept_port, 162);
MA_ASSERT_OFF(struct sock_param, return_port, 243);
MA_ASSERT_OFF(struct sock_param, dump, 324);

#endif /* KM_ACCEL_ABI_H */
