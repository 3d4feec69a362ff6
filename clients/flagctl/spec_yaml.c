// SPDX-License-Identifier: MIT
//
// spec_yaml.c — reads and writes rollout files (docs/rollout-format.md).
// Parsing loads each document with libyaml's document API and walks the
// node tree, so every error can name the line libyaml recorded for the
// offending node; value kinds follow the scalar's style (a quoted "true"
// is a string). Emitting feeds events to libyaml's emitter and quotes
// string flag values, so export -> parse gives back the same spec.

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "rollout.h"
#include "spec_yaml.h"

// The local tag that forces a string, for the one string a plain or quoted
// scalar cannot express: a value ending in '%'.
#define STR_TAG "!str"

typedef struct yp {
	yaml_document_t *doc;
	const char      *name;
	char            *err;
	size_t           errlen;
} yp;

static int yerr(yp *p, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Formats "NAME:LINE: message" into p->err and returns SLUICE_EINVAL.
static int
yerr(yp *p, const yaml_node_t *n, const char *fmt, ...)
{
	char    msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n != NULL) {
		snprintf(p->err, p->errlen, "%s:%lu: %s", p->name,
		    (unsigned long) n->start_mark.line + 1, msg);
	} else {
		snprintf(p->err, p->errlen, "%s: %s", p->name, msg);
	}
	return (SLUICE_EINVAL);
}

static yaml_node_t *
node(yp *p, int idx)
{
	return (yaml_document_get_node(p->doc, idx));
}

static const char *
sval(const yaml_node_t *n)
{
	return ((const char *) n->data.scalar.value);
}

static bool
is_plain(const yaml_node_t *n)
{
	return (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
}

static const char *
kind_word(yaml_node_type_t t)
{
	switch (t) {
	case YAML_SCALAR_NODE:
		return ("a scalar");
	case YAML_SEQUENCE_NODE:
		return ("a list");
	case YAML_MAPPING_NODE:
		return ("a mapping");
	case YAML_NO_NODE:
		break;
	}
	return ("nothing");
}

static int
expect(yp *p, const yaml_node_t *n, yaml_node_type_t t, const char *what)
{
	if (n->type != t) {
		return (yerr(p, n, "%s must be %s, not %s", what, kind_word(t),
		    kind_word(n->type)));
	}
	if (t == YAML_SCALAR_NODE &&
	    strlen(sval(n)) != n->data.scalar.length) {
		return (yerr(p, n, "%s contains a NUL byte", what));
	}
	return (SLUICE_OK);
}

// A plain scalar that YAML would read as null.
static bool
is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE) {
		return (false);
	}
	s = sval(n);
	return (is_plain(n) &&
	    (*s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	        strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0));
}

