// SPDX-License-Identifier: MIT
//
// Unit tests for proto/audit.c: a chain of five entries verifies; an
// edited, removed or reordered entry is caught at the right place; the
// hash is recomputed here independently from its documented definition.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "codec.h"

#define N 5

typedef struct chain {
	Sluice__V1__AuditEntry e[N];
	char                   reason[N][32];
	uint8_t                prev[N][SL_HASH_BYTES];
	uint8_t                hash[N][SL_HASH_BYTES];
} chain;

static void
build_chain(chain *c)
{
	static const char *const actions[N] = { "apply", "promote", "promote",
		"rollback", "promote" };
	const uint8_t           *prev       = NULL;

	for (int i = 0; i < N; i++) {
		Sluice__V1__AuditEntry *e = &c->e[i];

		sluice__v1__audit_entry__init(e);
		(void) snprintf(c->reason[i], sizeof(c->reason[i]),
		    "change number %d", i + 1);
		e->revision = (uint64_t) i + 1;
		e->time_ms  = 1700000000000u + (uint64_t) i * 1000u;
		e->actor    = (char *) (uintptr_t) "ops";
		e->action   = (char *) (uintptr_t) actions[i];
		e->rollout  = (char *) (uintptr_t) "orders.read_new";
		e->reason   = c->reason[i];
		assert_int_equal(
		    sl_audit_seal(e, prev, c->prev[i], c->hash[i]), SLUICE_OK);
		prev = c->hash[i];
	}
}

// Verifies entries order[0..n) and returns the index (into order) of the
// first failure, or n.
static size_t
verify(const chain *c, const int *order, size_t n, const char **whyp)
{
	sl_audit_verifier v;

	sl_audit_verifier_init(&v);
	for (size_t i = 0; i < n; i++) {
		uint64_t before = v.revision;
		int rv = sl_audit_verifier_next(&v, &c->e[order[i]], whyp);
		if (rv != SLUICE_OK) {
			assert_int_equal(rv, SLUICE_ECORRUPT);
			assert_int_equal(v.revision, before); // unchanged
			return (i);
		}
	}
	assert_int_equal(v.count, n);
	return (n);
}

static void
test_audit_chain_of_five_verifies(void **state)
{
	static const int order[N] = { 0, 1, 2, 3, 4 };
	chain            c;
	const char      *why                 = NULL;
	uint8_t          zero[SL_HASH_BYTES] = { 0 };

	(void) state;
	build_chain(&c);
	assert_memory_equal(c.e[0].prev_hash.data, zero, SL_HASH_BYTES);
	for (int i = 1; i < N; i++) {
		assert_memory_equal(c.e[i].prev_hash.data,
		    c.e[i - 1].hash.data, SL_HASH_BYTES);
	}
	assert_int_equal(verify(&c, order, N, &why), N);
	assert_null(why);
}

static void
test_audit_hash_matches_documented_definition(void **state)
{
	// hash = BLAKE2b-256(prev || pack(entry, prev_hash = prev, hash
	// cleared)), recomputed here without sl_audit_hash().
	chain                    c;
	Sluice__V1__AuditEntry   tmp;
	uint8_t                 *buf;
	uint8_t                  h[SL_HASH_BYTES];
	size_t                   len;
	crypto_generichash_state st;

	(void) state;
	build_chain(&c);
	tmp           = c.e[2];
	tmp.hash.data = NULL;
	tmp.hash.len  = 0;
	len           = protobuf_c_message_get_packed_size(&tmp.base);
	buf           = malloc(len);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(&tmp.base, buf), len);
	assert_int_equal(crypto_generichash_init(&st, NULL, 0, sizeof(h)), 0);
	assert_int_equal(
	    crypto_generichash_update(&st, c.hash[1], SL_HASH_BYTES), 0);
	assert_int_equal(crypto_generichash_update(&st, buf, len), 0);
	assert_int_equal(crypto_generichash_final(&st, h, sizeof(h)), 0);
	assert_memory_equal(h, c.hash[2], SL_HASH_BYTES);
	free(buf);
}

static void
test_audit_tampered_reason_is_named(void **state)
{
	static const int order[N] = { 0, 1, 2, 3, 4 };
	chain            c;
	const char      *why = NULL;

	(void) state;
	build_chain(&c);
	c.reason[2][0] = 'C'; // "Change number 3"
	assert_int_equal(verify(&c, order, N, &why), 2);
	assert_non_null(why);
	assert_non_null(strstr(why, "edited"));
}

