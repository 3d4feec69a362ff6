/* SPDX-License-Identifier: MIT */
/*
 * cache.h — the client's cache file: the last applied snapshot, so that a
 * job started while no flagd answers runs on the last known state.
 *
 * Format (integers little-endian):
 *
 *     offset  size  field
 *     0       8     magic "SLUICEC\n"
 *     8       4     format version (1)
 *     12      4     reserved, 0
 *     16      8     revision of the snapshot
 *     24      8     contact_ms: wall-clock time (ms since the epoch) of
 *                   the writer's last contact with flagd
 *     32      8     payload length n
 *     40      n     payload: the packed Snapshot message
 *     40+n    32    BLAKE2b-256 of bytes [0, 40+n)
 *
 * Written to "<path>.tmp.<pid>", fsync'd, renamed over path, and the
 * directory fsync'd, so a crash leaves either the old file or the new
 * one. A file that fails any check (size, magic, version, length,
 * checksum, decoding, revision) is rejected whole, with one log line.
 */
#ifndef SL_CACHE_H
#define SL_CACHE_H

#include "sl.h"

#define SL_CACHE_MAGIC "SLUICEC\n"
#define SL_CACHE_VERSION 1u
#define SL_CACHE_HEADER_BYTES 40u
#define SL_CACHE_SUM_BYTES 32u

/*
 * Writes snap to path atomically.
 * @return SLUICE_OK; SLUICE_ENOMEM; SLUICE_EIO (with errno-based detail
 *         in the log at debug level; the caller logs the failure).
 */
int sl_cache_write(const char *path, const Sluice__V1__Snapshot *snap,
    uint64_t contact_ms) SLUICE_NODISCARD;

/*
 * Loads and verifies path.
 * @param snapp     OUT: the snapshot, owned by the caller, freed with
 *                  sluice__v1__snapshot__free_unpacked(). Written on
 *                  success only.
 * @param contactp  OUT: the contact time from the header; may be NULL.
 * @return SLUICE_OK; SLUICE_ENOENT (no file: not an error for a first
 *         start; not logged); SLUICE_ECORRUPT (rejected; logged at err
 *         with the reason); SLUICE_EIO (unreadable; logged);
 *         SLUICE_ENOMEM.
 */
int sl_cache_load(const char *path, Sluice__V1__Snapshot **snapp,
    uint64_t *contactp) SLUICE_NODISCARD;

#endif /* SL_CACHE_H */
