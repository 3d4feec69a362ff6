// SPDX-License-Identifier: MIT
//
// Unit tests for proto/rollout.c: spec validation as a table of broken
// specs, name syntax, percentages, durations and conditions as text, and
// the last-good stage with its settling rule.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout.h"

#define S(x) ((char *) (uintptr_t) (x))

// A valid spec to break one piece at a time: 3 stages, 2 flags, a gate
// and a prerequisite. Everything lives in the struct, nothing on the heap.
typedef struct fixture {
	Sluice__V1__RolloutSpec   spec;
	char                     *stages[4];
	Sluice__V1__Flag          flags[2];
	Sluice__V1__Flag         *flagp[2];
	Sluice__V1__FlagValue     vals[2][4];
	Sluice__V1__FlagValue    *valp[2][4];
	Sluice__V1__Gate          gate[2];
	Sluice__V1__Gate         *gatep[2];
	Sluice__V1__Condition     cond;
	Sluice__V1__Condition    *condp[1];
	Sluice__V1__Prerequisite  req;
	Sluice__V1__Prerequisite *reqp[1];
} fixture;

static void
fixture_init(fixture *f)
{
	memset(f, 0, sizeof(*f));
	sluice__v1__rollout_spec__init(&f->spec);
	f->spec.name     = S("orders.read_new");
	f->stages[0]     = S("baseline");
	f->stages[1]     = S("canary");
	f->stages[2]     = S("full");
	f->stages[3]     = S("extra");
	f->spec.stages   = f->stages;
	f->spec.n_stages = 3;
	for (int i = 0; i < 2; i++) {
		sluice__v1__flag__init(&f->flags[i]);
		f->flagp[i] = &f->flags[i];
		for (int j = 0; j < 4; j++) {
			sluice__v1__flag_value__init(&f->vals[i][j]);
			f->valp[i][j] = &f->vals[i][j];
		}
		f->flags[i].values   = f->valp[i];
		f->flags[i].n_values = 3;
	}
	f->flags[0].key = S("orders.read_new");
	for (int j = 0; j < 4; j++) {
		f->vals[0][j].kind_case =
		    SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
		f->vals[0][j].percent_bp = (uint32_t) (j == 0 ? 0 : 1000 * j);
	}
	f->flags[1].key = S("orders.dual_write");
	for (int j = 0; j < 4; j++) {
		f->vals[1][j].kind_case =
		    SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
		f->vals[1][j].bool_value = j > 0;
	}
	f->spec.flags   = f->flagp;
	f->spec.n_flags = 2;

	sluice__v1__condition__init(&f->cond);
	f->cond.metric    = S("error_rate");
	f->cond.aggregate = SLUICE__V1__AGGREGATE__AGG_MEAN;
	f->cond.op        = SLUICE__V1__COMPARE_OP__OP_LT;
	f->cond.threshold = 0.01;
	f->condp[0]       = &f->cond;
	for (int i = 0; i < 2; i++) {
		sluice__v1__gate__init(&f->gate[i]);
		f->gatep[i] = &f->gate[i];
	}
	f->gate[0].stage        = S("canary");
	f->gate[0].conditions   = f->condp;
	f->gate[0].n_conditions = 1;
	f->gate[1].stage        = S("full");
	f->spec.gates           = f->gatep;
	f->spec.n_gates         = 1;

	sluice__v1__prerequisite__init(&f->req);
	f->req.rollout     = S("orders.readers");
	f->req.stage       = S("full");
	f->reqp[0]         = &f->req;
	f->spec.requires   = f->reqp;
	f->spec.n_requires = 1;
}

typedef struct bad_case {
	const char *name;
	void (*breakit)(fixture *);
	const char *want; // substring of the error text
} bad_case;

