// SPDX-License-Identifier: MIT
//
// Unit tests for clients/lib/client.c against an in-process fake flagd
// (fake_flagd.h, inproc://): first sync and evaluation, changes in
// order, re-sync on a revision gap, on a heartbeat ahead of the client
// and on heartbeat silence (with failover to the next endpoint), the
// cache file when no server answers, staleness with an injected clock,
// pinned views and rollback detection, and snapshot swaps under
// concurrently evaluating threads. Every wait is bounded.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <unistd.h>

#include "fake_flagd.h"
#include "sluice.h"

#define WAIT_MS 5000u

static atomic_int fake_seq;

// A fresh name per fake, so that tests never share an inproc address.
static fake *
fake_new(uint64_t revision)
{
	char name[64];

	snprintf(name, sizeof(name), "sluice-test-%d-%d", (int) getpid(),
	    atomic_fetch_add(&fake_seq, 1));
	return (fake_start(name, revision));
}

// alpha: stage 1 of 3, on_stale keep, max_stale 60 s.
// beta:  stage 2 of 3, on_stale baseline, max_stale from the options.
static fake *
fake_standard(uint64_t revision)
{
	fake *f = fake_new(revision);

	fake_put(f, fx_rollout("alpha", 1, 3, true, 60));
	fake_put(f, fx_rollout("beta", 2, 3, false, 0));
	return (f);
}

// An injected clock, in ms.
static atomic_uint_fast64_t test_clock = 1000000;

static uint64_t
clock_cb(void *arg)
{
	(void) arg;
	return (atomic_load(&test_clock));
}

typedef struct changes {
	pthread_mutex_t mtx;
	int             n;
	uint64_t        last_rev;
	char            last_rollout[64];
} changes;

static void
change_cb(void *arg, uint64_t rev, const char *rollout)
{
	changes *ch = arg;

	pthread_mutex_lock(&ch->mtx);
	ch->n++;
	ch->last_rev = rev;
	snprintf(ch->last_rollout, sizeof(ch->last_rollout), "%s",
	    rollout != NULL ? rollout : "(all)");
	pthread_mutex_unlock(&ch->mtx);
}

static void
opts_fast(sluice_client_opts *o)
{
	sluice_client_opts_init(o);
	o->connect_timeout_ms = WAIT_MS;
	o->request_timeout_ms = 1000;
	o->backoff_min_ms     = 10;
	o->backoff_max_ms     = 50;
	// Long enough that silence never triggers unless a test wants it.
	o->heartbeat_ms = 60000;
}

static sluice_client *
open_on(const fake *f, sluice_client_opts *o)
{
	sluice_client *c = NULL;

	assert_int_equal(sluice_client_open(&c, f->api_url, o), SLUICE_OK);
	assert_non_null(c);
	return (c);
}

static void
test_client_defaults_without_server_or_cache(void **state)
{
	sluice_client_opts o;
	sluice_client     *c = NULL;
	sluice_detail      d;
	char               buf[16];

	(void) state;
	opts_fast(&o);
	o.connect_timeout_ms = 50;
	assert_int_equal(
	    sluice_client_open(&c, "inproc://sluice-nobody-home", &o),
	    SLUICE_OK);
	assert_int_equal(sluice_client_revision(c), 0);
	assert_true(sluice_bool(c, "alpha.bool", "u", true));
	assert_false(sluice_bool(c, "alpha.bool", "u", false));
	assert_int_equal(sluice_int(c, "alpha.int", NULL, -5), -5);
	assert_int_equal(
	    sluice_string(c, "alpha.str", NULL, "dflt", buf, sizeof(buf)),
	    SLUICE_OK);
	assert_string_equal(buf, "dflt");
	assert_int_equal(
	    sluice_eval_detail(c, "alpha.bool", "u", &d), SLUICE_OK);
	assert_int_equal(d.reason, SLUICE_REASON_DEFAULT_UNKNOWN_FLAG);
	assert_int_equal(d.revision, 0);
	assert_int_equal(
	    sluice_stage(c, "alpha", buf, sizeof(buf), NULL), SLUICE_ENOENT);
	assert_int_equal(sluice_wait_revision(c, 1, 20), SLUICE_ETIMEDOUT);
	sluice_client_close(c);

	// No endpoints at all: an offline client.
	assert_int_equal(sluice_client_open(&c, NULL, NULL), SLUICE_OK);
	assert_int_equal(sluice_int(c, "x", NULL, 3), 3);
	sluice_client_close(c);
}

