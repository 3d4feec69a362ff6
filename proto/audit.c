// SPDX-License-Identifier: MIT
//
// audit.c — the audit hash chain. Exactly what is hashed, for entry e
// following an entry whose hash is prev (32 zero bytes for the first):
//
//     e.hash = BLAKE2b-256( prev[0..32]
//                        || pack(e with prev_hash = prev, hash = empty) )
//
// BLAKE2b-256 is libsodium's crypto_generichash with a 32-byte output and
// no key; pack is protobuf-c's encoding of AuditEntry, which writes fields
// in field-number order and omits empty proto3 fields, so the bytes are a
// function of the content alone. Hashing prev both in front and inside the
// packed entry is deliberate: the leading copy chains the hashes even if
// a future encoder changed, and the inner copy makes a stored entry verify
// on its own. Any edit to any field, a removed entry (the next prev link
// breaks and the revision skips) or two swapped entries (revision order)
// is detected by sl_audit_verifier_next().

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "codec.h"

static const uint8_t zero_hash[SL_HASH_BYTES];

int
sl_audit_hash(const uint8_t       prev[SL_HASH_BYTES],
    const Sluice__V1__AuditEntry *e, uint8_t out[SL_HASH_BYTES])
{
	Sluice__V1__AuditEntry   tmp;
	crypto_generichash_state st;
	uint8_t                  h[SL_HASH_BYTES];
	uint8_t                  p[SL_HASH_BYTES];
	uint8_t                 *buf;
	size_t                   len;
	int                      rv;

	if (e == NULL || out == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	// prev may point into e (e->prev_hash.data); copy it first.
	memcpy(p, prev != NULL ? prev : zero_hash, sizeof(p));
	tmp                = *e;
	tmp.prev_hash.data = p;
	tmp.prev_hash.len  = sizeof(p);
	tmp.hash.data      = NULL;
	tmp.hash.len       = 0;
	if ((rv = sl_pack(&tmp.base, &buf, &len)) != SLUICE_OK) {
		return (rv);
	}
	if (crypto_generichash_init(&st, NULL, 0, sizeof(h)) != 0 ||
	    crypto_generichash_update(&st, p, sizeof(p)) != 0 ||
	    crypto_generichash_update(&st, buf, len) != 0 ||
	    crypto_generichash_final(&st, h, sizeof(h)) != 0) {
		free(buf);
		return (SLUICE_EINTERNAL);
	}
	free(buf);
	memcpy(out, h, sizeof(h));
	return (SLUICE_OK);
}

int
sl_audit_seal(Sluice__V1__AuditEntry *e, const uint8_t *prev,
    uint8_t prev_buf[SL_HASH_BYTES], uint8_t hash_buf[SL_HASH_BYTES])
{
	uint8_t h[SL_HASH_BYTES];
	int     rv;

	if (e == NULL || prev_buf == NULL || hash_buf == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_audit_hash(prev, e, h)) != SLUICE_OK) {
		return (rv);
	}
	// memmove: the caller may pass prev == prev_buf.
	memmove(prev_buf, prev != NULL ? prev : zero_hash, SL_HASH_BYTES);
	memcpy(hash_buf, h, SL_HASH_BYTES);
	e->prev_hash.data = prev_buf;
	e->prev_hash.len  = SL_HASH_BYTES;
	e->hash.data      = hash_buf;
	e->hash.len       = SL_HASH_BYTES;
	return (SLUICE_OK);
}

void
sl_audit_verifier_init(sl_audit_verifier *v)
{
	memset(v, 0, sizeof(*v));
}

void
sl_audit_verifier_resume(
    sl_audit_verifier *v, uint64_t revision, const uint8_t head[SL_HASH_BYTES])
{
	memset(v, 0, sizeof(*v));
	v->revision = revision;
	memcpy(v->head, head, SL_HASH_BYTES);
}

int
sl_audit_verifier_next(
    sl_audit_verifier *v, const Sluice__V1__AuditEntry *e, const char **whyp)
{
	uint8_t     h[SL_HASH_BYTES];
	const char *why;
	int         rv;

	if (v == NULL || e == NULL) {
		return (SLUICE_EINVAL);
	}
	if (e->revision != v->revision + 1) {
		why = e->revision > v->revision + 1
		    ? "revision skips: an entry is missing"
		    : "revision goes backwards or repeats: entries reordered "
		      "or duplicated";
		goto corrupt;
	}
	if (e->prev_hash.len != SL_HASH_BYTES ||
	    sodium_memcmp(e->prev_hash.data, v->head, SL_HASH_BYTES) != 0) {
		why = "prev_hash does not match the previous entry's hash: "
		      "an entry was removed, replaced or reordered";
		goto corrupt;
	}
	if (e->hash.len != SL_HASH_BYTES) {
		why = "hash is missing or has the wrong length";
		goto corrupt;
	}
	if ((rv = sl_audit_hash(v->head, e, h)) != SLUICE_OK) {
		return (rv);
	}
	if (sodium_memcmp(h, e->hash.data, SL_HASH_BYTES) != 0) {
		why = "hash does not match the entry's contents: the entry "
		      "was edited";
		goto corrupt;
	}
	memcpy(v->head, h, SL_HASH_BYTES);
	v->revision = e->revision;
	v->count++;
	return (SLUICE_OK);
corrupt:
	if (whyp != NULL) {
		*whyp = why;
	}
	return (SLUICE_ECORRUPT);
}
