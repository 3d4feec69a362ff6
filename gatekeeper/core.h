/* SPDX-License-Identifier: MIT */
/*
 * core.h — gatekeeper's state and its one entry point for requests: the
 * rollouts it follows (from flagd, through libsluice's change callback
 * and GetRollout), each one's window of counted reports and gate state
 * (mirrored in gatekeeper's LMDB), the key set, the replay table, the
 * counters /metrics shows, and the tracker thread that applies stage
 * changes, runs timed evaluations (soak seconds, deadlines, time
 * windows) and refreshes keys.
 *
 * Locking: one mutex (core) guards rollouts, windows, the replay table
 * and the database writes; signature checks run before it is taken and
 * flagd writes after it is released (decide.c).
 *
 * Group commit: verified reports queue on gc_mtx; the first thread to
 * find no commit running takes the whole queue, applies it under the
 * core mutex in ONE LMDB transaction, commits once, answers every
 * report of the group (nothing is acknowledged before its commit), and
 * goes on with what queued meanwhile. The others return at once: their
 * requests are answered by the committing thread. gc_mtx is never held
 * while the core mutex is taken.
 */
#ifndef GK_CORE_H
#define GK_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "db.h"
#include "gate.h"
#include "keys.h"
#include "reports.h"
#include "rpc.h"
#include "sluice.h"

/* Threads serving requests that may wait on flagd (core.c, "aside"). */
#define GK_ASIDE_THREADS 2

/* Counted reports kept per rollout when its gate sets no window. */
#define GK_MAX_WINDOW 100000u

typedef struct gk_options {
	const char *flagd;    /* comma-separated flagd API URLs */
	const char *key_file; /* gatekeeper's operator key */
	const char *data_dir;
	uint64_t    skew_ms;
	uint32_t    tick_ms;    /* timed evaluations; 0 = 500 */
	uint32_t    keys_ms;    /* key refresh period; 0 = 30000 */
	uint32_t    timeout_ms; /* per flagd request; 0 = 2000 */
	bool        no_follow;  /* tests: no libsluice client */
} gk_options;

/* One counted report in memory. */
typedef struct gk_entry {
	uint64_t                  id;
	uint64_t                  at_ms;
	Sluice__V1__MetricReport *r;      /* owned */
	uint8_t                  *packed; /* the SignedReport as received */
	size_t                    len;
} gk_entry;

typedef struct gk_ro {
	char                 name[SLUICE_MAX_NAME];
	Sluice__V1__Rollout *msg; /* owned; NULL until fetched */
	gk_db_state          st;
	gk_entry            *win;
	size_t               n, cap;
	gk_eval              last;
	bool                 evaluated;
	bool                 inflight; /* a decision is being written */
	uint64_t             retry_after_ms;
} gk_ro;

typedef struct gk_counters {
	atomic_uint_fast64_t rejected[GK_REJ_COUNT];
	atomic_uint_fast64_t accepted;
	atomic_uint_fast64_t counted;
	atomic_uint_fast64_t recorded;
	atomic_uint_fast64_t promotes;
	atomic_uint_fast64_t rollbacks;
	atomic_uint_fast64_t conflicts;
	atomic_uint_fast64_t decision_errors;
	atomic_uint_fast64_t stage_resets;
	atomic_uint_fast64_t report_commits; /* group commits of reports */
	atomic_int           ready;
} gk_counters;