static void
test_client_rejects_bad_options(void **state)
{
	sluice_client_opts o;
	sluice_client     *c = NULL;

	(void) state;
	sluice_client_opts_init(&o);
	o.heartbeat_ms = 0;
	assert_int_equal(sluice_client_open(&c, NULL, &o), SLUICE_EINVAL);
	sluice_client_opts_init(&o);
	o.backoff_max_ms = 1;
	assert_int_equal(sluice_client_open(&c, NULL, &o), SLUICE_EINVAL);
	assert_null(c);
	assert_int_equal(sluice_client_open(NULL, NULL, NULL), SLUICE_EINVAL);
}

static void
test_client_first_sync_and_evaluation(void **state)
{
	fake              *f = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c;
	sluice_detail      d;
	char               buf[32];
	uint32_t           idx = 99;
	int                on  = 0;

	(void) state;
	opts_fast(&o);
	c = open_on(f, &o);
	assert_int_equal(sluice_client_revision(c), 5);
	assert_true(sluice_bool(c, "alpha.bool", NULL, false));
	assert_int_equal(sluice_int(c, "alpha.int", NULL, -1), 10);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 20);
	assert_int_equal(
	    sluice_string(c, "beta.str", NULL, "d", buf, sizeof(buf)),
	    SLUICE_OK);
	assert_string_equal(buf, "v2");
	assert_int_equal(
	    sluice_string(c, "beta.str", NULL, "d", buf, 2), SLUICE_ETOOBIG);
	assert_string_equal(buf, "v");
	// Wrong kinds give the default.
	assert_int_equal(sluice_int(c, "alpha.str", NULL, -1), -1);
	assert_true(sluice_bool(c, "alpha.int", NULL, true));
	assert_int_equal(
	    sluice_string(c, "alpha.int", NULL, "d", buf, sizeof(buf)),
	    SLUICE_OK);
	assert_string_equal(buf, "d");

	assert_int_equal(
	    sluice_stage(c, "beta", buf, sizeof(buf), &idx), SLUICE_OK);
	assert_string_equal(buf, "s2");
	assert_int_equal(idx, 2);

	// alpha.pct is at 50 %: each unit agrees with sluice_bucket().
	for (int i = 0; i < 200; i++) {
		char unit[24];
		bool want;
		snprintf(unit, sizeof(unit), "part-%d", i);
		want = sluice_bucket("alpha", unit, strlen(unit)) < 5000;
		assert_int_equal(
		    sluice_bool(c, "alpha.pct", unit, !want), want);
		assert_int_equal(
		    sluice_eval_detail(c, "alpha.pct", unit, &d), SLUICE_OK);
		assert_int_equal(d.reason,
		    want ? SLUICE_REASON_PERCENT_IN
		         : SLUICE_REASON_PERCENT_OUT);
		assert_int_equal(
		    d.bucket, sluice_bucket("alpha", unit, strlen(unit)));
		on += want;
	}
	assert_true(on > 50 && on < 150);
	// beta.pct is at 100 %, whatever the unit.
	assert_true(sluice_bool(c, "beta.pct", "anything", false));

	assert_int_equal(
	    sluice_eval_detail(c, "beta.str", NULL, &d), SLUICE_OK);
	assert_int_equal(d.reason, SLUICE_REASON_STAGE);
	assert_int_equal(d.kind, SLUICE_KIND_STRING);
	assert_string_equal(d.string_value, "v2");
	assert_string_equal(d.rollout, "beta");
	assert_string_equal(d.stage_name, "s2");
	assert_int_equal(d.revision, 5);
	assert_false(d.stale);
	assert_false(d.from_cache);
	assert_int_equal(sluice_eval_detail(c, "nope", NULL, &d), SLUICE_OK);
	assert_int_equal(d.reason, SLUICE_REASON_DEFAULT_UNKNOWN_FLAG);
	assert_string_equal(sluice_reason_name(SLUICE_REASON_STALE_BASELINE),
	    "STALE_BASELINE");
	sluice_client_close(c);
	fake_stop(f);
}

