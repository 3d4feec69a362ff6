/* SPDX-License-Identifier: MIT */
/*
 * reports.c — signed metric reports: decode with a size limit, check the
 * key, signature, role, scope, time and metrics; the key set copied from
 * flagd; and the replay table of last sequences per key and job.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "envelope.h"
#include "keys.h"
#include "reports.h"

static const char *const reject_names[] = {
#define GK_REJ_NAME_(n, s, e) s,
	GK_REJECTS(GK_REJ_NAME_)
#undef GK_REJ_NAME_
};

static const int reject_codes[] = {
#define GK_REJ_CODE_(n, s, e) SLUICE_##e,
	GK_REJECTS(GK_REJ_CODE_)
#undef GK_REJ_CODE_
};

const char *
gk_reject_name(gk_reject r)
{
	if ((unsigned) r >= GK_REJ_COUNT) {
		return ("unknown");
	}
	return (reject_names[r]);
}

int
gk_reject_code(gk_reject r)
{
	if ((unsigned) r >= GK_REJ_COUNT) {
		return (SLUICE_EINTERNAL);
	}
	return (reject_codes[r]);
}

// ---------------------------------------------------------------- keys

struct gk_keys {
	pthread_mutex_t      mtx;
	Sluice__V1__KeyList *list;
};

int
gk_keys_alloc(gk_keys **kp)
{
	gk_keys *ks;

	if ((ks = calloc(1, sizeof(*ks))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	if (pthread_mutex_init(&ks->mtx, NULL) != 0) {
		free(ks);
		return (SLUICE_EINTERNAL);
	}
	*kp = ks;
	return (SLUICE_OK);
}

void
gk_keys_free(gk_keys *ks)
{
	if (ks == NULL) {
		return;
	}
	if (ks->list != NULL) {
		sluice__v1__key_list__free_unpacked(ks->list, NULL);
	}
	pthread_mutex_destroy(&ks->mtx);
	free(ks);
}

void
gk_keys_set(gk_keys *ks, Sluice__V1__KeyList *list)
{
	Sluice__V1__KeyList *old;

	pthread_mutex_lock(&ks->mtx);
	old      = ks->list;
	ks->list = list;
	pthread_mutex_unlock(&ks->mtx);
	if (old != NULL) {
		sluice__v1__key_list__free_unpacked(old, NULL);
	}
}

bool
gk_keys_lookup(gk_keys *ks, const char *id, gk_keyinfo *out)
{
	bool found = false;

	if (id == NULL) {
		return (false);
	}
	pthread_mutex_lock(&ks->mtx);
	for (size_t i = 0; ks->list != NULL && i < ks->list->n_keys; i++) {
		const Sluice__V1__Key *k = ks->list->keys[i];

		if (k == NULL || k->id == NULL || strcmp(k->id, id) != 0 ||
		    k->public_key.len != sizeof(out->pk)) {
			continue;
		}
		memcpy(out->pk, k->public_key.data, sizeof(out->pk));
		out->role = k->role;
		snprintf(out->scope, sizeof(out->scope), "%s",
		    k->scope != NULL ? k->scope : "");
		found = true;
		break;
	}
	pthread_mutex_unlock(&ks->mtx);
	return (found);
}

size_t
gk_keys_count(gk_keys *ks)
{
	size_t n;

	pthread_mutex_lock(&ks->mtx);
	n = ks->list != NULL ? ks->list->n_keys : 0;
	pthread_mutex_unlock(&ks->mtx);
	return (n);
}

// ---------------------------------------------------------------- verify

static int
reject(gk_reject *whyp, gk_reject why)
{
	*whyp = why;
	return (gk_reject_code(why));
}

int
gk_report_verify_msg(gk_keys *ks, const Sluice__V1__SignedReport *sr,
    uint64_t now_ms, uint64_t skew_ms, Sluice__V1__MetricReport **rp,
    gk_reject *whyp)
{
	gk_keyinfo                ki;
	Sluice__V1__MetricReport *r;
	Sluice__V1__Key           k;
	int                       rv;

	if (sr->body.len > SL_MAX_REPORT_BYTES) {
		return (reject(whyp, GK_REJ_TOOBIG));
	}
	if (sr->key_id == NULL || !sl_key_id_valid(sr->key_id)) {
		return (reject(whyp, GK_REJ_MALFORMED));
	}
	if (!gk_keys_lookup(ks, sr->key_id, &ki)) {
		return (reject(whyp, GK_REJ_UNKNOWN_KEY));
	}
	if ((rv = sl_report_verify(sr, ki.pk, sizeof(ki.pk))) != SLUICE_OK) {
		return (reject(whyp,
		    rv == SLUICE_ETOOBIG      ? GK_REJ_TOOBIG
		        : rv == SLUICE_ENOMEM ? GK_REJ_INTERNAL
		                              : GK_REJ_BAD_SIGNATURE));
	}
	if ((rv = sl_report_open(sr, &r)) != SLUICE_OK) {
		return (reject(whyp,
		    rv == SLUICE_ETOOBIG ? GK_REJ_TOOBIG : GK_REJ_MALFORMED));
	}
	if (r->rollout == NULL || r->rollout[0] == '\0' || r->job == NULL ||
	    r->job[0] == '\0' || strlen(r->job) > 255 || r->stage == NULL ||
	    r->sequence == 0) {
		sluice__v1__metric_report__free_unpacked(r, NULL);
		return (reject(whyp, GK_REJ_MALFORMED));
	}
	if (!sl_role_allows(ki.role, SL_ACT_REPORT)) {
		sluice__v1__metric_report__free_unpacked(r, NULL);
		return (reject(whyp, GK_REJ_ROLE));
	}
	sluice__v1__key__init(&k);
	k.scope = ki.scope;
	if (!sl_key_scope_covers(&k, r->rollout)) {
		sluice__v1__metric_report__free_unpacked(r, NULL);
		return (reject(whyp, GK_REJ_SCOPE));
	}
	if (!sl_timestamp_fresh(r->time_ms, now_ms, skew_ms)) {
		sluice__v1__metric_report__free_unpacked(r, NULL);
		return (reject(whyp, GK_REJ_STALE_TIME));
	}
	for (size_t i = 0; i < r->n_metrics; i++) {
		const Sluice__V1__MetricReport__MetricsEntry *e =
		    r->metrics[i];

		if (e == NULL || e->key == NULL || e->key[0] == '\0' ||
		    !isfinite(e->value)) {
			sluice__v1__metric_report__free_unpacked(r, NULL);
			return (reject(whyp, GK_REJ_BAD_METRIC));
		}
	}
	*whyp = GK_REJ_NONE;
	*rp   = r;
	return (SLUICE_OK);
}

int
gk_report_verify(gk_keys *ks, const void *buf, size_t len, uint64_t now_ms,
    uint64_t skew_ms, gk_verified *out, gk_reject *whyp)
{
	ProtobufCMessage         *m;
	Sluice__V1__MetricReport *r;
	int                       rv;

	// The envelope adds a key id and a signature to the body.
	if (len > SL_MAX_REPORT_BYTES + 1024u) {
		return (reject(whyp, GK_REJ_TOOBIG));
	}
	if ((rv = sl_unpack(&sluice__v1__signed_report__descriptor, buf, len,
	         SL_MAX_REPORT_BYTES + 1024u, &m)) != SLUICE_OK) {
		return (reject(whyp,
		    rv == SLUICE_ETOOBIG ? GK_REJ_TOOBIG : GK_REJ_MALFORMED));
	}
	if ((rv = gk_report_verify_msg(ks, (Sluice__V1__SignedReport *) m,
	         now_ms, skew_ms, &r, whyp)) != SLUICE_OK) {
		protobuf_c_message_free_unpacked(m, NULL);
		return (rv);
	}
	out->sr = (Sluice__V1__SignedReport *) m;
	out->r  = r;
	return (SLUICE_OK);
}

void
gk_verified_clear(gk_verified *v)
{
	if (v == NULL) {
		return;
	}
	if (v->r != NULL) {
		sluice__v1__metric_report__free_unpacked(v->r, NULL);
	}
	if (v->sr != NULL) {
		sluice__v1__signed_report__free_unpacked(v->sr, NULL);
	}
	v->r  = NULL;
	v->sr = NULL;
}

// ---------------------------------------------------------------- replay

// A sorted array of "key\0job" -> last sequence: few entries (keys x
// jobs), looked up by binary search.
typedef struct replay_ent {
	char    *name; // key '\0' job
	size_t   len;
	uint64_t seq;
} replay_ent;

struct gk_replay {
	replay_ent *v;
	size_t      n, cap;
};

int
gk_replay_alloc(gk_replay **tp)
{
	gk_replay *t;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	*tp = t;
	return (SLUICE_OK);
}

void
gk_replay_free(gk_replay *t)
{
	if (t == NULL) {
		return;
	}
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].name);
	}
	free(t->v);
	free(t);
}

static int
name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0) {
		return (c);
	}
	return ((alen > blen) - (alen < blen));
}

// Position of name in t, or where it would go (*foundp false).
static size_t
replay_find(const gk_replay *t, const char *name, size_t len, bool *foundp)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int    c = name_cmp(t->v[mid].name, t->v[mid].len, name, len);

		if (c == 0) {
			*foundp = true;
			return (mid);
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*foundp = false;
	return (lo);
}

static size_t
replay_name(char *buf, size_t buflen, const char *key, const char *job)
{
	size_t kl = strlen(key), jl = strlen(job);

	if (kl + 1 + jl > buflen) {
		return (0);
	}
	memcpy(buf, key, kl);
	buf[kl] = '\0';
	memcpy(buf + kl + 1, job, jl);
	return (kl + 1 + jl);
}

uint64_t
gk_replay_last(const gk_replay *t, const char *key, const char *job)
{
	char   name[SL_KEY_ID_MAX + 512];
	size_t len = replay_name(name, sizeof(name), key, job), i;
	bool   found;

	if (len == 0) {
		return (UINT64_MAX);
	}
	i = replay_find(t, name, len, &found);
	return (found ? t->v[i].seq : 0);
}

bool
gk_replay_check(
    const gk_replay *t, const char *key, const char *job, uint64_t seq)
{
	return (seq > gk_replay_last(t, key, job));
}

int
gk_replay_record(gk_replay *t, const char *key, const char *job, uint64_t seq)
{
	char   name[SL_KEY_ID_MAX + 512];
	size_t len = replay_name(name, sizeof(name), key, job), i;
	bool   found;

	if (len == 0) {
		return (SLUICE_EINVAL);
	}
	i = replay_find(t, name, len, &found);
	if (found) {
		if (seq > t->v[i].seq) {
			t->v[i].seq = seq;
		}
		return (SLUICE_OK);
	}
	if (t->n == t->cap) {
		size_t      cap = t->cap ? t->cap * 2 : 16;
		replay_ent *nv  = realloc(t->v, cap * sizeof(*nv));

		if (nv == NULL) {
			return (SLUICE_ENOMEM);
		}
		t->v   = nv;
		t->cap = cap;
	}
	replay_ent e = { .name = malloc(len), .len = len, .seq = seq };
	if (e.name == NULL) {
		return (SLUICE_ENOMEM);
	}
	memcpy(e.name, name, len);
	memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(*t->v));
	t->v[i] = e;
	t->n++;
	return (SLUICE_OK);
}
