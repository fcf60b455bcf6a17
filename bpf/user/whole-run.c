// SPDX-License-Identifier: Apache-2.0
/*
 * Whole cases in one call (kf_run): the worker encodes a run of consecutive simple cases (map
 * diffs, enrolment changes, socket, connect, send and close operations; bpf/kernel/whole-cases.ts)
 * and the shim runs them back to back, writing each observation in the byte form of
 * bpf/runner/observations.ts. Each step makes the syscalls of its JS counterpart in the same order
 * (kf_map_ops, kf_control, kf_socket, kf_connect and the listeners' matching, send and the wait for
 * the bytes in sockets.ts, kf_close, closeAll), so that the data path sees the same things.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shim.h"

/* Program opcodes and observation records (whole-cases.ts and observations.ts mirror them). */
enum { P_MAPOPS = 1, P_SOCKET = 2, P_CONNECT = 3, P_CLOSE = 4, P_END = 5, P_ENROL = 6, P_SEND = 7, P_APPLY = 8, P_MANAGE = 9, P_CONTINUE = 10 };
enum { R_END = 0, R_SOCKET = 1, R_CONNECT = 2, R_SEND = 3, R_CLOSE = 4, R_APPLY = 5 };
/* status[0] */
enum { S_OK = 0, S_MAP = 1, S_SOCKET = 2, S_STORAGE = 3, S_BUG = 4, S_CONTROL = 5, S_RESET = 6, S_MANAGE = 7 };
#define MAX_SOCKS 32
#define MAX_PENDING 256
#define STORAGE_MAX 64
/* Bytes one operation may add to the output at most (kf_run checks the room before each). */
#define MAX_RECORD 128

/* A growing byte buffer (what a socket sent and what its server side received). */
struct bytes {
	uint8_t *b;
	size_t len, cap;
};

static int bytes_room(struct bytes *x, size_t n)
{
	if (x->len + n <= x->cap)
		return 0;
	size_t cap = x->cap ? x->cap : 256;
	while (cap < x->len + n)
		cap *= 2;
	uint8_t *b = realloc(x->b, cap);
	if (!b)
		return -1;
	x->b = b, x->cap = cap;
	return 0;
}

static int bytes_put(struct bytes *x, const void *p, size_t n)
{
	if (bytes_room(x, n))
		return -1;
	memcpy(x->b + x->len, p, n);
	x->len += n;
	return 0;
}

struct ksock {
	double id;
	int fd, server, tcp, inet6, open;
	/* payloads of messages 0.. (int32 length, bytes each), the next one to offer, and how many are left */
	const uint8_t *next;
	int left;
	struct bytes expected, received;
};

struct kpending {
	uint8_t key[18];
	int fd;
};

struct krun {
	struct ksock socks[MAX_SOCKS];
	struct kpending pending[MAX_PENDING];
	int nsocks, npending;
	uint8_t obs[O_SIZE];
};

/*
 * Stream records of the last run, for kf_streams: per send whose socket has a server side, int32
 * offset of its stream index in the output, int32 length and the bytes received, int32 length and
 * the bytes the socket took. JS turns them into stream views (streams.ts) and patches the index.
 */
static struct bytes streams;

static void put_head(uint8_t **o, int kind, double id)
{
	**o = kind;
	memcpy(*o + 1, &id, 8);
	*o += 9;
}

static void put_storage(uint8_t **o, int rc, const uint8_t *value, int inet6)
{
	if (rc < 0) {
		*(*o)++ = 0;
		return;
	}
	*(*o)++ = inet6 ? 6 : 4;
	memcpy(*o, value, STORAGE_MAX);
	*o += STORAGE_MAX;
}

static void put_peer(uint8_t **o, const uint8_t *sa)
{
	if (sa[0] == AF_INET) {
		*(*o)++ = 4;
		memcpy(*o, sa + 4, 4);
		*o += 4;
	} else {
		*(*o)++ = 6;
		memcpy(*o, sa + 8, 16);
		*o += 16;
	}
	*(*o)++ = sa[2];
	*(*o)++ = sa[3];
}

