// SPDX-License-Identifier: Apache-2.0
/*
 * A case's set-up in the shim (part of build/shim/libkmeshfast.so with fastpath.c): the map
 * writes of a state diff, batched per map, and the control connects of an enrolment change. Both
 * are called from JS (kf_map_ops, kf_control) and from whole-case programs (kf_run).
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
	const uint8_t *p = buf;
	for (int i = 0; i < count;) {
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
			q += 16 + ((klen + 3) & ~3) + ((vlen + 3) & ~3);
		}
		__u32 done = 0;
		if (n > 1) {
			for (int j = 0; j < n; j++) {
				memcpy(batch_keys + j * klen, starts[j] + 16, klen);
				if (op == 1)
					memcpy(batch_values + j * vlen, starts[j] + 16 + ((klen + 3) & ~3), vlen);
			}
			done = n;
			int rc = op == 1 ? bpf_map_update_batch(fd, batch_keys, batch_values, &done, NULL) : bpf_map_delete_batch(fd, batch_keys, &done, NULL);
			if (rc == 0)
				done = n;
			else if (done > (__u32)n)
				done = 0;
		}
		for (int j = done; j < n; j++) {
			const uint8_t *key = starts[j] + 16;
			int rc = map_op_one(op, fd, key, key + ((klen + 3) & ~3));
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
