// SPDX-License-Identifier: MIT
//
// config.c — the table of flagd's settings and the code that fills a
// flagd_config from defaults, FLAGD_* environment variables and argv.
// Every setting appears once, in the table; parsing, range checks, --help
// and --print-config all read it.

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sl.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

typedef enum { CT_STR, CT_U64, CT_BOOL } conf_type;

typedef struct conf_item {
	const char *name; // command-line flag; env is FLAGD_<NAME upper>
	conf_type   type;
	uint64_t    min;
	uint64_t    max;
	const char *def;
	bool        reloadable;
	size_t      off;
	const char *help;
} conf_item;

#define F(m) offsetof(flagd_config, m)

static const conf_item items[] = {
	{ "data", CT_STR, 0, 0, "./flagd-data", false, F(data_dir),
	    "data directory (created if missing)" },
	{ "api", CT_STR, 0, 0, "tcp://0.0.0.0:7400", false, F(api_url),
	    "request/reply API (nng REP)" },
	{ "publish", CT_STR, 0, 0, "tcp://0.0.0.0:7401", false, F(publish_url),
	    "change stream (nng PUB)" },
	{ "advertise-publish", CT_STR, 0, 0, "", false, F(advertise_publish),
	    "change-stream URL told to clients (default: --publish, with "
	    "0.0.0.0 as 127.0.0.1)" },
	{ "http", CT_STR, 0, 0, "", false, F(http_url),
	    "HTTP /metrics /healthz /readyz, e.g. http://0.0.0.0:7480 "
	    "(default off)" },
	{ "authorized-keys", CT_STR, 0, 0, "", false, F(authorized_keys),
	    "keys that seed an empty key store: ROLE ID BASE64 [GLOB]" },
	{ "id", CT_U64, 1, 1000000, "1", false, F(node_id), "node id" },
	{ "api-contexts", CT_U64, 1, 1024, "16", false, F(api_contexts),
	    "concurrent API requests served" },
	{ "skew-ms", CT_U64, 1000, 86400000, "300000", false, F(skew_ms),
	    "accepted clock skew of signed commands" },
	{ "heartbeat-ms", CT_U64, 50, 60000, "1000", false, F(heartbeat_ms),
	    "heartbeat interval on the change stream" },
	{ "drain-ms", CT_U64, 0, 600000, "5000", false, F(drain_ms),
	    "how long shutdown waits for in-flight writes" },
	{ "map-size-mb", CT_U64, 16, 1048576, "1024", false, F(map_size_mb),
	    "LMDB map size" },
	{ "client-liveness-ms", CT_U64, 100, 86400000, "15000", false,
	    F(client_liveness_ms),
	    "a client not heard from (ack) for this long is no longer "
	    "live (3 x libsluice's 5 s ack interval)" },
	{ "max-clients", CT_U64, 1, 1000000, "10000", false, F(max_clients),
	    "clients remembered for 'flagctl clients'; the least recently "
	    "heard from is evicted beyond" },
	{ "nosync", CT_BOOL, 0, 1, "false", false, F(nosync),
	    "never sync the store, nor check it after a machine crash (tests "
	    "only: a power loss can corrupt it; the raft log is fsync'd "
	    "either way)" },
	{ "log-level", CT_STR, 0, 0, "notice", true, F(log_level),
	    "err|warn|notice|info|debug" },
	{ "raft", CT_STR, 0, 0, "0.0.0.0:7402", false, F(raft_listen),
	    "consensus listen address IPV4:PORT (libraft TCP transport)" },
	{ "peers", CT_STR, 0, 0, "", false, F(peers_spec),
	    "static voters ID=HOST:RAFTPORT@APIURL,... including this node; "
	    "HOST may be a host name, resolved on each connect "
	    "(default: a cluster of one at --raft and --api)" },
	{ "join", CT_BOOL, 0, 1, "false", false, F(join),
	    "a node joining a running cluster: do not bootstrap; wait for "
	    "'flagctl cluster add' (its --peers lists the cluster and "
	    "itself)" },
	{ "election-ms", CT_U64, 50, 60000, "300", false, F(election_ms),
	    "raft election timeout (randomised to 1-2x); a leader is "
	    "replaced within about 2x this" },
	{ "raft-heartbeat-ms", CT_U64, 10, 10000, "50", false,
	    F(raft_heartbeat_ms),
	    "raft leader heartbeat; keep well below --election-ms" },
	{ "snapshot-threshold", CT_U64, 2, 100000000, "1024", false,
	    F(snapshot_threshold),
	    "log entries between store snapshots (log compaction)" },
	{ "snapshot-trailing", CT_U64, 0, 100000000, "128", false,
	    F(snapshot_trailing),
	    "log entries kept after a snapshot, for lagging followers" },
	{ "segment-kb", CT_U64, 64, 1048576, "8192", false, F(segment_kb),
	    "raft log segment size (each node preallocates a few)" },
};

