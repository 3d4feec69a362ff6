/* SPDX-License-Identifier: MIT */
/*
 * rpc.h — request/reply with flagd over nng REQ, with endpoint failover.
 * Used by flagctl, the client library and gatekeeper alike. nng codes stay
 * inside rpc.c.
 *
 * Failover: a call goes to the current endpoint; if it cannot be reached
 * (connect refused, or no reply within the timeout for a read), the next
 * endpoint in the list is tried. A write is sent once only per endpoint
 * connection attempt that failed before sending; after a write was sent
 * and timed out, the call fails with SLUICE_ETIMEDOUT (the write may have
 * committed; the nonce makes a blind resend harmless but its answer would
 * be EREPLAY, which is confusing, so the caller decides).
 */
#ifndef SL_RPC_H
#define SL_RPC_H

#include "sl.h"
#include "keys.h"

typedef struct sl_rpc sl_rpc;

/*
 * endpoints: comma-separated nng URLs ("tcp://127.0.0.1:7400,tcp://..").
 * timeout_ms: per call (0 = 5000). Does not connect yet.
 */
int sl_rpc_open(
    sl_rpc **rp, const char *endpoints, uint32_t timeout_ms) SLUICE_NODISCARD;
void sl_rpc_close(sl_rpc *r); /* NULL is a no-op */

/*
 * Fills req->header (api version, fresh request id, deadline), sends,
 * waits for the reply. *replyp (freed with sluice__v1__reply__free_unpacked)
 * is set whenever a reply arrived, also when it carries an error; the
 * return value is then the reply's error code (SLUICE_OK if none).
 * Transport failures: SLUICE_EUNAVAIL, SLUICE_ETIMEDOUT, SLUICE_EPROTO.
 */
int sl_rpc_call(sl_rpc *r, Sluice__V1__Request *req,
    Sluice__V1__Reply **replyp) SLUICE_NODISCARD;

/* Seals cmd with k (sl_command_seal) and sends it as a write. */
int sl_rpc_write(sl_rpc *r, const sl_secret *k, Sluice__V1__Command *cmd,
    Sluice__V1__Reply **replyp) SLUICE_NODISCARD;

/*
 * Splits a comma-separated endpoint list ("a, b,c") into trimmed,
 * non-empty strings. On success *epsp is a malloc'd array of *np malloc'd
 * strings (*np may be 0), freed with sl_endpoints_free; on failure
 * nothing is written and nothing is left allocated.
 * @return SLUICE_OK or SLUICE_ENOMEM.
 */
int sl_endpoints_split(
    const char *list, char ***epsp, size_t *np) SLUICE_NODISCARD;
void sl_endpoints_free(char **eps, size_t n); /* NULL is a no-op */

/* The endpoint that answered last (or the first one). */
const char *sl_rpc_endpoint(const sl_rpc *r);

/* The error text of a reply ("" when none). */
const char *sl_reply_errmsg(const Sluice__V1__Reply *rep);

#endif /* SL_RPC_H */
