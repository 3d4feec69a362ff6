/* SPDX-License-Identifier: MIT */
/*
 * config.h — gatekeeper's configuration: defaults, then GATEKEEPER_*
 * environment variables, then argv, each overriding the last. One table
 * drives parsing, validation and --help.
 */
#ifndef GK_CONFIG_H
#define GK_CONFIG_H

#include "sl.h"

typedef struct gk_config {
	char     api_url[256];   /* --api */
	char     http_url[256];  /* --http ("" = none) */
	char     flagd[1024];    /* --flagd URL[,URL...] */
	char     key_file[1024]; /* --key */
	char     data_dir[1024]; /* --data */
	char     log_level[16];  /* --log-level */
	uint64_t contexts;       /* --contexts */
	uint64_t skew_ms;        /* --skew-ms */
	uint64_t tick_ms;        /* --tick-ms */
	uint64_t drain_ms;       /* --drain-ms */
} gk_config;

enum { GK_CONFIG_OK = 0, GK_CONFIG_EXIT_OK = 1, GK_CONFIG_USAGE = 2 };

void gk_config_defaults(gk_config *c);
/* GK_CONFIG_OK, GK_CONFIG_EXIT_OK (--help printed) or GK_CONFIG_USAGE. */
int gk_config_parse(gk_config *c, int argc, char **argv);

#endif /* GK_CONFIG_H */
