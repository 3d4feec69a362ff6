/* SPDX-License-Identifier: MIT */
/*
 * db.c — gatekeeper's LMDB environment: gate state, window reports,
 * recorded reports, replay marks and decision evidence. The only file of
 * gatekeeper that sees MDB_* codes.
 */
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "db.h"
#include "sl_mdb.h"

#define NAME_MAX_ 256u

struct gk_db {
	MDB_env *env;
	MDB_dbi  state, window, record, replay, evidence, pending;
};

struct gk_txn {
	gk_db   *d;
	MDB_txn *txn;
};

int
gk_db_open(gk_db **dp, const char *dir)
{
	gk_db *d;
	int    rv;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	{
		const sl_mdb_db dbs[] = {
			{ "state", &d->state },
			{ "window", &d->window },
			{ "record", &d->record },
			{ "replay", &d->replay },
			{ "evidence", &d->evidence },
			{ "pending", &d->pending },
		};
		const sl_mdb_opts mo = { (size_t) 1 << 30, 0, 0 };

		if ((rv = sl_mdb_open(&d->env, dir, &mo, dbs,
		         sizeof(dbs) / sizeof(dbs[0]), "db.open")) !=
		    SLUICE_OK) {
			free(d);
			return (rv);
		}
	}
	*dp = d;
	return (SLUICE_OK);
}

void
gk_db_close(gk_db *d)
{
	if (d == NULL) {
		return;
	}
	mdb_env_close(d->env);
	free(d);
}

int
gk_db_begin(gk_db *d, bool write, gk_txn **tp)
{
	gk_txn *t;
	int     rc;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	t->d = d;
	if ((rc = mdb_txn_begin(
	         d->env, NULL, write ? 0 : MDB_RDONLY, &t->txn)) != 0) {
		free(t);
		return (sl_mdb_err(rc));
	}
	*tp = t;
	return (SLUICE_OK);
}

int
gk_txn_commit(gk_txn *t)
{
	int rc = mdb_txn_commit(t->txn);

	free(t);
	return (sl_mdb_err(rc));
}

void
gk_txn_abort(gk_txn *t)
{
	if (t == NULL) {
		return;
	}
	mdb_txn_abort(t->txn);
	free(t);
}

static int
put(gk_txn *t, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl)
{
	MDB_val key = { kl, (void *) (uintptr_t) k };
	MDB_val val = { vl, (void *) (uintptr_t) v };

	return (sl_mdb_err(mdb_put(t->txn, dbi, &key, &val, 0)));
}

// rollout '\0' u64 BE: sorts by rollout, then by number.
static size_t
num_key(uint8_t *buf, const char *rollout, uint64_t n)
{
	size_t l = strlen(rollout);

	if (l >= NAME_MAX_) {
		return (0);
	}
	memcpy(buf, rollout, l + 1);
	for (int i = 0; i < 8; i++) {
		buf[l + 1 + (size_t) i] = (uint8_t) (n >> (56 - 8 * i));
	}
	return (l + 9);
}

int
gk_txn_put_state(gk_txn *t, const char *rollout, const gk_db_state *s)
{
	return (put(t, t->d->state, rollout, strlen(rollout), s, sizeof(*s)));
}

int
gk_txn_get_state(gk_txn *t, const char *rollout, gk_db_state *s)
{
	MDB_val key = { strlen(rollout), (void *) (uintptr_t) rollout };
	MDB_val val;
	int     rc;

	if ((rc = mdb_get(t->txn, t->d->state, &key, &val)) != 0) {
		return (sl_mdb_err(rc));
	}
	if (val.mv_size != sizeof(*s)) {
		return (SLUICE_ECORRUPT);
	}
	memcpy(s, val.mv_data, sizeof(*s));
	return (
	    s->version == GK_DB_STATE_VERSION ? SLUICE_OK : SLUICE_ECORRUPT);
}

