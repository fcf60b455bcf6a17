/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the shim's C files share (fastpath.c: one socket operation per call; whole-run.c: whole
 * cases in one call; setup-ops.c: map writes and enrolment; map-writer.c: map writes through one
 * program run; settle.c: bounded waits on loopback). The layouts here are mirrored on the
 * JS side in bpf/kernel/fastpath.ts, which checks KF_ABI when it loads the library.
 */
#ifndef KMESH_SHIM_H
#define KMESH_SHIM_H
#include <errno.h>
#include <stdint.h>

#define KF_ABI 7
#define SA_MAX 128
#define MAX_OTHERS 16

/* kf_connect flags */
#define KF_TCP 1
#define KF_INET6 2
#define KF_ACCEPT 4 /* no server side yet and none pending: accept it here */
#define KF_DEFER 8  /* no server side yet, some pending: stop after getsockname, JS matches */

/* Layout of the connect/observe output (offsets in bytes; the JS side mirrors them). */
enum {
	O_RC = 0,
	O_ERR = 4,
	O_CONNECTED = 8,
	O_SERVER = 12, /* accepted fd; -1 none; -2 too many others: JS goes on accepting */
	O_IN_SOCKHASH = 16,
	O_STORAGE_RC = 20,
	O_OTHERS = 24,
	O_DEFERRED = 28,
	O_PEER = 32,
	O_LOCAL = O_PEER + SA_MAX,
	O_STORAGE = O_LOCAL + SA_MAX,
	O_OTHER = O_STORAGE + 256, /* MAX_OTHERS x (int32 fd, sockaddr[SA_MAX]) */
	O_SIZE = O_OTHER + MAX_OTHERS * (4 + SA_MAX),
};

/* Listener fd by port, -1 for none (kf_set_listener). */
extern int listeners[65536];

static inline int32_t *i32(uint8_t *out, int off)
{
	return (int32_t *)(out + off);
}

/*
 * A kf_map_ops record: int32 op (1 update, 0 delete), fd, key size, value size, then the key and
 * the value, each padded to 4 bytes. These read records the worker wrote (kf_run bounds-checks a
 * program's own, skip_map_ops in whole-run.c).
 */
static inline const uint8_t *map_op_key(const uint8_t *rec)
{
	return rec + 16;
}

static inline const uint8_t *map_op_value(const uint8_t *rec)
{
	return map_op_key(rec) + ((((const int32_t *)rec)[2] + 3) & ~3);
}

static inline const uint8_t *map_op_next(const uint8_t *rec)
{
	return map_op_value(rec) + ((((const int32_t *)rec)[3] + 3) & ~3);
}

void sa_key(const uint8_t *sa, uint8_t key[18]);
int kf_socket(int domain, int type, int snd_timeout_us, int32_t *err);
void kf_observe(int fd, int flags, uint8_t *out);
void kf_connect(int fd, const void *addr, uint32_t len, int flags, uint8_t *out);
void kf_close(int server, int fd, int tcp);
int kf_map_ops(const uint8_t *buf, int count, int32_t *rc_out);
int kf_control(int domain, const void *local, uint32_t llen, const void *dest, uint32_t dlen, int32_t *err);
int kf_set_resets(const int32_t *spec, int count);
int kf_reset_maps(void);
int kf_empty_map(int fd, int klen);
/* mw_apply's answer when the map writer cannot take a batch: kf_map_ops makes it by syscalls. */
#define MW_DECLINED (-2)
int mw_apply(const uint8_t *buf, int count, int32_t *rc_out, int *done);
int kf_writer_open(const char *path);
int kf_writer_maps(const int32_t *fds, int count);
long kf_writer_runs(void);
int kf_writer_check(void);
/*
 * A call that a signal cut short (a profiler's SIGPROF, a handler Node installed): poll() and a
 * socket call with a timeout are never restarted, and one ended so would look like a data path
 * that delivered nothing or refused.
 */
static inline int interrupted(int rc)
{
	return rc < 0 && errno == EINTR;
}
struct pollfd;
int kf_settle(struct pollfd *fds, int n, int max_ms);
/* The monotonic clock in ms (settle.c), for the shim's bounded waits. */
long now_ms(void);

#endif
