// SPDX-License-Identifier: MIT
//
// cmd_rollout.c — the flagctl verbs that read or move rollouts: apply,
// diff, export, list, status, get, promote, rollback, pause, resume and
// revert. Writes go through ctl_write() (signed); reads through
// ctl_call(). Text goes to stdout, or one JSON document with --json.

#include <stdlib.h>
#include <string.h>

#include "cmd_rollout.h"
#include "codec.h"
#include "eval.h"
#include "output.h"
#include "rollout.h"
#include "spec_yaml.h"

#define VAL_BUF (SL_MAX_STRING + 64)

// ---------------------------------------------------------------- apply

static const char apply_usage[] =
    "usage: flagctl apply -f FILE [--reason TEXT] [--force] [--json]\n"
    "\n"
    "Creates or updates the rollouts described in FILE (\"-\" for stdin;\n"
    "several YAML documents are applied in order). Prints, per rollout,\n"
    "created, updated or unchanged and the revision. Applying the same\n"
    "file twice changes nothing. --force allows changing the values of\n"
    "the stage a rollout is at now. See docs/rollout-format.md.\n"
    "\n"
    "  -f, --file FILE   the rollout file\n"
    "  --reason TEXT     recorded in the audit log\n"
    "  --force           allow changing values of the current stage\n"
    "  --json            print {rollout, result, revision} (an array when\n"
    "                    the file holds several rollouts)\n";

// What apply and diff do once their options are parsed: no operands, a
// -f FILE, and the rollouts in it (*specsp, *np; free them with
// ctl_yaml_specs_free()). Returns -1 when the verb goes on, else the exit
// code it must return at once.
static int
read_specs(ctl *c, int argc, char **argv, const char *file,
    Sluice__V1__RolloutSpec ***specsp, size_t *np)
{
	char err[1024];
	int  ex;
	int  rv;

	if ((ex = ctl_operands(c, argc, argv, 0, 0, NULL)) >= 0) {
		return (ex);
	}
	if (file == NULL) {
		return (ctl_usage(c, "missing -f FILE"));
	}
	if ((rv = ctl_yaml_parse_file(file, specsp, np, err, sizeof(err))) !=
	    SLUICE_OK) {
		return (ctl_fail(
		    c, "%s", rv == SLUICE_ENOMEM ? sluice_strerror(rv) : err));
	}
	return (-1);
}

static json_t *
apply_json(const char *name, const char *result, uint64_t revision)
{
	json_t *o = json_object();

	if (o == NULL ||
	    json_object_set_new(o, "rollout", ctl_json_str(name)) != 0 ||
	    json_object_set_new(o, "result", json_string(result)) != 0 ||
	    json_object_set_new(
	        o, "revision", json_integer((json_int_t) revision)) != 0) {
		json_decref(o);
		return (NULL);
	}
	return (o);
}

