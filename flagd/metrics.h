/* SPDX-License-Identifier: MIT */
/*
 * metrics.h — flagd's counters, updated lock-free from any thread and
 * rendered in Prometheus text format by http.c.
 */
#ifndef FLAGD_METRICS_H
#define FLAGD_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

/* Request kinds, indexing flagd_metrics.requests. */
typedef enum flagd_op {
	FLAGD_OP_WRITE,
	FLAGD_OP_GET,
	FLAGD_OP_LIST,
	FLAGD_OP_SNAPSHOT,
	FLAGD_OP_AUDIT,
	FLAGD_OP_KEYS,
	FLAGD_OP_INFO,
	FLAGD_OP_ACK,
	FLAGD_OP_CLIENTS,
	FLAGD_OP_CLUSTER,
	FLAGD_OP_INVALID,
	FLAGD_OP_COUNT_,
} flagd_op;

#define FLAGD_MAX_CODES 32

typedef struct flagd_metrics {
	_Atomic uint64_t requests[FLAGD_OP_COUNT_];
	_Atomic uint64_t errors[FLAGD_MAX_CODES]; /* replies by SLUICE_E* */
	_Atomic uint64_t bad_input;               /* undecodable requests */
	_Atomic uint64_t writes_committed;
	_Atomic uint64_t writes_noop;
	_Atomic uint64_t events_published;
	_Atomic uint64_t heartbeats_published;
	_Atomic uint64_t write_ns_sum; /* time in the writer, committed */
	_Atomic uint64_t revision;
	_Atomic uint64_t acks;             /* client acks recorded */
	_Atomic uint64_t acks_unverified;  /* of which unsigned */
	_Atomic uint64_t clients_evicted;  /* registry full: LRU evictions */
	_Atomic uint64_t clients_live;     /* gauge, as of the last ack/list */
	_Atomic uint64_t writes_forwarded; /* sent on to the leader */
	_Atomic uint64_t writes_rerouted;  /* not taken: routed again */
	_Atomic uint64_t entries_applied;  /* raft entries applied here */
	_Atomic uint64_t snapshots_taken;
	_Atomic uint64_t snapshots_restored;
	_Atomic int      ready;
} flagd_metrics;

void flagd_metrics_count_error(flagd_metrics *m, int code);

/* Writes every counter in Prometheus text exposition format. */
void flagd_metrics_render(const flagd_metrics *m, FILE *f);

const char *flagd_op_name(flagd_op op);

#endif /* FLAGD_METRICS_H */