static void
test_client_applies_changes_in_order(void **state)
{
	fake              *f  = fake_standard(5);
	changes            ch = { .mtx = PTHREAD_MUTEX_INITIALIZER };
	sluice_client_opts o;
	sluice_client     *c;
	uint64_t           rev;

	(void) state;
	opts_fast(&o);
	o.change_cb  = change_cb;
	o.change_arg = &ch;
	c            = open_on(f, &o);
	rev = fake_commit(f, fx_rollout("beta", 0, 3, false, 0), true);
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 0);
	assert_false(sluice_bool(c, "beta.bool", NULL, true));
	rev = fake_commit(f, fx_rollout("gamma", 1, 2, false, 0), true);
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	assert_int_equal(sluice_int(c, "gamma.int", NULL, -1), 10);
	// The callback runs just after the swap that wakes waiters.
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&ch.mtx);
		int n = ch.n;
		pthread_mutex_unlock(&ch.mtx);
		if (n == 3) {
			break;
		}
		usleep(10 * 1000);
	}
	pthread_mutex_lock(&ch.mtx);
	assert_int_equal(ch.n, 3); // the first sync, then two changes
	assert_int_equal(ch.last_rev, 7);
	assert_string_equal(ch.last_rollout, "gamma");
	pthread_mutex_unlock(&ch.mtx);
	// Only the first sync fetched a snapshot.
	assert_int_equal(atomic_load(&f->snapshots), 1);
	sluice_client_close(c);
	fake_stop(f);
}

// Change callbacks of one client: counted, checked for order, and for
// overlap (two callbacks of one client must never run at once).
typedef struct burst {
	atomic_int inside;
	atomic_int overlaps;
	atomic_int disorder;
	uint64_t   last_rev; // only touched inside the callback
	atomic_int n;
} burst;

static void
burst_cb(void *arg, uint64_t rev, const char *rollout)
{
	burst *b = arg;

	(void) rollout;
	if (atomic_fetch_add(&b->inside, 1) != 0) {
		atomic_fetch_add(&b->overlaps, 1);
	}
	usleep(100); // widen the window an overlap would need
	if (b->last_rev != 0 && rev <= b->last_rev) {
		atomic_fetch_add(&b->disorder, 1);
	}
	b->last_rev = rev;
	atomic_fetch_add(&b->n, 1);
	atomic_fetch_sub(&b->inside, 1);
}

// Changes are applied on nng's callback threads: a burst published
// faster than the callbacks run is applied in order, each change once,
// the callbacks never overlap, and closing during a burst returns.
static void
test_client_burst_applies_in_order_without_overlap(void **state)
{
	fake              *f = fake_standard(5);
	burst              b;
	sluice_client_opts o;
	sluice_client     *c;
	uint64_t           rev = 0;

	(void) state;
	memset(&b, 0, sizeof(b));
	opts_fast(&o);
	o.change_cb  = burst_cb;
	o.change_arg = &b;
	c            = open_on(f, &o);
	for (int i = 0; i < 200; i++) {
		rev = fake_commit(
		    f, fx_rollout("beta", i % 3, 3, false, 0), true);
	}
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	for (int i = 0; i < 500 && atomic_load(&b.n) < 201; i++) {
		usleep(10 * 1000);
	}
	assert_int_equal(atomic_load(&b.n), 201); // the sync, then 200
	assert_int_equal(atomic_load(&b.overlaps), 0);
	assert_int_equal(atomic_load(&b.disorder), 0);
	assert_int_equal(b.last_rev, rev);
	assert_int_equal(atomic_load(&f->snapshots), 1); // no re-sync
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 10);
	for (int i = 0; i < 50; i++) {
		(void) fake_commit(
		    f, fx_rollout("beta", i % 3, 3, false, 0), true);
	}
	sluice_client_close(c); // while that burst may still be arriving
	assert_int_equal(atomic_load(&b.overlaps), 0);
	assert_int_equal(atomic_load(&b.disorder), 0);
	fake_stop(f);
}