int
gk_txn_put_report(gk_txn *t, bool counted, const char *rollout, uint64_t id,
    uint64_t at_ms, const void *sr, size_t len)
{
	uint8_t  k[NAME_MAX_ + 9];
	size_t   kl = num_key(k, rollout, id);
	uint8_t *v;
	int      rv;

	if (kl == 0) {
		return (SLUICE_EINVAL);
	}
	if ((v = malloc(len + 8)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	memcpy(v, &at_ms, 8);
	memcpy(v + 8, sr, len);
	rv = put(t, counted ? t->d->window : t->d->record, k, kl, v, len + 8);
	free(v);
	return (rv);
}

int
gk_txn_del_window(gk_txn *t, const char *rollout, uint64_t id)
{
	uint8_t k[NAME_MAX_ + 9];
	size_t  kl  = num_key(k, rollout, id);
	MDB_val key = { kl, k };
	int     rc;

	if (kl == 0) {
		return (SLUICE_EINVAL);
	}
	rc = mdb_del(t->txn, t->d->window, &key, NULL);
	return (rc == MDB_NOTFOUND ? SLUICE_OK : sl_mdb_err(rc));
}

// Walks the window entries of rollout; del: delete each.
static int
walk_window(
    gk_txn *t, const char *rollout, bool del, gk_db_report_cb cb, void *arg)
{
	uint8_t     k[NAME_MAX_ + 9];
	size_t      kl = num_key(k, rollout, 0);
	MDB_cursor *cur;
	MDB_val     key = { kl, k }, val;
	int         rc, rv = SLUICE_OK;

	if (kl == 0) {
		return (SLUICE_EINVAL);
	}
	if ((rc = mdb_cursor_open(t->txn, t->d->window, &cur)) != 0) {
		return (sl_mdb_err(rc));
	}
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0) {
		const uint8_t *kp = key.mv_data;
		uint64_t       id = 0, at;

		if (key.mv_size != kl || memcmp(kp, k, kl - 8) != 0) {
			break;
		}
		if (val.mv_size < 8) {
			rv = SLUICE_ECORRUPT;
			break;
		}
		for (int i = 0; i < 8; i++) {
			id = (id << 8) | kp[kl - 8 + (size_t) i];
		}
		memcpy(&at, val.mv_data, 8);
		if (del) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0) {
				rv = sl_mdb_err(rc);
				break;
			}
			// Seek again from the prefix: simple and exact.
			key.mv_size = kl;
			key.mv_data = k;
			rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
			continue;
		}
		if ((rv = cb(arg, id, at, (const uint8_t *) val.mv_data + 8,
		         val.mv_size - 8)) != SLUICE_OK) {
			break;
		}
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rv == SLUICE_OK && rc != 0 && rc != MDB_NOTFOUND) {
		rv = sl_mdb_err(rc);
	}
	return (rv);
}

int
gk_txn_clear_window(gk_txn *t, const char *rollout)
{
	return (walk_window(t, rollout, true, NULL, NULL));
}

int
gk_txn_each_window(
    gk_txn *t, const char *rollout, gk_db_report_cb cb, void *arg)
{
	return (walk_window(t, rollout, false, cb, arg));
}

int
gk_txn_put_replay(gk_txn *t, const char *key, const char *job, uint64_t seq)
{
	char   k[NAME_MAX_ * 2 + 2];
	size_t a = strlen(key), b = strlen(job);

	if (a >= NAME_MAX_ || b >= NAME_MAX_) {
		return (SLUICE_EINVAL);
	}
	memcpy(k, key, a + 1);
	memcpy(k + a + 1, job, b);
	return (put(t, t->d->replay, k, a + 1 + b, &seq, sizeof(seq)));
}

int
gk_txn_put_evidence(gk_txn *t, const char *rollout, uint64_t revision,
    const void *buf, size_t len)
{
	uint8_t k[NAME_MAX_ + 9];
	size_t  kl = num_key(k, rollout, revision);

	if (kl == 0) {
		return (SLUICE_EINVAL);
	}
	return (put(t, t->d->evidence, k, kl, buf, len));
}

