/* SPDX-License-Identifier: MIT */
/*
 * sock.h — an nng socket with one dialer, closed so that nng 1.5.2's
 * pipe-close race cannot hang the process (the why is in sock.c).
 *
 * Used by the client's change stream (SUB) and by rpc.c (REQ). The
 * functions return nng codes (0 or NNG_E*); callers translate them. A
 * socket is driven by one thread at a time; the pipe count is updated by
 * nng's threads under the struct's own mutex.
 */
#ifndef SL_SOCK_H
#define SL_SOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

typedef struct sl_sock {
	nng_socket      s;
	nng_dialer      d;
	bool            open;
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	int             pipes; // live pipes (nng pipe events), under mtx
} sl_sock;

/* Embedded-struct lifecycle: init before the first open, fini after the
 * last close (the struct must outlive every socket opened in it, since
 * nng's pipe callbacks point at it until nng_close() returns). */
void sl_sock_init(sl_sock *k);
void sl_sock_fini(sl_sock *k);

/*
 * Takes over s (just opened by nng_*_open, options set, not dialled),
 * counts its pipes, and dials url synchronously. On failure s is closed
 * and k is left closed. @return 0 or an nng error code.
 */
int sl_sock_dial(sl_sock *k, nng_socket s, const char *url);

/*
 * Closes the socket, if open, without racing a message that is arriving:
 * stops redialling, makes the pipe refuse any further message (so that it
 * ends through nng's error path), waits up to grace_ms for the pipe to be
 * gone, then nng_close(). Blocks for at most grace_ms plus nng_close().
 */
void sl_sock_close(sl_sock *k, uint32_t grace_ms);

#endif /* SL_SOCK_H */
