/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DNS (section 3.3; interpretation item 5), connect4 only, before the protocol check: a TCP or
 * UDP connect to port 53 goes to the DNS proxy km_backend[0] with only the IP replaced (the
 * port stays 53). No proxy: this step does nothing and the pass goes on. The proxy address must
 * be IPv4 form; that check is the address-family rule applied by the caller (connect.h).
 */
#ifndef KM_DNS_H
#define KM_DNS_H

#include <linux/in.h>
#include <bpf/bpf_endian.h>

#include "abi.h"
#include "dest.h"
#include "verdict.h"
#include "route.h"

static __always_inline int dns_applies(const struct km_dest *d, __u32 protocol)
{
	if (d->family != KM_AF_INET)
		return 0;
	if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
		return 0;
	return d->port == bpf_htons(KM_DNS_PORT);
}

/* KM_REWRITTEN with the proxy address and the unchanged port, or KM_CONTINUE. */
static __always_inline int dns_route(const struct km_dest *d, struct km_target *t)
{
	struct backend_value *proxy = backend_lookup(KM_DNS_PROXY_UID);

	if (!proxy)
		return KM_CONTINUE;
	target_set(t, &proxy->addr, d->port);
	return KM_REWRITTEN;
}

#endif /* KM_DNS_H */
