/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every map of the data path, in one place (kmesh-dataplane.md, section 2). Maps are shared by
 * name across the three objects, so each object includes this file and gets identical
 * definitions; a loader reuses one kernel map per name. Nothing is pinned.
 */
#ifndef KM_MAPS_H
#define KM_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"

/* Frontend: service VIP or pod IP -> service id or backend uid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct frontend_key);
	__type(value, struct frontend_value);
	__uint(max_entries, KM_MAP_FRONTEND_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_frontend SEC(".maps");

/* Service id -> endpoint counts per priority, lb policy, port slots, waypoint. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct service_key);
	__type(value, struct service_value);
	__uint(max_entries, KM_MAP_SERVICE_MAX);
} km_service SEC(".maps");

/* (service id, priority, 1-based index) -> backend uid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_value);
	__uint(max_entries, KM_MAP_ENDPOINT_MAX);
} km_endpoint SEC(".maps");

/* Backend uid -> address, services, waypoint. uid 0 is the DNS proxy. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct backend_key);
	__type(value, struct backend_value);
	__uint(max_entries, KM_MAP_BACKEND_MAX);
} km_backend SEC(".maps");

/* Enrolled network namespaces (by cookie) and pod IPs; the value is always 0. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, union manager_key);
	__type(value, __u32);
	__uint(max_entries, KM_MAP_MANAGE_MAX);
} km_manage SEC(".maps");

/* Per-socket storage: original destination and waypoint flags. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__type(key, int);
	__type(value, struct sock_storage_data);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} km_sockstorage SEC(".maps");

/* connect4's own prog array: slot 0 holds connect4 itself. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, KM_TAIL_ARRAY_SIZE);
} km_cgr_tailcall SEC(".maps");

/* connect6's own prog array: slot 1 holds connect6 itself. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, KM_TAIL_ARRAY_SIZE);
} km_cgr_tail6 SEC(".maps");

/* Waypoint-bound sockets by forward tuple; sendmsg_prog is attached to it as msg_verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, struct bpf_sock_tuple);
	__type(value, __u32);
	__uint(max_entries, KM_MAP_SOCKHASH_MAX);
} km_socket SEC(".maps");

#endif /* KM_MAPS_H */
