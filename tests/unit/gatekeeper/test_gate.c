// SPDX-License-Identifier: MIT
//
// Unit tests for gatekeeper/gate.c, table-driven: every aggregate, every
// comparison, windows by count and by time, missing metrics, min samples,
// consecutive failures, soak by reports and by time, the deadline with
// hold and rollback, decisions staying done, and stage-change resets.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "gate.h"

#define NA (-12345.0) // "this report lacks the metric"
#define MAXR 64

// ---------------------------------------------------------------- aggregates

typedef struct agg_case {
	Sluice__V1__Aggregate a;
	double                v[12];
	size_t                n;
	double                want;
	int                   rv;
} agg_case;

static const agg_case agg_cases[] = {
	{ SLUICE__V1__AGGREGATE__AGG_MEAN, { 1, 2, 3, 4 }, 4, 2.5, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_MEAN, { 7 }, 1, 7, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_MIN, { 3, -1, 2 }, 3, -1, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_MAX, { 3, -1, 2 }, 3, 3, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_SUM, { 0.5, 0.25, 1 }, 3, 1.75, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_SUM, { 0 }, 0, 0, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_LAST, { 9, 1, 5 }, 3, 5, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_COUNT, { 9, 1, 5 }, 3, 3, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_COUNT, { 0 }, 0, 0, 0 },
	// Nearest rank: rank = ceil(p/100 * n).
	{ SLUICE__V1__AGGREGATE__AGG_P50, { 4, 1, 3, 2 }, 4, 2, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_P50, { 5, 1, 3 }, 3, 3, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_P50, { 42 }, 1, 42, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_P95, { 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 },
	    10, 10, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_P95, { 1, 2 }, 2, 2, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_P99,
	    { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 }, 11, 11, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_P99, { 3 }, 1, 3, 0 },
	{ SLUICE__V1__AGGREGATE__AGG_MEAN, { 0 }, 0, 0, SLUICE_EINVAL },
	{ SLUICE__V1__AGGREGATE__AGG_P95, { 0 }, 0, 0, SLUICE_EINVAL },
	{ SLUICE__V1__AGGREGATE__AGG_UNSPECIFIED, { 1 }, 1, 0, SLUICE_EINVAL },
};

static void
test_gate_aggregates(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(agg_cases) / sizeof(agg_cases[0]); i++) {
		const agg_case *c = &agg_cases[i];
		double          scratch[12], out = -1;

		assert_int_equal(
		    gk_aggregate(c->a, c->v, c->n, scratch, &out), c->rv);
		if (c->rv == SLUICE_OK) {
			if (fabs(out - c->want) > 1e-12) {
				fail_msg("case %zu: %s = %g, want %g", i,
				    c->a == 0 ? "?" : "agg", out, c->want);
			}
		}
	}
}

// p95 of 1..20 is the 19th value; p99 of 1..100 the 99th; p50 of 1..100
// the 50th (nearest rank, not interpolated).
static void
test_gate_percentile_nearest_rank(void **state)
{
	double v[100], scratch[100], out;

	(void) state;
	for (int i = 0; i < 100; i++) {
		v[i] = 100 - i; // descending: the sort matters
	}
	assert_int_equal(gk_aggregate(SLUICE__V1__AGGREGATE__AGG_P50, v, 100,
	                     scratch, &out),
	    SLUICE_OK);
	assert_true(out == 50);
	assert_int_equal(gk_aggregate(SLUICE__V1__AGGREGATE__AGG_P99, v, 100,
	                     scratch, &out),
	    SLUICE_OK);
	assert_true(out == 99);
	for (int i = 0; i < 20; i++) {
		v[i] = i + 1;
	}
	assert_int_equal(
	    gk_aggregate(SLUICE__V1__AGGREGATE__AGG_P95, v, 20, scratch, &out),
	    SLUICE_OK);
	assert_true(out == 19);
	assert_true(v[0] == 1); // the input is not sorted in place
}

// ---------------------------------------------------------------- ops

