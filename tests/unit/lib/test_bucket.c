// SPDX-License-Identifier: MIT
//
// Unit tests for clients/lib/bucket.c and eval.c: sluice_bucket() against
// the committed cross-language vectors (tests/vectors/bucket.json, made by
// an independent Python implementation), an in-test recomputation from
// libsodium primitives, monotonicity of percentages and the distribution
// of buckets.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "eval.h"
#include "sluice.h"

#define VECTORS_DEFAULT "tests/vectors/bucket.json"

static json_t *
load_vectors(void)
{
	const char  *path = getenv("SLUICE_VECTORS_BUCKET");
	json_error_t jerr;
	json_t      *doc;

	if (path == NULL) {
		path = VECTORS_DEFAULT;
	}
	// JSON_ALLOW_NUL: one vector has a NUL inside its unit.
	doc = json_load_file(path, JSON_ALLOW_NUL, &jerr);
	if (doc == NULL) {
		fail_msg("%s:%d: %s (run from the repository root, or set "
		         "SLUICE_VECTORS_BUCKET)",
		    path, jerr.line, jerr.text);
	}
	return (doc);
}

// The same definition, spelled out with libsodium calls and a byte-order
// independent decode, so that a bug in bucket.c cannot hide behind the
// vector file alone.
static unsigned
bucket_by_hand(const char *rollout, const void *unit, size_t len)
{
	uint8_t  digest[32];
	uint8_t  out[8];
	uint64_t v = 0;

	assert_int_equal(
	    crypto_generichash(digest, 32, (const unsigned char *) rollout,
	        strlen(rollout), NULL, 0),
	    0);
	assert_int_equal(crypto_shorthash(out, unit, len, digest), 0);
	for (int i = 0; i < 8; i++) {
		v |= (uint64_t) out[i] << (8 * i);
	}
	return ((unsigned) (v % 10000u));
}

static void
test_bucket_matches_vector_file(void **state)
{
	json_t *doc = load_vectors();
	json_t *vs  = json_object_get(doc, "vectors");
	json_t *alg = json_object_get(doc, "algorithm");
	size_t  i;
	json_t *v;
	bool    saw_empty = false;
	bool    saw_long  = false;
	bool    saw_utf8  = false;

	(void) state;
	assert_true(json_is_string(alg));
	assert_true(json_is_array(vs));
	assert_true(json_array_size(vs) >= 40);
	json_array_foreach(vs, i, v)
	{
		const char *r =
		    json_string_value(json_object_get(v, "rollout"));
		json_t     *ju   = json_object_get(v, "unit");
		const char *u    = json_string_value(ju);
		size_t      ulen = json_string_length(ju);
		json_t     *jb   = json_object_get(v, "bucket");
		unsigned    got;

		assert_non_null(r);
		assert_non_null(u);
		assert_true(json_is_integer(jb));
		got = sluice_bucket(r, u, ulen);
		if (got != (unsigned) json_integer_value(jb)) {
			fail_msg(
			    "vector %zu (%s, \"%.40s\"): got %u, want %lld", i,
			    r, u, got, (long long) json_integer_value(jb));
		}
		saw_empty |= ulen == 0;
		saw_long |= ulen >= 1000;
		for (size_t k = 0; k < ulen; k++) {
			saw_utf8 |= (unsigned char) u[k] >= 0x80;
		}
	}
	assert_true(saw_empty);
	assert_true(saw_long);
	assert_true(saw_utf8);
	json_decref(doc);
}

static void
test_bucket_vectors_cross_checked_by_hand(void **state)
{
	json_t *doc = load_vectors();
	json_t *vs  = json_object_get(doc, "vectors");
	size_t  n   = json_array_size(vs);

	(void) state;
	// Every vector, recomputed without bucket.c.
	for (size_t i = 0; i < n; i++) {
		json_t     *v = json_array_get(vs, i);
		const char *r =
		    json_string_value(json_object_get(v, "rollout"));
		json_t *ju = json_object_get(v, "unit");

		assert_int_equal(bucket_by_hand(r, json_string_value(ju),
		                     json_string_length(ju)),
		    json_integer_value(json_object_get(v, "bucket")));
	}
	json_decref(doc);
}

static void
test_bucket_fixed_known_values(void **state)
{
	// Three vectors written out by hand from bucket.json, so the file
	// cannot be regenerated from a broken implementation unnoticed.
	(void) state;
	assert_int_equal(sluice_bucket("orders.read_new", "", 0), 1433);
	assert_int_equal(sluice_bucket("orders.read_new", "a", 1), 1158);
	assert_int_equal(sluice_bucket("orders.read_new", "orders", 6), 9894);
	assert_int_equal(sluice_bucket("orders.read_new", NULL, 0), 1433);
}

static void
test_bucket_depends_on_length_not_nul(void **state)
{
	// The unit is bytes with a length, not a C string: "a\0b" is not "a".
	(void) state;
	assert_int_not_equal(sluice_bucket("orders.read_new", "a\0b", 3),
	    sluice_bucket("orders.read_new", "a", 1));
	assert_int_equal(sluice_bucket("orders.read_new", "a\0b", 3),
	    bucket_by_hand("orders.read_new", "a\0b", 3));
}

