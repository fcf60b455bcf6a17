// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup_skb ingress and egress (kmesh-dataplane.md section 7): on any packet of a managed TCP
 * socket that was reported as established, a periodic ESTABLISHED report when both gates are on
 * and more than 5 s passed since the last report. Always 1 (the packet goes on).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi.h"
#include "addr.h"
#include "maps.h"
#include "enrol.h"
#include "storage.h"
#include "report.h"

/* Periodic reports, default off (.bss); user space sets it before or after load. */
volatile __u32 enable_periodic_report = 0;

/*
 * The socket's addresses and ports, every field read once, unconditionally (the barrier keeps the
 * compiler from merging the loads into one through a computed socket pointer, which the verifier
 * rejects).
 */
static __always_inline int skb_view(struct bpf_sock *sk, struct km_conn_view *v)
{
	__u32 family = sk->family;
	__u32 src4 = sk->src_ip4, dst4 = sk->dst_ip4;
	__u32 s0 = sk->src_ip6[0], s1 = sk->src_ip6[1], s2 = sk->src_ip6[2], s3 = sk->src_ip6[3];
	__u32 d0 = sk->dst_ip6[0], d1 = sk->dst_ip6[1], d2 = sk->dst_ip6[2], d3 = sk->dst_ip6[3];
	__u32 src_port = sk->src_port;
	__u16 dst_port = sk->dst_port;

	KM_CTX_READ_BARRIER();
	__builtin_memset(v, 0, sizeof(*v));
	v->family = family;
	if (family == KM_AF_INET) {
		ip_set_ipv4(&v->local, src4);
		ip_set_ipv4(&v->remote, dst4);
	} else if (family == KM_AF_INET6) {
		v->local.ip6[0] = s0;
		v->local.ip6[1] = s1;
		v->local.ip6[2] = s2;
		v->local.ip6[3] = s3;
		v->remote.ip6[0] = d0;
		v->remote.ip6[1] = d1;
		v->remote.ip6[2] = d2;
		v->remote.ip6[3] = d3;
	} else {
		return 0;
	}
	v->local_port = (__u16)src_port;
	v->remote_port = bpf_ntohs(dst_port);
	return 1;
}

static __always_inline int skb_periodic(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct sock_storage_data *s;
	struct km_conn_view v;
	union ip_addr local;

	if (!enable_monitoring || !enable_periodic_report || !sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != KM_TCP_PROTOCOL)
		return 1;
	if (!skb_view(sk, &v))
		return 1;
	if (v.family == KM_AF_INET)
		ip_copy(&local, &v.local);
	else
		ip_fold_v4_mapped(&local, &v.local);
	if (!ip_enrolled(&local))
		return 1;
	s = storage_lookup(sk);
	if (!s || !report_was_established(s))
		return 1;
	if (bpf_ktime_get_ns() - s->last_report_ns <= KM_REPORT_PERIOD_NS)
		return 1;
	report_send(sk, &v, s, KM_REPORT_ESTABLISHED);
	return 1;
}

SEC("cgroup_skb/ingress")
int cgroup_skb_ingress_prog(struct __sk_buff *skb)
{
	return skb_periodic(skb);
}

SEC("cgroup_skb/egress")
int cgroup_skb_egress_prog(struct __sk_buff *skb)
{
	return skb_periodic(skb);
}

char _license[] SEC("license") = "GPL";
