/* SPDX-License-Identifier: MIT */
/*
 * transport.h — the consensus transport flagd hands libraft: a thin
 * raft_uv_transport around libraft's own raft_uv_tcp that resolves peer
 * host names. Debian's libraft 0.15 parses every address with uv_ip4_addr,
 * so a peer named "flagd-1.flagd.ns.svc:7402" (a Kubernetes StatefulSet
 * pod: a stable name, not a stable IP) cannot be dialled by raft_uv_tcp
 * directly. This wrapper resolves the name with uv_getaddrinfo (IPv4) on
 * every connect and delegates with the literal address, so the raft
 * configuration holds names only and a restarted pod with a new IP is
 * found on the next reconnect. An IPv4 literal is delegated as is.
 *
 * Everything here runs on the consensus loop thread (libraft's); name
 * resolution runs on libuv's thread pool.
 */
#ifndef FLAGD_TRANSPORT_H
#define FLAGD_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "sl.h"

typedef struct flagd_transport flagd_transport;

/*
 * Allocates the wrapper on loop and initialises the raft_uv_tcp inside
 * it; bind (IPv4 literal "ADDR:PORT", may be NULL) is the address the
 * inner transport listens on. On SLUICE_OK, *tp is the transport to give
 * raft_uv_init (flagd_transport_raft). EINVAL: bind is not IPv4:PORT;
 * ENOMEM; EINTERNAL: raft_uv_tcp_init failed (logged).
 */
int flagd_transport_alloc(
    flagd_transport **tp, uv_loop_t *loop, const char *bind) SLUICE_NODISCARD;

/* The raft_uv_transport to hand libraft (lives as long as t). */
struct raft_uv_transport *flagd_transport_raft(flagd_transport *t);

/*
 * Frees the wrapper and its raft_uv_tcp. Call it only after libraft has
 * closed the transport (raft_close's callback), or when it was never
 * handed to libraft. NULL is a no-op. Loop thread.
 */
void flagd_transport_free(flagd_transport *t);

/*
 * Splits "HOST:PORT" into host (NUL-terminated, at most hostlen bytes
 * with the NUL) and port. SLUICE_OK, or EINVAL (no port, port 0 or
 * > 65535, empty or too long host). Exposed for unit tests.
 */
int flagd_transport_split(const char *addr, char *host, size_t hostlen,
    unsigned *portp) SLUICE_NODISCARD;

#endif /* FLAGD_TRANSPORT_H */
