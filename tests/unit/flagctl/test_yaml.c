// SPDX-License-Identifier: MIT
//
// Unit tests for clients/flagctl/spec_yaml.c: the documented example
// parses to the expected spec, every value kind is told apart by scalar
// style, gates and durations parse, bad files fail with the right line
// number, and export -> parse gives back an equal spec (sl_message_equal).

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "spec_yaml.h"

// The example of docs/rollout-format.md, comments included.
static const char example[] =
    "rollout: orders_discount_v2\n"
    "description: add orders.discount_cents; dual-write, switch readers, "
    "drop legacy column\n"
    "owner: data-platform\n"
    "datasets: [warehouse.orders, marts.revenue_daily]\n"
    "stages: [off, shadow, canary, half, full]\n"
    "flags:\n"
    "  orders.dual_write:     [false, true, true, true, true]\n"
    "  orders.read_new:       [\"0%\", \"0%\", \"10%\", \"50%\", \"100%\"]\n"
    "  orders.writer_version: [1, 1, 2, 2, 2]\n"
    "requires: []            # e.g. [\"customers_v3 >= half\"]\n"
    "rollback_window: 24h\n"
    "max_stale: 5m\n"
    "on_stale: baseline      # or keep\n"
    "gates:\n"
    "  canary:\n"
    "    conditions:\n"
    "      - error_rate mean < 0.01\n"
    "      - latency_ms p95 < 2000\n"
    "    window: {reports: 20}          # or {seconds: 600}\n"
    "    min_samples: 5\n"
    "    consecutive_failures: 2\n"
    "    soak: {reports: 10, seconds: 300}\n"
    "    auto_promote: true\n"
    "    deadline: 2h\n"
    "    on_inconclusive: hold          # or rollback\n";

// A two-stage skeleton that tests extend with one flag line.
#define HEAD "rollout: r1\nstages: [a, b]\nflags:\n"

typedef struct parsed {
	Sluice__V1__RolloutSpec **specs;
	size_t                    n;
	char                      err[1024];
} parsed;

static int
parse(parsed *p, const char *text)
{
	memset(p, 0, sizeof(*p));
	return (ctl_yaml_parse(text, strlen(text), "test.yaml", &p->specs,
	    &p->n, p->err, sizeof(p->err)));
}

static void
done(parsed *p)
{
	ctl_yaml_specs_free(p->specs, p->n);
	p->specs = NULL;
	p->n     = 0;
}

// Parses text, which must fail, and checks err has "test.yaml:LINE:" and
// the word.
static void
expect_error(const char *text, int line, const char *word)
{
	parsed p;
	char   where[64];

	assert_int_equal(parse(&p, text), SLUICE_EINVAL);
	if (line > 0) {
		snprintf(where, sizeof(where), "test.yaml:%d: ", line);
	} else {
		snprintf(where, sizeof(where), "test.yaml");
	}
	if (strncmp(p.err, where, strlen(where)) != 0 ||
	    strstr(p.err, word) == NULL) {
		fail_msg("error \"%s\": want prefix \"%s\" and \"%s\"", p.err,
		    where, word);
	}
	assert_null(p.specs);
}

// Emits specs, parses the result, and checks every spec is unchanged.
static void
assert_round_trip(const parsed *p)
{
	parsed again;
	char  *out = NULL;
	size_t len = 0;
	size_t i;
	int    rv;

	assert_int_equal(ctl_yaml_emit(p->specs, p->n, &out, &len), SLUICE_OK);
	assert_non_null(out);
	assert_int_equal(strlen(out), len);
	memset(&again, 0, sizeof(again));
	rv = ctl_yaml_parse(out, len, "emitted.yaml", &again.specs, &again.n,
	    again.err, sizeof(again.err));
	if (rv != SLUICE_OK) {
		fail_msg("re-parse failed: %s\n%s", again.err, out);
	}
	assert_int_equal(again.n, p->n);
	for (i = 0; i < p->n; i++) {
		if (!sl_message_equal(
		        &p->specs[i]->base, &again.specs[i]->base)) {
			fail_msg(
			    "spec %zu differs after round trip:\n%s", i, out);
		}
	}
	done(&again);
	free(out);
}