static int
get_string(yp *p, const yaml_node_t *n, const char *what, char **outp)
{
	char *s;
	int   rv;

	if ((rv = expect(p, n, YAML_SCALAR_NODE, what)) != SLUICE_OK) {
		return (rv);
	}
	if (is_null(n) && *sval(n) == '\0') {
		return (yerr(p, n, "%s has no value", what));
	}
	if ((s = strdup(sval(n))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	*outp = s;
	return (SLUICE_OK);
}

// Unsigned decimal integer no greater than max (plain scalar).
static int
get_uint(yp *p, const yaml_node_t *n, const char *what, uint64_t max,
    uint64_t *outp)
{
	const char        *s;
	char              *end;
	unsigned long long v;
	int                rv;

	if ((rv = expect(p, n, YAML_SCALAR_NODE, what)) != SLUICE_OK) {
		return (rv);
	}
	s = sval(n);
	if (!is_plain(n) || *s < '0' || *s > '9') {
		return (yerr(
		    p, n, "%s must be a whole number, not \"%s\"", what, s));
	}
	errno = 0;
	v     = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max) {
		return (yerr(p, n,
		    "%s must be a whole number up to %llu, "
		    "not \"%s\"",
		    what, (unsigned long long) max, s));
	}
	*outp = v;
	return (SLUICE_OK);
}

static int
get_u32(yp *p, const yaml_node_t *n, const char *what, uint32_t *outp)
{
	uint64_t v;
	int      rv;

	if ((rv = get_uint(p, n, what, UINT32_MAX, &v)) != SLUICE_OK) {
		return (rv);
	}
	*outp = (uint32_t) v;
	return (SLUICE_OK);
}

static int
get_duration(yp *p, const yaml_node_t *n, const char *what, uint64_t max,
    uint64_t *outp)
{
	uint64_t v;
	int      rv;

	if ((rv = expect(p, n, YAML_SCALAR_NODE, what)) != SLUICE_OK) {
		return (rv);
	}
	if (sl_duration_parse(sval(n), &v) != SLUICE_OK || v > max) {
		return (yerr(p, n,
		    "%s: bad duration \"%s\" (e.g. 90s, 5m, 24h, 1h30m)", what,
		    sval(n)));
	}
	*outp = v;
	return (SLUICE_OK);
}

static int
get_bool(yp *p, const yaml_node_t *n, const char *what, bool *outp)
{
	int rv;

	if ((rv = expect(p, n, YAML_SCALAR_NODE, what)) != SLUICE_OK) {
		return (rv);
	}
	if (is_plain(n) && strcmp(sval(n), "true") == 0) {
		*outp = true;
	} else if (is_plain(n) && strcmp(sval(n), "false") == 0) {
		*outp = false;
	} else {
		return (yerr(p, n, "%s must be true or false, not \"%s\"",
		    what, sval(n)));
	}
	return (SLUICE_OK);
}

// A list of strings; a null value counts as the empty list.
static int
get_strings(
    yp *p, const yaml_node_t *n, const char *what, char ***arrp, size_t *np)
{
	yaml_node_item_t *it;
	size_t            cnt;
	int               rv;

	if (is_null(n)) {
		return (SLUICE_OK);
	}
	if ((rv = expect(p, n, YAML_SEQUENCE_NODE, what)) != SLUICE_OK) {
		return (rv);
	}
	cnt = (size_t) (n->data.sequence.items.top -
	    n->data.sequence.items.start);
	if (cnt == 0) {
		return (SLUICE_OK);
	}
	if ((*arrp = calloc(cnt, sizeof(char *))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	for (it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		rv = get_string(p, node(p, *it), what, &(*arrp)[*np]);
		if (rv != SLUICE_OK) {
			return (rv);
		}
		(*np)++;
	}
	return (SLUICE_OK);
}

// Checks that no key of mapping n repeats and that every key is a scalar.
static int
check_keys(yp *p, const yaml_node_t *n, const char *what)
{
	yaml_node_pair_t *a;
	yaml_node_pair_t *b;
	yaml_node_t      *ka;
	yaml_node_t      *kb;
	int               rv;

	for (a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top;
	     a++) {
		ka = node(p, a->key);
		if ((rv = expect(p, ka, YAML_SCALAR_NODE, "a key")) !=
		    SLUICE_OK) {
			return (rv);
		}
		for (b = n->data.mapping.pairs.start; b < a; b++) {
			kb = node(p, b->key);
			if (strcmp(sval(ka), sval(kb)) == 0) {
				return (yerr(p, ka,
				    "duplicate key \"%s\" in %s (first on "
				    "line %lu)",
				    sval(ka), what,
				    (unsigned long) kb->start_mark.line + 1));
			}
		}
	}
	return (SLUICE_OK);
}

// YAML 1.1 words that older tools read as booleans. Taking them as strings
// would surprise whoever meant a bool, so they must be spelt out.
static bool
is_boolish(const char *s)
{
	static const char *const words[] = { "y", "Y", "yes", "Yes", "YES",
		"n", "N", "no", "No", "NO", "True", "TRUE", "False", "FALSE",
		"on", "On", "ON", "off", "Off", "OFF" };
	size_t                   i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcmp(s, words[i]) == 0) {
			return (true);
		}
	}
	return (false);
}

static int
get_value(
    yp *p, const yaml_node_t *n, const char *flag, Sluice__V1__FlagValue **vp)
{
	Sluice__V1__FlagValue *v;
	const char            *s;
	const char            *tag;
	size_t                 len;
	uint32_t               bp;
	long long              iv;
	char                  *end;
	int                    rv;

	if (n->type != YAML_SCALAR_NODE) {
		return (yerr(
		    p, n, "flag \"%s\": each value must be a scalar", flag));
	}
	if ((rv = expect(p, n, YAML_SCALAR_NODE, "a value")) != SLUICE_OK) {
		return (rv);
	}
	if ((v = malloc(sizeof(*v))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	sluice__v1__flag_value__init(v);
	*vp = v; // the caller frees it with the flag, also on error

	s   = sval(n);
	len = n->data.scalar.length;
	tag = (const char *) n->tag;
	if (tag != NULL && strcmp(tag, STR_TAG) == 0) {
		goto string;
	}
	if (len > 0 && s[len - 1] == '%') {
		if (sl_percent_parse(s, &bp) != SLUICE_OK) {
			return (yerr(p, n,
			    "flag \"%s\": bad percentage \"%s\" (0%% to "
			    "100%%, at most two decimals)",
			    flag, s));
		}
		v->kind_case  = SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP;
		v->percent_bp = bp;
		return (SLUICE_OK);
	}
	if (!is_plain(n)) {
		goto string;
	}
	if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
		v->kind_case  = SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE;
		v->bool_value = (s[0] == 't');
		return (SLUICE_OK);
	}
	if (is_null(n)) {
		return (yerr(p, n, "flag \"%s\": missing value", flag));
	}
	if (is_boolish(s)) {
		return (yerr(p, n,
		    "flag \"%s\": ambiguous value %s: write true or false "
		    "for a bool, or quote it for a string",
		    flag, s));
	}
	if ((s[0] >= '0' && s[0] <= '9') ||
	    ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9')) {
		errno = 0;
		iv    = strtoll(s, &end, 10);
		if (errno != 0 || *end != '\0') {
			return (yerr(p, n,
			    "flag \"%s\": %s is not a 64-bit integer (values "
			    "are bool, integer, string or percentage); quote "
			    "it for a string",
			    flag, s));
		}
		v->kind_case = SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE;
		v->int_value = iv;
		return (SLUICE_OK);
	}
string:
	if ((v->string_value = strdup(s)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	v->kind_case = SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE;
	return (SLUICE_OK);
}

static int
get_flags(yp *p, const yaml_node_t *n, Sluice__V1__RolloutSpec *s)
{
	yaml_node_pair_t *pr;
	yaml_node_item_t *it;
	yaml_node_t      *k;
	yaml_node_t      *vals;
	Sluice__V1__Flag *f;
	size_t            cnt;
	int               rv;

	if ((rv = expect(p, n, YAML_MAPPING_NODE, "flags")) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = check_keys(p, n, "flags")) != SLUICE_OK) {
		return (rv);
	}
	cnt =
	    (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (cnt == 0) {
		return (SLUICE_OK);
	}
	if ((s->flags = calloc(cnt, sizeof(*s->flags))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		k    = node(p, pr->key);
		vals = node(p, pr->value);
		if ((f = malloc(sizeof(*f))) == NULL) {
			return (SLUICE_ENOMEM);
		}
		sluice__v1__flag__init(f);
		s->flags[s->n_flags++] = f;
		if ((f->key = strdup(sval(k))) == NULL) {
			return (SLUICE_ENOMEM);
		}
		if (vals->type != YAML_SEQUENCE_NODE) {
			return (yerr(p, vals,
			    "flag \"%s\" must list one value per stage, "
			    "e.g. [false, true]",
			    f->key));
		}
		cnt = (size_t) (vals->data.sequence.items.top -
		    vals->data.sequence.items.start);
		if (cnt != s->n_stages) {
			return (yerr(p, vals,
			    "flag \"%s\" has %zu values for %zu stages",
			    f->key, cnt, s->n_stages));
		}
		if ((f->values = calloc(cnt, sizeof(*f->values))) == NULL) {
			return (SLUICE_ENOMEM);
		}
		for (it = vals->data.sequence.items.start;
		     it < vals->data.sequence.items.top; it++) {
			Sluice__V1__FlagValue *v = NULL;

			rv = get_value(p, node(p, *it), f->key, &v);
			if (v == NULL) {
				return (
				    rv != SLUICE_OK ? rv : SLUICE_EINTERNAL);
			}
			f->values[f->n_values++] = v; // freed with the spec
			if (rv != SLUICE_OK) {
				return (rv);
			}
			if (f->values[0]->kind_case != v->kind_case) {
				return (yerr(p, node(p, *it),
				    "flag \"%s\": value for stage \"%s\" is "
				    "%s but the first value is %s",
				    f->key, s->stages[f->n_values - 1],
				    sl_value_kind(v),
				    sl_value_kind(f->values[0])));
			}
		}
	}
	return (SLUICE_OK);
}

static int
get_requires(yp *p, const yaml_node_t *n, Sluice__V1__RolloutSpec *s)
{
	yaml_node_item_t         *it;
	yaml_node_t              *e;
	Sluice__V1__Prerequisite *pq;
	const char               *t;
	const char               *op;
	size_t                    cnt;
	size_t                    l;
	size_t                    r;
	int                       rv;

	if (is_null(n)) {
		return (SLUICE_OK);
	}
	if ((rv = expect(p, n, YAML_SEQUENCE_NODE, "requires")) != SLUICE_OK) {
		return (rv);
	}
	cnt = (size_t) (n->data.sequence.items.top -
	    n->data.sequence.items.start);
	if (cnt == 0) {
		return (SLUICE_OK);
	}
	if ((s->requires = calloc(cnt, sizeof(*s->requires))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	for (it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		e = node(p, *it);
		if ((rv = expect(p, e, YAML_SCALAR_NODE, "a prerequisite")) !=
		    SLUICE_OK) {
			return (rv);
		}
		t  = sval(e);
		op = strstr(t, ">=");
		if (op == NULL) {
			return (yerr(p, e,
			    "bad prerequisite \"%s\": expected \"ROLLOUT >= "
			    "STAGE\"",
			    t));
		}
		// Trim both sides of ">=" without copying first.
		for (l = 0; t[l] == ' '; l++) { }
		for (r = (size_t) (op - t); r > l && t[r - 1] == ' '; r--) { }
		op += 2;
		while (*op == ' ') {
			op++;
		}
		if (r == l || *op == '\0' || memchr(t + l, ' ', r - l) ||
		    strchr(op, ' ') != NULL) {
			return (yerr(p, e,
			    "bad prerequisite \"%s\": expected \"ROLLOUT >= "
			    "STAGE\"",
			    t));
		}
		if ((pq = malloc(sizeof(*pq))) == NULL) {
			return (SLUICE_ENOMEM);
		}
		sluice__v1__prerequisite__init(pq);
		s->requires[s->n_requires++] = pq;
		if ((pq->rollout = strndup(t + l, r - l)) == NULL ||
		    (pq->stage = strdup(op)) == NULL) {
			return (SLUICE_ENOMEM);
		}
	}
	return (SLUICE_OK);
}

// {reports: N, seconds: S}; either may be left out.
static int
get_counts(yp *p, const yaml_node_t *n, const char *what, uint32_t *reportsp,
    uint32_t *secondsp)
{
	yaml_node_pair_t *pr;
	yaml_node_t      *k;
	uint64_t          secs;
	char              label[64];
	int               rv;

	if ((rv = expect(p, n, YAML_MAPPING_NODE, what)) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = check_keys(p, n, what)) != SLUICE_OK) {
		return (rv);
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		k = node(p, pr->key);
		snprintf(label, sizeof(label), "%s.%s", what, sval(k));
		if (strcmp(sval(k), "reports") == 0) {
			rv = get_u32(p, node(p, pr->value), label, reportsp);
		} else if (strcmp(sval(k), "seconds") == 0) {
			rv = get_duration(
			    p, node(p, pr->value), label, UINT32_MAX, &secs);
			*secondsp = (uint32_t) secs;
		} else {
			rv = yerr(p, k,
			    "unknown key \"%s\" in %s (expected reports or "
			    "seconds)",
			    sval(k), what);
		}
		if (rv != SLUICE_OK) {
			return (rv);
		}
	}
	return (SLUICE_OK);
}

static int
get_gate(yp *p, const yaml_node_t *n, Sluice__V1__Gate *g)
{
	yaml_node_pair_t *pr;
	yaml_node_item_t *it;
	yaml_node_t      *k;
	yaml_node_t      *v;
	const char       *key;
	uint64_t          secs = 0;
	bool              b    = false;
	char              why[256];
	size_t            cnt;
	int               rv = SLUICE_OK;

	if (is_null(n)) {
		return (SLUICE_OK);
	}
	if ((rv = expect(p, n, YAML_MAPPING_NODE, "a gate")) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = check_keys(p, n, "a gate")) != SLUICE_OK) {
		return (rv);
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		k   = node(p, pr->key);
		v   = node(p, pr->value);
		key = sval(k);
		if (strcmp(key, "conditions") == 0) {
			if ((rv = expect(p, v, YAML_SEQUENCE_NODE,
			         "conditions")) != SLUICE_OK) {
				return (rv);
			}
			cnt = (size_t) (v->data.sequence.items.top -
			    v->data.sequence.items.start);
			if (cnt == 0) {
				continue;
			}
			g->conditions = calloc(cnt, sizeof(*g->conditions));
			if (g->conditions == NULL) {
				return (SLUICE_ENOMEM);
			}
			for (it = v->data.sequence.items.start;
			     it < v->data.sequence.items.top; it++) {
				Sluice__V1__Condition *c;
				yaml_node_t           *cn = node(p, *it);

				if ((rv = expect(p, cn, YAML_SCALAR_NODE,
				         "a condition")) != SLUICE_OK) {
					return (rv);
				}
				if ((c = malloc(sizeof(*c))) == NULL) {
					return (SLUICE_ENOMEM);
				}
				sluice__v1__condition__init(c);
				g->conditions[g->n_conditions++] = c;
				why[0]                           = '\0';
				if (sl_condition_parse(sval(cn), c, why,
				        sizeof(why)) != SLUICE_OK) {
					return (yerr(p, cn,
					    "bad condition \"%s\": %s "
					    "(expected \"METRIC AGGREGATE OP "
					    "THRESHOLD\")",
					    sval(cn), why));
				}
			}
		} else if (strcmp(key, "window") == 0) {
			rv = get_counts(p, v, "window", &g->window_reports,
			    &g->window_seconds);
		} else if (strcmp(key, "soak") == 0) {
			rv = get_counts(
			    p, v, "soak", &g->soak_reports, &g->soak_seconds);
		} else if (strcmp(key, "min_samples") == 0) {
			rv = get_u32(p, v, key, &g->min_samples);
		} else if (strcmp(key, "consecutive_failures") == 0) {
			rv = get_u32(p, v, key, &g->consecutive_failures);
		} else if (strcmp(key, "auto_promote") == 0) {
			rv              = get_bool(p, v, key, &b);
			g->auto_promote = b;
		} else if (strcmp(key, "deadline") == 0) {
			rv = get_duration(p, v, key, UINT32_MAX, &secs);
			g->deadline_seconds = (uint32_t) secs;
		} else if (strcmp(key, "on_inconclusive") == 0) {
			if ((rv = expect(p, v, YAML_SCALAR_NODE, key)) !=
			    SLUICE_OK) {
				return (rv);
			}
			if (strcmp(sval(v), "hold") == 0) {
				g->on_inconclusive =
				    SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_HOLD;
			} else if (strcmp(sval(v), "rollback") == 0) {
				g->on_inconclusive =
				    SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_ROLLBACK;
			} else {
				rv = yerr(p, v,
				    "on_inconclusive must be hold or "
				    "rollback, not \"%s\"",
				    sval(v));
			}
		} else {
			rv = yerr(p, k,
			    "unknown gate key \"%s\" (expected conditions, "
			    "window, min_samples, consecutive_failures, soak, "
			    "auto_promote, deadline, on_inconclusive)",
			    key);
		}
		if (rv != SLUICE_OK) {
			return (rv);
		}
	}
	return (SLUICE_OK);
}

static int
get_gates(yp *p, const yaml_node_t *n, Sluice__V1__RolloutSpec *s)
{
	yaml_node_pair_t *pr;
	yaml_node_t      *k;
	Sluice__V1__Gate *g;
	size_t            cnt;
	int               rv;

	if (is_null(n)) {
		return (SLUICE_OK);
	}
	if ((rv = expect(p, n, YAML_MAPPING_NODE, "gates")) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = check_keys(p, n, "gates")) != SLUICE_OK) {
		return (rv);
	}
	cnt =
	    (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (cnt == 0) {
		return (SLUICE_OK);
	}
	if ((s->gates = calloc(cnt, sizeof(*s->gates))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		k = node(p, pr->key);
		if (sl_stage_index(s, sval(k)) < 0) {
			return (yerr(p, k,
			    "gate for \"%s\", which is not one of the "
			    "stages",
			    sval(k)));
		}
		if ((g = malloc(sizeof(*g))) == NULL) {
			return (SLUICE_ENOMEM);
		}
		sluice__v1__gate__init(g);
		s->gates[s->n_gates++] = g;
		if ((g->stage = strdup(sval(k))) == NULL) {
			return (SLUICE_ENOMEM);
		}
		if ((rv = get_gate(p, node(p, pr->value), g)) != SLUICE_OK) {
			return (rv);
		}
	}
	return (SLUICE_OK);
}

enum {
	K_ROLLOUT,
	K_DESCRIPTION,
	K_OWNER,
	K_DATASETS,
	K_STAGES,
	K_FLAGS,
	K_REQUIRES,
	K_ROLLBACK_WINDOW,
	K_MAX_STALE,
	K_ON_STALE,
	K_GATES,
	K_COUNT
};

static const char *const top_keys[K_COUNT] = { "rollout", "description",
	"owner", "datasets", "stages", "flags", "requires", "rollback_window",
	"max_stale", "on_stale", "gates" };

// Parses one document. Keys are collected first and handled in a fixed
// order, so a file may list them in any order (flags before stages, say).
static int
parse_doc(yp *p, Sluice__V1__RolloutSpec *s)
{
	yaml_node_t      *root = yaml_document_get_root_node(p->doc);
	yaml_node_t      *at[K_COUNT];
	yaml_node_pair_t *pr;
	yaml_node_t      *k;
	char              why[256];
	int               i;
	int               rv;

	memset(at, 0, sizeof(at));
	if (root->type != YAML_MAPPING_NODE) {
		return (yerr(p, root,
		    "a rollout document must be a mapping (rollout: NAME, "
		    "stages: [...], ...)"));
	}
	if ((rv = check_keys(p, root, "the rollout")) != SLUICE_OK) {
		return (rv);
	}
	for (pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		k = node(p, pr->key);
		for (i = 0; i < K_COUNT; i++) {
			if (strcmp(sval(k), top_keys[i]) == 0) {
				break;
			}
		}
		if (i == K_COUNT) {
			return (yerr(p, k,
			    "unknown key \"%s\" (expected rollout, "
			    "description, owner, datasets, stages, flags, "
			    "requires, rollback_window, max_stale, on_stale, "
			    "gates)",
			    sval(k)));
		}
		at[i] = node(p, pr->value);
	}
	if (at[K_ROLLOUT] == NULL) {
		return (yerr(p, root, "missing \"rollout\" (the name)"));
	}
	if (at[K_STAGES] == NULL) {
		return (yerr(p, root, "missing \"stages\""));
	}
	if ((rv = get_string(p, at[K_ROLLOUT], "rollout", &s->name)) !=
	    SLUICE_OK) {
		return (rv);
	}
	if (at[K_DESCRIPTION] != NULL && !is_null(at[K_DESCRIPTION]) &&
	    (rv = get_string(p, at[K_DESCRIPTION], "description",
	         &s->description)) != SLUICE_OK) {
		return (rv);
	}
	if (at[K_OWNER] != NULL && !is_null(at[K_OWNER]) &&
	    (rv = get_string(p, at[K_OWNER], "owner", &s->owner)) !=
	        SLUICE_OK) {
		return (rv);
	}
	if (at[K_DATASETS] != NULL &&
	    (rv = get_strings(p, at[K_DATASETS], "datasets", &s->datasets,
	         &s->n_datasets)) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = get_strings(p, at[K_STAGES], "stages", &s->stages,
	         &s->n_stages)) != SLUICE_OK) {
		return (rv);
	}
	if (at[K_FLAGS] != NULL &&
	    (rv = get_flags(p, at[K_FLAGS], s)) != SLUICE_OK) {
		return (rv);
	}
	if (at[K_REQUIRES] != NULL &&
	    (rv = get_requires(p, at[K_REQUIRES], s)) != SLUICE_OK) {
		return (rv);
	}
	if (at[K_ROLLBACK_WINDOW] != NULL &&
	    (rv = get_duration(p, at[K_ROLLBACK_WINDOW], "rollback_window",
	         UINT64_MAX, &s->rollback_window_s)) != SLUICE_OK) {
		return (rv);
	}
	if (at[K_MAX_STALE] != NULL &&
	    (rv = get_duration(p, at[K_MAX_STALE], "max_stale", UINT64_MAX,
	         &s->max_stale_s)) != SLUICE_OK) {
		return (rv);
	}
	if (at[K_ON_STALE] != NULL) {
		k = at[K_ON_STALE];
		if ((rv = expect(p, k, YAML_SCALAR_NODE, "on_stale")) !=
		    SLUICE_OK) {
			return (rv);
		}
		if (strcmp(sval(k), "baseline") == 0) {
			s->on_stale = SLUICE__V1__STALE_POLICY__STALE_BASELINE;
		} else if (strcmp(sval(k), "keep") == 0) {
			s->on_stale = SLUICE__V1__STALE_POLICY__STALE_KEEP;
		} else {
			return (yerr(p, k,
			    "on_stale must be baseline or keep, not \"%s\"",
			    sval(k)));
		}
	}
	if (at[K_GATES] != NULL &&
	    (rv = get_gates(p, at[K_GATES], s)) != SLUICE_OK) {
		return (rv);
	}
	why[0] = '\0';
	if (sl_spec_validate(s, why, sizeof(why)) != SLUICE_OK) {
		return (yerr(p, root, "rollout \"%s\": %s", s->name, why));
	}
	return (SLUICE_OK);
}

int
ctl_yaml_parse(const char *buf, size_t len, const char *name,
    Sluice__V1__RolloutSpec ***specsp, size_t *np, char *err, size_t errlen)
{
	yaml_parser_t             parser;
	yaml_document_t           doc;
	Sluice__V1__RolloutSpec **specs = NULL;
	Sluice__V1__RolloutSpec **grown;
	Sluice__V1__RolloutSpec  *s;
	size_t                    n = 0;
	yp                        p;
	int                       rv;

	if (name == NULL || strcmp(name, "-") == 0) {
		name = "<stdin>";
	}
	p.doc    = &doc;
	p.name   = name;
	p.err    = err;
	p.errlen = errlen;
	if (!yaml_parser_initialize(&parser)) {
		return (SLUICE_ENOMEM);
	}
	yaml_parser_set_input_string(
	    &parser, (const unsigned char *) buf, len);
	for (;;) {
		if (!yaml_parser_load(&parser, &doc)) {
			if (parser.error == YAML_MEMORY_ERROR) {
				rv = SLUICE_ENOMEM;
				goto fail;
			}
			snprintf(err, errlen, "%s:%lu: %s%s%s", name,
			    (unsigned long) parser.problem_mark.line + 1,
			    parser.problem ? parser.problem : "syntax error",
			    parser.context ? " " : "",
			    parser.context ? parser.context : "");
			rv = SLUICE_EINVAL;
			goto fail;
		}
		if (yaml_document_get_root_node(&doc) == NULL) {
			yaml_document_delete(&doc);
			break;
		}
		grown = realloc(specs, (n + 1) * sizeof(*specs));
		if (grown == NULL || (s = malloc(sizeof(*s))) == NULL) {
			specs = grown != NULL ? grown : specs;
			yaml_document_delete(&doc);
			rv = SLUICE_ENOMEM;
			goto fail;
		}
		specs = grown;
		sluice__v1__rollout_spec__init(s);
		specs[n++] = s;
		rv         = parse_doc(&p, s);
		yaml_document_delete(&doc);
		if (rv != SLUICE_OK) {
			goto fail;
		}
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: no rollout in the file", name);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	yaml_parser_delete(&parser);
	*specsp = specs;
	*np     = n;
	return (SLUICE_OK);
fail:
	yaml_parser_delete(&parser);
	ctl_yaml_specs_free(specs, n);
	return (rv);
}

int
ctl_yaml_parse_file(const char *path, Sluice__V1__RolloutSpec ***specsp,
    size_t *np, char *err, size_t errlen)
{
	FILE  *f;
	char  *buf = NULL;
	char  *grown;
	size_t len = 0;
	size_t cap = 0;
	size_t got;
	int    rv;

	if (strcmp(path, "-") == 0) {
		f = stdin;
	} else if ((f = fopen(path, "r")) == NULL) {
		rv = errno == ENOENT ? SLUICE_ENOENT : SLUICE_EIO;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (rv);
	}
	for (;;) {
		if (len == cap) {
			cap   = cap == 0 ? 8192 : cap * 2;
			grown = realloc(buf, cap);
			if (grown == NULL) {
				rv = SLUICE_ENOMEM;
				goto done;
			}
			buf = grown;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			break;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rv = SLUICE_EIO;
		goto done;
	}
	rv = ctl_yaml_parse(buf, len, path, specsp, np, err, errlen);
done:
	if (f != stdin) {
		fclose(f);
	}
	free(buf);
	return (rv);
}

void
ctl_yaml_specs_free(Sluice__V1__RolloutSpec **specs, size_t n)
{
	size_t i;

	if (specs == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		sluice__v1__rollout_spec__free_unpacked(specs[i], NULL);
	}
	free(specs);
}

// ---------------------------------------------------------------- emit

typedef struct obuf {
	char  *buf;
	size_t len;
	size_t cap;
	bool   oom;
} obuf;

static int
write_cb(void *data, unsigned char *bytes, size_t size)
{
	obuf  *o = data;
	char  *grown;
	size_t cap;

	if (o->len + size + 1 > o->cap) {
		cap = o->cap == 0 ? 4096 : o->cap;
		while (cap < o->len + size + 1) {
			cap *= 2;
		}
		if ((grown = realloc(o->buf, cap)) == NULL) {
			o->oom = true;
			return (0);
		}
		o->buf = grown;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, bytes, size);
	o->len += size;
	o->buf[o->len] = '\0';
	return (1);
}

// libyaml's event constructors take non-const strings they only copy.
static yaml_char_t *
ych(const char *s)
{
	return ((yaml_char_t *) (uintptr_t) s);
}

static int
emit(yaml_emitter_t *e, yaml_event_t *ev)
{
	return (yaml_emitter_emit(e, ev) ? SLUICE_OK : SLUICE_EINTERNAL);
}

static int
ev_scalar(yaml_emitter_t *e, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(
	        &ev, NULL, NULL, ych(s), (int) strlen(s), 1, 1, style)) {
		return (SLUICE_ENOMEM);
	}
	return (emit(e, &ev));
}

static int
ev_tagged(yaml_emitter_t *e, const char *tag, const char *s)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, ych(tag), ych(s),
	        (int) strlen(s), 0, 0, YAML_DOUBLE_QUOTED_SCALAR_STYLE)) {
		return (SLUICE_ENOMEM);
	}
	return (emit(e, &ev));
}

static int
ev_key(yaml_emitter_t *e, const char *s)
{
	return (ev_scalar(e, s, YAML_ANY_SCALAR_STYLE));
}

static int
ev_seq(yaml_emitter_t *e, yaml_sequence_style_t style)
{
	yaml_event_t ev;

	if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, style)) {
		return (SLUICE_ENOMEM);
	}
	return (emit(e, &ev));
}

static int
ev_seq_end(yaml_emitter_t *e)
{
	yaml_event_t ev;

	if (!yaml_sequence_end_event_initialize(&ev)) {
		return (SLUICE_ENOMEM);
	}
	return (emit(e, &ev));
}

static int
ev_map(yaml_emitter_t *e, yaml_mapping_style_t style)
{
	yaml_event_t ev;

	if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, style)) {
		return (SLUICE_ENOMEM);
	}
	return (emit(e, &ev));
}

