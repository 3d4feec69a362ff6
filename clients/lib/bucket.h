/* SPDX-License-Identifier: MIT */
/*
 * bucket.h — the two halves of sluice_bucket() (bucket.c), for callers
 * that bucket many units of the same rollout: the per-rollout key is
 * computed once (the client keeps it in its snapshot), the per-unit part
 * is one SipHash-2-4. sluice_bucket(r, u, n) is exactly
 * sl_bucket_keyed(key_of(r), u, n); there is no second implementation.
 */
#ifndef SL_BUCKET_H
#define SL_BUCKET_H

#include "sl.h"

#define SL_BUCKET_KEY_BYTES 16u

/* key = BLAKE2b-256(rollout)[0..16]. rollout NULL means "". */
void sl_bucket_key(const char *rollout, uint8_t key[SL_BUCKET_KEY_BYTES]);

/*
 * little-endian uint64(SipHash-2-4(key, unit)) mod SLUICE_BUCKETS. unit
 * may be NULL when unit_len is 0. Pure, allocation-free, thread-safe;
 * needs no sodium_init() (SipHash is a pure function in libsodium).
 */
unsigned sl_bucket_keyed(
    const uint8_t key[SL_BUCKET_KEY_BYTES], const void *unit, size_t unit_len);

#endif /* SL_BUCKET_H */