typedef struct op_case {
	Sluice__V1__CompareOp op;
	double                v, t;
	bool                  want;
} op_case;

static void
test_gate_compare_ops(void **state)
{
	const op_case cases[] = {
		{ SLUICE__V1__COMPARE_OP__OP_LT, 1, 2, true },
		{ SLUICE__V1__COMPARE_OP__OP_LT, 2, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_LT, 3, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_LE, 1, 2, true },
		{ SLUICE__V1__COMPARE_OP__OP_LE, 2, 2, true },
		{ SLUICE__V1__COMPARE_OP__OP_LE, 3, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_GT, 1, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_GT, 2, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_GT, 3, 2, true },
		{ SLUICE__V1__COMPARE_OP__OP_GE, 1, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_GE, 2, 2, true },
		{ SLUICE__V1__COMPARE_OP__OP_GE, 3, 2, true },
		{ SLUICE__V1__COMPARE_OP__OP_EQ, 2, 2, true },
		{ SLUICE__V1__COMPARE_OP__OP_EQ, 1, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_NE, 2, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_NE, 1, 2, true },
		{ SLUICE__V1__COMPARE_OP__OP_UNSPECIFIED, 1, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_LT, NAN, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_NE, NAN, 2, false },
		{ SLUICE__V1__COMPARE_OP__OP_GT, 1, NAN, false },
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (gk_compare(cases[i].op, cases[i].v, cases[i].t) !=
		    cases[i].want) {
			fail_msg("op case %zu", i);
		}
	}
}

// ---------------------------------------------------------------- scenarios

// Reports with up to two metrics, "m" and "x".
typedef struct rep {
	Sluice__V1__MetricReport                r;
	Sluice__V1__MetricReport__MetricsEntry  e[2];
	Sluice__V1__MetricReport__MetricsEntry *ep[2];
} rep;

static void
rep_make(rep *p, double m, double x)
{
	sluice__v1__metric_report__init(&p->r);
	p->r.metrics = p->ep;
	if (m != NA) {
		sluice__v1__metric_report__metrics_entry__init(&p->e[0]);
		p->e[0].key             = (char *) (uintptr_t) "m";
		p->e[0].value           = m;
		p->ep[p->r.n_metrics++] = &p->e[0];
	}
	if (x != NA) {
		sluice__v1__metric_report__metrics_entry__init(&p->e[1]);
		p->e[1].key             = (char *) (uintptr_t) "x";
		p->e[1].value           = x;
		p->ep[p->r.n_metrics++] = &p->e[1];
	}
}

// One step: a report (m, x) accepted at `at`, or a timer tick (tick true),
// then what the evaluation must say.
typedef struct step {
	uint64_t    at;
	bool        tick;
	double      m, x;
	gk_status   status;
	gk_decision decision;
} step;

typedef struct scenario {
	const char *name;
	// Gate: condition 0 is "m AGG OP T"; condition 1, when x_cond, is
	// "x max < 100".
	Sluice__V1__Aggregate agg;
	Sluice__V1__CompareOp op;
	double                t;
	bool                  x_cond;
	uint32_t              window_reports, window_seconds, min_samples;
	uint32_t              consecutive, soak_reports, soak_seconds;
	bool                  auto_promote;
	uint32_t              deadline;
	bool                  inconclusive_rollback;
	step                  steps[16];
	size_t                n;
} scenario;

#define P GK_STATUS_PENDING
#define OK GK_STATUS_PASSING
#define BR GK_STATUS_BREACHING
#define F GK_STATUS_FAILING
#define INC GK_STATUS_INCONCLUSIVE
#define D0 GK_DECIDE_NONE
#define UP GK_DECIDE_PROMOTE
#define RB GK_DECIDE_ROLLBACK
#define MEAN SLUICE__V1__AGGREGATE__AGG_MEAN
#define MAX SLUICE__V1__AGGREGATE__AGG_MAX
#define COUNT SLUICE__V1__AGGREGATE__AGG_COUNT
#define LAST SLUICE__V1__AGGREGATE__AGG_LAST
#define LT SLUICE__V1__COMPARE_OP__OP_LT
#define GE SLUICE__V1__COMPARE_OP__OP_GE
#define R(t, v)                       \
	{                             \
		t, false, v, NA, 0, 0 \
	}