static void
test_client_acks_at_connect_after_changes_and_leaving(void **state)
{
	fake              *f = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c;
	uint64_t           rev;
	int                n;

	(void) state;
	opts_fast(&o);
	o.ack_interval_ms = 60000; // no periodic ack during the test
	c                 = open_on(f, &o);
	assert_int_equal(strlen(sluice_client_id(c)), 16);
	for (int i = 0; i < 500 && atomic_load(&f->acks) < 1; i++) {
		usleep(10 * 1000);
	}
	assert_int_equal(atomic_load(&f->acks), 1); // at connect
	assert_int_equal(atomic_load(&f->acked_rev), 5);
	rev = fake_commit(f, fx_rollout("alpha", 2, 3, true, 60), true);
	for (int i = 0; i < 500 && atomic_load(&f->acked_rev) < rev; i++) {
		usleep(10 * 1000);
	}
	assert_int_equal(atomic_load(&f->acked_rev), rev);
	n = atomic_load(&f->acks);
	sluice_client_close(c);
	// The goodbye at close.
	assert_int_equal(atomic_load(&f->acks), n + 1);
	// No acks at all with an interval of 0.
	o.ack_interval_ms = 0;
	n                 = atomic_load(&f->acks);
	c                 = open_on(f, &o);
	(void) fake_commit(f, fx_rollout("beta", 1, 3, false, 0), true);
	assert_int_equal(sluice_wait_revision(c, rev + 1, WAIT_MS), SLUICE_OK);
	sluice_client_close(c);
	assert_int_equal(atomic_load(&f->acks), n);
	fake_stop(f);
}

static void
test_client_revision_gap_forces_resync(void **state)
{
	fake              *f = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c;
	uint64_t           rev;

	(void) state;
	opts_fast(&o);
	c = open_on(f, &o);
	// Revision 6 is committed but its change is lost on the way.
	(void) fake_commit(f, fx_rollout("alpha", 2, 3, true, 60), false);
	rev = fake_commit(f, fx_rollout("beta", 1, 3, false, 0), true);
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	// Both changes are in: the lost one came with the new snapshot.
	assert_int_equal(sluice_int(c, "alpha.int", NULL, -1), 20);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 10);
	assert_int_equal(atomic_load(&f->snapshots), 2);
	sluice_client_close(c);
	fake_stop(f);
}

// After a node installs a raft snapshot it publishes a change with no
// rollout and no audit entry: the client cannot know what changed and
// must fetch everything, not just move its revision.
static void
test_client_state_reset_change_forces_resync(void **state)
{
	fake              *f = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c;
	Sluice__V1__Event  ev;
	Sluice__V1__Change ch;
	uint64_t           rev;

	(void) state;
	opts_fast(&o);
	c = open_on(f, &o);
	assert_int_equal(sluice_wait_revision(c, 5, WAIT_MS), SLUICE_OK);
	// The state moves to revision 6 without its change being seen...
	rev = fake_commit(f, fx_rollout("alpha", 2, 3, true, 60), false);
	// ...and the node then announces revision 6 as a bare reset.
	sluice__v1__event__init(&ev);
	sluice__v1__change__init(&ch);
	ch.revision  = rev;
	ev.kind_case = SLUICE__V1__EVENT__KIND_CHANGE;
	ev.change    = &ch;
	pthread_mutex_lock(&f->mtx);
	fake_publish(f, &ev);
	pthread_mutex_unlock(&f->mtx);
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	for (int i = 0; i < 500 && atomic_load(&f->snapshots) < 2; i++) {
		usleep(10 * 1000);
	}
	assert_int_equal(atomic_load(&f->snapshots), 2);
	assert_int_equal(sluice_int(c, "alpha.int", NULL, -1), 20);
	sluice_client_close(c);
	fake_stop(f);
}