static void
test_yaml_parses_example(void **state)
{
	Sluice__V1__RolloutSpec *s;
	Sluice__V1__Gate        *g;
	parsed                   p;

	(void) state;
	assert_int_equal(parse(&p, example), SLUICE_OK);
	assert_int_equal(p.n, 1);
	s = p.specs[0];
	assert_string_equal(s->name, "orders_discount_v2");
	assert_string_equal(s->description,
	    "add orders.discount_cents; dual-write, switch readers, drop "
	    "legacy column");
	assert_string_equal(s->owner, "data-platform");
	assert_int_equal(s->n_datasets, 2);
	assert_string_equal(s->datasets[0], "warehouse.orders");
	assert_string_equal(s->datasets[1], "marts.revenue_daily");
	assert_int_equal(s->n_stages, 5);
	assert_string_equal(s->stages[0], "off");
	assert_string_equal(s->stages[4], "full");
	assert_int_equal(s->n_flags, 3);
	assert_int_equal(s->n_requires, 0);
	assert_int_equal(s->rollback_window_s, 24 * 3600);
	assert_int_equal(s->max_stale_s, 300);
	assert_int_equal(
	    s->on_stale, SLUICE__V1__STALE_POLICY__STALE_BASELINE);
	assert_int_equal(s->n_gates, 1);
	g = s->gates[0];
	assert_string_equal(g->stage, "canary");
	assert_int_equal(g->n_conditions, 2);
	assert_int_equal(g->window_reports, 20);
	assert_int_equal(g->window_seconds, 0);
	assert_int_equal(g->min_samples, 5);
	assert_int_equal(g->consecutive_failures, 2);
	assert_int_equal(g->soak_reports, 10);
	assert_int_equal(g->soak_seconds, 300);
	assert_true(g->auto_promote);
	assert_int_equal(g->deadline_seconds, 7200);
	assert_int_equal(g->on_inconclusive,
	    SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_HOLD);
	done(&p);
}

static void
test_yaml_flags_keep_file_order(void **state)
{
	Sluice__V1__RolloutSpec *s;
	parsed                   p;

	(void) state;
	assert_int_equal(parse(&p, example), SLUICE_OK);
	s = p.specs[0];
	assert_string_equal(s->flags[0]->key, "orders.dual_write");
	assert_string_equal(s->flags[1]->key, "orders.read_new");
	assert_string_equal(s->flags[2]->key, "orders.writer_version");
	done(&p);

	assert_int_equal(parse(&p,
	                     HEAD "  zz: [1, 2]\n  aa: [3, 4]\n"
	                          "  mm: [5, 6]\n"),
	    SLUICE_OK);
	s = p.specs[0];
	assert_string_equal(s->flags[0]->key, "zz");
	assert_string_equal(s->flags[1]->key, "aa");
	assert_string_equal(s->flags[2]->key, "mm");
	done(&p);
}

static const Sluice__V1__FlagValue *
val(const parsed *p, size_t flag, size_t stage)
{
	return (p->specs[0]->flags[flag]->values[stage]);
}

static void
test_yaml_value_kinds(void **state)
{
	parsed p;

	(void) state;
	assert_int_equal(parse(&p,
	                     HEAD "  b: [false, true]\n"
	                          "  i: [-42, 9223372036854775807]\n"
	                          "  s: [plain, \"double\"]\n"
	                          "  q: [\"true\", '42']\n"
	                          "  t: [!str \"50%\", \"x%y\"]\n"),
	    SLUICE_OK);
	assert_int_equal(
	    val(&p, 0, 0)->kind_case, SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE);
	assert_false(val(&p, 0, 0)->bool_value);
	assert_true(val(&p, 0, 1)->bool_value);
	assert_int_equal(
	    val(&p, 1, 0)->kind_case, SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE);
	assert_int_equal(val(&p, 1, 0)->int_value, -42);
	assert_true(val(&p, 1, 1)->int_value == INT64_MAX);
	assert_int_equal(val(&p, 2, 0)->kind_case,
	    SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE);
	assert_string_equal(val(&p, 2, 0)->string_value, "plain");
	assert_string_equal(val(&p, 2, 1)->string_value, "double");
	// Quoted scalars are strings whatever they look like.
	assert_int_equal(val(&p, 3, 0)->kind_case,
	    SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE);
	assert_string_equal(val(&p, 3, 0)->string_value, "true");
	assert_int_equal(val(&p, 3, 1)->kind_case,
	    SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE);
	assert_string_equal(val(&p, 3, 1)->string_value, "42");
	// !str forces a string even for a trailing '%'.
	assert_int_equal(val(&p, 4, 0)->kind_case,
	    SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE);
	assert_string_equal(val(&p, 4, 0)->string_value, "50%");
	assert_string_equal(val(&p, 4, 1)->string_value, "x%y");
	assert_round_trip(&p);
	done(&p);
}

static void
test_yaml_percentages(void **state)
{
	parsed p;

	(void) state;
	assert_int_equal(parse(&p,
	                     HEAD "  p: [0%, \"12.5%\"]\n"
	                          "  q: ['0.01%', 100%]\n"),
	    SLUICE_OK);
	assert_int_equal(
	    val(&p, 0, 0)->kind_case, SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP);
	assert_int_equal(val(&p, 0, 0)->percent_bp, 0);
	assert_int_equal(val(&p, 0, 1)->percent_bp, 1250);
	assert_int_equal(val(&p, 1, 0)->percent_bp, 1);
	assert_int_equal(val(&p, 1, 1)->percent_bp, 10000);
	assert_round_trip(&p);
	done(&p);

	expect_error(HEAD "  p: [0%, \"101%\"]\n", 4, "percentage");
	expect_error(HEAD "  p: [0%, 1.234%]\n", 4, "percentage");
	expect_error(HEAD "  p: [0%, \"%\"]\n", 4, "percentage");
}

