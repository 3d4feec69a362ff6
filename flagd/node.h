/* SPDX-License-Identifier: MIT */
/*
 * node.h — one flagd node: the store, the change stream, consensus and the
 * write path. A write goes verify (caller's thread) -> a LogEntry proposed
 * to the consensus loop (consensus.h) -> committed by a majority -> applied
 * on every node by the loop thread in one LMDB transaction that also
 * records the raft index (machine.c) -> published -> the proposer's
 * callback. Only the leader proposes; api.c forwards writes to it.
 */
#ifndef FLAGD_NODE_H
#define FLAGD_NODE_H

#include "clients.h"
#include "config.h"
#include "consensus.h"
#include "machine.h"
#include "metrics.h"
#include "store.h"

typedef struct flagd_node flagd_node;

/*
 * Opens the store in cfg->data_dir (created if missing), seeds keys from
 * cfg->authorized_keys when the key store is empty, opens the change
 * stream and starts the writer thread. cfg is borrowed for the node's
 * lifetime.
 */
int flagd_node_open(flagd_node **np, const flagd_config *cfg) SLUICE_NODISCARD;
void flagd_node_close(flagd_node *n); /* NULL is a no-op */

/*
 * Stops consensus after the drain: writes still in flight are failed and
 * their callbacks run before this returns, so it must come before the API
 * that owns those callbacks is closed. NULL is a no-op.
 */
void flagd_node_stop(flagd_node *n);

/*
 * Called once per submitted write, on the consensus loop thread, with the
 * result (borrowed for the call). It must not block.
 */
typedef void (*flagd_write_cb)(void *arg, const flagd_result *res);

/*
 * Verifies a signed command (known key, signature, well-formed body,
 * timestamp within the skew) on the caller's thread, then proposes it
 * (this node should be the leader; if it is not by the time the loop
 * sees the entry, cb gets ENOTLEADER).
 * SLUICE_OK: cb will be called exactly once. Any other code: refused
 * now, with a reason in err; cb is never called.
 */
int flagd_node_write(flagd_node *n, const Sluice__V1__SignedCommand *sc,
    flagd_write_cb cb, void *arg, char *err, size_t errlen);

/* Waits until the node has applied rev; SLUICE_OK or SLUICE_ETIMEDOUT. */
int flagd_node_wait_revision(flagd_node *n, uint64_t rev, uint64_t timeout_ms);

/* Refuses new writes (SLUICE_ECLOSED) and waits for queued ones. */
void flagd_node_drain(flagd_node *n, uint64_t timeout_ms);

flagd_store        *flagd_node_store(flagd_node *n);
flagd_metrics      *flagd_node_metrics(flagd_node *n);
const flagd_config *flagd_node_config(flagd_node *n);
uint64_t            flagd_node_started_ms(flagd_node *n);
/* The node's consensus, for status queries (flagd_consensus_status_get). */
flagd_consensus *flagd_node_consensus(flagd_node *n);

/*
 * Whether this node's answers may be behind the cluster: no leader contact
 * for longer than an election timeout, or a store rebuilt at start (after
 * a machine crash) that has not yet applied what the cluster committed.
 * st is the consensus status the caller just read.
 */
bool flagd_node_stale(flagd_node *n, const flagd_consensus_status *st);
/* The change-stream URL clients should dial. */
const char *flagd_node_publish_url(flagd_node *n);
/* This node's registry of client acks (flagctl clients / wait). */
flagd_clients *flagd_node_clients(flagd_node *n);

#endif /* FLAGD_NODE_H */