static void
test_client_heartbeat_ahead_forces_resync(void **state)
{
	fake              *f = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c;
	uint64_t           rev;

	(void) state;
	opts_fast(&o);
	c   = open_on(f, &o);
	rev = fake_commit(f, fx_rollout("alpha", 0, 3, true, 60), false);
	fake_heartbeat(f);
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	assert_int_equal(sluice_int(c, "alpha.int", NULL, -1), 0);
	assert_int_equal(atomic_load(&f->snapshots), 2);
	// A heartbeat at the applied revision changes nothing.
	fake_heartbeat(f);
	assert_int_equal(
	    sluice_wait_revision(c, rev + 1, 100), SLUICE_ETIMEDOUT);
	assert_int_equal(atomic_load(&f->snapshots), 2);
	sluice_client_close(c);
	fake_stop(f);
}

static void
test_client_heartbeat_silence_fails_over(void **state)
{
	fake              *a = fake_standard(5);
	fake              *b = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c = NULL;
	char               eps[200];

	(void) state;
	// b is ahead of a, as a node that kept up while a died would be.
	(void) fake_commit(b, fx_rollout("beta", 0, 3, false, 0), false);
	opts_fast(&o);
	o.heartbeat_ms     = 30;
	o.heartbeat_misses = 3;
	atomic_store(&a->hb_ms, 30);
	atomic_store(&b->hb_ms, 30);
	snprintf(eps, sizeof(eps), "%s, %s", a->api_url, b->api_url);
	assert_int_equal(sluice_client_open(&c, eps, &o), SLUICE_OK);
	assert_int_equal(sluice_client_revision(c), 5);
	assert_int_equal(atomic_load(&b->snapshots), 0);
	// a keeps its API but its stream goes quiet: the client must give
	// up on it after three intervals and move to b.
	atomic_store(&a->hb_ms, 0);
	assert_int_equal(sluice_wait_revision(c, 6, WAIT_MS), SLUICE_OK);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 0);
	assert_true(atomic_load(&b->snapshots) >= 1);
	// b keeps beating: no further re-sync.
	usleep(200 * 1000);
	assert_int_equal(atomic_load(&b->snapshots), 1);
	// Now b dies altogether; a is still there and gets the client back.
	fake_stop(b);
	(void) fake_commit(a, fx_rollout("beta", 1, 3, false, 0), false);
	(void) fake_commit(a, fx_rollout("beta", 1, 3, false, 0), false);
	atomic_store(&a->hb_ms, 30);
	assert_int_equal(sluice_wait_revision(c, 7, WAIT_MS), SLUICE_OK);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 10);
	sluice_client_close(c);
	fake_stop(a);
}

// A node cut off from its leader keeps beating, but says it is stale:
// the client must not count that as contact, and moves to a node that
// has a leader.
static void
test_client_stale_heartbeats_fail_over(void **state)
{
	fake              *a = fake_standard(5);
	fake              *b = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c = NULL;
	char               eps[200];

	(void) state;
	(void) fake_commit(b, fx_rollout("beta", 0, 3, false, 0), false);
	opts_fast(&o);
	o.heartbeat_ms     = 30;
	o.heartbeat_misses = 3;
	atomic_store(&a->hb_ms, 30);
	atomic_store(&b->hb_ms, 30);
	snprintf(eps, sizeof(eps), "%s, %s", a->api_url, b->api_url);
	assert_int_equal(sluice_client_open(&c, eps, &o), SLUICE_OK);
	assert_int_equal(sluice_client_revision(c), 5);
	// a loses its leader but keeps beating.
	atomic_store(&a->hb_stale, true);
	assert_int_equal(sluice_wait_revision(c, 6, WAIT_MS), SLUICE_OK);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 0);
	assert_true(atomic_load(&b->snapshots) >= 1);
	sluice_client_close(c);
	fake_stop(a);
	fake_stop(b);
}

