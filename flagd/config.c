// SPDX-License-Identifier: MIT
//
// config.c — the table of flagd's settings and the code that fills a
// flagd_config from defaults, FLAGD_* environment variables and argv.
// Every setting appears once, in the table; parsing, range checks, --help
// and --print-config all read it.

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sl.h"
#include "sl_config.h"

#define F(m) offsetof(flagd_config, m)

static const sl_conf_item items[] = {
	{ "data", SL_CONF_STR, 0, 0, "./flagd-data", F(data_dir),
	    "data directory (created if missing)" },
	{ "api", SL_CONF_STR, 0, 0, "tcp://0.0.0.0:7400", F(api_url),
	    "request/reply API (nng REP)" },
	{ "publish", SL_CONF_STR, 0, 0, "tcp://0.0.0.0:7401", F(publish_url),
	    "change stream (nng PUB)" },
	{ "advertise-publish", SL_CONF_STR, 0, 0, "", F(advertise_publish),
	    "change-stream URL told to clients (default: --publish, with "
	    "0.0.0.0 as 127.0.0.1)" },
	{ "http", SL_CONF_STR, 0, 0, "", F(http_url),
	    "HTTP /metrics /healthz /readyz, e.g. http://0.0.0.0:7480 "
	    "(default off)" },
	{ "authorized-keys", SL_CONF_STR, 0, 0, "", F(authorized_keys),
	    "keys that seed an empty key store: ROLE ID BASE64 [GLOB]" },
	{ "id", SL_CONF_U64, 1, 1000000, "1", F(node_id), "node id" },
	{ "api-contexts", SL_CONF_U64, 1, 1024, "16", F(api_contexts),
	    "concurrent API requests served" },
	{ "skew-ms", SL_CONF_U64, 1000, 86400000, "300000", F(skew_ms),
	    "accepted clock skew of signed commands" },
	{ "heartbeat-ms", SL_CONF_U64, 50, 60000, "1000", F(heartbeat_ms),
	    "heartbeat interval on the change stream" },
	{ "drain-ms", SL_CONF_U64, 0, 600000, "5000", F(drain_ms),
	    "how long shutdown waits for in-flight writes" },
	{ "map-size-mb", SL_CONF_U64, 16, 1048576, "1024", F(map_size_mb),
	    "LMDB map size" },
	{ "client-liveness-ms", SL_CONF_U64, 100, 86400000, "15000",
	    F(client_liveness_ms),
	    "a client not heard from (ack) for this long is no longer "
	    "live (3 x libsluice's 5 s ack interval)" },
	{ "max-clients", SL_CONF_U64, 1, 1000000, "10000", F(max_clients),
	    "clients remembered for 'flagctl clients'; the least recently "
	    "heard from is evicted beyond" },
	{ "nosync", SL_CONF_BOOL, 0, 1, "false", F(nosync),
	    "never sync the store, nor check it after a machine crash (tests "
	    "only: a power loss can corrupt it; the raft log is fsync'd "
	    "either way)" },
	{ "log-level", SL_CONF_STR, 0, 0, "notice", F(log_level),
	    "err|warn|notice|info|debug" },
	{ "raft", SL_CONF_STR, 0, 0, "0.0.0.0:7402", F(raft_listen),
	    "consensus listen address IPV4:PORT (libraft TCP transport)" },
	{ "peers", SL_CONF_STR, 0, 0, "", F(peers_spec),
	    "static voters ID=HOST:RAFTPORT@APIURL,... including this node; "
	    "HOST may be a host name, resolved on each connect "
	    "(default: a cluster of one at --raft and --api)" },
	{ "join", SL_CONF_BOOL, 0, 1, "false", F(join),
	    "a node joining a running cluster: do not bootstrap; wait for "
	    "'flagctl cluster add' (its --peers lists the cluster and "
	    "itself)" },
	{ "election-ms", SL_CONF_U64, 50, 60000, "300", F(election_ms),
	    "raft election timeout (randomised to 1-2x); a leader is "
	    "replaced within about 2x this" },
	{ "raft-heartbeat-ms", SL_CONF_U64, 10, 10000, "50",
	    F(raft_heartbeat_ms),
	    "raft leader heartbeat; keep well below --election-ms" },
	{ "snapshot-threshold", SL_CONF_U64, 2, 100000000, "8192",
	    F(snapshot_threshold),
	    "log entries between store snapshots (log compaction)" },
	{ "snapshot-trailing", SL_CONF_U64, 0, 100000000, "1024",
	    F(snapshot_trailing),
	    "log entries kept after a snapshot, for lagging followers" },
	{ "segment-kb", SL_CONF_U64, 64, 1048576, "8192", F(segment_kb),
	    "raft log segment size (each node preallocates a few)" },
};