static void
b_name(fixture *f)
{
	f->spec.name = S("Orders");
}
static void
b_name_empty(fixture *f)
{
	f->spec.name = S("");
}
static void
b_one_stage(fixture *f)
{
	f->spec.n_stages = 1;
}
static void
b_dup_stage(fixture *f)
{
	f->stages[2] = S("canary");
}
static void
b_stage_name(fixture *f)
{
	f->stages[1] = S("can ary");
}
static void
b_values_short(fixture *f)
{
	f->flags[0].n_values = 2;
}
static void
b_values_long(fixture *f)
{
	f->spec.n_stages     = 4;
	f->flags[0].n_values = 3;
	f->flags[1].n_values = 4;
}
static void
b_mixed_kind(fixture *f)
{
	f->vals[1][2].kind_case = SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE;
}
static void
b_percent(fixture *f)
{
	f->vals[0][2].percent_bp = 10001;
}
static void
b_no_value(fixture *f)
{
	f->vals[1][1].kind_case = SLUICE__V1__FLAG_VALUE__KIND__NOT_SET;
}
static void
b_dup_flag(fixture *f)
{
	f->flags[1].key = S("orders.read_new");
}
static void
b_flag_key(fixture *f)
{
	f->flags[1].key = S("-x");
}
static void
b_no_flags(fixture *f)
{
	f->spec.n_flags = 0;
}
static void
b_gate_stage(fixture *f)
{
	f->gate[0].stage = S("nope");
}
static void
b_gate_metric(fixture *f)
{
	f->cond.metric = S("");
}
static void
b_gate_agg(fixture *f)
{
	f->cond.aggregate = SLUICE__V1__AGGREGATE__AGG_UNSPECIFIED;
}
static void
b_gate_op(fixture *f)
{
	f->cond.op = SLUICE__V1__COMPARE_OP__OP_UNSPECIFIED;
}
static void
b_gate_nan(fixture *f)
{
	f->cond.threshold = NAN;
}
static void
b_dup_gate(fixture *f)
{
	f->gate[1].stage = S("canary");
	f->spec.n_gates  = 2;
}
static void
b_req_self(fixture *f)
{
	f->req.rollout = S("orders.read_new");
}
static void
b_req_stage(fixture *f)
{
	f->req.stage = S("");
}

static void
b_long_string(fixture *f)
{
	static char big[SL_MAX_STRING + 2];

	memset(big, 'x', sizeof(big) - 1);
	for (int j = 0; j < 3; j++) {
		f->vals[1][j].kind_case =
		    SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE;
		f->vals[1][j].string_value = S("ok");
	}
	f->vals[1][1].string_value = big;
}

static void
test_rollout_validate_good_spec(void **state)
{
	fixture f;
	char    err[256] = "";

	(void) state;
	fixture_init(&f);
	assert_int_equal(
	    sl_spec_validate(&f.spec, err, sizeof(err)), SLUICE_OK);
	f.spec.n_gates = 2; // a gate with no conditions (soak only) is fine
	assert_int_equal(
	    sl_spec_validate(&f.spec, err, sizeof(err)), SLUICE_OK);
}

static void
test_rollout_validate_table(void **state)
{
	static const bad_case cases[] = {
		{ "bad name", b_name, "rollout name \"Orders\"" },
		{ "empty name", b_name_empty, "rollout name" },
		{ "one stage", b_one_stage, "1 stages" },
		{ "duplicate stage", b_dup_stage,
		    "stage \"canary\" is listed "
		    "twice" },
		{ "bad stage name", b_stage_name, "stage 1" },
		{ "too few values", b_values_short,
		    "flag \"orders.read_new\": 2 values for 3 stages" },
		{ "4 values for 5", b_values_long,
		    "flag \"orders.read_new\": 3 values for 4 stages" },
		{ "mixed kinds", b_mixed_kind, "one kind per flag" },
		{ "percent > 100", b_percent, "10001 basis points" },
		{ "missing value", b_no_value,
		    "no value at stage \"canary\"" },
		{ "duplicate flag", b_dup_flag, "defined twice" },
		{ "bad flag key", b_flag_key, "flag key \"-x\"" },
		{ "no flags", b_no_flags, "no flags" },
		{ "gate unknown stage", b_gate_stage,
		    "unknown stage \"nope\"" },
		{ "gate no metric", b_gate_metric, "no metric" },
		{ "gate no aggregate", b_gate_agg, "no aggregate" },
		{ "gate no op", b_gate_op, "no comparison" },
		{ "gate NaN", b_gate_nan, "finite" },
		{ "two gates one stage", b_dup_gate, "two gates" },
		{ "prereq self", b_req_self, "itself" },
		{ "prereq stage", b_req_stage,
		    "prerequisite \"orders.readers\"" },
		{ "long string", b_long_string, "longer than 1024" },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fixture f;
		char    err[256] = "";

		fixture_init(&f);
		cases[i].breakit(&f);
		if (sl_spec_validate(&f.spec, err, sizeof(err)) !=
		    SLUICE_EINVAL) {
			fail_msg("case \"%s\": accepted", cases[i].name);
		}
		if (strstr(err, cases[i].want) == NULL) {
			fail_msg("case \"%s\": error \"%s\" lacks \"%s\"",
			    cases[i].name, err, cases[i].want);
		}
	}
}

