// SPDX-License-Identifier: MIT
//
// Unit tests for clients/lib/snapshot.c: building from rollouts, flag and
// rollout lookup, copy-on-write replacement sharing unchanged rollouts,
// rollback history, duplicate keys, and the precomputed bucket key
// against sluice_bucket() and the cross-language vectors.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include "bucket.h"
#include "lib_fixture.h"
#include "snapshot.h"

// A flag that must exist (abort() tells the compiler so, too).
static const sl_snap_flag *
must_flag(const sl_snapshot *s, const char *key)
{
	const sl_snap_flag *f = sl_snapshot_flag(s, key);

	if (f == NULL) {
		fail_msg("no flag %s", key);
		abort();
	}
	return (f);
}

static sl_snapshot *
build2(
    uint64_t rev, uint32_t stage_a, uint32_t stage_b, const sl_snapshot *prev)
{
	Sluice__V1__Rollout *rs[2];
	sl_snapshot         *s = NULL;

	// Out of order on purpose: the build sorts by name.
	rs[0] = fx_rollout("beta", stage_b, 3, false, 0);
	rs[1] = fx_rollout("alpha", stage_a, 3, true, 60);
	assert_int_equal(sl_snapshot_build(&s, rev, rs, 2, prev), SLUICE_OK);
	return (s);
}

static void
test_snapshot_build_and_lookup(void **state)
{
	sl_snapshot           *s = build2(7, 1, 2, NULL);
	const sl_snap_flag    *f;
	const sl_snap_rollout *ro;
	size_t                 idx = 99;

	(void) state;
	assert_int_equal(s->revision, 7);
	assert_int_equal(s->n_rollouts, 2);
	assert_string_equal(s->rollouts[0]->name, "alpha");
	assert_string_equal(s->rollouts[1]->name, "beta");

	f = must_flag(s, "alpha.int");
	assert_ptr_equal(f->ro, s->rollouts[0]);
	assert_int_equal(f->ri, 0);
	assert_int_equal(f->cur->int_value, 10);
	assert_int_equal(f->base->int_value, 0);
	f = must_flag(s, "beta.str");
	assert_string_equal(f->cur->string_value, "v2");
	assert_null(sl_snapshot_flag(s, "gamma.bool"));
	assert_null(sl_snapshot_flag(s, ""));

	ro = sl_snapshot_rollout(s, "beta", &idx);
	assert_non_null(ro);
	assert_int_equal(idx, 1);
	assert_int_equal(ro->stage, 2);
	assert_false(ro->keep);
	assert_int_equal(ro->max_stale_ms, 0);
	ro = sl_snapshot_rollout(s, "alpha", NULL);
	assert_true(ro->keep);
	assert_int_equal(ro->max_stale_ms, 60000);
	assert_null(sl_snapshot_rollout(s, "alph", NULL));
	sl_snapshot_unref(s);
}

static void
test_snapshot_empty_has_no_flags(void **state)
{
	sl_snapshot *s = NULL;

	(void) state;
	assert_int_equal(sl_snapshot_empty(&s), SLUICE_OK);
	assert_int_equal(s->revision, 0);
	assert_null(sl_snapshot_flag(s, "x"));
	assert_null(sl_snapshot_rollout(s, "x", NULL));
	sl_snapshot_unref(s);
}

static void
test_snapshot_replace_shares_unchanged_rollouts(void **state)
{
	sl_snapshot *s  = build2(7, 1, 1, NULL);
	sl_snapshot *ns = NULL;
	sl_snapshot *n2 = NULL;

	(void) state;
	assert_int_equal(
	    sl_snapshot_replace(&ns, s, 8, fx_rollout("beta", 2, 3, false, 0)),
	    SLUICE_OK);
	assert_int_equal(ns->revision, 8);
	assert_int_equal(ns->n_rollouts, 2);
	// alpha is shared; beta is new; the old snapshot is untouched.
	assert_ptr_equal(ns->rollouts[0], s->rollouts[0]);
	assert_ptr_not_equal(ns->rollouts[1], s->rollouts[1]);
	assert_int_equal(must_flag(ns, "beta.int")->cur->int_value, 20);
	assert_int_equal(must_flag(s, "beta.int")->cur->int_value, 10);

	// A new rollout is inserted in name order.
	assert_int_equal(sl_snapshot_replace(&n2, ns, 9,
	                     fx_rollout("aardvark", 0, 2, false, 0)),
	    SLUICE_OK);
	assert_int_equal(n2->n_rollouts, 3);
	assert_string_equal(n2->rollouts[0]->name, "aardvark");
	assert_string_equal(n2->rollouts[2]->name, "beta");
	assert_non_null(sl_snapshot_flag(n2, "aardvark.pct"));
	assert_int_equal(must_flag(n2, "beta.str")->ri, 2);

	// Dropping the older snapshots first must leave n2 whole.
	sl_snapshot_unref(s);
	sl_snapshot_unref(ns);
	assert_string_equal(
	    must_flag(n2, "alpha.str")->cur->string_value, "v1");
	sl_snapshot_unref(n2);
}