static int
ev_map_end(yaml_emitter_t *e)
{
	yaml_event_t ev;

	if (!yaml_mapping_end_event_initialize(&ev)) {
		return (SLUICE_ENOMEM);
	}
	return (emit(e, &ev));
}

// The emitter decides plain versus quoted by syntax alone; a string YAML
// would read as null must be quoted by us, or "~" would come back empty.
static int
ev_text(yaml_emitter_t *e, const char *s)
{
	if (*s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0) {
		return (ev_scalar(e, s, YAML_DOUBLE_QUOTED_SCALAR_STYLE));
	}
	return (ev_scalar(e, s, YAML_ANY_SCALAR_STYLE));
}

static int
kv_str(yaml_emitter_t *e, const char *k, const char *v)
{
	int rv;

	if ((rv = ev_key(e, k)) != SLUICE_OK) {
		return (rv);
	}
	return (ev_text(e, v));
}

static int
kv_uint(yaml_emitter_t *e, const char *k, uint64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%llu", (unsigned long long) v);
	return (kv_str(e, k, num));
}

static int
kv_duration(yaml_emitter_t *e, const char *k, uint64_t v)
{
	char d[64];

	sl_duration_format(v, d, sizeof(d));
	return (kv_str(e, k, d));
}

static int
str_list(yaml_emitter_t *e, const char *k, char *const *v, size_t n)
{
	size_t i;
	int    rv;

	if ((rv = ev_key(e, k)) != SLUICE_OK ||
	    (rv = ev_seq(e, YAML_FLOW_SEQUENCE_STYLE)) != SLUICE_OK) {
		return (rv);
	}
	for (i = 0; i < n; i++) {
		if ((rv = ev_text(e, v[i])) != SLUICE_OK) {
			return (rv);
		}
	}
	return (ev_seq_end(e));
}