int
gk_txn_get_evidence(gk_txn *t, const char *rollout, uint64_t revision,
    uint8_t **bufp, size_t *lenp)
{
	uint8_t  k[NAME_MAX_ + 9];
	size_t   kl  = num_key(k, rollout, revision);
	MDB_val  key = { kl, k }, val;
	uint8_t *b;
	int      rc;

	if (kl == 0) {
		return (SLUICE_EINVAL);
	}
	if ((rc = mdb_get(t->txn, t->d->evidence, &key, &val)) != 0) {
		return (sl_mdb_err(rc));
	}
	if ((b = malloc(val.mv_size + 1)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	memcpy(b, val.mv_data, val.mv_size);
	*bufp = b;
	*lenp = val.mv_size;
	return (SLUICE_OK);
}

int
gk_txn_each_state(gk_txn *t, gk_db_state_cb cb, void *arg)
{
	MDB_cursor *cur;
	MDB_val     key, val;
	int         rc, rv = SLUICE_OK;

	if ((rc = mdb_cursor_open(t->txn, t->d->state, &cur)) != 0) {
		return (sl_mdb_err(rc));
	}
	while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
		char        name[NAME_MAX_];
		gk_db_state s;

		if (key.mv_size >= sizeof(name) || val.mv_size != sizeof(s)) {
			continue;
		}
		memcpy(name, key.mv_data, key.mv_size);
		name[key.mv_size] = '\0';
		memcpy(&s, val.mv_data, sizeof(s));
		if (s.version != GK_DB_STATE_VERSION) {
			continue;
		}
		if ((rv = cb(arg, name, &s)) != SLUICE_OK) {
			break;
		}
	}
	mdb_cursor_close(cur);
	return (rv);
}

int
gk_txn_each_replay(gk_txn *t, gk_db_replay_cb cb, void *arg)
{
	MDB_cursor *cur;
	MDB_val     key, val;
	int         rc, rv = SLUICE_OK;

	if ((rc = mdb_cursor_open(t->txn, t->d->replay, &cur)) != 0) {
		return (sl_mdb_err(rc));
	}
	while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
		char     k[NAME_MAX_ * 2 + 2];
		uint64_t seq;
		size_t   a;

		if (key.mv_size >= sizeof(k) || val.mv_size != 8) {
			continue;
		}
		memcpy(k, key.mv_data, key.mv_size);
		k[key.mv_size] = '\0';
		a              = strlen(k);
		if (a >= key.mv_size) {
			continue;
		}
		memcpy(&seq, val.mv_data, 8);
		if ((rv = cb(arg, k, k + a + 1, seq)) != SLUICE_OK) {
			break;
		}
	}
	mdb_cursor_close(cur);
	return (rv);
}

#define NONCE_MAX_ 64u

int
gk_txn_put_pending(gk_txn *t, const uint8_t *nonce, size_t nlen,
    uint64_t after_rev, const void *ev, size_t len)
{
	uint8_t *v;
	int      rv;

	if (nlen == 0 || nlen > NONCE_MAX_) {
		return (SLUICE_EINVAL);
	}
	if ((v = malloc(len + 8)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	memcpy(v, &after_rev, 8);
	if (len > 0) {
		memcpy(v + 8, ev, len);
	}
	rv = put(t, t->d->pending, nonce, nlen, v, len + 8);
	free(v);
	return (rv);
}

int
gk_txn_del_pending(gk_txn *t, const uint8_t *nonce, size_t nlen)
{
	MDB_val key = { nlen, (void *) (uintptr_t) nonce };
	int     rc;

	if (nlen == 0 || nlen > NONCE_MAX_) {
		return (SLUICE_EINVAL);
	}
	rc = mdb_del(t->txn, t->d->pending, &key, NULL);
	return (rc == MDB_NOTFOUND ? SLUICE_OK : sl_mdb_err(rc));
}

int
gk_txn_each_pending(gk_txn *t, gk_db_pending_cb cb, void *arg)
{
	MDB_cursor *cur;
	MDB_val     key, val;
	int         rc, rv = SLUICE_OK;

	if ((rc = mdb_cursor_open(t->txn, t->d->pending, &cur)) != 0) {
		return (sl_mdb_err(rc));
	}
	while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
		uint8_t  nonce[NONCE_MAX_];
		uint64_t after;

		if (key.mv_size == 0 || key.mv_size > sizeof(nonce) ||
		    val.mv_size < 8) {
			continue;
		}
		memcpy(nonce, key.mv_data, key.mv_size);
		memcpy(&after, val.mv_data, 8);
		if ((rv = cb(arg, nonce, key.mv_size, after,
		         (const uint8_t *) val.mv_data + 8,
		         val.mv_size - 8)) != SLUICE_OK) {
			break;
		}
	}
	mdb_cursor_close(cur);
	return (rv);
}