#define NITEMS (sizeof(items) / sizeof(items[0]))

static const sl_conf table = {
	.prog       = "flagd",
	.env_prefix = "FLAGD_",
	.summary = "sluice's flag store: serves rollouts over nng, publishes "
	           "every change.",
	.version = SLUICE_VERSION,
	.items   = items,
	.nitems  = NITEMS,
};

void
flagd_config_defaults(flagd_config *c)
{
	memset(c, 0, sizeof(*c));
	sl_conf_defaults(&table, c);
}

void
flagd_config_fini(flagd_config *c)
{
	sl_conf_fini(&table, c);
}

void
flagd_config_print(const flagd_config *c, FILE *f)
{
	sl_conf_print(&table, c, f);
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
flagd_peer_address_split(
    const char *addr, char *raft, size_t raftlen, char *api, size_t apilen)
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
peer_parse_one(
    const char *s, size_t len, flagd_peer *p, char *err, size_t errlen)
{
	char               item[600];
	char              *eq;
	char              *at;
	char              *colon;
	char              *end;
	unsigned long long id;
	unsigned long      port;

	if (len == 0 || len >= sizeof(item)) {
		snprintf(err, errlen, "peer entry %s",
		    len == 0 ? "is empty" : "is too long");
		return (SLUICE_EINVAL);
	}
	memcpy(item, s, len);
	item[len] = '\0';
	if ((eq = strchr(item, '=')) == NULL ||
	    (at = strchr(eq, '@')) == NULL) {
		snprintf(
		    err, errlen, "\"%s\" is not ID=HOST:PORT@APIURL", item);
		return (SLUICE_EINVAL);
	}
	*eq   = '\0';
	*at   = '\0';
	errno = 0;
	id    = strtoull(item, &end, 10);
	if (errno != 0 || end == item || *end != '\0' || item[0] == '-' ||
	    id == 0) {
		snprintf(err, errlen,
		    "peer id \"%s\" is not a positive number", item);
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
		snprintf(
		    err, errlen, "peer %llu: bad port in \"%s\"", id, eq + 1);
		return (SLUICE_EINVAL);
	}
	if (at[1] == '\0' || strlen(eq + 1) >= sizeof(p->raft) ||
	    strlen(at + 1) >= sizeof(p->api)) {
		snprintf(
		    err, errlen, "peer %llu: API URL missing or too long", id);
		return (SLUICE_EINVAL);
	}
	p->id = (uint64_t) id;
	snprintf(p->raft, sizeof(p->raft), "%s", eq + 1);
	snprintf(p->api, sizeof(p->api), "%s", at + 1);
	return (SLUICE_OK);
}

int
flagd_peers_parse(const char *spec, flagd_peer *peers, size_t max, size_t *np,
    char *err, size_t errlen)
{
	size_t      n = 0;
	const char *p = spec;
	int         rv;

	while (p != NULL && *p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t) (comma - p) : strlen(p);
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
				snprintf(err, errlen,
				    "peer id %llu is listed "
				    "twice",
				    (unsigned long long) peers[n].id);
				return (SLUICE_EINVAL);
			}
			if (strcmp(peers[i].raft, peers[n].raft) == 0) {
				snprintf(err, errlen,
				    "peers %llu and %llu have "
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
		fprintf(stderr,
		    "flagd: --peers does not list this node (--id "
		    "%llu)\n",
		    (unsigned long long) c->node_id);
		return (-1);
	}
	return (0);
}

int
flagd_config_parse(flagd_config *c, int argc, char **argv)
{
	int rv = sl_conf_parse(&table, c, argc, argv);
	int lvl;

	if (rv == SL_CONF_EXIT_OK || rv == SL_CONF_USAGE) {
		return (rv);
	}
	if (sl_log_parse_level(c->log_level, &lvl) != SLUICE_OK) {
		fprintf(stderr, "flagd: --log-level: unknown level \"%s\"\n",
		    c->log_level);
		return (SL_CONF_USAGE);
	}
	if (config_peers(c) != 0) {
		return (SL_CONF_USAGE);
	}
	if (rv == SL_CONF_PRINT) {
		flagd_config_print(c, stdout);
		return (SL_CONF_EXIT_OK);
	}
	return (SL_CONF_RUN);
}