static int
emit_value(yaml_emitter_t *e, const Sluice__V1__FlagValue *v)
{
	char   buf[64];
	size_t len;

	switch (v->kind_case) {
	case SLUICE__V1__FLAG_VALUE__KIND_BOOL_VALUE:
		return (ev_scalar(e, v->bool_value ? "true" : "false",
		    YAML_PLAIN_SCALAR_STYLE));
	case SLUICE__V1__FLAG_VALUE__KIND_INT_VALUE:
		snprintf(buf, sizeof(buf), "%lld", (long long) v->int_value);
		return (ev_scalar(e, buf, YAML_PLAIN_SCALAR_STYLE));
	case SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP:
		sl_percent_format(v->percent_bp, buf, sizeof(buf));
		return (ev_scalar(e, buf, YAML_DOUBLE_QUOTED_SCALAR_STYLE));
	case SLUICE__V1__FLAG_VALUE__KIND_STRING_VALUE:
		len = strlen(v->string_value);
		if (len > 0 && v->string_value[len - 1] == '%') {
			return (ev_tagged(e, STR_TAG, v->string_value));
		}
		return (ev_scalar(
		    e, v->string_value, YAML_DOUBLE_QUOTED_SCALAR_STYLE));
	case SLUICE__V1__FLAG_VALUE__KIND__NOT_SET:
	case _SLUICE__V1__FLAG_VALUE__KIND__CASE_IS_INT_SIZE:
	default:
		break;
	}
	// A value without a kind cannot come from a valid spec; write null
	// so the parser rejects the file rather than guessing.
	return (ev_scalar(e, "~", YAML_PLAIN_SCALAR_STYLE));
}

