// SPDX-License-Identifier: Apache-2.0
/*
 * A case's set-up in the shim (part of build/shim/libkmeshfast.so with fastpath.c): the map
 * writes of a state diff (through the map writer, map-writer.c, where it takes them; else batched
 * per map), the control connects of an enrolment change, and the maps outside the ABI put back
 * before each case. All are called from JS (kf_map_ops, kf_control, kf_reset_maps) and from
 * whole-case programs (kf_run).
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include "shim.h"

/* One record's single-element write or delete; deleting a missing key is not an error. */
static int map_op_one(int op, int fd, const uint8_t *key, const uint8_t *value)
{
	if (op == 1)
		return bpf_map_update_elem(fd, key, value, 0);
	int rc = bpf_map_delete_elem(fd, key);
	return rc == -ENOENT ? 0 : rc;
}

#define BATCH_MAX 256
#define BATCH_BYTES (64 * 1024)
static uint8_t batch_keys[BATCH_BYTES], batch_values[BATCH_BYTES];

/*
 * Map writes and deletes in one call. Records: int32 op (1 update, 0 delete), fd, key size,
 * value size, then key and value, each padded to 4 bytes. Deleting a missing key is not an error.
 * Returns -1 when all succeeded, else the index of the failed record (its libbpf rc in *rc).
 *
 * A run of consecutive records with the same op and map is one BPF_MAP_UPDATE_BATCH or
 * BPF_MAP_DELETE_BATCH: the kernel applies its elements one by one in order and stops at the
 * first failure, so the maps go through the same states as with one syscall per record. From a
 * failed element on (or where batches are unsupported) the rest of the run goes one by one, which
 * gives the same failure index and rc, and skips a missing key on delete as before.
 */
int kf_map_ops(const uint8_t *buf, int count, int32_t *rc_out)
{
	int made;
	int taken = mw_apply(buf, count, rc_out, &made);
	if (taken != MW_DECLINED)
		return taken;
	/* The records the map writer did not make (all, or those after a run it could not make). */
	const uint8_t *p = buf;
	for (int i = 0; i < made; i++)
		p = map_op_next(p);
	for (int i = made; i < count;) {
		const int32_t *h = (const int32_t *)p;
		int op = h[0], fd = h[1], klen = h[2], vlen = h[3];
		/* Gather the run: same op, map and sizes, within the scratch buffers. */
		const uint8_t *starts[BATCH_MAX];
		int n = 0;
		const uint8_t *q = p;
		while (i + n < count && n < BATCH_MAX) {
			const int32_t *g = (const int32_t *)q;
			if (g[0] != op || g[1] != fd || g[2] != klen || g[3] != vlen || (n + 1) * klen > BATCH_BYTES || (n + 1) * vlen > BATCH_BYTES)
				break;
			starts[n++] = q;
			q = map_op_next(q);
		}
		__u32 done = 0;
		if (n > 1) {
			for (int j = 0; j < n; j++) {
				memcpy(batch_keys + j * klen, map_op_key(starts[j]), klen);
				if (op == 1)
					memcpy(batch_values + j * vlen, map_op_value(starts[j]), vlen);
			}
			done = n;
			int rc = op == 1 ? bpf_map_update_batch(fd, batch_keys, batch_values, &done, NULL) : bpf_map_delete_batch(fd, batch_keys, &done, NULL);
			if (rc == 0)
				done = n;
			else if (done > (__u32)n)
				done = 0;
		}
		for (int j = done; j < n; j++) {
			int rc = map_op_one(op, fd, map_op_key(starts[j]), map_op_value(starts[j]));
			if (rc < 0) {
				*rc_out = rc;
				return i + j;
			}
		}
		i += n;
		p = q;
	}
	return -1;
}

/*
 * One enrolment control connect (bpf/kernel/enrolment.ts): a TCP socket bound to `local`,
 * connected to the control address, refused because nothing listens there, closed. Returns 0, or
 * the failed stage (1 socket, 2 bind, 3 connect not refused) with its errno (0: it succeeded) in *err.
 */
int kf_control(int domain, const void *local, uint32_t llen, const void *dest, uint32_t dlen, int32_t *err)
{
	int fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		return 1;
	}
	if (bind(fd, local, llen) < 0) {
		*err = errno;
		close(fd);
		return 2;
	}
	int rc = connect(fd, dest, dlen);
	*err = rc < 0 ? errno : 0;
	close(fd);
	return rc == 0 || *err != ECONNREFUSED ? 3 : 0;
}

/*
 * Maps outside the ABI that the programs may write (a map of the data path's own, its global
 * data), put back before every case to what they held after load, as the VM does: a case then
 * sees nothing of the cases before it, and a counterexample replays on its own. Hash-like maps
 * are emptied; arrays (global data included) get back each entry whose bytes changed, against a
 * snapshot taken when they are registered (right after load, before any program ran).
 */
