// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel harness's hot path in C: each socket operation of a case is one call from JS
 * (through koffi) instead of one call per syscall, and runs of simple cases (socket, connect and
 * close only) are one call for all of them (kf_run). Built lazily by the worker into
 * build/shim/libkmeshfast.so (bpf/kernel/fastpath.ts); when it cannot be built the harness makes
 * the same syscalls one by one. Every function makes exactly the syscalls the JS path makes, in
 * the same order, so that what the data path sees (and the observations) do not change.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* In setup-ops.c: a case's set-up (map writes, enrolment control connects). */
int kf_map_ops(const uint8_t *buf, int count, int32_t *rc_out);
int kf_control(int domain, const void *local, uint32_t llen, const void *dest, uint32_t dlen, int32_t *err);
/* In settle.c: poll() that ends once nothing is in flight in the namespace. */
int kf_settle(struct pollfd *fds, int n, int max_ms);

#define KF_ABI 1
#define SA_MAX 128
#define MAX_OTHERS 16
/* How long a TCP connect left in SYN_SENT is waited for at most (connect_tcp). */
#define CONNECT_WAIT_MS 250

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

static int listeners[65536];
static int sockhash_fd = -1, tuple_size, storage_fd = -1, storage_size;

int kf_init(int sockhash, int tuple, int storage, int ssize)
{
	for (int i = 0; i < 65536; i++)
		listeners[i] = -1;
	sockhash_fd = sockhash;
	tuple_size = tuple;
	storage_fd = storage;
	storage_size = ssize;
	if (tuple > 64 || ssize > 256)
		return -EINVAL;
	return KF_ABI;
}

int kf_out_size(void)
{
	return O_SIZE;
}

void kf_set_listener(int port, int fd)
{
	if (port >= 0 && port < 65536)
		listeners[port] = fd;
}

static inline int32_t *i32(uint8_t *out, int off)
{
	return (int32_t *)(out + off);
}

/* Port and 16-byte address, AF_INET as its v4-mapped form (like sockaddrKey in sockaddr.ts). */
static void sa_key(const uint8_t *sa, uint8_t key[18])
{
	key[0] = sa[2];
	key[1] = sa[3];
	if (sa[0] == AF_INET) {
		memset(key + 2, 0, 10);
		key[12] = key[13] = 0xff;
		memcpy(key + 14, sa + 4, 4);
	} else {
		memcpy(key + 2, sa + 8, 16);
	}
}

