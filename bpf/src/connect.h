/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One pass of the connect pipeline (section 3, interpretation item 3), shared by connect4 and
 * connect6:
 *   1 control connect -> untouched        2 not enrolled -> untouched
 *   4 TCP: socket storage (created here, before DNS, so every enrolled TCP pass has it)
 *   3 DNS (connect4, TCP and UDP)         4 not TCP -> untouched
 *   5-7 routing (route.h)                 8 original destination, once   9 waypoint flag
 *  10 address-family rule: a target the socket cannot take fails the pass, nothing recorded.
 * The caller tail-calls on KM_WAYPOINT.
 */
#ifndef KM_CONNECT_H
#define KM_CONNECT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "addr.h"
#include "dest.h"
#include "verdict.h"
#include "enrol.h"
#include "storage.h"
#include "waypoint.h"
#include "route.h"
#include "dns.h"

/* Writes a rewrite into the socket: the address in the socket's view, then the port (the
 * kernel keeps its low 16 bits; DNS targets carry the destination's own port). */
static __always_inline void pass_rewrite(struct bpf_sock_addr *ctx, const struct km_dest *d,
					 const struct km_target *t)
{
	union ip_addr view;

	dest_socket_view(d, &t->addr, &view);
	dest_write_addr(ctx, d, &view);
	dest_write_port(ctx, t->port);
}

/*
 * Applies a verdict: records the original destination on success, sets via_waypoint on a
 * waypoint, writes the rewrite. `s` is NULL only for a UDP DNS pass, which creates storage
 * here because it has something to record.
 */
static __always_inline int pass_apply(struct bpf_sock_addr *ctx, const struct km_dest *d,
				      struct sock_storage_data *s, int verdict,
				      const struct km_target *t)
{
	if (verdict == KM_KEPT) {
		storage_record_original(s, d);
		return KM_KEPT;
	}
	if (verdict != KM_REWRITTEN && verdict != KM_WAYPOINT)
		return verdict;
	if (!dest_can_take(d, &t->addr))
		return KM_FAILED;
	if (!s)
		s = storage_get_or_create(ctx->sk);
	if (!s)
		return KM_FAILED;
	storage_record_original(s, d);
	if (verdict == KM_WAYPOINT)
		storage_mark_waypoint(s);
	pass_rewrite(ctx, d, t);
	return verdict;
}

static __always_inline int connect_pass(struct bpf_sock_addr *ctx, const struct km_dest *d)
{
	struct sock_storage_data *s = NULL;
	struct km_target t;
	__u32 protocol;
	int verdict;

	if (control_connect(ctx, d))
		return KM_UNTOUCHED;
	if (!netns_enrolled(ctx))
		return KM_UNTOUCHED;
	protocol = ctx->protocol;
	if (protocol == IPPROTO_TCP) {
		s = storage_get_or_create(ctx->sk);
		if (!s)
			return KM_UNTOUCHED;
	}
	if (dns_applies(d, protocol)) {
		verdict = dns_route(d, &t);
		if (verdict != KM_CONTINUE)
			return pass_apply(ctx, d, s, verdict, &t);
	}
	if (protocol != IPPROTO_TCP)
		return KM_UNTOUCHED;
	verdict = route(d, &t);
	return pass_apply(ctx, d, s, verdict, &t);
}

#endif /* KM_CONNECT_H */