static void
test_rollout_validate_four_values_for_five_stages_message(void **state)
{
	fixture f;
	char    err[256]  = "";
	char   *stages[5] = { S("a"), S("b"), S("c"), S("d"), S("e") };

	(void) state;
	fixture_init(&f);
	f.spec.stages       = stages;
	f.spec.n_stages     = 5;
	f.spec.n_gates      = 0;
	f.flags[0].n_values = 4;
	assert_int_equal(
	    sl_spec_validate(&f.spec, err, sizeof(err)), SLUICE_EINVAL);
	assert_string_equal(err,
	    "flag \"orders.read_new\": 4 values for 5 "
	    "stages");
}

static void
test_rollout_name_syntax(void **state)
{
	char name[80];

	(void) state;
	assert_true(sl_rollout_name_valid("a"));
	assert_true(sl_rollout_name_valid("0"));
	assert_true(sl_rollout_name_valid("orders.read_new-v2"));
	assert_false(sl_rollout_name_valid(""));
	assert_false(sl_rollout_name_valid(NULL));
	assert_false(sl_rollout_name_valid(".orders"));
	assert_false(sl_rollout_name_valid("_x"));
	assert_false(sl_rollout_name_valid("Orders"));
	assert_false(sl_rollout_name_valid("a b"));
	assert_false(sl_rollout_name_valid("a/b"));
	assert_false(sl_rollout_name_valid("caf\xc3\xa9"));
	memset(name, 'a', 63);
	name[63] = '\0';
	assert_true(sl_rollout_name_valid(name));
	name[63] = 'a';
	name[64] = '\0';
	assert_false(sl_rollout_name_valid(name));
	assert_true(sl_flag_key_valid("orders.dual_write"));
	assert_false(sl_stage_name_valid("-canary"));
}

static void
test_rollout_percent_parse(void **state)
{
	static const struct {
		const char *s;
		uint32_t    bp;
	} good[] = {
		{ "10%", 1000 },
		{ "12.5%", 1250 },
		{ "12.34%", 1234 },
		{ "0%", 0 },
		{ "100%", 10000 },
		{ "0.01%", 1 },
		{ "100.00%", 10000 },
		{ "99.99%", 9999 },
		{ "5.0%", 500 },
	};
	static const char *const bad[] = { "101%", "1.234%", "-1%", "abc",
		"10", "", "%", "100.01%", ".5%", "5.%", " 5%", "5% ", "5 %",
		"+5%", "1e1%", "1000%", "10%%" };
	uint32_t                 bp;

	(void) state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		bp = 77777;
		if (sl_percent_parse(good[i].s, &bp) != SLUICE_OK ||
		    bp != good[i].bp) {
			fail_msg("\"%s\" -> %u", good[i].s, bp);
		}
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bp = 77777;
		if (sl_percent_parse(bad[i], &bp) != SLUICE_EINVAL ||
		    bp != 77777) {
			fail_msg("\"%s\" accepted", bad[i]);
		}
	}
}

