/* SPDX-License-Identifier: MIT */
/*
 * config.h — flagd's configuration: one struct, filled from defaults, then
 * FLAGD_* environment variables, then the command line, each overriding
 * the last. One table in config.c drives parsing, validation, --help and
 * the --print-config dump.
 */
#ifndef FLAGD_CONFIG_H
#define FLAGD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct flagd_config {
	char    *data_dir;
	char    *api_url;
	char    *publish_url;
	char    *advertise_publish; /* what clients dial; "" = derived */
	char    *http_url;          /* "" = no HTTP server */
	char    *authorized_keys;   /* "" = none (store must have keys) */
	uint64_t node_id;
	uint64_t api_contexts;
	uint64_t skew_ms;
	uint64_t heartbeat_ms;
	uint64_t drain_ms;
	uint64_t map_size_mb;
	uint64_t
	    client_liveness_ms; /* registry: drop clients silent this long */
	uint64_t max_clients;   /* registry size; LRU eviction beyond */
	bool     nosync;
	char    *log_level;
} flagd_config;

/* Outcome of flagd_config_parse. */
enum {
	FLAGD_CONFIG_RUN     = 0,
	FLAGD_CONFIG_EXIT_OK = 1,
	FLAGD_CONFIG_USAGE   = 2
};

void flagd_config_defaults(flagd_config *c);
void flagd_config_fini(flagd_config *c);

/*
 * Applies the environment, then argv. Returns FLAGD_CONFIG_RUN,
 * FLAGD_CONFIG_EXIT_OK (--help / --print-config / --version done) or
 * FLAGD_CONFIG_USAGE (message already printed on stderr).
 */
int flagd_config_parse(flagd_config *c, int argc, char **argv);

void flagd_config_print(const flagd_config *c, FILE *f);

#endif /* FLAGD_CONFIG_H */
