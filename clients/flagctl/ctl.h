/* SPDX-License-Identifier: MIT */
/*
 * ctl.h — what every flagctl verb shares: the options common to all verbs,
 * the connection to flagd, the signing key, and the two ways a verb ends
 * badly (a usage error, exit 2; any other failure, exit 1 with exactly one
 * "flagctl: ..." line on stderr).
 */
#ifndef CTL_CTL_H
#define CTL_CTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "keys.h"
#include "rpc.h"
#include "sl.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

#define CTL_DEFAULT_SERVER "tcp://127.0.0.1:7400"

typedef struct ctl {
	const char *server;       // --server, SLUICE_SERVER, default
	const char *keyfile;      // --key, SLUICE_KEY; NULL if neither
	uint32_t    timeout_ms;   // --timeout; 0 = rpc default
	uint64_t    min_revision; // --min-revision: reads wait for it
	bool        json;         // --json
	const char *verb;         // for messages: "promote", "key add", ...
	const char *usage;        // the verb's usage text, for --help
	sl_rpc     *rpc;          // opened on first use
	sl_secret  *key;          // loaded on first write
	char        errmsg[512];  // a local failure for ctl_fail_call()
} ctl;

/*
 * Option values the verbs' getopt_long tables share. A verb lists
 * CTL_COMMON_OPTS at the end of its table (before the zero entry) and
 * passes every option it does not know to ctl_common_opt().
 */
enum {
	CTL_OPT_SERVER = 1000,
	CTL_OPT_KEY,
	CTL_OPT_TIMEOUT,
	CTL_OPT_JSON,
	CTL_OPT_HELP,
	CTL_OPT_MIN_REVISION,
	CTL_OPT_VERB_BASE // verbs number their own long options from here
};

#define CTL_COMMON_OPTS                                              \
	{ "server", required_argument, NULL, CTL_OPT_SERVER },       \
	    { "key", required_argument, NULL, CTL_OPT_KEY },         \
	    { "timeout", required_argument, NULL, CTL_OPT_TIMEOUT }, \
	    { "json", no_argument, NULL, CTL_OPT_JSON },             \
	    { "min-revision", required_argument, NULL,               \
		    CTL_OPT_MIN_REVISION },                          \
	{                                                            \
		"help", no_argument, NULL, 'h'                       \
	}

/*
 * Handles a common option or a getopt error. Returns -1 when the option
 * was consumed, else the exit code the verb must return at once
 * (CTL_EXIT_OK after printing --help, CTL_EXIT_USAGE after a message).
 */
int ctl_common_opt(ctl *c, int opt, const char *arg, char *const *argv);

/* Parses the verb's argv with getopt_long from the start ("+" mode). */
void ctl_getopt_reset(void);

/*
 * Prints "flagctl: VERB: message" and a hint to run --help on stderr;
 * returns CTL_EXIT_USAGE.
 */
int ctl_usage(const ctl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Checks the verb's operands, argv[optind..argc), once its options are
 * parsed: at least min ("missing WHAT" otherwise, naming missing) and at
 * most max ("unexpected argument" naming the first one too many). Returns
 * -1 when they fit, else CTL_EXIT_USAGE after the message.
 */
int ctl_operands(const ctl *c, int argc, char *const *argv, int min, int max,
    const char *missing);

/*
 * The whole argument parsing of a verb with no options of its own: the
 * common options, then ctl_operands(min, max). Returns -1 when the verb
 * goes on, else the exit code it must return at once.
 */
int ctl_parse_common(ctl *c, int argc, char **argv, int min, int max);

/* Prints "flagctl: message" on stderr; returns CTL_EXIT_FAIL. */
int ctl_fail(const ctl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * How a verb ends after its last step returned rv: CTL_EXIT_OK for
 * SLUICE_OK, else ctl_fail() with what rv means (CTL_EXIT_FAIL).
 */
int ctl_end(const ctl *c, int rv);

/*
 * Reports a failed call: c->errmsg when set (key problems), the server's
 * message when a reply carries one,
 * else what rv means here (no server reachable at ..., timed out, ...).
 * what: what was being done, used when there is nothing better, e.g.
 * "rollout \"x\"" turns ENOENT into `rollout "x" not found`. Frees rep.
 * Returns CTL_EXIT_FAIL.
 */
int ctl_fail_call(
    const ctl *c, int rv, Sluice__V1__Reply *rep, const char *what);

/* Opens the connection (lazily; idempotent). */
int ctl_connect(ctl *c) SLUICE_NODISCARD;

/*
 * Sends a read request. On SLUICE_OK *repp holds a reply whose result is
 * expected (checked: EPROTO otherwise); free it with
 * sluice__v1__reply__free_unpacked(). On failure *repp may hold an error
 * reply for ctl_fail_call().
 */
int ctl_call(ctl *c, Sluice__V1__Request *req,
    Sluice__V1__Reply__ResultCase expected,
    Sluice__V1__Reply           **repp) SLUICE_NODISCARD;

/*
 * Signs and sends a write (loads the key first). Sets cmd->reason to
 * reason when not NULL. *repp as for ctl_call() (result: write).
 */
int ctl_write(ctl *c, Sluice__V1__Command *cmd, const char *reason,
    Sluice__V1__Reply **repp) SLUICE_NODISCARD;

/* GetRollout. */
int ctl_get_rollout(
    ctl *c, const char *name, Sluice__V1__Reply **repp) SLUICE_NODISCARD;

/* ListRollouts. */
int ctl_list_rollouts(ctl *c, Sluice__V1__Reply **repp) SLUICE_NODISCARD;

/* Frees a reply; NULL is a no-op. */
void ctl_reply_free(Sluice__V1__Reply *rep);

/* Parses a decimal uint64 (no sign, no junk). EINVAL otherwise. */
int ctl_parse_u64(const char *s, uint64_t *vp);

/* "2024-05-01T12:00:00Z" for ms since the epoch; "-" for 0. */
void ctl_format_time(uint64_t ms, char *buf, size_t buflen);

#endif /* CTL_CTL_H */
