// SPDX-License-Identifier: GPL-2.0
/*
 * sockops (kmesh-dataplane.md section 4; interpretation item 9). No callback flags are needed:
 * the kernel runs TCP_CONNECT_CB and ACTIVE_ESTABLISHED_CB for every sockops program.
 *  - TCP_CONNECT_CB of a control connect (remote 0.0.0.2 / ::2, port 929 / 930): record or
 *    remove the local IP in km_manage (v4-mapped local folded to its IPv4 key).
 *  - ACTIVE_ESTABLISHED_CB: an enrolled local IP and a via_waypoint storage put the socket into
 *    km_socket under its forward tuple, so that sendmsg_prog sees its messages.
 *  - ACTIVE/PASSIVE_ESTABLISHED_CB of a socket with an enrolled local IP, and the STATE_CB it
 *    then asks for: the connection reports and authorization of section 7 (sockops_report.h).
 * Context byte order (uapi): addresses network order; remote_port network order, and the
 * kernel loads it shifted into the upper 16 bits on little-endian hosts; local_port host order.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi.h"
#include "addr.h"
#include "maps.h"
#include "enrol.h"
#include "storage.h"
#include "dest.h"
#include "sockops_report.h"

/*
 * The context fields the program uses, read once, unconditionally, as u32 loads. The barrier
 * keeps the compiler from sinking the loads into the family branches, where it would merge
 * them into one load through a computed context pointer (the verifier rejects that).
 */
struct sockops_view {
	__u32 family;
	union ip_addr local;	/* AF_INET: IPv4 form; AF_INET6: the 16 bytes */
	union ip_addr remote;
	__u16 local_port;	/* network order */
	__u16 remote_port;	/* network order */
};

static __always_inline void sockops_read(struct bpf_sock_ops *skops, struct sockops_view *v)
{
	__u32 family = skops->family;
	__u32 local4 = skops->local_ip4, remote4 = skops->remote_ip4;
	__u32 l0 = skops->local_ip6[0], l1 = skops->local_ip6[1];
	__u32 l2 = skops->local_ip6[2], l3 = skops->local_ip6[3];
	__u32 r0 = skops->remote_ip6[0], r1 = skops->remote_ip6[1];
	__u32 r2 = skops->remote_ip6[2], r3 = skops->remote_ip6[3];
	/* remote_port: network order, loaded by the kernel into the upper 16 bits. */
	__u32 remote_port = skops->remote_port;
	/* local_port: host order. */
	__u32 local_port = skops->local_port;

	KM_CTX_READ_BARRIER();
	v->family = family;
	if (family == KM_AF_INET) {
		ip_set_ipv4(&v->local, local4);
		ip_set_ipv4(&v->remote, remote4);
	} else {
		v->local.ip6[0] = l0;
		v->local.ip6[1] = l1;
		v->local.ip6[2] = l2;
		v->local.ip6[3] = l3;
		v->remote.ip6[0] = r0;
		v->remote.ip6[1] = r1;
		v->remote.ip6[2] = r2;
		v->remote.ip6[3] = r3;
	}
	v->remote_port = (__u16)(remote_port >> 16);
	v->local_port = bpf_htons((__u16)local_port);
}

static __always_inline int family_supported(__u32 family)
{
	return family == KM_AF_INET || family == KM_AF_INET6;
}

/* The local IP as a km_manage key: IPv4, or IPv6 with a v4-mapped address folded. */
static __always_inline void sockops_local_key(const struct sockops_view *v, union ip_addr *key)
{
	if (v->family == KM_AF_INET)
		ip_copy(key, &v->local);
	else
		ip_fold_v4_mapped(key, &v->local);
}

/* The view the report paths use: the same addresses, ports in host order. */
static __always_inline void sockops_conn_view(const struct sockops_view *v, struct km_conn_view *c)
{
	c->family = v->family;
	ip_copy(&c->local, &v->local);
	ip_copy(&c->remote, &v->remote);
	c->local_port = bpf_ntohs(v->local_port);
	c->remote_port = bpf_ntohs(v->remote_port);
}

