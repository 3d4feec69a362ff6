/* SPDX-License-Identifier: MIT */
/*
 * sl.h — internals shared by every sluice component: limits, logging,
 * clocks, and the abort-on-OOM allocators that daemon-only code may use.
 * Nothing here is public; clients/include/sluice.h never includes it.
 */
#ifndef SL_H
#define SL_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice.h"
#include "sluice.pb-c.h"

/* Protocol version carried in every request header. */
#define SL_API_VERSION 1u

/* The release the daemons report (--version, GetInfo). */
#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

/* Size limits for decoders (bytes). */
#define SL_MAX_COMMAND_BYTES (64u * 1024u) /* Command body   */
#define SL_MAX_REQUEST_BYTES (SL_MAX_COMMAND_BYTES + 4096u)
#define SL_MAX_REPORT_BYTES (64u * 1024u)
#define SL_MAX_REPLY_BYTES (64u * 1024u * 1024u) /* snapshots     */
#define SL_MAX_EVENT_BYTES (4u * 1024u * 1024u)
#define SL_MAX_ACK_BYTES 1024u /* ClientAck body */

/*
 * Events the change stream queues per subscriber at each end (flagd's
 * PUB send queue per pipe, a client's SUB receive queue) beyond the
 * kernel's socket buffers. A subscriber that falls further behind loses
 * events, sees the gap and re-syncs. Events are shared, not copied, by
 * the queues.
 */
#define SL_STREAM_QUEUE 1024

#define SL_NONCE_BYTES 16u
#define SL_HASH_BYTES 32u
#define SL_DEFAULT_SKEW_MS (5u * 60u * 1000u)

/* Signing contexts: signatures cover ctx || '\0' || body. */
#define SL_CTX_COMMAND "sluice-command-v1"
#define SL_CTX_REPORT "sluice-report-v1"
#define SL_CTX_ACK "sluice-ack-v1"

/* Syslog-numbered levels. */
#define SL_LOG_ERR 3
#define SL_LOG_WARN 4
#define SL_LOG_NOTICE 5
#define SL_LOG_INFO 6
#define SL_LOG_DEBUG 7

extern int sl_log_level;

/*
 * Writes one line to stderr: time, pid, level, msgid, message. Use the
 * sl_log_* macros, which test the level before formatting.
 */
void sl_log_write(int level, const char *msgid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SL_LOG_AT_(lvl, id, ...)                                \
	do {                                                    \
		if (sl_log_level >= (lvl)) {                    \
			sl_log_write((lvl), (id), __VA_ARGS__); \
		}                                               \
	} while (0)
#define sl_log_err(id, ...) SL_LOG_AT_(SL_LOG_ERR, id, __VA_ARGS__)
#define sl_log_warn(id, ...) SL_LOG_AT_(SL_LOG_WARN, id, __VA_ARGS__)
#define sl_log_notice(id, ...) SL_LOG_AT_(SL_LOG_NOTICE, id, __VA_ARGS__)
#define sl_log_info(id, ...) SL_LOG_AT_(SL_LOG_INFO, id, __VA_ARGS__)
#define sl_log_debug(id, ...) SL_LOG_AT_(SL_LOG_DEBUG, id, __VA_ARGS__)

/* Parses "err|warn|notice|info|debug" or "3".."7". EINVAL otherwise. */
int sl_log_parse_level(const char *s, int *levelp);

/*
 * Formats a one-line reason into err (errlen bytes). err may be NULL or
 * errlen 0, in which case nothing is written.
 */
void sl_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Wall clock (ms since the epoch) and monotonic clocks. */
uint64_t sl_now_ms(void);
uint64_t sl_mono_ms(void);
uint64_t sl_mono_ns(void);

struct timespec;
/*
 * The CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait on a
 * condition variable whose clock is CLOCK_MONOTONIC.
 */
void sl_deadline_after(struct timespec *ts, uint64_t ms);

/* Daemon-only allocators: abort with a log line on OOM. */
void *sl_xmalloc(size_t n);
void *sl_xcalloc(size_t n, size_t size);
char *sl_xstrdup(const char *s);

/* Programmer errors only; never input, signatures or OOM. */
#define SL_ASSERT(x)                                      \
	do {                                              \
		if (!(x)) {                               \
			sl_panic(__FILE__, __LINE__, #x); \
		}                                         \
	} while (0)
void sl_panic(const char *file, int line, const char *what)
    __attribute__((noreturn));

/*
 * Calls sodium_init() once; returns SLUICE_EINTERNAL if it fails, which
 * callers treat as fatal. Thread-safe.
 */
int sl_crypto_init(void) SLUICE_NODISCARD;

/*
 * Daemon mains (STYLE §8). sl_signals_block fills set with SIGTERM, SIGINT
 * and SIGHUP, blocks them in the calling thread (call it before nng or
 * LMDB start threads, so they inherit the mask) and ignores SIGPIPE.
 *
 * sl_signals_wait waits on set with sigwait(), logging and ignoring
 * SIGHUP ("main.hup"), until SIGTERM or SIGINT; it logs the stop
 * ("main.stop"), restores their default action and unblocks set, so a
 * second signal during the drain exits at once. Returns the signal.
 */
void sl_signals_block(sigset_t *set);
int  sl_signals_wait(const sigset_t *set);

/*
 * Replaces the file at path with len bytes of buf, atomically and durably:
 * a uniquely named temporary file beside it (two writers of one path never
 * share one), written whole, fsync'd, renamed over path, then the directory
 * fsync'd so the rename itself survives a crash. On any error path is left
 * as it was and the temporary file is removed. SLUICE_EIO on I/O errors
 * (errno says which), SLUICE_ENOMEM.
 */
int sl_file_replace(const char *path, const void *buf, size_t len,
    unsigned mode) SLUICE_NODISCARD;

#endif /* SL_H */