int
ctl_cmd_apply(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "reason", required_argument, NULL, CTL_OPT_VERB_BASE },
		{ "force", no_argument, NULL, CTL_OPT_VERB_BASE + 1 },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	Sluice__V1__RolloutSpec **specs = NULL;
	Sluice__V1__Reply        *rep   = NULL;
	Sluice__V1__ApplyRollout  ap;
	Sluice__V1__Command       cmd;
	const char               *file   = NULL;
	const char               *reason = NULL;
	const char               *result;
	json_t                   *arr = NULL;
	json_t                   *one;
	bool                      force = false;
	uint64_t                  rev;
	size_t                    n = 0;
	size_t                    i;
	char                      err[1024];
	int                       o;
	int                       ex;
	int                       rv = SLUICE_OK; // gcc -O1 can't see n >= 1

	c->usage = apply_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":f:h", opts, NULL)) != -1) {
		if (o == 'f') {
			file = optarg;
		} else if (o == CTL_OPT_VERB_BASE) {
			reason = optarg;
		} else if (o == CTL_OPT_VERB_BASE + 1) {
			force = true;
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if ((ex = read_specs(c, argc, argv, file, &specs, &n)) >= 0) {
		return (ex);
	}
	if (c->json && n > 1 && (arr = json_array()) == NULL) {
		ctl_yaml_specs_free(specs, n);
		return (ctl_fail(c, "%s", sluice_strerror(SLUICE_ENOMEM)));
	}
	for (i = 0; i < n; i++) {
		sluice__v1__apply_rollout__init(&ap);
		sluice__v1__command__init(&cmd);
		ap.spec         = specs[i];
		ap.force        = force;
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_APPLY;
		cmd.apply       = &ap;
		if ((rv = ctl_write(c, &cmd, reason, &rep)) != SLUICE_OK) {
			snprintf(err, sizeof(err), "rollout \"%s\"",
			    specs[i]->name);
			json_decref(arr);
			ctl_yaml_specs_free(specs, n);
			return (ctl_fail_call(c, rv, rep, err));
		}
		rev = rep->revision;
		if (!rep->write->changed) {
			result = "unchanged";
		} else if (rep->write->rollout != NULL &&
		    rep->write->rollout->created_revision ==
		        rep->write->rollout->revision) {
			result = "created";
		} else {
			result = "updated";
		}
		if (rep->write->rollout != NULL) {
			rev = rep->write->rollout->revision;
		}
		if (!c->json) {
			printf("rollout %s %s (revision %llu)\n",
			    specs[i]->name, result, (unsigned long long) rev);
		} else if ((one = apply_json(specs[i]->name, result, rev)) ==
		    NULL) {
			rv = SLUICE_ENOMEM;
		} else if (arr == NULL) {
			arr = one;
		} else if (json_array_append_new(arr, one) != 0) {
			rv = SLUICE_ENOMEM;
		}
		ctl_reply_free(rep);
		rep = NULL;
		if (rv != SLUICE_OK) {
			break;
		}
	}
	ctl_yaml_specs_free(specs, n);
	if (rv == SLUICE_OK && c->json) {
		rv  = ctl_json_print(arr);
		arr = NULL;
	}
	json_decref(arr);
	return (ctl_end(c, rv));
}

// ---------------------------------------------------------------- diff

static const char diff_usage[] =
    "usage: flagctl diff -f FILE [--json]\n"
    "\n"
    "Shows what 'flagctl apply -f FILE' would change on the server: the\n"
    "spec fields, and each flag's value per stage. Prints \"no changes\"\n"
    "when there is nothing to apply. Exits 0 whenever the comparison\n"
    "worked, whether or not there are differences (use --json and its\n"
    "\"changed\" member in scripts); 1 on errors.\n"
    "\n"
    "  -f, --file FILE   the rollout file (\"-\" for stdin)\n"
    "  --json            print {rollout, exists, changed, changes:[{what,\n"
    "                    before, after, current_stage}]} (an array for\n"
    "                    several rollouts)\n";

typedef struct diffs {
	json_t     *changes; // array of {what, before, after, current_stage}
	const char *name;
	bool        oom;
} diffs;

static void
diff_add(diffs *d, const char *what, const char *before, const char *after,
    bool current)
{
	json_t *o = json_object();

	if (o == NULL ||
	    json_object_set_new(o, "what", ctl_json_str(what)) != 0 ||
	    json_object_set_new(o, "before",
	        before != NULL ? ctl_json_str(before) : json_null()) != 0 ||
	    json_object_set_new(o, "after",
	        after != NULL ? ctl_json_str(after) : json_null()) != 0 ||
	    json_object_set_new(o, "current_stage", json_boolean(current)) !=
	        0 ||
	    json_array_append_new(d->changes, o) != 0) {
		d->oom = true;
	}
}

static void
join(char *const *v, size_t n, char *buf, size_t buflen)
{
	size_t i;
	size_t off = 0;

	buf[0] = '\0';
	for (i = 0; i < n && off < buflen; i++) {
		off += (size_t) snprintf(
		    buf + off, buflen - off, "%s%s", i > 0 ? ", " : "", v[i]);
	}
}

static void
diff_str(diffs *d, const char *what, const char *a, const char *b)
{
	if (strcmp(a, b) != 0) {
		diff_add(d, what, a, b, false);
	}
}

static void
diff_list(diffs *d, const char *what, char *const *a, size_t na,
    char *const *b, size_t nb)
{
	char ba[4096];
	char bb[4096];

	join(a, na, ba, sizeof(ba));
	join(b, nb, bb, sizeof(bb));
	diff_str(d, what, ba, bb);
}

static void
diff_duration(diffs *d, const char *what, uint64_t a, uint64_t b)
{
	char ba[64];
	char bb[64];

	if (a != b) {
		sl_duration_format(a, ba, sizeof(ba));
		sl_duration_format(b, bb, sizeof(bb));
		diff_add(d, what, ba, bb, false);
	}
}

static void
values_text(const Sluice__V1__Flag *f, char *buf, size_t buflen)
{
	char   v[VAL_BUF];
	size_t i;
	size_t off = 0;

	off += (size_t) snprintf(buf, buflen, "[");
	for (i = 0; i < f->n_values && off < buflen; i++) {
		sl_value_format(f->values[i], v, sizeof(v));
		off += (size_t) snprintf(
		    buf + off, buflen - off, "%s%s", i > 0 ? ", " : "", v);
	}
	if (off < buflen) {
		snprintf(buf + off, buflen - off, "]");
	}
}

static const Sluice__V1__Flag *
spec_flag(const Sluice__V1__RolloutSpec *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n_flags; i++) {
		if (strcmp(s->flags[i]->key, key) == 0) {
			return (s->flags[i]);
		}
	}
	return (NULL);
}

static const Sluice__V1__Gate *
spec_gate(const Sluice__V1__RolloutSpec *s, const char *stage)
{
	size_t i;

	for (i = 0; i < s->n_gates; i++) {
		if (strcmp(s->gates[i]->stage, stage) == 0) {
			return (s->gates[i]);
		}
	}
	return (NULL);
}

static void
gate_text(const Sluice__V1__Gate *g, char *buf, size_t buflen)
{
	char   t[512];
	size_t i;
	size_t off = 0;

	buf[0] = '\0';
	for (i = 0; i < g->n_conditions && off < buflen; i++) {
		sl_condition_format(g->conditions[i], t, sizeof(t));
		off += (size_t) snprintf(
		    buf + off, buflen - off, "%s%s", i > 0 ? "; " : "", t);
	}
	if (off < buflen) {
		char dl[64];

		sl_duration_format(g->deadline_seconds, dl, sizeof(dl));
		snprintf(buf + off, buflen - off,
		    "%swindow %u reports/%us, min_samples %u, "
		    "consecutive_failures %u, soak %u reports/%us, "
		    "auto_promote %s, deadline %s, on_inconclusive %s",
		    off > 0 ? "; " : "", g->window_reports, g->window_seconds,
		    g->min_samples, g->consecutive_failures, g->soak_reports,
		    g->soak_seconds, g->auto_promote ? "true" : "false", dl,
		    g->on_inconclusive ==
		            SLUICE__V1__ON_INCONCLUSIVE__INCONCLUSIVE_ROLLBACK
		        ? "rollback"
		        : "hold");
	}
}

