/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Waypoints (section 3.7, 3.9; interpretation items 6 and 7). A service or backend routes via
 * its waypoint when one is configured: waypoint_port != 0 and any of the 16 bytes of wp_addr
 * non-zero (Normative). The pass then rewrites to (wp_addr, waypoint_port), marks the socket
 * via_waypoint and the program tail-calls itself (see cgroup_sock.bpf.c).
 */
#ifndef KM_WAYPOINT_H
#define KM_WAYPOINT_H

#include "abi.h"
#include "addr.h"
#include "dest.h"

static __always_inline int waypoint_configured(const union ip_addr *wp_addr, __u32 wp_port)
{
	return wp_port != 0 && !ip_is_all_zero(wp_addr);
}

static __always_inline void target_set(struct km_target *t, const union ip_addr *addr, __u32 port)
{
	ip_copy(&t->addr, addr);
	t->port = port;
}

static __always_inline int service_waypoint(const struct service_value *svc, struct km_target *t)
{
	if (!waypoint_configured(&svc->wp_addr, svc->waypoint_port))
		return 0;
	target_set(t, &svc->wp_addr, svc->waypoint_port);
	return 1;
}

static __always_inline int backend_waypoint(const struct backend_value *be, struct km_target *t)
{
	if (!waypoint_configured(&be->wp_addr, be->waypoint_port))
		return 0;
	target_set(t, &be->wp_addr, be->waypoint_port);
	return 1;
}

#endif /* KM_WAYPOINT_H */