static int
emit_counts(
    yaml_emitter_t *e, const char *k, uint32_t reports, uint32_t seconds)
{
	int rv;

	if (reports == 0 && seconds == 0) {
		return (SLUICE_OK);
	}
	if ((rv = ev_key(e, k)) != SLUICE_OK ||
	    (rv = ev_map(e, YAML_FLOW_MAPPING_STYLE)) != SLUICE_OK) {
		return (rv);
	}
	if (reports != 0 &&
	    (rv = kv_uint(e, "reports", reports)) != SLUICE_OK) {
		return (rv);
	}
	if (seconds != 0 &&
	    (rv = kv_uint(e, "seconds", seconds)) != SLUICE_OK) {
		return (rv);
	}
	return (ev_map_end(e));
}

static int
emit_gate(yaml_emitter_t *e, const Sluice__V1__Gate *g)
{
	char   buf[512];
	size_t i;
	int    rv;

	if ((rv = ev_key(e, g->stage)) != SLUICE_OK ||
	    (rv = ev_map(e, YAML_BLOCK_MAPPING_STYLE)) != SLUICE_OK) {
		return (rv);
	}
	if (g->n_conditions > 0) {
		if ((rv = ev_key(e, "conditions")) != SLUICE_OK ||
		    (rv = ev_seq(e, YAML_BLOCK_SEQUENCE_STYLE)) != SLUICE_OK) {
			return (rv);
		}
		for (i = 0; i < g->n_conditions; i++) {
			sl_condition_format(
			    g->conditions[i], buf, sizeof(buf));
			if ((rv = ev_text(e, buf)) != SLUICE_OK) {
				return (rv);
			}
		}
		if ((rv = ev_seq_end(e)) != SLUICE_OK) {
			return (rv);
		}
	}
	if ((rv = emit_counts(e, "window", g->window_reports,
	         g->window_seconds)) != SLUICE_OK) {
		return (rv);
	}
	if (g->min_samples != 0 &&
	    (rv = kv_uint(e, "min_samples", g->min_samples)) != SLUICE_OK) {
		return (rv);
	}
	if (g->consecutive_failures != 0 &&
	    (rv = kv_uint(e, "consecutive_failures",
	         g->consecutive_failures)) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = emit_counts(e, "soak", g->soak_reports, g->soak_seconds)) !=
	    SLUICE_OK) {
		return (rv);
	}
	if (g->auto_promote &&
	    (rv = kv_str(e, "auto_promote", "true")) != SLUICE_OK) {
		return (rv);
	}
	if (g->deadline_seconds != 0 &&
	    (rv = kv_duration(e, "deadline", g->deadline_seconds)) !=
	        SLUICE_OK) {
		return (rv);
	}
	if (g->on_inconclusive ==
	        SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_ROLLBACK &&
	    (rv = kv_str(e, "on_inconclusive", "rollback")) != SLUICE_OK) {
		return (rv);
	}
	return (ev_map_end(e));
}

