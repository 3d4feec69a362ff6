// SPDX-License-Identifier: MIT
//
// snapshot.c — building the client's immutable snapshots (snapshot.h):
// from a full Snapshot message, or from the previous snapshot plus one
// changed rollout (copy-on-write: rollouts are shared by reference, the
// two small hash tables are rebuilt). Building allocates; reading never
// does.

#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

static void
rollout_unref(sl_snap_rollout *ro)
{
	if (ro == NULL) {
		return;
	}
	if (atomic_fetch_sub(&ro->refs, 1) == 1) {
		sluice__v1__rollout__free_unpacked(ro->msg, NULL);
		free(ro);
	}
}

// Wraps msg (taken over) in a new rollout with refs = 1. NULL on OOM or
// when msg has no name; msg is freed then.
static sl_snap_rollout *
rollout_new(Sluice__V1__Rollout *msg, int *rvp)
{
	sl_snap_rollout *ro;
	size_t           n;

	if (msg->spec == NULL || msg->spec->name == NULL ||
	    msg->spec->name[0] == '\0') {
		sl_log_warn(
		    "snap-noname", "dropping a rollout without a name");
		sluice__v1__rollout__free_unpacked(msg, NULL);
		*rvp = SLUICE_EINVAL;
		return (NULL);
	}
	if ((ro = calloc(1, sizeof(*ro))) == NULL) {
		sluice__v1__rollout__free_unpacked(msg, NULL);
		*rvp = SLUICE_ENOMEM;
		return (NULL);
	}
	atomic_init(&ro->refs, 1);
	ro->msg      = msg;
	ro->name     = msg->spec->name;
	ro->hash     = sl_snap_hash(ro->name, strlen(ro->name));
	n            = msg->spec->n_stages;
	ro->n_stages = (uint32_t) n;
	// A stage index past the stages would be a server bug; evaluating
	// at the baseline is the safe reading of it.
	ro->stage        = msg->stage < n ? msg->stage : 0;
	ro->max_stale_ms = msg->spec->max_stale_s * 1000u;
	ro->keep = msg->spec->on_stale == SLUICE__V1__STALE_POLICY__STALE_KEEP;
	sl_bucket_key(ro->name, ro->bucket_key);
	*rvp = SLUICE_OK;
	return (ro);
}

static int
cmp_rollout(const void *a, const void *b)
{
	const sl_snap_rollout *x = *(const sl_snap_rollout *const *) a;
	const sl_snap_rollout *y = *(const sl_snap_rollout *const *) b;

	return (strcmp(x->name, y->name));
}

static uint32_t
table_size(size_t n)
{
	uint32_t sz = 8;

	// Load factor at most 1/2 keeps probe sequences short.
	while ((size_t) sz < 2 * n) {
		sz <<= 1;
	}
	return (sz);
}

static const Sluice__V1__FlagValue *
value_at(const Sluice__V1__Flag *f, uint32_t stage)
{
	if (stage < f->n_values) {
		return (f->values[stage]);
	}
	return (NULL);
}

