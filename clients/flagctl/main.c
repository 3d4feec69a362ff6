// SPDX-License-Identifier: MIT
//
// main.c — flagctl's entry point: reads the global options and the
// environment (SLUICE_SERVER, SLUICE_KEY), then hands the verb's own argv
// to its function. Exit codes: 0 success, 1 failure (one "flagctl: ..."
// line on stderr), 2 usage error.

#include <stdlib.h>
#include <string.h>

#include "cmd_audit.h"
#include "cmd_clients.h"
#include "cmd_cluster.h"
#include "cmd_gate.h"
#include "cmd_key.h"
#include "cmd_rollout.h"
#include "cmd_watch.h"
#include "ctl.h"

typedef struct verb {
	const char *name;
	int (*fn)(ctl *, int, char **);
	const char *summary;
} verb;

static const verb verbs[] = {
	{ "apply", ctl_cmd_apply, "create or update rollouts from a file" },
	{ "diff", ctl_cmd_diff, "show what apply would change" },
	{ "export", ctl_cmd_export, "print rollouts in the file format" },
	{ "list", ctl_cmd_list, "list rollouts" },
	{ "status", ctl_cmd_status, "show where rollouts stand" },
	{ "get", ctl_cmd_get, "print a flag's current value" },
	{ "promote", ctl_cmd_promote, "move a rollout forward" },
	{ "rollback", ctl_cmd_rollback, "move a rollout back" },
	{ "pause", ctl_cmd_pause, "pause a rollout" },
	{ "resume", ctl_cmd_resume, "resume a rollout" },
	{ "revert", ctl_cmd_revert, "restore a rollout as of a revision" },
	{ "history", ctl_cmd_history, "a rollout's audit entries" },
	{ "audit", ctl_cmd_audit, "recent audit entries; 'audit verify'" },
	{ "watch", ctl_cmd_watch, "follow changes as they happen" },
	{ "clients", ctl_cmd_clients, "live clients and their revisions" },
	{ "wait", ctl_cmd_wait, "wait until clients applied a revision" },
	{ "keygen", ctl_cmd_keygen, "create a key pair" },
	{ "key", ctl_cmd_key, "add, remove or list server keys" },
	{ "cluster", ctl_cmd_cluster, "show, add or remove nodes (voters)" },
	{ "gate", ctl_cmd_gate, "gatekeeper: gate status, evidence, report" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
	    "usage: flagctl [--server URL[,URL...]] [--key FILE] "
	    "[--timeout MS] [--min-revision R] VERB [ARGS]\n"
	    "\n"
	    "The admin CLI of sluice. Every verb takes --help and --json.\n"
	    "\n"
	    "  --server URLS   flagd API endpoints, tried in order "
	    "(SLUICE_SERVER;\n"
	    "                  default %s)\n"
	    "  --key FILE      secret key for writes (SLUICE_KEY)\n"
	    "  --timeout MS    per request (default 5000)\n"
	    "  --min-revision R  reads wait (up to the timeout) until the\n"
	    "                  answering node has applied revision R: read\n"
	    "                  your own writes on any node of a cluster\n"
	    "\n"
	    "verbs:\n",
	    CTL_DEFAULT_SERVER);
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	}
	fprintf(f, "\nExit status: 0 success, 1 failure, 2 usage error.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		CTL_COMMON_OPTS,
		{ "version", no_argument, NULL, CTL_OPT_VERB_BASE },
		{ NULL, 0, NULL, 0 },
	};
	static const char top_usage[] = "";
	ctl               c;
	const char       *env;
	size_t            i;
	int               o;
	int               ex;

	memset(&c, 0, sizeof(c));
	c.verb   = "flagctl";
	c.usage  = top_usage;
	c.server = CTL_DEFAULT_SERVER;
	if ((env = getenv("SLUICE_SERVER")) != NULL && *env != '\0') {
		c.server = env;
	}
	if ((env = getenv("SLUICE_KEY")) != NULL && *env != '\0') {
		c.keyfile = env;
	}
	// flagctl is a CLI: library warnings would add lines to the one
	// line of error output a failing verb promises.
	sl_log_level = SL_LOG_ERR;

	// "+": stop at the verb; its options belong to it.
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (o == 'h') {
			usage(stdout);
			return (CTL_EXIT_OK);
		}
		if (o == CTL_OPT_VERB_BASE) {
			printf("flagctl %d\n", (int) SL_API_VERSION);
			return (CTL_EXIT_OK);
		}
		if (o == CTL_OPT_JSON) {
			c.json = true;
			continue;
		}
		if (o == '?' || o == ':') {
			fprintf(stderr, "flagctl: %s '%s'\n",
			    o == ':' ? "missing value for" : "unknown option",
			    argv[optind - 1]);
			fprintf(stderr, "Try 'flagctl --help'.\n");
			return (CTL_EXIT_USAGE);
		}
		if ((ex = ctl_common_opt(&c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "flagctl: missing VERB\n");
		usage(stderr);
		return (CTL_EXIT_USAGE);
	}
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[optind], verbs[i].name) == 0) {
			break;
		}
	}
	if (i == sizeof(verbs) / sizeof(verbs[0])) {
		fprintf(stderr, "flagctl: unknown verb '%s'\n", argv[optind]);
		fprintf(stderr, "Try 'flagctl --help'.\n");
		return (CTL_EXIT_USAGE);
	}
	c.verb = verbs[i].name;
	ex     = verbs[i].fn(&c, argc - optind, argv + optind);
	fflush(stdout);
	sl_rpc_close(c.rpc);
	sl_secret_free(c.key);
	return (ex);
}
