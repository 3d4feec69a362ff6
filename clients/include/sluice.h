/* SPDX-License-Identifier: MIT */
/**
 * sluice.h — the public API of libsluice, the sluice client library.
 *
 * ETL jobs, flagctl and gatekeeper use this header to evaluate flags and to
 * talk to flagd. It is the only public header. It also holds the error
 * codes of the whole project: they are part of the wire contract (an
 * error reply carries one of these numbers), and this header has no link
 * dependency, so every layer includes it for them.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SLUICE_API __attribute__((visibility("default")))
#define SLUICE_NODISCARD __attribute__((warn_unused_result))
#else
#define SLUICE_API
#define SLUICE_NODISCARD
#endif

/**
 * Every error code, with its stable number and message. Numbers are never
 * reused or renumbered: they travel on the wire in Error.code.
 */
#define SLUICE_ERRORS(X)                                                     \
	X(OK, 0, "success")                                                  \
	X(EINVAL, 1, "invalid argument")                                     \
	X(ENOMEM, 2, "out of memory")                                        \
	X(ENOENT, 3, "not found")                                            \
	X(EEXIST, 4, "already exists")                                       \
	X(EPROTO, 5, "malformed message")                                    \
	X(ETOOBIG, 6, "message too large")                                   \
	X(EBADSIG, 7, "bad signature")                                       \
	X(EUNKNOWNKEY, 8, "unknown key")                                     \
	X(EPERM, 9, "not permitted")                                         \
	X(EREPLAY, 10, "replayed command")                                   \
	X(EEXPIRED, 11, "timestamp outside the allowed clock skew")          \
	X(ECONFLICT, 12, "conflicting change")                               \
	X(EPREREQ, 13, "prerequisite not met")                               \
	X(ESTATE, 14, "not allowed in the rollout's current state")          \
	X(ETIMEDOUT, 15, "timed out")                                        \
	X(EUNAVAIL, 16, "no server reachable")                               \
	X(EIO, 17, "I/O error")                                              \
	X(ECORRUPT, 18, "data corrupted")                                    \
	X(EVERSION, 19, "unsupported protocol version")                      \
	X(ENOTLEADER, 20, "not the leader")                                  \
	X(EFULL, 21, "storage full")                                         \
	X(EINTERNAL, 22, "internal error")                                   \
	X(ECLOSED, 23, "closed")

enum sluice_error {
#define SLUICE_ERR_ENUM_(name, num, msg) SLUICE_##name = num,
	SLUICE_ERRORS(SLUICE_ERR_ENUM_)
#undef SLUICE_ERR_ENUM_
};

/**
 * The message of an error code.
 * @param code  a SLUICE_E* code (any int is accepted).
 * @return a static string; "unknown error" for unknown codes. Never NULL.
 */
SLUICE_API const char *sluice_strerror(int code);

/** The name of an error code, e.g. "EPERM"; "EUNKNOWN" if unknown. */
SLUICE_API const char *sluice_errname(int code);

/** Buckets per rollout: a unit's bucket is in [0, SLUICE_BUCKETS). */
#define SLUICE_BUCKETS 10000u
SLUICE_API unsigned sluice_buckets(void);

/**
 * The bucket of a unit within a rollout: SipHash-2-4 of the unit keyed by
 * the first 16 bytes of BLAKE2b-256(rollout), as a little-endian uint64,
 * mod SLUICE_BUCKETS. The same in every client and language; a unit is
 * on at p basis points when its bucket < p, so a unit on at 10 % stays on
 * at 50 %.
 * @param rollout  rollout name (NUL-terminated).
 * @param unit     unit bytes; may contain NUL.
 * @param unit_len length of unit.
 * @return the bucket. Pure; thread-safe; never blocks.
 */
SLUICE_API unsigned sluice_bucket(const char *rollout, const void *unit,
    size_t unit_len);

/** Ed25519 sizes, readable by bindings. */
#define SLUICE_PUBLICKEY_BYTES 32u
#define SLUICE_SECRETKEY_BYTES 64u
#define SLUICE_SIG_BYTES 64u
SLUICE_API size_t sluice_publickey_bytes(void);
SLUICE_API size_t sluice_secretkey_bytes(void);
SLUICE_API size_t sluice_sig_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_H */
