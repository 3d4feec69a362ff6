// SPDX-License-Identifier: MIT
//
// output.c — flagctl's two output forms: JSON documents built with
// jansson for scripts (--json), and the human text blocks that several
// verbs print the same way. Nothing here talks to flagd.

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ctl.h"
#include "keys.h"
#include "output.h"
#include "rollout.h"

int
ctl_json_print(json_t *j)
{
	int rv;

	if (j == NULL) {
		return (SLUICE_ENOMEM);
	}
	rv = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (rv != 0) {
		return (SLUICE_ENOMEM);
	}
	fputc('\n', stdout);
	return (fflush(stdout) == 0 ? SLUICE_OK : SLUICE_EIO);
}

json_t *
ctl_json_str(const char *s)
{
	json_t *j;

	if (s == NULL) {
		s = "";
	}
	if ((j = json_string(s)) == NULL) {
		j = json_string_nocheck(s);
	}
	return (j);
}

// Adds v under k; a NULL v (OOM upstream) marks the object as failed.
static int
put(json_t *o, const char *k, json_t *v)
{
	if (v == NULL) {
		return (-1);
	}
	return (json_object_set_new(o, k, v));
}

static json_t *
finish(json_t *o, int bad)
{
	if (bad != 0) {
		json_decref(o);
		return (NULL);
	}
	return (o);
}

void
ctl_json_push(json_t **arrp, json_t *item)
{
	if (*arrp == NULL) {
		json_decref(item);
		return;
	}
	// jansson's *_new calls take the reference even when they fail.
	if (json_array_append_new(*arrp, item) != 0) {
		json_decref(*arrp);
		*arrp = NULL;
	}
}

json_t *
ctl_json_listing(uint64_t revision, const char *member, json_t *arr)
{
	json_t *o;
	int     bad;

	if (arr == NULL || (o = json_object()) == NULL) {
		json_decref(arr);
		return (NULL);
	}
	bad = put(o, "revision", json_integer((json_int_t) revision));
	bad |= put(o, member, arr);
	return (finish(o, bad));
}

static json_t *
hex(const uint8_t *b, size_t len)
{
	char   *h;
	json_t *j;

	if ((h = malloc(len * 2 + 1)) == NULL) {
		return (NULL);
	}
	sodium_bin2hex(h, len * 2 + 1, b, len);
	j = json_string(h);
	free(h);
	return (j);
}

static json_t *
time_json(uint64_t ms)
{
	char buf[64];

	if (ms == 0) {
		return (json_null());
	}
	ctl_format_time(ms, buf, sizeof(buf));
	return (json_string(buf));
}

json_t *
ctl_json_value(const Sluice__V1__FlagValue *v)
{
	char buf[64];

	switch (v->kind_case) {
	case SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE:
		return (json_boolean(v->bool_value));
	case SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE:
		return (json_integer((json_int_t) v->int_value));
	case SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE:
		return (ctl_json_str(v->string_value));
	case SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP:
		sl_percent_format(v->percent_bp, buf, sizeof(buf));
		return (json_string(buf));
	case SLUICE__V1__FLAG_VALUE__KIND__NOT_SET:
	case _SLUICE__V1__FLAG_VALUE__KIND__CASE_IS_INT_SIZE:
	default:
		break;
	}
	return (json_null());
}

static json_t *
str_array(char *const *v, size_t n)
{
	json_t *a = json_array();
	size_t  i;
	int     bad = a == NULL;

	for (i = 0; !bad && i < n; i++) {
		bad = json_array_append_new(a, ctl_json_str(v[i])) != 0;
	}
	return (finish(a, bad));
}

static json_t *
gate_json(const Sluice__V1__Gate *g)
{
	json_t *o    = json_object();
	json_t *cond = json_array();
	char    buf[512];
	size_t  i;
	int     bad = o == NULL || cond == NULL;

	for (i = 0; !bad && i < g->n_conditions; i++) {
		sl_condition_format(g->conditions[i], buf, sizeof(buf));
		bad = json_array_append_new(cond, ctl_json_str(buf)) != 0;
	}
	if (bad) {
		json_decref(cond);
		json_decref(o);
		return (NULL);
	}
	bad |= put(o, "stage", ctl_json_str(g->stage));
	bad |= put(o, "conditions", cond);
	bad |= put(o, "window_reports", json_integer(g->window_reports));
	bad |= put(o, "window_seconds", json_integer(g->window_seconds));
	bad |= put(o, "min_samples", json_integer(g->min_samples));
	bad |= put(
	    o, "consecutive_failures", json_integer(g->consecutive_failures));
	bad |= put(o, "soak_reports", json_integer(g->soak_reports));
	bad |= put(o, "soak_seconds", json_integer(g->soak_seconds));
	bad |= put(o, "auto_promote", json_boolean(g->auto_promote));
	bad |= put(o, "deadline_seconds", json_integer(g->deadline_seconds));
	bad |= put(o, "on_inconclusive",
	    json_string(g->on_inconclusive ==
	                SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_ROLLBACK
	            ? "rollback"
	            : "hold"));
	return (finish(o, bad));
}