static void
test_yaml_gates_and_conditions(void **state)
{
	Sluice__V1__Gate *g;
	parsed            p;

	(void) state;
	assert_int_equal(parse(&p,
	                     HEAD "  f: [false, true]\n"
	                          "gates:\n"
	                          "  b:\n"
	                          "    conditions: [\"rows_lost sum == 0\", "
	                          "\"lag_s max <= 30\"]\n"
	                          "    window: {seconds: 10m}\n"
	                          "    soak: {seconds: 600}\n"
	                          "    deadline: 1h30m\n"
	                          "    on_inconclusive: rollback\n"
	                          "  a: {}\n"),
	    SLUICE_OK);
	assert_int_equal(p.specs[0]->n_gates, 2);
	g = p.specs[0]->gates[0];
	assert_string_equal(g->stage, "b");
	assert_int_equal(g->n_conditions, 2);
	assert_string_equal(g->conditions[0]->metric, "rows_lost");
	assert_int_equal(
	    g->conditions[0]->aggregate, SLUICE__V1__AGGREGATE__AGG_SUM);
	assert_int_equal(g->conditions[0]->op, SLUICE__V1__COMPARE_OP__OP_EQ);
	assert_true(g->conditions[0]->threshold == 0.0);
	assert_string_equal(g->conditions[1]->metric, "lag_s");
	assert_int_equal(
	    g->conditions[1]->aggregate, SLUICE__V1__AGGREGATE__AGG_MAX);
	assert_int_equal(g->conditions[1]->op, SLUICE__V1__COMPARE_OP__OP_LE);
	assert_true(g->conditions[1]->threshold == 30.0);
	assert_int_equal(g->window_seconds, 600);
	assert_int_equal(g->window_reports, 0);
	assert_int_equal(g->soak_seconds, 600);
	assert_int_equal(g->deadline_seconds, 5400);
	assert_false(g->auto_promote);
	assert_int_equal(g->on_inconclusive,
	    SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_ROLLBACK);
	assert_string_equal(p.specs[0]->gates[1]->stage, "a");
	assert_round_trip(&p);
	done(&p);
}

static void
test_yaml_durations(void **state)
{
	parsed p;

	(void) state;
	assert_int_equal(parse(&p,
	                     HEAD "  f: [1, 2]\n"
	                          "rollback_window: 1h30m\n"
	                          "max_stale: 90\n"
	                          "on_stale: keep\n"),
	    SLUICE_OK);
	assert_int_equal(p.specs[0]->rollback_window_s, 5400);
	assert_int_equal(p.specs[0]->max_stale_s, 90);
	assert_int_equal(
	    p.specs[0]->on_stale, SLUICE__V1__STALE_POLICY__STALE_KEEP);
	assert_round_trip(&p);
	done(&p);

	expect_error(HEAD "  f: [1, 2]\nrollback_window: 5x\n", 5, "duration");
	expect_error(HEAD "  f: [1, 2]\nmax_stale: soon\n", 5, "duration");
}

static void
test_yaml_requires(void **state)
{
	parsed p;

	(void) state;
	assert_int_equal(parse(&p,
	                     HEAD "  f: [1, 2]\n"
	                          "requires: [\"customers_v3 >= half\", "
	                          "other>=b]\n"),
	    SLUICE_OK);
	assert_int_equal(p.specs[0]->n_requires, 2);
	assert_string_equal(
	    p.specs[0]->requires[0] -> rollout, "customers_v3");
	assert_string_equal(p.specs[0]->requires[0] -> stage, "half");
	assert_string_equal(p.specs[0]->requires[1] -> rollout, "other");
	assert_string_equal(p.specs[0]->requires[1] -> stage, "b");
	assert_round_trip(&p);
	done(&p);

	expect_error(HEAD "  f: [1, 2]\nrequires: [\"customers_v3 half\"]\n",
	    5, "prerequisite");
}