static void
test_rollout_percent_format_round_trip(void **state)
{
	char     buf[16];
	uint32_t bp;

	(void) state;
	sl_percent_format(1000, buf, sizeof(buf));
	assert_string_equal(buf, "10%");
	sl_percent_format(1250, buf, sizeof(buf));
	assert_string_equal(buf, "12.5%");
	sl_percent_format(1234, buf, sizeof(buf));
	assert_string_equal(buf, "12.34%");
	sl_percent_format(5, buf, sizeof(buf));
	assert_string_equal(buf, "0.05%");
	for (uint32_t v = 0; v <= SLUICE_BUCKETS; v++) {
		sl_percent_format(v, buf, sizeof(buf));
		assert_int_equal(sl_percent_parse(buf, &bp), SLUICE_OK);
		assert_int_equal(bp, v);
	}
}

static void
test_rollout_duration_parse(void **state)
{
	static const struct {
		const char *s;
		uint64_t    secs;
	} good[] = {
		{ "90s", 90 },
		{ "5m", 300 },
		{ "24h", 86400 },
		{ "2d", 172800 },
		{ "1h30m", 5400 },
		{ "300", 300 },
		{ "0", 0 },
		{ "1d2h3m4s", 93784 },
		{ "0s", 0 },
	};
	static const char *const bad[] = { "", "s", "5x", "5m5m", "30m1h",
		"1h 30m", "-5s", "5 ", "1.5h", "h1", "5ms", "1h30",
		"99999999999999999999" };
	uint64_t                 v;

	(void) state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 1;
		if (sl_duration_parse(good[i].s, &v) != SLUICE_OK ||
		    v != good[i].secs) {
			fail_msg("\"%s\" -> %llu", good[i].s,
			    (unsigned long long) v);
		}
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sl_duration_parse(bad[i], &v) != SLUICE_EINVAL) {
			fail_msg("\"%s\" accepted", bad[i]);
		}
	}
}

static void
test_rollout_duration_format_round_trip(void **state)
{
	static const struct {
		uint64_t    secs;
		const char *s;
	} cases[] = {
		{ 0, "0s" },
		{ 90, "1m30s" },
		{ 300, "5m" },
		{ 5400, "1h30m" },
		{ 86400, "1d" },
		{ 172800, "2d" },
		{ 93784, "1d2h3m4s" },
	};
	char     buf[64];
	uint64_t v;

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sl_duration_format(cases[i].secs, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].s);
	}
	for (uint64_t s = 0; s < 200000; s += 37) {
		sl_duration_format(s, buf, sizeof(buf));
		assert_int_equal(sl_duration_parse(buf, &v), SLUICE_OK);
		assert_int_equal(v, s);
	}
	sl_duration_format(UINT64_MAX, buf, sizeof(buf));
	assert_int_equal(sl_duration_parse(buf, &v), SLUICE_OK);
	assert_true(v == UINT64_MAX);
}

static void
test_rollout_condition_parse_and_format(void **state)
{
	Sluice__V1__Condition c;
	char                  err[256];
	char                  buf[256];

	(void) state;
	sluice__v1__condition__init(&c);
	assert_int_equal(
	    sl_condition_parse("error_rate mean < 0.01", &c, err, sizeof(err)),
	    SLUICE_OK);
	assert_string_equal(c.metric, "error_rate");
	assert_int_equal(c.aggregate, SLUICE__V1__AGGREGATE__AGG_MEAN);
	assert_int_equal(c.op, SLUICE__V1__COMPARE_OP__OP_LT);
	assert_true(c.threshold == 0.01);
	sl_condition_format(&c, buf, sizeof(buf));
	assert_string_equal(buf, "error_rate mean < 0.01");
	sl_condition_clear(&c);

	assert_int_equal(sl_condition_parse("  rows_out\tp99 >=  -1e3 ", &c,
	                     err, sizeof(err)),
	    SLUICE_OK);
	assert_int_equal(c.aggregate, SLUICE__V1__AGGREGATE__AGG_P99);
	assert_int_equal(c.op, SLUICE__V1__COMPARE_OP__OP_GE);
	assert_true(c.threshold == -1000.0);
	sl_condition_format(&c, buf, sizeof(buf));
	assert_string_equal(buf, "rows_out p99 >= -1000");
	sl_condition_clear(&c);

	// Every aggregate and op, through a format/parse round trip.
	for (int a = 1; a <= 9; a++) {
		for (int o = 1; o <= 6; o++) {
			Sluice__V1__Condition d;

			sluice__v1__condition__init(&c);
			c.metric    = S("m");
			c.aggregate = (Sluice__V1__Aggregate) a;
			c.op        = (Sluice__V1__CompareOp) o;
			c.threshold = 1.0 / 3.0;
			sl_condition_format(&c, buf, sizeof(buf));
			sluice__v1__condition__init(&d);
			assert_int_equal(
			    sl_condition_parse(buf, &d, err, sizeof(err)),
			    SLUICE_OK);
			assert_int_equal(d.aggregate, a);
			assert_int_equal(d.op, o);
			assert_true(d.threshold == c.threshold);
			sl_condition_clear(&d);
		}
	}
}