// Every difference between the rollout on the server (r) and the new spec.
static void
diff_specs(
    diffs *d, const Sluice__V1__Rollout *r, const Sluice__V1__RolloutSpec *b)
{
	const Sluice__V1__RolloutSpec *a = r->spec;
	const Sluice__V1__Flag        *fa;
	const Sluice__V1__Flag        *fb;
	const Sluice__V1__Gate        *ga;
	const Sluice__V1__Gate        *gb;
	char                           what[256];
	char                           ta[4096];
	char                           tb[4096];
	char                           ra[4096];
	char                           rb[4096];
	size_t                         i;
	size_t                         off;
	size_t                         j;
	int                            ia;

	diff_str(d, "description", a->description, b->description);
	diff_str(d, "owner", a->owner, b->owner);
	diff_list(d, "datasets", a->datasets, a->n_datasets, b->datasets,
	    b->n_datasets);
	diff_list(d, "stages", a->stages, a->n_stages, b->stages, b->n_stages);
	ra[0] = rb[0] = '\0';
	for (i = 0, off = 0; i < a->n_requires && off < sizeof(ra); i++) {
		off += (size_t) snprintf(ra + off, sizeof(ra) - off,
		    "%s%s >= %s", i > 0 ? ", " : "", a->requires[i] -> rollout,
		    a -> requires[i] -> stage);
	}
	for (i = 0, off = 0; i < b->n_requires && off < sizeof(rb); i++) {
		off += (size_t) snprintf(rb + off, sizeof(rb) - off,
		    "%s%s >= %s", i > 0 ? ", " : "", b->requires[i] -> rollout,
		    b -> requires[i] -> stage);
	}
	diff_str(d, "requires", ra, rb);
	diff_duration(
	    d, "rollback_window", a->rollback_window_s, b->rollback_window_s);
	diff_duration(d, "max_stale", a->max_stale_s, b->max_stale_s);
	if (a->on_stale != b->on_stale) {
		diff_add(d, "on_stale",
		    a->on_stale == SLUICE__V1__STALE_POLICY__STALE_KEEP
		        ? "keep"
		        : "baseline",
		    b->on_stale == SLUICE__V1__STALE_POLICY__STALE_KEEP
		        ? "keep"
		        : "baseline",
		    false);
	}
	// Flags: removed ones, then the new file's flags in its order,
	// compared stage by stage by stage *name*.
	for (i = 0; i < a->n_flags; i++) {
		if (spec_flag(b, a->flags[i]->key) == NULL) {
			snprintf(
			    what, sizeof(what), "flag %s", a->flags[i]->key);
			values_text(a->flags[i], ta, sizeof(ta));
			diff_add(d, what, ta, NULL, false);
		}
	}
	for (i = 0; i < b->n_flags; i++) {
		fb = b->flags[i];
		if ((fa = spec_flag(a, fb->key)) == NULL) {
			snprintf(what, sizeof(what), "flag %s", fb->key);
			values_text(fb, tb, sizeof(tb));
			diff_add(d, what, NULL, tb, false);
			continue;
		}
		for (j = 0; j < fb->n_values && j < b->n_stages; j++) {
			ia = sl_stage_index(a, b->stages[j]);
			if (ia >= 0 && (size_t) ia < fa->n_values &&
			    sl_value_equal(fa->values[ia], fb->values[j])) {
				continue;
			}
			snprintf(what, sizeof(what), "flag %s @%s", fb->key,
			    b->stages[j]);
			sl_value_format(fb->values[j], tb, sizeof(tb));
			if (ia >= 0 && (size_t) ia < fa->n_values) {
				sl_value_format(
				    fa->values[ia], ta, sizeof(ta));
			}
			diff_add(d, what,
			    ia >= 0 && (size_t) ia < fa->n_values ? ta : NULL,
			    tb, ia >= 0 && (uint32_t) ia == r->stage);
		}
	}
	for (i = 0; i < a->n_gates; i++) {
		if (spec_gate(b, a->gates[i]->stage) == NULL) {
			snprintf(what, sizeof(what), "gate @%s",
			    a->gates[i]->stage);
			gate_text(a->gates[i], ta, sizeof(ta));
			diff_add(d, what, ta, NULL, false);
		}
	}
	for (i = 0; i < b->n_gates; i++) {
		gb = b->gates[i];
		ga = spec_gate(a, gb->stage);
		if (ga != NULL && sl_message_equal(&ga->base, &gb->base)) {
			continue;
		}
		snprintf(what, sizeof(what), "gate @%s", gb->stage);
		gate_text(gb, tb, sizeof(tb));
		if (ga != NULL) {
			gate_text(ga, ta, sizeof(ta));
		}
		diff_add(d, what, ga != NULL ? ta : NULL, tb, false);
	}
}

