// SPDX-License-Identifier: MIT
//
// rollout.c — the rollout rules every component must apply identically:
// name syntax, spec validation (with one-line reasons meant for the
// person who wrote the YAML), percentages in basis points, durations, gate
// conditions as text, and the "last good" stage with its settling rule.
// Pure functions: no I/O, no global state.

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout.h"

#define NAME_MAX_LEN 63u
#define METRIC_MAX_LEN 128u

static bool
is_lower_alnum(char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
}

// [a-z0-9][a-z0-9._-]{0,62}, written out rather than through regex(3) so
// that every language binding can mirror it exactly.
static bool
name_valid(const char *s)
{
	size_t i;

	if (s == NULL || !is_lower_alnum(s[0])) {
		return (false);
	}
	for (i = 1; s[i] != '\0'; i++) {
		char c = s[i];
		if (i >= NAME_MAX_LEN) {
			return (false);
		}
		if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-') {
			return (false);
		}
	}
	return (true);
}

bool
sl_rollout_name_valid(const char *name)
{
	return (name_valid(name));
}

bool
sl_flag_key_valid(const char *key)
{
	return (name_valid(key));
}

bool
sl_stage_name_valid(const char *name)
{
	return (name_valid(name));
}

static const char *
str_or_empty(const char *s)
{
	return (s != NULL ? s : "");
}

// Names are printed with %.80s so a hostile name cannot fill err.
#define NAME_SYNTAX "[a-z0-9][a-z0-9._-]{0,62}"

static int
validate_stages(const Sluice__V1__RolloutSpec *s, char *err, size_t errlen)
{
	if (s->n_stages < SL_MIN_STAGES || s->n_stages > SL_MAX_STAGES) {
		sl_seterr(err, errlen, "%zu stages (want %u to %u)", s->n_stages,
		    SL_MIN_STAGES, SL_MAX_STAGES);
		return (SLUICE_EINVAL);
	}
	for (size_t i = 0; i < s->n_stages; i++) {
		if (!sl_stage_name_valid(s->stages[i])) {
			sl_seterr(err, errlen,
			    "stage %zu: name \"%.80s\" is not valid (want "
			    "%s)",
			    i, str_or_empty(s->stages[i]), NAME_SYNTAX);
			return (SLUICE_EINVAL);
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(s->stages[i], s->stages[j]) == 0) {
				sl_seterr(err, errlen,
				    "stage \"%s\" is listed twice",
				    s->stages[i]);
				return (SLUICE_EINVAL);
			}
		}
	}
	return (SLUICE_OK);
}

static int
validate_flag(const Sluice__V1__RolloutSpec *s, const Sluice__V1__Flag *f,
    char *err, size_t errlen)
{
	const char *kind = NULL;

	if (f == NULL || !sl_flag_key_valid(f->key)) {
		sl_seterr(err, errlen,
		    "flag key \"%.80s\" is not valid (want %s)",
		    f != NULL ? str_or_empty(f->key) : "", NAME_SYNTAX);
		return (SLUICE_EINVAL);
	}
	if (f->n_values != s->n_stages) {
		sl_seterr(err, errlen, "flag \"%s\": %zu values for %zu stages",
		    f->key, f->n_values, s->n_stages);
		return (SLUICE_EINVAL);
	}
	for (size_t i = 0; i < f->n_values; i++) {
		const Sluice__V1__FlagValue *v = f->values[i];
		const char                  *k = sl_value_kind(v);

		if (k[0] == '\0') {
			sl_seterr(err, errlen,
			    "flag \"%s\": no value at stage \"%s\"", f->key,
			    s->stages[i]);
			return (SLUICE_EINVAL);
		}
		if (kind == NULL) {
			kind = k;
		} else if (strcmp(kind, k) != 0) {
			sl_seterr(err, errlen,
			    "flag \"%s\": %s value at stage \"%s\", but %s at "
			    "stage \"%s\" (one kind per flag)",
			    f->key, k, s->stages[i], kind, s->stages[0]);
			return (SLUICE_EINVAL);
		}
		if (v->kind_case == SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP &&
		    v->percent_bp > SLUICE_BUCKETS) {
			sl_seterr(err, errlen,
			    "flag \"%s\": %u basis points at stage \"%s\" "
			    "(at most %u, i.e. 100%%)",
			    f->key, v->percent_bp, s->stages[i],
			    SLUICE_BUCKETS);
			return (SLUICE_EINVAL);
		}
		if (v->kind_case ==
		        SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE &&
		    (v->string_value == NULL ||
		        strlen(v->string_value) > SL_MAX_STRING)) {
			sl_seterr(err, errlen,
			    "flag \"%s\": string at stage \"%s\" is longer "
			    "than %u bytes",
			    f->key, s->stages[i], SL_MAX_STRING);
			return (SLUICE_EINVAL);
		}
	}
	return (SLUICE_OK);
}

