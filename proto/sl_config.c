// SPDX-License-Identifier: MIT
//
// sl_config.c — a daemon's settings from one table (sl_config.h):
// defaults, then the environment, then argv; --help and --print-config
// print from the same table.

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sl_config.h"

#define SL_CONF_OPT_BASE 1000

static void *
field(void *cfg, const sl_conf_item *it)
{
	return ((char *) cfg + it->off);
}

static const void *
cfield(const void *cfg, const sl_conf_item *it)
{
	return ((const char *) cfg + it->off);
}

// 0, or -1 after a message naming where the value came from.
static int
set_item(const sl_conf *t, void *cfg, const sl_conf_item *it, const char *val,
    const char *origin)
{
	switch (it->type) {
	case SL_CONF_STR: {
		char **p = field(cfg, it);
		char  *v = strdup(val);

		if (v == NULL) {
			fprintf(stderr, "%s: out of memory\n", t->prog);
			return (-1);
		}
		free(*p);
		*p = v;
		return (0);
	}
	case SL_CONF_BOOL: {
		bool *p = field(cfg, it);

		if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0 ||
		    strcmp(val, "yes") == 0) {
			*p = true;
		} else if (strcmp(val, "false") == 0 ||
		    strcmp(val, "0") == 0 || strcmp(val, "no") == 0) {
			*p = false;
		} else {
			fprintf(stderr,
			    "%s: %s: --%s wants true or false, not \"%s\"\n",
			    t->prog, origin, it->name, val);
			return (-1);
		}
		return (0);
	}
	case SL_CONF_U64: {
		uint64_t          *p = field(cfg, it);
		char              *end;
		unsigned long long v;

		errno = 0;
		v     = strtoull(val, &end, 10);
		if (errno != 0 || end == val || *end != '\0' ||
		    val[0] == '-' || v < it->min || v > it->max) {
			fprintf(stderr,
			    "%s: %s: --%s wants a whole number in [%llu, "
			    "%llu], not \"%s\"\n",
			    t->prog, origin, it->name,
			    (unsigned long long) it->min,
			    (unsigned long long) it->max, val);
			return (-1);
		}
		*p = (uint64_t) v;
		return (0);
	}
	}
	return (-1);
}

void
sl_conf_defaults(const sl_conf *t, void *cfg)
{
	for (size_t i = 0; i < t->nitems; i++) {
		if (set_item(t, cfg, &t->items[i], t->items[i].def,
		        "default") != 0) {
			// A table whose own default does not parse.
			sl_panic(__FILE__, __LINE__, t->items[i].name);
		}
	}
}

void
sl_conf_fini(const sl_conf *t, void *cfg)
{
	for (size_t i = 0; i < t->nitems; i++) {
		if (t->items[i].type == SL_CONF_STR) {
			char **p = field(cfg, &t->items[i]);
			free(*p);
			*p = NULL;
		}
	}
}

static void
env_name(const sl_conf *t, const char *name, char *buf, size_t len)
{
	size_t i = (size_t) snprintf(buf, len, "%s", t->env_prefix);

	for (; *name != '\0' && i + 1 < len; name++, i++) {
		buf[i] = (*name == '-')
		    ? '_'
		    : (char) ((*name >= 'a' && *name <= 'z')
		              ? *name - 'a' + 'A'
		              : *name);
	}
	buf[i < len ? i : len - 1] = '\0';
}

static void
usage(const sl_conf *t, FILE *f)
{
	char env[96];

	fprintf(f,
	    "usage: %s [OPTIONS]\n\n%s\n"
	    "Each option may also be set as an environment variable "
	    "(shown).\n\n",
	    t->prog, t->summary);
	for (size_t i = 0; i < t->nitems; i++) {
		const sl_conf_item *it = &t->items[i];
		env_name(t, it->name, env, sizeof(env));
		fprintf(f, "  --%s%s\n      %s (default: %s; env %s)\n",
		    it->name, it->type == SL_CONF_BOOL ? "[=BOOL]" : "=VALUE",
		    it->help, it->def[0] != '\0' ? it->def : "none", env);
	}
	fprintf(f,
	    "  --print-config\n      print the effective configuration "
	    "and exit\n"
	    "  --version\n      print the version and exit\n"
	    "  --help\n      this text\n");
}