static json_t *
diff_one(ctl *c, const Sluice__V1__RolloutSpec *s, int *rvp)
{
	Sluice__V1__Reply *rep = NULL;
	diffs              d;
	json_t            *o;
	bool               exists;
	size_t             i;
	char               what[128];
	int                rv;

	d.name    = s->name;
	d.oom     = false;
	d.changes = json_array();
	rv        = ctl_get_rollout(c, s->name, &rep);
	exists    = rv == SLUICE_OK;
	if (rv != SLUICE_OK && rv != SLUICE_ENOENT) {
		snprintf(what, sizeof(what), "rollout \"%s\"", s->name);
		json_decref(d.changes);
		*rvp = ctl_fail_call(c, rv, rep, what);
		return (NULL);
	}
	if (exists && !sl_message_equal(&rep->rollout->spec->base, &s->base)) {
		diff_specs(&d, rep->rollout, s);
	}
	if ((o = json_object()) == NULL || d.changes == NULL || d.oom ||
	    json_object_set_new(o, "rollout", ctl_json_str(s->name)) != 0 ||
	    json_object_set_new(o, "exists", json_boolean(exists)) != 0 ||
	    json_object_set_new(o, "changed",
	        json_boolean(!exists || json_array_size(d.changes) > 0)) !=
	        0 ||
	    json_object_set_new(o, "changes", json_incref(d.changes)) != 0) {
		json_decref(o);
		json_decref(d.changes);
		ctl_reply_free(rep);
		*rvp = ctl_fail(c, "%s", sluice_strerror(SLUICE_ENOMEM));
		return (NULL);
	}
	if (!c->json) {
		if (!exists) {
			printf("rollout %s: new (apply creates it: %zu "
			       "stages, %zu flags)\n",
			    s->name, s->n_stages, s->n_flags);
		} else if (json_array_size(d.changes) == 0) {
			printf("rollout %s: no changes (revision %llu)\n",
			    s->name,
			    (unsigned long long) rep->rollout->revision);
		} else {
			printf("rollout %s: %zu change%s\n", s->name,
			    json_array_size(d.changes),
			    json_array_size(d.changes) == 1 ? "" : "s");
		}
		for (i = 0; i < json_array_size(d.changes); i++) {
			json_t *ch = json_array_get(d.changes, i);
			json_t *b  = json_object_get(ch, "before");
			json_t *a  = json_object_get(ch, "after");

			printf("  %s: %s \u2192 %s%s\n",
			    json_string_value(json_object_get(ch, "what")),
			    json_is_string(b) ? json_string_value(b)
			                      : "(none)",
			    json_is_string(a) ? json_string_value(a)
			                      : "(none)",
			    json_is_true(json_object_get(ch, "current_stage"))
			        ? "  (current stage: apply needs --force)"
			        : "");
		}
	}
	json_decref(d.changes);
	ctl_reply_free(rep);
	*rvp = CTL_EXIT_OK;
	return (o);
}

