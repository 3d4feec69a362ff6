// SPDX-License-Identifier: MIT
//
// fleet.c — a test helper, not a test: opens N sluice_client instances in
// one process against a real flagd and answers line commands on stdin,
// one answer line each on stdout, so that tests/integration/
// test_client_live.py can drive a fleet of ETL-job clients. It lives in
// helpers/ because every program in tests/integration/ is run as a test.
//
//   wait REV MS          all clients at revision >= REV within MS?
//                        -> "ok N" | "timeout AT/N min=M"
//   revs                 -> "min=M max=X n=N"
//   ids                  -> the client ids, space-separated
//   bool FLAG UNIT       client 0 -> "value=0|1 reason=R rev=N cache=0|1"
//   int FLAG             client 0 -> "value=N reason=R rev=N cache=0|1"
//   view_open            pins a view on client 0 -> "ok REV"
//   view_bool FLAG UNIT  -> "value=0|1 rev=N"
//   view_rolled_back     -> "yes" | "no"
//   view_close           -> "ok"
//   fakeack ID REV       sends one unsigned ack as client ID, as a
//                        stalled client would -> "ok" | "error CODE"
//   quit

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "envelope.h"
#include "rpc.h"
#include "sluice.h"

#define MAX_LINE 1024

// Sanitizer runs: when a client closes its stream, nng 1.5.2's dialer may
// already be redialling (its back-off is drawn as a signed number, so it
// often redials at once), and closing a socket whose dialer has a pipe in
// negotiation loses that endpoint, its pipe and their aios (allocated
// inside libnng; seen as a cycle of indirect leaks at exit). Only
// allocations made inside libnng are let go, and only in this helper;
// libsluice's own allocations are still checked.
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return ("leak:libnng.so\n");
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: fleet --server URLS [--clients N] [--cache FILE] "
	    "[--key FILE]\n"
	    "             [--ack-ms MS] [--connect-ms MS] "
	    "[--heartbeat-ms MS]\n");
	exit(2);
}

static int
fake_ack(const char *server, const char *id, uint64_t rev)
{
	Sluice__V1__Request   req;
	Sluice__V1__ClientAck ack;
	Sluice__V1__SignedAck sa;
	Sluice__V1__Reply    *rep = NULL;
	sl_rpc               *r;
	int                   rv;

	if ((rv = sl_rpc_open(&r, server, 5000)) != SLUICE_OK) {
		return (rv);
	}
	sluice__v1__client_ack__init(&ack);
	sluice__v1__signed_ack__init(&sa);
	ack.client_id        = (char *) (uintptr_t) id;
	ack.host             = (char *) (uintptr_t) "stalled-host";
	ack.pid              = 1;
	ack.applied_revision = rev;
	ack.time_ms          = sl_now_ms();
	if ((rv = sl_ack_seal(NULL, &ack, &sa)) == SLUICE_OK) {
		sluice__v1__request__init(&req);
		req.op_case = SLUICE__V1__REQUEST__OP_ACK;
		req.ack     = &sa;
		rv          = sl_rpc_call(r, &req, &rep);
		sl_signed_ack_clear(&sa);
	}
	if (rep != NULL) {
		sluice__v1__reply__free_unpacked(rep, NULL);
	}
	sl_rpc_close(r);
	return (rv);
}

