/* SPDX-License-Identifier: MIT */
/*
 * publish.h — the change stream: an nng PUB socket carrying one Event per
 * committed write, in revision order, and a heartbeat with the current
 * revision every interval. nng codes stay inside publish.c.
 */
#ifndef FLAGD_PUBLISH_H
#define FLAGD_PUBLISH_H

#include "metrics.h"
#include "sl.h"

typedef struct flagd_publish flagd_publish;

/*
 * Listens on url and starts the heartbeat thread. revision is the
 * store's revision at start. m (borrowed) gets the counters.
 */
int flagd_publish_open(flagd_publish **pp, const char *url, uint64_t node_id,
    uint64_t heartbeat_ms, uint64_t revision,
    flagd_metrics *m) SLUICE_NODISCARD;

/*
 * Sets the function heartbeats ask whether the node is stale (no leader
 * for longer than an election timeout). Called on the heartbeat thread;
 * it must not block. NULL (the default) = never stale.
 */
void flagd_publish_set_stale_fn(
    flagd_publish *p, bool (*fn)(void *arg), void *arg);

/*
 * Publishes a committed change. Callers serialise calls (the writer
 * thread), so changes leave in revision order. Never blocks on a slow
 * subscriber: nng drops for that subscriber, which detects the gap.
 */
void flagd_publish_change(flagd_publish *p, uint64_t revision,
    const Sluice__V1__Rollout *r, const Sluice__V1__AuditEntry *a);

/* Stops the heartbeat and closes the socket. NULL is a no-op. */
void flagd_publish_close(flagd_publish *p);

#endif /* FLAGD_PUBLISH_H */