int
ctl_cmd_diff(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	Sluice__V1__RolloutSpec **specs = NULL;
	const char               *file  = NULL;
	json_t                   *arr   = NULL;
	json_t                   *one;
	size_t                    n = 0;
	size_t                    i;
	int                       o;
	int                       ex = CTL_EXIT_OK;
	int                       rv;

	c->usage = diff_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":f:h", opts, NULL)) != -1) {
		if (o == 'f') {
			file = optarg;
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if ((ex = read_specs(c, argc, argv, file, &specs, &n)) >= 0) {
		return (ex);
	}
	if (n > 1 && (arr = json_array()) == NULL) {
		ctl_yaml_specs_free(specs, n);
		return (ctl_fail(c, "%s", sluice_strerror(SLUICE_ENOMEM)));
	}
	ex = CTL_EXIT_OK;
	for (i = 0; i < n && ex == CTL_EXIT_OK; i++) {
		if ((one = diff_one(c, specs[i], &ex)) == NULL) {
			break;
		}
		if (arr == NULL) {
			arr = one;
		} else if (json_array_append_new(arr, one) != 0) {
			ex = ctl_fail(c, "%s", sluice_strerror(SLUICE_ENOMEM));
		}
	}
	ctl_yaml_specs_free(specs, n);
	if (ex == CTL_EXIT_OK && c->json) {
		rv  = ctl_json_print(arr);
		arr = NULL;
		if (rv != SLUICE_OK) {
			ex = ctl_fail(c, "%s", sluice_strerror(rv));
		}
	}
	json_decref(arr);
	return (ex);
}

// ---------------------------------------------------------------- export

// Parses the arguments of export and status (common options, [ROLLOUT])
// and fetches the rollout named (into rep->rollout), or every rollout
// (into rep->list) when none is. Returns -1 when the verb goes on, else
// the exit code it must return at once.
static int
fetch_rollouts(ctl *c, int argc, char **argv, Sluice__V1__Reply **repp)
{
	char what[128];
	int  ex;
	int  rv;

	if ((ex = ctl_parse_common(c, argc, argv, 0, 1)) >= 0) {
		return (ex);
	}
	if (optind >= argc) {
		if ((rv = ctl_list_rollouts(c, repp)) != SLUICE_OK) {
			return (ctl_fail_call(c, rv, *repp, NULL));
		}
		return (-1);
	}
	snprintf(what, sizeof(what), "rollout \"%s\"", argv[optind]);
	if ((rv = ctl_get_rollout(c, argv[optind], repp)) != SLUICE_OK) {
		return (ctl_fail_call(c, rv, *repp, what));
	}
	return (-1);
}

static const char export_usage[] =
    "usage: flagctl export [ROLLOUT] [--json]\n"
    "\n"
    "Prints a rollout's spec in the rollout file format (all rollouts,\n"
    "one YAML document each, without ROLLOUT). 'flagctl apply -f' of the\n"
    "output changes nothing.\n"
    "\n"
    "  --json   print the spec as JSON instead (an array without ROLLOUT)\n";

int
ctl_cmd_export(ctl *c, int argc, char **argv)
{
	Sluice__V1__Reply        *rep = NULL;
	Sluice__V1__RolloutSpec **specs;
	Sluice__V1__RolloutSpec  *one;
	json_t                   *j = NULL;
	char                     *out;
	size_t                    n;
	size_t                    len;
	size_t                    i;
	int                       ex;
	int                       rv;

	c->usage = export_usage;
	if ((ex = fetch_rollouts(c, argc, argv, &rep)) >= 0) {
		return (ex);
	}
	if (optind < argc) {
		one   = rep->rollout->spec;
		specs = &one;
		n     = 1;
	} else {
		// The list holds rollouts; export wants their specs.
		n     = rep->list->n_rollouts;
		specs = calloc(n > 0 ? n : 1, sizeof(*specs));
		if (specs == NULL) {
			ctl_reply_free(rep);
			return (
			    ctl_fail(c, "%s", sluice_strerror(SLUICE_ENOMEM)));
		}
		for (i = 0; i < n; i++) {
			specs[i] = rep->list->rollouts[i]->spec;
		}
	}
	if (c->json) {
		j  = optind < argc ? ctl_json_spec(specs[0]) : json_array();
		rv = j == NULL ? SLUICE_ENOMEM : SLUICE_OK;
		for (i = 0; rv == SLUICE_OK && optind >= argc && i < n; i++) {
			if (json_array_append_new(
			        j, ctl_json_spec(specs[i])) != 0) {
				rv = SLUICE_ENOMEM;
			}
		}
		if (rv == SLUICE_OK) {
			rv = ctl_json_print(j);
		} else {
			json_decref(j);
		}
	} else if (n == 0) {
		rv = SLUICE_OK;
		fprintf(stderr, "flagctl: no rollouts on the server\n");
	} else if ((rv = ctl_yaml_emit(specs, n, &out, &len)) == SLUICE_OK) {
		if (fwrite(out, 1, len, stdout) != len ||
		    fflush(stdout) != 0) {
			rv = SLUICE_EIO;
		}
		free(out);
	}
	if (specs != &one) {
		free(specs);
	}
	ctl_reply_free(rep);
	if (rv != SLUICE_OK) {
		return (ctl_fail(c, "export: %s", sluice_strerror(rv)));
	}
	return (CTL_EXIT_OK);
}

// ---------------------------------------------------------------- list

static const char list_usage[] =
    "usage: flagctl list [--json]\n"
    "\n"
    "Lists the rollouts: name, stage, state, revision, owner.\n"
    "\n"
    "  --json   print {revision, rollouts:[{rollout, stage, stage_index,\n"
    "           stages, state, revision, owner}]}\n";

// One rollout of the --json list.
static json_t *
list_json(const Sluice__V1__Rollout *r)
{
	json_t *o = json_object();
	char    b[32];

	if (o != NULL &&
	    (json_object_set_new(o, "rollout", ctl_json_str(r->spec->name)) ||
	        json_object_set_new(o, "stage",
	            ctl_json_str(
	                ctl_stage_name(r->spec, r->stage, b, sizeof(b)))) ||
	        json_object_set_new(
	            o, "stage_index", json_integer(r->stage)) ||
	        json_object_set_new(o, "stages",
	            json_integer((json_int_t) r->spec->n_stages)) ||
	        json_object_set_new(
	            o, "state", json_string(sl_state_name(r->state))) ||
	        json_object_set_new(
	            o, "revision", json_integer((json_int_t) r->revision)) ||
	        json_object_set_new(
	            o, "owner", ctl_json_str(r->spec->owner)))) {
		json_decref(o);
		o = NULL;
	}
	return (o);
}

int
ctl_cmd_list(ctl *c, int argc, char **argv)
{
	Sluice__V1__Reply *rep = NULL;
	json_t            *arr;
	char               st[96];
	char               b[32];
	size_t             i;
	int                ex;
	int                rv;

	c->usage = list_usage;
	if ((ex = ctl_parse_common(c, argc, argv, 0, 0)) >= 0) {
		return (ex);
	}
	if ((rv = ctl_list_rollouts(c, &rep)) != SLUICE_OK) {
		return (ctl_fail_call(c, rv, rep, NULL));
	}
	if (c->json) {
		arr = json_array();
		for (i = 0; i < rep->list->n_rollouts; i++) {
			ctl_json_push(&arr, list_json(rep->list->rollouts[i]));
		}
		rv = ctl_json_print(
		    ctl_json_listing(rep->revision, "rollouts", arr));
		ctl_reply_free(rep);
		return (ctl_end(c, rv));
	}
	if (rep->list->n_rollouts == 0) {
		printf("no rollouts (revision %llu)\n",
		    (unsigned long long) rep->revision);
	} else {
		printf("%-32s %-20s %-12s %-8s %s\n", "ROLLOUT", "STAGE",
		    "STATE", "REV", "OWNER");
	}
	for (i = 0; i < rep->list->n_rollouts; i++) {
		const Sluice__V1__Rollout *r = rep->list->rollouts[i];

		snprintf(st, sizeof(st), "%s (%u/%zu)",
		    ctl_stage_name(r->spec, r->stage, b, sizeof(b)),
		    (unsigned) r->stage,
		    r->spec->n_stages > 0 ? r->spec->n_stages - 1 : 0);
		printf("%-32s %-20s %-12s %-8llu %s\n", r->spec->name, st,
		    sl_state_name(r->state), (unsigned long long) r->revision,
		    r->spec->owner);
	}
	ctl_reply_free(rep);
	return (CTL_EXIT_OK);
}

// ---------------------------------------------------------------- status

static const char status_usage[] =
    "usage: flagctl status [ROLLOUT] [--json]\n"
    "\n"
    "Shows where a rollout stands (every rollout without ROLLOUT): the\n"
    "stage, the effective last good stage, the state, the revision, when\n"
    "the current stage settles (becomes last good once it has held for\n"
    "the rollback window), and every flag's current value.\n"
    "\n"
    "  --json   print {rollout, stage, stage_index, last_good,\n"
    "           last_good_index, state, revision, stage_since, settles_at,\n"
    "           stages, flags:[{key, kind, value}]}; without ROLLOUT\n"
    "           {revision, rollouts:[...]}\n";

int
ctl_cmd_status(ctl *c, int argc, char **argv)
{
	Sluice__V1__Reply *rep = NULL;
	json_t            *arr;
	uint64_t           now = sl_now_ms();
	size_t             i;
	int                ex;
	int                rv;

	c->usage = status_usage;
	if ((ex = fetch_rollouts(c, argc, argv, &rep)) >= 0) {
		return (ex);
	}
	if (optind < argc) {
		if (c->json) {
			rv =
			    ctl_json_print(ctl_json_status(rep->rollout, now));
		} else {
			ctl_print_status(stdout, rep->rollout, now);
			rv = SLUICE_OK;
		}
		ctl_reply_free(rep);
		return (ctl_end(c, rv));
	}
	if (c->json) {
		arr = json_array();
		for (i = 0; i < rep->list->n_rollouts; i++) {
			ctl_json_push(&arr,
			    ctl_json_status(rep->list->rollouts[i], now));
		}
		rv = ctl_json_print(
		    ctl_json_listing(rep->revision, "rollouts", arr));
		ctl_reply_free(rep);
		return (ctl_end(c, rv));
	}
	if (rep->list->n_rollouts == 0) {
		printf("no rollouts (revision %llu)\n",
		    (unsigned long long) rep->revision);
	}
	for (i = 0; i < rep->list->n_rollouts; i++) {
		if (i > 0) {
			putchar('\n');
		}
		ctl_print_status(stdout, rep->list->rollouts[i], now);
	}
	ctl_reply_free(rep);
	return (CTL_EXIT_OK);
}

// ---------------------------------------------------------------- get

static const char get_usage[] =
    "usage: flagctl get FLAG [--unit UNIT] [--rollout ROLLOUT] [--json]\n"
    "\n"
    "Prints a flag's value at its rollout's current stage. For a\n"
    "percentage flag, --unit UNIT prints on or off for that unit, with\n"
    "its bucket (0..9999; on when bucket < percentage in basis points);\n"
    "without --unit the percentage itself. When several rollouts have a\n"
    "flag of that name, name one with --rollout.\n"
    "\n"
    "  --unit UNIT         evaluate for this unit (table, partition, run)\n"
    "  --rollout ROLLOUT   the rollout the flag belongs to\n"
    "  --json              print {rollout, flag, stage, kind, value[,\n"
    "                      unit, bucket, on]}\n";

int
ctl_cmd_get(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "unit", required_argument, NULL, CTL_OPT_VERB_BASE },
		{ "rollout", required_argument, NULL, CTL_OPT_VERB_BASE + 1 },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	Sluice__V1__Reply           *rep   = NULL;
	const Sluice__V1__Rollout   *found = NULL;
	const Sluice__V1__Flag      *fl    = NULL;
	const Sluice__V1__FlagValue *v;
	const char                  *unit    = NULL;
	const char                  *rollout = NULL;
	const char                  *key;
	json_t                      *j;
	char                         val[VAL_BUF];
	char                         names[512];
	char                         b[32];
	size_t                       i;
	size_t                       hits   = 0;
	size_t                       off    = 0;
	unsigned                     bucket = 0;
	bool                         on     = false;
	int                          o;
	int                          ex;
	int                          rv;

	c->usage = get_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == CTL_OPT_VERB_BASE) {
			unit = optarg;
		} else if (o == CTL_OPT_VERB_BASE + 1) {
			rollout = optarg;
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if ((ex = ctl_operands(c, argc, argv, 1, 1, "FLAG")) >= 0) {
		return (ex);
	}
	key = argv[optind];
	if ((rv = ctl_list_rollouts(c, &rep)) != SLUICE_OK) {
		return (ctl_fail_call(c, rv, rep, NULL));
	}
	names[0] = '\0';
	for (i = 0; i < rep->list->n_rollouts; i++) {
		const Sluice__V1__Rollout *r = rep->list->rollouts[i];
		const Sluice__V1__Flag    *f = sl_rollout_flag(r, key);

		if (f == NULL ||
		    (rollout != NULL && strcmp(r->spec->name, rollout) != 0)) {
			continue;
		}
		if (off < sizeof(names)) {
			off +=
			    (size_t) snprintf(names + off, sizeof(names) - off,
			        "%s%s", hits > 0 ? ", " : "", r->spec->name);
		}
		hits++;
		found = r;
		fl    = f;
	}
	if (hits == 0) {
		ctl_reply_free(rep);
		if (rollout != NULL) {
			return (ctl_fail(c,
			    "flag \"%s\" not found in rollout "
			    "\"%s\"",
			    key, rollout));
		}
		return (ctl_fail(c, "flag \"%s\" not found", key));
	}
	if (hits > 1) {
		ctl_reply_free(rep);
		return (ctl_fail(c,
		    "flag \"%s\" is in several rollouts (%s); name one with "
		    "--rollout",
		    key, names));
	}
	if (found->stage >= fl->n_values) {
		ctl_reply_free(rep);
		return (ctl_fail(
		    c, "unexpected answer from %s", sl_rpc_endpoint(c->rpc)));
	}
	v = fl->values[found->stage];
	sl_value_format(v, val, sizeof(val));
	if (unit != NULL &&
	    v->kind_case == SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP) {
		bucket = sluice_bucket(found->spec->name, unit, strlen(unit));
		on     = sl_value_on(found->spec->name, v, unit, strlen(unit));
	}
	if (c->json) {
		j = json_object();
		if (j != NULL &&
		    (json_object_set_new(
		         j, "rollout", ctl_json_str(found->spec->name)) ||
		        json_object_set_new(j, "flag", ctl_json_str(key)) ||
		        json_object_set_new(j, "stage",
		            ctl_json_str(ctl_stage_name(
		                found->spec, found->stage, b, sizeof(b)))) ||
		        json_object_set_new(
		            j, "kind", json_string(sl_value_kind(v))) ||
		        json_object_set_new(j, "value", ctl_json_value(v)) ||
		        json_object_set_new(j, "revision",
		            json_integer((json_int_t) rep->revision)))) {
			json_decref(j);
			j = NULL;
		}
		if (j != NULL && unit != NULL &&
		    (json_object_set_new(j, "unit", ctl_json_str(unit)) ||
		        json_object_set_new(j, "on",
		            json_boolean(sl_value_on(
		                found->spec->name, v, unit, strlen(unit)))) ||
		        (v->kind_case ==
		                SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP &&
		            json_object_set_new(
		                j, "bucket", json_integer(bucket))))) {
			json_decref(j);
			j = NULL;
		}
		ctl_reply_free(rep);
		return (ctl_end(c, ctl_json_print(j)));
	}
	if (unit != NULL &&
	    v->kind_case == SLUICE__V1__FLAG_VALUE__KIND_PERCENT_BP) {
		printf("%s (bucket %u; on below %u at %s)\n",
		    on ? "on" : "off", bucket, (unsigned) v->percent_bp, val);
	} else {
		printf("%s\n", val);
	}
	ctl_reply_free(rep);
	return (CTL_EXIT_OK);
}

