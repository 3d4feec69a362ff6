/* SPDX-License-Identifier: MIT */
/*
 * store.c — flagd's durable state in one LMDB environment: the current
 * rollouts and their history, the flag ownership index, keys, the audit
 * chain, the replay-protection nonces and the global revision. Values are
 * packed protobuf messages. This is the only file that sees MDB_* codes;
 * everything it returns is a SLUICE_* code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "audit.h"
#include "codec.h"
#include "sl_mdb.h"
#include "store.h"

#define STORE_DEFAULT_MAP_SIZE ((size_t) 1 << 30)
#define STORE_MAX_READERS 512u
// Expired nonces purged per call: bounded so one write never stalls on a
// large backlog, yet more than one per call so the backlog shrinks.
#define STORE_NONCE_PURGE 32u
#define STORE_NONCE_MAX 256u
// LMDB's default maximum key size is 511 bytes; history keys add 9.
#define STORE_KEY_MAX 480u

struct flagd_store {
	MDB_env *env;
	char    *dir;
	bool     derived; // see flagd_store_opts
	bool     rebuilt;
	MDB_dbi  meta;
	MDB_dbi  rollouts;
	MDB_dbi  history;
	MDB_dbi  flags;
	MDB_dbi  keys;
	MDB_dbi  audit;
	MDB_dbi  nonces;
	MDB_dbi  nonce_exp;
};

struct flagd_txn {
	flagd_store *s;
	MDB_txn     *txn;
	bool         write;
	// The last sealed audit entry points here until the txn ends.
	uint8_t prev_buf[SL_HASH_BYTES];
	uint8_t hash_buf[SL_HASH_BYTES];
};

static const char META_REVISION[]   = "revision";
static const char META_AUDIT_HEAD[] = "audit_head";
static const char META_APPLIED[]    = "applied";

static void
be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t) (v & 0xffu);
		v >>= 8;
	}
}

static uint64_t
be64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++) {
		v = (v << 8) | p[i];
	}
	return (v);
}

// ------------------------------------------------------------ raw access

static int
db_get(flagd_txn *t, MDB_dbi dbi, const void *k, size_t klen, MDB_val *vp)
{
	MDB_val key;

	if (klen == 0 || klen > STORE_KEY_MAX + 9) {
		return (SLUICE_ENOENT);
	}
	key.mv_data = (void *) (uintptr_t) k;
	key.mv_size = klen;
	return (sl_mdb_err(mdb_get(t->txn, dbi, &key, vp)));
}

static int
db_put(flagd_txn *t, MDB_dbi dbi, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	MDB_val key;
	MDB_val val;

	if (!t->write) {
		return (SLUICE_EINTERNAL);
	}
	if (klen == 0 || klen > STORE_KEY_MAX + 9) {
		return (SLUICE_EINVAL);
	}
	key.mv_data = (void *) (uintptr_t) k;
	key.mv_size = klen;
	val.mv_data = (void *) (uintptr_t) v;
	val.mv_size = vlen;
	return (sl_mdb_err(mdb_put(t->txn, dbi, &key, &val, 0)));
}

static int
db_del(flagd_txn *t, MDB_dbi dbi, const void *k, size_t klen)
{
	MDB_val key;

	if (!t->write) {
		return (SLUICE_EINTERNAL);
	}
	if (klen == 0 || klen > STORE_KEY_MAX + 9) {
		return (SLUICE_ENOENT);
	}
	key.mv_data = (void *) (uintptr_t) k;
	key.mv_size = klen;
	return (sl_mdb_err(mdb_del(t->txn, dbi, &key, NULL)));
}

// Stored messages were packed by us: one that does not decode is damage
// on disk, not bad input.
static int
unpack_val(const ProtobufCMessageDescriptor *d, const MDB_val *v,
    ProtobufCMessage **mp)
{
	int rv;

	rv = sl_unpack(d, v->mv_data, v->mv_size, SL_MAX_REPLY_BYTES, mp);
	if (rv == SLUICE_EPROTO || rv == SLUICE_ETOOBIG) {
		return (SLUICE_ECORRUPT);
	}
	return (rv);
}

static int
db_get_msg(flagd_txn *t, MDB_dbi dbi, const void *k, size_t klen,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **mp)
{
	MDB_val v;
	int     rv;

	if ((rv = db_get(t, dbi, k, klen, &v)) != SLUICE_OK) {
		return (rv);
	}
	return (unpack_val(d, &v, mp));
}

static int
db_put_msg(flagd_txn *t, MDB_dbi dbi, const void *k, size_t klen,
    const ProtobufCMessage *m)
{
	uint8_t *buf;
	size_t   len;
	int      rv;

	if ((rv = sl_pack(m, &buf, &len)) != SLUICE_OK) {
		return (rv);
	}
	rv = db_put(t, dbi, k, klen, buf, len);
	free(buf);
	return (rv);
}

static uint64_t
meta_u64(flagd_txn *t, const char *name)
{
	MDB_val v;

	if (db_get(t, t->s->meta, name, strlen(name), &v) != SLUICE_OK ||
	    v.mv_size != 8) {
		return (0);
	}
	return (be64_get(v.mv_data));
}

static int
meta_set_u64(flagd_txn *t, const char *name, uint64_t val)
{
	uint8_t buf[8];

	be64_put(buf, val);
	return (db_put(t, t->s->meta, name, strlen(name), buf, sizeof(buf)));
}

// ------------------------------------------------------------ lifecycle

// The kernel's boot id: it changes when the machine restarts, which is
// when pages LMDB wrote without fsync may have been lost.
static void
boot_id(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = '\0';
	if (f != NULL) {
		if (fgets(buf, (int) len, f) == NULL) {
			buf[0] = '\0';
		}
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

static int
state_write(flagd_store *s, const char *state)
{
	char path[4096];
	char line[128];
	char boot[64];

	boot_id(boot, sizeof(boot));
	snprintf(path, sizeof(path), "%s/" STORE_STATE_FILE, s->dir);
	snprintf(line, sizeof(line), "%s %s\n", state, boot);
	if (sl_file_replace(path, line, strlen(line), 0600) != SLUICE_OK) {
		sl_log_err("store.state", "cannot write %s: %s", path,
		    strerror(errno));
		return (SLUICE_EIO);
	}
	return (SLUICE_OK);
}

// A derived store that was open (not closed cleanly) under another boot
// of the machine may hold torn pages: it is removed, and the consensus
// log rebuilds it. Returns true if it was removed.
static int
discard_if_unsynced(flagd_store *s, bool *discardedp)
{
	char  path[4096];
	char  line[128] = "";
	char  boot[64];
	char  state[16] = "";
	char  was[64]   = "";
	FILE *f;

	*discardedp = false;
	snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
	if (access(path, F_OK) != 0) {
		return (SLUICE_OK); // nothing to lose: a new store
	}
	snprintf(path, sizeof(path), "%s/" STORE_STATE_FILE, s->dir);
	if ((f = fopen(path, "re")) != NULL) {
		if (fgets(line, sizeof(line), f) == NULL) {
			line[0] = '\0';
		}
		fclose(f);
	}
	(void) sscanf(line, "%15s %63s", state, was);
	boot_id(boot, sizeof(boot));
	if (strcmp(state, "clean") == 0 ||
	    (strcmp(state, "open") == 0 && boot[0] != '\0' &&
	        strcmp(was, boot) == 0)) {
		return (SLUICE_OK);
	}
	sl_log_notice("store.rebuild",
	    "%s/data.mdb was not synced before the machine restarted (state "
	    "\"%s\"): discarding it; the consensus log and snapshot "
	    "rebuild it",
	    s->dir, state[0] != '\0' ? state : "unknown");
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", s->dir,
		    i == 0 ? "data.mdb" : "lock.mdb");
		if (unlink(path) != 0 && errno != ENOENT) {
			sl_log_err("store.rebuild", "cannot remove %s: %s",
			    path, strerror(errno));
			return (SLUICE_EIO);
		}
	}
	*discardedp = true;
	return (SLUICE_OK);
}

int
flagd_store_open(
    flagd_store **sp, const char *dir, const flagd_store_opts *opts)
{
	flagd_store *s;
	unsigned     flags = MDB_NOTLS;
	size_t       map   = STORE_DEFAULT_MAP_SIZE;
	int          rv;

	if (dir == NULL || *dir == '\0') {
		return (SLUICE_EINVAL);
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->dir = strdup(dir)) == NULL) {
		free(s);
		return (SLUICE_ENOMEM);
	}
	if (opts != NULL) {
		if (opts->map_size != 0) {
			map = opts->map_size;
		}
		if (opts->nosync || opts->derived) {
			flags |= MDB_NOSYNC;
		}
		s->derived = opts->derived && !opts->nosync;
	}
	if (s->derived &&
	    ((rv = discard_if_unsynced(s, &s->rebuilt)) != SLUICE_OK ||
	        (rv = state_write(s, "open")) != SLUICE_OK)) {
		goto fail;
	}
	{
		const sl_mdb_db dbs[] = {
			{ "meta", &s->meta },
			{ "rollouts", &s->rollouts },
			{ "history", &s->history },
			{ "flags", &s->flags },
			{ "keys", &s->keys },
			{ "audit", &s->audit },
			{ "nonces", &s->nonces },
			{ "nonce_exp", &s->nonce_exp },
		};
		// MDB_NOTLS: read txns are tied to the flagd_txn, not to the
		// thread, because nng worker threads open and end them
		// concurrently.
		const sl_mdb_opts mo = { map, flags, STORE_MAX_READERS };

		if ((rv = sl_mdb_open(&s->env, dir, &mo, dbs,
		         sizeof(dbs) / sizeof(dbs[0]), "store.open")) !=
		    SLUICE_OK) {
			goto fail;
		}
	}
	*sp = s;
	return (SLUICE_OK);
fail:
	s->derived = false; // not open: nothing to mark clean
	flagd_store_close(s);
	return (rv);
}

bool
flagd_store_rebuilt(const flagd_store *s)
{
	return (s->rebuilt);
}

int
flagd_store_sync(flagd_store *s)
{
	int rc = mdb_env_sync(s->env, 1);

	if (rc != MDB_SUCCESS) {
		sl_log_err("store.sync", "cannot sync %s: %s", s->dir,
		    mdb_strerror(rc));
		return (sl_mdb_err(rc));
	}
	return (SLUICE_OK);
}

void
flagd_store_close(flagd_store *s)
{
	if (s == NULL) {
		return;
	}
	if (s->env != NULL) {
		// Synced, it no longer needs the log to be whole.
		if (s->derived && flagd_store_sync(s) == SLUICE_OK) {
			(void) state_write(s, "clean");
		}
		mdb_env_close(s->env);
	}
	free(s->dir);
	free(s);
}

int
flagd_store_begin(flagd_store *s, bool write, flagd_txn **tp)
{
	flagd_txn *t;
	int        rc;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	t->s     = s;
	t->write = write;
	rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc != MDB_SUCCESS) {
		free(t);
		return (sl_mdb_err(rc));
	}
	*tp = t;
	return (SLUICE_OK);
}

int
flagd_txn_commit(flagd_txn *t)
{
	int rc;

	rc = mdb_txn_commit(t->txn);
	free(t);
	return (sl_mdb_err(rc));
}

void
flagd_txn_abort(flagd_txn *t)
{
	if (t == NULL) {
		return;
	}
	mdb_txn_abort(t->txn);
	free(t);
}

uint64_t
flagd_txn_revision(flagd_txn *t)
{
	return (meta_u64(t, META_REVISION));
}

int
flagd_txn_set_revision(flagd_txn *t, uint64_t rev)
{
	return (meta_set_u64(t, META_REVISION, rev));
}

uint64_t
flagd_txn_applied(flagd_txn *t)
{
	return (meta_u64(t, META_APPLIED));
}

int
flagd_txn_set_applied(flagd_txn *t, uint64_t index)
{
	return (meta_set_u64(t, META_APPLIED, index));
}

uint64_t
flagd_store_revision(flagd_store *s)
{
	flagd_txn *t;
	uint64_t   rev;

	if (flagd_store_begin(s, false, &t) != SLUICE_OK) {
		return (0);
	}
	rev = flagd_txn_revision(t);
	flagd_txn_abort(t);
	return (rev);
}

// ------------------------------------------------------------ rollouts

int
flagd_txn_get_rollout(flagd_txn *t, const char *name, Sluice__V1__Rollout **rp)
{
	ProtobufCMessage *m;
	int               rv;

	if ((rv = db_get_msg(t, t->s->rollouts, name, strlen(name),
	         &sluice__v1__rollout__descriptor, &m)) != SLUICE_OK) {
		return (rv);
	}
	if (((Sluice__V1__Rollout *) m)->spec == NULL) {
		protobuf_c_message_free_unpacked(m, NULL);
		return (SLUICE_ECORRUPT);
	}
	*rp = (Sluice__V1__Rollout *) m;
	return (SLUICE_OK);
}

static size_t
history_key(uint8_t *buf, const char *name, size_t nlen, uint64_t rev)
{
	memcpy(buf, name, nlen);
	buf[nlen] = '\0';
	be64_put(buf + nlen + 1, rev);
	return (nlen + 9);
}

int
flagd_txn_put_rollout(flagd_txn *t, const Sluice__V1__Rollout *r)
{
	Sluice__V1__Rollout *prev = NULL;
	const char          *name;
	size_t               nlen;
	uint8_t              hkey[STORE_KEY_MAX + 9];
	int                  rv;

	if (r->spec == NULL || (nlen = strlen(r->spec->name)) == 0 ||
	    nlen > STORE_KEY_MAX) {
		return (SLUICE_EINVAL);
	}
	name = r->spec->name;
	rv   = flagd_txn_get_rollout(t, name, &prev);
	if (rv != SLUICE_OK && rv != SLUICE_ENOENT) {
		return (rv);
	}
	if (prev != NULL) {
		for (size_t i = 0; i < prev->spec->n_flags; i++) {
			const char *fk = prev->spec->flags[i]->key;
			MDB_val     v;

			// Drop only entries that still point at us; the
			// caller checked ownership, this is belt and braces.
			rv = db_get(t, t->s->flags, fk, strlen(fk), &v);
			if (rv == SLUICE_ENOENT) {
				continue;
			}
			if (rv != SLUICE_OK) {
				goto fail;
			}
			if (v.mv_size != nlen ||
			    memcmp(v.mv_data, name, nlen) != 0) {
				continue;
			}
			if ((rv = db_del(t, t->s->flags, fk, strlen(fk))) !=
			    SLUICE_OK) {
				goto fail;
			}
		}
	}
	for (size_t i = 0; i < r->spec->n_flags; i++) {
		const char *fk = r->spec->flags[i]->key;

		if ((rv = db_put(t, t->s->flags, fk, strlen(fk), name,
		         nlen)) != SLUICE_OK) {
			goto fail;
		}
	}
	if ((rv = db_put_msg(t, t->s->rollouts, name, nlen, &r->base)) !=
	    SLUICE_OK) {
		goto fail;
	}
	history_key(hkey, name, nlen, r->revision);
	rv = db_put_msg(t, t->s->history, hkey, nlen + 9, &r->base);
fail:
	if (prev != NULL) {
		sluice__v1__rollout__free_unpacked(prev, NULL);
	}
	return (rv);
}

void
flagd_rollouts_free(Sluice__V1__Rollout **rs, size_t n)
{
	if (rs == NULL) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (rs[i] != NULL) {
			sluice__v1__rollout__free_unpacked(rs[i], NULL);
		}
	}
	free(rs);
}

// Appends m to a growing array of messages.
static int
msgs_push(
    ProtobufCMessage ***ap, size_t *np, size_t *capp, ProtobufCMessage *m)
{
	if (*np == *capp) {
		size_t             cap = *capp == 0 ? 16 : *capp * 2;
		ProtobufCMessage **a   = realloc(*ap, cap * sizeof(*a));

		if (a == NULL) {
			return (SLUICE_ENOMEM);
		}
		*ap   = a;
		*capp = cap;
	}
	(*ap)[(*np)++] = m;
	return (SLUICE_OK);
}

static void
msgs_free(ProtobufCMessage **a, size_t n)
{
	if (a == NULL) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		protobuf_c_message_free_unpacked(a[i], NULL);
	}
	free(a);
}

// Every value of dbi in key order, unpacked as d.
static int
db_list_msgs(flagd_txn *t, MDB_dbi dbi, const ProtobufCMessageDescriptor *d,
    ProtobufCMessage ***ap, size_t *np)
{
	MDB_cursor        *c;
	MDB_val            k;
	MDB_val            v;
	ProtobufCMessage **a   = NULL;
	size_t             n   = 0;
	size_t             cap = 0;
	int                rc;
	int                rv;

	if ((rv = sl_mdb_err(mdb_cursor_open(t->txn, dbi, &c))) != SLUICE_OK) {
		return (rv);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		ProtobufCMessage *m;

		if ((rv = unpack_val(d, &v, &m)) != SLUICE_OK) {
			goto fail;
		}
		if ((rv = msgs_push(&a, &n, &cap, m)) != SLUICE_OK) {
			protobuf_c_message_free_unpacked(m, NULL);
			goto fail;
		}
	}
	if (rc != MDB_NOTFOUND) {
		rv = sl_mdb_err(rc);
		goto fail;
	}
	mdb_cursor_close(c);
	*ap = a;
	*np = n;
	return (SLUICE_OK);
fail:
	mdb_cursor_close(c);
	msgs_free(a, n);
	return (rv);
}

int
flagd_txn_list_rollouts(flagd_txn *t, Sluice__V1__Rollout ***rsp, size_t *np)
{
	ProtobufCMessage **a;
	size_t             n;
	int                rv;

	if ((rv = db_list_msgs(t, t->s->rollouts,
	         &sluice__v1__rollout__descriptor, &a, &n)) != SLUICE_OK) {
		return (rv);
	}
	for (size_t i = 0; i < n; i++) {
		if (((Sluice__V1__Rollout *) a[i])->spec == NULL) {
			msgs_free(a, n);
			return (SLUICE_ECORRUPT);
		}
	}
	*rsp = (Sluice__V1__Rollout **) a;
	*np  = n;
	return (SLUICE_OK);
}

int
flagd_txn_rollout_at(
    flagd_txn *t, const char *name, uint64_t rev, Sluice__V1__Rollout **rp)
{
	MDB_cursor       *c;
	MDB_val           k;
	MDB_val           v;
	uint8_t           hkey[STORE_KEY_MAX + 9];
	size_t            nlen = strlen(name);
	ProtobufCMessage *m;
	int               rc;
	int               rv;

	if (nlen == 0 || nlen > STORE_KEY_MAX) {
		return (SLUICE_ENOENT);
	}
	k.mv_data = hkey;
	k.mv_size = history_key(hkey, name, nlen, rev);
	if ((rv = sl_mdb_err(mdb_cursor_open(t->txn, t->s->history, &c))) !=
	    SLUICE_OK) {
		return (rv);
	}
	// SET_RANGE lands on the first key >= name\0rev: that entry itself
	// when it exists, else the one after; the one we want is then the
	// entry before it, if it still belongs to name.
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_SUCCESS &&
	    !(k.mv_size == nlen + 9 &&
	        memcmp(k.mv_data, hkey, nlen + 9) == 0)) {
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	} else if (rc == MDB_NOTFOUND) {
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	}
	if (rc != MDB_SUCCESS) {
		rv = sl_mdb_err(rc);
		goto done;
	}
	if (k.mv_size != nlen + 9 || memcmp(k.mv_data, hkey, nlen + 1) != 0 ||
	    be64_get((const uint8_t *) k.mv_data + nlen + 1) > rev) {
		rv = SLUICE_ENOENT;
		goto done;
	}
	if ((rv = unpack_val(&sluice__v1__rollout__descriptor, &v, &m)) !=
	    SLUICE_OK) {
		goto done;
	}
	if (((Sluice__V1__Rollout *) m)->spec == NULL) {
		protobuf_c_message_free_unpacked(m, NULL);
		rv = SLUICE_ECORRUPT;
		goto done;
	}
	*rp = (Sluice__V1__Rollout *) m;
done:
	mdb_cursor_close(c);
	return (rv);
}

int
flagd_txn_flag_owner(flagd_txn *t, const char *flag, char *buf, size_t buflen)
{
	MDB_val v;
	int     rv;

	if ((rv = db_get(t, t->s->flags, flag, strlen(flag), &v)) !=
	    SLUICE_OK) {
		return (rv);
	}
	if (buflen <= v.mv_size) {
		return (SLUICE_EINVAL);
	}
	memcpy(buf, v.mv_data, v.mv_size);
	buf[v.mv_size] = '\0';
	return (SLUICE_OK);
}

// ------------------------------------------------------------ keys

int
flagd_txn_get_key(flagd_txn *t, const char *id, Sluice__V1__Key **kp)
{
	ProtobufCMessage *m;
	int               rv;

	if ((rv = db_get_msg(t, t->s->keys, id, strlen(id),
	         &sluice__v1__key__descriptor, &m)) != SLUICE_OK) {
		return (rv);
	}
	*kp = (Sluice__V1__Key *) m;
	return (SLUICE_OK);
}

int
flagd_txn_put_key(flagd_txn *t, const Sluice__V1__Key *k)
{
	return (db_put_msg(t, t->s->keys, k->id, strlen(k->id), &k->base));
}

int
flagd_txn_del_key(flagd_txn *t, const char *id)
{
	return (db_del(t, t->s->keys, id, strlen(id)));
}

int
flagd_txn_list_keys(flagd_txn *t, Sluice__V1__Key ***ksp, size_t *np)
{
	ProtobufCMessage **a;
	size_t             n;
	int                rv;

	if ((rv = db_list_msgs(t, t->s->keys, &sluice__v1__key__descriptor, &a,
	         &n)) != SLUICE_OK) {
		return (rv);
	}
	*ksp = (Sluice__V1__Key **) a;
	*np  = n;
	return (SLUICE_OK);
}

void
flagd_keys_free(Sluice__V1__Key **ks, size_t n)
{
	msgs_free((ProtobufCMessage **) ks, n);
}

// ------------------------------------------------------------ nonces

// Deletes up to STORE_NONCE_PURGE nonces that expired at or before now_ms,
// oldest first: nonce_exp is ordered by expiry.
static int
nonce_purge(flagd_txn *t, uint64_t now_ms)
{
	MDB_cursor *c;
	MDB_val     k;
	MDB_val     v;
	int         rc;
	int         rv = SLUICE_OK;

	if ((rv = sl_mdb_err(mdb_cursor_open(t->txn, t->s->nonce_exp, &c))) !=
	    SLUICE_OK) {
		return (rv);
	}
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	for (unsigned i = 0; i < STORE_NONCE_PURGE && rc == MDB_SUCCESS; i++) {
		const uint8_t *kp = k.mv_data;
		MDB_val        nv;

		if (k.mv_size < 9 || be64_get(kp) > now_ms) {
			break;
		}
		// The nonce may have been re-recorded with a later expiry
		// after it lapsed; delete it only if this entry is its own.
		rv = db_get(t, t->s->nonces, kp + 8, k.mv_size - 8, &nv);
		if (rv == SLUICE_OK && nv.mv_size == 8 &&
		    memcmp(nv.mv_data, kp, 8) == 0) {
			rv = db_del(t, t->s->nonces, kp + 8, k.mv_size - 8);
		} else if (rv == SLUICE_ENOENT || rv == SLUICE_OK) {
			rv = SLUICE_OK;
		}
		if (rv != SLUICE_OK) {
			goto done;
		}
		if ((rv = sl_mdb_err(mdb_cursor_del(c, 0))) != SLUICE_OK) {
			goto done;
		}
		// Start over from the first: after a delete LMDB's
		// GET_CURRENT misreports the end of a page.
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	}
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
		rv = sl_mdb_err(rc);
	}
done:
	mdb_cursor_close(c);
	return (rv);
}

int
flagd_txn_nonce_use(flagd_txn *t, const uint8_t *nonce, size_t len,
    uint64_t expires_ms, uint64_t now_ms)
{
	uint8_t ekey[8 + STORE_NONCE_MAX];
	MDB_val v;
	int     rv;

	if (len == 0 || len > STORE_NONCE_MAX) {
		return (SLUICE_EINVAL);
	}
	if ((rv = nonce_purge(t, now_ms)) != SLUICE_OK) {
		return (rv);
	}
	rv = db_get(t, t->s->nonces, nonce, len, &v);
	if (rv == SLUICE_OK) {
		if (v.mv_size == 8 && be64_get(v.mv_data) > now_ms) {
			return (SLUICE_EREPLAY);
		}
		// Lapsed but not yet purged: drop its purge entry, the new
		// one replaces it.
		if (v.mv_size == 8) {
			memcpy(ekey, v.mv_data, 8);
			memcpy(ekey + 8, nonce, len);
			rv = db_del(t, t->s->nonce_exp, ekey, 8 + len);
			if (rv != SLUICE_OK && rv != SLUICE_ENOENT) {
				return (rv);
			}
		}
	} else if (rv != SLUICE_ENOENT) {
		return (rv);
	}
	be64_put(ekey, expires_ms);
	memcpy(ekey + 8, nonce, len);
	if ((rv = db_put(t, t->s->nonces, nonce, len, ekey, 8)) != SLUICE_OK) {
		return (rv);
	}
	return (db_put(t, t->s->nonce_exp, ekey, 8 + len, "", 0));
}

// ------------------------------------------------------------ audit

int
flagd_txn_audit_append(flagd_txn *t, Sluice__V1__AuditEntry *e)
{
	static const uint8_t zero[SL_HASH_BYTES];
	const uint8_t       *prev = zero;
	uint8_t              key[8];
	MDB_val              v;
	int                  rv;

	if (e->revision == 0 || e->revision != flagd_txn_revision(t)) {
		return (SLUICE_EINVAL);
	}
	rv = db_get(
	    t, t->s->meta, META_AUDIT_HEAD, strlen(META_AUDIT_HEAD), &v);
	if (rv == SLUICE_OK) {
		if (v.mv_size != SL_HASH_BYTES) {
			return (SLUICE_ECORRUPT);
		}
		prev = v.mv_data;
	} else if (rv != SLUICE_ENOENT) {
		return (rv);
	}
	// prev points into the map; seal copies it into prev_buf first.
	if ((rv = sl_audit_seal(e, prev, t->prev_buf, t->hash_buf)) !=
	    SLUICE_OK) {
		return (rv);
	}
	be64_put(key, e->revision);
	if ((rv = db_put_msg(t, t->s->audit, key, sizeof(key), &e->base)) !=
	    SLUICE_OK) {
		return (rv);
	}
	return (db_put(t, t->s->meta, META_AUDIT_HEAD, strlen(META_AUDIT_HEAD),
	    t->hash_buf, SL_HASH_BYTES));
}

int
flagd_txn_get_audit(
    flagd_txn *t, uint64_t revision, Sluice__V1__AuditEntry **ep)
{
	ProtobufCMessage *m;
	uint8_t           key[8];
	int               rv;

	be64_put(key, revision);
	if ((rv = db_get_msg(t, t->s->audit, key, sizeof(key),
	         &sluice__v1__audit_entry__descriptor, &m)) != SLUICE_OK) {
		return (rv);
	}
	*ep = (Sluice__V1__AuditEntry *) m;
	return (SLUICE_OK);
}

int
flagd_txn_audit_list(flagd_txn *t, const char *rollout, uint64_t after,
    uint32_t limit, Sluice__V1__AuditEntry ***esp, size_t *np, bool *morep)
{
	MDB_cursor        *c;
	MDB_val            k;
	MDB_val            v;
	uint8_t            key[8];
	ProtobufCMessage **a    = NULL;
	size_t             n    = 0;
	size_t             cap  = 0;
	bool               more = false;
	int                rc;
	int                rv = SLUICE_OK;

	if (after == UINT64_MAX) {
		*esp   = NULL;
		*np    = 0;
		*morep = false;
		return (SLUICE_OK);
	}
	if ((rv = sl_mdb_err(mdb_cursor_open(t->txn, t->s->audit, &c))) !=
	    SLUICE_OK) {
		return (rv);
	}
	be64_put(key, after + 1);
	k.mv_data = key;
	k.mv_size = sizeof(key);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		ProtobufCMessage       *m;
		Sluice__V1__AuditEntry *e;

		if ((rv = unpack_val(&sluice__v1__audit_entry__descriptor, &v,
		         &m)) != SLUICE_OK) {
			goto fail;
		}
		e = (Sluice__V1__AuditEntry *) m;
		if (rollout != NULL && *rollout != '\0' &&
		    strcmp(e->rollout, rollout) != 0) {
			protobuf_c_message_free_unpacked(m, NULL);
			continue;
		}
		if (limit != 0 && n == limit) {
			protobuf_c_message_free_unpacked(m, NULL);
			more = true;
			break;
		}
		if ((rv = msgs_push(&a, &n, &cap, m)) != SLUICE_OK) {
			protobuf_c_message_free_unpacked(m, NULL);
			goto fail;
		}
	}
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
		rv = sl_mdb_err(rc);
		goto fail;
	}
	mdb_cursor_close(c);
	*esp   = (Sluice__V1__AuditEntry **) a;
	*np    = n;
	*morep = more;
	return (SLUICE_OK);
fail:
	mdb_cursor_close(c);
	msgs_free(a, n);
	return (rv);
}

void
flagd_audit_free(Sluice__V1__AuditEntry **es, size_t n)
{
	msgs_free((ProtobufCMessage **) es, n);
}

// ------------------------------------------------------------ stats

static int
db_count(flagd_txn *t, MDB_dbi dbi, uint64_t *np)
{
	MDB_stat st;
	int      rv;

	if ((rv = sl_mdb_err(mdb_stat(t->txn, dbi, &st))) != SLUICE_OK) {
		return (rv);
	}
	*np = st.ms_entries;
	return (SLUICE_OK);
}

int
flagd_txn_stats(flagd_txn *t, flagd_store_stats *stp)
{
	flagd_store_stats st;
	MDB_envinfo       info;
	MDB_stat          es;
	int               rv;

	memset(&st, 0, sizeof(st));
	if ((rv = db_count(t, t->s->rollouts, &st.rollouts)) != SLUICE_OK ||
	    (rv = db_count(t, t->s->history, &st.history)) != SLUICE_OK ||
	    (rv = db_count(t, t->s->flags, &st.flags)) != SLUICE_OK ||
	    (rv = db_count(t, t->s->keys, &st.keys)) != SLUICE_OK ||
	    (rv = db_count(t, t->s->audit, &st.audit)) != SLUICE_OK ||
	    (rv = db_count(t, t->s->nonces, &st.nonces)) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = sl_mdb_err(mdb_env_info(t->s->env, &info))) != SLUICE_OK ||
	    (rv = sl_mdb_err(mdb_env_stat(t->s->env, &es))) != SLUICE_OK) {
		return (rv);
	}
	st.map_size = info.me_mapsize;
	st.map_used = (uint64_t) (info.me_last_pgno + 1) * es.ms_psize;
	*stp        = st;
	return (SLUICE_OK);
}

// ------------------------------------------------------------ snapshots

typedef struct snap_db {
	const char *name;
	size_t      off;
} snap_db;

// Every sub-database, meta included: a snapshot is the whole store.
static const snap_db SNAP_DBS[] = {
	{ "meta", offsetof(flagd_store, meta) },
	{ "rollouts", offsetof(flagd_store, rollouts) },
	{ "history", offsetof(flagd_store, history) },
	{ "flags", offsetof(flagd_store, flags) },
	{ "keys", offsetof(flagd_store, keys) },
	{ "audit", offsetof(flagd_store, audit) },
	{ "nonces", offsetof(flagd_store, nonces) },
	{ "nonce_exp", offsetof(flagd_store, nonce_exp) },
};
#define SNAP_NDBS (sizeof(SNAP_DBS) / sizeof(SNAP_DBS[0]))

static MDB_dbi
snap_dbi(const flagd_store *s, size_t i)
{
	return (*(const MDB_dbi *) (const void *) ((const char *) s +
	    SNAP_DBS[i].off));
}

void
flagd_store_snapshot_free(Sluice__V1__StoreSnapshot *snap)
{
	if (snap == NULL) {
		return;
	}
	for (size_t i = 0; i < snap->n_records; i++) {
		free(snap->records[i]->key.data);
		free(snap->records[i]->value.data);
		free(snap->records[i]);
	}
	free(snap->records);
	free(snap);
}

static int
snap_push(Sluice__V1__StoreSnapshot *snap, size_t *capp, const char *db,
    const MDB_val *k, const MDB_val *v)
{
	Sluice__V1__StoreRecord *r;

	if (snap->n_records == *capp) {
		size_t cap = *capp == 0 ? 64 : *capp * 2;
		void *p = realloc(snap->records, cap * sizeof(*snap->records));
		if (p == NULL) {
			return (SLUICE_ENOMEM);
		}
		snap->records = p;
		*capp         = cap;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	sluice__v1__store_record__init(r);
	r->db         = (char *) (uintptr_t) db;
	r->key.data   = malloc(k->mv_size > 0 ? k->mv_size : 1);
	r->value.data = malloc(v->mv_size > 0 ? v->mv_size : 1);
	if (r->key.data == NULL || r->value.data == NULL) {
		free(r->key.data);
		free(r->value.data);
		free(r);
		return (SLUICE_ENOMEM);
	}
	memcpy(r->key.data, k->mv_data, k->mv_size);
	memcpy(r->value.data, v->mv_data, v->mv_size);
	r->key.len                       = k->mv_size;
	r->value.len                     = v->mv_size;
	snap->records[snap->n_records++] = r;
	return (SLUICE_OK);
}

int
flagd_txn_snapshot(flagd_txn *t, Sluice__V1__StoreSnapshot **snapp)
{
	Sluice__V1__StoreSnapshot *snap;
	size_t                     cap = 0;
	int                        rv  = SLUICE_OK;

	if ((snap = calloc(1, sizeof(*snap))) == NULL) {
		return (SLUICE_ENOMEM);
	}
	sluice__v1__store_snapshot__init(snap);
	snap->applied  = flagd_txn_applied(t);
	snap->revision = flagd_txn_revision(t);
	for (size_t i = 0; i < SNAP_NDBS && rv == SLUICE_OK; i++) {
		MDB_cursor *cur;
		MDB_val     k;
		MDB_val     v;
		int         rc;

		rc = mdb_cursor_open(t->txn, snap_dbi(t->s, i), &cur);
		if ((rv = sl_mdb_err(rc)) != SLUICE_OK) {
			break;
		}
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		     rc == MDB_SUCCESS;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			if ((rv = snap_push(snap, &cap, SNAP_DBS[i].name, &k,
			         &v)) != SLUICE_OK) {
				break;
			}
		}
		if (rv == SLUICE_OK && rc != MDB_NOTFOUND) {
			rv = sl_mdb_err(rc);
		}
		mdb_cursor_close(cur);
	}
	if (rv != SLUICE_OK) {
		flagd_store_snapshot_free(snap);
		return (rv);
	}
	*snapp = snap;
	return (SLUICE_OK);
}

int
flagd_txn_restore(flagd_txn *t, const Sluice__V1__StoreSnapshot *snap)
{
	int rv;

	if (!t->write) {
		return (SLUICE_EINTERNAL);
	}
	// Validate every record's sub-database before changing anything, so
	// a damaged snapshot leaves the store as it was.
	for (size_t j = 0; j < snap->n_records; j++) {
		const Sluice__V1__StoreRecord *r     = snap->records[j];
		bool                           known = false;

		for (size_t i = 0; i < SNAP_NDBS && r->db != NULL; i++) {
			known = known || strcmp(r->db, SNAP_DBS[i].name) == 0;
		}
		if (!known || r->key.len == 0 ||
		    r->key.len > STORE_KEY_MAX + 9) {
			return (SLUICE_ECORRUPT);
		}
	}
	for (size_t i = 0; i < SNAP_NDBS; i++) {
		if ((rv = sl_mdb_err(mdb_drop(
		         t->txn, snap_dbi(t->s, i), 0))) != SLUICE_OK) {
			return (rv);
		}
	}
	for (size_t j = 0; j < snap->n_records; j++) {
		const Sluice__V1__StoreRecord *r = snap->records[j];

		for (size_t i = 0; i < SNAP_NDBS; i++) {
			if (strcmp(r->db, SNAP_DBS[i].name) != 0) {
				continue;
			}
			if ((rv = db_put(t, snap_dbi(t->s, i), r->key.data,
			         r->key.len, r->value.data, r->value.len)) !=
			    SLUICE_OK) {
				return (rv);
			}
			break;
		}
	}
	// The snapshot's own index wins over whatever meta it carried.
	return (meta_set_u64(t, META_APPLIED, snap->applied));
}