static int
validate_flags(const Sluice__V1__RolloutSpec *s, char *err, size_t errlen)
{
	int rv;

	// A rollout without flags changes nothing any job can see.
	if (s->n_flags == 0) {
		sl_seterr(err, errlen, "rollout has no flags");
		return (SLUICE_EINVAL);
	}
	if (s->n_flags > SL_MAX_FLAGS) {
		sl_seterr(err, errlen, "%zu flags (at most %u)", s->n_flags,
		    SL_MAX_FLAGS);
		return (SLUICE_EINVAL);
	}
	for (size_t i = 0; i < s->n_flags; i++) {
		if ((rv = validate_flag(s, s->flags[i], err, errlen)) !=
		    SLUICE_OK) {
			return (rv);
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(s->flags[i]->key, s->flags[j]->key) == 0) {
				sl_seterr(err, errlen,
				    "flag \"%s\" is defined twice",
				    s->flags[i]->key);
				return (SLUICE_EINVAL);
			}
		}
	}
	return (SLUICE_OK);
}

static int
validate_requires(const Sluice__V1__RolloutSpec *s, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->n_requires; i++) {
		const Sluice__V1__Prerequisite *p = s->requires[i];

		if (p == NULL || !sl_rollout_name_valid(p->rollout)) {
			sl_seterr(err, errlen,
			    "prerequisite %zu: rollout \"%.80s\" is not "
			    "valid (want %s)",
			    i, p != NULL ? str_or_empty(p->rollout) : "",
			    NAME_SYNTAX);
			return (SLUICE_EINVAL);
		}
		if (strcmp(p->rollout, s->name) == 0) {
			sl_seterr(err, errlen,
			    "prerequisite names the rollout itself");
			return (SLUICE_EINVAL);
		}
		if (!sl_stage_name_valid(p->stage)) {
			sl_seterr(err, errlen,
			    "prerequisite \"%s\": stage \"%.80s\" is not "
			    "valid (want %s)",
			    p->rollout, str_or_empty(p->stage), NAME_SYNTAX);
			return (SLUICE_EINVAL);
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(p->rollout, s->requires[j] -> rollout) ==
			    0) {
				sl_seterr(err, errlen,
				    "prerequisite \"%s\" is listed twice",
				    p->rollout);
				return (SLUICE_EINVAL);
			}
		}
	}
	return (SLUICE_OK);
}

static bool
metric_valid(const char *m)
{
	size_t i;

	if (m == NULL || m[0] == '\0') {
		return (false);
	}
	for (i = 0; m[i] != '\0'; i++) {
		unsigned char c = (unsigned char) m[i];
		if (i >= METRIC_MAX_LEN || c <= ' ' || c >= 0x7f) {
			return (false);
		}
	}
	return (true);
}