void
sl_conf_print(const sl_conf *t, const void *cfg, FILE *f)
{
	for (size_t i = 0; i < t->nitems; i++) {
		const sl_conf_item *it = &t->items[i];
		const void         *p  = cfield(cfg, it);

		switch (it->type) {
		case SL_CONF_STR:
			fprintf(f, "%s = \"%s\"\n", it->name,
			    *(char *const *) p != NULL ? *(char *const *) p
			                               : "");
			break;
		case SL_CONF_U64:
			fprintf(f, "%s = %llu\n", it->name,
			    (unsigned long long) *(const uint64_t *) p);
			break;
		case SL_CONF_BOOL:
			fprintf(f, "%s = %s\n", it->name,
			    *(const bool *) p ? "true" : "false");
			break;
		}
	}
}

int
sl_conf_parse(const sl_conf *t, void *cfg, int argc, char **argv)
{
	struct option *longs;
	char           env[96];
	bool           print = false;
	int            rv    = SL_CONF_RUN;
	int            opt;
	int            idx;

	if ((longs = calloc(t->nitems + 4, sizeof(*longs))) == NULL) {
		fprintf(stderr, "%s: out of memory\n", t->prog);
		return (SL_CONF_USAGE);
	}
	for (size_t i = 0; i < t->nitems; i++) {
		const char *v;

		env_name(t, t->items[i].name, env, sizeof(env));
		if ((v = getenv(env)) != NULL &&
		    set_item(t, cfg, &t->items[i], v, env) != 0) {
			free(longs);
			return (SL_CONF_USAGE);
		}
		longs[i].name    = t->items[i].name;
		longs[i].has_arg = t->items[i].type == SL_CONF_BOOL
		    ? optional_argument
		    : required_argument;
		longs[i].val     = SL_CONF_OPT_BASE + (int) i;
	}
	longs[t->nitems] = (struct option) { "help", no_argument, NULL, 'h' };
	longs[t->nitems + 1] =
	    (struct option) { "print-config", no_argument, NULL, 'p' };
	longs[t->nitems + 2] =
	    (struct option) { "version", no_argument, NULL, 'V' };

	optind = 1;
	opterr = 0;
	while (rv == SL_CONF_RUN &&
	    (opt = getopt_long(argc, argv, "", longs, &idx)) != -1) {
		if (opt == 'h') {
			usage(t, stdout);
			rv = SL_CONF_EXIT_OK;
		} else if (opt == 'V') {
			printf("%s %s\n", t->prog, t->version);
			rv = SL_CONF_EXIT_OK;
		} else if (opt == 'p') {
			print = true;
		} else if (opt >= SL_CONF_OPT_BASE &&
		    opt < SL_CONF_OPT_BASE + (int) t->nitems) {
			const sl_conf_item *it =
			    &t->items[opt - SL_CONF_OPT_BASE];
			if (set_item(t, cfg, it,
			        optarg != NULL ? optarg : "true",
			        "command line") != 0) {
				rv = SL_CONF_USAGE;
			}
		} else {
			fprintf(stderr,
			    "%s: unknown or incomplete option \"%s\"\n"
			    "%s: try '%s --help'\n",
			    t->prog, argv[optind - 1], t->prog, t->prog);
			rv = SL_CONF_USAGE;
		}
	}
	free(longs);
	if (rv == SL_CONF_RUN && optind < argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", t->prog,
		    argv[optind]);
		rv = SL_CONF_USAGE;
	}
	return (rv == SL_CONF_RUN && print ? SL_CONF_PRINT : rv);
}

int
sl_daemon_begin(int conf_rv, const char *log_level, sigset_t *set)
{
	int level;

	if (conf_rv == SL_CONF_EXIT_OK) {
		return (0);
	}
	if (conf_rv != SL_CONF_RUN) {
		return (2);
	}
	if (sl_log_parse_level(log_level, &level) == SLUICE_OK) {
		sl_log_level = level;
	}
	// Before nng or LMDB start threads, so that they inherit the mask.
	sl_signals_block(set);
	if (sl_crypto_init() != SLUICE_OK) {
		sl_log_err("main.crypto", "libsodium failed to initialise");
		return (1);
	}
	return (-1);
}
