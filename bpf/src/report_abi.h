/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Connection reports and inbound authorization (kmesh-dataplane.md section 7): the records, the
 * ring buffers and hash they go to, and the globals user space sets through the objects'
 * global-data maps. Included by the sockops and cgroup_skb objects only. Every size and offset
 * of the document's tables is pinned at the end of this file.
 */
#ifndef KM_REPORT_ABI_H
#define KM_REPORT_ABI_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define KM_REPORT_TYPE_IPV4	0	/* also for v4-mapped addresses */
#define KM_REPORT_TYPE_IPV6	1
#define KM_REPORT_INBOUND	1
#define KM_REPORT_OUTBOUND	2
#define KM_REPORT_ESTABLISHED	1
#define KM_REPORT_CLOSE		7
#define KM_REPORT_PERIOD_NS	5000000000ull	/* a periodic report needs more than this since the last */
#define KM_TCP_PROTOCOL		6
#define KM_TCP_STATE_CLOSE	7		/* new state of STATE_CB */

#define KM_TCP_PROBE_RINGBUF_SIZE	(256 * 1024)
#define KM_AUTH_REQ_RINGBUF_SIZE	4096
#define KM_AUTH_RES_MAX			8192

/* The original destination in the record: the view follows `type`, ports in host order. */
union km_report_orig {
	struct {
		__u32 addr;
		__u16 port;
	} ipv4;
	struct {
		__u32 addr[4];
		__u16 port;
	} ipv6;
};

/* One report in km_tcp_probe (128 B). Tuple from client to server, ports host order. */
struct tcp_probe_info {
	__u32 type;
	struct bpf_sock_tuple tuple;
	union km_report_orig orig_dst;
	__u32 sent_bytes;
	__u32 received_bytes;
	__u32 conn_success;
	__u32 direction;
	__u32 state;
	__u64 duration;
	__u64 start_ns;
	__u64 last_report_ns;
	__u32 protocol;
	__u32 srtt_us;
	__u32 rtt_min;
	__u32 total_retrans;
	__u32 lost_out;
	__u32 padding;
};

/* One authorization request in km_auth_req (40 B); the tuple is also km_auth_res's key. */
struct ringbuf_msg_type {
	__u32 type;
	struct bpf_sock_tuple tuple;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, KM_TCP_PROBE_RINGBUF_SIZE);
} km_tcp_probe SEC(".maps");

/* Report gate, default on (.data); user space may clear it before or after load. */
volatile __u32 enable_monitoring = 1;

#define KM_ASSERT_SIZE_R(t, n) _Static_assert(sizeof(t) == (n), #t " must be " #n " bytes")
#define KM_ASSERT_OFF_R(t, f, n) \
	_Static_assert(__builtin_offsetof(t, f) == (n), #t "." #f " must be at offset " #n)

KM_ASSERT_SIZE_R(struct tcp_probe_info, 128);
KM_ASSERT_OFF_R(struct tcp_probe_info, tuple, 4);
KM_ASSERT_OFF_R(struct tcp_probe_info, tuple.ipv4.saddr, 4);
KM_ASSERT_OFF_R(struct tcp_probe_info, tuple.ipv4.daddr, 8);
KM_ASSERT_OFF_R(struct tcp_probe_info, tuple.ipv4.sport, 12);
KM_ASSERT_OFF_R(struct tcp_probe_info, tuple.ipv4.dport, 14);
KM_ASSERT_OFF_R(struct tcp_probe_info, tuple.ipv6.daddr, 20);
KM_ASSERT_OFF_R(struct tcp_probe_info, tuple.ipv6.sport, 36);
KM_ASSERT_OFF_R(struct tcp_probe_info, tuple.ipv6.dport, 38);
KM_ASSERT_OFF_R(struct tcp_probe_info, orig_dst.ipv4.addr, 40);
KM_ASSERT_OFF_R(struct tcp_probe_info, orig_dst.ipv4.port, 44);
KM_ASSERT_OFF_R(struct tcp_probe_info, orig_dst.ipv6.port, 56);
KM_ASSERT_OFF_R(struct tcp_probe_info, sent_bytes, 60);
KM_ASSERT_OFF_R(struct tcp_probe_info, received_bytes, 64);
KM_ASSERT_OFF_R(struct tcp_probe_info, conn_success, 68);
KM_ASSERT_OFF_R(struct tcp_probe_info, direction, 72);
KM_ASSERT_OFF_R(struct tcp_probe_info, state, 76);
KM_ASSERT_OFF_R(struct tcp_probe_info, duration, 80);
KM_ASSERT_OFF_R(struct tcp_probe_info, start_ns, 88);
KM_ASSERT_OFF_R(struct tcp_probe_info, last_report_ns, 96);
KM_ASSERT_OFF_R(struct tcp_probe_info, protocol, 104);
KM_ASSERT_OFF_R(struct tcp_probe_info, srtt_us, 108);
KM_ASSERT_OFF_R(struct tcp_probe_info, lost_out, 120);
KM_ASSERT_OFF_R(struct tcp_probe_info, padding, 124);
KM_ASSERT_SIZE_R(struct ringbuf_msg_type, 40);
KM_ASSERT_OFF_R(struct ringbuf_msg_type, tuple, 4);

#endif /* KM_REPORT_ABI_H */
