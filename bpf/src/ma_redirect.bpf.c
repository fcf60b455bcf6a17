// SPDX-License-Identifier: GPL-2.0
/*
 * ma_redirect: the sk_msg half of same-node acceleration (kmesh-dataplane.md section 8),
 * attached as msg_verdict to sock_ops_map. A message of a socket whose own key is in
 * sock_proxy_map goes straight into the receive queue (BPF_F_INGRESS) of the socket that
 * sock_ops_map holds under the peer's key. Always SK_PASS: when the peer is not in
 * sock_ops_map, the redirect does not happen and the message takes the normal path.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "accel_abi.h"
#include "accel_key.h"

SEC("sk_msg")
int ma_redirect(struct sk_msg_md *msg)
{
	__u32 family = msg->family;
	__u32 local4 = msg->local_ip4, remote4 = msg->remote_ip4;
	__u32 local_port = msg->local_port, remote_port = msg->remote_port;
	struct sock_key own = {};
	struct sock_key *peer;

	if (family != MA_AF_INET)
		return SK_PASS;
	ma_key_set(&own, local4, remote4, local_port, remote_port, bpf_get_netns_cookie(msg));
	peer = bpf_map_lookup_elem(&sock_proxy_map, &own);
	if (!peer)
		return SK_PASS;
	bpf_msg_redirect_hash(msg, &sock_ops_map, peer, BPF_F_INGRESS);
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