// ---------------------------------------------------------------- moves

// Sends cmd and prints the rollout's new position. verb_done is what
// happened ("promoted", "paused", ...).
static int
move(ctl *c, Sluice__V1__Command *cmd, const char *name, const char *reason,
    const char *verb_done)
{
	Sluice__V1__Reply         *rep = NULL;
	const Sluice__V1__Rollout *r;
	json_t                    *j;
	char                       what[128];
	char                       b[32];
	int                        rv;

	snprintf(what, sizeof(what), "rollout \"%s\"", name);
	if ((rv = ctl_write(c, cmd, reason, &rep)) != SLUICE_OK) {
		return (ctl_fail_call(c, rv, rep, what));
	}
	r = rep->write->rollout;
	if (c->json) {
		j = r != NULL && r->spec != NULL
		    ? ctl_json_status(r, sl_now_ms())
		    : json_object();
		if (j != NULL &&
		    (json_object_set_new(
		         j, "changed", json_boolean(rep->write->changed)) ||
		        json_object_set_new(j, "write_revision",
		            json_integer((json_int_t) rep->revision)))) {
			json_decref(j);
			j = NULL;
		}
		ctl_reply_free(rep);
		return (ctl_end(c, ctl_json_print(j)));
	}
	if (r != NULL && r->spec != NULL) {
		printf("rollout %s %s%s: stage %s (%u), %s, revision %llu\n",
		    name, rep->write->changed ? "" : "unchanged; ",
		    rep->write->changed ? verb_done : "already there",
		    ctl_stage_name(r->spec, r->stage, b, sizeof(b)),
		    (unsigned) r->stage, sl_state_name(r->state),
		    (unsigned long long) r->revision);
	} else {
		printf("rollout %s %s (revision %llu)\n", name, verb_done,
		    (unsigned long long) rep->revision);
	}
	ctl_reply_free(rep);
	return (CTL_EXIT_OK);
}

