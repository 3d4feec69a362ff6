// SPDX-License-Identifier: MIT
//
// publish.c — flagd's change stream. One nng PUB socket; the writer thread
// publishes each committed change, and a heartbeat thread publishes the
// current revision every interval so subscribers can tell a quiet stream
// from a dead one, and a missed change from no change.

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>

#include "codec.h"
#include "publish.h"

struct flagd_publish {
	nng_socket      sock;
	bool            sock_open;
	uint64_t        node_id;
	uint64_t        heartbeat_ms;
	flagd_metrics  *m;
	pthread_t       hb_thread;
	bool            hb_started;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            stopping;
	// Asked by each heartbeat, under mtx: once set_stale_fn(NULL)
	// returns, no call into the old function is running.
	bool (*stale_fn)(void *);
	void *stale_arg;
	// The last revision whose change has been sent. A heartbeat never
	// advertises a revision before its change has left.
	_Atomic uint64_t revision;
};

static void
send_event(flagd_publish *p, const Sluice__V1__Event *ev)
{
	uint8_t *buf;
	size_t   len;
	int      rv;

	if (sl_pack(&ev->base, &buf, &len) != SLUICE_OK) {
		sl_log_err("pub.pack", "cannot pack event: out of memory");
		return;
	}
	// NNG_FLAG_ALLOC hands the buffer to nng on success.
	if ((rv = nng_send(p->sock, buf, len, NNG_FLAG_ALLOC)) != 0) {
		free(buf);
		sl_log_warn(
		    "pub.send", "publish failed: %s", nng_strerror(rv));
	}
}

static void
heartbeat(flagd_publish *p)
{
	Sluice__V1__Event     ev = SLUICE__V1__EVENT__INIT;
	Sluice__V1__Heartbeat hb = SLUICE__V1__HEARTBEAT__INIT;

	hb.revision = atomic_load(&p->revision);
	hb.time_ms  = sl_now_ms();
	hb.node_id  = p->node_id;
	pthread_mutex_lock(&p->mtx);
	hb.stale = p->stale_fn != NULL && p->stale_fn(p->stale_arg);
	pthread_mutex_unlock(&p->mtx);
	ev.kind_case = SLUICE__V1__EVENT__KIND_HEARTBEAT;
	ev.heartbeat = &hb;
	send_event(p, &ev);
	atomic_fetch_add(&p->m->heartbeats_published, 1);
}

static void *
hb_main(void *arg)
{
	flagd_publish  *p = arg;
	struct timespec ts;

	pthread_mutex_lock(&p->mtx);
	while (!p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		heartbeat(p);
		pthread_mutex_lock(&p->mtx);
		sl_deadline_after(&ts, p->heartbeat_ms);
		while (!p->stopping &&
		    pthread_cond_timedwait(&p->cv, &p->mtx, &ts) == 0) { }
	}
	pthread_mutex_unlock(&p->mtx);
	return (NULL);
}

int
flagd_publish_open(flagd_publish **pp, const char *url, uint64_t node_id,
    uint64_t heartbeat_ms, uint64_t revision, flagd_metrics *m)
{
	flagd_publish     *p;
	pthread_condattr_t ca;
	int                rv;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	p->node_id      = node_id;
	p->heartbeat_ms = heartbeat_ms;
	p->m            = m;
	atomic_store(&p->revision, revision);
	pthread_mutex_init(&p->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);

	if ((rv = nng_pub0_open(&p->sock)) != 0) {
		sl_log_err("pub.open", "cannot open PUB socket: %s",
		    nng_strerror(rv));
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	p->sock_open = true;
	if ((rv = nng_socket_set_int(
	         p->sock, NNG_OPT_SENDBUF, SL_STREAM_QUEUE)) != 0) {
		sl_log_err("pub.open", "cannot size the PUB queue: %s",
		    nng_strerror(rv));
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	if ((rv = nng_listen(p->sock, url, NULL, 0)) != 0) {
		sl_log_err("pub.listen", "cannot listen on %s: %s", url,
		    nng_strerror(rv));
		rv = SLUICE_EIO;
		goto fail;
	}
	if (pthread_create(&p->hb_thread, NULL, hb_main, p) != 0) {
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	p->hb_started = true;
	*pp           = p;
	return (SLUICE_OK);
fail:
	flagd_publish_close(p);
	return (rv);
}

void
flagd_publish_set_stale_fn(flagd_publish *p, bool (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&p->mtx);
	p->stale_fn  = fn;
	p->stale_arg = arg;
	pthread_mutex_unlock(&p->mtx);
}

void
flagd_publish_change(flagd_publish *p, uint64_t revision,
    const Sluice__V1__Rollout *r, const Sluice__V1__AuditEntry *a)
{
	Sluice__V1__Event  ev = SLUICE__V1__EVENT__INIT;
	Sluice__V1__Change ch = SLUICE__V1__CHANGE__INIT;

	ch.revision = revision;
	// protobuf-c's packer does not modify messages; its API lacks const.
	ch.rollout   = (Sluice__V1__Rollout *) (uintptr_t) r;
	ch.audit     = (Sluice__V1__AuditEntry *) (uintptr_t) a;
	ev.kind_case = SLUICE__V1__EVENT__KIND_CHANGE;
	ev.change    = &ch;
	send_event(p, &ev);
	atomic_store(&p->revision, revision);
	atomic_fetch_add(&p->m->events_published, 1);
}

void
flagd_publish_close(flagd_publish *p)
{
	if (p == NULL) {
		return;
	}
	if (p->hb_started) {
		pthread_mutex_lock(&p->mtx);
		p->stopping = true;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mtx);
		pthread_join(p->hb_thread, NULL);
	}
	if (p->sock_open) {
		nng_close(p->sock);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mtx);
	free(p);
}
