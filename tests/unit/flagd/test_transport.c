// SPDX-License-Identifier: MIT
//
// test_transport.c — the host-name resolving consensus transport: address
// splitting, a connect by name reaching a listener on loopback, a name
// that does not resolve failing the connect (libraft then retries), and a
// close while a name is being resolved cancelling the connect before the
// close completes. Each test runs its own libuv loop to completion.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "transport.h"

typedef struct outcome {
	int                 calls;
	int                 status;
	struct uv_stream_s *stream;
	int                 closed;
} outcome;

static void
connect_cb(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
	outcome *o = req->data;

	o->calls++;
	o->status = status;
	o->stream = stream;
}

static void
close_cb(struct raft_uv_transport *t)
{
	outcome *o = t->data;

	o->closed++;
}

static void
free_handle_cb(uv_handle_t *h)
{
	free(h);
}

// The test's listener never accepts: the kernel's backlog holds the
// connection, which is all a connect needs.
static void
listen_cb(uv_stream_t *server, int status)
{
	(void) server;
	(void) status;
}

static void
test_transport_split(void **state)
{
	char     host[64];
	unsigned port = 0;

	(void) state;
	assert_int_equal(flagd_transport_split("flagd-0.flagd.ns.svc:7402",
	                     host, sizeof(host), &port),
	    SLUICE_OK);
	assert_string_equal(host, "flagd-0.flagd.ns.svc");
	assert_int_equal(port, 7402);
	assert_int_equal(
	    flagd_transport_split("10.0.0.1:1", host, sizeof(host), &port),
	    SLUICE_OK);
	assert_string_equal(host, "10.0.0.1");
	assert_int_equal(
	    flagd_transport_split("nohost", host, sizeof(host), &port),
	    SLUICE_EINVAL);
	assert_int_equal(
	    flagd_transport_split(":7402", host, sizeof(host), &port),
	    SLUICE_EINVAL);
	assert_int_equal(
	    flagd_transport_split("h:0", host, sizeof(host), &port),
	    SLUICE_EINVAL);
	assert_int_equal(
	    flagd_transport_split("h:65536", host, sizeof(host), &port),
	    SLUICE_EINVAL);
	assert_int_equal(
	    flagd_transport_split("h:12x", host, sizeof(host), &port),
	    SLUICE_EINVAL);
	assert_int_equal(flagd_transport_split("a-very-long-host-name-that-"
	                                       "does-not-fit-in-the-buffer-"
	                                       "given:1",
	                     host, 16, &port),
	    SLUICE_EINVAL);
}

// Runs the loop until cond is set or a bounded number of turns pass.
static void
run_until(uv_loop_t *loop, const int *cond)
{
	for (int i = 0; i < 2000 && *cond == 0; i++) {
		(void) uv_run(loop, UV_RUN_ONCE);
	}
}

static void
close_and_drain(uv_loop_t *loop, flagd_transport *t, outcome *o)
{
	struct raft_uv_transport *rt = flagd_transport_raft(t);

	rt->data = o;
	rt->close(rt, close_cb);
	run_until(loop, &o->closed);
	assert_int_equal(o->closed, 1);
	flagd_transport_free(t);
	(void) uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

static void
test_transport_connects_by_host_name(void **state)
{
	uv_loop_t                 loop;
	uv_tcp_t                 *srv = malloc(sizeof(*srv));
	struct sockaddr_in        a;
	struct sockaddr_storage   bound;
	int                       blen = sizeof(bound);
	flagd_transport          *t;
	struct raft_uv_transport *rt;
	struct raft_uv_connect    req;
	outcome                   o;
	char                      addr[64];

	(void) state;
	memset(&o, 0, sizeof(o));
	assert_non_null(srv);
	assert_int_equal(uv_loop_init(&loop), 0);
	// A plain listener on an ephemeral loopback port: the connect only
	// has to reach it.
	assert_int_equal(uv_tcp_init(&loop, srv), 0);
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
	assert_int_equal(uv_tcp_bind(srv, (const struct sockaddr *) &a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *) srv, 8, listen_cb), 0);
	assert_int_equal(
	    uv_tcp_getsockname(srv, (struct sockaddr *) &bound, &blen), 0);
	snprintf(addr, sizeof(addr), "localhost:%u",
	    (unsigned) ntohs(((struct sockaddr_in *) &bound)->sin_port));

	assert_int_equal(
	    flagd_transport_alloc(&t, &loop, "127.0.0.1:0"), SLUICE_OK);
	rt = flagd_transport_raft(t);
	assert_int_equal(rt->init(rt, 1, "localhost:1"), 0);
	req.data = &o;
	assert_int_equal(rt->connect(rt, &req, 2, addr, connect_cb), 0);
	run_until(&loop, &o.calls);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, 0);
	assert_non_null(o.stream);
	uv_close((uv_handle_t *) o.stream, free_handle_cb);
	uv_close((uv_handle_t *) srv, free_handle_cb);
	close_and_drain(&loop, t, &o);
}

static void
test_transport_unresolvable_name_fails_the_connect(void **state)
{
	uv_loop_t                 loop;
	flagd_transport          *t;
	struct raft_uv_transport *rt;
	struct raft_uv_connect    req;
	outcome                   o;

	(void) state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(
	    flagd_transport_alloc(&t, &loop, "127.0.0.1:0"), SLUICE_OK);
	rt = flagd_transport_raft(t);
	assert_int_equal(rt->init(rt, 1, "localhost:1"), 0);
	req.data = &o;
	// RFC 2606: .invalid never resolves.
	assert_int_equal(rt->connect(rt, &req, 2,
	                     "flagd-9.no-such-host.invalid:7402", connect_cb),
	    0);
	run_until(&loop, &o.calls);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, RAFT_NOCONNECTION);
	assert_null(o.stream);
	// Not HOST:PORT at all: refused at once.
	assert_int_not_equal(
	    rt->connect(rt, &req, 3, "no-port", connect_cb), 0);
	assert_int_equal(o.calls, 1);
	close_and_drain(&loop, t, &o);
}

static void
test_transport_close_cancels_a_resolving_connect(void **state)
{
	uv_loop_t                 loop;
	flagd_transport          *t;
	struct raft_uv_transport *rt;
	struct raft_uv_connect    req;
	outcome                   o;

	(void) state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(
	    flagd_transport_alloc(&t, &loop, "127.0.0.1:0"), SLUICE_OK);
	rt = flagd_transport_raft(t);
	assert_int_equal(rt->init(rt, 1, "localhost:1"), 0);
	req.data = &o;
	assert_int_equal(
	    rt->connect(rt, &req, 2, "localhost:9", connect_cb), 0);
	// Close before the loop ever ran the resolution's callback.
	rt->data = &o;
	rt->close(rt, close_cb);
	run_until(&loop, &o.closed);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, RAFT_CANCELED);
	assert_int_equal(o.closed, 1);
	assert_int_equal(rt->connect(rt, &req, 2, "localhost:9", connect_cb),
	    RAFT_CANCELED);
	flagd_transport_free(t);
	(void) uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transport_split),
		cmocka_unit_test(test_transport_connects_by_host_name),
		cmocka_unit_test(
		    test_transport_unresolvable_name_fails_the_connect),
		cmocka_unit_test(
		    test_transport_close_cancels_a_resolving_connect),
	};

	return (
	    cmocka_run_group_tests_name("flagd/transport", tests, NULL, NULL));
}