static int
emit_spec(yaml_emitter_t *e, const Sluice__V1__RolloutSpec *s)
{
	yaml_event_t ev;
	char         buf[512];
	size_t       i;
	size_t       j;
	int          rv;

	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) {
		return (SLUICE_ENOMEM);
	}
	if ((rv = emit(e, &ev)) != SLUICE_OK ||
	    (rv = ev_map(e, YAML_BLOCK_MAPPING_STYLE)) != SLUICE_OK ||
	    (rv = kv_str(e, "rollout", s->name)) != SLUICE_OK) {
		return (rv);
	}
	if (s->description[0] != '\0' &&
	    (rv = kv_str(e, "description", s->description)) != SLUICE_OK) {
		return (rv);
	}
	if (s->owner[0] != '\0' &&
	    (rv = kv_str(e, "owner", s->owner)) != SLUICE_OK) {
		return (rv);
	}
	if (s->n_datasets > 0 &&
	    (rv = str_list(e, "datasets", s->datasets, s->n_datasets)) !=
	        SLUICE_OK) {
		return (rv);
	}
	if ((rv = str_list(e, "stages", s->stages, s->n_stages)) !=
	        SLUICE_OK ||
	    (rv = ev_key(e, "flags")) != SLUICE_OK ||
	    (rv = ev_map(e, YAML_BLOCK_MAPPING_STYLE)) != SLUICE_OK) {
		return (rv);
	}
	for (i = 0; i < s->n_flags; i++) {
		if ((rv = ev_key(e, s->flags[i]->key)) != SLUICE_OK ||
		    (rv = ev_seq(e, YAML_FLOW_SEQUENCE_STYLE)) != SLUICE_OK) {
			return (rv);
		}
		for (j = 0; j < s->flags[i]->n_values; j++) {
			if ((rv = emit_value(e, s->flags[i]->values[j])) !=
			    SLUICE_OK) {
				return (rv);
			}
		}
		if ((rv = ev_seq_end(e)) != SLUICE_OK) {
			return (rv);
		}
	}
	if ((rv = ev_map_end(e)) != SLUICE_OK) {
		return (rv);
	}
	if (s->n_requires > 0) {
		if ((rv = ev_key(e, "requires")) != SLUICE_OK ||
		    (rv = ev_seq(e, YAML_FLOW_SEQUENCE_STYLE)) != SLUICE_OK) {
			return (rv);
		}
		for (i = 0; i < s->n_requires; i++) {
			snprintf(buf, sizeof(buf), "%s >= %s",
			    s->requires[i] -> rollout,
			    s -> requires[i] -> stage);
			if ((rv = ev_scalar(
			         e, buf, YAML_DOUBLE_QUOTED_SCALAR_STYLE)) !=
			    SLUICE_OK) {
				return (rv);
			}
		}
		if ((rv = ev_seq_end(e)) != SLUICE_OK) {
			return (rv);
		}
	}
	if (s->rollback_window_s != 0 &&
	    (rv = kv_duration(e, "rollback_window", s->rollback_window_s)) !=
	        SLUICE_OK) {
		return (rv);
	}
	if (s->max_stale_s != 0 &&
	    (rv = kv_duration(e, "max_stale", s->max_stale_s)) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = kv_str(e, "on_stale",
	         s->on_stale == SLUICE__V1__STALE_POLICY__STALE_KEEP
	             ? "keep"
	             : "baseline")) != SLUICE_OK) {
		return (rv);
	}
	if (s->n_gates > 0) {
		if ((rv = ev_key(e, "gates")) != SLUICE_OK ||
		    (rv = ev_map(e, YAML_BLOCK_MAPPING_STYLE)) != SLUICE_OK) {
			return (rv);
		}
		for (i = 0; i < s->n_gates; i++) {
			if ((rv = emit_gate(e, s->gates[i])) != SLUICE_OK) {
				return (rv);
			}
		}
		if ((rv = ev_map_end(e)) != SLUICE_OK) {
			return (rv);
		}
	}
	if ((rv = ev_map_end(e)) != SLUICE_OK) {
		return (rv);
	}
	if (!yaml_document_end_event_initialize(&ev, 1)) {
		return (SLUICE_ENOMEM);
	}
	return (emit(e, &ev));
}