static void close_case(struct krun *r)
{
	for (int i = 0; i < r->nsocks; i++) {
		struct ksock *s = &r->socks[i];
		if (s->open)
			kf_close(s->server, s->fd, s->tcp);
		free(s->expected.b);
		free(s->received.b);
	}
	for (int i = 0; i < r->npending; i++)
		close(r->pending[i].fd);
	r->nsocks = r->npending = 0;
}

/* Parks an accepted server side no client claimed yet (the JS Map keeps a key's place; only the fd changes). */
static int park(struct krun *r, const uint8_t key[18], int fd)
{
	int j = 0;
	while (j < r->npending && memcmp(r->pending[j].key, key, 18))
		j++;
	if (j < r->npending)
		close(r->pending[j].fd);
	else if (r->npending == MAX_PENDING)
		return -1;
	else
		memcpy(r->pending[r->npending++].key, key, 18);
	r->pending[j].fd = fd;
	return 0;
}

/* The server side of a just-connected TCP client (sockets.ts claimServer). 0, or S_BUG. */
static int claim_server(struct krun *r, struct ksock *s, int flags)
{
	uint8_t *obs = r->obs;
	int others = *i32(obs, O_OTHERS);
	for (int i = 0; i < others; i++) {
		const uint8_t *slot = obs + O_OTHER + i * (4 + SA_MAX);
		uint8_t key[18];
		sa_key(slot + 4, key);
		if (park(r, key, *(const int32_t *)slot)) {
			/* close_case closes the parked ones; these fds are nobody's yet */
			for (int k = i; k < others; k++)
				close(*(const int32_t *)(obs + O_OTHER + k * (4 + SA_MAX)));
			if (*i32(obs, O_SERVER) >= 0)
				close(*i32(obs, O_SERVER));
			return S_BUG;
		}
	}
	int server = *i32(obs, O_SERVER);
	if (server != -2 && !*i32(obs, O_DEFERRED)) {
		s->server = server;
		return 0;
	}
	uint8_t want[18];
	sa_key(obs + O_LOCAL, want);
	int j = 0;
	while (server != -2 && j < r->npending && memcmp(r->pending[j].key, want, 18))
		j++;
	if (server != -2 && j < r->npending) {
		server = r->pending[j].fd;
		memmove(&r->pending[j], &r->pending[j + 1], (r->npending - j - 1) * sizeof(r->pending[0]));
		r->npending--;
	} else {
		/* accept until ours comes out; the others wait */
		const uint8_t *pp = obs + O_PEER;
		int lfd = listeners[(pp[2] << 8) | pp[3]];
		server = -1;
		while (lfd >= 0) {
			uint8_t acc[SA_MAX], key[18];
			socklen_t n = SA_MAX;
			int afd = accept4(lfd, (struct sockaddr *)acc, &n, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (afd < 0)
				break;
			sa_key(acc, key);
			if (memcmp(key, want, 18) == 0) {
				server = afd;
				break;
			}
			if (park(r, key, afd)) {
				close(afd);
				return S_BUG;
			}
		}
	}
	s->server = server;
	kf_observe(s->fd, flags, obs);
	return 0;
}

/* One connect and its observation (sockets.ts connect). 0, or the status to stop with. */
static int run_connect(struct krun *r, struct ksock *s, const uint8_t *addr, int32_t alen, uint8_t **o, int32_t *status)
{
	uint8_t *obs = r->obs;
	int flags = (s->tcp ? KF_TCP : 0) | (s->inet6 ? KF_INET6 : 0);
	if (s->tcp && s->server < 0)
		flags |= r->npending == 0 ? KF_ACCEPT : KF_DEFER;
	kf_connect(s->fd, addr, alen, flags, obs);
	int rc = *i32(obs, O_RC), connected = *i32(obs, O_CONNECTED);
	if (connected && s->tcp && s->server < 0 && claim_server(r, s, flags))
		return S_BUG;
	int src = *i32(obs, O_STORAGE_RC);
	if (src < 0 && src != -ENOENT) {
		status[3] = src;
		return S_STORAGE;
	}
	put_head(o, R_CONNECT, s->id);
	int32_t e = rc < 0 ? *i32(obs, O_ERR) : -1;
	memcpy(*o, &e, 4);
	*o += 4;
	if (connected && rc == 0)
		put_peer(o, obs + O_PEER);
	else
		*(*o)++ = 0;
	put_storage(o, src, obs + O_STORAGE, s->inet6);
	*(*o)++ = s->tcp && connected ? *i32(obs, O_IN_SOCKHASH) : 0;
	return 0;
}

/*
 * Everything the server side has now (sockets.ts recvAll). A TCP recv returns less than asked
 * only once the receive queue is empty, so a short read ends it without a recv that finds nothing.
 */
#define RECV_CHUNK (64 * 1024)

static int recv_all(struct ksock *s)
{
	for (;;) {
		if (bytes_room(&s->received, RECV_CHUNK))
			return -1;
		ssize_t n = recv(s->server, s->received.b + s->received.len, RECV_CHUNK, MSG_DONTWAIT);
		if (n <= 0)
			return 0;
		s->received.len += n;
		if (n < RECV_CHUNK)
			return 0;
	}
}

/* Bytes a complete stream holds: the payload, plus a prefix once one has started (streams.ts wantedLength). */
static size_t wanted_length(const struct bytes *got, size_t expected)
{
	const uint8_t *g = got->b;
	if (got->len >= 5 && g[0] == 0x01 && g[1] == 0 && g[2] == 0 && g[3] == 0) {
		if (g[4] == 6)
			return expected + 16;
		if (g[4] == 18)
			return expected + 28;
	}
	return expected;
}

/*
 * One send operation (case-runner.ts opSend with sockets.ts send and received): each message the
 * socket takes is expected at its peer; a TCP socket's server side is then read until the bytes
 * are complete or wait_ms have passed. 0, or the status to stop with.
 */
static int run_send(struct krun *r, struct ksock *s, int messages, int wait_ms, uint8_t *out, uint8_t **o, int32_t *status)
{
	for (int i = 0; i < messages; i++) {
		if (s->left == 0)
			return S_BUG;
		int32_t plen;
		memcpy(&plen, s->next, 4);
		const uint8_t *payload = s->next + 4;
		/* A TCP socket without a connection cannot deliver: do not wait for SO_SNDTIMEO. */
		ssize_t n;
		do
			n = send(s->fd, payload, plen, MSG_NOSIGNAL | (s->tcp && s->server < 0 ? MSG_DONTWAIT : 0));
		while (interrupted(n));
		if (n <= 0)
			continue;
		s->next += 4 + plen;
		s->left--;
		if (bytes_put(&s->expected, payload, n < plen ? n : plen))
			return S_BUG;
	}
	int32_t index = -1;
	if (s->tcp && s->server >= 0) {
		if (recv_all(s))
			return S_BUG;
		long deadline = now_ms() + wait_ms;
		while (s->received.len < wanted_length(&s->received, s->expected.len)) {
			long left = deadline - now_ms();
			if (left <= 0)
				break;
			struct pollfd pfd = { .fd = s->server, .events = POLLIN };
			if (kf_settle(&pfd, 1, (int)left) <= 0)
				break; /* nothing more will come (sockets.ts received) */
			if (recv_all(s))
				return S_BUG;
		}
		index = 0; /* JS numbers the stream when it adds the view */
		int32_t at = (int32_t)(*o - out) + 9, rlen = s->received.len, elen = s->expected.len;
		if (bytes_put(&streams, &at, 4) || bytes_put(&streams, &rlen, 4) || bytes_put(&streams, s->received.b, rlen) || bytes_put(&streams, &elen, 4) ||
		    bytes_put(&streams, s->expected.b, elen))
			return S_BUG;
	}
	kf_observe(s->fd, 0, r->obs);
	int src = *i32(r->obs, O_STORAGE_RC);
	if (src < 0 && src != -ENOENT) {
		status[3] = src;
		return S_STORAGE;
	}
	put_head(o, R_SEND, s->id);
	memcpy(*o, &index, 4);
	*o += 4;
	put_storage(o, src, r->obs + O_STORAGE, s->inet6);
	return 0;
}

/* The end of `count` kf_map_ops records from p, or NULL when they would pass `end` (a worker bug). */
static const uint8_t *skip_map_ops(const uint8_t *p, int32_t count, const uint8_t *end)
{
	if (count < 0)
		return NULL;
	for (int i = 0; i < count; i++) {
		int32_t h[4];
		if (end - p < 16)
			return NULL;
		memcpy(h, p, 16);
		if (h[2] < 0 || h[3] < 0)
			return NULL;
		size_t n = 16 + (((size_t)h[2] + 3) & ~(size_t)3) + (((size_t)h[3] + 3) & ~(size_t)3);
		if ((size_t)(end - p) < n)
			return NULL;
		p += n;
	}
	return p;
}

/* Map writes: int32 count, then kf_map_ops records. `done` counts the case's records before these. */
static int run_map_ops(const uint8_t **pp, const uint8_t *end, int *done, int32_t *status)
{
	const uint8_t *p = *pp;
	int32_t count, rc;
	memcpy(&count, p, 4);
	p += 4;
	const uint8_t *next = skip_map_ops(p, count, end);
	if (!next)
		return S_BUG;
	int failed = kf_map_ops(p, count, &rc);
	*pp = next;
	if (failed >= 0) {
		status[2] = *done + failed, status[3] = rc;
		return S_MAP;
	}
	*done += count;
	return 0;
}

/* The stream records of the last kf_run (status[4] bytes). */
void kf_streams(uint8_t *dst, int len)
{
	memcpy(dst, streams.b, len < (int)streams.len ? len : (int)streams.len);
}

/*
 * status: [0] S_OK, S_MAP ([2] the case's record, [3] rc), S_SOCKET ([2] stage, [3] errno),
 * S_STORAGE ([3] rc), S_BUG (unknown socket, table full, out of memory: a worker bug), S_CONTROL
 * ([2] local << 8 | stage, [3] errno), S_RESET ([3] rc of putting a map back), S_MANAGE ([2] 0
 * emptying km_manage, 1 writing it; [3] rc); [1] the case it happened in; [4] bytes of stream
 * records (kf_streams). Returns the bytes written to out (out_len bytes long).
 */
int kf_run(const uint8_t *prog, int len, uint8_t *out, int out_len, int32_t *status)
{
	struct krun run;
	struct krun *r = &run;
	int ncase = 0, maps = 0, st = 0;
	uint8_t *o = out;
	const uint8_t *p = prog, *end = prog + len;
	r->nsocks = r->npending = 0;
	streams.len = 0;
	status[0] = S_OK;
	/* Each case starts from the maps outside the ABI as loaded (kf_set_resets). */
	int reset = 1;
	while (p < end && st == 0) {
		/* P_CONTINUE as a program's first record: its first case goes on from the program before
		 * (its set-up), not put back again. Anywhere else it is unknown (S_BUG). */
		if (p == prog && *p == P_CONTINUE) {
			reset = 0;
			p++;
			continue;
		}
		if (reset) {
			reset = 0;
			int rc = kf_reset_maps();
			if (rc < 0) {
				status[1] = ncase, status[3] = rc;
				st = S_RESET;
				break;
			}
		}
		/* Room for the largest record an operation writes (a connect's: 98 bytes) */
		if (out + out_len - o < MAX_RECORD) {
			st = S_BUG;
			break;
		}
		int op = *p++;
		status[1] = ncase;
		if (op == P_MAPOPS || op == P_APPLY) {
			st = run_map_ops(&p, end, &maps, status);
			if (st == 0 && op == P_APPLY)
				*o++ = R_APPLY;
		} else if (op == P_SOCKET) {
			/* f64 id; int32 domain, type, timeout_us, inet6, payload bytes; payloads (int32 length, bytes) */
			double id;
			int32_t a[5];
			memcpy(&id, p, 8);
			memcpy(a, p + 8, 20);
			const uint8_t *payloads = p + 28;
			p += 28 + a[4];
			if (r->nsocks == MAX_SOCKS) {
				st = S_BUG;
				break;
			}
			int32_t err[2];
			int fd = kf_socket(a[0], a[1], a[2], err);
			if (fd < 0) {
				status[2] = err[0], status[3] = err[1];
				st = S_SOCKET;
				break;
			}
			int left = 0;
			for (const uint8_t *q = payloads; q < p; left++) {
				int32_t plen;
				memcpy(&plen, q, 4);
				q += 4 + plen;
			}
			r->socks[r->nsocks++] = (struct ksock){ .id = id, .fd = fd, .server = -1, .tcp = a[2] > 0, .inet6 = a[3], .open = 1, .next = payloads, .left = left };
			put_head(&o, R_SOCKET, id);
		} else if (op == P_CONNECT || op == P_CLOSE || op == P_SEND) {
			double id;
			memcpy(&id, p, 8);
			p += 8;
			struct ksock *s = NULL;
			for (int i = r->nsocks - 1; i >= 0; i--)
				if (r->socks[i].open && r->socks[i].id == id) {
					s = &r->socks[i];
					break;
				}
			if (!s) {
				st = S_BUG;
			} else if (op == P_CLOSE) {
				kf_close(s->server, s->fd, s->tcp);
				s->server = -1;
				s->open = 0;
				put_head(&o, R_CLOSE, id);
			} else if (op == P_CONNECT) {
				int32_t alen;
				memcpy(&alen, p, 4);
				st = run_connect(r, s, p + 4, alen, &o, status);
				p += 4 + 28;
			} else {
				int32_t a[2]; /* messages, wait_ms */
				memcpy(a, p, 8);
				p += 8;
				st = run_send(r, s, a[0], a[1], out, &o, status);
			}
		} else if (op == P_ENROL) {
			/* int32 count, then per local: int32 domain, local len, sockaddr[28], dest len, sockaddr[28] */
			int32_t count;
			memcpy(&count, p, 4);
			p += 4;
			for (int i = 0; i < count && st == 0; i++) {
				int32_t a[2], b, err = 0;
				memcpy(a, p, 8);
				memcpy(&b, p + 8 + 28, 4);
				int stage = kf_control(a[0], p + 8, a[1], p + 8 + 28 + 4, b, &err);
				p += 8 + 28 + 4 + 28;
				if (stage) {
					status[2] = (i << 8) | stage, status[3] = err;
					st = S_CONTROL;
				}
			}
		} else if (op == P_MANAGE) {
			/* An enrolment by writes (setEnrolment in sockets.ts): int32 fd, key size, count, then
			 * kf_map_ops records; km_manage is emptied, whatever wrote it, then they are written. */
			int32_t a[3], rc;
			memcpy(a, p, 12);
			const uint8_t *records = p + 12;
			if (!(p = skip_map_ops(records, a[2], end))) {
				st = S_BUG;
				break;
			}
			if ((rc = kf_empty_map(a[0], a[1])) < 0) {
				status[2] = 0, status[3] = rc;
				st = S_MANAGE;
			} else if (kf_map_ops(records, a[2], &rc) >= 0) {
				status[2] = 1, status[3] = rc;
				st = S_MANAGE;
			}
		} else if (op == P_END) {
			close_case(r);
			*o++ = R_END;
			ncase++;
			maps = 0;
			reset = 1;
		} else {
			st = S_BUG;
		}
	}
	status[0] = st;
	if (st)
		close_case(r);
	status[4] = streams.len;
	return o - out;
}