static void
test_rollout_condition_parse_rejects(void **state)
{
	static const char *const bad[] = { "", "error_rate mean <",
		"error_rate mean < 0.01 extra", "error_rate avg < 0.01",
		"error_rate mean =< 0.01", "error_rate mean < 0.01x",
		"error_rate mean < nan", "error_rate mean < inf",
		"error_rate mean < 1e999", "error_rate mean < abc" };
	Sluice__V1__Condition    c;
	char                     err[256];

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sluice__v1__condition__init(&c);
		err[0] = '\0';
		if (sl_condition_parse(bad[i], &c, err, sizeof(err)) !=
		    SLUICE_EINVAL) {
			fail_msg("\"%s\" accepted", bad[i]);
		}
		assert_true(err[0] != '\0');
		// Out-params untouched on failure.
		assert_string_equal(c.metric, "");
	}
}

static void
test_rollout_names_of_enums(void **state)
{
	(void) state;
	assert_string_equal(
	    sl_aggregate_name(SLUICE__V1__AGGREGATE__AGG_P95), "p95");
	assert_string_equal(sl_op_name(SLUICE__V1__COMPARE_OP__OP_NE), "!=");
	assert_string_equal(
	    sl_state_name(SLUICE__V1__ROLLOUT_STATE__STATE_ROLLED_BACK),
	    "rolled_back");
}

static void
test_rollout_values(void **state)
{
	Sluice__V1__FlagValue a;
	Sluice__V1__FlagValue b;
	char                  buf[64];

	(void) state;
	sluice__v1__flag_value__init(&a);
	sluice__v1__flag_value__init(&b);
	assert_string_equal(sl_value_kind(&a), "");
	a.kind_case = SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE;
	a.int_value = -42;
	sl_value_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "-42");
	assert_string_equal(sl_value_kind(&a), "int");
	b.kind_case  = SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
	b.percent_bp = 1250;
	assert_false(sl_value_equal(&a, &b));
	sl_value_format(&b, buf, sizeof(buf));
	assert_string_equal(buf, "12.5%");
	a.kind_case  = SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
	a.percent_bp = 1250;
	assert_true(sl_value_equal(&a, &b));
	a.kind_case    = SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE;
	a.string_value = S("v2");
	sl_value_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "v2");
	a.kind_case  = SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
	a.bool_value = 1;
	sl_value_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "true");
}

static void
test_rollout_stage_index(void **state)
{
	fixture f;

	(void) state;
	fixture_init(&f);
	assert_int_equal(sl_stage_index(&f.spec, "baseline"), 0);
	assert_int_equal(sl_stage_index(&f.spec, "full"), 2);
	assert_int_equal(sl_stage_index(&f.spec, "extra"), -1); // n_stages 3
	assert_int_equal(sl_stage_index(&f.spec, "nope"), -1);
}

static void
rollout_at(Sluice__V1__Rollout *r, fixture *f, uint32_t stage,
    uint32_t last_good, Sluice__V1__RolloutState st)
{
	sluice__v1__rollout__init(r);
	r->spec                    = &f->spec;
	r->spec->rollback_window_s = 3600;
	r->stage                   = stage;
	r->last_good               = last_good;
	r->state                   = st;
	r->stage_since_ms          = 1000000;
}