typedef struct gk_core {
	pthread_mutex_t mtx;
	gk_options      opt;
	gk_db          *db;
	gk_keys        *keys;
	gk_replay      *replay;
	gk_ro         **ros;
	size_t          nro;
	// Group commit of reports (core.c): the queue of verified reports
	// waiting for a commit, and whether one is running.
	pthread_mutex_t gc_mtx;
	struct gk_job  *gc_head;
	struct gk_job **gc_tail;
	size_t          gc_queued;
	bool            gc_busy;
	// Requests that may wait on flagd or on the core mutex (key
	// refresh, rollout fetch, decision write, status and evidence
	// queries), served by the aside threads so that the API's nng
	// callbacks never do.
	pthread_mutex_t as_mtx;
	pthread_cond_t  as_cv;
	struct gk_req  *as_head;
	struct gk_req **as_tail;
	bool            as_stop;
	pthread_t       as_thr[GK_ASIDE_THREADS];
	size_t          as_started;
	pthread_mutex_t rpc_mtx; /* sl_rpc is not thread-safe */
	sl_rpc         *rpc;
	sl_secret      *key;
	sluice_client  *client;
	gk_counters     m;
	uint64_t        keys_ms; /* last key fetch (monotonic) */
	// Decision evidence stored but not yet bound to a revision
	// (decide.c); the tracker reconciles it from flagd's audit.
	atomic_bool pending_evidence;
	uint64_t    reconcile_ms; /* last reconcile (monotonic) */
	// Tracker thread and its queue of rollouts to re-fetch.
	pthread_t       thr;
	bool            thr_started;
	pthread_mutex_t q_mtx;
	pthread_cond_t  q_cv;
	bool            stop;
	bool            dirty_all;
	char          **dirty;
	size_t          ndirty;
} gk_core;

/*
 * Opens the database, loads the key, fetches keys and rollouts from flagd
 * (failing with EUNAVAIL when none answers), restores windows and starts
 * following flagd. *cp freed with gk_core_close().
 */
int gk_core_open(gk_core **cp, const gk_options *opt) SLUICE_NODISCARD;

/* Stops the tracker and the client, closes the database. NULL ok. */
void gk_core_close(gk_core *c);

/*
 * The reply to a request: buf (malloc'd, the callee frees it) holds the
 * packed GkReply; on an error rv is set and buf is NULL (no reply).
 */
typedef void (*gk_reply_fn)(void *arg, uint8_t *buf, size_t len, int rv);

/*
 * Handles one packed GkRequest (read only during the call) and calls
 * fn(arg, ...) exactly once with the reply: before returning, or later
 * from another thread (the thread that commits the report's group, or
 * an aside thread). It never waits on flagd nor on another thread's
 * commit, so it may run in an nng callback: a report is verified on the
 * calling thread and answered after the group commit that holds it,
 * which this thread either runs itself (when no commit is running) or
 * leaves to the thread running one; a key refresh, a rollout fetch, a
 * decision write and status or evidence queries go to the aside threads.
 */
void gk_core_submit(
    gk_core *c, const void *req, size_t len, gk_reply_fn fn, void *arg);

/*
 * gk_core_submit, waiting for the reply: the packed GkReply in a
 * malloc'd buffer (freed by the caller). Thread-safe; may block on flagd
 * (a key refresh, a rollout fetch, a decision write). For tests.
 */
int gk_core_handle(gk_core *c, const void *req, size_t len, uint8_t **replyp,
    size_t *replylenp) SLUICE_NODISCARD;

/*
 * Tests: holds the group commit as if one were running (hold), or lets
 * it go, committing what queued meanwhile on the calling thread.
 */
void gk_core_gc_hold(gk_core *c, bool hold);

/* Fills *out for one rollout (borrowing from c: call under c->mtx). */
void gk_core_gate_status(gk_core *c, gk_ro *ro, Sluice__V1__GateStatus *out,
    Sluice__V1__ConditionStatus *cs, Sluice__V1__ConditionStatus **csp);

/* The rollout named name, or NULL. Under c->mtx. */
gk_ro *gk_core_find(gk_core *c, const char *name);

/* The gate of ro's current stage, or NULL. */
const Sluice__V1__Gate *gk_core_gate(const gk_ro *ro);

/*
 * Applies a rollout as flagd now has it (taking ownership of msg):
 * a new stage, or the same stage entered again, resets the gate state
 * and drops the window. Under c->mtx.
 */
void gk_core_apply_rollout(gk_core *c, Sluice__V1__Rollout *msg);

/*
 * As gk_core_apply_rollout, but a reset is not saved: returns the
 * rollout that was reset (the caller clears its window and saves its
 * state in a transaction of its own), or NULL. Under c->mtx.
 */
gk_ro *gk_core_apply_rollout_unsaved(gk_core *c, Sluice__V1__Rollout *msg);

/* Saves ro's reset: drops its window and saves its state. Under c->mtx. */
void gk_core_save_reset(gk_core *c, gk_ro *ro);

/* Renders Prometheus text for /metrics. */
void gk_core_metrics(gk_core *c, FILE *f);

#endif /* GK_CORE_H */
