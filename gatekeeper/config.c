/* SPDX-License-Identifier: MIT */
/*
 * config.c — gatekeeper's configuration table: each option's name, type,
 * bounds, default and field; used for defaults, the environment
 * (GATEKEEPER_<NAME>, dashes as underscores), argv and --help.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

typedef enum { T_STR, T_U64 } opt_type;

typedef struct opt {
	const char *name;
	opt_type    type;
	uint64_t    min, max;
	const char *def;
	size_t      off, size;
	const char *help;
} opt;

#define S(f) offsetof(gk_config, f), sizeof(((gk_config *) 0)->f)

static const opt opts[] = {
	{ "api", T_STR, 0, 0, "tcp://127.0.0.1:7500", S(api_url),
	    "report API URL (nng REP)" },
	{ "http", T_STR, 0, 0, "http://127.0.0.1:7580", S(http_url),
	    "HTTP URL for /metrics /healthz /readyz (\"\" = none)" },
	{ "flagd", T_STR, 0, 0, "tcp://127.0.0.1:7400", S(flagd),
	    "flagd API URLs, comma-separated" },
	{ "key", T_STR, 0, 0, "", S(key_file),
	    "gatekeeper's operator key file (required)" },
	{ "data", T_STR, 0, 0, "", S(data_dir),
	    "directory for gatekeeper's LMDB (required)" },
	{ "log-level", T_STR, 0, 0, "notice", S(log_level),
	    "err|warn|notice|info|debug" },
	{ "contexts", T_U64, 1, 256, "8", S(contexts),
	    "concurrent API workers" },
	{ "skew-ms", T_U64, 1000, 86400000, "300000", S(skew_ms),
	    "allowed report clock skew" },
	{ "tick-ms", T_U64, 50, 60000, "500", S(tick_ms),
	    "period of timed gate evaluations" },
	{ "drain-ms", T_U64, 0, 60000, "2000", S(drain_ms),
	    "shutdown drain budget" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int
set(gk_config *c, const opt *o, const char *v)
{
	char *p = (char *) c + o->off;

	if (o->type == T_STR) {
		if (strlen(v) >= o->size) {
			fprintf(
			    stderr, "gatekeeper: --%s: too long\n", o->name);
			return (SLUICE_EINVAL);
		}
		memcpy(p, v, strlen(v) + 1);
		return (SLUICE_OK);
	}
	char              *end;
	unsigned long long n;
	errno = 0;
	n     = strtoull(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || v[0] == '-' ||
	    n < o->min || n > o->max) {
		fprintf(stderr,
		    "gatekeeper: --%s: want %llu..%llu, got \"%s\"\n", o->name,
		    (unsigned long long) o->min, (unsigned long long) o->max,
		    v);
		return (SLUICE_EINVAL);
	}
	memcpy(p, &(uint64_t) { n }, sizeof(uint64_t));
	return (SLUICE_OK);
}

void
gk_config_defaults(gk_config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NOPTS; i++) {
		(void) set(c, &opts[i], opts[i].def);
	}
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: gatekeeper --flagd URL[,URL...] --key FILE "
	    "--data DIR [options]\n\noptions (also GATEKEEPER_<NAME> "
	    "in the environment):\n");
	for (size_t i = 0; i < NOPTS; i++) {
		fprintf(f, "  --%-10s %s (default \"%s\")\n", opts[i].name,
		    opts[i].help, opts[i].def);
	}
}

static const opt *
find(const char *name, size_t len)
{
	for (size_t i = 0; i < NOPTS; i++) {
		if (strlen(opts[i].name) == len &&
		    strncmp(opts[i].name, name, len) == 0) {
			return (&opts[i]);
		}
	}
	return (NULL);
}

int
gk_config_parse(gk_config *c, int argc, char **argv)
{
	for (size_t i = 0; i < NOPTS; i++) {
		char        env[64] = "GATEKEEPER_";
		const char *v;
		size_t      k = strlen(env);
		for (const char *p = opts[i].name; *p && k < sizeof(env) - 1;
		     p++) {
			env[k++] = *p == '-' ? '_' : (char) toupper(*p);
		}
		env[k] = '\0';
		if ((v = getenv(env)) != NULL &&
		    set(c, &opts[i], v) != SLUICE_OK) {
			return (GK_CONFIG_USAGE);
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *v;
		const opt  *o;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return (GK_CONFIG_EXIT_OK);
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "gatekeeper: unexpected \"%s\"\n", a);
			usage(stderr);
			return (GK_CONFIG_USAGE);
		}
		a += 2;
		eq = strchr(a, '=');
		if ((o = find(a, eq ? (size_t) (eq - a) : strlen(a))) ==
		    NULL) {
			fprintf(
			    stderr, "gatekeeper: unknown option --%s\n", a);
			usage(stderr);
			return (GK_CONFIG_USAGE);
		}
		if (eq != NULL) {
			v = eq + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			fprintf(stderr, "gatekeeper: --%s needs a value\n",
			    o->name);
			return (GK_CONFIG_USAGE);
		}
		if (set(c, o, v) != SLUICE_OK) {
			return (GK_CONFIG_USAGE);
		}
	}
	if (c->key_file[0] == '\0' || c->data_dir[0] == '\0' ||
	    c->flagd[0] == '\0') {
		fprintf(stderr,
		    "gatekeeper: --flagd, --key and --data are "
		    "required\n");
		usage(stderr);
		return (GK_CONFIG_USAGE);
	}
	return (GK_CONFIG_OK);
}
