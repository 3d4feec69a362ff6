/* SPDX-License-Identifier: MIT */
/*
 * fake_flagd.h — a tiny in-process flagd for the client tests: an nng REP
 * socket answering GetInfo and GetSnapshot from a state the test drives,
 * and a PUB socket on which the test publishes changes and heartbeats
 * itself (or lets a thread send heartbeats every hb_ms). inproc:// only,
 * so no ports and no timing outside the test's control; changes can be
 * committed without being published to make gaps on purpose.
 */
#ifndef FAKE_FLAGD_H
#define FAKE_FLAGD_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>

#include "codec.h"
#include "envelope.h"
#include "lib_fixture.h"

#define FAKE_MAX_ROLLOUTS 16

typedef struct fake {
	nng_socket           rep;
	nng_socket           pub;
	char                 api_url[80];
	char                 pub_url[80];
	pthread_t            thr;
	atomic_bool          stop;
	atomic_uint          hb_ms;    // 0 = the test sends heartbeats
	atomic_bool          hb_stale; // heartbeats say: no leader here
	pthread_mutex_t      mtx;
	Sluice__V1__Rollout *rs[FAKE_MAX_ROLLOUTS];
	size_t               n;
	uint64_t             revision;
	atomic_int           infos;
	atomic_int           snapshots;
	atomic_int           acks;
	atomic_uint_fast64_t acked_rev; // the last ack's applied revision
} fake;

static inline uint64_t
fake_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (
	    (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u);
}

static inline void
fake_publish(fake *f, Sluice__V1__Event *ev)
{
	uint8_t *buf;
	size_t   len;

	if (sl_pack(&ev->base, &buf, &len) != SLUICE_OK) {
		abort();
	}
	(void) nng_send(f->pub, buf, len, 0);
	free(buf);
}

static inline void
fake_heartbeat_at(fake *f, uint64_t rev)
{
	Sluice__V1__Event     ev;
	Sluice__V1__Heartbeat hb;

	sluice__v1__event__init(&ev);
	sluice__v1__heartbeat__init(&hb);
	hb.revision  = rev;
	hb.stale     = atomic_load(&f->hb_stale);
	ev.kind_case = SLUICE__V1__EVENT__KIND_HEARTBEAT;
	ev.heartbeat = &hb;
	fake_publish(f, &ev);
}

static inline void
fake_heartbeat(fake *f)
{
	uint64_t rev;

	pthread_mutex_lock(&f->mtx);
	rev = f->revision;
	pthread_mutex_unlock(&f->mtx);
	fake_heartbeat_at(f, rev);
}

static inline void
fake_answer(fake *f, const Sluice__V1__Request *req)
{
	Sluice__V1__Reply     rep;
	Sluice__V1__NodeInfo  info;
	Sluice__V1__Snapshot  snap;
	Sluice__V1__AckResult ar;
	uint8_t              *buf;
	size_t                len;

	sluice__v1__reply__init(&rep);
	sluice__v1__node_info__init(&info);
	sluice__v1__snapshot__init(&snap);
	sluice__v1__ack_result__init(&ar);
	rep.request_id = req->header != NULL ? req->header->request_id : 0;
	pthread_mutex_lock(&f->mtx);
	rep.revision = f->revision;
	if (req->op_case == SLUICE__V1__REQUEST__OP_INFO) {
		info.publish_url = f->pub_url;
		rep.result_case  = SLUICE__V1__REPLY__RESULT_INFO;
		rep.info         = &info;
		atomic_fetch_add(&f->infos, 1);
	} else if (req->op_case == SLUICE__V1__REQUEST__OP_ACK) {
		Sluice__V1__ClientAck *a = NULL;
		if (sl_ack_open(req->ack, &a) == SLUICE_OK) {
			atomic_store(&f->acked_rev, a->applied_revision);
			sluice__v1__client_ack__free_unpacked(a, NULL);
		}
		rep.result_case = SLUICE__V1__REPLY__RESULT_ACK;
		rep.ack         = &ar;
		atomic_fetch_add(&f->acks, 1);
	} else {
		snap.revision   = f->revision;
		snap.n_rollouts = f->n;
		snap.rollouts   = f->rs;
		rep.result_case = SLUICE__V1__REPLY__RESULT_SNAPSHOT;
		rep.snapshot    = &snap;
		atomic_fetch_add(&f->snapshots, 1);
	}
	if (sl_pack(&rep.base, &buf, &len) != SLUICE_OK) {
		abort();
	}
	pthread_mutex_unlock(&f->mtx);
	(void) nng_send(f->rep, buf, len, 0);
	free(buf);
}

static inline void *
fake_main(void *arg)
{
	fake    *f       = arg;
	uint64_t last_hb = 0;

	while (!atomic_load(&f->stop)) {
		Sluice__V1__Request *req;
		void                *buf;
		size_t               len;
		int                  rv;
		unsigned             hb = atomic_load(&f->hb_ms);

		if (hb != 0 && fake_mono_ms() - last_hb >= hb) {
			fake_heartbeat(f);
			last_hb = fake_mono_ms();
		}
		rv = nng_recv(f->rep, &buf, &len, NNG_FLAG_ALLOC);
		if (rv == NNG_ETIMEDOUT) {
			continue;
		}
		if (rv != 0) {
			break;
		}
		if (sl_request_decode(buf, len, &req) == SLUICE_OK) {
			fake_answer(f, req);
			sluice__v1__request__free_unpacked(req, NULL);
		}
		nng_free(buf, len);
	}
	return (NULL);
}

