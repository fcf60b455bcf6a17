/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The byte-level ABI of the data path: map keys and values, storage, constants.
 * Source: kmesh-dataplane.md, section 2. Every size and offset the document lists is pinned
 * by a _Static_assert at the end of this file, so a layout change cannot compile.
 *
 * Byte order: addresses are in wire order; ports in maps are u32 whose low 16 bits hold the
 * port in network order (exactly like bpf_sock_addr.user_port); ids, uids, prio, counts and
 * lb_policy are host-order u32.
 */
#ifndef KM_ABI_H
#define KM_ABI_H

#include <linux/types.h>
#include <linux/bpf.h>

/* ---- constants ------------------------------------------------------------------------ */

#define KM_PRIO_GROUPS		7	/* priority groups 0 (best) .. 6 (worst) */
#define KM_PORT_SLOTS		10	/* service_port[] / target_port[] slots */
#define KM_MAX_SERVICES		10	/* services per backend */

#define KM_LB_RANDOM		0
#define KM_LB_STRICT		1
#define KM_LB_FAILOVER		2

#define KM_DNS_PROXY_UID	0	/* backend uid reserved for the DNS proxy */
#define KM_DNS_PORT		53	/* host order */

/* Enrolment control connects: 0.0.0.2 / ::2, port 929 enrols, 930 withdraws (host order). */
#define KM_CONTROL_IP4_HOST	0x00000002u
#define KM_CONTROL_PORT_ENROL	929
#define KM_CONTROL_PORT_WITHDRAW 930

/* Tail-call slots: each connect program calls itself through its own prog array. */
#define KM_TAIL_SLOT_CONNECT4	0	/* km_cgr_tailcall[0] */
#define KM_TAIL_SLOT_CONNECT6	1	/* km_cgr_tail6[1] */
#define KM_TAIL_ARRAY_SIZE	8

#define KM_MAP_FRONTEND_MAX	105000
#define KM_MAP_SERVICE_MAX	5000
#define KM_MAP_ENDPOINT_MAX	105000
#define KM_MAP_BACKEND_MAX	100000
#define KM_MAP_MANAGE_MAX	8192
#define KM_MAP_SOCKHASH_MAX	8192

/* Original-destination TLV (section 4). */
#define KM_TLV_TYPE_ORIG_DST	0x01
#define KM_TLV_TYPE_END		0xfe
#define KM_TLV_LEN_INET		16	/* 1 + 4 + 4 + 2 + 5 */
#define KM_TLV_LEN_INET6	28	/* 1 + 4 + 16 + 2 + 5 */
#define KM_TLV_PAYLOAD_INET	6	/* address + port */
#define KM_TLV_PAYLOAD_INET6	18

/* Socket families (values of <sys/socket.h>, which does not build for the BPF target). */
#define KM_AF_INET		2
#define KM_AF_INET6		10

/* Values of a cgroup program: every path allows the connect. */
#define KM_CGROUP_ALLOW		1

/* ---- structs ---------------------------------------------------------------------------- */

/* 16 bytes; IPv4 in bytes 0..3 with bytes 4..15 zero (docs/interpretation.md item 1). */
union ip_addr {
	__u32 ip4;
	__u32 ip6[4];
};

/*
 * The routing maps' keys and values are packed. The aligned(4) attribute only tells the
 * compiler that the map memory holding them is 4-byte aligned (map values always are), so
 * that u32 fields are read with one load; it changes neither size nor offsets (asserted below).
 */
#pragma pack(push, 1)

struct frontend_key {
	union ip_addr addr;		/* service VIP or pod IP */
} __attribute__((aligned(4)));

struct frontend_value {
	__u32 upstream_id;		/* service id, or backend uid for direct pod access */
} __attribute__((aligned(4)));

struct service_key {
	__u32 service_id;
} __attribute__((aligned(4)));

struct service_value {
	__u32 prio_endpoint_count[KM_PRIO_GROUPS];
	__u32 lb_policy;
	__u32 service_port[KM_PORT_SLOTS];
	__u32 target_port[KM_PORT_SLOTS];
	union ip_addr wp_addr;
	__u32 waypoint_port;
} __attribute__((aligned(4)));

struct endpoint_key {
	__u32 service_id;
	__u32 prio;
	__u32 backend_index;		/* 1-based */
} __attribute__((aligned(4)));

