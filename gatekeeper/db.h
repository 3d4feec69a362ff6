/* SPDX-License-Identifier: MIT */
/*
 * db.h — gatekeeper's own LMDB environment (gatekeeper --data DIR), so a
 * restart loses no counted report, replay mark or decision. MDB_* codes
 * stay in db.c.
 *
 * Sub-databases:
 *   state     rollout -> gk_db_state (plain bytes, versioned)
 *   window    rollout '\0' id (u64 BE) -> at_ms (u64 LE) || SignedReport
 *             (counted reports of the current stage, pruned as the
 *             window moves)
 *   record    rollout '\0' id (u64 BE) -> at_ms (u64 LE) || SignedReport
 *             (reports for other stages: kept, never counted)
 *   replay    key id '\0' job -> last sequence (u64 LE)
 *   evidence  rollout '\0' revision (u64 BE) -> packed Evidence
 *   pending   command nonce -> after_revision (u64 LE) || packed Evidence
 *             (revision 0): a decision's evidence, stored before its
 *             write is sent to flagd and moved to `evidence` once the
 *             revision is known (decide.c)
 */
#ifndef GK_DB_H
#define GK_DB_H

#include "gate.h"

typedef struct gk_db  gk_db;
typedef struct gk_txn gk_txn;

#define GK_DB_STATE_VERSION 1u

typedef struct gk_db_state {
	uint32_t      version;
	uint32_t      pad;
	gk_gate_state gate;
	uint64_t      counted;
	uint64_t      recorded;
	uint64_t      next_id; /* id of the next report stored */
	uint64_t      decision_revision;
} gk_db_state;

int  gk_db_open(gk_db **dp, const char *dir) SLUICE_NODISCARD;
void gk_db_close(gk_db *d); /* NULL is a no-op */

int  gk_db_begin(gk_db *d, bool write, gk_txn **tp) SLUICE_NODISCARD;
int  gk_txn_commit(gk_txn *t) SLUICE_NODISCARD; /* frees t */
void gk_txn_abort(gk_txn *t);                   /* frees t; NULL ok */

int gk_txn_put_state(
    gk_txn *t, const char *rollout, const gk_db_state *s) SLUICE_NODISCARD;
/* ENOENT when none; EIO/ECORRUPT otherwise. */
int gk_txn_get_state(
    gk_txn *t, const char *rollout, gk_db_state *s) SLUICE_NODISCARD;

int gk_txn_put_report(gk_txn *t, bool counted, const char *rollout,
    uint64_t id, uint64_t at_ms, const void *sr, size_t len) SLUICE_NODISCARD;
int gk_txn_del_window(
    gk_txn *t, const char *rollout, uint64_t id) SLUICE_NODISCARD;
/* Drops every window report of rollout (a stage change). */
int gk_txn_clear_window(gk_txn *t, const char *rollout) SLUICE_NODISCARD;

int gk_txn_put_replay(gk_txn *t, const char *key, const char *job,
    uint64_t seq) SLUICE_NODISCARD;
int gk_txn_put_evidence(gk_txn *t, const char *rollout, uint64_t revision,
    const void *buf, size_t len) SLUICE_NODISCARD;
/* *bufp malloc'd, freed by the caller. ENOENT when none. */
int gk_txn_get_evidence(gk_txn *t, const char *rollout, uint64_t revision,
    uint8_t **bufp, size_t *lenp) SLUICE_NODISCARD;

/*
 * A decision's evidence before its write: key nonce (the Command's),
 * after_rev the rollout's revision when the decision was taken (the
 * decision's audit entry comes after it).
 */
int gk_txn_put_pending(gk_txn *t, const uint8_t *nonce, size_t nlen,
    uint64_t after_rev, const void *ev, size_t len) SLUICE_NODISCARD;
/* SLUICE_OK also when there was none. */
int gk_txn_del_pending(
    gk_txn *t, const uint8_t *nonce, size_t nlen) SLUICE_NODISCARD;

/* Iteration callbacks: data borrowed for the call; non-OK stops. */
typedef int (*gk_db_state_cb)(
    void *arg, const char *rollout, const gk_db_state *s);
typedef int (*gk_db_report_cb)(
    void *arg, uint64_t id, uint64_t at_ms, const uint8_t *sr, size_t len);
typedef int (*gk_db_replay_cb)(
    void *arg, const char *key, const char *job, uint64_t seq);

typedef int (*gk_db_pending_cb)(void *arg, const uint8_t *nonce, size_t nlen,
    uint64_t after_rev, const uint8_t *ev, size_t len);

int gk_txn_each_state(gk_txn *t, gk_db_state_cb cb, void *arg);
int gk_txn_each_window(
    gk_txn *t, const char *rollout, gk_db_report_cb cb, void *arg);
int gk_txn_each_replay(gk_txn *t, gk_db_replay_cb cb, void *arg);
int gk_txn_each_pending(gk_txn *t, gk_db_pending_cb cb, void *arg);

#endif /* GK_DB_H */