static void
test_audit_tampered_then_rehashed_breaks_next_link(void **state)
{
	// A forger who edits entry 3 and recomputes its hash still breaks
	// the prev link of entry 4.
	static const int order[N] = { 0, 1, 2, 3, 4 };
	chain            c;
	const char      *why = NULL;

	(void) state;
	build_chain(&c);
	c.reason[2][0] = 'C';
	assert_int_equal(
	    sl_audit_seal(&c.e[2], c.hash[1], c.prev[2], c.hash[2]),
	    SLUICE_OK);
	// seal wrote into c.hash[2], which entry 4's prev_hash does not
	// point at: it kept its own copy in c.prev[3].
	assert_int_equal(verify(&c, order, N, &why), 3);
	assert_non_null(strstr(why, "prev_hash"));
}

static void
test_audit_removed_entry_detected(void **state)
{
	static const int order[] = { 0, 1, 3, 4 };
	chain            c;
	const char      *why = NULL;

	(void) state;
	build_chain(&c);
	assert_int_equal(verify(&c, order, 4, &why), 2);
	assert_non_null(strstr(why, "missing"));
}

static void
test_audit_removed_entry_renumbered_detected(void **state)
{
	// Removing an entry and renumbering the rest to hide the gap breaks
	// the prev link instead.
	static const int order[] = { 0, 1, 3, 4 };
	chain            c;
	const char      *why = NULL;

	(void) state;
	build_chain(&c);
	c.e[3].revision = 3;
	c.e[4].revision = 4;
	assert_int_equal(verify(&c, order, 4, &why), 2);
	assert_non_null(strstr(why, "prev_hash"));
}

static void
test_audit_reordered_entries_detected(void **state)
{
	static const int order[N] = { 0, 2, 1, 3, 4 };
	chain            c;
	const char      *why = NULL;

	(void) state;
	build_chain(&c);
	assert_int_equal(verify(&c, order, N, &why), 1);
	assert_non_null(why);
}

static void
test_audit_first_entry_must_link_to_zero(void **state)
{
	chain             c;
	sl_audit_verifier v;
	const char       *why = NULL;

	(void) state;
	build_chain(&c);
	c.prev[0][0] = 1;
	sl_audit_verifier_init(&v);
	assert_int_equal(
	    sl_audit_verifier_next(&v, &c.e[0], &why), SLUICE_ECORRUPT);
	assert_int_equal(v.count, 0);
}

static void
test_audit_resume_mid_chain(void **state)
{
	chain             c;
	sl_audit_verifier v;
	const char       *why = NULL;

	(void) state;
	build_chain(&c);
	sl_audit_verifier_resume(&v, 2, c.hash[1]);
	assert_int_equal(sl_audit_verifier_next(&v, &c.e[2], &why), SLUICE_OK);
	assert_int_equal(sl_audit_verifier_next(&v, &c.e[3], &why), SLUICE_OK);
	assert_int_equal(v.revision, 4);
	assert_memory_equal(v.head, c.hash[3], SL_HASH_BYTES);
}

static void
test_audit_hash_ignores_existing_hash_field(void **state)
{
	chain   c;
	uint8_t h1[SL_HASH_BYTES];
	uint8_t h2[SL_HASH_BYTES];

	(void) state;
	build_chain(&c);
	assert_int_equal(sl_audit_hash(c.hash[0], &c.e[1], h1), SLUICE_OK);
	c.e[1].hash.len = 0;
	assert_int_equal(sl_audit_hash(c.hash[0], &c.e[1], h2), SLUICE_OK);
	assert_memory_equal(h1, h2, SL_HASH_BYTES);
	assert_memory_equal(h1, c.hash[1], SL_HASH_BYTES);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_audit_chain_of_five_verifies),
		cmocka_unit_test(
		    test_audit_hash_matches_documented_definition),
		cmocka_unit_test(test_audit_tampered_reason_is_named),
		cmocka_unit_test(
		    test_audit_tampered_then_rehashed_breaks_next_link),
		cmocka_unit_test(test_audit_removed_entry_detected),
		cmocka_unit_test(test_audit_removed_entry_renumbered_detected),
		cmocka_unit_test(test_audit_reordered_entries_detected),
		cmocka_unit_test(test_audit_first_entry_must_link_to_zero),
		cmocka_unit_test(test_audit_resume_mid_chain),
		cmocka_unit_test(test_audit_hash_ignores_existing_hash_field),
	};

	return (cmocka_run_group_tests_name("proto/audit", tests, NULL, NULL));
}
