// SPDX-License-Identifier: GPL-2.0
/*
 * The connect object: cgroup/connect4 and cgroup/connect6 (kmesh-dataplane.md section 3).
 * Every path returns 1 (allow): the programs only rewrite the destination or leave it alone.
 * A waypoint pass tail-calls the program itself, so the pipeline runs again on the waypoint
 * address; if the tail call does not happen (empty slot, limit reached) the rewrite stays.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "maps.h"
#include "dest.h"
#include "connect.h"

SEC("cgroup/connect4")
int cgroup_connect4_prog(struct bpf_sock_addr *ctx)
{
	struct km_dest d;

	dest_read4(ctx, &d);
	if (connect_pass(ctx, &d) == KM_WAYPOINT)
		bpf_tail_call(ctx, &km_cgr_tailcall, KM_TAIL_SLOT_CONNECT4);
	return KM_CGROUP_ALLOW;
}

SEC("cgroup/connect6")
int cgroup_connect6_prog(struct bpf_sock_addr *ctx)
{
	struct km_dest d;

	dest_read6(ctx, &d);
	if (connect_pass(ctx, &d) == KM_WAYPOINT)
		bpf_tail_call(ctx, &km_cgr_tail6, KM_TAIL_SLOT_CONNECT6);
	return KM_CGROUP_ALLOW;
}

char _license[] SEC("license") = "GPL";