static void
test_yaml_errors_name_the_line(void **state)
{
	(void) state;
	// A typo in a top-level key is never ignored.
	expect_error(HEAD "  f: [1, 2]\nrollback_windw: 1h\n", 5,
	    "unknown key \"rollback_windw\"");
	expect_error(HEAD "  f: [1, 2]\ngates:\n  b:\n    min_sample: 3\n", 7,
	    "unknown gate key");
	expect_error(HEAD "  f: [1, 2]\ngates:\n  b:\n    window: {rep: 3}\n",
	    7, "unknown key \"rep\"");
	expect_error(HEAD "  f: [1, 2, 3]\n", 4, "3 values for 2 stages");
	expect_error(HEAD "  f: [1, true]\n", 4, "first value");
	expect_error(HEAD "  f: [yes, no]\n", 4, "ambiguous");
	expect_error(HEAD "  f: [1.5, 2]\n", 4, "integer");
	expect_error(HEAD "  f: [1, ~]\n", 4, "missing value");
	expect_error(HEAD "  f: [1, 99999999999999999999]\n", 4, "integer");
	expect_error(HEAD "  f: true\n", 4, "one value per stage");
	expect_error(HEAD "  f: [1, 2]\n  f: [3, 4]\n", 5, "duplicate key");
	expect_error(
	    HEAD "  f: [1, 2]\ngates:\n  c: {}\n", 6, "not one of the stages");
	expect_error(HEAD "  f: [1, 2]\ngates:\n  b:\n    conditions: "
	                  "[\"nonsense\"]\n",
	    7, "bad condition");
	expect_error(HEAD "  f: [1, 2]\ngates:\n  b:\n    auto_promote: yes\n",
	    7, "true or false");
	expect_error(HEAD "  f: [1, 2]\non_stale: maybe\n", 5, "on_stale");
	expect_error(HEAD "  f: [1, 2]\n   bad indent: [\n", 5, "");
	expect_error(
	    "stages: [a, b]\nflags:\n  f: [1, 2]\n", 1, "missing \"rollout\"");
	expect_error("- just\n- a list\n", 1, "mapping");
	// Whole-document rules are checked by sl_spec_validate().
	expect_error(
	    "rollout: Bad Name\nstages: [a, b]\nflags:\n  f: [1, 2]\n", 1,
	    "rollout");
	expect_error("rollout: r\nstages: [a]\nflags:\n  f: [1]\n", 1, "");
}

static void
test_yaml_empty_input_is_an_error(void **state)
{
	(void) state;
	expect_error("", 0, "no rollout");
	expect_error("# only a comment\n", 0, "no rollout");
}

static void
test_yaml_example_round_trips(void **state)
{
	parsed p;

	(void) state;
	assert_int_equal(parse(&p, example), SLUICE_OK);
	assert_round_trip(&p);
	done(&p);
}

static void
test_yaml_awkward_strings_round_trip(void **state)
{
	parsed p;

	(void) state;
	assert_int_equal(
	    parse(&p,
	        "rollout: r1\n"
	        "description: \"~\"\n"
	        "owner: \"null\"\n"
	        "datasets: [\"a: b\", \"#c\", \"true\", \" x \"]\n"
	        "stages: [a, b]\n"
	        "flags:\n"
	        "  s: [\"line\\nbreak\", \"caf\\u00e9 \\\"q\\\"\"]\n"
	        "  t: [!str \"100%\", \"-5\"]\n"
	        "  u: [\"\", \"~\"]\n"),
	    SLUICE_OK);
	assert_string_equal(p.specs[0]->description, "~");
	assert_string_equal(p.specs[0]->owner, "null");
	assert_round_trip(&p);
	done(&p);
}

static void
test_yaml_several_documents(void **state)
{
	parsed p;

	(void) state;
	assert_int_equal(parse(&p,
	                     HEAD "  f: [1, 2]\n---\n"
	                          "rollout: r2\nstages: [x, y, z]\n"
	                          "flags:\n  g: [a, b, c]\n"),
	    SLUICE_OK);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.specs[0]->name, "r1");
	assert_string_equal(p.specs[1]->name, "r2");
	assert_round_trip(&p);
	done(&p);

	// The line number counts from the start of the file.
	expect_error(HEAD "  f: [1, 2]\n---\nrollout: r2\nstages: [x, y]\n"
	                  "flags:\n  g: [1, 2]\nextra: 1\n",
	    10, "unknown key \"extra\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_parses_example),
		cmocka_unit_test(test_yaml_flags_keep_file_order),
		cmocka_unit_test(test_yaml_value_kinds),
		cmocka_unit_test(test_yaml_percentages),
		cmocka_unit_test(test_yaml_gates_and_conditions),
		cmocka_unit_test(test_yaml_durations),
		cmocka_unit_test(test_yaml_requires),
		cmocka_unit_test(test_yaml_errors_name_the_line),
		cmocka_unit_test(test_yaml_empty_input_is_an_error),
		cmocka_unit_test(test_yaml_example_round_trips),
		cmocka_unit_test(test_yaml_awkward_strings_round_trip),
		cmocka_unit_test(test_yaml_several_documents),
	};

	return (
	    cmocka_run_group_tests_name("flagctl/yaml", tests, NULL, NULL));
}