int
main(int argc, char **argv)
{
	sluice_client_opts o;
	sluice_client    **cs;
	sluice_view       *view   = NULL;
	const char        *server = NULL;
	unsigned long      n      = 1;
	char               line[MAX_LINE];
	int                rv;

	sluice_client_opts_init(&o);
	o.heartbeat_ms       = 200;
	o.connect_timeout_ms = 5000;
	o.backoff_max_ms     = 500;
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			usage();
		}
		if (strcmp(a, "--server") == 0) {
			server = v;
		} else if (strcmp(a, "--clients") == 0) {
			n = strtoul(v, NULL, 10);
		} else if (strcmp(a, "--cache") == 0) {
			o.cache_file = v;
		} else if (strcmp(a, "--key") == 0) {
			o.key_file = v;
		} else if (strcmp(a, "--ack-ms") == 0) {
			o.ack_interval_ms = (uint32_t) strtoul(v, NULL, 10);
		} else if (strcmp(a, "--connect-ms") == 0) {
			o.connect_timeout_ms = (uint32_t) strtoul(v, NULL, 10);
		} else if (strcmp(a, "--heartbeat-ms") == 0) {
			o.heartbeat_ms = (uint32_t) strtoul(v, NULL, 10);
		} else {
			usage();
		}
	}
	if (server == NULL || n == 0 || n > 10000) {
		usage();
	}
	if ((cs = calloc(n, sizeof(*cs))) == NULL) {
		return (1);
	}
	for (unsigned long i = 0; i < n; i++) {
		if ((rv = sluice_client_open(&cs[i], server, &o)) !=
		    SLUICE_OK) {
			printf("error open %s\n", sluice_strerror(rv));
			return (1);
		}
	}
	printf("ready %lu\n", n);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		char               cmd[64] = "";
		char               a1[512] = "";
		char               a2[512] = "";
		unsigned long long x       = 0;
		sluice_detail      d;

		line[strcspn(line, "\n")] = '\0';
		(void) sscanf(line, "%63s %511s %511s", cmd, a1, a2);
		if (strcmp(cmd, "quit") == 0) {
			break;
		} else if (strcmp(cmd, "wait") == 0) {
			uint64_t rev = strtoull(a1, NULL, 10);
			uint32_t ms  = (uint32_t) strtoul(a2, NULL, 10);
			size_t   at  = 0;
			uint64_t min = UINT64_MAX;
			for (unsigned long i = 0; i < n; i++) {
				// One deadline for the fleet would be nicer;
				// the first wait absorbs most of it anyway.
				if (sluice_wait_revision(cs[i], rev, ms) ==
				    SLUICE_OK) {
					at++;
				} else {
					ms = 1;
				}
				x   = sluice_client_revision(cs[i]);
				min = x < min ? x : min;
			}
			if (at == n) {
				printf("ok %lu\n", n);
			} else {
				printf("timeout %zu/%lu min=%llu\n", at, n,
				    (unsigned long long) min);
			}
		} else if (strcmp(cmd, "revs") == 0) {
			uint64_t min = UINT64_MAX;
			uint64_t max = 0;
			for (unsigned long i = 0; i < n; i++) {
				uint64_t r = sluice_client_revision(cs[i]);
				min        = r < min ? r : min;
				max        = r > max ? r : max;
			}
			printf("min=%llu max=%llu n=%lu\n",
			    (unsigned long long) min, (unsigned long long) max,
			    n);
		} else if (strcmp(cmd, "ids") == 0) {
			for (unsigned long i = 0; i < n; i++) {
				printf("%s%s", i > 0 ? " " : "",
				    sluice_client_id(cs[i]));
			}
			putchar('\n');
		} else if (strcmp(cmd, "bool") == 0 ||
		    strcmp(cmd, "int") == 0) {
			// Value, reason and revision from one evaluation: two
			// calls may straddle a snapshot swap, and then the
			// value would belong to a later revision than the one
			// printed beside it.
			(void) sluice_eval_detail(cs[0], a1, a2, &d);
			if (strcmp(cmd, "bool") == 0) {
				x = d.kind == SLUICE_KIND_BOOL ||
				        d.kind == SLUICE_KIND_PERCENT
				    ? d.on
				    : false;
			} else {
				x = d.kind == SLUICE_KIND_INT
				    ? (unsigned long long) d.int_value
				    : (unsigned long long) -1;
			}
			printf("value=%lld reason=%s rev=%llu cache=%d\n",
			    (long long) x, sluice_reason_name(d.reason),
			    (unsigned long long) d.revision,
			    d.from_cache ? 1 : 0);
		} else if (strcmp(cmd, "view_open") == 0) {
			sluice_view_close(view);
			view = NULL;
			if ((rv = sluice_view_open(cs[0], &view)) !=
			    SLUICE_OK) {
				printf("error %s\n", sluice_strerror(rv));
			} else {
				printf("ok %llu\n",
				    (unsigned long long) sluice_view_revision(
				        view));
			}
		} else if (strcmp(cmd, "view_bool") == 0 && view != NULL) {
			x = sluice_view_bool(view, a1, a2, false);
			printf("value=%llu rev=%llu\n", x,
			    (unsigned long long) sluice_view_revision(view));
		} else if (strcmp(cmd, "view_rolled_back") == 0 &&
		    view != NULL) {
			printf("%s\n",
			    sluice_view_rolled_back(view) ? "yes" : "no");
		} else if (strcmp(cmd, "view_close") == 0) {
			sluice_view_close(view);
			view = NULL;
			printf("ok\n");
		} else if (strcmp(cmd, "fakeack") == 0) {
			rv = fake_ack(server, a1, strtoull(a2, NULL, 10));
			if (rv == SLUICE_OK) {
				printf("ok\n");
			} else {
				printf("error %s\n", sluice_strerror(rv));
			}
		} else {
			printf("error unknown command \"%s\"\n", line);
		}
		fflush(stdout);
	}
	sluice_view_close(view);
	for (unsigned long i = 0; i < n; i++) {
		sluice_client_close(cs[i]);
	}
	free(cs);
	return (0);
}
