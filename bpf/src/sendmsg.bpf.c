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
	return storage_via_waypoint(s) && !storage_has_encoded(s);
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
	storage_mark_encoded(s);
	tlv_push(msg, msg->family, &s->sk_tuple);
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