json_t *
ctl_json_spec(const Sluice__V1__RolloutSpec *s)
{
	json_t *o     = json_object();
	json_t *flags = json_object();
	json_t *req   = json_array();
	json_t *gates = json_array();
	json_t *vals;
	char    buf[300];
	size_t  i;
	size_t  j;
	int bad = o == NULL || flags == NULL || req == NULL || gates == NULL;

	for (i = 0; !bad && i < s->n_flags; i++) {
		if ((vals = json_array()) == NULL) {
			bad = 1;
			break;
		}
		for (j = 0; !bad && j < s->flags[i]->n_values; j++) {
			bad = json_array_append_new(vals,
			          ctl_json_value(s->flags[i]->values[j])) != 0;
		}
		bad |= put(flags, s->flags[i]->key, vals);
	}
	for (i = 0; !bad && i < s->n_requires; i++) {
		snprintf(buf, sizeof(buf), "%s >= %s",
		    s->requires[i] -> rollout, s -> requires[i] -> stage);
		bad = json_array_append_new(req, ctl_json_str(buf)) != 0;
	}
	for (i = 0; !bad && i < s->n_gates; i++) {
		bad =
		    json_array_append_new(gates, gate_json(s->gates[i])) != 0;
	}
	if (bad) {
		json_decref(flags);
		json_decref(req);
		json_decref(gates);
		json_decref(o);
		return (NULL);
	}
	bad |= put(o, "rollout", ctl_json_str(s->name));
	bad |= put(o, "description", ctl_json_str(s->description));
	bad |= put(o, "owner", ctl_json_str(s->owner));
	bad |= put(o, "datasets", str_array(s->datasets, s->n_datasets));
	bad |= put(o, "stages", str_array(s->stages, s->n_stages));
	bad |= put(o, "flags", flags);
	bad |= put(o, "requires", req);
	bad |= put(o, "rollback_window_s",
	    json_integer((json_int_t) s->rollback_window_s));
	bad |=
	    put(o, "max_stale_s", json_integer((json_int_t) s->max_stale_s));
	bad |= put(o, "on_stale",
	    json_string(s->on_stale == SLUICE__V1__STALE_POLICY__STALE_KEEP
	            ? "keep"
	            : "baseline"));
	bad |= put(o, "gates", gates);
	return (finish(o, bad));
}

const char *
ctl_stage_name(
    const Sluice__V1__RolloutSpec *s, uint32_t i, char *buf, size_t buflen)
{
	if (s != NULL && i < s->n_stages) {
		return (s->stages[i]);
	}
	snprintf(buf, buflen, "#%u", (unsigned) i);
	return (buf);
}

json_t *
ctl_json_status(const Sluice__V1__Rollout *r, uint64_t now_ms)
{
	const Sluice__V1__RolloutSpec *s     = r->spec;
	json_t                        *o     = json_object();
	json_t                        *flags = json_array();
	json_t                        *f;
	uint32_t                       lg = sl_rollout_last_good(r, now_ms);
	char                           b1[32];
	char                           b2[32];
	size_t                         i;
	int                            bad = o == NULL || flags == NULL;

	for (i = 0; !bad && i < s->n_flags; i++) {
		const Sluice__V1__Flag *fl = s->flags[i];

		if ((f = json_object()) == NULL) {
			bad = 1;
			break;
		}
		bad |= put(f, "key", ctl_json_str(fl->key));
		if (r->stage < fl->n_values) {
			bad |= put(f, "kind",
			    json_string(sl_value_kind(fl->values[r->stage])));
			bad |= put(
			    f, "value", ctl_json_value(fl->values[r->stage]));
		}
		bad |= json_array_append_new(flags, f) != 0;
	}
	if (bad) {
		json_decref(flags);
		json_decref(o);
		return (NULL);
	}
	bad |= put(o, "rollout", ctl_json_str(s->name));
	bad |= put(o, "stage",
	    ctl_json_str(ctl_stage_name(s, r->stage, b1, sizeof(b1))));
	bad |= put(o, "stage_index", json_integer(r->stage));
	bad |= put(o, "last_good",
	    ctl_json_str(ctl_stage_name(s, lg, b2, sizeof(b2))));
	bad |= put(o, "last_good_index", json_integer(lg));
	bad |= put(o, "state", json_string(sl_state_name(r->state)));
	bad |= put(o, "revision", json_integer((json_int_t) r->revision));
	bad |= put(o, "created_revision",
	    json_integer((json_int_t) r->created_revision));
	bad |= put(o, "stage_since", time_json(r->stage_since_ms));
	bad |= put(o, "settles_at", time_json(sl_rollout_settles_at(r)));
	bad |= put(o, "stages", str_array(s->stages, s->n_stages));
	bad |= put(o, "flags", flags);
	return (finish(o, bad));
}