/*
 * Connection reports and authorization (section 7): an inbound connection of a managed socket,
 * or the close of a socket that asked for STATE_CB, which only a managed one does once it is
 * established. Its close is not gated by the local IP being enrolled still: the pod may have
 * withdrawn meanwhile, and the verdict must not outlive the connection nor the CLOSE report go
 * missing (its one condition is the established report).
 */
static __always_inline void on_report_op(struct bpf_sock_ops *skops, int op)
{
	struct sockops_view v;
	struct km_conn_view c;
	union ip_addr local;

	sockops_read(skops, &v);
	if (!family_supported(v.family))
		return;
	sockops_conn_view(&v, &c);
	if (op == BPF_SOCK_OPS_STATE_CB) {
		sockops_report_state(skops, &c);
		return;
	}
	sockops_local_key(&v, &local);
	if (!ip_enrolled(&local))
		return;
	sockops_report_established(skops, &c, 1);
}

/* Control action of the connection's remote end: exactly 0.0.0.2 or ::2. */
static __always_inline int sockops_control_action(const struct sockops_view *v)
{
	int is_control;

	if (v->family == KM_AF_INET)
		is_control = control_addr4(v->remote.ip4);
	else
		is_control = control_addr6(&v->remote);
	if (!is_control)
		return KM_CONTROL_NONE;
	return control_action_of_port(v->remote_port);
}

static __always_inline void on_tcp_connect(struct bpf_sock_ops *skops)
{
	struct sockops_view v;
	union ip_addr local;
	int action;

	sockops_read(skops, &v);
	if (!family_supported(v.family))
		return;
	action = sockops_control_action(&v);
	if (action == KM_CONTROL_NONE)
		return;
	sockops_local_key(&v, &local);
	manage_local_ip(&local, action);
}

/* Forward tuple: local as saddr/sport, remote as daddr/dport, network order. */
static __always_inline void sockops_forward_tuple(const struct sockops_view *v,
						  struct bpf_sock_tuple *tuple)
{
	__builtin_memset(tuple, 0, sizeof(*tuple));
	if (v->family == KM_AF_INET) {
		tuple->ipv4.saddr = v->local.ip4;
		tuple->ipv4.daddr = v->remote.ip4;
		tuple->ipv4.sport = v->local_port;
		tuple->ipv4.dport = v->remote_port;
	} else {
		tuple->ipv6.saddr[0] = v->local.ip6[0];
		tuple->ipv6.saddr[1] = v->local.ip6[1];
		tuple->ipv6.saddr[2] = v->local.ip6[2];
		tuple->ipv6.saddr[3] = v->local.ip6[3];
		tuple->ipv6.daddr[0] = v->remote.ip6[0];
		tuple->ipv6.daddr[1] = v->remote.ip6[1];
		tuple->ipv6.daddr[2] = v->remote.ip6[2];
		tuple->ipv6.daddr[3] = v->remote.ip6[3];
		tuple->ipv6.sport = v->local_port;
		tuple->ipv6.dport = v->remote_port;
	}
}

static __always_inline int sockops_via_waypoint(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct sock_storage_data *s;

	if (!sk)
		return 0;
	s = storage_lookup(sk);
	return s && storage_via_waypoint(s);
}

static __always_inline void on_active_established(struct bpf_sock_ops *skops)
{
	struct sockops_view v;
	union ip_addr local;
	struct bpf_sock_tuple tuple;
	struct km_conn_view c;

	sockops_read(skops, &v);
	if (!family_supported(v.family))
		return;
	sockops_local_key(&v, &local);
	if (!ip_enrolled(&local))
		return;
	sockops_conn_view(&v, &c);
	sockops_report_established(skops, &c, 0);
	if (!sockops_via_waypoint(skops))
		return;
	sockops_forward_tuple(&v, &tuple);
	bpf_sock_hash_update(skops, &km_socket, &tuple, BPF_NOEXIST);
}

SEC("sockops")
int sockops_prog(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		on_tcp_connect(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		on_active_established(skops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_STATE_CB:
		on_report_op(skops, skops->op);
		break;
	default:
		break;
	}
	return 1;
}

char _license[] SEC("license") = "GPL";