// Fills the hash tables of s from s->rollouts (sorted by name, so the
// first rollout to claim a flag key is the one whose name sorts first).
static int
index_tables(sl_snapshot *s)
{
	size_t nflags = 0;
	size_t i;

	for (i = 0; i < s->n_rollouts; i++) {
		nflags += s->rollouts[i]->msg->spec->n_flags;
	}
	s->rmask = table_size(s->n_rollouts) - 1;
	s->fmask = table_size(nflags) - 1;
	if ((s->rtab = calloc((size_t) s->rmask + 1, sizeof(*s->rtab))) ==
	        NULL ||
	    (s->flags = calloc((size_t) s->fmask + 1, sizeof(*s->flags))) ==
	        NULL) {
		return (SLUICE_ENOMEM);
	}
	for (i = 0; i < s->n_rollouts; i++) {
		const sl_snap_rollout *ro = s->rollouts[i];
		uint32_t               j;

		for (j = ro->hash & s->rmask; s->rtab[j] != 0;
		     j = (j + 1) & s->rmask) { }
		s->rtab[j] = (uint32_t) i + 1;

		for (size_t k = 0; k < ro->msg->spec->n_flags; k++) {
			const Sluice__V1__Flag *f = ro->msg->spec->flags[k];
			uint32_t                h;
			uint32_t                m;
			size_t                  n;
			bool                    dup = false;

			if (f == NULL || f->key == NULL || f->key[0] == '\0') {
				continue;
			}
			n = strlen(f->key);
			h = sl_snap_hash(f->key, n);
			for (m = h & s->fmask; s->flags[m].hash != 0;
			     m = (m + 1) & s->fmask) {
				if (s->flags[m].hash == h &&
				    strcmp(s->flags[m].key, f->key) == 0) {
					dup = true;
					break;
				}
			}
			if (dup) {
				sl_log_warn("snap-dupflag",
				    "flag \"%s\" is defined by rollouts "
				    "\"%s\" "
				    "and \"%s\"; using \"%s\"",
				    f->key, s->flags[m].ro->name, ro->name,
				    s->flags[m].ro->name);
				continue;
			}
			s->flags[m].hash = h;
			s->flags[m].ri   = (uint32_t) i;
			s->flags[m].len  = (uint32_t) n;
			s->flags[m].key  = f->key;
			s->flags[m].ro   = ro;
			s->flags[m].cur  = value_at(f, ro->stage);
			s->flags[m].base = value_at(f, 0);
		}
	}
	return (SLUICE_OK);
}

static sl_snapshot *
snapshot_alloc(uint64_t revision, size_t n)
{
	sl_snapshot *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return (NULL);
	}
	atomic_init(&s->refs, 1);
	s->revision = revision;
	// One spare slot lets sl_snapshot_replace() add a rollout.
	if ((s->rollouts = calloc(n + 1, sizeof(*s->rollouts))) == NULL) {
		free(s);
		return (NULL);
	}
	return (s);
}

void
sl_snapshot_ref(sl_snapshot *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void
sl_snapshot_unref(sl_snapshot *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) {
		return;
	}
	for (size_t i = 0; i < s->n_rollouts; i++) {
		rollout_unref(s->rollouts[i]);
	}
	free(s->rollouts);
	free(s->flags);
	free(s->rtab);
	free(s);
}

