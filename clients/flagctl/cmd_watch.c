// SPDX-License-Identifier: MIT
//
// cmd_watch.c — `flagctl watch`: asks flagd where it publishes (GetInfo),
// subscribes to everything there with nng SUB, and prints each change as
// it arrives. Revisions are consecutive, so a change or heartbeat whose
// revision skips ahead of the last one seen means changes were lost
// (PUB drops when a subscriber is slow or reconnecting): that is reported
// rather than hidden. The loop wakes every 250 ms to notice SIGINT and the
// --timeout-s deadline; the signal handler only sets a flag.

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "cmd_watch.h"
#include "codec.h"
#include "output.h"
#include "rollout.h"

#define WATCH_TICK_MS 250
#define WATCH_SILENCE_MS 30000u

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	static const char msg[] = "\nflagctl: interrupted again, exiting\n";

	(void) sig;
	if (stop_requested) {
		// A second Ctrl-C leaves at once.
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			_exit(130);
		}
		_exit(130);
	}
	stop_requested = 1;
}

static const char watch_usage[] =
    "usage: flagctl watch [ROLLOUT] [--heartbeats] [--count N]\n"
    "                     [--timeout-s S] [--json]\n"
    "\n"
    "Follows the server's change stream and prints each change as it\n"
    "arrives: revision, time, rollout, action, before \u2192 after, actor,\n"
    "reason. Warns on stderr when revisions were skipped (changes lost on\n"
    "the way; 'flagctl audit' has them). Runs until Ctrl-C, until N\n"
    "changes were printed, or for S seconds.\n"
    "\n"
    "  --heartbeats    also print the server's heartbeats\n"
    "  --count N       stop after N changes (exit 1 if --timeout-s ends\n"
    "                  the watch first)\n"
    "  --timeout-s S   stop after S seconds\n"
    "  --json          one JSON object per line (JSON Lines), with\n"
    "                  \"type\": \"change\", \"heartbeat\" or \"gap\"\n";

// GetInfo: the publish URL and the revision the node is at.
static int
get_info(ctl *c, char **urlp, uint64_t *revp)
{
	Sluice__V1__Request req;
	Sluice__V1__GetInfo info;
	Sluice__V1__Reply  *rep = NULL;
	int                 rv;

	sluice__v1__request__init(&req);
	sluice__v1__get_info__init(&info);
	req.op_case = SLUICE__V1__REQUEST__OP_INFO;
	req.info    = &info;
	if ((rv = ctl_call(c, &req, SLUICE__V1__REPLY__RESULT_INFO, &rep)) !=
	    SLUICE_OK) {
		ctl_fail_call(c, rv, rep, NULL);
		return (rv);
	}
	if (rep->info == NULL || rep->info->publish_url[0] == '\0') {
		ctl_reply_free(rep);
		ctl_fail(c, "%s does not publish changes (no publish URL)",
		    sl_rpc_endpoint(c->rpc));
		return (SLUICE_EPROTO);
	}
	*revp = rep->revision;
	if (urlp != NULL && (*urlp = strdup(rep->info->publish_url)) == NULL) {
		ctl_reply_free(rep);
		ctl_fail(c, "%s", sluice_strerror(SLUICE_ENOMEM));
		return (SLUICE_ENOMEM);
	}
	ctl_reply_free(rep);
	return (SLUICE_OK);
}

// A node that listens on every address ("tcp://0.0.0.0:7401") tells us
// that address; dial the host we reached its API at instead.
static char *
fix_wildcard(const char *pub, const char *api)
{
	static const char *const wild[] = {
		"tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:", "tcp://:"
	};
	const char *hs;
	const char *he;
	const char *port = NULL;
	size_t      i;
	size_t      len;
	char       *out;

	for (i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
		if (strncmp(pub, wild[i], strlen(wild[i])) == 0) {
			port = pub + strlen(wild[i]);
			break;
		}
	}
	if (port == NULL || strncmp(api, "tcp://", 6) != 0 ||
	    (he = strrchr(api + 6, ':')) == NULL) {
		return (strdup(pub));
	}
	hs  = api + 6;
	len = 6 + (size_t) (he - hs) + 1 + strlen(port) + 1;
	if ((out = malloc(len)) == NULL) {
		return (NULL);
	}
	snprintf(out, len, "tcp://%.*s:%s", (int) (he - hs), hs, port);
	return (out);
}

static void
emit_json(json_t *o)
{
	if (o == NULL) {
		return;
	}
	if (json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0) {
		fputc('\n', stdout);
	}
	json_decref(o);
	fflush(stdout);
}

static void
report_gap(ctl *c, uint64_t from, uint64_t to)
{
	fprintf(stderr,
	    "flagctl: warning: missed revision%s %llu..%llu (lost on the "
	    "change stream; see 'flagctl audit')\n",
	    from == to ? "" : "s", (unsigned long long) from,
	    (unsigned long long) to);
	if (c->json) {
		emit_json(json_pack("{s:s, s:I, s:I}", "type", "gap", "from",
		    (json_int_t) from, "to", (json_int_t) to));
	}
}