static const scenario scenarios[] = {
	{ .name          = "min samples: pending until 3, then passing",
	    .agg         = MEAN,
	    .op          = LT,
	    .t           = 0.5,
	    .min_samples = 3,
	    .steps       = { { 1, false, 0.1, NA, P, D0 },
	              { 2, false, 0.1, NA, P, D0 }, { 3, false, 0.1, NA, OK, D0 } },
	    .n           = 3 },
	{ .name    = "one breach fails at once without damping",
	    .agg   = MAX,
	    .op    = LT,
	    .t     = 1,
	    .steps = { { 1, false, 0.5, NA, OK, D0 },
	        { 2, false, 2, NA, F, RB } },
	    .n     = 2 },
	{ .name  = "consecutive failures 2: one noisy batch only breaches",
	    .agg = LAST,
	    .op  = LT,
	    .t   = 1,
	    .consecutive = 2,
	    .steps       = { { 1, false, 5, NA, BR, D0 },
	              { 2, false, 0, NA, OK, D0 }, { 3, false, 5, NA, BR, D0 },
	              { 4, false, 5, NA, F, RB } },
	    .n           = 4 },
	{ .name          = "ticks never move the failure streak",
	    .agg         = LAST,
	    .op          = LT,
	    .t           = 1,
	    .consecutive = 2,
	    .steps = { { 1, false, 5, NA, BR, D0 }, { 2, true, 0, NA, BR, D0 },
	        { 3, true, 0, NA, BR, D0 }, { 4, false, 5, NA, F, RB } },
	    .n     = 4 },
	{ .name             = "window by count: the bad report ages out",
	    .agg            = MAX,
	    .op             = LT,
	    .t              = 1,
	    .window_reports = 2,
	    .consecutive    = 3,
	    .steps          = { { 1, false, 5, NA, BR, D0 },
	                 { 2, false, 0, NA, BR, D0 }, { 3, false, 0, NA, OK, D0 } },
	    .n              = 3 },
	{ .name             = "window by count: mean over the newest 3",
	    .agg            = MEAN,
	    .op             = LT,
	    .t              = 2,
	    .window_reports = 3,
	    .consecutive    = 9,
	    .steps          = { { 1, false, 9, NA, BR, D0 },
	                 { 2, false, 1, NA, BR, D0 }, { 3, false, 1, NA, BR, D0 },
	                 { 4, false, 1, NA, OK, D0 } },
	    .n              = 4 },
	{ .name  = "window by time: 10 s, reports age out, pending again",
	    .agg = MAX,
	    .op  = LT,
	    .t   = 1,
	    .window_seconds = 10,
	    .consecutive    = 5,
	    .steps          = { { 1000, false, 5, NA, BR, D0 },
	                 { 5000, false, 0, NA, BR, D0 },
	                 { 11000, true, 0, NA, OK, D0 }, // the 5 left the window
	                 { 15001, true, 0, NA, P, D0 } }, // both left
	    .n              = 4 },
	{ .name             = "count aggregate over a time window",
	    .agg            = COUNT,
	    .op             = GE,
	    .t              = 2,
	    .window_seconds = 10,
	    .steps          = { { 1000, false, 1, NA, F, RB } },
	    .n              = 1 },
	{ .name          = "missing metric does not count for that condition",
	    .agg         = MEAN,
	    .op          = LT,
	    .t           = 1,
	    .min_samples = 2,
	    .steps       = { { 1, false, 0.5, NA, P, D0 },
	              { 2, false, NA, 7, P, D0 }, { 3, false, 0.5, NA, OK, D0 } },
	    .n           = 3 },
	{ .name     = "second condition breaches, the first is fine",
	    .agg    = MEAN,
	    .op     = LT,
	    .t      = 1,
	    .x_cond = true,
	    .steps  = { { 1, false, 0.5, 1, OK, D0 },
	         { 2, false, 0.5, 500, F, RB } },
	    .n      = 2 },
	{ .name     = "second condition pending keeps the gate pending",
	    .agg    = MEAN,
	    .op     = LT,
	    .t      = 1,
	    .x_cond = true,
	    .steps  = { { 1, false, 0.5, NA, P, D0 },
	         { 2, false, 0.5, 1, OK, D0 } },
	    .n      = 2 },
	{ .name           = "soak by reports: promote after 3 passing reports",
	    .agg          = MEAN,
	    .op           = LT,
	    .t            = 1,
	    .soak_reports = 3,
	    .auto_promote = true,
	    .steps        = { { 1, false, 0, NA, OK, D0 },
	               { 2, false, 0, NA, OK, D0 }, { 3, false, 0, NA, OK, UP } },
	    .n            = 3 },
	{ .name           = "soak restarts after a breach",
	    .agg          = LAST,
	    .op           = LT,
	    .t            = 1,
	    .soak_reports = 2,
	    .consecutive  = 2,
	    .auto_promote = true,
	    .steps        = { { 1, false, 0, NA, OK, D0 },
	               { 2, false, 5, NA, BR, D0 }, { 3, false, 0, NA, OK, D0 },
	               { 4, false, 0, NA, OK, UP } },
	    .n            = 4 },
	{ .name           = "soak by time: promote on a tick once 60 s passed",
	    .agg          = MEAN,
	    .op           = LT,
	    .t            = 1,
	    .soak_seconds = 60,
	    .auto_promote = true,
	    .steps        = { { 1000, false, 0, NA, OK, D0 },
	               { 60999, true, 0, NA, OK, D0 },
	               { 61000, true, 0, NA, OK, UP } },
	    .n            = 3 },
	{ .name  = "soak needs both reports and seconds when both are set",
	    .agg = MEAN,
	    .op  = LT,
	    .t   = 1,
	    .soak_reports = 2,
	    .soak_seconds = 10,
	    .auto_promote = true,
	    .steps        = { { 0, false, 0, NA, OK, D0 },
	               { 20000, true, 0, NA, OK, D0 },
	               { 20001, false, 0, NA, OK, UP } },
	    .n            = 3 },
	{ .name           = "no auto_promote: passing forever, never promotes",
	    .agg          = MEAN,
	    .op           = LT,
	    .t            = 1,
	    .soak_reports = 1,
	    .steps        = { { 1, false, 0, NA, OK, D0 },
	               { 2, false, 0, NA, OK, D0 } },
	    .n            = 2 },
	{ .name          = "deadline with hold: inconclusive, no decision",
	    .agg         = MEAN,
	    .op          = LT,
	    .t           = 1,
	    .min_samples = 5,
	    .deadline    = 60,
	    .steps       = { { 1000, false, 0, NA, P, D0 },
	              { 59999, true, 0, NA, P, D0 },
	              { 60000, true, 0, NA, INC, D0 } },
	    .n           = 3 },
	{ .name          = "deadline with rollback: inconclusive rolls back",
	    .agg         = MEAN,
	    .op          = LT,
	    .t           = 1,
	    .min_samples = 5,
	    .deadline    = 60,
	    .inconclusive_rollback = true,
	    .steps                 = { { 60000, true, 0, NA, INC, RB } },
	    .n                     = 1 },
	{ .name  = "deadline does not touch a gate with enough samples",
	    .agg = MEAN,
	    .op  = LT,
	    .t   = 1,
	    .min_samples           = 1,
	    .deadline              = 60,
	    .inconclusive_rollback = true,
	    .steps                 = { { 1000, false, 0, NA, OK, D0 },
	                        { 90000, true, 0, NA, OK, D0 } },
	    .n                     = 2 },
	{ .name           = "failing beats soak",
	    .agg          = LAST,
	    .op           = LT,
	    .t            = 1,
	    .auto_promote = true,
	    .soak_reports = 1,
	    .steps        = { { 1, false, 9, NA, F, RB } },
	    .n            = 1 },
};

