/* SPDX-License-Identifier: MIT */
/*
 * decide.h — turning a gate decision into a compare-and-set write to
 * flagd: Rollback or Promote with expect_stage = the stage evaluated,
 * signed with gatekeeper's operator key, reason text naming the
 * condition, figures and window, and Command.evidence_digest over the
 * reports that decided it. ECONFLICT (the stage moved) is a no-op, so two
 * gatekeepers, or one restarted mid-decision, never decide twice.
 */
#ifndef GK_DECIDE_H
#define GK_DECIDE_H

#include <stdio.h>

#include "core.h"

/*
 * BLAKE2b-256 over, for each packed report in order, its length (u32
 * big-endian) then its bytes. out: SL_HASH_BYTES.
 */
void gk_evidence_digest(const uint8_t *const *reports, const size_t *lens,
    size_t n, uint8_t out[SL_HASH_BYTES]);

/*
 * The reason text of decision d on ro (its last evaluation) into buf.
 * Pure: for tests.
 */
void gk_decide_reason(const gk_ro *ro, const Sluice__V1__Gate *g,
    gk_decision d, char *buf, size_t buflen);

/* A decision written by gk_decide_run. */
typedef struct gk_decided {
	gk_decision decision; /* NONE: nothing was written */
	uint64_t    revision; /* flagd's revision of the write */
	uint32_t    stage;    /* the stage that was evaluated */
} gk_decided;

/* A decision prepared and its evidence stored, not yet sent. */
typedef struct gk_pending gk_pending;

/*
 * Under c->mtx: if ro has a decision to write now, prepares it (the
 * reason, the evidence and its digest, a command nonce), marks ro in
 * flight, and puts the evidence under the nonce into t, the write
 * transaction the caller commits BEFORE gk_decide_send. *pp is NULL when
 * there is nothing to do; on an error nothing is prepared (the decision
 * is retried after 5 s) and t may be unusable. *pp is freed by
 * gk_decide_send or gk_decide_cancel.
 */
int gk_decide_prepare(gk_core *c, gk_ro *ro, gk_txn *t, uint64_t now,
    gk_pending **pp) SLUICE_NODISCARD;

/* Under c->mtx: t was not committed; ro is no longer in flight. Frees p. */
void gk_decide_cancel(gk_core *c, gk_pending *p);

/*
 * Without c->mtx, once the transaction holding p's evidence committed:
 * sends the CAS write, then binds the evidence to flagd's revision and
 * records the gate as decided. Frees p. Returns as gk_decide_run.
 */
int gk_decide_send(gk_core *c, gk_pending *p, gk_decided *outp);

/*
 * Writes ro's pending decision, if it still has one: prepares it and
 * commits its evidence in a transaction of its own, then
 * gk_decide_send. Takes c->mtx itself: call without it. Returns
 * SLUICE_OK (also when there was nothing to do, or the stage had moved),
 * or the write's error. outp (may be NULL) is filled only when a decision
 * was written.
 */
int gk_decide_run(gk_core *c, const char *rollout, gk_decided *outp);

/*
 * Binds evidence left pending (a crash, or a lost reply, between the
 * write and its bookkeeping) to the revision of the audit entry whose
 * evidence digest matches; drops entries older than give_up_ms that
 * match none. Returns how many are still pending. Call without c->mtx.
 */
size_t gk_decide_reconcile(gk_core *c, uint64_t give_up_ms);

#endif /* GK_DECIDE_H */
