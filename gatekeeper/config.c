/* SPDX-License-Identifier: MIT */
/*
 * config.c — gatekeeper's settings table: each option's name, type,
 * bounds, default and help, read by proto's sl_config for defaults, the
 * environment (GATEKEEPER_<NAME>, dashes as underscores), argv, --help and
 * --print-config.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "sl_config.h"

#define F(f) offsetof(gk_config, f)

static const sl_conf_item items[] = {
	{ "api", SL_CONF_STR, 0, 0, "tcp://127.0.0.1:7500", F(api_url),
	    "report API URL (nng REP)" },
	{ "http", SL_CONF_STR, 0, 0, "http://127.0.0.1:7580", F(http_url),
	    "HTTP URL for /metrics /healthz /readyz (\"\" = none)" },
	{ "flagd", SL_CONF_STR, 0, 0, "tcp://127.0.0.1:7400", F(flagd),
	    "flagd API URLs, comma-separated" },
	{ "key", SL_CONF_STR, 0, 0, "", F(key_file),
	    "gatekeeper's operator key file (required)" },
	{ "data", SL_CONF_STR, 0, 0, "", F(data_dir),
	    "directory for gatekeeper's LMDB (required)" },
	{ "log-level", SL_CONF_STR, 0, 0, "notice", F(log_level),
	    "err|warn|notice|info|debug" },
	{ "contexts", SL_CONF_U64, 1, 1024, "64", F(contexts),
	    "API requests in hand at once (REP contexts, no thread each)" },
	{ "skew-ms", SL_CONF_U64, 1000, 86400000, "300000", F(skew_ms),
	    "allowed report clock skew" },
	{ "tick-ms", SL_CONF_U64, 50, 60000, "500", F(tick_ms),
	    "period of timed gate evaluations" },
	{ "drain-ms", SL_CONF_U64, 0, 60000, "2000", F(drain_ms),
	    "shutdown drain budget" },
};

static const sl_conf table = {
	.prog       = "gatekeeper",
	.env_prefix = "GATEKEEPER_",
	.summary    = "sluice's gatekeeper: verifies signed metric reports, "
	              "evaluates each rollout's gates\nand writes rollback "
	              "and promote decisions to flagd.\n"
	              "--flagd, --key and --data are required.",
	.version    = SLUICE_VERSION,
	.items      = items,
	.nitems     = sizeof(items) / sizeof(items[0]),
};

void
gk_config_defaults(gk_config *c)
{
	memset(c, 0, sizeof(*c));
	sl_conf_defaults(&table, c);
}

void
gk_config_fini(gk_config *c)
{
	sl_conf_fini(&table, c);
}

int
gk_config_parse(gk_config *c, int argc, char **argv)
{
	int rv = sl_conf_parse(&table, c, argc, argv);
	int lvl;

	if (rv == SL_CONF_EXIT_OK || rv == SL_CONF_USAGE) {
		return (rv);
	}
	if (c->key_file[0] == '\0' || c->data_dir[0] == '\0' ||
	    c->flagd[0] == '\0') {
		fprintf(stderr,
		    "gatekeeper: --flagd, --key and --data are required\n"
		    "gatekeeper: try 'gatekeeper --help'\n");
		return (SL_CONF_USAGE);
	}
	if (sl_log_parse_level(c->log_level, &lvl) != SLUICE_OK) {
		fprintf(stderr,
		    "gatekeeper: --log-level: unknown level \"%s\"\n",
		    c->log_level);
		return (SL_CONF_USAGE);
	}
	if (rv == SL_CONF_PRINT) {
		sl_conf_print(&table, c, stdout);
		return (SL_CONF_EXIT_OK);
	}
	return (SL_CONF_RUN);
}
