/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Enrolment (section 3.1, 3.2, 4; interpretation items 4 and 9).
 *  - connect hooks: a control connect to exactly 0.0.0.2 (connect4) or ::2 (connect6), any
 *    protocol, port 929 records the caller's netns cookie in km_manage, port 930 removes it;
 *    the pass then ends untouched. A v4-mapped ::ffff:0.0.0.2 is not a control address.
 *  - a pass goes on only when the netns cookie is in km_manage.
 *  - sockops: the same control connects record/remove the socket's local IP (v4-mapped folded
 *    to its IPv4 key), and ACTIVE_ESTABLISHED checks that local IP.
 */
#ifndef KM_ENROL_H
#define KM_ENROL_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi.h"
#include "addr.h"
#include "maps.h"
#include "dest.h"

enum km_control {
	KM_CONTROL_NONE = 0,
	KM_CONTROL_ENROL,
	KM_CONTROL_WITHDRAW,
};

/* Control action of a destination port given as user_port (low 16 bits, network order). */
static __always_inline int control_action_of_port(__u32 port)
{
	if (port == bpf_htons(KM_CONTROL_PORT_ENROL))
		return KM_CONTROL_ENROL;
	if (port == bpf_htons(KM_CONTROL_PORT_WITHDRAW))
		return KM_CONTROL_WITHDRAW;
	return KM_CONTROL_NONE;
}

/* 0.0.0.2 as an IPv4 word. */
static __always_inline int control_addr4(__u32 ip4)
{
	return ip4 == bpf_htonl(KM_CONTROL_IP4_HOST);
}

/* Exactly ::2 (16 bytes). */
static __always_inline int control_addr6(const union ip_addr *a)
{
	return a->ip6[0] == 0 && a->ip6[1] == 0 && a->ip6[2] == 0 &&
	       a->ip6[3] == bpf_htonl(KM_CONTROL_IP4_HOST);
}

/* Control action of a connect destination, in the socket's family. */
static __always_inline int control_action_of_dest(const struct km_dest *d)
{
	int is_control;

	if (d->family == KM_AF_INET)
		is_control = control_addr4(d->addr.ip4);
	else
		is_control = control_addr6(&d->addr);
	if (!is_control)
		return KM_CONTROL_NONE;
	return control_action_of_port(d->port);
}

static __always_inline void manage_apply(union manager_key *key, int action)
{
	__u32 zero = 0;

	if (action == KM_CONTROL_ENROL)
		bpf_map_update_elem(&km_manage, key, &zero, BPF_ANY);
	else if (action == KM_CONTROL_WITHDRAW)
		bpf_map_delete_elem(&km_manage, key);
}

static __always_inline void manage_key_of_cookie(union manager_key *key, __u64 cookie)
{
	ip_set_ipv4(&key->addr, 0);
	key->netns_cookie = cookie;
}

static __always_inline void manage_key_of_ip(union manager_key *key, const union ip_addr *ip)
{
	ip_copy(&key->addr, ip);
}

/* connect hooks: handles a control connect; returns 1 when the destination was one. */
static __always_inline int control_connect(struct bpf_sock_addr *ctx, const struct km_dest *d)
{
	union manager_key key;
	int action = control_action_of_dest(d);

	if (action == KM_CONTROL_NONE)
		return 0;
	manage_key_of_cookie(&key, bpf_get_netns_cookie(ctx));
	manage_apply(&key, action);
	return 1;
}

/* connect hooks: whether the caller's network namespace is enrolled. */
static __always_inline int netns_enrolled(struct bpf_sock_addr *ctx)
{
	union manager_key key;

	manage_key_of_cookie(&key, bpf_get_netns_cookie(ctx));
	return bpf_map_lookup_elem(&km_manage, &key) != NULL;
}

/* sockops: whether a local IP (already folded) is enrolled. */
static __always_inline int ip_enrolled(const union ip_addr *ip)
{
	union manager_key key;

	manage_key_of_ip(&key, ip);
	return bpf_map_lookup_elem(&km_manage, &key) != NULL;
}

/* sockops: records or removes a local IP (already folded). */
static __always_inline void manage_local_ip(const union ip_addr *ip, int action)
{
	union manager_key key;

	manage_key_of_ip(&key, ip);
	manage_apply(&key, action);
}

#endif /* KM_ENROL_H */
