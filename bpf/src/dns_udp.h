/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DNS over UDP sends that name their destination (section 6): cgroup/sendmsg4 redirects a query
 * to the DNS proxy km_backend[0]; cgroup/recvmsg4 and cgroup/recvmsg6 report the proxy's reply
 * as coming from the server the socket's most recent redirected query addressed.
 *
 * sendmsg4 also runs for an AF_INET6 socket sending to a v4-mapped destination (ctx->family is
 * then AF_INET6 and user_ip4 the inner address); its original destination is recorded mapped.
 * A connected socket is never redirected here (Normative): the kernel would drop the proxy's
 * reply, whose source is not the socket's peer; a connected socket's DNS is its connect's.
 */
#ifndef KM_DNS_UDP_H
#define KM_DNS_UDP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi.h"
#include "addr.h"
#include "dest.h"
#include "enrol.h"
#include "storage.h"
#include "route.h"
#include "dns_server.h"

/* struct bpf_sock state of a connected UDP socket (the kernel's TCP_ESTABLISHED). */
#define KM_SK_STATE_ESTABLISHED 1

/* A send to 0.0.0.2:929/930 from an AF_INET socket enrols or withdraws, as a control connect. */
static __always_inline int dns_control_send(struct bpf_sock_addr *ctx, __u32 ip4, __u32 port, __u32 family)
{
	struct km_dest d;

	if (family != KM_AF_INET)
		return 0;	/* ::ffff:0.0.0.2 is not a control address (enrol.h) */
	ip_set_ipv4(&d.addr, ip4);
	d.port = port;
	d.family = KM_AF_INET;
	return control_connect(ctx, &d);
}

static __always_inline void dns_send4(struct bpf_sock_addr *ctx)
{
	struct sock_storage_data *s;
	struct dns_server_data *server;
	struct backend_value *proxy;
	struct bpf_sock *sk;
	struct km_dest d;
	__u32 ip4 = ctx->user_ip4;
	__u32 port = ctx->user_port;
	__u32 family = ctx->family;

	KM_CTX_READ_BARRIER();
	if (dns_control_send(ctx, ip4, port, family))
		return;
	if (!netns_enrolled(ctx))
		return;
	if (port != bpf_htons(KM_DNS_PORT))
		return;
	sk = ctx->sk;
	if (!sk)
		return;
	if (sk->state == KM_SK_STATE_ESTABLISHED)
		return;
	proxy = backend_lookup(KM_DNS_PROXY_UID);
	if (!proxy || !ip_is_ipv4_form(&proxy->addr))
		return;
	/* Both records first: a query whose reply could not be restored is not redirected. */
	server = dns_server_get(sk);
	if (!server)
		return;
	s = storage_get_or_create(sk);
	if (!s)
		return;
	/* The original as the application gave it, in the socket's view. */
	d.port = port;
	d.family = family == KM_AF_INET6 ? KM_AF_INET6 : KM_AF_INET;
	if (d.family == KM_AF_INET)
		ip_set_ipv4(&d.addr, ip4);
	else
		ip_set_v4_mapped(&d.addr, ip4);
	storage_record_original(s, &d);
	dns_server_set(server, ip4, proxy->addr.ip4);
	ctx->user_ip4 = proxy->addr.ip4;
}

/*
 * The IPv4 source to report for a datagram from (ip4, port), or ip4 itself: the most recent
 * server when the datagram comes from that query's proxy, port 53.
 */
static __always_inline __u32 dns_reply_source(struct bpf_sock_addr *ctx, __u32 ip4, __u32 port)
{
	struct dns_server_data *e;

	if (port != bpf_htons(KM_DNS_PORT))
		return ip4;
	e = dns_server_lookup(ctx->sk);
	if (!e)
		return ip4;
	if (e->proxy_ip4 != ip4)
		return ip4;
	return e->server_ip4;
}

static __always_inline void dns_recv4(struct bpf_sock_addr *ctx)
{
	__u32 ip4 = ctx->user_ip4;
	__u32 port = ctx->user_port;
	__u32 src;

	KM_CTX_READ_BARRIER();
	src = dns_reply_source(ctx, ip4, port);
	if (src != ip4)
		ctx->user_ip4 = src;
}

/* An AF_INET6 socket: only a v4-mapped source can be the (IPv4) proxy. */
static __always_inline void dns_recv6(struct bpf_sock_addr *ctx)
{
	union ip_addr a;
	__u32 port = ctx->user_port;
	__u32 src;

	a.ip6[0] = ctx->user_ip6[0];
	a.ip6[1] = ctx->user_ip6[1];
	a.ip6[2] = ctx->user_ip6[2];
	a.ip6[3] = ctx->user_ip6[3];
	KM_CTX_READ_BARRIER();
	if (!ip_is_v4_mapped(&a))
		return;
	src = dns_reply_source(ctx, a.ip6[3], port);
	if (src != a.ip6[3])
		ctx->user_ip6[3] = src;
}

#endif /* KM_DNS_UDP_H */
