// SPDX-License-Identifier: MIT
//
// clients.c — the in-memory registry of client acknowledgements behind
// `flagctl clients` and `flagctl wait`. A chained hash table keyed by
// client_id, plus one doubly linked list in the order clients were last
// heard from (most recent first). An ack moves its entry to the front;
// expiry trims from the back until it meets a live entry, and a full
// registry evicts the back entry, so both cost O(1) per ack. Expiry
// runs on the monotonic clock (a stepped wall clock must not expire or
// revive anyone); the wall clock is only displayed.

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"
#include "envelope.h"
#include "keys.h"

#define HOST_MAX 256u

typedef struct entry {
	char          id[SL_CLIENT_ID_MAX];
	char          host[HOST_MAX];
	char          key_id[SL_KEY_ID_MAX];
	uint32_t      pid;
	bool          verified;
	uint64_t      rev;
	uint64_t      started_ms;
	uint64_t      first_seen_ms; // wall
	uint64_t      last_seen_ms;  // wall
	uint64_t      seen_mono;     // monotonic, for expiry
	struct entry *hnext;         // hash chain
	struct entry *prev;          // toward the most recent
	struct entry *next;          // toward the least recent
} entry;

struct flagd_clients {
	pthread_mutex_t mtx;
	entry         **buckets;
	size_t          nbuckets; // a power of two
	entry          *head;     // most recently heard from
	entry          *tail;     // least recently heard from
	size_t          n;
	size_t          n_unverified; // of n: entries known by unsigned acks
	size_t          max;
	uint64_t        liveness_ms;
	flagd_metrics  *m;
};

static uint64_t
hash_id(const char *s)
{
	uint64_t h = 1469598103934665603u; // FNV-1a

	for (; *s != '\0'; s++) {
		h ^= (unsigned char) *s;
		h *= 1099511628211u;
	}
	return (h);
}

int
flagd_clients_open(
    flagd_clients **rp, size_t max, uint64_t liveness_ms, flagd_metrics *m)
{
	flagd_clients *r;
	size_t         nb = 16;

	if (max == 0) {
		return (SLUICE_EINVAL);
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	// Chains of about one entry when full; the table never grows.
	while (nb < max && nb < (1u << 20)) {
		nb <<= 1;
	}
	if ((r->buckets = calloc(nb, sizeof(*r->buckets))) == NULL) {
		free(r);
		return (SLUICE_ENOMEM);
	}
	pthread_mutex_init(&r->mtx, NULL);
	r->nbuckets    = nb;
	r->max         = max;
	r->liveness_ms = liveness_ms;
	r->m           = m;
	*rp            = r;
	return (SLUICE_OK);
}

void
flagd_clients_close(flagd_clients *r)
{
	entry *e;
	entry *next;

	if (r == NULL) {
		return;
	}
	for (e = r->head; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	pthread_mutex_destroy(&r->mtx);
	free(r->buckets);
	free(r);
}

uint64_t
flagd_clients_liveness_ms(const flagd_clients *r)
{
	return (r->liveness_ms);
}

static entry **
slot_of(flagd_clients *r, const char *id)
{
	entry **pp = &r->buckets[hash_id(id) & (r->nbuckets - 1)];

	while (*pp != NULL && strcmp((*pp)->id, id) != 0) {
		pp = &(*pp)->hnext;
	}
	return (pp);
}

static void
lru_unlink(flagd_clients *r, entry *e)
{
	if (e->prev != NULL) {
		e->prev->next = e->next;
	} else {
		r->head = e->next;
	}
	if (e->next != NULL) {
		e->next->prev = e->prev;
	} else {
		r->tail = e->prev;
	}
	e->prev = e->next = NULL;
}

static void
lru_push_front(flagd_clients *r, entry *e)
{
	e->prev = NULL;
	e->next = r->head;
	if (r->head != NULL) {
		r->head->prev = e;
	}
	r->head = e;
	if (r->tail == NULL) {
		r->tail = e;
	}
}

static void
drop(flagd_clients *r, entry *e)
{
	entry **pp = slot_of(r, e->id);

	if (*pp == e) {
		*pp = e->hnext;
	}
	lru_unlink(r, e);
	if (!e->verified) {
		r->n_unverified--;
	}
	free(e);
	r->n--;
}

// Drops entries not heard from within the liveness window. Under mtx.
static void
expire(flagd_clients *r, uint64_t mono)
{
	while (r->tail != NULL && mono - r->tail->seen_mono > r->liveness_ms) {
		drop(r, r->tail);
	}
	atomic_store(&r->m->clients_live, r->n);
}

// Copies s into a fixed buffer, replacing what a terminal would act on.
static void
copy_printable(char *dst, size_t len, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < len && s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char) s[i];
		dst[i]           = ch < 0x20 || ch == 0x7f ? '?' : (char) ch;
	}
	dst[i] = '\0';
}