json_t *
ctl_json_audit(const Sluice__V1__AuditEntry *e)
{
	json_t *o   = json_object();
	int     bad = o == NULL;

	if (bad) {
		return (NULL);
	}
	bad |= put(o, "revision", json_integer((json_int_t) e->revision));
	bad |= put(o, "time", time_json(e->time_ms));
	bad |= put(o, "actor", ctl_json_str(e->actor));
	bad |= put(o, "action", ctl_json_str(e->action));
	bad |= put(o, "rollout", ctl_json_str(e->rollout));
	bad |= put(o, "before", ctl_json_str(e->before));
	bad |= put(o, "after", ctl_json_str(e->after));
	bad |= put(o, "reason", ctl_json_str(e->reason));
	bad |= put(o, "evidence_digest",
	    hex(e->evidence_digest.data, e->evidence_digest.len));
	bad |= put(o, "prev_hash", hex(e->prev_hash.data, e->prev_hash.len));
	bad |= put(o, "hash", hex(e->hash.data, e->hash.len));
	return (finish(o, bad));
}

json_t *
ctl_json_key(const Sluice__V1__Key *k)
{
	json_t *o = json_object();
	char    pub[64];
	int     bad = o == NULL;

	if (bad) {
		return (NULL);
	}
	pub[0] = '\0';
	if (k->public_key.len == 32) {
		sl_pubkey_base64(k->public_key.data, pub, sizeof(pub));
	}
	bad |= put(o, "id", ctl_json_str(k->id));
	bad |= put(o, "role", json_string(sl_role_name(k->role)));
	bad |= put(o, "scope", ctl_json_str(k->scope));
	bad |= put(o, "public_key", json_string(pub));
	return (finish(o, bad));
}

static void
print_duration_from_now(FILE *f, uint64_t at_ms, uint64_t now_ms)
{
	char when[64];
	char d[64];

	ctl_format_time(at_ms, when, sizeof(when));
	if (at_ms > now_ms) {
		sl_duration_format(
		    (at_ms - now_ms + 999) / 1000, d, sizeof(d));
		fprintf(f, "%s (in %s)\n", when, d);
	} else {
		fprintf(f, "%s (due)\n", when);
	}
}

void
ctl_print_status(FILE *f, const Sluice__V1__Rollout *r, uint64_t now_ms)
{
	const Sluice__V1__RolloutSpec *s  = r->spec;
	uint32_t                       lg = sl_rollout_last_good(r, now_ms);
	uint64_t                       settles = sl_rollout_settles_at(r);
	char                           b1[32];
	char                           val[SL_MAX_STRING + 64];
	size_t                         i;
	size_t                         w = 0;

	fprintf(f, "rollout:    %s\n", s->name);
	fprintf(f, "stage:      %s (%u of 0..%zu)\n",
	    ctl_stage_name(s, r->stage, b1, sizeof(b1)), (unsigned) r->stage,
	    s->n_stages > 0 ? s->n_stages - 1 : 0);
	fprintf(f, "last good:  %s (%u)\n",
	    ctl_stage_name(s, lg, b1, sizeof(b1)), (unsigned) lg);
	fprintf(f, "state:      %s\n", sl_state_name(r->state));
	fprintf(f, "revision:   %llu\n", (unsigned long long) r->revision);
	ctl_format_time(r->stage_since_ms, val, sizeof(val));
	fprintf(f, "since:      %s\n", val);
	fprintf(f, "settles:    ");
	if (settles == 0) {
		fprintf(f, "-\n");
	} else {
		print_duration_from_now(f, settles, now_ms);
	}
	fprintf(f, "flags:\n");
	for (i = 0; i < s->n_flags; i++) {
		size_t l = strlen(s->flags[i]->key);

		w = l > w ? l : w;
	}
	for (i = 0; i < s->n_flags; i++) {
		const Sluice__V1__Flag *fl = s->flags[i];

		if (r->stage < fl->n_values) {
			sl_value_format(
			    fl->values[r->stage], val, sizeof(val));
		} else {
			snprintf(val, sizeof(val), "?");
		}
		fprintf(f, "  %-*s  %s\n", (int) w, fl->key, val);
	}
}