static void
test_bucket_monotonic_in_percentage(void **state)
{
	// A unit on at p stays on at every q > p: on means bucket < p.
	static const uint32_t steps[] = { 0, 1, 100, 500, 1000, 2500, 5000,
		7500, 9999, 10000 };
	Sluice__V1__FlagValue v;
	char                  unit[32];

	(void) state;
	sluice__v1__flag_value__init(&v);
	v.kind_case = SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
	for (int u = 0; u < 10000; u++) {
		bool was_on = false;
		int  len    = snprintf(unit, sizeof(unit), "table-%d", u);

		for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
			bool on;

			v.percent_bp = steps[s];
			on           = sl_value_on(
			              "orders.read_new", &v, unit, (size_t) len);
			if (was_on && !on) {
				fail_msg("unit %s on at %u bp, off at %u bp",
				    unit, steps[s - 1], steps[s]);
			}
			was_on = on;
		}
		assert_true(was_on); // on at 100 %
	}
}

static void
test_bucket_distribution_ten_percent(void **state)
{
	unsigned on       = 0;
	unsigned hist[10] = { 0 };
	char     unit[32];

	(void) state;
	for (int u = 0; u < 100000; u++) {
		int      len = snprintf(unit, sizeof(unit), "run-%06d", u);
		unsigned b   = sluice_bucket("billing.v2", unit, (size_t) len);

		assert_true(b < SLUICE_BUCKETS);
		on += b < 1000;
		hist[b / 1000]++;
	}
	// 10 % +- 1 % absolute of 100000 units.
	assert_in_range(on, 9000, 11000);
	for (int i = 0; i < 10; i++) {
		assert_in_range(hist[i], 9000, 11000);
	}
}

static void
test_bucket_rollouts_are_independent(void **state)
{
	// The same units in two rollouts: being on in one says little about
	// the other (about 10 % of the 10 % overlap).
	unsigned both = 0;
	char     unit[32];

	(void) state;
	for (int u = 0; u < 100000; u++) {
		int len = snprintf(unit, sizeof(unit), "p%d", u);
		both += sluice_bucket("a", unit, (size_t) len) < 1000 &&
		    sluice_bucket("b", unit, (size_t) len) < 1000;
	}
	assert_in_range(both, 700, 1300);
}

static void
test_eval_value_on_kinds(void **state)
{
	Sluice__V1__FlagValue v;

	(void) state;
	sluice__v1__flag_value__init(&v);
	assert_false(sl_value_on("r", &v, "u", 1));
	assert_false(sl_value_on("r", NULL, "u", 1));
	v.kind_case  = SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
	v.bool_value = 1;
	assert_true(sl_value_on("r", &v, "u", 1));
	v.kind_case = SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE;
	v.int_value = 0;
	assert_false(sl_value_on("r", &v, "u", 1));
	v.int_value = -3;
	assert_true(sl_value_on("r", &v, "u", 1));
	v.kind_case    = SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE;
	v.string_value = (char *) (uintptr_t) "";
	assert_false(sl_value_on("r", &v, "u", 1));
	v.string_value = (char *) (uintptr_t) "v2";
	assert_true(sl_value_on("r", &v, "u", 1));
	v.kind_case  = SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
	v.percent_bp = 0;
	assert_false(sl_value_on("orders.read_new", &v, "", 0));
	v.percent_bp = 1433; // bucket of "" in orders.read_new
	assert_false(sl_value_on("orders.read_new", &v, "", 0));
	v.percent_bp = 1434;
	assert_true(sl_value_on("orders.read_new", &v, "", 0));
	v.percent_bp = 10000;
	assert_true(sl_value_on("orders.read_new", &v, "", 0));
}

static void
test_eval_rollout_flag_lookup(void **state)
{
	Sluice__V1__Rollout     r;
	Sluice__V1__RolloutSpec s;
	Sluice__V1__Flag        f[2];
	Sluice__V1__Flag       *fp[2] = { &f[0], &f[1] };

	(void) state;
	sluice__v1__rollout__init(&r);
	assert_null(sl_rollout_flag(&r, "x"));
	sluice__v1__rollout_spec__init(&s);
	sluice__v1__flag__init(&f[0]);
	sluice__v1__flag__init(&f[1]);
	f[0].key  = (char *) (uintptr_t) "orders.read_new";
	f[1].key  = (char *) (uintptr_t) "orders.dual_write";
	s.flags   = fp;
	s.n_flags = 2;
	r.spec    = &s;
	assert_ptr_equal(sl_rollout_flag(&r, "orders.dual_write"), &f[1]);
	assert_null(sl_rollout_flag(&r, "orders"));
	assert_null(sl_rollout_flag(NULL, "orders"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_matches_vector_file),
		cmocka_unit_test(test_bucket_vectors_cross_checked_by_hand),
		cmocka_unit_test(test_bucket_fixed_known_values),
		cmocka_unit_test(test_bucket_depends_on_length_not_nul),
		cmocka_unit_test(test_bucket_monotonic_in_percentage),
		cmocka_unit_test(test_bucket_distribution_ten_percent),
		cmocka_unit_test(test_bucket_rollouts_are_independent),
		cmocka_unit_test(test_eval_value_on_kinds),
		cmocka_unit_test(test_eval_rollout_flag_lookup),
	};

	if (sodium_init() < 0) {
		return (1);
	}
	return (cmocka_run_group_tests_name("lib/bucket", tests, NULL, NULL));
}
