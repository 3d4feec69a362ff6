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

/*
 * Writes ro's pending decision, if it still has one. Takes c->mtx
 * itself: call without it. Returns SLUICE_OK (also when there was
 * nothing to do, or the stage had moved), or the write's error.
 */
int gk_decide_run(gk_core *c, const char *rollout);

#endif /* GK_DECIDE_H */