static bool
aggregate_valid(Sluice__V1__Aggregate a)
{
	return ((int) a >= SLUICE__V1__AGGREGATE__AGG_MEAN &&
	    (int) a <= SLUICE__V1__AGGREGATE__AGG_P99);
}

static bool
op_valid(Sluice__V1__CompareOp op)
{
	return ((int) op >= SLUICE__V1__COMPARE_OP__OP_LT &&
	    (int) op <= SLUICE__V1__COMPARE_OP__OP_NE);
}

static int
validate_gate(const Sluice__V1__RolloutSpec *s, const Sluice__V1__Gate *g,
    char *err, size_t errlen)
{
	if (sl_stage_index(s, g->stage) < 0) {
		sl_seterr(err, errlen, "gate for unknown stage \"%.80s\"",
		    str_or_empty(g->stage));
		return (SLUICE_EINVAL);
	}
	for (size_t i = 0; i < g->n_conditions; i++) {
		const Sluice__V1__Condition *c = g->conditions[i];

		if (c == NULL || !metric_valid(c->metric)) {
			sl_seterr(err, errlen,
			    "gate \"%s\": condition %zu has no metric (or "
			    "one with spaces or control characters)",
			    g->stage, i);
			return (SLUICE_EINVAL);
		}
		if (!aggregate_valid(c->aggregate)) {
			sl_seterr(err, errlen,
			    "gate \"%s\": condition on \"%s\" has no "
			    "aggregate",
			    g->stage, c->metric);
			return (SLUICE_EINVAL);
		}
		if (!op_valid(c->op)) {
			sl_seterr(err, errlen,
			    "gate \"%s\": condition on \"%s\" has no "
			    "comparison",
			    g->stage, c->metric);
			return (SLUICE_EINVAL);
		}
		if (!isfinite(c->threshold)) {
			sl_seterr(err, errlen,
			    "gate \"%s\": condition on \"%s\" has a "
			    "threshold that is not a finite number",
			    g->stage, c->metric);
			return (SLUICE_EINVAL);
		}
	}
	if ((int) g->on_inconclusive !=
	        SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_HOLD &&
	    (int) g->on_inconclusive !=
	        SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_ROLLBACK) {
		sl_seterr(err, errlen, "gate \"%s\": unknown on_inconclusive %d",
		    g->stage, (int) g->on_inconclusive);
		return (SLUICE_EINVAL);
	}
	return (SLUICE_OK);
}

static int
validate_gates(const Sluice__V1__RolloutSpec *s, char *err, size_t errlen)
{
	int rv;

	for (size_t i = 0; i < s->n_gates; i++) {
		if (s->gates[i] == NULL) {
			sl_seterr(err, errlen, "gate %zu is empty", i);
			return (SLUICE_EINVAL);
		}
		if ((rv = validate_gate(s, s->gates[i], err, errlen)) !=
		    SLUICE_OK) {
			return (rv);
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(s->gates[i]->stage, s->gates[j]->stage) ==
			    0) {
				sl_seterr(err, errlen,
				    "stage \"%s\" has two gates",
				    s->gates[i]->stage);
				return (SLUICE_EINVAL);
			}
		}
	}
	return (SLUICE_OK);
}