#define RESET_MAX 64
#define RESET_KEY_MAX 512
struct reset_map {
	int fd, hash, klen, vlen, max;
	uint8_t *snapshot;
	/* An mmapable array (global data is) mapped here: compared and put back without syscalls. */
	uint8_t *mem;
	size_t memlen;
};
static struct reset_map resets[RESET_MAX];
static int nresets;

/* Reads entries [0, max) of an array map into vals (max * vlen bytes): its mapping, or a lookup per entry. */
static int array_read(const struct reset_map *m, uint8_t *vals)
{
	if (m->mem) {
		memcpy(vals, m->mem, m->vlen);
		return 0;
	}
	for (int i = 0; i < m->max; i++) {
		__u32 key = i;
		int rc = bpf_map_lookup_elem(m->fd, &key, vals + (size_t)i * m->vlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Registers the maps to reset: per map five int32 (fd, 1 hash-like / 0 array, key size, value
 * size, max entries). Returns 0, or -EINVAL (too many, a key too long, an array value larger than
 * the reset buffer) / -ENOMEM / a libbpf error.
 */
int kf_set_resets(const int32_t *spec, int count)
{
	for (int i = 0; i < nresets; i++) {
		free(resets[i].snapshot);
		if (resets[i].mem)
			munmap(resets[i].mem, resets[i].memlen);
	}
	nresets = 0;
	if (count > RESET_MAX)
		return -EINVAL;
	for (int i = 0; i < count; i++) {
		const int32_t *s = spec + 5 * i;
		struct reset_map m = { .fd = s[0], .hash = s[1], .klen = s[2], .vlen = s[3], .max = s[4], .snapshot = NULL, .mem = NULL };
		if (m.hash ? m.klen > RESET_KEY_MAX : m.klen != 4 || m.vlen > BATCH_BYTES)
			return -EINVAL;
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		if (!m.hash && bpf_obj_get_info_by_fd(m.fd, &info, &len) == 0 && (info.map_flags & BPF_F_MMAPABLE)) {
			/* Entries at a stride of the value size rounded up to 8, in whole pages. */
			size_t stride = ((size_t)m.vlen + 7) & ~(size_t)7, page = sysconf(_SC_PAGESIZE);
			m.memlen = (stride * m.max + page - 1) / page * page;
			void *p = mmap(NULL, m.memlen, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
			if (p != MAP_FAILED) {
				m.mem = p;
				m.vlen = stride * m.max, m.max = 1; /* one block of bytes */
			}
		}
		if (!m.hash) {
			m.snapshot = malloc((size_t)m.max * m.vlen);
			if (!m.snapshot) {
				if (m.mem)
					munmap(m.mem, m.memlen);
				return -ENOMEM;
			}
			int rc = array_read(&m, m.snapshot);
			if (rc < 0) {
				free(m.snapshot);
				if (m.mem)
					munmap(m.mem, m.memlen);
				return rc;
			}
		}
		resets[nresets++] = m;
	}
	return 0;
}

/* Deletes a hash map's entries, whatever wrote them; 0, or the first failed delete's rc. */
int kf_empty_map(int fd, int klen)
{
	uint8_t key[RESET_KEY_MAX];
	if (klen > RESET_KEY_MAX)
		return -EINVAL;
	while (bpf_map_get_next_key(fd, NULL, key) == 0) {
		int rc = bpf_map_delete_elem(fd, key);
		if (rc < 0 && rc != -ENOENT)
			return rc;
	}
	return 0;
}

/* Puts every registered map back; 0, or the first libbpf error. */
int kf_reset_maps(void)
{
	static uint8_t value[BATCH_BYTES];
	for (int i = 0; i < nresets; i++) {
		struct reset_map *m = &resets[i];
		if (m->hash) {
			int rc = kf_empty_map(m->fd, m->klen);
			if (rc < 0)
				return rc;
			continue;
		}
		if (m->mem) {
			if (memcmp(m->mem, m->snapshot, m->vlen))
				memcpy(m->mem, m->snapshot, m->vlen);
			continue;
		}
		/* kf_set_resets took no value larger than `value`. */
		for (int j = 0; j < m->max; j++) {
			__u32 k = j;
			uint8_t *want = m->snapshot + (size_t)j * m->vlen;
			int rc = bpf_map_lookup_elem(m->fd, &k, value);
			if (rc < 0)
				return rc;
			if (memcmp(value, want, m->vlen) && (rc = bpf_map_update_elem(m->fd, &k, want, 0)) < 0)
				return rc;
		}
	}
	return 0;
}