static void
test_client_cache_serves_when_server_down(void **state)
{
	char               dir[] = "/tmp/sluice-client-XXXXXX";
	char               path[96];
	fake              *f = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c = NULL;
	sluice_detail      d;
	char               api[80];

	(void) state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cache", dir);
	opts_fast(&o);
	o.cache_file = path;
	c            = open_on(f, &o);
	(void) fake_commit(f, fx_rollout("beta", 1, 3, false, 0), true);
	assert_int_equal(sluice_wait_revision(c, 6, WAIT_MS), SLUICE_OK);
	sluice_client_close(c); // the cache is written once idle, or here
	snprintf(api, sizeof(api), "%s", f->api_url);
	fake_stop(f);

	// flagd is down: the cache answers.
	o.connect_timeout_ms = 50;
	assert_int_equal(sluice_client_open(&c, api, &o), SLUICE_OK);
	assert_int_equal(sluice_client_revision(c), 6);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 10);
	assert_int_equal(
	    sluice_eval_detail(c, "beta.int", NULL, &d), SLUICE_OK);
	assert_int_equal(d.reason, SLUICE_REASON_CACHE);
	assert_true(d.from_cache);
	sluice_client_close(c);

	// A corrupt cache is not used at all.
	{
		FILE *fp = fopen(path, "r+b");
		assert_non_null(fp);
		fseek(fp, 50, SEEK_SET);
		fputc('!', fp);
		fclose(fp);
	}
	assert_int_equal(sluice_client_open(&c, NULL, &o), SLUICE_OK);
	assert_int_equal(sluice_client_revision(c), 0);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), -1);
	sluice_client_close(c);
	unlink(path);
	rmdir(dir);
}

static void
test_client_cache_then_server_comes_back(void **state)
{
	char               dir[] = "/tmp/sluice-client-XXXXXX";
	char               path[96];
	fake              *f = fake_standard(5);
	fake              *g = NULL;
	sluice_client_opts o;
	sluice_client     *c = NULL;
	char               eps[200];
	char               name[64];

	(void) state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cache", dir);
	opts_fast(&o);
	o.cache_file = path;
	c            = open_on(f, &o);
	sluice_client_close(c);
	fake_stop(f);

	// Started with no server: the cache, then a server appears.
	snprintf(name, sizeof(name), "sluice-later-%d", (int) getpid());
	snprintf(eps, sizeof(eps), "inproc://sluice-never-%d,inproc://%s-api",
	    (int) getpid(), name);
	o.connect_timeout_ms = 0;
	assert_int_equal(sluice_client_open(&c, eps, &o), SLUICE_OK);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 20);
	usleep(50 * 1000);
	assert_int_equal(sluice_client_revision(c), 5);
	g = fake_start(name, 9);
	fake_put(g, fx_rollout("beta", 0, 3, false, 0));
	assert_int_equal(sluice_wait_revision(c, 9, WAIT_MS), SLUICE_OK);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 0);
	sluice_client_close(c);
	fake_stop(g);
	unlink(path);
	rmdir(dir);
}

static void
test_client_staleness_policy_with_injected_clock(void **state)
{
	fake              *f = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c;
	sluice_detail      d;
	char               buf[8];
	uint32_t           idx;
	uint64_t           t0 = atomic_load(&test_clock);

	(void) state;
	opts_fast(&o);
	o.clock        = clock_cb;
	o.max_stale_ms = 10000; // beta's spec says 0: this applies
	c              = open_on(f, &o);

	atomic_store(&test_clock, t0 + 10000);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 20);
	// Past beta's max_stale: baseline (stage 0). alpha (60 s) is fine.
	atomic_store(&test_clock, t0 + 10001);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 0);
	assert_false(sluice_bool(c, "beta.pct", "u", true));
	assert_int_equal(
	    sluice_eval_detail(c, "beta.int", NULL, &d), SLUICE_OK);
	assert_int_equal(d.reason, SLUICE_REASON_STALE_BASELINE);
	assert_true(d.stale);
	assert_int_equal(d.stage, 0);
	assert_int_equal(
	    sluice_stage(c, "beta", buf, sizeof(buf), &idx), SLUICE_OK);
	assert_string_equal(buf, "s0");
	assert_int_equal(idx, 0);
	assert_int_equal(sluice_int(c, "alpha.int", NULL, -1), 10);
	assert_int_equal(
	    sluice_eval_detail(c, "alpha.int", NULL, &d), SLUICE_OK);
	assert_int_equal(d.reason, SLUICE_REASON_STAGE);
	// Past alpha's 60 s: on_stale keep holds the last known value.
	atomic_store(&test_clock, t0 + 60001);
	assert_int_equal(sluice_int(c, "alpha.int", NULL, -1), 10);
	assert_int_equal(
	    sluice_eval_detail(c, "alpha.int", NULL, &d), SLUICE_OK);
	assert_int_equal(d.reason, SLUICE_REASON_STALE_KEEP);
	assert_true(d.stale);

	// A heartbeat is contact: fresh again.
	fake_heartbeat(f);
	for (int i = 0; i < 500 && sluice_int(c, "beta.int", NULL, -1) != 20;
	     i++) {
		usleep(10 * 1000);
	}
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 20);
	sluice_client_close(c);

	// max_stale 0 in both spec and options: never stale.
	o.max_stale_ms = 0;
	c              = open_on(f, &o);
	atomic_store(&test_clock, t0 + 1000000000);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 20);
	sluice_client_close(c);
	atomic_store(&test_clock, t0);
	fake_stop(f);
}

