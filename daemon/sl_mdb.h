/* SPDX-License-Identifier: MIT */
/*
 * sl_mdb.h — what flagd's store and gatekeeper's database share about
 * LMDB: opening an environment with its named sub-databases, and mapping
 * MDB_* codes to SLUICE_* ones. Linked by the daemons only (libsldaemon),
 * so client programs never link LMDB.
 */
#ifndef SL_MDB_H
#define SL_MDB_H

#include <stddef.h>

#include <lmdb.h>

#include "sl.h"

/* MDB_* and errno values to SLUICE_* codes. */
int sl_mdb_err(int rc);

/* A sub-database to open (created if missing) and where its handle goes. */
typedef struct sl_mdb_db {
	const char *name;
	MDB_dbi    *dbi;
} sl_mdb_db;

typedef struct sl_mdb_opts {
	size_t   map_size;    /* bytes */
	unsigned flags;       /* mdb_env_open flags (MDB_NOTLS, MDB_NOSYNC) */
	unsigned max_readers; /* 0: LMDB's default */
} sl_mdb_opts;

/*
 * Opens (creating) the environment in dir, which must exist, and every
 * sub-database of dbs[0..n) in one write transaction. On error *envp is
 * NULL and nothing stays open; the error is logged under msgid.
 */
int sl_mdb_open(MDB_env **envp, const char *dir, const sl_mdb_opts *o,
    const sl_mdb_db *dbs, size_t n, const char *msgid) SLUICE_NODISCARD;

#endif /* SL_MDB_H */