static const char promote_usage[] =
    "usage: flagctl promote ROLLOUT [--to STAGE] [--reason TEXT] [--json]\n"
    "\n"
    "Moves a rollout forward to the next stage, or to STAGE. All its\n"
    "flags change in one audited write. Prerequisites must be met.\n"
    "\n"
    "  --to STAGE      the stage to move to (default: the next one)\n"
    "  --reason TEXT   recorded in the audit log\n"
    "  --json          print the rollout's status after the write\n";

static const char rollback_usage[] =
    "usage: flagctl rollback ROLLOUT [--to STAGE] [--reason TEXT] [--json]\n"
    "\n"
    "Moves a rollout back to its last good stage, or to STAGE, in one\n"
    "audited write.\n"
    "\n"
    "  --to STAGE      the stage to move to (default: the last good one)\n"
    "  --reason TEXT   recorded in the audit log\n"
    "  --json          print the rollout's status after the write\n";

// Parses the arguments the verbs that move one rollout share: ROLLOUT,
// --reason TEXT and, when to_opt is not NULL, the option naming where to
// (--to STAGE, --to-revision R), whose value goes to *top. Returns -1 when
// the verb goes on, else the exit code it must return at once.
static int
move_args(ctl *c, int argc, char **argv, const char *to_opt, const char **top,
    const char **reasonp)
{
	// Without to_opt the table starts at "reason", so that --to is
	// unknown to pause and resume.
	const struct option opts[] = {
		{ to_opt, required_argument, NULL, CTL_OPT_VERB_BASE },
		{ "reason", required_argument, NULL, CTL_OPT_VERB_BASE + 1 },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	int o;
	int ex;

	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h",
	            to_opt != NULL ? opts : opts + 1, NULL)) != -1) {
		if (o == CTL_OPT_VERB_BASE) {
			*top = optarg;
		} else if (o == CTL_OPT_VERB_BASE + 1) {
			*reasonp = optarg;
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	return (ctl_operands(c, argc, argv, 1, 1, "ROLLOUT"));
}

static const char pause_usage[] =
    "usage: flagctl pause ROLLOUT [--reason TEXT] [--json]\n"
    "\n"
    "Pauses a rollout: it keeps its stage, gates stop promoting it and it\n"
    "does not settle, until 'flagctl resume'.\n";

static const char resume_usage[] =
    "usage: flagctl resume ROLLOUT [--reason TEXT] [--json]\n"
    "\n"
    "Resumes a paused or rolled-back rollout.\n";

typedef enum {
	MOVE_PROMOTE,
	MOVE_ROLLBACK,
	MOVE_PAUSE,
	MOVE_RESUME,
} move_kind;

// promote, rollback, pause and resume: ROLLOUT, --reason and, for the
// first two, --to STAGE, turned into one command for move().
static int
move_verb(ctl *c, int argc, char **argv, move_kind k)
{
	static const char *const usage[] = { promote_usage, rollback_usage,
		pause_usage, resume_usage };
	static const char *const done[]  = { "promoted", "rolled back",
		 "paused", "resumed" };
	Sluice__V1__Command      cmd;
	Sluice__V1__Promote      pr;
	Sluice__V1__Rollback     rb;
	Sluice__V1__Pause        pa;
	Sluice__V1__Resume       re;
	const char              *to     = NULL;
	const char              *reason = NULL;
	char                    *name;
	int                      ex;

	sluice__v1__command__init(&cmd);
	sluice__v1__promote__init(&pr);
	sluice__v1__rollback__init(&rb);
	sluice__v1__pause__init(&pa);
	sluice__v1__resume__init(&re);
	c->usage = usage[k];
	if ((ex = move_args(c, argc, argv,
	         k == MOVE_PROMOTE || k == MOVE_ROLLBACK ? "to" : NULL, &to,
	         &reason)) >= 0) {
		return (ex);
	}
	name = argv[optind];
	switch (k) {
	case MOVE_PROMOTE:
		pr.rollout = name;
		pr.to_stage =
		    to != NULL ? (char *) (uintptr_t) to : pr.to_stage;
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_PROMOTE;
		cmd.promote     = &pr;
		break;
	case MOVE_ROLLBACK:
		rb.rollout = name;
		rb.to_stage =
		    to != NULL ? (char *) (uintptr_t) to : rb.to_stage;
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_ROLLBACK;
		cmd.rollback    = &rb;
		break;
	case MOVE_PAUSE:
		pa.rollout      = name;
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_PAUSE;
		cmd.pause       = &pa;
		break;
	case MOVE_RESUME:
		re.rollout      = name;
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_RESUME;
		cmd.resume      = &re;
		break;
	}
	return (move(c, &cmd, name, reason, done[k]));
}

int
ctl_cmd_promote(ctl *c, int argc, char **argv)
{
	return (move_verb(c, argc, argv, MOVE_PROMOTE));
}

int
ctl_cmd_rollback(ctl *c, int argc, char **argv)
{
	return (move_verb(c, argc, argv, MOVE_ROLLBACK));
}

int
ctl_cmd_pause(ctl *c, int argc, char **argv)
{
	return (move_verb(c, argc, argv, MOVE_PAUSE));
}

int
ctl_cmd_resume(ctl *c, int argc, char **argv)
{
	return (move_verb(c, argc, argv, MOVE_RESUME));
}

static const char revert_usage[] =
    "usage: flagctl revert ROLLOUT --to-revision R [--reason TEXT] "
    "[--json]\n"
    "\n"
    "Restores a rollout exactly as it was at revision R (spec, stage and\n"
    "state), as one new audited revision. See 'flagctl history ROLLOUT'\n"
    "for the revisions.\n";

int
ctl_cmd_revert(ctl *c, int argc, char **argv)
{
	Sluice__V1__Command cmd;
	Sluice__V1__Revert  rv_;
	const char         *reason = NULL;
	const char         *revs   = NULL;
	uint64_t            rev    = 0;
	char                done[64];
	int                 ex;

	sluice__v1__command__init(&cmd);
	sluice__v1__revert__init(&rv_);
	c->usage = revert_usage;
	if ((ex = move_args(c, argc, argv, "to-revision", &revs, &reason)) >=
	    0) {
		return (ex);
	}
	if (revs == NULL) {
		return (ctl_usage(c, "missing --to-revision R"));
	}
	if (ctl_parse_u64(revs, &rev) != SLUICE_OK || rev == 0) {
		return (ctl_usage(c,
		    "--to-revision wants a revision number, "
		    "not \"%s\"",
		    revs));
	}
	rv_.rollout     = argv[optind];
	rv_.revision    = rev;
	cmd.action_case = SLUICE__V1__COMMAND__ACTION_REVERT;
	cmd.revert      = &rv_;
	snprintf(done, sizeof(done), "reverted to revision %llu",
	    (unsigned long long) rev);
	return (move(c, &cmd, argv[optind], reason, done));
}
