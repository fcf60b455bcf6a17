// SPDX-License-Identifier: Apache-2.0
/*
 * Bounded waits of the kernel harness for what loopback should already have done (a connect the
 * kernel left in SYN_SENT, a datagram or stream bytes not there yet). Loopback delivers inside the
 * sending syscall unless the kernel defers its softirq work, so such a wait usually finds nothing
 * will come; it then ends once the namespace is quiescent instead of running to its bound.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

/* How long the namespace must stay quiescent before a wait gives up early (kf_settle). */
#define QUIESCENT_MS 4

/* The file's text into buf (NUL-terminated); its length, or -1. */
static int read_text(const char *path, char *buf, int size)
{
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	ssize_t n = read(f, buf, size - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return (int)n;
}

/* The value of the column `name` in /proc/net/snmp's "Ip:" table, or -1. */
static long long snmp_ip(const char *text, const char *name)
{
	const char *names = strstr(text, "Ip: ");
	const char *values = names ? strstr(names + 4, "\nIp: ") : NULL;
	if (!values)
		return -1;
	const char *k = names + 4, *v = values + 5;
	size_t want = strlen(name);
	while (*k && *k != '\n') {
		size_t len = strcspn(k, " \n");
		char *end;
		long long x = strtoll(v, &end, 10);
		if (end == v)
			return -1;
		if (len == want && strncmp(k, name, len) == 0)
			return x;
		v = end;
		k += len;
		while (*k == ' ')
			k++;
	}
	return -1;
}

/* The value of the line `name` in /proc/net/snmp6, or -1. */
static long long snmp6(const char *text, const char *name)
{
	size_t want = strlen(name);
	for (const char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
		if (strncmp(line, name, want) == 0 && (line[want] == ' ' || line[want] == '\t'))
			return strtoll(line + want, NULL, 10);
	}
	return -1;
}

/* Packets the loopback device has taken (/proc/net/dev's lo line, transmit packets), or -1. */
static long long lo_packets(const char *text)
{
	const char *line = strstr(text, " lo:");
	if (!line)
		return -1;
	const char *p = line + 4;
	long long v = -1;
	/* receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets */
	for (int field = 0; field < 10; field++) {
		char *end;
		v = strtoll(p, &end, 10);
		if (end == p)
			return -1;
		p = end;
	}
	return v;
}

/*
 * Whether a packet may be in flight in the namespace (the /proc/net files read the caller's): a
 * packet the loopback device took is queued until IPv4 or IPv6 receives it, so when the device's
 * packets equal the packets IPv4 and IPv6 received, none is queued or being processed. (A packet
 * dropped before the device, e.g. by a cgroup_skb egress program, never counts, so it cannot keep
 * the namespace from being quiescent.) 1 in flight, 0 quiescent (with *sent, which any new packet
 * changes), -1 when the counters cannot be read.
 */
static int in_flight(long long *sent)
{
	char dev[4096], v4[2048], v6[8192];
	if (read_text("/proc/net/dev", dev, sizeof(dev)) < 0 || read_text("/proc/net/snmp", v4, sizeof(v4)) < 0 || read_text("/proc/net/snmp6", v6, sizeof(v6)) < 0)
		return -1;
	long long lo = lo_packets(dev), in4 = snmp_ip(v4, "InReceives"), in6 = snmp6(v6, "Ip6InReceives");
	if (lo < 0 || in4 < 0 || in6 < 0)
		return -1;
	*sent = lo;
	return lo != in4 + in6;
}

long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

/*
 * poll() for up to max_ms, except that a wait for something loopback should already have done
 * ends as soon as the namespace has been quiescent for QUIESCENT_MS: with no packet queued or
 * being processed, only a timer (a retransmission: 200 ms at the least) could still bring it.
 * (Bytes Nagle holds for a delayed ACK are no exception: reading what arrived acknowledges it,
 * which sends them, and the callers read before they wait again.)
 * The same answer as poll() (>0 ready, 0 not), without waiting out the bound when nothing will come.
 */
int kf_settle(struct pollfd *fds, int n, int max_ms)
{
	long start = now_ms();
	long long since = -1, sent = -1;
	for (;;) {
		int rc = poll(fds, n, 0);
		if (rc != 0 && !interrupted(rc))
			return rc;
		long long elapsed = now_ms() - start, now_sent = -1;
		if (in_flight(&now_sent) != 0 || now_sent != sent)
			since = elapsed, sent = now_sent;
		else if (elapsed - since >= QUIESCENT_MS)
			return 0;
		if (elapsed >= max_ms)
			return 0;
		rc = poll(fds, n, 1);
		if (rc != 0 && !interrupted(rc))
			return rc;
	}
}

