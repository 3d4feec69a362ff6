/* SPDX-License-Identifier: MIT */
/*
 * config.h — gatekeeper's configuration: defaults, then GATEKEEPER_*
 * environment variables, then argv, each overriding the last. One table
 * (config.c, read by proto's sl_config) drives parsing, range checks,
 * --help and --print-config.
 */
#ifndef GK_CONFIG_H
#define GK_CONFIG_H

#include <stdio.h>

#include "sl.h"
#include "sl_config.h"

typedef struct gk_config {
	char    *api_url;   /* --api */
	char    *http_url;  /* --http ("" = none) */
	char    *flagd;     /* --flagd URL[,URL...] */
	char    *key_file;  /* --key */
	char    *data_dir;  /* --data */
	char    *log_level; /* --log-level */
	uint64_t contexts;  /* --contexts */
	uint64_t skew_ms;   /* --skew-ms */
	uint64_t tick_ms;   /* --tick-ms */
	uint64_t drain_ms;  /* --drain-ms */
} gk_config;

void gk_config_defaults(gk_config *c);
void gk_config_fini(gk_config *c); /* frees the strings */
/*
 * SL_CONF_RUN, SL_CONF_EXIT_OK (--help, --version or --print-config
 * printed) or SL_CONF_USAGE (a message is on stderr).
 */
int gk_config_parse(gk_config *c, int argc, char **argv);

#endif /* GK_CONFIG_H */