#define NITEMS (sizeof(items) / sizeof(items[0]))

static int
set_item(
    flagd_config *c, const conf_item *it, const char *val, const char *origin)
{
	char *base = (char *) c;

	switch (it->type) {
	case CT_STR: {
		char **p = (char **) (void *) (base + it->off);
		free(*p);
		*p = sl_xstrdup(val);
		return (0);
	}
	case CT_BOOL: {
		bool *p = (bool *) (void *) (base + it->off);
		if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0 ||
		    strcmp(val, "yes") == 0) {
			*p = true;
		} else if (strcmp(val, "false") == 0 ||
		    strcmp(val, "0") == 0 || strcmp(val, "no") == 0) {
			*p = false;
		} else {
			fprintf(stderr,
			    "flagd: %s: --%s wants true or false, not "
			    "\"%s\"\n",
			    origin, it->name, val);
			return (-1);
		}
		return (0);
	}
	case CT_U64: {
		uint64_t          *p = (uint64_t *) (void *) (base + it->off);
		char              *end;
		unsigned long long v;

		errno = 0;
		v     = strtoull(val, &end, 10);
		if (errno != 0 || end == val || *end != '\0' ||
		    val[0] == '-' || v < it->min || v > it->max) {
			fprintf(stderr,
			    "flagd: %s: --%s wants a whole number in "
			    "[%llu, %llu], not \"%s\"\n",
			    origin, it->name, (unsigned long long) it->min,
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
flagd_config_defaults(flagd_config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NITEMS; i++) {
		(void) set_item(c, &items[i], items[i].def, "default");
	}
}

void
flagd_config_fini(flagd_config *c)
{
	char *base = (char *) c;

	for (size_t i = 0; i < NITEMS; i++) {
		if (items[i].type == CT_STR) {
			char **p = (char **) (void *) (base + items[i].off);
			free(*p);
			*p = NULL;
		}
	}
}

static void
env_name(const char *name, char *buf, size_t len)
{
	size_t i;

	(void) snprintf(buf, len, "FLAGD_");
	for (i = 6; *name != '\0' && i + 1 < len; name++, i++) {
		buf[i] = (*name == '-')
		    ? '_'
		    : (char) ((*name >= 'a' && *name <= 'z')
		              ? *name - 'a' + 'A'
		              : *name);
	}
	buf[i] = '\0';
}

static void
usage(FILE *f)
{
	char env[64];

	fprintf(f,
	    "usage: flagd [OPTIONS]\n"
	    "\n"
	    "sluice's flag store: serves rollouts over nng, publishes every "
	    "change.\n"
	    "Each option may also be set as an environment variable "
	    "(shown).\n\n");
	for (size_t i = 0; i < NITEMS; i++) {
		const conf_item *it = &items[i];
		env_name(it->name, env, sizeof(env));
		fprintf(f, "  --%s%s\n      %s (default: %s; env %s)\n",
		    it->name, it->type == CT_BOOL ? "[=BOOL]" : "=VALUE",
		    it->help, it->def[0] != '\0' ? it->def : "none", env);
	}
	fprintf(f,
	    "  --print-config\n      print the effective configuration "
	    "and exit\n"
	    "  --version\n      print the version and exit\n"
	    "  --help\n      this text\n");
}

void
flagd_config_print(const flagd_config *c, FILE *f)
{
	const char *base = (const char *) c;

	for (size_t i = 0; i < NITEMS; i++) {
		const conf_item *it = &items[i];
		switch (it->type) {
		case CT_STR:
			fprintf(f, "%s = \"%s\"\n", it->name,
			    *(char *const *) (const void *) (base + it->off));
			break;
		case CT_U64:
			fprintf(f, "%s = %llu\n", it->name,
			    (unsigned long long) *(
			        const uint64_t *) (const void *) (base +
			        it->off));
			break;
		case CT_BOOL:
			fprintf(f, "%s = %s\n", it->name,
			    *(const bool *) (const void *) (base + it->off)
			        ? "true"
			        : "false");
			break;
		}
	}
}

const flagd_peer *
flagd_config_peer(const flagd_config *c, uint64_t id)
{
	for (size_t i = 0; i < c->npeers; i++) {
		if (c->peers[i].id == id) {
			return (&c->peers[i]);
		}
	}
	return (NULL);
}

void
flagd_peer_address_split(const char *addr, char *raft, size_t raftlen,
    char *api, size_t apilen)
{
	const char *at = strchr(addr, '@');
	size_t      n  = at != NULL ? (size_t) (at - addr) : strlen(addr);

	if (n >= raftlen) {
		n = raftlen - 1;
	}
	memcpy(raft, addr, n);
	raft[n] = '\0';
	snprintf(api, apilen, "%s", at != NULL ? at + 1 : "");
}

static int
peer_parse_one(const char *s, size_t len, flagd_peer *p, char *err,
    size_t errlen)
{
	char        item[600];
	char       *eq;
	char       *at;
	char       *colon;
	char       *end;
	unsigned long long id;
	unsigned long      port;

	if (len == 0 || len >= sizeof(item)) {
		snprintf(err, errlen, "peer entry %s", len == 0 ? "is empty"
		                                                 : "is too long");
		return (SLUICE_EINVAL);
	}
	memcpy(item, s, len);
	item[len] = '\0';
	if ((eq = strchr(item, '=')) == NULL ||
	    (at = strchr(eq, '@')) == NULL) {
		snprintf(err, errlen, "\"%s\" is not ID=HOST:PORT@APIURL", item);
		return (SLUICE_EINVAL);
	}
	*eq   = '\0';
	*at   = '\0';
	errno = 0;
	id    = strtoull(item, &end, 10);
	if (errno != 0 || end == item || *end != '\0' || item[0] == '-' ||
	    id == 0) {
		snprintf(err, errlen, "peer id \"%s\" is not a positive number",
		    item);
		return (SLUICE_EINVAL);
	}
	colon = strrchr(eq + 1, ':');
	if (colon == NULL || colon == eq + 1) {
		snprintf(err, errlen, "peer %llu: \"%s\" is not HOST:PORT", id,
		    eq + 1);
		return (SLUICE_EINVAL);
	}
	errno = 0;
	port  = strtoul(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port == 0 ||
	    port > 65535) {
		snprintf(err, errlen, "peer %llu: bad port in \"%s\"", id,
		    eq + 1);
		return (SLUICE_EINVAL);
	}
	if (at[1] == '\0' || strlen(eq + 1) >= sizeof(p->raft) ||
	    strlen(at + 1) >= sizeof(p->api)) {
		snprintf(err, errlen, "peer %llu: API URL missing or too long",
		    id);
		return (SLUICE_EINVAL);
	}
	p->id = (uint64_t) id;
	snprintf(p->raft, sizeof(p->raft), "%s", eq + 1);
	snprintf(p->api, sizeof(p->api), "%s", at + 1);
	return (SLUICE_OK);
}

int
flagd_peers_parse(const char *spec, flagd_peer *peers, size_t max,
    size_t *np, char *err, size_t errlen)
{
	size_t      n = 0;
	const char *p = spec;
	int         rv;

	while (p != NULL && *p != '\0') {
		const char *comma = strchr(p, ',');
		size_t      len   = comma != NULL ? (size_t) (comma - p)
		                                  : strlen(p);
		if (n == max) {
			snprintf(err, errlen, "more than %zu peers", max);
			return (SLUICE_EINVAL);
		}
		if ((rv = peer_parse_one(p, len, &peers[n], err, errlen)) !=
		    SLUICE_OK) {
			return (rv);
		}
		for (size_t i = 0; i < n; i++) {
			if (peers[i].id == peers[n].id) {
				snprintf(err, errlen, "peer id %llu is listed "
				    "twice", (unsigned long long) peers[n].id);
				return (SLUICE_EINVAL);
			}
			if (strcmp(peers[i].raft, peers[n].raft) == 0) {
				snprintf(err, errlen, "peers %llu and %llu have "
				    "the same address %s",
				    (unsigned long long) peers[i].id,
				    (unsigned long long) peers[n].id,
				    peers[n].raft);
				return (SLUICE_EINVAL);
			}
		}
		n++;
		p = comma != NULL ? comma + 1 : NULL;
	}
	if (n == 0) {
		snprintf(err, errlen, "no peers given");
		return (SLUICE_EINVAL);
	}
	*np = n;
	return (SLUICE_OK);
}

// Replaces "0.0.0.0" in src by "127.0.0.1": the address others dial.
static void
dialable(char *buf, size_t len, const char *src)
{
	const char *any = strstr(src, "0.0.0.0");

	if (any != NULL) {
		snprintf(buf, len, "%.*s127.0.0.1%s", (int) (any - src), src,
		    any + 7);
	} else {
		snprintf(buf, len, "%s", src);
	}
}

// Fills c->peers from --peers, or makes a cluster of one from --raft and
// --api. 0, or -1 after a message on stderr.
static int
config_peers(flagd_config *c)
{
	char err[256];

	if (c->raft_heartbeat_ms * 2 > c->election_ms) {
		fprintf(stderr,
		    "flagd: --raft-heartbeat-ms (%llu) must be at most half "
		    "of --election-ms (%llu)\n",
		    (unsigned long long) c->raft_heartbeat_ms,
		    (unsigned long long) c->election_ms);
		return (-1);
	}
	if (c->peers_spec[0] == '\0') {
		c->npeers      = 1;
		c->peers[0].id = c->node_id;
		dialable(c->peers[0].raft, sizeof(c->peers[0].raft),
		    c->raft_listen);
		dialable(c->peers[0].api, sizeof(c->peers[0].api), c->api_url);
		return (0);
	}
	if (flagd_peers_parse(c->peers_spec, c->peers, FLAGD_PEERS_MAX,
	        &c->npeers, err, sizeof(err)) != SLUICE_OK) {
		fprintf(stderr, "flagd: --peers: %s\n", err);
		return (-1);
	}
	if (flagd_config_peer(c, c->node_id) == NULL) {
		fprintf(stderr, "flagd: --peers does not list this node (--id "
		    "%llu)\n", (unsigned long long) c->node_id);
		return (-1);
	}
	return (0);
}

int
flagd_config_parse(flagd_config *c, int argc, char **argv)
{
	struct option longs[NITEMS + 4];
	char          env[64];
	bool          print = false;
	int           opt;
	int           idx;

	for (size_t i = 0; i < NITEMS; i++) {
		const char *v;
		env_name(items[i].name, env, sizeof(env));
		if ((v = getenv(env)) != NULL) {
			if (set_item(c, &items[i], v, env) != 0) {
				return (FLAGD_CONFIG_USAGE);
			}
		}
		longs[i].name    = items[i].name;
		longs[i].has_arg = items[i].type == CT_BOOL
		    ? optional_argument
		    : required_argument;
		longs[i].flag    = NULL;
		longs[i].val     = 1000 + (int) i;
	}
	longs[NITEMS] = (struct option) { "help", no_argument, NULL, 'h' };
	longs[NITEMS + 1] =
	    (struct option) { "print-config", no_argument, NULL, 'p' };
	longs[NITEMS + 2] =
	    (struct option) { "version", no_argument, NULL, 'V' };
	longs[NITEMS + 3] = (struct option) { NULL, 0, NULL, 0 };

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", longs, &idx)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return (FLAGD_CONFIG_EXIT_OK);
		}
		if (opt == 'V') {
			printf("flagd %s\n", SLUICE_VERSION);
			return (FLAGD_CONFIG_EXIT_OK);
		}
		if (opt == 'p') {
			print = true;
			continue;
		}
		if (opt >= 1000 && opt < 1000 + (int) NITEMS) {
			const conf_item *it = &items[opt - 1000];
			const char      *v  = optarg;
			if (v == NULL) {
				v = "true";
			}
			if (set_item(c, it, v, "command line") != 0) {
				return (FLAGD_CONFIG_USAGE);
			}
			continue;
		}
		fprintf(stderr, "flagd: unknown or incomplete option \"%s\"\n",
		    argv[optind - 1]);
		fprintf(stderr, "flagd: try 'flagd --help'\n");
		return (FLAGD_CONFIG_USAGE);
	}
	if (optind < argc) {
		fprintf(stderr, "flagd: unexpected argument \"%s\"\n",
		    argv[optind]);
		return (FLAGD_CONFIG_USAGE);
	}
	int lvl;
	if (sl_log_parse_level(c->log_level, &lvl) != SLUICE_OK) {
		fprintf(stderr, "flagd: --log-level: unknown level \"%s\"\n",
		    c->log_level);
		return (FLAGD_CONFIG_USAGE);
	}
	if (config_peers(c) != 0) {
		return (FLAGD_CONFIG_USAGE);
	}
	if (print) {
		flagd_config_print(c, stdout);
		return (FLAGD_CONFIG_EXIT_OK);
	}
	return (FLAGD_CONFIG_RUN);
}
