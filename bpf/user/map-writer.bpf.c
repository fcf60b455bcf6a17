// SPDX-License-Identifier: Apache-2.0
/*
 * The harness's map writer, not part of the data path: a BPF_PROG_TYPE_SYSCALL program that
 * applies a batch of map writes and deletes (map-writer.h) in order, each as the kernel's own
 * BPF_MAP_UPDATE_ELEM or BPF_MAP_DELETE_ELEM on the calling process's map fds (bpf_sys_bpf), and
 * stops at the first failure. One BPF_PROG_RUN then does what took a bpf() syscall per map and
 * kind of change, about 2 us each on this machine. Deleting a missing key is not a failure.
 */
#include "map-writer.h"
#include <bpf/bpf_helpers.h>

#define EINVAL 22
#define ENOENT 2

struct mw_batch batch;

SEC("syscall")
int apply(void *ctx)
{
	__u32 n = batch.count;
	batch.failed = -1;
	batch.rc = 0;
	for (__u32 i = 0; i < MW_OPS && i < n; i++) {
		const struct mw_op *o = &batch.ops[i];
		__u32 k = o->key, v = o->value;
		long rc = -EINVAL;
		if (k <= MW_DATA && v <= MW_DATA) {
			int update = o->cmd == BPF_MAP_UPDATE_ELEM;
			batch.attr.map_fd = o->fd;
			batch.attr.key = (__u64)(long)&batch.data[k];
			/* A delete's attributes end at the key: what follows must be zero. */
			batch.attr.value = update ? (__u64)(long)&batch.data[v] : 0;
			batch.attr.flags = 0;
			rc = bpf_sys_bpf(update ? BPF_MAP_UPDATE_ELEM : BPF_MAP_DELETE_ELEM, &batch.attr, sizeof(batch.attr));
			if (rc == -ENOENT && !update)
				rc = 0;
		}
		if (rc < 0) {
			batch.failed = i;
			batch.rc = rc;
			break;
		}
	}
	return 0;
}

char _license[] SEC("license") = "GPL";