int
ctl_yaml_emit(
    Sluice__V1__RolloutSpec *const *specs, size_t n, char **bufp, size_t *lenp)
{
	yaml_emitter_t e;
	yaml_event_t   ev;
	obuf           o = { NULL, 0, 0, false };
	size_t         i;
	int            rv;

	if (!yaml_emitter_initialize(&e)) {
		return (SLUICE_ENOMEM);
	}
	yaml_emitter_set_output(&e, write_cb, &o);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	yaml_emitter_set_indent(&e, 2);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	if ((rv = emit(&e, &ev)) != SLUICE_OK) {
		goto fail;
	}
	for (i = 0; i < n; i++) {
		if ((rv = emit_spec(&e, specs[i])) != SLUICE_OK) {
			goto fail;
		}
	}
	if (!yaml_stream_end_event_initialize(&ev)) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	if ((rv = emit(&e, &ev)) != SLUICE_OK || !yaml_emitter_flush(&e)) {
		rv = rv != SLUICE_OK ? rv : SLUICE_EINTERNAL;
		goto fail;
	}
	if (o.buf == NULL && write_cb(&o, ych(""), 0) == 0) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	yaml_emitter_delete(&e);
	*bufp = o.buf;
	*lenp = o.len;
	return (SLUICE_OK);
fail:
	if (o.oom) {
		rv = SLUICE_ENOMEM;
	}
	yaml_emitter_delete(&e);
	free(o.buf);
	return (rv);
}
