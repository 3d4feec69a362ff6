/* SPDX-License-Identifier: MIT */
/*
 * clients.h — the registry of live libsluice clients: the latest
 * acknowledgement (ClientAck) of each client_id, so that `flagctl clients`
 * and `flagctl wait --revision R` can tell which consumers have applied
 * which revision. In memory only, per node: it is not replicated and does
 * not survive a restart, which is harmless because every client re-acks at
 * connect and every ack interval. Bounded: at most max entries, the least
 * recently heard-from evicted first; an entry not heard from for
 * liveness_ms is dropped. Thread-safe (one mutex, never held across I/O).
 */
#ifndef FLAGD_CLIENTS_H
#define FLAGD_CLIENTS_H

#include "metrics.h"
#include "sl.h"
#include "store.h"

typedef struct flagd_clients flagd_clients;

/*
 * max: entries kept (>= 1); liveness_ms: how long an entry lives without
 * an ack. m is borrowed for the registry's lifetime (counters). *rp freed
 * with flagd_clients_close().
 */
int  flagd_clients_open(flagd_clients **rp, size_t max, uint64_t liveness_ms,
     flagd_metrics *m) SLUICE_NODISCARD;
void flagd_clients_close(flagd_clients *r); /* NULL is a no-op */

/*
 * Records one SignedAck received at now_ms (wall clock). An unsigned ack
 * is recorded as unverified. A signed one must name a key in store, carry
 * a valid signature and a time_ms within skew_ms of now_ms; otherwise it
 * is refused (EUNKNOWNKEY, EBADSIG, EEXPIRED) and nothing is recorded.
 * A malformed body is EPROTO/ETOOBIG. A client first recorded from a
 * signed ack is updated (or removed, by an ack with leaving set) only by
 * acks signed with the same key: EPERM otherwise. The reason goes to err.
 * *verifiedp (may be NULL) says whether the signature was checked.
 */
int flagd_clients_ack(flagd_clients *r, flagd_store *store, uint64_t skew_ms,
    const Sluice__V1__SignedAck *sa, uint64_t now_ms, bool *verifiedp,
    char *err, size_t errlen) SLUICE_NODISCARD;

/*
 * Fills out (initialised by the caller) with the live clients at now_ms,
 * sorted by client_id. The array and every string in it are malloc'd;
 * release with flagd_clients_list_free(out). ENOMEM.
 */
int  flagd_clients_list(flagd_clients *r, uint64_t now_ms,
     Sluice__V1__ClientList *out) SLUICE_NODISCARD;
void flagd_clients_list_free(Sluice__V1__ClientList *out);

/* Live entries at now_ms (expired ones are dropped first). */
size_t flagd_clients_count(flagd_clients *r, uint64_t now_ms);

uint64_t flagd_clients_liveness_ms(const flagd_clients *r);

#endif /* FLAGD_CLIENTS_H */
