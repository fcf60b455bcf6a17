/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The batch a case's map writes travel in from the shim (map-writer.c) to the harness's syscall
 * program (map-writer.bpf.c), in the program's global data, which the shim maps: filling it costs
 * no syscall, and one BPF_PROG_RUN applies it.
 */
#ifndef KMESH_MAP_WRITER_H
#define KMESH_MAP_WRITER_H
#include <linux/types.h>
#include <linux/bpf.h>

/* Operations per run at most. */
#define MW_OPS 256
/* Where keys and values may start in `data`... */
#define MW_DATA (32 * 1024)
/* ...and the largest key or value the shim puts there: the kernel reads the map's own key and
 * value sizes from those offsets, so every map written this way is registered with sizes up to this. */
#define MW_ENTRY 512

/* One write (BPF_MAP_UPDATE_ELEM, flags 0) or delete (BPF_MAP_DELETE_ELEM): the map's fd, offsets of key and value in data. */
struct mw_op {
	__u32 cmd, fd, key, value;
};

struct mw_batch {
	__u32 count;
	/* Out: the index of the first failed op (-1: none) and its error (a negative errno). */
	__s32 failed;
	__s32 rc;
	__u32 pad;
	struct mw_op ops[MW_OPS];
	__u8 data[MW_DATA + MW_ENTRY];
	/* The program's own: the attributes of each op's bpf command. */
	union bpf_attr attr;
};

#endif
