// SPDX-License-Identifier: Apache-2.0
/*
 * The loader of map-writer.bpf.c and the shim's way to it: kf_writer_open loads the program and
 * maps its batch, kf_writer_maps registers the maps it may write (with the sizes the kernel gives
 * them), and kf_map_ops (setup-ops.c) hands it every batch of records it can take. Records it
 * cannot take (an unregistered map, sizes other than the map's, too many, the program not loaded)
 * go by bpf() syscalls as before: the same changes, in the same order, with the same failure.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "map-writer.h"
#include "shim.h"

static struct bpf_object *mw_obj;
static int mw_prog = -1;
static struct mw_batch *mw;
static size_t mw_len;
/* Program runs so far (kf_writer_runs): how a test sees which way the writes went. */
static long mw_runs;

#define MW_MAPS 16
static struct {
	int fd;
	__u32 klen, vlen;
} mw_maps[MW_MAPS];
static int mw_nmaps;

static void writer_close(void)
{
	if (mw)
		munmap(mw, mw_len);
	mw = NULL;
	mw_prog = -1;
	bpf_object__close(mw_obj);
	mw_obj = NULL;
	mw_nmaps = 0;
}

/* Loads the program from `path`; 0, or a negative errno (the writer is then not used). */
int kf_writer_open(const char *path)
{
	writer_close();
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	int rc = libbpf_get_error(obj);
	if (rc)
		return rc < 0 ? rc : -rc;
	mw_obj = obj;
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "apply");
	struct bpf_map *bss = bpf_object__find_map_by_name(obj, ".bss");
	if (!prog || !bss || bpf_map__value_size(bss) != sizeof(struct mw_batch)) {
		writer_close();
		return -ENOEXEC;
	}
	rc = bpf_object__load(obj);
	if (rc) {
		writer_close();
		return rc < 0 ? rc : -rc;
	}
	/* Mapped from the map itself: libbpf's own image of .bss is not the map's memory after a plain load. */
	size_t page = sysconf(_SC_PAGESIZE);
	mw_len = (sizeof(struct mw_batch) + page - 1) / page * page;
	void *p = mmap(NULL, mw_len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(bss), 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		writer_close();
		return rc;
	}
	mw = p;
	mw_prog = bpf_program__fd(prog);
	return 0;
}

/*
 * Registers the maps the writer may write, replacing those registered before (the worker's
 * objects were loaded again): their types and sizes as the kernel has them. A per-CPU map, a map
 * of fds, or a key or value larger than MW_ENTRY is left to the syscalls. Returns how many were
 * registered, or -ENODEV when no writer is loaded.
 */
int kf_writer_maps(const int32_t *fds, int count)
{
	mw_nmaps = 0;
	if (!mw)
		return -ENODEV;
	for (int i = 0; i < count && mw_nmaps < MW_MAPS; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		if (bpf_obj_get_info_by_fd(fds[i], &info, &len) < 0)
			continue;
		if (info.type != BPF_MAP_TYPE_HASH && info.type != BPF_MAP_TYPE_LRU_HASH && info.type != BPF_MAP_TYPE_ARRAY)
			continue;
		if (info.key_size > MW_ENTRY || info.value_size > MW_ENTRY)
			continue;
		mw_maps[mw_nmaps].fd = fds[i];
		mw_maps[mw_nmaps].klen = info.key_size;
		mw_maps[mw_nmaps].vlen = info.value_size;
		mw_nmaps++;
	}
	return mw_nmaps;
}

/* Whether the writer takes records for `fd` with these sizes (exactly the map's: the kernel reads its own). */
static int registered(int fd, int klen, int vlen, int update)
{
	for (int i = 0; i < mw_nmaps; i++)
		if (mw_maps[i].fd == fd)
			return (__u32)klen == mw_maps[i].klen && (!update || (__u32)vlen == mw_maps[i].vlen);
	return 0;
}

long kf_writer_runs(void)
{
	return mw_runs;
}

/*
 * Runs the program on the batch's first `count` ops: -1, the index of the failed op (its error in
 * *rc_out), or MW_DECLINED when the program did not run (nothing of the batch written; the writer
 * is unloaded, so that the caller and every later call make the writes by syscalls).
 */
