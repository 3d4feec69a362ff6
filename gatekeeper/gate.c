/* SPDX-License-Identifier: MIT */
/*
 * gate.c — pure gate evaluation: windows, aggregates, comparisons,
 * damping, soak, deadline and the decision that follows. No I/O, no clock
 * reads, no allocation; gate.h states the semantics.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"

void
gk_gate_stage_reset(gk_gate_state *st, uint32_t stage, uint64_t since_ms)
{
	memset(st, 0, sizeof(*st));
	st->stage          = stage;
	st->stage_since_ms = since_ms;
}

void
gk_gate_mark_decided(gk_gate_state *st, gk_decision d)
{
	st->decided = (uint8_t) d;
}

size_t
gk_gate_window(
    const Sluice__V1__Gate *g, const gk_sample *s, size_t n, uint64_t now_ms)
{
	size_t first = 0;

	if (g->window_reports > 0 && n > g->window_reports) {
		first = n - g->window_reports;
	}
	if (g->window_seconds > 0) {
		uint64_t span = (uint64_t) g->window_seconds * 1000u;
		uint64_t from = now_ms > span ? now_ms - span : 0;

		// Kept: accepted in (now - T, now]. At now < T nothing has
		// aged out yet, so from = 0 keeps a report accepted at 0.
		while (first < n && s[first].at_ms <= from && now_ms >= span) {
			first++;
		}
	}
	return (first);
}

bool
gk_report_metric(
    const Sluice__V1__MetricReport *r, const char *metric, double *vp)
{
	for (size_t i = 0; i < r->n_metrics; i++) {
		const Sluice__V1__MetricReport__MetricsEntry *e =
		    r->metrics[i];

		if (e != NULL && e->key != NULL &&
		    strcmp(e->key, metric) == 0) {
			*vp = e->value;
			return (true);
		}
	}
	return (false);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a;
	double y = *(const double *) b;

	return ((x > y) - (x < y));
}

// Nearest rank: the value at 1-based rank ceil(p/100 * n) of the sorted
// samples. Integer arithmetic keeps the rank exact (no 0.95 * 20 =
// 18.999... surprises).
static double
percentile(const double *sorted, size_t n, unsigned p)
{
	size_t rank = ((size_t) p * n + 99u) / 100u;

	if (rank < 1) {
		rank = 1;
	}
	return (sorted[rank - 1]);
}

int
gk_aggregate(Sluice__V1__Aggregate a, const double *v, size_t n,
    double *scratch, double *outp)
{
	double acc;

	switch (a) {
	case SLUICE__V1__AGGREGATE__AGG_COUNT:
		*outp = (double) n;
		return (SLUICE_OK);
	case SLUICE__V1__AGGREGATE__AGG_SUM:
		acc = 0;
		for (size_t i = 0; i < n; i++) {
			acc += v[i];
		}
		*outp = acc;
		return (SLUICE_OK);
	case SLUICE__V1__AGGREGATE__AGG_MEAN:
	case SLUICE__V1__AGGREGATE__AGG_MIN:
	case SLUICE__V1__AGGREGATE__AGG_MAX:
	case SLUICE__V1__AGGREGATE__AGG_LAST:
	case SLUICE__V1__AGGREGATE__AGG_P50:
	case SLUICE__V1__AGGREGATE__AGG_P95:
	case SLUICE__V1__AGGREGATE__AGG_P99:
		break;
	case SLUICE__V1__AGGREGATE__AGG_UNSPECIFIED:
	case _SLUICE__V1__AGGREGATE_IS_INT_SIZE:
	default:
		return (SLUICE_EINVAL);
	}
	if (n == 0) {
		return (SLUICE_EINVAL);
	}
	switch (a) {
	case SLUICE__V1__AGGREGATE__AGG_MEAN:
		acc = 0;
		for (size_t i = 0; i < n; i++) {
			acc += v[i];
		}
		*outp = acc / (double) n;
		return (SLUICE_OK);
	case SLUICE__V1__AGGREGATE__AGG_MIN:
		acc = v[0];
		for (size_t i = 1; i < n; i++) {
			acc = v[i] < acc ? v[i] : acc;
		}
		*outp = acc;
		return (SLUICE_OK);
	case SLUICE__V1__AGGREGATE__AGG_MAX:
		acc = v[0];
		for (size_t i = 1; i < n; i++) {
			acc = v[i] > acc ? v[i] : acc;
		}
		*outp = acc;
		return (SLUICE_OK);
	case SLUICE__V1__AGGREGATE__AGG_LAST:
		*outp = v[n - 1];
		return (SLUICE_OK);
	case SLUICE__V1__AGGREGATE__AGG_P50:
	case SLUICE__V1__AGGREGATE__AGG_P95:
	case SLUICE__V1__AGGREGATE__AGG_P99:
		memcpy(scratch, v, n * sizeof(*v));
		qsort(scratch, n, sizeof(*scratch), cmp_double);
		*outp = percentile(scratch, n,
		    a == SLUICE__V1__AGGREGATE__AGG_P50       ? 50u
		        : a == SLUICE__V1__AGGREGATE__AGG_P95 ? 95u
		                                              : 99u);
		return (SLUICE_OK);
	case SLUICE__V1__AGGREGATE__AGG_COUNT:
	case SLUICE__V1__AGGREGATE__AGG_SUM:
	case SLUICE__V1__AGGREGATE__AGG_UNSPECIFIED:
	case _SLUICE__V1__AGGREGATE_IS_INT_SIZE:
	default:
		return (SLUICE_EINVAL);
	}
}

bool
gk_compare(Sluice__V1__CompareOp op, double value, double threshold)
{
	if (isnan(value) || isnan(threshold)) {
		return (false);
	}
	switch (op) {
	case SLUICE__V1__COMPARE_OP__OP_LT:
		return (value < threshold);
	case SLUICE__V1__COMPARE_OP__OP_LE:
		return (value <= threshold);
	case SLUICE__V1__COMPARE_OP__OP_GT:
		return (value > threshold);
	case SLUICE__V1__COMPARE_OP__OP_GE:
		return (value >= threshold);
	case SLUICE__V1__COMPARE_OP__OP_EQ:
		return (value == threshold);
	case SLUICE__V1__COMPARE_OP__OP_NE:
		return (value != threshold);
	case SLUICE__V1__COMPARE_OP__OP_UNSPECIFIED:
	case _SLUICE__V1__COMPARE_OP_IS_INT_SIZE:
	default:
		return (false);
	}
}

// One condition over the window: its samples (reports that carry the
// metric), their aggregate, and pass / breach / pending.
static void
eval_condition(const Sluice__V1__Condition *c, uint32_t min_samples,
    const gk_sample *s, size_t first, size_t n, double *vals, double *scratch,
    gk_cond_result *cr)
{
	size_t k = 0;
	double v;

	for (size_t i = first; i < n; i++) {
		if (c->metric != NULL &&
		    gk_report_metric(s[i].r, c->metric, &v)) {
			vals[k++] = v;
		}
	}
	cr->samples = (uint32_t) k;
	cr->value   = 0;
	if (k < (min_samples > 0 ? min_samples : 1u)) {
		cr->status = GK_COND_PENDING;
		return;
	}
	if (gk_aggregate(c->aggregate, vals, k, scratch, &v) != SLUICE_OK) {
		// An invalid aggregate passed validation somehow: never let
		// it pass silently.
		cr->status = GK_COND_BREACH;
		cr->value  = NAN;
		return;
	}
	cr->value  = v;
	cr->status = (isfinite(v) && gk_compare(c->op, v, c->threshold))
	    ? GK_COND_PASS
	    : GK_COND_BREACH;
}

int
gk_gate_evaluate(const Sluice__V1__Gate *g, const gk_sample *s, size_t n,
    gk_gate_state *st, uint64_t now_ms, bool new_report, double *scratch,
    gk_eval *out)
{
	uint32_t limit;
	bool     pending = false, breach = false;
	uint64_t deadline;

	if (g == NULL || st == NULL || out == NULL ||
	    (n > 0 && (s == NULL || scratch == NULL)) ||
	    g->n_conditions > GK_MAX_CONDITIONS) {
		return (SLUICE_EINVAL);
	}
	memset(out, 0, sizeof(*out));
	out->deciding = -1;
	out->n_cond   = g->n_conditions;
	out->first    = gk_gate_window(g, s, n, now_ms);
	out->window   = n - out->first;
	limit = g->consecutive_failures > 0 ? g->consecutive_failures : 1u;

	for (size_t i = 0; i < g->n_conditions; i++) {
		gk_cond_result *cr = &out->cond[i];

		eval_condition(g->conditions[i], g->min_samples, s, out->first,
		    n, scratch, scratch + n, cr);
		if (new_report && st->decided == GK_DECIDE_NONE) {
			if (cr->status == GK_COND_BREACH) {
				st->streak[i]++;
			} else if (cr->status == GK_COND_PASS) {
				st->streak[i] = 0;
			}
		}
		cr->streak = st->streak[i];
		if (cr->status == GK_COND_PENDING) {
			pending = true;
		} else if (cr->status == GK_COND_BREACH) {
			breach = true;
		}
		if (st->streak[i] >= limit && out->deciding < 0) {
			out->deciding = (int) i;
		}
	}
	if (g->n_conditions == 0 &&
	    out->window < (g->min_samples > 0 ? g->min_samples : 1u)) {
		pending = true;
	}
	if (new_report && st->decided == GK_DECIDE_NONE) {
		st->evaluations++;
	}

	if (st->decided != GK_DECIDE_NONE) {
		out->status   = st->decided == GK_DECIDE_PROMOTE
		      ? GK_STATUS_PROMOTED
		      : GK_STATUS_ROLLED_BACK;
		out->decision = GK_DECIDE_NONE;
		return (SLUICE_OK);
	}

	deadline = st->stage_since_ms + (uint64_t) g->deadline_seconds * 1000u;
	if (out->deciding >= 0) {
		out->status   = GK_STATUS_FAILING;
		out->decision = GK_DECIDE_ROLLBACK;
	} else if (pending) {
		out->status = GK_STATUS_PENDING;
		if (g->deadline_seconds > 0 && now_ms >= deadline) {
			out->status = GK_STATUS_INCONCLUSIVE;
			if (g->on_inconclusive ==
			    SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_ROLLBACK) {
				out->decision = GK_DECIDE_ROLLBACK;
			}
		}
	} else if (breach) {
		out->status = GK_STATUS_BREACHING;
	} else {
		out->status = GK_STATUS_PASSING;
	}

	if (out->status == GK_STATUS_PASSING) {
		if (!st->soaking) {
			st->soaking       = 1;
			st->soak_since_ms = now_ms;
			st->soak_reports  = 0;
		}
		if (new_report) {
			st->soak_reports++;
		}
		out->soak_reports = st->soak_reports;
		out->soak_ms      = now_ms > st->soak_since_ms
		         ? now_ms - st->soak_since_ms
		         : 0;
		if (g->auto_promote && st->soak_reports >= g->soak_reports &&
		    out->soak_ms >= (uint64_t) g->soak_seconds * 1000u) {
			out->decision = GK_DECIDE_PROMOTE;
		}
	} else {
		st->soaking       = 0;
		st->soak_reports  = 0;
		st->soak_since_ms = 0;
	}
	return (SLUICE_OK);
}

const char *
gk_status_name(gk_status s)
{
	switch (s) {
	case GK_STATUS_NONE:
		return ("none");
	case GK_STATUS_PENDING:
		return ("pending");
	case GK_STATUS_PASSING:
		return ("passing");
	case GK_STATUS_BREACHING:
		return ("breaching");
	case GK_STATUS_FAILING:
		return ("failing");
	case GK_STATUS_INCONCLUSIVE:
		return ("inconclusive");
	case GK_STATUS_PROMOTED:
		return ("promoted");
	case GK_STATUS_ROLLED_BACK:
		return ("rolled_back");
	default:
		return ("unknown");
	}
}

const char *
gk_decision_name(gk_decision d)
{
	switch (d) {
	case GK_DECIDE_NONE:
		return ("none");
	case GK_DECIDE_PROMOTE:
		return ("promote");
	case GK_DECIDE_ROLLBACK:
		return ("rollback");
	default:
		return ("unknown");
	}
}