int
sl_snapshot_empty(sl_snapshot **sp)
{
	sl_snapshot *s;
	int          rv;

	if ((s = snapshot_alloc(0, 0)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	if ((rv = index_tables(s)) != SLUICE_OK) {
		sl_snapshot_unref(s);
		return (rv);
	}
	*sp = s;
	return (SLUICE_OK);
}

const sl_snap_rollout *
sl_snapshot_rollout(const sl_snapshot *s, const char *name, size_t *indexp)
{
	uint32_t h;
	uint32_t i;

	if (s == NULL || name == NULL || s->rtab == NULL) {
		return (NULL);
	}
	h = sl_snap_hash(name, strlen(name));
	for (i = h & s->rmask; s->rtab[i] != 0; i = (i + 1) & s->rmask) {
		const sl_snap_rollout *ro = s->rollouts[s->rtab[i] - 1];
		if (ro->hash == h && strcmp(ro->name, name) == 0) {
			if (indexp != NULL) {
				*indexp = s->rtab[i] - 1;
			}
			return (ro);
		}
	}
	return (NULL);
}

// Carries rollback history over from prev and records a new rollback.
static void
track_rollback(sl_snap_rollout *ro, const sl_snapshot *prev, uint64_t revision)
{
	const sl_snap_rollout *old = sl_snapshot_rollout(prev, ro->name, NULL);

	if (old == NULL) {
		return;
	}
	ro->rollback_rev = old->rollback_rev;
	if (ro->stage < old->stage) {
		ro->rollback_rev = revision;
	}
}

int
sl_snapshot_build(sl_snapshot **sp, uint64_t revision,
    Sluice__V1__Rollout **msgs, size_t n, const sl_snapshot *prev)
{
	sl_snapshot *s;
	size_t       i;
	size_t       j;
	int          rv = SLUICE_OK;
	int          one;

	if ((s = snapshot_alloc(revision, n)) == NULL) {
		for (i = 0; i < n; i++) {
			sluice__v1__rollout__free_unpacked(msgs[i], NULL);
		}
		return (SLUICE_ENOMEM);
	}
	for (i = 0; i < n; i++) {
		sl_snap_rollout *ro;

		if (msgs[i] == NULL) {
			continue;
		}
		if (rv != SLUICE_OK) {
			sluice__v1__rollout__free_unpacked(msgs[i], NULL);
			continue;
		}
		if ((ro = rollout_new(msgs[i], &one)) == NULL) {
			// A nameless rollout is dropped; OOM fails the build.
			if (one == SLUICE_ENOMEM) {
				rv = one;
			}
			continue;
		}
		track_rollback(ro, prev, revision);
		s->rollouts[s->n_rollouts++] = ro;
	}
	if (rv != SLUICE_OK) {
		goto fail;
	}
	qsort(s->rollouts, s->n_rollouts, sizeof(*s->rollouts), cmp_rollout);
	// Two rollouts of one name would be a server bug; keep the first.
	for (i = 1, j = 1; i < s->n_rollouts; i++) {
		if (strcmp(s->rollouts[i]->name, s->rollouts[j - 1]->name) ==
		    0) {
			sl_log_warn("snap-duprollout",
			    "rollout \"%s\" appears twice; using the first",
			    s->rollouts[i]->name);
			rollout_unref(s->rollouts[i]);
			continue;
		}
		s->rollouts[j++] = s->rollouts[i];
	}
	if (s->n_rollouts > 0) {
		s->n_rollouts = j;
	}
	if ((rv = index_tables(s)) != SLUICE_OK) {
		goto fail;
	}
	*sp = s;
	return (SLUICE_OK);
fail:
	sl_snapshot_unref(s);
	return (rv);
}

int
sl_snapshot_replace(sl_snapshot **sp, const sl_snapshot *s, uint64_t revision,
    Sluice__V1__Rollout *r)
{
	sl_snapshot     *ns;
	sl_snap_rollout *ro = NULL;
	size_t           i;
	size_t           k;
	int              rv;

	if (r != NULL && (ro = rollout_new(r, &rv)) == NULL) {
		return (rv);
	}
	if (ro != NULL) {
		track_rollback(ro, s, revision);
	}
	if ((ns = snapshot_alloc(revision, s->n_rollouts)) == NULL) {
		rollout_unref(ro);
		return (SLUICE_ENOMEM);
	}
	ns->from_cache = s->from_cache;
	// Share every other rollout, then insert ro in name order.
	for (i = 0; i < s->n_rollouts; i++) {
		if (ro != NULL &&
		    strcmp(s->rollouts[i]->name, ro->name) == 0) {
			continue;
		}
		atomic_fetch_add(&s->rollouts[i]->refs, 1);
		ns->rollouts[ns->n_rollouts++] = s->rollouts[i];
	}
	if (ro == NULL) {
		goto index;
	}
	for (k = ns->n_rollouts;
	     k > 0 && strcmp(ns->rollouts[k - 1]->name, ro->name) > 0; k--) {
		ns->rollouts[k] = ns->rollouts[k - 1];
	}
	ns->rollouts[k] = ro;
	ns->n_rollouts++;
index:
	if ((rv = index_tables(ns)) != SLUICE_OK) {
		sl_snapshot_unref(ns);
		return (rv);
	}
	*sp = ns;
	return (SLUICE_OK);
}

int
sl_snapshot_message(const sl_snapshot *s, Sluice__V1__Snapshot *m)
{
	sluice__v1__snapshot__init(m);
	m->revision = s->revision;
	if (s->n_rollouts == 0) {
		return (SLUICE_OK);
	}
	if ((m->rollouts = calloc(s->n_rollouts, sizeof(*m->rollouts))) ==
	    NULL) {
		return (SLUICE_ENOMEM);
	}
	for (size_t i = 0; i < s->n_rollouts; i++) {
		m->rollouts[i] = s->rollouts[i]->msg;
	}
	m->n_rollouts = s->n_rollouts;
	return (SLUICE_OK);
}