static int run_batch(__u32 count, int32_t *rc_out)
{
	mw->count = count;
	mw_runs++;
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	if (bpf_prog_test_run_opts(mw_prog, &opts) < 0) {
		writer_close();
		return MW_DECLINED;
	}
	if (mw->failed < 0)
		return -1;
	*rc_out = mw->rc;
	return mw->failed;
}

/*
 * Tries the loaded program on a map of its own: a write, its delete, a missing key's delete and a
 * second write, then reads the map back. 0 when all went as by syscalls; else a negative errno
 * (-ENODEV: no writer loaded; -EPROTO: the map does not hold what it should), and the writer is
 * unloaded. A kernel whose bpf_sys_bpf takes fewer commands than this one's fails here, before
 * any case depends on it.
 */
int kf_writer_check(void)
{
	if (!mw)
		return -ENODEV;
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "kc_mw_check", 4, 4, 2, NULL);
	if (fd < 0)
		return fd;
	static const __u32 kv[][2] = { { 1, 7 }, { 1, 0 }, { 1, 0 }, { 2, 9 } };
	static const __u32 cmd[] = { BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_UPDATE_ELEM };
	for (__u32 i = 0; i < 4; i++) {
		mw->ops[i] = (struct mw_op){ .cmd = cmd[i], .fd = fd, .key = 8 * i, .value = 8 * i + 4 };
		memcpy(mw->data + 8 * i, kv[i], 8);
	}
	int32_t rc = 0;
	int failed = run_batch(4, &rc);
	__u32 k1 = 1, k2 = 2, v = 0;
	if (failed == MW_DECLINED)
		rc = -ENOEXEC;
	else if (failed < 0)
		rc = bpf_map_lookup_elem(fd, &k1, &v) == -ENOENT && bpf_map_lookup_elem(fd, &k2, &v) == 0 && v == 9 ? 0 : -EPROTO;
	close(fd);
	if (rc && mw)
		writer_close();
	return rc;
}

/*
 * kf_map_ops's records through the program, in runs of at most MW_OPS records and MW_DATA bytes:
 * -1 when all succeeded, the failed record's index (its error in *rc_out; the records after it
 * are not made), or MW_DECLINED when the program cannot take them all or stopped running: the
 * first *done records are made, the rest are the caller's to make by syscalls.
 */
int mw_apply(const uint8_t *buf, int count, int32_t *rc_out, int *done)
{
	*done = 0;
	if (!mw)
		return MW_DECLINED;
	/* All or none: a record the program cannot take leaves the whole call to the syscalls. */
	const uint8_t *p = buf;
	for (int i = 0; i < count; i++) {
		const int32_t *h = (const int32_t *)p;
		int klen = h[2], vlen = h[3];
		if (klen < 0 || vlen < 0 || klen > MW_DATA || vlen > MW_DATA || klen + vlen > MW_DATA || !registered(h[1], klen, vlen, h[0] == 1))
			return MW_DECLINED;
		p = map_op_next(p);
	}
	p = buf;
	int first = 0;
	__u32 n = 0, at = 0;
	for (int i = 0; i <= count; i++) {
		const int32_t *h = (const int32_t *)p;
		int last = i == count;
		if (last || n == MW_OPS || at + h[2] + h[3] > MW_DATA) {
			int failed = n ? run_batch(n, rc_out) : -1;
			if (failed == MW_DECLINED) {
				*done = first;
				return MW_DECLINED;
			}
			if (failed >= 0)
				return first + failed;
			if (last)
				break;
			first = i, n = 0, at = 0;
		}
		int update = h[0] == 1, klen = h[2], vlen = h[3];
		mw->ops[n++] = (struct mw_op){ .cmd = update ? BPF_MAP_UPDATE_ELEM : BPF_MAP_DELETE_ELEM, .fd = h[1], .key = at, .value = at + klen };
		memcpy(mw->data + at, map_op_key(p), klen);
		if (update)
			memcpy(mw->data + at + klen, map_op_value(p), vlen);
		at += klen + (update ? vlen : 0);
		p = map_op_next(p);
	}
	return -1;
}