static void
run_scenario(const scenario *sc)
{
	Sluice__V1__Gate       g;
	Sluice__V1__Condition  c0, c1;
	Sluice__V1__Condition *cs[2] = { &c0, &c1 };
	static rep             reps[MAXR];
	gk_sample              s[MAXR];
	size_t                 n = 0;
	double                 scratch[2 * MAXR];
	gk_gate_state          st;
	gk_eval                ev;

	sluice__v1__gate__init(&g);
	sluice__v1__condition__init(&c0);
	sluice__v1__condition__init(&c1);
	c0.metric              = (char *) (uintptr_t) "m";
	c0.aggregate           = sc->agg;
	c0.op                  = sc->op;
	c0.threshold           = sc->t;
	c1.metric              = (char *) (uintptr_t) "x";
	c1.aggregate           = MAX;
	c1.op                  = LT;
	c1.threshold           = 100;
	g.conditions           = cs;
	g.n_conditions         = sc->x_cond ? 2 : 1;
	g.window_reports       = sc->window_reports;
	g.window_seconds       = sc->window_seconds;
	g.min_samples          = sc->min_samples;
	g.consecutive_failures = sc->consecutive;
	g.soak_reports         = sc->soak_reports;
	g.soak_seconds         = sc->soak_seconds;
	g.auto_promote         = sc->auto_promote;
	g.deadline_seconds     = sc->deadline;
	g.on_inconclusive      = sc->inconclusive_rollback
	         ? SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_ROLLBACK
	         : SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_HOLD;
	gk_gate_stage_reset(&st, 1, 0);

	for (size_t i = 0; i < sc->n; i++) {
		const step *p = &sc->steps[i];

		if (!p->tick) {
			rep_make(&reps[n], p->m, p->x);
			s[n].at_ms = p->at;
			s[n].r     = &reps[n].r;
			n++;
		}
		assert_int_equal(gk_gate_evaluate(&g, s, n, &st, p->at,
		                     !p->tick, scratch, &ev),
		    SLUICE_OK);
		if (ev.status != p->status || ev.decision != p->decision) {
			fail_msg("%s: step %zu: %s/%s, want %s/%s", sc->name,
			    i, gk_status_name(ev.status),
			    gk_decision_name(ev.decision),
			    gk_status_name(p->status),
			    gk_decision_name(p->decision));
		}
	}
}

