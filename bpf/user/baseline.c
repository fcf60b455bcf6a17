// SPDX-License-Identifier: Apache-2.0
/*
 * The speed floor of the kernel executor: the syscalls of one checked single-connect case, in C.
 * Started by the harness worker inside its network namespace and cgroup (programs attached,
 * namespace enrolled), with the worker's maps as inherited fds:
 *   3 km_frontend, 4 km_service, 5 km_endpoint, 6 km_backend, 7 km_sockstorage, 8 km_socket
 * Per iteration, like one case of the worker: a map diff (backend address changed, one frontend
 * replaced: 1 update + 1 delete + 1 update), socket, connect (redirected by connect4 from the
 * service VIP to the backend), getpeername, getsockname, accept4, the sk_storage lookup by fd,
 * a walk of km_socket, then close of the accepted side (RST via inherited SO_LINGER {1,0}) and
 * of the client.
 * Usage: baseline ITERATIONS. Prints {"iterations": N, "seconds": S}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { FD_FRONTEND = 3, FD_SERVICE, FD_ENDPOINT, FD_BACKEND, FD_STORAGE, FD_SOCKHASH };

#pragma pack(push, 1)
struct service_value {
	uint32_t count[7];
	uint32_t lb_policy;
	uint32_t service_port[10];
	uint32_t target_port[10];
	uint8_t wp_addr[16];
	uint32_t waypoint_port;
};
struct endpoint_key {
	uint32_t service_id, prio, index;
};
struct backend_value {
	uint8_t addr[16];
	uint32_t service_count;
	uint32_t service[10];
	uint8_t wp_addr[16];
	uint32_t waypoint_port;
};
#pragma pack(pop)

static void die(const char *what)
{
	fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint32_t map_port(uint16_t port)
{
	return htons(port); /* low 16 bits in network order */
}

static void ip4(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	memset(out, 0, 16);
	out[0] = a, out[1] = b, out[2] = c, out[3] = d;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000;
	int one = 1, zero = 0;
	struct linger lg = { 1, 0 };

	int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(lfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	struct sockaddr_in6 any = { .sin6_family = AF_INET6 };
	if (bind(lfd, (struct sockaddr *)&any, sizeof(any)) < 0 || listen(lfd, 4096) < 0)
		die("listen");
	socklen_t alen = sizeof(any);
	getsockname(lfd, (struct sockaddr *)&any, &alen);
	uint16_t target = ntohs(any.sin6_port);

	/* frontend 10.1.0.1 -> service 1 (port 80 -> target) -> endpoint (1,0,1) -> backend 5 */
	uint8_t fkey[16], fkey2[16];
	uint32_t sid = 1, uid = 5;
	ip4(fkey, 10, 1, 0, 1);
	struct service_value sv = { .count = { 1 } };
	sv.service_port[0] = map_port(80);
	sv.target_port[0] = map_port(target);
	struct endpoint_key ek = { 1, 0, 1 };
	struct backend_value bv = { .service_count = 1, .service = { 1 } };
	ip4(bv.addr, 10, 2, 0, 1);
	if (bpf_map_update_elem(FD_FRONTEND, fkey, &sid, 0) || bpf_map_update_elem(FD_SERVICE, &sid, &sv, 0) ||
	    bpf_map_update_elem(FD_ENDPOINT, &ek, &uid, 0) || bpf_map_update_elem(FD_BACKEND, &uid, &bv, 0))
		die("map setup (are the map fds 3..8 inherited?)");
	ip4(fkey2, 10, 3, 0, 1);
	bpf_map_update_elem(FD_FRONTEND, fkey2, &sid, 0);

	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(80) };
	inet_pton(AF_INET, "10.1.0.1", &vip.sin_addr);
	uint8_t storage[64], tkey[36], tnext[36];
	struct sockaddr_storage peer, local, acc;
	struct timespec t0, t1;
	long ok = 0, accepted = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		/* the map diff between two cases */
		ip4(bv.addr, 10, 2, 0, (uint8_t)(i % 4 + 1));
		bpf_map_update_elem(FD_BACKEND, &uid, &bv, 0);
		bpf_map_delete_elem(FD_FRONTEND, fkey2);
		ip4(fkey2, 10, 3, 0, (uint8_t)(i % 4 + 1));
		bpf_map_update_elem(FD_FRONTEND, fkey2, &sid, 0);

		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket");
		if (connect(fd, (struct sockaddr *)&vip, sizeof(vip)) < 0)
			die("connect");
		socklen_t len = sizeof(peer);
		getpeername(fd, (struct sockaddr *)&peer, &len);
		len = sizeof(local);
		getsockname(fd, (struct sockaddr *)&local, &len);
		len = sizeof(acc);
		int afd = accept4(lfd, (struct sockaddr *)&acc, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (bpf_map_lookup_elem(FD_STORAGE, &fd, storage) == 0)
			ok++;
		if (bpf_map_get_next_key(FD_SOCKHASH, NULL, tnext) == 0) {
			memcpy(tkey, tnext, sizeof(tkey));
			while (bpf_map_get_next_key(FD_SOCKHASH, tkey, tnext) == 0)
				memcpy(tkey, tnext, sizeof(tkey));
		}
		if (afd >= 0) {
			accepted++;
			close(afd);
		}
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	bpf_map_delete_elem(FD_FRONTEND, fkey);
	bpf_map_delete_elem(FD_FRONTEND, fkey2);
	bpf_map_delete_elem(FD_SERVICE, &sid);
	bpf_map_delete_elem(FD_ENDPOINT, &ek);
	bpf_map_delete_elem(FD_BACKEND, &uid);
	close(lfd);
	if (ok != n || accepted != n) {
		fprintf(stderr, "baseline: of %ld connects, %ld got storage and %ld reached the backend: is the namespace enrolled?\n", n, ok, accepted);
		return 1;
	}
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("{\"iterations\": %ld, \"seconds\": %.6f}\n", n, s);
	return 0;
}
