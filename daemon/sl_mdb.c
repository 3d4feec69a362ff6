// SPDX-License-Identifier: MIT
//
// sl_mdb.c — LMDB environments for the daemons (sl_mdb.h).

#include <errno.h>

#include "sl_mdb.h"

int
sl_mdb_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return (SLUICE_OK);
	case MDB_NOTFOUND:
		return (SLUICE_ENOENT);
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case ENOSPC:
		return (SLUICE_EFULL);
	case ENOMEM:
		return (SLUICE_ENOMEM);
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return (SLUICE_ECORRUPT);
	case EIO:
	case EACCES:
	case EPERM:
	case ENOENT:
	case EROFS:
		return (SLUICE_EIO);
	default:
		// The remaining MDB_* codes (bad txn, bad dbi, readers full,
		// ...) mean misuse or exhausted limits: not the caller's
		// input.
		return (rc > 0 ? SLUICE_EIO : SLUICE_EINTERNAL);
	}
}

int
sl_mdb_open(MDB_env **envp, const char *dir, const sl_mdb_opts *o,
    const sl_mdb_db *dbs, size_t n, const char *msgid)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	int      rc;

	*envp = NULL;
	if ((rc = mdb_env_create(&env)) != MDB_SUCCESS) {
		env = NULL;
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(env, (MDB_dbi) n)) != MDB_SUCCESS ||
	    (rc = mdb_env_set_mapsize(env, o->map_size)) != MDB_SUCCESS ||
	    (o->max_readers != 0 &&
	        (rc = mdb_env_set_maxreaders(env, o->max_readers)) !=
	            MDB_SUCCESS) ||
	    (rc = mdb_env_open(env, dir, o->flags, 0600)) != MDB_SUCCESS ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != MDB_SUCCESS) {
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE,
		         dbs[i].dbi)) != MDB_SUCCESS) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	if ((rc = mdb_txn_commit(txn)) != MDB_SUCCESS) {
		goto fail;
	}
	*envp = env;
	return (SLUICE_OK);
fail:
	sl_log_err(msgid, "cannot open LMDB in %s: %s", dir, mdb_strerror(rc));
	if (env != NULL) {
		mdb_env_close(env);
	}
	return (sl_mdb_err(rc));
}