static void
test_gate_scenarios(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		run_scenario(&scenarios[i]);
	}
}

// ---------------------------------------------------------------- details

static void
one_cond_gate(Sluice__V1__Gate *g, Sluice__V1__Condition *c,
    Sluice__V1__Condition **cs, Sluice__V1__Aggregate a, double t)
{
	sluice__v1__gate__init(g);
	sluice__v1__condition__init(c);
	c->metric       = (char *) (uintptr_t) "m";
	c->aggregate    = a;
	c->op           = LT;
	c->threshold    = t;
	cs[0]           = c;
	g->conditions   = cs;
	g->n_conditions = 1;
}

static void
test_gate_eval_reports_figures(void **state)
{
	Sluice__V1__Gate      g;
	Sluice__V1__Condition c, *cs[1];
	rep                   r[4];
	gk_sample             s[4];
	double                scratch[8];
	gk_gate_state         st;
	gk_eval               ev;
	const double          v[4] = { 0.1, NA, 0.3, 0.2 };

	(void) state;
	one_cond_gate(&g, &c, cs, MEAN, 0.25);
	g.window_reports = 3;
	for (int i = 0; i < 4; i++) {
		rep_make(&r[i], v[i], NA);
		s[i].at_ms = (uint64_t) i;
		s[i].r     = &r[i].r;
	}
	gk_gate_stage_reset(&st, 2, 0);
	assert_int_equal(
	    gk_gate_evaluate(&g, s, 4, &st, 10, true, scratch, &ev),
	    SLUICE_OK);
	assert_int_equal(ev.first, 1);
	assert_int_equal(ev.window, 3);
	assert_int_equal(ev.n_cond, 1);
	assert_int_equal(ev.cond[0].samples, 2); // the NA report skipped
	assert_true(fabs(ev.cond[0].value - 0.25) < 1e-12);
	assert_int_equal(ev.cond[0].status, GK_COND_BREACH); // 0.25 < 0.25
	assert_int_equal(ev.cond[0].streak, 1);
	assert_int_equal(ev.status, GK_STATUS_FAILING);
	assert_int_equal(ev.deciding, 0);
	assert_int_equal(st.evaluations, 1);
}