// The audit table's columns; the reason, last, is never padded.
enum {
	AC_REV,
	AC_TIME,
	AC_ACTOR,
	AC_ACTION,
	AC_ROLLOUT,
	AC_CHANGE,
	AC_REASON,
};

static const char *const audit_heads[CTL_AUDIT_COLS] = {
	"REV",
	"TIME",
	"ACTOR",
	"ACTION",
	"ROLLOUT",
	"BEFORE \u2192 AFTER",
	"(REASON)",
};

// The cells of one entry. An empty actor, action or rollout (the
// bootstrap entry has no rollout) shows as "-", so no cell is blank in
// the middle of a line; before and after are NULL when neither is set.
typedef struct audit_row {
	char        rev[24];
	char        when[64];
	const char *cell[CTL_AUDIT_COLS];
	const char *before;
	const char *after;
	bool        paren; // the reason is printed in parentheses
} audit_row;

// Terminal columns of UTF-8 text: one per code point, which holds for
// everything the audit log carries (names, stage names, reasons).
static size_t
text_width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		if (((unsigned char) *s & 0xC0) != 0x80) {
			n++;
		}
	}
	return (n);
}

static const char *
or_dash(const char *s)
{
	return (s[0] != '\0' ? s : "-");
}

static void
audit_row_init(audit_row *row, const Sluice__V1__AuditEntry *e)
{
	snprintf(row->rev, sizeof(row->rev), "%llu",
	    (unsigned long long) e->revision);
	ctl_format_time(e->time_ms, row->when, sizeof(row->when));
	row->cell[AC_REV]     = row->rev;
	row->cell[AC_TIME]    = row->when;
	row->cell[AC_ACTOR]   = or_dash(e->actor);
	row->cell[AC_ACTION]  = or_dash(e->action);
	row->cell[AC_ROLLOUT] = or_dash(e->rollout);
	row->cell[AC_CHANGE]  = "";
	row->cell[AC_REASON]  = e->reason;
	row->before           = NULL;
	row->after            = NULL;
	row->paren            = e->reason[0] != '\0';
	if (e->before[0] != '\0' || e->after[0] != '\0') {
		row->before = or_dash(e->before);
		row->after  = or_dash(e->after);
	}
}

static size_t
audit_cell_width(const audit_row *row, int col)
{
	if (col == AC_CHANGE && row->before != NULL) {
		return (text_width(row->before) + 3 + text_width(row->after));
	}
	return (text_width(row->cell[col]));
}

void
ctl_audit_cols_init(ctl_audit_cols *cols)
{
	int i;

	for (i = 0; i < CTL_AUDIT_COLS; i++) {
		cols->w[i] = text_width(audit_heads[i]);
	}
}

void
ctl_audit_cols_add(ctl_audit_cols *cols, const Sluice__V1__AuditEntry *e)
{
	audit_row row;
	size_t    w;
	int       i;

	audit_row_init(&row, e);
	for (i = 0; i < CTL_AUDIT_COLS; i++) {
		w = audit_cell_width(&row, i);
		if (w > cols->w[i]) {
			cols->w[i] = w;
		}
	}
}

// Prints cells 0..last, two spaces apart, padding all but the last so
// that no line ends in blanks.
static void
print_cells(
    FILE *f, const ctl_audit_cols *cols, const audit_row *row, int last)
{
	size_t w;
	int    i;

	for (i = 0; i <= last; i++) {
		if (i > 0) {
			fputs("  ", f);
		}
		if (i == AC_CHANGE && row->before != NULL) {
			fprintf(f, "%s \u2192 %s", row->before, row->after);
		} else if (i == AC_REASON && row->paren) {
			fprintf(f, "(%s)", row->cell[i]);
		} else {
			fputs(row->cell[i], f);
		}
		for (w = audit_cell_width(row, i); i < last && w < cols->w[i];
		     w++) {
			fputc(' ', f);
		}
	}
	fputc('\n', f);
}

void
ctl_print_audit_header(FILE *f, const ctl_audit_cols *cols)
{
	audit_row row;
	int       i;

	memset(&row, 0, sizeof(row));
	for (i = 0; i < CTL_AUDIT_COLS; i++) {
		row.cell[i] = audit_heads[i];
	}
	print_cells(f, cols, &row, AC_REASON);
}

void
ctl_print_audit(
    FILE *f, const ctl_audit_cols *cols, const Sluice__V1__AuditEntry *e)
{
	audit_row row;
	int       last = AC_ROLLOUT;

	audit_row_init(&row, e);
	if (row.paren) {
		last = AC_REASON;
	} else if (row.before != NULL) {
		last = AC_CHANGE;
	}
	print_cells(f, cols, &row, last);
}