// Checks the signature of a signed ack against the key store.
static int
verify(flagd_store *store, uint64_t skew_ms, const Sluice__V1__SignedAck *sa,
    const Sluice__V1__ClientAck *a, uint64_t now_ms, char *err, size_t errlen)
{
	flagd_txn       *t;
	Sluice__V1__Key *key = NULL;
	int              rv;

	if (sa->key_id == NULL || !sl_key_id_valid(sa->key_id)) {
		sl_seterr(err, errlen, "ack has no valid key id");
		return (SLUICE_EPROTO);
	}
	if ((rv = flagd_store_begin(store, false, &t)) != SLUICE_OK) {
		sl_seterr(
		    err, errlen, "store unavailable: %s", sluice_strerror(rv));
		return (rv);
	}
	rv = flagd_txn_get_key(t, sa->key_id, &key);
	flagd_txn_abort(t);
	if (rv == SLUICE_ENOENT) {
		sl_seterr(err, errlen, "unknown key \"%s\"", sa->key_id);
		return (SLUICE_EUNKNOWNKEY);
	}
	if (rv != SLUICE_OK) {
		sl_seterr(
		    err, errlen, "key lookup failed: %s", sluice_strerror(rv));
		return (rv);
	}
	rv = sl_ack_verify(sa, key->public_key.data, key->public_key.len);
	sluice__v1__key__free_unpacked(key, NULL);
	if (rv != SLUICE_OK) {
		sl_seterr(err, errlen,
		    "ack signature does not verify for key \"%s\"",
		    sa->key_id);
		return (SLUICE_EBADSIG);
	}
	// A signed ack replayed much later must not pass for a live client.
	if (!sl_timestamp_fresh(a->time_ms, now_ms, skew_ms)) {
		sl_seterr(err, errlen,
		    "ack time is %lld ms from flagd's clock (allowed: %llu "
		    "ms)",
		    (long long) a->time_ms - (long long) now_ms,
		    (unsigned long long) skew_ms);
		return (SLUICE_EEXPIRED);
	}
	return (SLUICE_OK);
}

int
flagd_clients_ack(flagd_clients *r, flagd_store *store, uint64_t skew_ms,
    const Sluice__V1__SignedAck *sa, uint64_t now_ms, bool *verifiedp,
    char *err, size_t errlen)
{
	Sluice__V1__ClientAck *a;
	entry                **pp;
	entry                 *e;
	bool                   signed_ack = sl_ack_signed(sa);
	uint64_t               mono;
	int                    rv;

	if ((rv = sl_ack_open(sa, &a)) != SLUICE_OK) {
		sl_seterr(err, errlen, "%s",
		    rv == SLUICE_ETOOBIG
		        ? "ack exceeds the size limit"
		        : "ack is not a well-formed ClientAck");
		return (rv);
	}
	if (signed_ack &&
	    (rv = verify(store, skew_ms, sa, a, now_ms, err, errlen)) !=
	        SLUICE_OK) {
		sluice__v1__client_ack__free_unpacked(a, NULL);
		return (rv);
	}
	mono = sl_mono_ms();
	pthread_mutex_lock(&r->mtx);
	expire(r, mono);
	pp = slot_of(r, a->client_id);
	// A client known by a signed ack is spoken for by that key only:
	// an unsigned (or other key's) ack cannot move it or make it leave.
	if ((e = *pp) != NULL && e->verified &&
	    (!signed_ack || strcmp(e->key_id, sa->key_id) != 0)) {
		pthread_mutex_unlock(&r->mtx);
		sl_seterr(err, errlen,
		    "client %s acks with key \"%s\"; this ack is not signed "
		    "by it",
		    e->id, e->key_id);
		sluice__v1__client_ack__free_unpacked(a, NULL);
		return (SLUICE_EPERM);
	}
	if (a->leaving) {
		if (e != NULL) {
			drop(r, e);
		}
		atomic_store(&r->m->clients_live, r->n);
		pthread_mutex_unlock(&r->mtx);
		atomic_fetch_add(&r->m->acks, 1);
		sluice__v1__client_ack__free_unpacked(a, NULL);
		if (verifiedp != NULL) {
			*verifiedp = signed_ack;
		}
		return (SLUICE_OK);
	}
	if (e != NULL) {
		lru_unlink(r, e);
	} else {
		if (r->n >= r->max) {
			// Full of live clients: the unverified one heard from
			// least recently goes (it will be back at its next
			// ack). Unsigned acks never push out a verified
			// client, or anyone could empty `flagctl wait` of
			// real clients; a signed ack may, least recent first.
			// The walk only runs when an unverified entry exists,
			// so a flood of unsigned acks against a registry full
			// of verified clients is refused in O(1).
			entry *victim = NULL;
			if (r->n_unverified > 0) {
				victim = r->tail;
				while (victim != NULL && victim->verified) {
					victim = victim->prev;
				}
			}
			if (victim == NULL && signed_ack) {
				victim = r->tail;
			}
			if (victim == NULL) {
				pthread_mutex_unlock(&r->mtx);
				sluice__v1__client_ack__free_unpacked(a, NULL);
				sl_seterr(err, errlen,
				    "the client registry is full of verified "
				    "clients; unsigned acks are refused");
				return (SLUICE_EFULL);
			}
			drop(r, victim);
			atomic_fetch_add(&r->m->clients_evicted, 1);
			pp = slot_of(r, a->client_id);
		}
		if ((e = calloc(1, sizeof(*e))) == NULL) {
			pthread_mutex_unlock(&r->mtx);
			sluice__v1__client_ack__free_unpacked(a, NULL);
			sl_seterr(err, errlen, "out of memory");
			return (SLUICE_ENOMEM);
		}
		copy_printable(e->id, sizeof(e->id), a->client_id);
		e->first_seen_ms = now_ms;
		*pp              = e;
		r->n++;
		r->n_unverified++; // calloc: unverified until set below
	}
	copy_printable(e->host, sizeof(e->host), a->host);
	copy_printable(
	    e->key_id, sizeof(e->key_id), signed_ack ? sa->key_id : "");
	e->pid = a->pid;
	if (signed_ack && !e->verified) {
		r->n_unverified--;
	} else if (!signed_ack && e->verified) {
		r->n_unverified++;
	}
	e->verified     = signed_ack;
	e->rev          = a->applied_revision;
	e->started_ms   = a->started_ms;
	e->last_seen_ms = now_ms;
	e->seen_mono    = mono;
	lru_push_front(r, e);
	atomic_store(&r->m->clients_live, r->n);
	pthread_mutex_unlock(&r->mtx);
	atomic_fetch_add(&r->m->acks, 1);
	if (!signed_ack) {
		atomic_fetch_add(&r->m->acks_unverified, 1);
	}
	sluice__v1__client_ack__free_unpacked(a, NULL);
	if (verifiedp != NULL) {
		*verifiedp = signed_ack;
	}
	return (SLUICE_OK);
}