static void
test_gate_decided_stays_until_stage_reset(void **state)
{
	Sluice__V1__Gate      g;
	Sluice__V1__Condition c, *cs[1];
	rep                   r[2];
	gk_sample             s[2];
	double                scratch[4];
	gk_gate_state         st;
	gk_eval               ev;

	(void) state;
	one_cond_gate(&g, &c, cs, MAX, 1);
	rep_make(&r[0], 5, NA);
	rep_make(&r[1], 5, NA);
	s[0] = (gk_sample) { 1, &r[0].r };
	s[1] = (gk_sample) { 2, &r[1].r };
	gk_gate_stage_reset(&st, 1, 0);
	assert_int_equal(
	    gk_gate_evaluate(&g, s, 1, &st, 1, true, scratch, &ev), SLUICE_OK);
	assert_int_equal(ev.decision, GK_DECIDE_ROLLBACK);
	gk_gate_mark_decided(&st, GK_DECIDE_ROLLBACK);
	assert_int_equal(
	    gk_gate_evaluate(&g, s, 2, &st, 2, true, scratch, &ev), SLUICE_OK);
	assert_int_equal(ev.status, GK_STATUS_ROLLED_BACK);
	assert_int_equal(ev.decision, GK_DECIDE_NONE);
	assert_int_equal(ev.cond[0].streak, 1); // frozen after the decision

	// The stage changed: everything starts again.
	gk_gate_stage_reset(&st, 0, 100);
	assert_int_equal(st.stage, 0);
	assert_int_equal(st.stage_since_ms, 100);
	assert_int_equal(st.decided, GK_DECIDE_NONE);
	assert_int_equal(st.streak[0], 0);
	assert_int_equal(st.evaluations, 0);
	assert_int_equal(
	    gk_gate_evaluate(&g, s, 0, &st, 200, false, scratch, &ev),
	    SLUICE_OK);
	assert_int_equal(ev.status, GK_STATUS_PENDING);

	gk_gate_mark_decided(&st, GK_DECIDE_PROMOTE);
	assert_int_equal(
	    gk_gate_evaluate(&g, s, 0, &st, 200, false, scratch, &ev),
	    SLUICE_OK);
	assert_int_equal(ev.status, GK_STATUS_PROMOTED);
}

static void
test_gate_soak_and_deadline_are_relative_to_state(void **state)
{
	Sluice__V1__Gate      g;
	Sluice__V1__Condition c, *cs[1];
	double                scratch[2];
	gk_gate_state         st;
	gk_eval               ev;

	(void) state;
	one_cond_gate(&g, &c, cs, MEAN, 1);
	g.deadline_seconds = 10;
	// The stage was entered at t = 1,000,000; the deadline is 10 s later.
	gk_gate_stage_reset(&st, 3, 1000000);
	assert_int_equal(
	    gk_gate_evaluate(&g, NULL, 0, &st, 1009999, false, scratch, &ev),
	    SLUICE_OK);
	assert_int_equal(ev.status, GK_STATUS_PENDING);
	assert_int_equal(
	    gk_gate_evaluate(&g, NULL, 0, &st, 1010000, false, scratch, &ev),
	    SLUICE_OK);
	assert_int_equal(ev.status, GK_STATUS_INCONCLUSIVE);
	assert_int_equal(ev.decision, GK_DECIDE_NONE);
}

