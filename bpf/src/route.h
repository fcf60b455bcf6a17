/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Routing (section 3.5 - 3.7; interpretation items 2, 7, 8): frontend -> service or direct
 * backend -> load balancing -> endpoint -> backend -> port mapping. Produces a verdict and, for
 * KM_REWRITTEN / KM_WAYPOINT, the target as stored in the maps; writing it into the socket is
 * the caller's job (connect.h), which also applies the address-family rule.
 */
#ifndef KM_ROUTE_H
#define KM_ROUTE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "addr.h"
#include "maps.h"
#include "dest.h"
#include "verdict.h"
#include "waypoint.h"

/* Frontend key: IPv4 on AF_INET; on AF_INET6 a v4-mapped destination uses its IPv4 key, any
 * other its 16 bytes as they are. */
static __always_inline void frontend_key_of(const struct km_dest *d, struct frontend_key *key)
{
	if (d->family == KM_AF_INET)
		ip_set_ipv4(&key->addr, d->addr.ip4);
	else
		ip_fold_v4_mapped(&key->addr, &d->addr);
}

static __always_inline struct backend_value *backend_lookup(__u32 uid)
{
	struct backend_key key = { .backend_uid = uid };

	return bpf_map_lookup_elem(&km_backend, &key);
}

/* Direct pod access: the frontend's upstream id is a backend uid. */
static __always_inline int route_direct_backend(__u32 uid, struct km_target *t)
{
	struct backend_value *be = backend_lookup(uid);

	if (!be)
		return KM_FAILED;
	if (backend_waypoint(be, t))
		return KM_WAYPOINT;
	return KM_KEPT;
}

/*
 * The priority group a policy chooses from. Returns KM_CONTINUE with *prio and *count set
 * (count != 0), or the verdict that ends the pass.
 */
static __always_inline int lb_group_random(const struct service_value *svc, __u32 *prio,
					   __u32 *count)
{
	*prio = 0;
	*count = svc->prio_endpoint_count[0];
	return *count ? KM_CONTINUE : KM_KEPT;
}

static __always_inline int lb_group_strict(const struct service_value *svc, __u32 *prio,
					   __u32 *count)
{
	*prio = 0;
	*count = svc->prio_endpoint_count[0];
	return *count ? KM_CONTINUE : KM_FAILED;
}

static __always_inline int lb_group_failover(const struct service_value *svc, __u32 *prio,
					     __u32 *count)
{
	__u32 p;

#pragma unroll
	for (p = 0; p < KM_PRIO_GROUPS; p++) {
		if (svc->prio_endpoint_count[p]) {
			*prio = p;
			*count = svc->prio_endpoint_count[p];
			return KM_CONTINUE;
		}
	}
	return KM_FAILED;
}

static __always_inline int lb_group(const struct service_value *svc, __u32 *prio, __u32 *count)
{
	switch (svc->lb_policy) {
	case KM_LB_RANDOM:
		return lb_group_random(svc, prio, count);
	case KM_LB_STRICT:
		return lb_group_strict(svc, prio, count);
	case KM_LB_FAILOVER:
		return lb_group_failover(svc, prio, count);
	default:
		return KM_FAILED;
	}
}

/* 1-based endpoint index: one draw, no retry. count != 0. */
static __always_inline __u32 lb_pick_index(__u32 count)
{
	return bpf_get_prandom_u32() % count + 1;
}

static __always_inline struct backend_value *endpoint_backend(__u32 service_id, __u32 prio,
							      __u32 index)
{
	struct endpoint_key key = {
		.service_id = service_id,
		.prio = prio,
		.backend_index = index,
	};
	struct endpoint_value *ep = bpf_map_lookup_elem(&km_endpoint, &key);

	if (!ep)
		return NULL;
	return backend_lookup(ep->backend_uid);
}

/* First slot whose service_port equals the destination port gives the target port. */
static __always_inline int port_map(const struct service_value *svc, __u32 port, __u32 *target)
{
	__u32 i;

#pragma unroll
	for (i = 0; i < KM_PORT_SLOTS; i++) {
		if (svc->service_port[i] == port) {
			*target = svc->target_port[i];
			return 1;
		}
	}
	return 0;
}

static __always_inline int route_service(__u32 service_id, const struct service_value *svc,
					 const struct km_dest *d, struct km_target *t)
{
	struct backend_value *be;
	__u32 prio = 0, count = 0, target_port = 0;
	int verdict;

	if (service_waypoint(svc, t))
		return KM_WAYPOINT;
	verdict = lb_group(svc, &prio, &count);
	if (verdict != KM_CONTINUE)
		return verdict;
	be = endpoint_backend(service_id, prio, lb_pick_index(count));
	if (!be)
		return KM_FAILED;
	if (backend_waypoint(be, t))
		return KM_WAYPOINT;
	if (!port_map(svc, d->port, &target_port))
		return KM_FAILED;
	target_set(t, &be->addr, target_port);
	return KM_REWRITTEN;
}

/* The routing part of a TCP pass. */
static __always_inline int route(const struct km_dest *d, struct km_target *t)
{
	struct frontend_key fkey;
	struct frontend_value *fe;
	struct service_key skey;
	struct service_value *svc;

	frontend_key_of(d, &fkey);
	fe = bpf_map_lookup_elem(&km_frontend, &fkey);
	if (!fe)
		return KM_UNTOUCHED;
	skey.service_id = fe->upstream_id;
	svc = bpf_map_lookup_elem(&km_service, &skey);
	if (!svc)
		return route_direct_backend(skey.service_id, t);
	return route_service(skey.service_id, svc, d, t);
}

#endif /* KM_ROUTE_H */