int
sl_spec_validate(const Sluice__V1__RolloutSpec *s, char *err, size_t errlen)
{
	int rv;

	if (s == NULL) {
		sl_seterr(err, errlen, "no rollout spec");
		return (SLUICE_EINVAL);
	}
	if (!sl_rollout_name_valid(s->name)) {
		sl_seterr(err, errlen,
		    "rollout name \"%.80s\" is not valid (want "
		    "%s)",
		    str_or_empty(s->name), NAME_SYNTAX);
		return (SLUICE_EINVAL);
	}
	if (strlen(str_or_empty(s->description)) > SL_MAX_STRING ||
	    strlen(str_or_empty(s->owner)) > SL_MAX_STRING) {
		sl_seterr(err, errlen,
		    "description or owner is longer than %u bytes",
		    SL_MAX_STRING);
		return (SLUICE_EINVAL);
	}
	for (size_t i = 0; i < s->n_datasets; i++) {
		const char *d = s->datasets[i];
		if (d == NULL || d[0] == '\0' || strlen(d) > SL_MAX_STRING) {
			sl_seterr(err, errlen,
			    "dataset %zu is empty or longer than %u bytes", i,
			    SL_MAX_STRING);
			return (SLUICE_EINVAL);
		}
	}
	if ((int) s->on_stale != SLUICE__V1__STALE_POLICY__STALE_BASELINE &&
	    (int) s->on_stale != SLUICE__V1__STALE_POLICY__STALE_KEEP) {
		sl_seterr(err, errlen, "unknown on_stale policy %d",
		    (int) s->on_stale);
		return (SLUICE_EINVAL);
	}
	if ((rv = validate_stages(s, err, errlen)) != SLUICE_OK ||
	    (rv = validate_flags(s, err, errlen)) != SLUICE_OK ||
	    (rv = validate_requires(s, err, errlen)) != SLUICE_OK ||
	    (rv = validate_gates(s, err, errlen)) != SLUICE_OK) {
		return (rv);
	}
	return (SLUICE_OK);
}

// ---------------------------------------------------------------- percent

int
sl_percent_parse(const char *s, uint32_t *bpp)
{
	uint32_t whole = 0;
	uint32_t frac  = 0;
	size_t   nd    = 0;
	size_t   nf    = 0;

	if (s == NULL || bpp == NULL) {
		return (SLUICE_EINVAL);
	}
	// At most three integer digits keeps the arithmetic far from
	// overflow; anything longer is above 100 anyway.
	while (*s >= '0' && *s <= '9') {
		if (++nd > 3) {
			return (SLUICE_EINVAL);
		}
		whole = whole * 10 + (uint32_t) (*s++ - '0');
	}
	if (nd == 0) {
		return (SLUICE_EINVAL);
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			if (++nf > 2) {
				return (SLUICE_EINVAL);
			}
			frac = frac * 10 + (uint32_t) (*s++ - '0');
		}
		if (nf == 0) {
			return (SLUICE_EINVAL);
		}
		if (nf == 1) {
			frac *= 10;
		}
	}
	if (s[0] != '%' || s[1] != '\0') {
		return (SLUICE_EINVAL);
	}
	if (whole * 100 + frac > SLUICE_BUCKETS) {
		return (SLUICE_EINVAL);
	}
	*bpp = whole * 100 + frac;
	return (SLUICE_OK);
}

void
sl_percent_format(uint32_t bp, char *buf, size_t buflen)
{
	uint32_t whole = bp / 100;
	uint32_t frac  = bp % 100;

	if (buf == NULL || buflen == 0) {
		return;
	}
	if (frac == 0) {
		(void) snprintf(buf, buflen, "%" PRIu32 "%%", whole);
	} else if (frac % 10 == 0) {
		(void) snprintf(buf, buflen, "%" PRIu32 ".%" PRIu32 "%%",
		    whole, frac / 10);
	} else {
		(void) snprintf(
		    buf, buflen, "%" PRIu32 ".%02" PRIu32 "%%", whole, frac);
	}
}

// ---------------------------------------------------------------- values

const char *
sl_value_kind(const Sluice__V1__FlagValue *v)
{
	if (v == NULL) {
		return ("");
	}
	switch ((int) v->kind_case) {
	case SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE:
		return ("bool");
	case SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE:
		return ("int");
	case SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE:
		return ("string");
	case SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP:
		return ("percent");
	default:
		return ("");
	}
}

