/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The sockops side of connection reports and inbound authorization (section 7), for a socket
 * whose local IP is managed when it is established (the caller checks it):
 *  - ACTIVE_ESTABLISHED: an ESTABLISHED report, OUTBOUND, if monitoring is on and connect4/6
 *    created the socket's storage;
 *  - PASSIVE_ESTABLISHED: an authorization request (peer not the node nor the pod gateway), and
 *    if monitoring is on an ESTABLISHED report, INBOUND, the storage created with connect_ns = now;
 *  - STATE_CB to CLOSE (whether or not the local IP is still managed): the verdict keyed by the
 *    inbound tuple is deleted, and a socket reported as established gets its CLOSE report.
 * Both established callbacks ask for STATE_CB so that the close is seen.
 */
#ifndef KM_SOCKOPS_REPORT_H
#define KM_SOCKOPS_REPORT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "report.h"
#include "auth.h"
#include "storage.h"

static __always_inline void sockops_report_established(struct bpf_sock_ops *skops,
						       const struct km_conn_view *v, int inbound)
{
	struct bpf_sock *sk = skops->sk;
	struct sock_storage_data *s;

	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	if (inbound)
		auth_request(v);
	if (!enable_monitoring || !sk)
		return;
	s = inbound ? storage_get_or_create(sk) : storage_lookup(sk);
	if (!s)
		return;
	s->direction = inbound ? KM_REPORT_INBOUND : KM_REPORT_OUTBOUND;
	s->connect_success = 1;
	report_send(sk, v, s, KM_REPORT_ESTABLISHED);
}

static __always_inline void sockops_report_state(struct bpf_sock_ops *skops, const struct km_conn_view *v)
{
	struct bpf_sock *sk;
	struct sock_storage_data *s;

	if (skops->args[1] != KM_TCP_STATE_CLOSE)
		return;
	auth_forget(v);
	sk = skops->sk;
	if (!sk)
		return;
	s = storage_lookup(sk);
	if (!s || !report_was_established(s))
		return;
	report_send(sk, v, s, KM_REPORT_CLOSE);
}

#endif /* KM_SOCKOPS_REPORT_H */
