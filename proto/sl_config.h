/* SPDX-License-Identifier: MIT */
/*
 * sl_config.h — the daemons' settings, one table each: every setting's
 * name, type, bounds, default and help appear once, and this code fills a
 * config struct from the defaults, then PREFIX_<NAME> environment
 * variables (dashes as underscores, upper case), then --name=value
 * arguments, and prints --help and --print-config from the same table.
 * Options are parsed with getopt_long.
 */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>

#include "sl.h"

typedef enum {
	SL_CONF_STR,  /* char * (malloc'd; freed by sl_conf_fini) */
	SL_CONF_U64,  /* uint64_t in [min, max] */
	SL_CONF_BOOL, /* bool: true/false, yes/no, 1/0; --name alone = true */
} sl_conf_type;

typedef struct sl_conf_item {
	const char  *name; /* --name; environment PREFIX_NAME */
	sl_conf_type type;
	uint64_t     min;
	uint64_t     max;
	const char  *def; /* as it would be given; "" for none */
	size_t       off; /* offsetof the field in the config struct */
	const char  *help;
} sl_conf_item;

typedef struct sl_conf {
	const char         *prog;       /* "flagd": messages and --version */
	const char         *env_prefix; /* "FLAGD_" */
	const char         *summary;    /* the paragraph under usage: */
	const char         *version;
	const sl_conf_item *items;
	size_t              nitems;
} sl_conf;

/* Outcome of sl_conf_parse. */
enum {
	SL_CONF_RUN     = 0, /* go on (validate, then run) */
	SL_CONF_EXIT_OK = 1, /* --help or --version printed */
	SL_CONF_USAGE   = 2, /* bad input: a message is on stderr */
	SL_CONF_PRINT   = 3, /* --print-config: validate, print, exit 0 */
};

/*
 * What a daemon's main does once sl_conf_parse (and its own checks) gave
 * conf_rv: SL_CONF_EXIT_OK → exit 0, SL_CONF_USAGE → exit 2; otherwise
 * sets the log level, blocks the shutdown signals into *set (before any
 * thread starts: sl_signals_block) and initialises libsodium. Returns the
 * exit status, or -1 to go on running.
 */
int sl_daemon_begin(int conf_rv, const char *log_level, sigset_t *set);

/* Zeroes nothing: sets every item of cfg to its default. */
void sl_conf_defaults(const sl_conf *t, void *cfg);
/* Frees the strings of cfg. */
void sl_conf_fini(const sl_conf *t, void *cfg);
/* One "name = value" line per item. */
void sl_conf_print(const sl_conf *t, const void *cfg, FILE *f);
/* Environment, then argv (no operands accepted). */
int sl_conf_parse(const sl_conf *t, void *cfg, int argc, char **argv);

#endif /* SL_CONFIG_H */