static void
test_gate_non_finite_aggregate_is_a_breach(void **state)
{
	Sluice__V1__Gate      g;
	Sluice__V1__Condition c, *cs[1];
	rep                   r[1];
	gk_sample             s[1];
	double                scratch[2];
	gk_gate_state         st;
	gk_eval               ev;

	(void) state;
	one_cond_gate(&g, &c, cs, MEAN, 1);
	c.op = SLUICE__V1__COMPARE_OP__OP_NE;
	rep_make(&r[0], INFINITY, NA);
	s[0] = (gk_sample) { 1, &r[0].r };
	gk_gate_stage_reset(&st, 1, 0);
	assert_int_equal(
	    gk_gate_evaluate(&g, s, 1, &st, 1, true, scratch, &ev), SLUICE_OK);
	assert_int_equal(ev.status, GK_STATUS_FAILING);
}

static void
test_gate_no_conditions_needs_min_samples(void **state)
{
	Sluice__V1__Gate g;
	rep              r[2];
	gk_sample        s[2];
	double           scratch[4];
	gk_gate_state    st;
	gk_eval          ev;

	(void) state;
	sluice__v1__gate__init(&g);
	g.min_samples  = 2;
	g.auto_promote = true;
	rep_make(&r[0], NA, NA);
	rep_make(&r[1], NA, NA);
	s[0] = (gk_sample) { 1, &r[0].r };
	s[1] = (gk_sample) { 2, &r[1].r };
	gk_gate_stage_reset(&st, 1, 0);
	assert_int_equal(
	    gk_gate_evaluate(&g, s, 1, &st, 1, true, scratch, &ev), SLUICE_OK);
	assert_int_equal(ev.status, GK_STATUS_PENDING);
	assert_int_equal(
	    gk_gate_evaluate(&g, s, 2, &st, 2, true, scratch, &ev), SLUICE_OK);
	assert_int_equal(ev.status, GK_STATUS_PASSING);
	assert_int_equal(ev.decision, GK_DECIDE_PROMOTE);
}

static void
test_gate_rejects_bad_arguments(void **state)
{
	Sluice__V1__Gate      g;
	Sluice__V1__Condition c, *cs[GK_MAX_CONDITIONS + 1];
	gk_gate_state         st;
	gk_eval               ev;
	double                scratch[2];

	(void) state;
	sluice__v1__gate__init(&g);
	sluice__v1__condition__init(&c);
	for (size_t i = 0; i <= GK_MAX_CONDITIONS; i++) {
		cs[i] = &c;
	}
	g.conditions   = cs;
	g.n_conditions = GK_MAX_CONDITIONS + 1;
	gk_gate_stage_reset(&st, 0, 0);
	assert_int_equal(
	    gk_gate_evaluate(&g, NULL, 0, &st, 0, false, scratch, &ev),
	    SLUICE_EINVAL);
	assert_int_equal(
	    gk_gate_evaluate(NULL, NULL, 0, &st, 0, false, scratch, &ev),
	    SLUICE_EINVAL);
	assert_string_equal(gk_status_name(GK_STATUS_BREACHING), "breaching");
	assert_string_equal(gk_decision_name(GK_DECIDE_ROLLBACK), "rollback");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gate_aggregates),
		cmocka_unit_test(test_gate_percentile_nearest_rank),
		cmocka_unit_test(test_gate_compare_ops),
		cmocka_unit_test(test_gate_scenarios),
		cmocka_unit_test(test_gate_eval_reports_figures),
		cmocka_unit_test(test_gate_decided_stays_until_stage_reset),
		cmocka_unit_test(
		    test_gate_soak_and_deadline_are_relative_to_state),
		cmocka_unit_test(test_gate_non_finite_aggregate_is_a_breach),
		cmocka_unit_test(test_gate_no_conditions_needs_min_samples),
		cmocka_unit_test(test_gate_rejects_bad_arguments),
	};

	return (
	    cmocka_run_group_tests_name("gatekeeper/gate", tests, NULL, NULL));
}