static void
test_rollout_last_good_settles_after_window(void **state)
{
	fixture             f;
	Sluice__V1__Rollout r;
	uint64_t            at = 1000000 + 3600u * 1000u;

	(void) state;
	fixture_init(&f);
	rollout_at(&r, &f, 2, 1, SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE);
	assert_int_equal(sl_rollout_settles_at(&r), at);
	assert_int_equal(sl_rollout_last_good(&r, 1000000), 1);
	assert_int_equal(sl_rollout_last_good(&r, at - 1), 1);
	assert_int_equal(sl_rollout_last_good(&r, at), 2);
	assert_int_equal(sl_rollout_last_good(&r, at + 999999), 2);
	r.state = SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED;
	assert_int_equal(sl_rollout_last_good(&r, at), 2);
}

static void
test_rollout_last_good_no_settle_cases(void **state)
{
	fixture             f;
	Sluice__V1__Rollout r;
	uint64_t            late = UINT64_MAX / 2;

	(void) state;
	fixture_init(&f);
	// Paused or rolled back: never settles.
	rollout_at(&r, &f, 2, 1, SLUICE__V1__ROLLOUT_STATE__STATE_PAUSED);
	assert_int_equal(sl_rollout_settles_at(&r), 0);
	assert_int_equal(sl_rollout_last_good(&r, late), 1);
	rollout_at(&r, &f, 2, 1, SLUICE__V1__ROLLOUT_STATE__STATE_ROLLED_BACK);
	assert_int_equal(sl_rollout_last_good(&r, late), 1);
	// No window.
	rollout_at(&r, &f, 2, 1, SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE);
	f.spec.rollback_window_s = 0;
	assert_int_equal(sl_rollout_settles_at(&r), 0);
	assert_int_equal(sl_rollout_last_good(&r, late), 1);
	// Stage 0, or already last good (stage <= last_good).
	rollout_at(&r, &f, 0, 0, SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE);
	assert_int_equal(sl_rollout_settles_at(&r), 0);
	assert_int_equal(sl_rollout_last_good(&r, late), 0);
	rollout_at(&r, &f, 1, 1, SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE);
	assert_int_equal(sl_rollout_settles_at(&r), 0);
	rollout_at(&r, &f, 1, 2, SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE);
	assert_int_equal(sl_rollout_last_good(&r, late), 2);
	// A window too large to add saturates and never settles.
	rollout_at(&r, &f, 2, 1, SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE);
	f.spec.rollback_window_s = UINT64_MAX / 10;
	assert_true(sl_rollout_settles_at(&r) == UINT64_MAX);
	assert_int_equal(sl_rollout_last_good(&r, UINT64_MAX - 1), 1);
	// No spec at all.
	r.spec = NULL;
	assert_int_equal(sl_rollout_last_good(&r, late), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rollout_validate_good_spec),
		cmocka_unit_test(test_rollout_validate_table),
		cmocka_unit_test(
		    test_rollout_validate_four_values_for_five_stages_message),
		cmocka_unit_test(test_rollout_name_syntax),
		cmocka_unit_test(test_rollout_percent_parse),
		cmocka_unit_test(test_rollout_percent_format_round_trip),
		cmocka_unit_test(test_rollout_duration_parse),
		cmocka_unit_test(test_rollout_duration_format_round_trip),
		cmocka_unit_test(test_rollout_condition_parse_and_format),
		cmocka_unit_test(test_rollout_condition_parse_rejects),
		cmocka_unit_test(test_rollout_names_of_enums),
		cmocka_unit_test(test_rollout_values),
		cmocka_unit_test(test_rollout_stage_index),
		cmocka_unit_test(test_rollout_last_good_settles_after_window),
		cmocka_unit_test(test_rollout_last_good_no_settle_cases),
	};

	return (
	    cmocka_run_group_tests_name("proto/rollout", tests, NULL, NULL));
}
