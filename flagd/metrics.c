// SPDX-License-Identifier: MIT
//
// metrics.c — flagd's counters and their Prometheus text rendering.

#include <string.h>

#include "metrics.h"
#include "sl.h"

static const char *op_names[FLAGD_OP_COUNT_] = {
	[FLAGD_OP_WRITE]    = "write",
	[FLAGD_OP_GET]      = "get",
	[FLAGD_OP_LIST]     = "list",
	[FLAGD_OP_SNAPSHOT] = "snapshot",
	[FLAGD_OP_AUDIT]    = "audit",
	[FLAGD_OP_KEYS]     = "keys",
	[FLAGD_OP_INFO]     = "info",
	[FLAGD_OP_ACK]      = "ack",
	[FLAGD_OP_CLIENTS]  = "clients",
	[FLAGD_OP_CLUSTER]  = "cluster",
	[FLAGD_OP_INVALID]  = "invalid",
};

const char *
flagd_op_name(flagd_op op)
{
	if ((unsigned) op >= FLAGD_OP_COUNT_) {
		return ("invalid");
	}
	return (op_names[op]);
}

void
flagd_metrics_count_error(flagd_metrics *m, int code)
{
	if (code > 0 && code < FLAGD_MAX_CODES) {
		atomic_fetch_add(&m->errors[code], 1);
	}
}

void
flagd_metrics_render(const flagd_metrics *m, FILE *f)
{
	fprintf(f,
	    "# HELP sluice_flagd_requests_total API requests by kind.\n"
	    "# TYPE sluice_flagd_requests_total counter\n");
	for (int i = 0; i < FLAGD_OP_COUNT_; i++) {
		fprintf(f, "sluice_flagd_requests_total{op=\"%s\"} %llu\n",
		    op_names[i],
		    (unsigned long long) atomic_load(&m->requests[i]));
	}
	fprintf(f,
	    "# HELP sluice_flagd_errors_total Error replies by code.\n"
	    "# TYPE sluice_flagd_errors_total counter\n");
	for (int i = 1; i < FLAGD_MAX_CODES; i++) {
		const char *n = sluice_errname(i);
		if (strcmp(n, "EUNKNOWN") == 0) {
			continue;
		}
		fprintf(f, "sluice_flagd_errors_total{code=\"%s\"} %llu\n", n,
		    (unsigned long long) atomic_load(&m->errors[i]));
	}
	fprintf(f,
	    "# HELP sluice_flagd_bad_input_total Requests that could not be "
	    "decoded.\n"
	    "# TYPE sluice_flagd_bad_input_total counter\n"
	    "sluice_flagd_bad_input_total %llu\n"
	    "# TYPE sluice_flagd_writes_committed_total counter\n"
	    "sluice_flagd_writes_committed_total %llu\n"
	    "# TYPE sluice_flagd_writes_noop_total counter\n"
	    "sluice_flagd_writes_noop_total %llu\n"
	    "# TYPE sluice_flagd_write_seconds_sum counter\n"
	    "sluice_flagd_write_seconds_sum %.6f\n"
	    "# TYPE sluice_flagd_events_published_total counter\n"
	    "sluice_flagd_events_published_total %llu\n"
	    "# TYPE sluice_flagd_heartbeats_published_total counter\n"
	    "sluice_flagd_heartbeats_published_total %llu\n"
	    "# HELP sluice_flagd_revision The committed revision applied.\n"
	    "# TYPE sluice_flagd_revision gauge\n"
	    "sluice_flagd_revision %llu\n"
	    "# TYPE sluice_flagd_ready gauge\n"
	    "sluice_flagd_ready %d\n"
	    "# HELP sluice_flagd_client_acks_total Client acknowledgements "
	    "recorded.\n"
	    "# TYPE sluice_flagd_client_acks_total counter\n"
	    "sluice_flagd_client_acks_total %llu\n"
	    "# TYPE sluice_flagd_client_acks_unverified_total counter\n"
	    "sluice_flagd_client_acks_unverified_total %llu\n"
	    "# TYPE sluice_flagd_clients_evicted_total counter\n"
	    "sluice_flagd_clients_evicted_total %llu\n"
	    "# HELP sluice_flagd_clients_live Clients acked within the "
	    "liveness window (this node).\n"
	    "# TYPE sluice_flagd_clients_live gauge\n"
	    "sluice_flagd_clients_live %llu\n",
	    (unsigned long long) atomic_load(&m->bad_input),
	    (unsigned long long) atomic_load(&m->writes_committed),
	    (unsigned long long) atomic_load(&m->writes_noop),
	    (double) atomic_load(&m->write_ns_sum) / 1e9,
	    (unsigned long long) atomic_load(&m->events_published),
	    (unsigned long long) atomic_load(&m->heartbeats_published),
	    (unsigned long long) atomic_load(&m->revision),
	    atomic_load(&m->ready), (unsigned long long) atomic_load(&m->acks),
	    (unsigned long long) atomic_load(&m->acks_unverified),
	    (unsigned long long) atomic_load(&m->clients_evicted),
	    (unsigned long long) atomic_load(&m->clients_live));
	fprintf(f,
	    "# HELP sluice_flagd_writes_forwarded_total Writes this node "
	    "forwarded to the leader.\n"
	    "# TYPE sluice_flagd_writes_forwarded_total counter\n"
	    "sluice_flagd_writes_forwarded_total %llu\n"
	    "# HELP sluice_flagd_writes_rerouted_total Forwarded writes the "
	    "leader did not take in time (it may have died), routed again.\n"
	    "# TYPE sluice_flagd_writes_rerouted_total counter\n"
	    "sluice_flagd_writes_rerouted_total %llu\n"
	    "# TYPE sluice_flagd_raft_entries_applied_total counter\n"
	    "sluice_flagd_raft_entries_applied_total %llu\n"
	    "# TYPE sluice_flagd_raft_snapshots_taken_total counter\n"
	    "sluice_flagd_raft_snapshots_taken_total %llu\n"
	    "# TYPE sluice_flagd_raft_snapshots_restored_total counter\n"
	    "sluice_flagd_raft_snapshots_restored_total %llu\n",
	    (unsigned long long) atomic_load(&m->writes_forwarded),
	    (unsigned long long) atomic_load(&m->writes_rerouted),
	    (unsigned long long) atomic_load(&m->entries_applied),
	    (unsigned long long) atomic_load(&m->snapshots_taken),
	    (unsigned long long) atomic_load(&m->snapshots_restored));
}