static char *
dup_str(const char *s)
{
	return (strdup(s));
}

static int
cmp_info(const void *a, const void *b)
{
	const Sluice__V1__ClientInfo *x = *(Sluice__V1__ClientInfo *const *) a;
	const Sluice__V1__ClientInfo *y = *(Sluice__V1__ClientInfo *const *) b;

	return (strcmp(x->client_id, y->client_id));
}

int
flagd_clients_list(
    flagd_clients *r, uint64_t now_ms, Sluice__V1__ClientList *out)
{
	Sluice__V1__ClientInfo **v;
	size_t                   i   = 0;
	bool                     oom = false;

	pthread_mutex_lock(&r->mtx);
	expire(r, sl_mono_ms());
	// One allocation per entry; all of it under the lock, which is
	// held by acks for microseconds only, so a list of 10 000 clients
	// delays acks by about a millisecond.
	if ((v = calloc(r->n + 1, sizeof(*v))) == NULL) {
		pthread_mutex_unlock(&r->mtx);
		return (SLUICE_ENOMEM);
	}
	for (entry *e = r->head; e != NULL; e = e->next) {
		Sluice__V1__ClientInfo *ci = malloc(sizeof(*ci));
		if (ci == NULL) {
			oom = true;
			break;
		}
		sluice__v1__client_info__init(ci);
		v[i++]        = ci;
		ci->client_id = dup_str(e->id);
		ci->host      = dup_str(e->host);
		ci->key_id    = dup_str(e->key_id);
		if (ci->client_id == NULL || ci->host == NULL ||
		    ci->key_id == NULL) {
			oom = true;
			break;
		}
		ci->pid              = e->pid;
		ci->applied_revision = e->rev;
		ci->last_seen_ms     = e->last_seen_ms;
		ci->verified         = e->verified;
		ci->started_ms       = e->started_ms;
		ci->first_seen_ms    = e->first_seen_ms;
	}
	pthread_mutex_unlock(&r->mtx);
	out->clients     = v;
	out->n_clients   = i;
	out->liveness_ms = r->liveness_ms;
	out->now_ms      = now_ms;
	if (oom) {
		flagd_clients_list_free(out);
		return (SLUICE_ENOMEM);
	}
	qsort(v, i, sizeof(*v), cmp_info);
	return (SLUICE_OK);
}

static void
free_str(char *s)
{
	if (s != NULL && s != protobuf_c_empty_string) {
		free(s);
	}
}

void
flagd_clients_list_free(Sluice__V1__ClientList *out)
{
	if (out == NULL) {
		return;
	}
	for (size_t i = 0; i < out->n_clients; i++) {
		Sluice__V1__ClientInfo *ci = out->clients[i];
		if (ci == NULL) {
			continue;
		}
		free_str(ci->client_id);
		free_str(ci->host);
		free_str(ci->key_id);
		free(ci);
	}
	free(out->clients);
	out->clients   = NULL;
	out->n_clients = 0;
}

size_t
flagd_clients_count(flagd_clients *r, uint64_t now_ms)
{
	size_t n;

	(void) now_ms;
	pthread_mutex_lock(&r->mtx);
	expire(r, sl_mono_ms());
	n = r->n;
	pthread_mutex_unlock(&r->mtx);
	return (n);
}