/* Socket, and SO_SNDTIMEO for TCP. Returns the fd, or -1 with err[0] = stage (1, 2), err[1] = errno. */
int kf_socket(int domain, int type, int snd_timeout_us, int32_t *err)
{
	int fd = socket(domain, type, 0);
	if (fd < 0) {
		err[0] = 1;
		err[1] = errno;
		return -1;
	}
	if (snd_timeout_us > 0) {
		struct timeval tv = { .tv_sec = snd_timeout_us / 1000000, .tv_usec = snd_timeout_us % 1000000 };
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
			err[0] = 2;
			err[1] = errno;
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* The sockhash walk and the sk_storage lookup after a connect or a send. */
void kf_observe(int fd, int flags, uint8_t *out)
{
	if (flags & KF_TCP && *i32(out, O_CONNECTED)) {
		uint8_t t[64], key[64], next[64];
		const uint8_t *l = out + O_LOCAL, *p = out + O_PEER;
		memset(t, 0, sizeof(t));
		if (flags & KF_INET6) {
			memcpy(t, l + 8, 16);
			memcpy(t + 16, p + 8, 16);
			t[32] = l[2], t[33] = l[3], t[34] = p[2], t[35] = p[3];
		} else {
			memcpy(t, l + 4, 4);
			memcpy(t + 4, p + 4, 4);
			t[8] = l[2], t[9] = l[3], t[10] = p[2], t[11] = p[3];
		}
		int found = 0;
		int rc = bpf_map_get_next_key(sockhash_fd, NULL, next);
		while (rc == 0) {
			if (memcmp(next, t, tuple_size) == 0) {
				found = 1;
				break;
			}
			memcpy(key, next, tuple_size);
			rc = bpf_map_get_next_key(sockhash_fd, key, next);
		}
		*i32(out, O_IN_SOCKHASH) = found;
	} else {
		*i32(out, O_IN_SOCKHASH) = 0;
	}
	int key = fd;
	*i32(out, O_STORAGE_RC) = bpf_map_lookup_elem(storage_fd, &key, out + O_STORAGE);
}

/*
 * A TCP connect. kf_socket gave the socket an SO_SNDTIMEO of one slice: a loopback handshake
 * completes inside connect(), so connect() returns at once unless the kernel left the socket in
 * SYN_SENT. Such a connect is then waited for (kf_settle: POLLOUT once it is established or
 * refused), up to CONNECT_WAIT_MS. A settled connect is asked once more, which returns what the
 * blocking connect would have returned (0, or the refusal's errno) and leaves the socket in the
 * same state; one still in SYN_SENT gives EINPROGRESS, as a blocking connect's timeout does.
 */
static int connect_tcp(int fd, const void *addr, uint32_t len)
{
	int rc = connect(fd, addr, len);
	if (rc == 0 || errno != EINPROGRESS)
		return rc;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	if (kf_settle(&p, 1, CONNECT_WAIT_MS) > 0)
		return connect(fd, addr, len);
	errno = EINPROGRESS;
	return -1;
}

/*
 * connect, getpeername, and for a connected TCP socket getsockname, the accept of its server side
 * (other clients' connections accepted on the way are reported for JS to keep), then kf_observe.
 */
void kf_connect(int fd, const void *addr, uint32_t len, int flags, uint8_t *out)
{
	int rc = flags & KF_TCP ? connect_tcp(fd, addr, len) : connect(fd, addr, len);
	*i32(out, O_RC) = rc;
	*i32(out, O_ERR) = rc < 0 ? errno : 0;
	*i32(out, O_SERVER) = -1;
	*i32(out, O_OTHERS) = 0;
	*i32(out, O_DEFERRED) = 0;
	socklen_t n = SA_MAX;
	int connected = getpeername(fd, (struct sockaddr *)(out + O_PEER), &n) == 0;
	*i32(out, O_CONNECTED) = connected;
	if (connected && flags & KF_TCP) {
		n = SA_MAX;
		getsockname(fd, (struct sockaddr *)(out + O_LOCAL), &n);
		if (flags & KF_DEFER) {
			*i32(out, O_DEFERRED) = 1;
			return;
		}
		const uint8_t *p = out + O_PEER;
		int lfd = flags & KF_ACCEPT ? listeners[(p[2] << 8) | p[3]] : -1;
		if (lfd >= 0) {
			uint8_t want[18], got[18];
			sa_key(out + O_LOCAL, want);
			int others = 0;
			for (;;) {
				if (others == MAX_OTHERS) {
					/* JS keeps these, goes on accepting, then calls kf_observe */
					*i32(out, O_SERVER) = -2;
					*i32(out, O_OTHERS) = others;
					*i32(out, O_DEFERRED) = 1;
					return;
				}
				uint8_t *slot = out + O_OTHER + others * (4 + SA_MAX);
				n = SA_MAX;
				int afd = accept4(lfd, (struct sockaddr *)(slot + 4), &n, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (afd < 0)
					break;
				sa_key(slot + 4, got);
				if (memcmp(got, want, sizeof(want)) == 0) {
					*i32(out, O_SERVER) = afd;
					break;
				}
				*(int32_t *)slot = afd;
				others++;
			}
			*i32(out, O_OTHERS) = others;
		}
	}
	kf_observe(fd, flags, out);
}

/* Closes a client and its server side; without one a TCP client closes with RST (SO_LINGER {1,0}). */
void kf_close(int server, int fd, int tcp)
{
	if (server >= 0) {
		close(server);
	} else if (tcp) {
		struct linger lg = { 1, 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
}

/*
 * Whole cases in one call: the worker encodes a run of consecutive simple cases (map diff, then
 * socket, connect and close operations) and the shim runs them back to back, writing each
 * observation in the byte form of obscodec.ts. Each step makes the syscalls of its JS
 * counterpart in the same order (kf_map_ops, kf_socket, kf_connect, kf_close, closeAll).
 */
enum { P_MAPOPS = 1, P_SOCKET = 2, P_CONNECT = 3, P_CLOSE = 4, P_END = 5, P_ENROL = 6 };
enum { R_END = 0, R_SOCKET = 1, R_CONNECT = 2, R_CLOSE = 4 };
#define MAX_SOCKS 32
#define MAX_PENDING 256
#define STORAGE_MAX 64

struct ksock {
	double id;
	int fd, server, tcp, inet6, open;
};

struct kpending {
	uint8_t key[18];
	int fd;
};

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

/*
 * status: [0] 0 ok, 1 map write failed ([2] record, [3] rc), 2 socket failed ([2] stage, [3]
 * errno), 3 storage lookup failed ([3] rc), 4 unknown socket / table full (a worker bug),
 * 5 control connect failed ([2] local << 8 | stage, [3] errno);
 * [1] the case it happened in. Returns the bytes written to out.
 */
int kf_run(const uint8_t *prog, int len, uint8_t *out, int32_t *status)
{
	struct ksock socks[MAX_SOCKS];
	struct kpending pending[MAX_PENDING];
	int nsocks = 0, npending = 0, ncase = 0;
	uint8_t *o = out, obs[O_SIZE];
	const uint8_t *p = prog, *end = prog + len;
	status[0] = 0;
	while (p < end) {
		int op = *p++;
		status[1] = ncase;
		if (op == P_MAPOPS) {
			int32_t count, rc;
			memcpy(&count, p, 4);
			p += 4;
			const uint8_t *q = p;
			int failed = kf_map_ops(p, count, &rc);
			for (int i = 0; i < count; i++) {
				const int32_t *h = (const int32_t *)q;
				q += 16 + ((h[2] + 3) & ~3) + ((h[3] + 3) & ~3);
			}
			p = q;
			if (failed >= 0) {
				status[0] = 1, status[2] = failed, status[3] = rc;
				goto fail;
			}
		} else if (op == P_SOCKET) {
			double id;
			int32_t a[4]; /* domain, type, timeout_us, inet6 */
			memcpy(&id, p, 8);
			memcpy(a, p + 8, 16);
			p += 24;
			if (nsocks == MAX_SOCKS) {
				status[0] = 4;
				goto fail;
			}
			int32_t err[2];
			int fd = kf_socket(a[0], a[1], a[2], err);
			if (fd < 0) {
				status[0] = 2, status[2] = err[0], status[3] = err[1];
				goto fail;
			}
			socks[nsocks++] = (struct ksock){ id, fd, -1, a[2] > 0, a[3], 1 };
			put_head(&o, R_SOCKET, id);
		} else if (op == P_CONNECT || op == P_CLOSE) {
			double id;
			memcpy(&id, p, 8);
			p += 8;
			struct ksock *s = NULL;
			for (int i = nsocks - 1; i >= 0; i--)
				if (socks[i].open && socks[i].id == id) {
					s = &socks[i];
					break;
				}
			if (!s) {
				status[0] = 4;
				goto fail;
			}
			if (op == P_CLOSE) {
				kf_close(s->server, s->fd, s->tcp);
				s->server = -1;
				s->open = 0;
				put_head(&o, R_CLOSE, id);
				continue;
			}
			int32_t alen;
			memcpy(&alen, p, 4);
			const uint8_t *addr = p + 4;
			p += 4 + 28;
			int flags = (s->tcp ? KF_TCP : 0) | (s->inet6 ? KF_INET6 : 0);
			if (s->tcp && s->server < 0)
				flags |= npending == 0 ? KF_ACCEPT : KF_DEFER;
			kf_connect(s->fd, addr, alen, flags, obs);
			int rc = *i32(obs, O_RC), connected = *i32(obs, O_CONNECTED);
			if (connected && s->tcp && s->server < 0) {
				int others = *i32(obs, O_OTHERS);
				for (int i = 0; i < others; i++) {
					const uint8_t *slot = obs + O_OTHER + i * (4 + SA_MAX);
					uint8_t key[18];
					sa_key(slot + 4, key);
					int j = 0;
					while (j < npending && memcmp(pending[j].key, key, 18))
						j++;
					if (j < npending) {
						close(pending[j].fd);
						/* the JS Map keeps the key's place; only the fd changes */
					} else if (npending == MAX_PENDING) {
						status[0] = 4;
						goto fail;
					} else {
						memcpy(pending[npending++].key, key, 18);
					}
					pending[j].fd = *(const int32_t *)slot;
				}
				int server = *i32(obs, O_SERVER);
				if (server == -2 || *i32(obs, O_DEFERRED)) {
					uint8_t want[18];
					sa_key(obs + O_LOCAL, want);
					int j = 0;
					while (server != -2 && j < npending && memcmp(pending[j].key, want, 18))
						j++;
					if (server != -2 && j < npending) {
						server = pending[j].fd;
						memmove(&pending[j], &pending[j + 1], (npending - j - 1) * sizeof(pending[0]));
						npending--;
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
							int k = 0;
							while (k < npending && memcmp(pending[k].key, key, 18))
								k++;
							if (k < npending) {
								close(pending[k].fd);
							} else if (npending == MAX_PENDING) {
								close(afd);
								status[0] = 4;
								goto fail;
							} else {
								memcpy(pending[npending++].key, key, 18);
							}
							pending[k].fd = afd;
						}
					}
					s->server = server;
					kf_observe(s->fd, flags, obs);
				} else {
					s->server = server;
				}
			}
			int src = *i32(obs, O_STORAGE_RC);
			if (src < 0 && src != -ENOENT) {
				status[0] = 3, status[3] = src;
				goto fail;
			}
			put_head(&o, R_CONNECT, id);
			int32_t e = rc < 0 ? *i32(obs, O_ERR) : -1;
			memcpy(o, &e, 4);
			o += 4;
			if (connected && rc == 0)
				put_peer(&o, obs + O_PEER);
			else
				*o++ = 0;
			put_storage(&o, src, obs + O_STORAGE, s->inet6);
			*o++ = s->tcp && connected ? *i32(obs, O_IN_SOCKHASH) : 0;
		} else if (op == P_ENROL) {
			/* int32 count, then per local: int32 domain, local len, sockaddr[28], dest len, sockaddr[28] */
			int32_t count;
			memcpy(&count, p, 4);
			p += 4;
			for (int i = 0; i < count; i++) {
				int32_t a[2], b, err = 0;
				memcpy(a, p, 8);
				memcpy(&b, p + 8 + 28, 4);
				int stage = kf_control(a[0], p + 8, a[1], p + 8 + 28 + 4, b, &err);
				p += 8 + 28 + 4 + 28;
				if (stage) {
					status[0] = 5, status[2] = (i << 8) | stage, status[3] = err;
					goto fail;
				}
			}
		} else if (op == P_END) {
			for (int i = 0; i < nsocks; i++)
				if (socks[i].open)
					kf_close(socks[i].server, socks[i].fd, socks[i].tcp);
			for (int i = 0; i < npending; i++)
				close(pending[i].fd);
			nsocks = npending = 0;
			*o++ = R_END;
			ncase++;
		} else {
			status[0] = 4;
			goto fail;
		}
	}
	return o - out;
fail:
	for (int i = 0; i < nsocks; i++)
		if (socks[i].open)
			kf_close(socks[i].server, socks[i].fd, socks[i].tcp);
	for (int i = 0; i < npending; i++)
		close(pending[i].fd);
	return o - out;
}