void
sl_value_format(const Sluice__V1__FlagValue *v, char *buf, size_t buflen)
{
	if (buf == NULL || buflen == 0) {
		return;
	}
	buf[0] = '\0';
	if (v == NULL) {
		return;
	}
	switch ((int) v->kind_case) {
	case SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE:
		(void) snprintf(
		    buf, buflen, "%s", v->bool_value ? "true" : "false");
		break;
	case SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE:
		(void) snprintf(buf, buflen, "%" PRId64, v->int_value);
		break;
	case SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE:
		(void) snprintf(
		    buf, buflen, "%s", str_or_empty(v->string_value));
		break;
	case SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP:
		sl_percent_format(v->percent_bp, buf, buflen);
		break;
	default:
		break;
	}
}

bool
sl_value_equal(const Sluice__V1__FlagValue *a, const Sluice__V1__FlagValue *b)
{
	if (a == NULL || b == NULL) {
		return (a == b);
	}
	if (a->kind_case != b->kind_case) {
		return (false);
	}
	switch ((int) a->kind_case) {
	case SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE:
		return (!a->bool_value == !b->bool_value);
	case SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE:
		return (a->int_value == b->int_value);
	case SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE:
		return (strcmp(str_or_empty(a->string_value),
		            str_or_empty(b->string_value)) == 0);
	case SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP:
		return (a->percent_bp == b->percent_bp);
	default:
		return (true);
	}
}

// ---------------------------------------------------------------- stages

int
sl_stage_index(const Sluice__V1__RolloutSpec *s, const char *name)
{
	if (s == NULL || name == NULL) {
		return (-1);
	}
	for (size_t i = 0; i < s->n_stages && i < (size_t) INT32_MAX; i++) {
		if (s->stages[i] != NULL && strcmp(s->stages[i], name) == 0) {
			return ((int) i);
		}
	}
	return (-1);
}

const char *
sl_state_name(Sluice__V1__RolloutState st)
{
	switch ((int) st) {
	case SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE:
		return ("active");
	case SLUICE__V1__ROLLOUT_STATE__STATE_PAUSED:
		return ("paused");
	case SLUICE__V1__ROLLOUT_STATE__STATE_ROLLED_BACK:
		return ("rolled_back");
	case SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED:
		return ("completed");
	default:
		return ("unknown");
	}
}

uint64_t
sl_rollout_settles_at(const Sluice__V1__Rollout *r)
{
	uint64_t w;

	if (r == NULL || r->spec == NULL || r->spec->rollback_window_s == 0 ||
	    r->stage == 0 || r->stage <= r->last_good) {
		return (0);
	}
	// Paused means someone is looking at it and rolled back means it
	// failed: neither may quietly make its stage the new fallback.
	if ((int) r->state != SLUICE__V1__ROLLOUT_STATE__STATE_ACTIVE &&
	    (int) r->state != SLUICE__V1__ROLLOUT_STATE__STATE_COMPLETED) {
		return (0);
	}
	// Saturate instead of wrapping: a window too large to represent
	// never elapses.
	if (r->spec->rollback_window_s > UINT64_MAX / 1000u) {
		return (UINT64_MAX);
	}
	w = r->spec->rollback_window_s * 1000u;
	if (r->stage_since_ms > UINT64_MAX - w) {
		return (UINT64_MAX);
	}
	return (r->stage_since_ms + w);
}

uint32_t
sl_rollout_last_good(const Sluice__V1__Rollout *r, uint64_t now_ms)
{
	uint64_t at;

	if (r == NULL) {
		return (0);
	}
	at = sl_rollout_settles_at(r);
	if (at != 0 && at != UINT64_MAX && now_ms >= at) {
		return (r->stage);
	}
	return (r->last_good);
}

// ---------------------------------------------------------------- conditions

