/* SPDX-License-Identifier: MIT */
/*
 * gate.h — gate evaluation, a pure module: no I/O, no clock, no
 * allocation. Given one stage's Gate, the window of reports accepted for
 * that stage (oldest first, each with the gatekeeper time it was accepted
 * at) and the gate's running state, it computes each condition's aggregate
 * and the gate's status and decision. Time is always passed in.
 *
 * Semantics (docs/gatekeeper.md has the same with examples):
 *  - Window. window_reports N keeps the newest N reports; window_seconds T
 *    keeps the reports accepted in (now - T, now]; both set: both apply;
 *    neither: every report of the stage.
 *  - A report without a condition's metric does not count for that
 *    condition (neither as a sample nor as a zero); it still counts for
 *    the report window and for the soak.
 *  - Aggregates over the condition's samples: mean, min, max, sum, last
 *    (newest), count (number of samples), and p50/p95/p99 by the
 *    nearest-rank method: sort ascending, take the value of rank
 *    ceil(p/100 * n) (1-based).
 *  - A condition with fewer than max(min_samples, 1) samples is pending.
 *    A non-finite aggregate is a breach.
 *  - Damping. An evaluation caused by a new counted report updates each
 *    condition's streak: breach +1, pass 0, pending unchanged. A condition
 *    whose streak reaches max(consecutive_failures, 1) makes the gate
 *    failing. Evaluations on a timer (new_report false) never move
 *    streaks.
 *  - Soak. Starts at the first passing evaluation and restarts after any
 *    evaluation that is not passing. It is complete when soak_reports
 *    passing report evaluations were seen and soak_seconds have elapsed
 *    since the soak started (each part only when set).
 *  - Deadline. deadline_seconds after the stage was entered, a gate still
 *    pending is inconclusive: on_inconclusive hold (no decision) or
 *    rollback.
 *  - Decisions: failing -> rollback; inconclusive + rollback -> rollback;
 *    passing, soaked and auto_promote -> promote. Once the caller records
 *    a decision as done (gk_gate_mark_decided) the status stays promoted
 *    or rolled_back and no further decision is made until the stage
 *    changes (gk_gate_stage_reset).
 */
#ifndef GK_GATE_H
#define GK_GATE_H

#include "sl.h"

/* Conditions per gate that the evaluator handles; more is EINVAL. */
#define GK_MAX_CONDITIONS 32u

typedef enum gk_status {
	GK_STATUS_NONE = 0,     /* no gate for the stage */
	GK_STATUS_PENDING,      /* too few samples */
	GK_STATUS_PASSING,      /* every condition holds */
	GK_STATUS_BREACHING,    /* a breach, under the consecutive limit */
	GK_STATUS_FAILING,      /* a breach for N consecutive evaluations */
	GK_STATUS_INCONCLUSIVE, /* deadline passed, too few samples */
	GK_STATUS_PROMOTED,     /* a promote decision was written */
	GK_STATUS_ROLLED_BACK,  /* a rollback decision was written */
} gk_status;

typedef enum gk_decision {
	GK_DECIDE_NONE = 0,
	GK_DECIDE_PROMOTE,
	GK_DECIDE_ROLLBACK,
} gk_decision;

typedef enum gk_cond_status {
	GK_COND_PENDING = 0,
	GK_COND_PASS,
	GK_COND_BREACH,
} gk_cond_status;

/* One accepted report in the window. r is borrowed. */
typedef struct gk_sample {
	uint64_t                        at_ms; /* gatekeeper accept time */
	const Sluice__V1__MetricReport *r;
} gk_sample;

/*
 * The running state of one rollout's gate, kept by the caller between
 * evaluations (and persisted: it is plain data). Reset by
 * gk_gate_stage_reset() whenever the rollout's stage changes.
 */
typedef struct gk_gate_state {
	uint32_t stage;          /* stage index this state is about */
	uint64_t stage_since_ms; /* when that stage was entered */
	uint32_t streak[GK_MAX_CONDITIONS];
	uint32_t soak_reports;  /* passing report evaluations in the soak */
	uint64_t soak_since_ms; /* valid while soaking */
	uint64_t evaluations;   /* report evaluations since the reset */
	uint8_t  decided;       /* gk_decision written, or NONE */
	uint8_t  soaking;       /* a soak is running since soak_since_ms */
	uint8_t  pad[6];
} gk_gate_state;

typedef struct gk_cond_result {
	gk_cond_status status;
	uint32_t       samples;
	double         value; /* the aggregate (0 when pending) */
	uint32_t       streak;
} gk_cond_result;

typedef struct gk_eval {
	gk_status      status;
	gk_decision    decision;
	size_t         n_cond;
	gk_cond_result cond[GK_MAX_CONDITIONS];
	size_t         first;    /* index of the window's oldest report */
	size_t         window;   /* reports in the window */
	int            deciding; /* condition that failed, or -1 */
	uint32_t       soak_reports;
	uint64_t       soak_ms; /* elapsed soak time */
} gk_eval;

/* Clears st for stage entered at since_ms. */
void gk_gate_stage_reset(gk_gate_state *st, uint32_t stage, uint64_t since_ms);

/*
 * Index of the first sample in the window at now_ms (samples sorted by
 * at_ms, oldest first); n when the window is empty.
 */
size_t gk_gate_window(
    const Sluice__V1__Gate *g, const gk_sample *s, size_t n, uint64_t now_ms);

/*
 * The aggregate of values[0..n) (newest last) into *outp. Sorts a copy
 * for percentiles in scratch (n doubles). EINVAL for n == 0 (except
 * count and sum, which are 0) or an unknown aggregate.
 */
int gk_aggregate(Sluice__V1__Aggregate a, const double *values, size_t n,
    double *scratch, double *outp) SLUICE_NODISCARD;

/* Whether value op threshold holds. False for NaN and unknown ops. */
bool gk_compare(Sluice__V1__CompareOp op, double value, double threshold);

/*
 * Evaluates gate g on samples s[0..n) at now_ms. new_report: this
 * evaluation follows a newly counted report (moves streaks and the soak
 * count). scratch: at least 2 * n doubles. Updates *st and fills *out.
 * Returns SLUICE_OK or SLUICE_EINVAL (too many conditions, NULL args).
 */
int gk_gate_evaluate(const Sluice__V1__Gate *g, const gk_sample *s, size_t n,
    gk_gate_state *st, uint64_t now_ms, bool new_report, double *scratch,
    gk_eval *out) SLUICE_NODISCARD;

/* Records that decision d was written to flagd for st's stage. */
void gk_gate_mark_decided(gk_gate_state *st, gk_decision d);

/* "pending", "passing", ... / "none", "promote", "rollback". */
const char *gk_status_name(gk_status s);
const char *gk_decision_name(gk_decision d);

/* The value of metric in r; false when r lacks it. */
bool gk_report_metric(
    const Sluice__V1__MetricReport *r, const char *metric, double *vp);

#endif /* GK_GATE_H */
