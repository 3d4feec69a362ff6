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

/*
 * Writes ro's pending decision, if it still has one: stores the evidence
 * under the command's nonce, sends the CAS write, then binds the evidence
 * to flagd's revision. Takes c->mtx itself: call without it. Returns
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
