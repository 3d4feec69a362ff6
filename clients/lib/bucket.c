// SPDX-License-Identifier: MIT
//
// bucket.c — the bucket of a unit within a rollout, the one function that
// every client in every language must compute bit for bit the same way:
//
//     key    = BLAKE2b-256(rollout name, no key)[0..16]
//     h      = SipHash-2-4(key, unit bytes)      (crypto_shorthash)
//     bucket = little-endian uint64(h) mod 10000
//
// A unit is on at p basis points when bucket < p, so raising p only ever
// adds units. Test vectors live in tests/vectors/bucket.json. The two
// halves are exported to libsluice (bucket.h) so the client can keep the
// per-rollout key in its snapshot instead of rehashing the name.

#include <string.h>

#include <sodium.h>

#include "bucket.h"

void
sl_bucket_key(const char *rollout, uint8_t key[SL_BUCKET_KEY_BYTES])
{
	uint8_t digest[crypto_generichash_BYTES];

	if (rollout == NULL) {
		rollout = "";
	}
	(void) crypto_generichash(digest, sizeof(digest),
	    (const unsigned char *) rollout, strlen(rollout), NULL, 0);
	memcpy(key, digest, SL_BUCKET_KEY_BYTES);
}

unsigned
sl_bucket_keyed(
    const uint8_t key[SL_BUCKET_KEY_BYTES], const void *unit, size_t unit_len)
{
	static const uint8_t empty[1] = { 0 };
	uint8_t              h[crypto_shorthash_BYTES];
	uint64_t             v = 0;

	if (unit == NULL) {
		unit     = empty;
		unit_len = 0;
	}
	(void) crypto_shorthash(h, unit, unit_len, key);
	// Little-endian by construction, whatever the host's byte order.
	for (size_t i = sizeof(h); i > 0; i--) {
		v = (v << 8) | h[i - 1];
	}
	return ((unsigned) (v % SLUICE_BUCKETS));
}

SLUICE_API unsigned
sluice_bucket(const char *rollout, const void *unit, size_t unit_len)
{
	uint8_t key[SL_BUCKET_KEY_BYTES];

	// sodium_init() failing is fatal (STYLE §4); a pure function that
	// cannot report an error must not return a wrong bucket instead.
	if (sl_crypto_init() != SLUICE_OK) {
		sl_panic(__FILE__, __LINE__, "sodium_init");
	}
	sl_bucket_key(rollout, key);
	return (sl_bucket_keyed(key, unit, unit_len));
}