struct endpoint_value {
	__u32 backend_uid;
} __attribute__((aligned(4)));

struct backend_key {
	__u32 backend_uid;
} __attribute__((aligned(4)));

struct backend_value {
	union ip_addr addr;
	__u32 service_count;
	__u32 service[KM_MAX_SERVICES];
	union ip_addr wp_addr;
	__u32 waypoint_port;
} __attribute__((aligned(4)));

#pragma pack(pop)

/* km_manage key: a netns cookie (bytes 8..15 zero) or a pod IP. */
union manager_key {
	__u64 netns_cookie;
	union ip_addr addr;
};

/*
 * km_sockstorage value. Natural layout (not packed). The document's bool fields are kept as
 * u8 and tested for non-zero, so every raw byte value reads the same way everywhere.
 */
struct sock_storage_data {
	__u64 connect_ns;
	__u64 last_report_ns;
	__u8 direction;
	__u8 connect_success;
	__u8 via_waypoint;
	__u8 has_encoded;
	__u8 has_set_ip;
	struct bpf_sock_tuple sk_tuple;	/* original destination: daddr/dport of the family's view */
};

/* ---- layout pins ------------------------------------------------------------------------ */

#define KM_ASSERT_SIZE(t, n) _Static_assert(sizeof(t) == (n), #t " must be " #n " bytes")
#define KM_ASSERT_OFF(t, f, n) \
	_Static_assert(__builtin_offsetof(t, f) == (n), #t "." #f " must be at offset " #n)

KM_ASSERT_SIZE(union ip_addr, 16);
KM_ASSERT_SIZE(struct frontend_key, 16);
KM_ASSERT_SIZE(struct frontend_value, 4);
KM_ASSERT_SIZE(struct service_key, 4);
KM_ASSERT_SIZE(struct service_value, 132);
KM_ASSERT_OFF(struct service_value, prio_endpoint_count, 0);
KM_ASSERT_OFF(struct service_value, lb_policy, 28);
KM_ASSERT_OFF(struct service_value, service_port, 32);
KM_ASSERT_OFF(struct service_value, target_port, 72);
KM_ASSERT_OFF(struct service_value, wp_addr, 112);
KM_ASSERT_OFF(struct service_value, waypoint_port, 128);
KM_ASSERT_SIZE(struct endpoint_key, 12);
KM_ASSERT_OFF(struct endpoint_key, service_id, 0);
KM_ASSERT_OFF(struct endpoint_key, prio, 4);
KM_ASSERT_OFF(struct endpoint_key, backend_index, 8);
KM_ASSERT_SIZE(struct endpoint_value, 4);
KM_ASSERT_SIZE(struct backend_key, 4);
KM_ASSERT_SIZE(struct backend_value, 80);
KM_ASSERT_OFF(struct backend_value, addr, 0);
KM_ASSERT_OFF(struct backend_value, service_count, 16);
KM_ASSERT_OFF(struct backend_value, service, 20);
KM_ASSERT_OFF(struct backend_value, wp_addr, 60);
KM_ASSERT_OFF(struct backend_value, waypoint_port, 76);
KM_ASSERT_SIZE(union manager_key, 16);
KM_ASSERT_SIZE(struct bpf_sock_tuple, 36);
KM_ASSERT_OFF(struct bpf_sock_tuple, ipv4.daddr, 4);
KM_ASSERT_OFF(struct bpf_sock_tuple, ipv4.dport, 10);
KM_ASSERT_OFF(struct bpf_sock_tuple, ipv6.daddr, 16);
KM_ASSERT_OFF(struct bpf_sock_tuple, ipv6.dport, 34);
KM_ASSERT_SIZE(struct sock_storage_data, 64);
KM_ASSERT_OFF(struct sock_storage_data, connect_ns, 0);
KM_ASSERT_OFF(struct sock_storage_data, last_report_ns, 8);
KM_ASSERT_OFF(struct sock_storage_data, direction, 16);
KM_ASSERT_OFF(struct sock_storage_data, connect_success, 17);
KM_ASSERT_OFF(struct sock_storage_data, via_waypoint, 18);
KM_ASSERT_OFF(struct sock_storage_data, has_encoded, 19);
KM_ASSERT_OFF(struct sock_storage_data, has_set_ip, 20);
KM_ASSERT_OFF(struct sock_storage_data, sk_tuple, 24);

#endif /* KM_ABI_H */