static void
test_snapshot_replace_null_moves_revision_only(void **state)
{
	sl_snapshot *s  = build2(7, 1, 1, NULL);
	sl_snapshot *ns = NULL;

	(void) state;
	assert_int_equal(sl_snapshot_replace(&ns, s, 8, NULL), SLUICE_OK);
	assert_int_equal(ns->revision, 8);
	assert_int_equal(ns->n_rollouts, 2);
	assert_ptr_equal(ns->rollouts[0], s->rollouts[0]);
	assert_ptr_equal(ns->rollouts[1], s->rollouts[1]);
	sl_snapshot_unref(s);
	sl_snapshot_unref(ns);
}

static void
test_snapshot_rollback_history_survives_repromotion(void **state)
{
	sl_snapshot *s0 = build2(10, 2, 2, NULL);
	sl_snapshot *s1 = NULL;
	sl_snapshot *s2 = NULL;
	sl_snapshot *s3 = NULL;

	(void) state;
	assert_int_equal(
	    sl_snapshot_rollout(s0, "beta", NULL)->rollback_rev, 0);
	// Rolled back at revision 11 ...
	assert_int_equal(sl_snapshot_replace(
	                     &s1, s0, 11, fx_rollout("beta", 1, 3, false, 0)),
	    SLUICE_OK);
	assert_int_equal(
	    sl_snapshot_rollout(s1, "beta", NULL)->rollback_rev, 11);
	// ... promoted again at 12: the history stays.
	assert_int_equal(sl_snapshot_replace(
	                     &s2, s1, 12, fx_rollout("beta", 2, 3, false, 0)),
	    SLUICE_OK);
	assert_int_equal(
	    sl_snapshot_rollout(s2, "beta", NULL)->rollback_rev, 11);
	assert_int_equal(
	    sl_snapshot_rollout(s2, "alpha", NULL)->rollback_rev, 0);
	// A full re-sync that finds a lower stage records it too.
	s3 = build2(20, 0, 2, s2);
	assert_int_equal(
	    sl_snapshot_rollout(s3, "alpha", NULL)->rollback_rev, 20);
	assert_int_equal(
	    sl_snapshot_rollout(s3, "beta", NULL)->rollback_rev, 11);
	sl_snapshot_unref(s0);
	sl_snapshot_unref(s1);
	sl_snapshot_unref(s2);
	sl_snapshot_unref(s3);
}

static void
test_snapshot_bad_stage_and_nameless_rollout(void **state)
{
	Sluice__V1__Rollout *rs[3];
	sl_snapshot         *s = NULL;

	(void) state;
	rs[0] = fx_rollout("odd", 9, 2, false, 0); // stage past the end
	rs[1] = fx_rollout("ok", 1, 2, false, 0);
	rs[2] = fx_rollout("x", 0, 2, false, 0);
	free(rs[2]->spec->name);
	rs[2]->spec->name = NULL;
	assert_int_equal(sl_snapshot_build(&s, 3, rs, 3, NULL), SLUICE_OK);
	assert_int_equal(s->n_rollouts, 2);
	assert_int_equal(sl_snapshot_rollout(s, "odd", NULL)->stage, 0);
	assert_false(must_flag(s, "odd.bool")->cur->bool_value);
	sl_snapshot_unref(s);
}