static void
test_client_view_pins_and_reports_rollback(void **state)
{
	fake              *f = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c;
	sluice_view       *v  = NULL;
	sluice_view       *va = NULL;
	sluice_view       *v2 = NULL;
	char               buf[8];
	uint64_t           rev;

	(void) state;
	opts_fast(&o);
	c = open_on(f, &o);
	assert_int_equal(sluice_view_open(c, &v), SLUICE_OK);
	assert_int_equal(sluice_view_open(c, &va), SLUICE_OK);
	assert_int_equal(sluice_view_revision(v), 5);
	assert_true(sluice_view_bool(v, "beta.bool", NULL, false));
	assert_int_equal(sluice_view_int(va, "alpha.int", NULL, -1), 10);
	assert_false(sluice_view_rolled_back(v));

	// A promotion is not a rollback.
	rev = fake_commit(f, fx_rollout("alpha", 2, 3, true, 60), true);
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	assert_false(sluice_view_rolled_back(va));
	assert_int_equal(sluice_view_int(va, "alpha.int", NULL, -1), 10);

	// beta is rolled back: the client follows, the view does not.
	rev = fake_commit(f, fx_rollout("beta", 1, 3, false, 0), true);
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 10);
	assert_int_equal(sluice_view_int(v, "beta.int", NULL, -1), 20);
	assert_int_equal(
	    sluice_view_string(v, "beta.str", NULL, "", buf, sizeof(buf)),
	    SLUICE_OK);
	assert_string_equal(buf, "v2");
	assert_true(sluice_view_rolled_back(v));
	// The view that only read alpha saw no rollback.
	assert_false(sluice_view_rolled_back(va));

	// Pinned now, then a rollback and a re-promotion: still reported.
	assert_int_equal(sluice_view_open(c, &v2), SLUICE_OK);
	assert_int_equal(
	    sluice_view_stage(v2, "beta", buf, sizeof(buf), NULL), SLUICE_OK);
	assert_string_equal(buf, "s1");
	(void) fake_commit(f, fx_rollout("beta", 0, 3, false, 0), true);
	rev = fake_commit(f, fx_rollout("beta", 1, 3, false, 0), true);
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	assert_true(sluice_view_rolled_back(v2));

	sluice_view_close(v);
	sluice_view_close(va);
	// A view outlives its client's close: still evaluates, no rollback.
	sluice_client_close(c);
	assert_string_equal(buf, "s1");
	assert_int_equal(sluice_view_int(v2, "beta.int", NULL, -1), 10);
	assert_false(sluice_view_rolled_back(v2));
	sluice_view_close(v2);
	fake_stop(f);
}

typedef struct reader_arg {
	sluice_client *c;
	atomic_bool   *stop;
	atomic_long    evals;
	atomic_int     bad;
} reader_arg;

