// SPDX-License-Identifier: Apache-2.0
/*
 * The kernel harness's hot path in C: each socket operation of a case is one call from JS
 * (through koffi) instead of one call per syscall (whole cases in one call: whole-run.c, which
 * builds on these functions). Built lazily by the worker into build/shim/libkmeshfast.so
 * (bpf/kernel/fastpath.ts); the kernel executor does not start without it. Whole cases and single
 * operations make the same syscalls in the same order, so what the data path sees (and the
 * observations) do not depend on the path. A TCP connect the kernel leaves in SYN_SENT is waited
 * for beyond the syscall (connect_tcp: polls, /proc/net counters, the connect asked once more).
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

#include "shim.h"

/* How long a TCP connect left in SYN_SENT is waited for at most (connect_tcp). */
#define CONNECT_WAIT_MS 250

int listeners[65536];
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

/* Port and 16-byte address, AF_INET as its v4-mapped form (like sockaddrKey in sockaddr.ts). */
void sa_key(const uint8_t *sa, uint8_t key[18])
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
	/* a signal leaves the handshake going on, as the timeout does */
	if (rc == 0 || (errno != EINPROGRESS && !interrupted(rc)))
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