static void
print_change(ctl *c, const Sluice__V1__Change *ch)
{
	const Sluice__V1__AuditEntry *a = ch->audit;
	const Sluice__V1__Rollout    *r = ch->rollout;
	json_t                       *o;
	char                          when[64];
	char                          b[32];

	if (c->json) {
		o = a != NULL ? ctl_json_audit(a) : json_object();
		if (o != NULL &&
		    (json_object_set_new(o, "type", json_string("change")) ||
		        json_object_set_new(o, "revision",
		            json_integer((json_int_t) ch->revision)) ||
		        (r != NULL && r->spec != NULL &&
		            json_object_set_new(o, "status",
		                ctl_json_status(r, sl_now_ms()))))) {
			json_decref(o);
			o = NULL;
		}
		emit_json(o);
		return;
	}
	ctl_format_time(
	    a != NULL ? a->time_ms : sl_now_ms(), when, sizeof(when));
	printf("rev %llu  %s  %s  %s", (unsigned long long) ch->revision, when,
	    a != NULL ? a->rollout
	              : (r != NULL && r->spec != NULL ? r->spec->name : "-"),
	    a != NULL ? a->action : "change");
	if (a != NULL && (a->before[0] != '\0' || a->after[0] != '\0')) {
		printf("  %s \u2192 %s",
		    a->before[0] != '\0' ? a->before : "-",
		    a->after[0] != '\0' ? a->after : "-");
	}
	if (a == NULL && r != NULL && r->spec != NULL) {
		printf("  now %s, %s",
		    ctl_stage_name(r->spec, r->stage, b, sizeof(b)),
		    sl_state_name(r->state));
	}
	if (a != NULL && a->actor[0] != '\0') {
		printf("  by %s", a->actor);
	}
	if (a != NULL && a->reason[0] != '\0') {
		printf("  (%s)", a->reason);
	}
	putchar('\n');
	fflush(stdout);
}

static bool
change_matches(const Sluice__V1__Change *ch, const char *rollout)
{
	if (rollout == NULL) {
		return (true);
	}
	if (ch->rollout != NULL && ch->rollout->spec != NULL &&
	    strcmp(ch->rollout->spec->name, rollout) == 0) {
		return (true);
	}
	return (ch->audit != NULL && strcmp(ch->audit->rollout, rollout) == 0);
}

