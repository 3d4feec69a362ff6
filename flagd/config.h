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

#include "sl_config.h"

/* One voter of the static membership (--peers). */
typedef struct flagd_peer {
	uint64_t id;
	char     raft[256]; /* HOST:PORT the consensus transport dials */
	char     api[256];  /* nng URL of its API (forwarded writes) */
} flagd_peer;

#define FLAGD_PEERS_MAX 9u

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
	/* Consensus. */
	char    *raft_listen; /* --raft: address the transport binds */
	char    *peers_spec;  /* --peers as given; "" = cluster of one */
	bool     join;        /* --join: never bootstrap; wait to be added */
	uint64_t election_ms;
	uint64_t raft_heartbeat_ms;
	uint64_t snapshot_threshold;
	uint64_t snapshot_trailing;
	uint64_t segment_kb;
	/* Derived by flagd_config_parse from --peers (or --raft and --api). */
	flagd_peer peers[FLAGD_PEERS_MAX];
	size_t     npeers;
} flagd_config;

/*
 * Parses "ID=HOST:PORT@APIURL,ID=..." into peers (at most max). Ids must
 * be distinct and non-zero, HOST:PORT must have a port, APIURL must be
 * non-empty. SLUICE_OK, or SLUICE_EINVAL with a reason in err.
 */
int flagd_peers_parse(const char *spec, flagd_peer *peers, size_t max,
    size_t *np, char *err, size_t errlen);

/*
 * A server address in libraft's configuration: "HOST:PORT" (bootstrapped
 * from --peers) or "HOST:PORT@APIURL" (added with flagctl cluster add).
 * Copies the HOST:PORT part to raft and the API URL (or "") to api.
 */
void flagd_peer_address_split(
    const char *addr, char *raft, size_t raftlen, char *api, size_t apilen);

/* The peer with id, or NULL. */
const flagd_peer *flagd_config_peer(const flagd_config *c, uint64_t id);

void flagd_config_defaults(flagd_config *c);
void flagd_config_fini(flagd_config *c);

/*
 * Applies the environment, then argv. Returns SL_CONF_RUN, SL_CONF_EXIT_OK
 * (--help / --print-config / --version done) or SL_CONF_USAGE (message
 * already printed on stderr).
 */
int flagd_config_parse(flagd_config *c, int argc, char **argv);

void flagd_config_print(const flagd_config *c, FILE *f);

#endif /* FLAGD_CONFIG_H */
