/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h — the client's immutable flag state at one revision: every
 * rollout (shared, reference-counted, between consecutive snapshots) and
 * two open-addressing hash tables, flag key -> {rollout, flag, values at
 * the current stage and at stage 0} and rollout name -> rollout. Each
 * rollout carries its precomputed bucket key (bucket.h), so a percentage
 * evaluation is one SipHash of the unit.
 *
 * A snapshot never changes after it is built. The updater builds a new
 * one for every change (copy-on-write: the changed rollout is new, all
 * others are shared) and swaps it in (client.c); lookups allocate
 * nothing and take no lock.
 *
 * Flag keys are unique per rollout, not across rollouts. When two
 * rollouts define the same key, the rollout whose name sorts first owns
 * the key, and the build logs a warning naming both.
 */
#ifndef SL_SNAPSHOT_H
#define SL_SNAPSHOT_H

#include <stdatomic.h>

#include "bucket.h"
#include "sl.h"

/* One rollout, shared by every snapshot that contains it unchanged. */
typedef struct sl_snap_rollout {
	atomic_uint          refs;
	Sluice__V1__Rollout *msg;  // owned; freed with the last reference
	const char          *name; // msg->spec->name
	uint32_t             hash;
	uint32_t             stage; // current stage, clamped to the stages
	uint32_t             n_stages;
	uint64_t             max_stale_ms; // spec.max_stale_s; 0 = default
	bool                 keep;         // on_stale: keep (else baseline)
	// The last revision at which this rollout's stage went down, as far
	// as this client saw (0 = never). Carried over from the previous
	// snapshot, so a view can tell a rollback that was re-promoted.
	uint64_t rollback_rev;
	uint8_t  bucket_key[SL_BUCKET_KEY_BYTES];
} sl_snap_rollout;

/* One flag: where to find it and its values, precomputed. */
typedef struct sl_snap_flag {
	uint32_t                     hash; // 0 = empty slot
	uint32_t                     ri;   // index of its rollout
	uint32_t                     len;  // strlen(key)
	const char                  *key;
	const sl_snap_rollout       *ro;
	const Sluice__V1__FlagValue *cur;  // value at ro->stage
	const Sluice__V1__FlagValue *base; // value at stage 0
} sl_snap_flag;

typedef struct sl_snapshot {
	atomic_uint       refs;
	uint64_t          revision;
	bool              from_cache;
	size_t            n_rollouts;
	sl_snap_rollout **rollouts; // sorted by name
	uint32_t          fmask;    // flag table size - 1
	sl_snap_flag     *flags;
	uint32_t          rmask; // rollout table size - 1
	uint32_t         *rtab;  // rollout index + 1; 0 = empty
} sl_snapshot;

/*
 * The hash used by both tables, over n bytes of s: 8 bytes per step (a
 * multiply-xorshift mix, as in MurmurHash3's finaliser), never 0 (0
 * marks an empty slot). Names come from signed, validated rollout specs,
 * so a keyed hash would buy nothing against flooding here, and this one
 * is several times faster than a byte-wise FNV on 30-40 byte keys.
 */
static inline uint32_t
sl_snap_hash(const char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15u ^ n;
	uint64_t w;

	while (n >= 8) {
		__builtin_memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdu;
		h ^= h >> 32;
		s += 8;
		n -= 8;
	}
	w = 0;
	while (n > 0) {
		n--;
		w = (w << 8) | (uint8_t) s[n];
	}
	h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 32;
	return ((uint32_t) h != 0 ? (uint32_t) h : 1u);
}

/*
 * Builds a snapshot at revision from n rollouts, taking ownership of
 * every msgs[i] on success AND on failure (they are freed on failure);
 * the msgs array itself stays the caller's. A rollout whose spec is
 * missing or has no name is dropped with a warning. prev (may be NULL)
 * supplies rollback_rev history: a rollout whose stage is lower than in
 * prev gets rollback_rev = revision. refs starts at 1.
 * @return SLUICE_OK, SLUICE_ENOMEM.
 */
int sl_snapshot_build(sl_snapshot **sp, uint64_t revision,
    Sluice__V1__Rollout **msgs, size_t n,
    const sl_snapshot *prev) SLUICE_NODISCARD;

/*
 * A new snapshot at revision: s with the rollout named r->spec->name
 * replaced by r (or added); r NULL only moves the revision (a write
 * about keys). Takes ownership of r on success and on failure.
 * Unchanged rollouts are shared, not copied. The result is marked
 * from_cache when s is.
 * @return SLUICE_OK, SLUICE_ENOMEM, SLUICE_EINVAL (r has no name).
 */
int sl_snapshot_replace(sl_snapshot **sp, const sl_snapshot *s,
    uint64_t revision, Sluice__V1__Rollout *r) SLUICE_NODISCARD;

/* An empty snapshot (revision 0). SLUICE_OK or SLUICE_ENOMEM. */
int sl_snapshot_empty(sl_snapshot **sp) SLUICE_NODISCARD;

void sl_snapshot_ref(sl_snapshot *s);
/* Drops a reference; frees with the last. NULL is a no-op. */
void sl_snapshot_unref(sl_snapshot *s);

/*
 * The flag named key, or NULL. No allocation, no lock. Every snapshot has
 * a table (at least 8 slots, at most half full), so the probe ends.
 */
static inline const sl_snap_flag *
sl_snapshot_flag(const sl_snapshot *s, const char *key)
{
	size_t   n = __builtin_strlen(key);
	uint32_t h = sl_snap_hash(key, n);
	uint32_t i;

	for (i = h & s->fmask;; i = (i + 1) & s->fmask) {
		const sl_snap_flag *f = &s->flags[i];
		if (f->hash == 0) {
			return (NULL);
		}
		if (f->hash == h && f->len == n &&
		    __builtin_memcmp(f->key, key, n) == 0) {
			return (f);
		}
	}
}

/* The rollout named name and its index, or NULL. */
const sl_snap_rollout *sl_snapshot_rollout(
    const sl_snapshot *s, const char *name, size_t *indexp);

/*
 * A Snapshot message whose rollouts point into s (no copy): valid while
 * s is; free only m->rollouts (free()), never the rollouts. For packing
 * the cache file. SLUICE_OK or SLUICE_ENOMEM.
 */
int sl_snapshot_message(
    const sl_snapshot *s, Sluice__V1__Snapshot *m) SLUICE_NODISCARD;

#endif /* SL_SNAPSHOT_H */
