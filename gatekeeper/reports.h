/* SPDX-License-Identifier: MIT */
/*
 * reports.h — decoding and verifying signed metric reports, the key set
 * they are checked against (flagd's keys, refreshed by the caller), and
 * the replay table (last sequence per key and job).
 *
 * gk_report_verify() checks, in this order: size, envelope decoding, key
 * known, signature, body decoding, role (reporter or admin), scope covers
 * the rollout, time within the skew, metrics finite. The replay and
 * rollout checks need gatekeeper's state and run under its lock
 * (gk_replay_check, and the caller's rollout table). Every rejection has a
 * gk_reject reason; a rejected report changes nothing.
 */
#ifndef GK_REPORTS_H
#define GK_REPORTS_H

#include <pthread.h>

#include "sl.h"

#define GK_REJECTS(X)                                 \
	X(NONE, "none", OK)                           \
	X(TOOBIG, "too_big", ETOOBIG)                 \
	X(MALFORMED, "malformed", EPROTO)             \
	X(UNKNOWN_KEY, "unknown_key", EUNKNOWNKEY)    \
	X(BAD_SIGNATURE, "bad_signature", EBADSIG)    \
	X(ROLE, "role", EPERM)                        \
	X(SCOPE, "scope", EPERM)                      \
	X(STALE_TIME, "stale_time", EEXPIRED)         \
	X(BAD_METRIC, "bad_metric", EINVAL)           \
	X(REPLAY, "replay", EREPLAY)                  \
	X(UNKNOWN_ROLLOUT, "unknown_rollout", ENOENT) \
	X(INTERNAL, "internal", EINTERNAL)

typedef enum gk_reject {
#define GK_REJ_ENUM_(n, s, e) GK_REJ_##n,
	GK_REJECTS(GK_REJ_ENUM_)
#undef GK_REJ_ENUM_
	    GK_REJ_COUNT
} gk_reject;

/* "replay", ...; "unknown" out of range. */
const char *gk_reject_name(gk_reject r);
/* The SLUICE_E* code a rejection answers with. */
int gk_reject_code(gk_reject r);

/* ---------------------------------------------------------------- keys */

typedef struct gk_keys gk_keys;

/* What verification needs of one key, copied out of the set. */
typedef struct gk_keyinfo {
	uint8_t          pk[32];
	Sluice__V1__Role role;
	char             scope[256];
} gk_keyinfo;

int  gk_keys_alloc(gk_keys **kp) SLUICE_NODISCARD;
void gk_keys_free(gk_keys *ks); /* NULL is a no-op */

/*
 * Replaces the set with list (taking ownership of it: freed with
 * sluice__v1__key_list__free_unpacked, now or later). Thread-safe.
 */
void gk_keys_set(gk_keys *ks, Sluice__V1__KeyList *list);

/* Copies key id's data into *out; false when unknown. Thread-safe. */
bool gk_keys_lookup(gk_keys *ks, const char *id, gk_keyinfo *out);

/* Number of keys held; 0 before the first gk_keys_set. */
size_t gk_keys_count(gk_keys *ks);

/* ---------------------------------------------------------------- verify */

/* A verified report: the envelope and its decoded body, both owned. */
typedef struct gk_verified {
	Sluice__V1__SignedReport *sr;
	Sluice__V1__MetricReport *r;
} gk_verified;

/*
 * Decodes and verifies buf (a packed SignedReport) against ks at now_ms
 * with skew_ms. On SLUICE_OK *out holds the report (release with
 * gk_verified_clear). Otherwise *whyp says why and nothing is allocated:
 * the return value is gk_reject_code(*whyp).
 */
int gk_report_verify(gk_keys *ks, const void *buf, size_t len, uint64_t now_ms,
    uint64_t skew_ms, gk_verified *out, gk_reject *whyp) SLUICE_NODISCARD;

/* As gk_report_verify, on an envelope already decoded (borrowed). */
int gk_report_verify_msg(gk_keys *ks, const Sluice__V1__SignedReport *sr,
    uint64_t now_ms, uint64_t skew_ms, Sluice__V1__MetricReport **rp,
    gk_reject *whyp) SLUICE_NODISCARD;

void gk_verified_clear(gk_verified *v);

/* ---------------------------------------------------------------- replay */

/* Last accepted sequence per (key id, job). Not thread-safe: lock. */
typedef struct gk_replay gk_replay;

int  gk_replay_alloc(gk_replay **tp) SLUICE_NODISCARD;
void gk_replay_free(gk_replay *t);

/* The last sequence recorded for (key, job); 0 when none. */
uint64_t gk_replay_last(const gk_replay *t, const char *key, const char *job);

/* Whether seq is new for (key, job): greater than the last recorded. */
bool gk_replay_check(
    const gk_replay *t, const char *key, const char *job, uint64_t seq);

/* Records seq for (key, job). SLUICE_OK, ENOMEM, EINVAL (too long). */
int gk_replay_record(gk_replay *t, const char *key, const char *job,
    uint64_t seq) SLUICE_NODISCARD;

#endif /* GK_REPORTS_H */
