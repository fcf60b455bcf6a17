/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The destination of a connect as the socket holds it, read from and written to the
 * bpf_sock_addr context. The family is fixed by the hook (connect4: AF_INET socket, connect6:
 * AF_INET6 socket) and is a compile-time constant in each program after inlining, so the
 * context fields of the other family are never touched (the verifier rejects them).
 */
#ifndef KM_DEST_H
#define KM_DEST_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "addr.h"

struct km_dest {
	union ip_addr addr;	/* AF_INET: bytes 0..3; AF_INET6: the 16 bytes (v4-mapped kept) */
	__u32 port;		/* as ctx->user_port: low 16 bits, network order */
	__u32 family;		/* KM_AF_INET or KM_AF_INET6 */
};

/* Where a pass sends the socket: an address as stored in a map, and a port as in a map. */
struct km_target {
	union ip_addr addr;
	__u32 port;
};

/*
 * Context reads happen once, at the start, as u32 loads; the barrier keeps the compiler from
 * sinking them into branches where it could merge loads through a computed context pointer,
 * which the verifier rejects.
 */
#define KM_CTX_READ_BARRIER() asm volatile("" ::: "memory")

/* user_ip4 and user_port: one u32 load each. */
static __always_inline void dest_read4(struct bpf_sock_addr *ctx, struct km_dest *d)
{
	ip_set_ipv4(&d->addr, ctx->user_ip4);
	d->port = ctx->user_port;
	d->family = KM_AF_INET;
	KM_CTX_READ_BARRIER();
}

/* user_ip6 as four u32 loads. */
static __always_inline void dest_read6(struct bpf_sock_addr *ctx, struct km_dest *d)
{
	d->addr.ip6[0] = ctx->user_ip6[0];
	d->addr.ip6[1] = ctx->user_ip6[1];
	d->addr.ip6[2] = ctx->user_ip6[2];
	d->addr.ip6[3] = ctx->user_ip6[3];
	d->port = ctx->user_port;
	d->family = KM_AF_INET6;
	KM_CTX_READ_BARRIER();
}

/*
 * Address-family rule (Normative, section 3.10; interpretation item 1): an AF_INET socket takes
 * IPv4-form targets only; an AF_INET6 socket takes every target.
 */
static __always_inline int dest_can_take(const struct km_dest *d, const union ip_addr *target)
{
	if (d->family == KM_AF_INET)
		return ip_is_ipv4_form(target);
	return 1;
}

/* The target's address in the socket's view: IPv4 form becomes ::ffff:a.b.c.d on AF_INET6. */
static __always_inline void dest_socket_view(const struct km_dest *d, const union ip_addr *target,
					     union ip_addr *out)
{
	if (d->family == KM_AF_INET || !ip_is_ipv4_form(target))
		ip_copy(out, target);
	else
		ip_set_v4_mapped(out, target->ip4);
}

/* Writes an address (already in the socket's view) into the context: u32 stores only. */
static __always_inline void dest_write_addr(struct bpf_sock_addr *ctx, const struct km_dest *d,
					    const union ip_addr *view)
{
	if (d->family == KM_AF_INET) {
		ctx->user_ip4 = view->ip4;
	} else {
		ctx->user_ip6[0] = view->ip6[0];
		ctx->user_ip6[1] = view->ip6[1];
		ctx->user_ip6[2] = view->ip6[2];
		ctx->user_ip6[3] = view->ip6[3];
	}
}

static __always_inline void dest_write_port(struct bpf_sock_addr *ctx, __u32 port)
{
	ctx->user_port = port;
}

#endif /* KM_DEST_H */