// Every evaluation must see one whole snapshot: the int and string of
// a flag set agree with the stage reported in the same detail, and
// views never change under the reader.
static void *
reader_main(void *p)
{
	reader_arg   *a = p;
	sluice_detail d;
	char          s[8];
	long          n = 0;

	while (!atomic_load(a->stop)) {
		sluice_view *v = NULL;
		int64_t      pinned;

		if (sluice_eval_detail(a->c, "beta.int", NULL, &d) !=
		        SLUICE_OK ||
		    d.int_value != 10 * (int64_t) d.stage) {
			atomic_fetch_add(&a->bad, 1);
		}
		if (sluice_eval_detail(a->c, "beta.str", NULL, &d) !=
		        SLUICE_OK ||
		    (unsigned) (d.string_value[1] - '0') != d.stage) {
			atomic_fetch_add(&a->bad, 1);
		}
		(void) sluice_bool(a->c, "beta.pct", "unit-7", false);
		(void) sluice_string(
		    a->c, "alpha.str", NULL, "", s, sizeof(s));
		if ((n & 63) == 0 && sluice_view_open(a->c, &v) == SLUICE_OK) {
			pinned = sluice_view_int(v, "beta.int", NULL, -1);
			for (int i = 0; i < 20; i++) {
				if (sluice_view_int(v, "beta.int", NULL, -1) !=
				    pinned) {
					atomic_fetch_add(&a->bad, 1);
				}
			}
			(void) sluice_view_rolled_back(v);
			sluice_view_close(v);
		}
		n += 4;
	}
	atomic_store(&a->evals, n);
	return (NULL);
}

static void
test_client_swap_under_concurrent_readers(void **state)
{
	fake              *f = fake_standard(5);
	sluice_client_opts o;
	sluice_client     *c;
	atomic_bool        stop = false;
	reader_arg         ra[4];
	pthread_t          th[4];
	uint64_t           rev   = 0;
	long               total = 0;

	(void) state;
	opts_fast(&o);
	c = open_on(f, &o);
	for (int i = 0; i < 4; i++) {
		ra[i].c    = c;
		ra[i].stop = &stop;
		atomic_init(&ra[i].evals, 0);
		atomic_init(&ra[i].bad, 0);
		assert_int_equal(
		    pthread_create(&th[i], NULL, reader_main, &ra[i]), 0);
	}
	for (int i = 0; i < 300; i++) {
		rev = fake_commit(f,
		    fx_rollout("beta", (uint32_t) (i % 3), 3, false, 0), true);
		if (i % 50 == 0) {
			// Now and then a re-sync swaps a whole new snapshot.
			(void) fake_commit(f,
			    fx_rollout(
			        "alpha", (uint32_t) (i % 3), 3, true, 60),
			    false);
			rev = fake_commit(f,
			    fx_rollout(
			        "beta", (uint32_t) (i % 3), 3, false, 0),
			    true);
		}
		if (i % 10 == 0) {
			assert_int_equal(
			    sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
		}
	}
	assert_int_equal(sluice_wait_revision(c, rev, WAIT_MS), SLUICE_OK);
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(atomic_load(&ra[i].bad), 0);
		total += atomic_load(&ra[i].evals);
	}
	assert_true(total > 0);
	assert_int_equal(sluice_int(c, "beta.int", NULL, -1), 10 * (299 % 3));
	sluice_client_close(c);
	fake_stop(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_defaults_without_server_or_cache),
		cmocka_unit_test(test_client_rejects_bad_options),
		cmocka_unit_test(test_client_first_sync_and_evaluation),
		cmocka_unit_test(test_client_applies_changes_in_order),
		cmocka_unit_test(
		    test_client_burst_applies_in_order_without_overlap),
		cmocka_unit_test(
		    test_client_acks_at_connect_after_changes_and_leaving),
		cmocka_unit_test(test_client_revision_gap_forces_resync),
		cmocka_unit_test(test_client_state_reset_change_forces_resync),
		cmocka_unit_test(test_client_heartbeat_ahead_forces_resync),
		cmocka_unit_test(test_client_heartbeat_silence_fails_over),
		cmocka_unit_test(test_client_stale_heartbeats_fail_over),
		cmocka_unit_test(test_client_cache_serves_when_server_down),
		cmocka_unit_test(test_client_cache_then_server_comes_back),
		cmocka_unit_test(
		    test_client_staleness_policy_with_injected_clock),
		cmocka_unit_test(test_client_view_pins_and_reports_rollback),
		cmocka_unit_test(test_client_swap_under_concurrent_readers),
	};

	if (getenv("SLUICE_LOG_LEVEL") == NULL) {
		sl_log_level = SL_LOG_ERR - 1;
	}
	return (cmocka_run_group_tests_name("lib/client", tests, NULL, NULL));
}
