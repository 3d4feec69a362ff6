// SPDX-License-Identifier: MIT
//
// ctl.c — the plumbing every flagctl verb shares: common options, the
// lazily opened connection to flagd, the signing key, and turning a
// failed call into the single "flagctl: ..." line the user sees.

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

int
ctl_usage(const ctl *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "flagctl: %s: ", c->verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'flagctl %s --help'.\n", c->verb);
	return (CTL_EXIT_USAGE);
}

int
ctl_fail(const ctl *c, const char *fmt, ...)
{
	va_list ap;

	(void) c;
	fputs("flagctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return (CTL_EXIT_FAIL);
}

int
ctl_end(const ctl *c, int rv)
{
	if (rv != SLUICE_OK) {
		return (ctl_fail(c, "%s", sluice_strerror(rv)));
	}
	return (CTL_EXIT_OK);
}

int
ctl_operands(const ctl *c, int argc, char *const *argv, int min, int max,
    const char *missing)
{
	if (argc - optind < min) {
		return (ctl_usage(c, "missing %s", missing));
	}
	if (argc - optind > max) {
		return (ctl_usage(
		    c, "unexpected argument '%s'", argv[optind + max]));
	}
	return (-1);
}

int
ctl_parse_common(ctl *c, int argc, char **argv, int min, int max)
{
	static const struct option opts[] = {
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	int o;
	int ex;

	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	return (ctl_operands(c, argc, argv, min, max, NULL));
}

int
ctl_parse_u64(const char *s, uint64_t *vp)
{
	unsigned long long v;
	char              *end;

	if (s == NULL || *s < '0' || *s > '9') {
		return (SLUICE_EINVAL);
	}
	errno = 0;
	v     = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		return (SLUICE_EINVAL);
	}
	*vp = v;
	return (SLUICE_OK);
}

void
ctl_getopt_reset(void)
{
	// glibc re-initialises getopt completely when optind is 0.
	optind = 0;
	opterr = 0;
}

int
ctl_common_opt(ctl *c, int opt, const char *arg, char *const *argv)
{
	const char *bad = optind > 0 ? argv[optind - 1] : "?";

	uint64_t v;

	switch (opt) {
	case CTL_OPT_SERVER:
		c->server = arg;
		return (-1);
	case CTL_OPT_KEY:
		c->keyfile = arg;
		return (-1);
	case CTL_OPT_TIMEOUT:
		if (ctl_parse_u64(arg, &v) != SLUICE_OK || v == 0 ||
		    v > 3600000) {
			return (ctl_usage(c,
			    "--timeout wants milliseconds (1..3600000), not "
			    "\"%s\"",
			    arg));
		}
		c->timeout_ms = (uint32_t) v;
		return (-1);
	case CTL_OPT_JSON:
		c->json = true;
		return (-1);
	case CTL_OPT_MIN_REVISION:
		if (ctl_parse_u64(arg, &v) != SLUICE_OK || v == 0) {
			return (ctl_usage(c,
			    "--min-revision wants a revision (1 or more), not "
			    "\"%s\"",
			    arg));
		}
		c->min_revision = v;
		return (-1);
	case 'h':
		fputs(c->usage, stdout);
		return (CTL_EXIT_OK);
	case ':':
		return (ctl_usage(c, "option '%s' needs a value", bad));
	case '?':
	default:
		break;
	}
	if (optopt > 0 && optopt < 128 && strncmp(bad, "--", 2) != 0) {
		return (ctl_usage(c, "unknown option '-%c'", optopt));
	}
	return (ctl_usage(c, "unknown option '%s'", bad));
}

int
ctl_connect(ctl *c)
{
	if (c->rpc != NULL) {
		return (SLUICE_OK);
	}
	return (sl_rpc_open(&c->rpc, c->server, c->timeout_ms));
}

void
ctl_reply_free(Sluice__V1__Reply *rep)
{
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
}

int
ctl_fail_call(const ctl *c, int rv, Sluice__V1__Reply *rep, const char *what)
{
	char msg[1024];

	if (c->errmsg[0] != '\0') {
		snprintf(msg, sizeof(msg), "%s", c->errmsg);
	} else if (rep != NULL &&
	    rep->result_case == SLUICE__V1__REPLY__RESULT_ERROR) {
		snprintf(msg, sizeof(msg), "%s", sl_reply_errmsg(rep));
		if (rv == SLUICE_ENOENT && what != NULL &&
		    (rep->error->message == NULL ||
		        rep->error->message[0] == '\0')) {
			snprintf(msg, sizeof(msg), "%s not found", what);
		}
	} else {
		switch (rv) {
		case SLUICE_EUNAVAIL:
			snprintf(msg, sizeof(msg), "no server reachable at %s",
			    c->server);
			break;
		case SLUICE_ETIMEDOUT:
			snprintf(msg, sizeof(msg),
			    "no answer from %s within %u ms%s",
			    c->rpc != NULL ? sl_rpc_endpoint(c->rpc)
			                   : c->server,
			    c->timeout_ms != 0 ? c->timeout_ms : 5000u,
			    c->key != NULL
			        ? " (the write may have committed; check "
			          "'flagctl history')"
			        : "");
			break;
		case SLUICE_EPROTO:
			snprintf(msg, sizeof(msg), "unexpected answer from %s",
			    c->rpc != NULL ? sl_rpc_endpoint(c->rpc)
			                   : c->server);
			break;
		case SLUICE_EINVAL:
			if (c->rpc == NULL) {
				snprintf(msg, sizeof(msg),
				    "bad server address \"%s\"", c->server);
				break;
			}
			snprintf(msg, sizeof(msg), "%s: %s",
			    what != NULL ? what : c->verb,
			    sluice_strerror(rv));
			break;
		case SLUICE_ENOENT:
			if (what != NULL) {
				snprintf(
				    msg, sizeof(msg), "%s not found", what);
				break;
			}
			snprintf(msg, sizeof(msg), "%s: %s", c->verb,
			    sluice_strerror(rv));
			break;
		default:
			snprintf(msg, sizeof(msg), "%s: %s",
			    what != NULL ? what : c->verb,
			    sluice_strerror(rv));
			break;
		}
	}
	ctl_reply_free(rep);
	return (ctl_fail(c, "%s", msg));
}

int
ctl_call(ctl *c, Sluice__V1__Request *req,
    Sluice__V1__Reply__ResultCase expected, Sluice__V1__Reply **repp)
{
	Sluice__V1__Reply *rep = NULL;
	int                rv;

	*repp = NULL;
	if ((rv = ctl_connect(c)) != SLUICE_OK) {
		return (rv);
	}
	// A read answered by a node that has not applied this revision yet
	// waits for it (up to the request timeout): read your own writes on
	// any node of a cluster.
	if (req->min_revision == 0) {
		req->min_revision = c->min_revision;
	}
	rv    = sl_rpc_call(c->rpc, req, &rep);
	*repp = rep;
	if (rv != SLUICE_OK) {
		return (rv);
	}
	if (rep->result_case != expected) {
		return (SLUICE_EPROTO);
	}
	return (SLUICE_OK);
}

int
ctl_write(ctl *c, Sluice__V1__Command *cmd, const char *reason,
    Sluice__V1__Reply **repp)
{
	Sluice__V1__Reply *rep = NULL;
	const char        *path;
	char              *saved;
	char               err[256];
	int                rv;

	*repp = NULL;
	if (c->key == NULL) {
		path = c->keyfile;
		if (path == NULL || *path == '\0') {
			snprintf(c->errmsg, sizeof(c->errmsg),
			    "%s needs a signing key: give --key FILE or set "
			    "SLUICE_KEY (create one with 'flagctl keygen')",
			    c->verb);
			return (SLUICE_EINVAL);
		}
		err[0] = '\0';
		if ((rv = sl_secret_load(&c->key, path, err, sizeof(err))) !=
		    SLUICE_OK) {
			snprintf(c->errmsg, sizeof(c->errmsg),
			    "cannot load key %s: %s", path,
			    err[0] != '\0' ? err : sluice_strerror(rv));
			return (rv);
		}
	}
	if ((rv = ctl_connect(c)) != SLUICE_OK) {
		return (rv);
	}
	saved = cmd->reason;
	if (reason != NULL) {
		cmd->reason = (char *) (uintptr_t) reason;
	}
	rv          = sl_rpc_write(c->rpc, c->key, cmd, &rep);
	*repp       = rep;
	cmd->reason = saved;
	if (rv != SLUICE_OK) {
		return (rv);
	}
	if (rep->result_case != SLUICE__V1__REPLY__RESULT_WRITE ||
	    rep->write == NULL) {
		return (SLUICE_EPROTO);
	}
	return (SLUICE_OK);
}

int
ctl_get_rollout(ctl *c, const char *name, Sluice__V1__Reply **repp)
{
	Sluice__V1__Request    req;
	Sluice__V1__GetRollout get;
	int                    rv;

	sluice__v1__request__init(&req);
	sluice__v1__get_rollout__init(&get);
	get.name    = (char *) (uintptr_t) name;
	req.op_case = SLUICE__V1__REQUEST__OP_GET;
	req.get     = &get;
	rv = ctl_call(c, &req, SLUICE__V1__REPLY__RESULT_ROLLOUT, repp);
	if (rv == SLUICE_OK &&
	    ((*repp)->rollout == NULL || (*repp)->rollout->spec == NULL)) {
		rv = SLUICE_EPROTO;
	}
	return (rv);
}

int
ctl_list_rollouts(ctl *c, Sluice__V1__Reply **repp)
{
	Sluice__V1__Request      req;
	Sluice__V1__ListRollouts list;
	size_t                   i;
	int                      rv;

	sluice__v1__request__init(&req);
	sluice__v1__list_rollouts__init(&list);
	req.op_case = SLUICE__V1__REQUEST__OP_LIST;
	req.list    = &list;
	rv          = ctl_call(c, &req, SLUICE__V1__REPLY__RESULT_LIST, repp);
	if (rv != SLUICE_OK) {
		return (rv);
	}
	if ((*repp)->list == NULL) {
		return (SLUICE_EPROTO);
	}
	for (i = 0; i < (*repp)->list->n_rollouts; i++) {
		if ((*repp)->list->rollouts[i]->spec == NULL) {
			return (SLUICE_EPROTO);
		}
	}
	return (SLUICE_OK);
}

void
ctl_format_time(uint64_t ms, char *buf, size_t buflen)
{
	time_t    t = (time_t) (ms / 1000);
	struct tm tm;

	if (ms == 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, buflen, "-");
		return;
	}
	strftime(buf, buflen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