int
ctl_cmd_watch(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "heartbeats", no_argument, NULL, CTL_OPT_VERB_BASE },
		{ "count", required_argument, NULL, CTL_OPT_VERB_BASE + 1 },
		{ "timeout-s", required_argument, NULL,
		    CTL_OPT_VERB_BASE + 2 },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction   sa;
	Sluice__V1__Event *ev;
	nng_socket         sub;
	const char        *rollout = NULL;
	char              *pub     = NULL;
	char              *url     = NULL;
	void              *buf;
	size_t             len;
	bool               heartbeats = false;
	bool               sub_open   = false;
	bool               silent     = false;
	uint64_t           count      = 0;
	uint64_t           timeout_s  = 0;
	uint64_t           seen       = 0;
	uint64_t           last       = 0;
	uint64_t           hb_pending = 0;
	uint64_t           deadline   = 0;
	uint64_t           heard;
	uint64_t           now;
	int                o;
	int                ex;
	int                nrv;

	c->usage = watch_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == CTL_OPT_VERB_BASE) {
			heartbeats = true;
		} else if (o == CTL_OPT_VERB_BASE + 1) {
			if (ctl_parse_u64(optarg, &count) != SLUICE_OK ||
			    count == 0) {
				return (ctl_usage(c,
				    "--count wants a positive number, not "
				    "\"%s\"",
				    optarg));
			}
		} else if (o == CTL_OPT_VERB_BASE + 2) {
			if (ctl_parse_u64(optarg, &timeout_s) != SLUICE_OK ||
			    timeout_s == 0 || timeout_s > 31536000) {
				return (ctl_usage(c,
				    "--timeout-s wants seconds, not \"%s\"",
				    optarg));
			}
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if ((ex = ctl_operands(c, argc, argv, 0, 1, NULL)) >= 0) {
		return (ex);
	}
	if (optind < argc) {
		rollout = argv[optind];
	}
	if (get_info(c, &pub, &last) != SLUICE_OK) {
		return (CTL_EXIT_FAIL);
	}
	if ((url = fix_wildcard(pub, sl_rpc_endpoint(c->rpc))) == NULL) {
		ex = ctl_fail(c, "%s", sluice_strerror(SLUICE_ENOMEM));
		goto done;
	}
	if ((nrv = nng_sub0_open(&sub)) != 0) {
		ex = ctl_fail(
		    c, "cannot open a subscriber: %s", nng_strerror(nrv));
		goto done;
	}
	sub_open = true;
	if ((nrv = nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
	    (nrv = nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, WATCH_TICK_MS)) !=
	        0 ||
	    (nrv = nng_socket_set_size(
	         sub, NNG_OPT_RECVMAXSZ, SL_MAX_EVENT_BYTES)) != 0) {
		ex = ctl_fail(
		    c, "cannot set up a subscriber: %s", nng_strerror(nrv));
		goto done;
	}
	// A synchronous dial fails now if nothing listens; once connected,
	// nng redials by itself should the node restart.
	if ((nrv = nng_dial(sub, url, NULL, 0)) != 0) {
		ex = ctl_fail(
		    c, "cannot subscribe to %s: %s", url, nng_strerror(nrv));
		goto done;
	}
	// Take the baseline revision after subscribing, so that any change
	// between GetInfo and now is either received or reported as a gap.
	if (get_info(c, NULL, &last) != SLUICE_OK) {
		ex = CTL_EXIT_FAIL;
		goto done;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr,
	    "flagctl: watching %s%s%s at %s from revision %llu (Ctrl-C to "
	    "stop)\n",
	    rollout != NULL ? "rollout \"" : "all changes",
	    rollout != NULL ? rollout : "", rollout != NULL ? "\"" : "", url,
	    (unsigned long long) last);
	heard = sl_mono_ms();
	if (timeout_s != 0) {
		deadline = heard + timeout_s * 1000;
	}
	ex = CTL_EXIT_OK;
	while (!stop_requested) {
		now = sl_mono_ms();
		if (deadline != 0 && now >= deadline) {
			if (count != 0 && seen < count) {
				ex = ctl_fail(c,
				    "watch: timed out after %llu s (%llu of "
				    "%llu changes)",
				    (unsigned long long) timeout_s,
				    (unsigned long long) seen,
				    (unsigned long long) count);
			}
			break;
		}
		nrv = nng_recv(sub, &buf, &len, NNG_FLAG_ALLOC);
		if (nrv == NNG_ETIMEDOUT) {
			if (!silent && now - heard > WATCH_SILENCE_MS) {
				fprintf(stderr,
				    "flagctl: warning: nothing heard from %s "
				    "for %u s (no heartbeats either)\n",
				    url, WATCH_SILENCE_MS / 1000);
				silent = true;
			}
			continue;
		}
		if (nrv != 0) {
			ex = ctl_fail(
			    c, "change stream %s: %s", url, nng_strerror(nrv));
			break;
		}
		heard = sl_mono_ms();
		if (silent) {
			fprintf(
			    stderr, "flagctl: hearing from %s again\n", url);
			silent = false;
		}
		nrv = sl_event_decode(buf, len, &ev);
		nng_free(buf, len);
		if (nrv != SLUICE_OK) {
			fprintf(stderr,
			    "flagctl: warning: undecodable event (%zu "
			    "bytes) ignored\n",
			    len);
			continue;
		}
		if (ev->kind_case == SLUICE__V1__EVENT__KIND_CHANGE &&
		    ev->change != NULL) {
			const Sluice__V1__Change *ch = ev->change;

			if (ch->revision > last) {
				if (ch->revision > last + 1) {
					report_gap(
					    c, last + 1, ch->revision - 1);
				}
				last = ch->revision;
				if (change_matches(ch, rollout)) {
					print_change(c, ch);
					seen++;
				}
			}
		} else if (ev->kind_case ==
		        SLUICE__V1__EVENT__KIND_HEARTBEAT &&
		    ev->heartbeat != NULL) {
			const Sluice__V1__Heartbeat *hb = ev->heartbeat;

			// A heartbeat may overtake the change it counts, so
			// a heartbeat ahead of us is only a gap if the next
			// heartbeat finds the changes still missing.
			if (hb_pending > last) {
				report_gap(c, last + 1, hb_pending);
				last = hb_pending;
			}
			hb_pending = hb->revision > last ? hb->revision : 0;
			if (heartbeats && c->json) {
				emit_json(
				    json_pack("{s:s, s:I, s:I, s:I, s:b}",
				        "type", "heartbeat", "revision",
				        (json_int_t) hb->revision, "time_ms",
				        (json_int_t) hb->time_ms, "node_id",
				        (json_int_t) hb->node_id, "stale",
				        hb->stale ? 1 : 0));
			} else if (heartbeats) {
				char when[64];

				ctl_format_time(
				    hb->time_ms, when, sizeof(when));
				printf("heartbeat  %s  revision %llu  node "
				       "%llu%s\n",
				    when, (unsigned long long) hb->revision,
				    (unsigned long long) hb->node_id,
				    hb->stale ? "  (stale: no leader)" : "");
				fflush(stdout);
			}
		}
		sluice__v1__event__free_unpacked(ev, NULL);
		if (count != 0 && seen >= count) {
			break;
		}
	}
done:
	if (sub_open) {
		nng_close(sub);
	}
	free(pub);
	free(url);
	return (ex);
}