// Listens on url; "tcp://127.0.0.1:0" takes a free port, and url is
// rewritten to name it (the fake's GetInfo then gives the real one).
static inline bool
fake_listen(nng_socket s, char *url, size_t len)
{
	nng_listener l;
	nng_sockaddr sa;
	size_t       n = strlen(url);

	if (nng_listen(s, url, &l, 0) != 0) {
		return (false);
	}
	if (n > 2 && strcmp(url + n - 2, ":0") == 0) {
		if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) != 0 ||
		    sa.s_family != NNG_AF_INET) {
			return (false);
		}
		// sa_port is in network byte order.
		snprintf(url + n - 1, len - (n - 1), "%u",
		    (unsigned) (((sa.s_in.sa_port & 0xffu) << 8) |
		        (sa.s_in.sa_port >> 8)));
	}
	return (true);
}

// A fake listening on two URLs of any transport (fake_start: inproc);
// "tcp://127.0.0.1:0" listens on a free port (see f->api_url).
static inline fake *
fake_start_urls(const char *api_url, const char *pub_url, uint64_t revision)
{
	fake *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		abort();
	}
	if (strlen(api_url) >= sizeof(f->api_url) ||
	    strlen(pub_url) >= sizeof(f->pub_url)) {
		abort();
	}
	strcpy(f->api_url, api_url);
	strcpy(f->pub_url, pub_url);
	pthread_mutex_init(&f->mtx, NULL);
	f->revision = revision;
	if (nng_rep0_open(&f->rep) != 0 || nng_pub0_open(&f->pub) != 0 ||
	    nng_socket_set_ms(f->rep, NNG_OPT_RECVTIMEO, 10) != 0 ||
	    nng_socket_set_int(f->pub, NNG_OPT_SENDBUF, SL_STREAM_QUEUE) !=
	        0 ||
	    !fake_listen(f->rep, f->api_url, sizeof(f->api_url)) ||
	    !fake_listen(f->pub, f->pub_url, sizeof(f->pub_url)) ||
	    pthread_create(&f->thr, NULL, fake_main, f) != 0) {
		abort();
	}
	return (f);
}

// name: unique per fake in the test binary.
static inline fake *
fake_start(const char *name, uint64_t revision)
{
	char api[80];
	char pub[80];

	snprintf(api, sizeof(api), "inproc://%s-api", name);
	snprintf(pub, sizeof(pub), "inproc://%s-pub", name);
	return (fake_start_urls(api, pub, revision));
}

// Sets a rollout in the state (taking r over) without publishing.
static inline void
fake_set(fake *f, Sluice__V1__Rollout *r)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		if (strcmp(f->rs[i]->spec->name, r->spec->name) == 0) {
			sluice__v1__rollout__free_unpacked(f->rs[i], NULL);
			f->rs[i] = r;
			return;
		}
	}
	if (f->n == FAKE_MAX_ROLLOUTS) {
		abort();
	}
	f->rs[f->n++] = r;
}

// fake_set() under the lock, for setting up state before a client
// connects (the REP thread is already running).
static inline void
fake_put(fake *f, Sluice__V1__Rollout *r)
{
	pthread_mutex_lock(&f->mtx);
	fake_set(f, r);
	pthread_mutex_unlock(&f->mtx);
}

// One committed write: the revision moves, the rollout changes, and
// (when publish) the change goes out on the stream. Returns the revision.
static inline uint64_t
fake_commit(fake *f, Sluice__V1__Rollout *r, bool publish)
{
	Sluice__V1__Event  ev;
	Sluice__V1__Change ch;
	uint64_t           rev;

	pthread_mutex_lock(&f->mtx);
	rev         = ++f->revision;
	r->revision = rev;
	fake_set(f, r);
	sluice__v1__event__init(&ev);
	sluice__v1__change__init(&ch);
	ch.revision  = rev;
	ch.rollout   = r;
	ev.kind_case = SLUICE__V1__EVENT__KIND_CHANGE;
	ev.change    = &ch;
	if (publish) {
		fake_publish(f, &ev);
	}
	pthread_mutex_unlock(&f->mtx);
	return (rev);
}

static inline void
fake_stop(fake *f)
{
	if (f == NULL) {
		return;
	}
	atomic_store(&f->stop, true);
	pthread_join(f->thr, NULL);
	nng_close(f->rep);
	nng_close(f->pub);
	for (size_t i = 0; i < f->n; i++) {
		sluice__v1__rollout__free_unpacked(f->rs[i], NULL);
	}
	pthread_mutex_destroy(&f->mtx);
	free(f);
}

#endif /* FAKE_FLAGD_H */