static const char *const agg_names[] = {
	[SLUICE__V1__AGGREGATE__AGG_UNSPECIFIED] = "",
	[SLUICE__V1__AGGREGATE__AGG_MEAN]        = "mean",
	[SLUICE__V1__AGGREGATE__AGG_MIN]         = "min",
	[SLUICE__V1__AGGREGATE__AGG_MAX]         = "max",
	[SLUICE__V1__AGGREGATE__AGG_SUM]         = "sum",
	[SLUICE__V1__AGGREGATE__AGG_LAST]        = "last",
	[SLUICE__V1__AGGREGATE__AGG_COUNT]       = "count",
	[SLUICE__V1__AGGREGATE__AGG_P50]         = "p50",
	[SLUICE__V1__AGGREGATE__AGG_P95]         = "p95",
	[SLUICE__V1__AGGREGATE__AGG_P99]         = "p99",
};

static const char *const op_names[] = {
	[SLUICE__V1__COMPARE_OP__OP_UNSPECIFIED] = "",
	[SLUICE__V1__COMPARE_OP__OP_LT]          = "<",
	[SLUICE__V1__COMPARE_OP__OP_LE]          = "<=",
	[SLUICE__V1__COMPARE_OP__OP_GT]          = ">",
	[SLUICE__V1__COMPARE_OP__OP_GE]          = ">=",
	[SLUICE__V1__COMPARE_OP__OP_EQ]          = "==",
	[SLUICE__V1__COMPARE_OP__OP_NE]          = "!=",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *
sl_aggregate_name(Sluice__V1__Aggregate a)
{
	if (!aggregate_valid(a)) {
		return ("?");
	}
	return (agg_names[(int) a]);
}

const char *
sl_op_name(Sluice__V1__CompareOp op)
{
	if (!op_valid(op)) {
		return ("?");
	}
	return (op_names[(int) op]);
}

static bool
is_space(char c)
{
	return (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f');
}

int
sl_condition_parse(
    const char *text, Sluice__V1__Condition *c, char *err, size_t errlen)
{
	char  *copy;
	char  *tok[5];
	char  *p;
	char  *end;
	size_t n   = 0;
	int    agg = 0;
	int    op  = 0;
	double th;
	char  *metric;
	int    rv;

	if (text == NULL || c == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((copy = strdup(text)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	for (p = copy;;) {
		while (is_space(*p)) {
			p++;
		}
		if (*p == '\0' || n == NELEM(tok)) {
			break;
		}
		tok[n++] = p;
		while (*p != '\0' && !is_space(*p)) {
			p++;
		}
		if (*p != '\0') {
			*p++ = '\0';
		}
	}
	if (n != 4) {
		sl_seterr(err, errlen,
		    "condition \"%.80s\": want \"METRIC AGGREGATE OP "
		    "THRESHOLD\", e.g. \"error_rate mean < 0.01\"",
		    text);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	if (!metric_valid(tok[0])) {
		sl_seterr(
		    err, errlen, "condition \"%.80s\": bad metric name", text);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	for (size_t i = 1; i < NELEM(agg_names); i++) {
		if (strcmp(tok[1], agg_names[i]) == 0) {
			agg = (int) i;
		}
	}
	if (agg == 0) {
		sl_seterr(err, errlen,
		    "condition \"%.80s\": unknown aggregate \"%.16s\" (want "
		    "mean, min, max, sum, last, count, p50, p95 or p99)",
		    text, tok[1]);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	for (size_t i = 1; i < NELEM(op_names); i++) {
		if (strcmp(tok[2], op_names[i]) == 0) {
			op = (int) i;
		}
	}
	if (op == 0) {
		sl_seterr(err, errlen,
		    "condition \"%.80s\": unknown comparison \"%.16s\" (want "
		    "<, <=, >, >=, == or !=)",
		    text, tok[2]);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	errno = 0;
	th    = strtod(tok[3], &end);
	if (end == tok[3] || *end != '\0' || errno == ERANGE ||
	    !isfinite(th)) {
		sl_seterr(err, errlen,
		    "condition \"%.80s\": threshold \"%.32s\" is not a "
		    "finite number",
		    text, tok[3]);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	if ((metric = strdup(tok[0])) == NULL) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	free(copy);
	c->metric    = metric;
	c->aggregate = (Sluice__V1__Aggregate) agg;
	c->op        = (Sluice__V1__CompareOp) op;
	c->threshold = th;
	return (SLUICE_OK);
fail:
	free(copy);
	return (rv);
}

void
sl_condition_format(const Sluice__V1__Condition *c, char *buf, size_t buflen)
{
	char num[32];

	if (buf == NULL || buflen == 0) {
		return;
	}
	if (c == NULL) {
		buf[0] = '\0';
		return;
	}
	// The shortest of %.15g and %.17g that reads back as the same
	// double: "0.01" for people, and exact for round trips.
	(void) snprintf(num, sizeof(num), "%.15g", c->threshold);
	if (strtod(num, NULL) != c->threshold) {
		(void) snprintf(num, sizeof(num), "%.17g", c->threshold);
	}
	(void) snprintf(buf, buflen, "%s %s %s %s", str_or_empty(c->metric),
	    sl_aggregate_name(c->aggregate), sl_op_name(c->op), num);
}

void
sl_condition_clear(Sluice__V1__Condition *c)
{
	if (c == NULL) {
		return;
	}
	if (c->metric != NULL && c->metric != protobuf_c_empty_string) {
		free(c->metric);
	}
	// The init function, not the INIT macro (-Wcast-qual under clang).
	sluice__v1__condition__init(c);
}

// ---------------------------------------------------------------- durations

int
sl_duration_parse(const char *s, uint64_t *secondsp)
{
	static const struct {
		char     unit;
		uint64_t secs;
	} units[] = { { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };
	uint64_t total = 0;
	size_t   next  = 0; // units must come in order, each at most once

	if (s == NULL || secondsp == NULL || *s == '\0') {
		return (SLUICE_EINVAL);
	}
	while (*s != '\0') {
		uint64_t v  = 0;
		size_t   nd = 0;
		size_t   u;

		while (*s >= '0' && *s <= '9') {
			uint64_t d = (uint64_t) (*s++ - '0');
			if (v > (UINT64_MAX - d) / 10) {
				return (SLUICE_EINVAL);
			}
			v = v * 10 + d;
			nd++;
		}
		if (nd == 0) {
			return (SLUICE_EINVAL);
		}
		if (*s == '\0') {
			// Plain seconds: only as the whole string.
			if (next != 0) {
				return (SLUICE_EINVAL);
			}
			*secondsp = v;
			return (SLUICE_OK);
		}
		for (u = next; u < NELEM(units); u++) {
			if (units[u].unit == *s) {
				break;
			}
		}
		if (u == NELEM(units)) {
			return (SLUICE_EINVAL);
		}
		s++;
		next = u + 1;
		if (v > UINT64_MAX / units[u].secs ||
		    total > UINT64_MAX - v * units[u].secs) {
			return (SLUICE_EINVAL);
		}
		total += v * units[u].secs;
	}
	*secondsp = total;
	return (SLUICE_OK);
}

void
sl_duration_format(uint64_t seconds, char *buf, size_t buflen)
{
	static const struct {
		char     unit;
		uint64_t secs;
	} units[] = { { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };
	size_t off = 0;

	if (buf == NULL || buflen == 0) {
		return;
	}
	buf[0] = '\0';
	if (seconds == 0) {
		(void) snprintf(buf, buflen, "0s");
		return;
	}
	for (size_t u = 0; u < NELEM(units) && off < buflen; u++) {
		uint64_t v = seconds / units[u].secs;
		int      n;

		if (v == 0) {
			continue;
		}
		seconds -= v * units[u].secs;
		n = snprintf(buf + off, buflen - off, "%" PRIu64 "%c", v,
		    units[u].unit);
		if (n < 0) {
			return;
		}
		off += (size_t) n;
	}
}
