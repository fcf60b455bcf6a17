// SPDX-License-Identifier: GPL-2.0
/*
 * sk_msg (kmesh-dataplane.md section 4): attached as msg_verdict to km_socket. The first
 * message of a waypoint-bound socket gets the original-destination TLV in front; has_encoded
 * is set at that first message, so exactly one prefix goes on the stream. Always SK_PASS.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "maps.h"
#include "storage.h"
#include "tlv.h"

static __always_inline int needs_tlv(const struct sock_storage_data *s)
{
#ifdef MUTANT_TLV_REPEATED
	/* Mutant: has_encoded is not checked, so every message gets a prefix. */
	return storage_via_waypoint(s);
#else
	return storage_via_waypoint(s) && !storage_has_encoded(s);
#endif
}

SEC("sk_msg")
int sendmsg_prog(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	struct sock_storage_data *s;

	if (!sk)
		return SK_PASS;
	s = storage_lookup(sk);
	if (!s || !needs_tlv(s))
		return SK_PASS;
	/* Mutant MUTANT_TLV_ENCODED_NOT_SET never sets has_encoded: every message gets a prefix. */
#ifndef MUTANT_TLV_ENCODED_NOT_SET
	storage_mark_encoded(s);
#endif
	tlv_push(msg, msg->family, &s->sk_tuple);
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
