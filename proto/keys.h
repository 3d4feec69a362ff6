/* SPDX-License-Identifier: MIT */
/*
 * keys.h — Ed25519 key handling: secret key files, the authorized-keys
 * format, roles and scopes, and signing/verifying with a context prefix.
 * libsodium's -1 return codes stay inside keys.c.
 *
 * Secret key file (mode 0600), one line:
 *     sluice-secret-key-v1 ID BASE64(64-byte libsodium secret key)
 * Authorized-keys line (blank lines and '#' comments ignored):
 *     ROLE ID BASE64(32-byte public key) [ROLLOUT-GLOB]
 */
#ifndef SL_KEYS_H
#define SL_KEYS_H

#include "sl.h"

#define SL_KEY_ID_MAX 64u /* including NUL; ids match [A-Za-z0-9._@-]{1,63} \
	                   */

typedef struct sl_secret {
	char     id[SL_KEY_ID_MAX];
	uint8_t  pk[32];
	uint8_t *sk; /* 64 bytes in sodium_malloc memory */
} sl_secret;

/* A fresh key pair named id. *kp freed with sl_secret_free(). */
int sl_secret_generate(sl_secret **kp, const char *id) SLUICE_NODISCARD;

/*
 * The key pair derived from a 32-byte seed (crypto_sign_seed_keypair):
 * deterministic, for tests and known-answer vectors. EINVAL for a bad id.
 */
int sl_secret_from_seed(
    sl_secret **kp, const char *id, const uint8_t seed[32]) SLUICE_NODISCARD;

/*
 * Loads a secret key file. EINVAL (bad format, with a log-free reason in
 * err), EIO (unreadable), ENOENT (missing). Warns (sl_log_warn) if the
 * file is readable by group or others.
 */
int sl_secret_load(sl_secret **kp, const char *path, char *err,
    size_t errlen) SLUICE_NODISCARD;

/* Writes the key file with mode 0600; EEXIST if path exists. */
int sl_secret_save(const sl_secret *k, const char *path) SLUICE_NODISCARD;

/* Wipes and frees. NULL is a no-op. */
void sl_secret_free(sl_secret *k);

/* sig = Ed25519(sk, ctx || '\0' || msg). */
int sl_sign(const sl_secret *k, const char *ctx, const void *msg, size_t len,
    uint8_t sig[SLUICE_SIG_BYTES]) SLUICE_NODISCARD;

/*
 * SLUICE_OK or SLUICE_EBADSIG (also for a wrong-length sig or pk);
 * SLUICE_ENOMEM if ctx || '\0' || msg cannot be buffered.
 */
int sl_verify(const uint8_t *pk, size_t pklen, const char *ctx,
    const void *msg, size_t len, const uint8_t *sig,
    size_t siglen) SLUICE_NODISCARD;

/* Standard base64 (with padding) of a public key into buf (>= 45 bytes). */
void sl_pubkey_base64(const uint8_t pk[32], char *buf, size_t buflen);

/* [A-Za-z0-9._@-]{1,63} */
bool sl_key_id_valid(const char *id);

/* "admin" "operator" "reporter" "reader". */
const char *sl_role_name(Sluice__V1__Role role);
int         sl_role_parse(const char *s, Sluice__V1__Role *rolep);

/* What a command or request wants to do, for the role check. */
typedef enum sl_action {
	SL_ACT_READ,
	SL_ACT_APPLY,
	SL_ACT_PROMOTE,
	SL_ACT_ROLLBACK,
	SL_ACT_PAUSE,
	SL_ACT_RESUME,
	SL_ACT_REVERT,
	SL_ACT_KEY_ADD,
	SL_ACT_KEY_REMOVE,
	SL_ACT_REPORT,
	SL_ACT_MEMBER_ADD,
	SL_ACT_MEMBER_REMOVE,
} sl_action;

const char *sl_action_name(sl_action a); /* "apply", "promote", ... */

/*
 * Whether role may do action. admin: everything (membership included);
 * operator: read, promote,
 * rollback, pause, resume, revert; reporter: read, report; reader: read.
 */
bool sl_role_allows(Sluice__V1__Role role, sl_action a);

/* Whether the key's scope glob ("" = all) covers rollout (fnmatch). */
bool sl_key_scope_covers(const Sluice__V1__Key *k, const char *rollout);

/*
 * Parses one authorized-keys line into *k. Strings in *k are malloc'd;
 * release with sl_key_clear(). Returns SLUICE_ENOENT for a blank or
 * comment line, EINVAL with a reason in err for a bad one.
 */
int  sl_authkey_parse(const char *line, Sluice__V1__Key *k, char *err,
     size_t errlen) SLUICE_NODISCARD;
void sl_key_clear(Sluice__V1__Key *k);

/* Formats the authorized-keys line for k (no newline). */
int sl_authkey_format(const Sluice__V1__Key *k, char *buf, size_t buflen);

/*
 * Loads an authorized-keys file. *keysp is a malloc'd array of *np keys,
 * released with sl_keys_free(). EINVAL names the file and line in err.
 */
int  sl_authkeys_load(const char *path, Sluice__V1__Key **keysp, size_t *np,
     char *err, size_t errlen) SLUICE_NODISCARD;
void sl_keys_free(Sluice__V1__Key *keys, size_t n);

#endif /* SL_KEYS_H */
