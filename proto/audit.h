/* SPDX-License-Identifier: MIT */
/*
 * audit.h — the hash chain of audit entries. flagd computes it on every
 * write; flagctl recomputes it to prove nothing was removed or edited.
 *
 * hash = BLAKE2b-256(prev_hash || AuditEntry packed with `hash` cleared),
 * the first entry's prev_hash being 32 zero bytes, and revisions
 * consecutive (one entry per committed write).
 */
#ifndef SL_AUDIT_H
#define SL_AUDIT_H

#include "sl.h"

/* out = chain hash of e given prev (e->hash is ignored). */
int sl_audit_hash(const uint8_t   prev[SL_HASH_BYTES],
    const Sluice__V1__AuditEntry *e,
    uint8_t                       out[SL_HASH_BYTES]) SLUICE_NODISCARD;

/*
 * Sets e->prev_hash to prev and e->hash to the chain hash, pointing both
 * at the caller's buffers prev_buf and hash_buf (no allocation).
 */
int sl_audit_seal(Sluice__V1__AuditEntry *e, const uint8_t *prev,
    uint8_t prev_buf[SL_HASH_BYTES],
    uint8_t hash_buf[SL_HASH_BYTES]) SLUICE_NODISCARD;

/* Incremental verifier over entries in revision order. */
typedef struct sl_audit_verifier {
	uint8_t  head[SL_HASH_BYTES]; /* hash of the last good entry */
	uint64_t revision;            /* its revision; 0 before any */
	uint64_t count;
} sl_audit_verifier;

void sl_audit_verifier_init(sl_audit_verifier *v);

/*
 * Starts a verifier in the middle of a chain: the next entry must have
 * revision + 1 and prev_hash equal to head (an already-trusted hash).
 */
void sl_audit_verifier_resume(sl_audit_verifier *v, uint64_t revision,
    const uint8_t head[SL_HASH_BYTES]);

/*
 * Checks the next entry: revision is v->revision + 1, prev_hash equals
 * v->head, hash recomputes. SLUICE_OK advances v; SLUICE_ECORRUPT leaves
 * v unchanged and points *whyp at a static reason.
 */
int sl_audit_verifier_next(
    sl_audit_verifier *v, const Sluice__V1__AuditEntry *e, const char **whyp);

#endif /* SL_AUDIT_H */