static void
test_snapshot_duplicate_flag_key_first_rollout_wins(void **state)
{
	Sluice__V1__Rollout *rs[2];
	sl_snapshot         *s = NULL;

	(void) state;
	rs[0] = fx_rollout("zeta", 1, 2, false, 0);
	rs[1] = fx_rollout("eta", 0, 2, false, 0);
	// Make zeta define eta's key.
	free(rs[0]->spec->flags[1]->key);
	rs[0]->spec->flags[1]->key = strdup("eta.int");
	assert_int_equal(sl_snapshot_build(&s, 1, rs, 2, NULL), SLUICE_OK);
	assert_ptr_equal(
	    must_flag(s, "eta.int")->ro, sl_snapshot_rollout(s, "eta", NULL));
	sl_snapshot_unref(s);
}

static void
test_snapshot_bucket_key_matches_vectors(void **state)
{
	json_error_t jerr;
	json_t      *doc =
	    json_load_file("tests/vectors/bucket.json", JSON_ALLOW_NUL, &jerr);
	json_t *vs;
	json_t *v;
	size_t  i;

	(void) state;
	assert_non_null(doc);
	vs = json_object_get(doc, "vectors");
	assert_true(json_array_size(vs) > 0);
	json_array_foreach(vs, i, v)
	{
		const char *rollout =
		    json_string_value(json_object_get(v, "rollout"));
		json_t  *ju   = json_object_get(v, "unit");
		unsigned want = (unsigned) json_integer_value(
		    json_object_get(v, "bucket"));
		uint8_t key[SL_BUCKET_KEY_BYTES];

		sl_bucket_key(rollout, key);
		assert_int_equal(sl_bucket_keyed(key, json_string_value(ju),
		                     json_string_length(ju)),
		    want);
		assert_int_equal(sluice_bucket(rollout, json_string_value(ju),
		                     json_string_length(ju)),
		    want);
	}
	json_decref(doc);
}

static void
test_snapshot_rollout_key_is_the_bucket_key(void **state)
{
	sl_snapshot *s = build2(1, 1, 1, NULL);
	uint8_t      key[SL_BUCKET_KEY_BYTES];

	(void) state;
	sl_bucket_key("alpha", key);
	assert_memory_equal(key, s->rollouts[0]->bucket_key, sizeof(key));
	assert_int_equal(sl_bucket_keyed(s->rollouts[0]->bucket_key, "u1", 2),
	    sluice_bucket("alpha", "u1", 2));
	sl_snapshot_unref(s);
}

static void
test_snapshot_message_points_at_rollouts(void **state)
{
	sl_snapshot         *s = build2(5, 1, 1, NULL);
	Sluice__V1__Snapshot m;

	(void) state;
	assert_int_equal(sl_snapshot_message(s, &m), SLUICE_OK);
	assert_int_equal(m.revision, 5);
	assert_int_equal(m.n_rollouts, 2);
	assert_ptr_equal(m.rollouts[0], s->rollouts[0]->msg);
	free(m.rollouts);
	sl_snapshot_unref(s);
}

static void
test_snapshot_many_flags(void **state)
{
	Sluice__V1__Rollout *rs[500];
	sl_snapshot         *s = NULL;
	char                 name[32];

	(void) state;
	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "r%03d", i);
		rs[i] = fx_rollout(name, (uint32_t) i % 3, 3, false, 0);
	}
	assert_int_equal(sl_snapshot_build(&s, 1, rs, 500, NULL), SLUICE_OK);
	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "r%03d.int", i);
		assert_int_equal(
		    must_flag(s, name)->cur->int_value, 10 * (i % 3));
	}
	assert_true(s->fmask + 1 >= 2 * 2000);
	sl_snapshot_unref(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_build_and_lookup),
		cmocka_unit_test(test_snapshot_empty_has_no_flags),
		cmocka_unit_test(
		    test_snapshot_replace_shares_unchanged_rollouts),
		cmocka_unit_test(
		    test_snapshot_replace_null_moves_revision_only),
		cmocka_unit_test(
		    test_snapshot_rollback_history_survives_repromotion),
		cmocka_unit_test(test_snapshot_bad_stage_and_nameless_rollout),
		cmocka_unit_test(
		    test_snapshot_duplicate_flag_key_first_rollout_wins),
		cmocka_unit_test(test_snapshot_bucket_key_matches_vectors),
		cmocka_unit_test(test_snapshot_rollout_key_is_the_bucket_key),
		cmocka_unit_test(test_snapshot_message_points_at_rollouts),
		cmocka_unit_test(test_snapshot_many_flags),
	};

	sl_log_level = SL_LOG_ERR;
	return (
	    cmocka_run_group_tests_name("lib/snapshot", tests, NULL, NULL));
}
