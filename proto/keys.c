// SPDX-License-Identifier: MIT
//
// keys.c — Ed25519 keys for sluice: the secret key file, the
// authorized-keys format, roles and scopes, and context-prefixed signing.
// Secret keys live in sodium_malloc() memory and every buffer that held
// one is wiped. libsodium's -1 returns are translated here and never
// leave this file.

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "keys.h"

#define SECRET_MAGIC "sluice-secret-key-v1"
// Room for the magic, an id, 88 base64 characters and the separators.
#define SECRET_LINE_MAX 256u

static bool
is_space(char c)
{
	return (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f');
}

// Splits s in place into at most max whitespace-separated tokens and
// returns how many there were (max + 1 when there were more).
static size_t
tokenize(char *s, char **tok, size_t max)
{
	size_t n = 0;

	for (;;) {
		while (is_space(*s)) {
			s++;
		}
		if (*s == '\0') {
			return (n);
		}
		if (n == max) {
			return (max + 1);
		}
		tok[n++] = s;
		while (*s != '\0' && !is_space(*s)) {
			s++;
		}
		if (*s != '\0') {
			*s++ = '\0';
		}
	}
}

bool
sl_key_id_valid(const char *id)
{
	size_t i;

	if (id == NULL) {
		return (false);
	}
	for (i = 0; id[i] != '\0'; i++) {
		char c = id[i];
		if (i >= SL_KEY_ID_MAX - 1) {
			return (false);
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		        c == '@' || c == '-')) {
			return (false);
		}
	}
	return (i > 0);
}

static sl_secret *
secret_alloc(const char *id)
{
	sl_secret *k;

	if ((k = calloc(1, sizeof(*k))) == NULL) {
		return (NULL);
	}
	if ((k->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL) {
		free(k);
		return (NULL);
	}
	(void) snprintf(k->id, sizeof(k->id), "%s", id);
	return (k);
}

int
sl_secret_generate(sl_secret **kp, const char *id)
{
	sl_secret *k;
	int        rv;

	if (kp == NULL || !sl_key_id_valid(id)) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if ((k = secret_alloc(id)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	if (crypto_sign_keypair(k->pk, k->sk) != 0) {
		sl_secret_free(k);
		return (SLUICE_EINTERNAL);
	}
	*kp = k;
	return (SLUICE_OK);
}

int
sl_secret_from_seed(sl_secret **kp, const char *id, const uint8_t seed[32])
{
	sl_secret *k;
	int        rv;

	if (kp == NULL || seed == NULL || !sl_key_id_valid(id)) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if ((k = secret_alloc(id)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	if (crypto_sign_seed_keypair(k->pk, k->sk, seed) != 0) {
		sl_secret_free(k);
		return (SLUICE_EINTERNAL);
	}
	*kp = k;
	return (SLUICE_OK);
}

void
sl_secret_free(sl_secret *k)
{
	if (k == NULL) {
		return;
	}
	// sodium_free() wipes the secret before releasing it.
	sodium_free(k->sk);
	sodium_memzero(k, sizeof(*k));
	free(k);
}

// Parses the one line of a secret key file into a fresh key.
static int
secret_parse(char *line, sl_secret **kp, char *err, size_t errlen)
{
	char      *tok[3];
	size_t     n;
	size_t     binlen;
	sl_secret *k = NULL;
	uint8_t    pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t   *sk2 = NULL;
	int        rv;

	n = tokenize(line, tok, 3);
	if (n != 3 || strcmp(tok[0], SECRET_MAGIC) != 0) {
		sl_seterr(err, errlen,
		    "not a sluice secret key file "
		    "(want \"" SECRET_MAGIC " ID BASE64\")");
		return (SLUICE_EINVAL);
	}
	if (!sl_key_id_valid(tok[1])) {
		sl_seterr(err, errlen,
		    "key id is not valid "
		    "(want [A-Za-z0-9._@-]{1,63})");
		return (SLUICE_EINVAL);
	}
	if ((k = secret_alloc(tok[1])) == NULL) {
		return (SLUICE_ENOMEM);
	}
	if (sodium_base642bin(k->sk, crypto_sign_SECRETKEYBYTES, tok[2],
	        strlen(tok[2]), NULL, &binlen, NULL,
	        sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    binlen != crypto_sign_SECRETKEYBYTES) {
		sl_seterr(err, errlen, "secret key is not base64 of %u bytes",
		    (unsigned) crypto_sign_SECRETKEYBYTES);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	// A libsodium secret key is seed || public key. Re-deriving the pair
	// from the seed catches a file whose halves do not belong together.
	if ((sk2 = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	if (crypto_sign_seed_keypair(pk, sk2, k->sk) != 0) {
		rv = SLUICE_EINTERNAL;
		goto fail;
	}
	if (sodium_memcmp(pk, k->sk + crypto_sign_SEEDBYTES, sizeof(pk)) !=
	    0) {
		sl_seterr(err, errlen,
		    "secret key is inconsistent "
		    "(public half does not match the seed)");
		rv = SLUICE_EINVAL;
		goto fail;
	}
	memcpy(k->pk, pk, sizeof(pk));
	sodium_free(sk2);
	*kp = k;
	return (SLUICE_OK);
fail:
	sodium_free(sk2);
	sl_secret_free(k);
	return (rv);
}

int
sl_secret_load(sl_secret **kp, const char *path, char *err, size_t errlen)
{
	char        buf[SECRET_LINE_MAX + 1];
	struct stat st;
	size_t      n = 0;
	int         fd;
	int         rv;

	if (kp == NULL || path == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		int e = errno; // sl_seterr() may change errno

		sl_seterr(err, errlen, "%s: %s", path, strerror(e));
		return (e == ENOENT ? SLUICE_ENOENT : SLUICE_EIO);
	}
	if (fstat(fd, &st) != 0) {
		sl_seterr(err, errlen, "%s: %s", path, strerror(errno));
		(void) close(fd);
		return (SLUICE_EIO);
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		sl_log_warn("key-perm",
		    "%s: secret key file is accessible by group or others "
		    "(mode %04o); chmod 600 it",
		    path, (unsigned) (st.st_mode & 07777));
	}
	// Read one byte more than a valid file can hold, to tell a long
	// (wrong) file from a valid one.
	while (n < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			sl_seterr(
			    err, errlen, "%s: %s", path, strerror(errno));
			(void) close(fd);
			sodium_memzero(buf, sizeof(buf));
			return (SLUICE_EIO);
		}
		if (r == 0) {
			break;
		}
		n += (size_t) r;
	}
	(void) close(fd);
	buf[n] = '\0';
	if (n >= SECRET_LINE_MAX || strlen(buf) != n) {
		sl_seterr(err, errlen, "not a sluice secret key file");
		rv = SLUICE_EINVAL;
	} else {
		rv = secret_parse(buf, kp, err, errlen);
	}
	sodium_memzero(buf, sizeof(buf));
	return (rv);
}

int
sl_secret_save(const sl_secret *k, const char *path)
{
	char  *line;
	size_t len;
	size_t off = 0;
	int    fd  = -1;
	int    rv;

	if (k == NULL || k->sk == NULL || path == NULL ||
	    !sl_key_id_valid(k->id)) {
		return (SLUICE_EINVAL);
	}
	if ((line = sodium_malloc(SECRET_LINE_MAX)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	(void) snprintf(line, SECRET_LINE_MAX, "%s %s ", SECRET_MAGIC, k->id);
	len = strlen(line);
	(void) sodium_bin2base64(line + len, SECRET_LINE_MAX - len - 1, k->sk,
	    crypto_sign_SECRETKEYBYTES, sodium_base64_VARIANT_ORIGINAL);
	len       = strlen(line);
	line[len] = '\n';
	len++;

	if ((fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600)) <
	    0) {
		rv = errno == EEXIST  ? SLUICE_EEXIST
		    : errno == ENOENT ? SLUICE_ENOENT
		                      : SLUICE_EIO;
		sodium_free(line);
		return (rv);
	}
	while (off < len) {
		ssize_t w = write(fd, line + off, len - off);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			rv = SLUICE_EIO;
			goto fail;
		}
		off += (size_t) w;
	}
	if (fsync(fd) != 0) {
		rv = SLUICE_EIO;
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		rv = SLUICE_EIO;
		goto fail;
	}
	sodium_free(line);
	return (SLUICE_OK);
fail:
	// Do not leave a truncated key behind: the next save would fail
	// with EEXIST and the next load with a confusing format error.
	if (fd >= 0) {
		(void) close(fd);
	}
	(void) unlink(path);
	sodium_free(line);
	return (rv);
}

// Builds ctx || '\0' || msg in a fresh buffer, freed by the caller.
static int
signed_bytes(
    const char *ctx, const void *msg, size_t len, uint8_t **bufp, size_t *lenp)
{
	size_t   clen = strlen(ctx);
	uint8_t *buf;

	if (len > SIZE_MAX - clen - 1) {
		return (SLUICE_ETOOBIG);
	}
	if ((buf = malloc(clen + 1 + len)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	memcpy(buf, ctx, clen + 1);
	if (len > 0) {
		memcpy(buf + clen + 1, msg, len);
	}
	*bufp = buf;
	*lenp = clen + 1 + len;
	return (SLUICE_OK);
}

int
sl_sign(const sl_secret *k, const char *ctx, const void *msg, size_t len,
    uint8_t sig[SLUICE_SIG_BYTES])
{
	uint8_t  out[crypto_sign_BYTES];
	uint8_t *buf;
	size_t   blen;
	int      rv;

	if (k == NULL || k->sk == NULL || ctx == NULL || sig == NULL ||
	    (msg == NULL && len != 0)) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = signed_bytes(ctx, msg, len, &buf, &blen)) != SLUICE_OK) {
		return (rv);
	}
	rv = crypto_sign_detached(out, NULL, buf, blen, k->sk) == 0
	    ? SLUICE_OK
	    : SLUICE_EINTERNAL;
	free(buf);
	if (rv == SLUICE_OK) {
		memcpy(sig, out, sizeof(out));
	}
	return (rv);
}

int
sl_verify(const uint8_t *pk, size_t pklen, const char *ctx, const void *msg,
    size_t len, const uint8_t *sig, size_t siglen)
{
	uint8_t *buf;
	size_t   blen;
	int      rv;

	if (pk == NULL || pklen != crypto_sign_PUBLICKEYBYTES || sig == NULL ||
	    siglen != crypto_sign_BYTES || ctx == NULL ||
	    (msg == NULL && len != 0)) {
		return (SLUICE_EBADSIG);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = signed_bytes(ctx, msg, len, &buf, &blen)) != SLUICE_OK) {
		return (rv);
	}
	rv = crypto_sign_verify_detached(sig, buf, blen, pk) == 0
	    ? SLUICE_OK
	    : SLUICE_EBADSIG;
	free(buf);
	return (rv);
}

void
sl_pubkey_base64(const uint8_t pk[32], char *buf, size_t buflen)
{
	if (buf == NULL || buflen == 0) {
		return;
	}
	if (pk == NULL ||
	    buflen < sodium_base64_ENCODED_LEN(
	                 32, sodium_base64_VARIANT_ORIGINAL)) {
		buf[0] = '\0';
		return;
	}
	(void) sodium_bin2base64(
	    buf, buflen, pk, 32, sodium_base64_VARIANT_ORIGINAL);
}

static const char *const role_names[] = {
	[SLUICE__V1__ROLE__ROLE_NONE]     = "none",
	[SLUICE__V1__ROLE__ROLE_ADMIN]    = "admin",
	[SLUICE__V1__ROLE__ROLE_OPERATOR] = "operator",
	[SLUICE__V1__ROLE__ROLE_REPORTER] = "reporter",
	[SLUICE__V1__ROLE__ROLE_READER]   = "reader",
};

const char *
sl_role_name(Sluice__V1__Role role)
{
	int r = (int) role;

	if (r < 0 ||
	    (size_t) r >= sizeof(role_names) / sizeof(role_names[0])) {
		return ("unknown");
	}
	return (role_names[r]);
}

int
sl_role_parse(const char *s, Sluice__V1__Role *rolep)
{
	if (s == NULL || rolep == NULL) {
		return (SLUICE_EINVAL);
	}
	// "none" is the absence of a role, never something to grant.
	for (int r = SLUICE__V1__ROLE__ROLE_ADMIN;
	     r <= SLUICE__V1__ROLE__ROLE_READER; r++) {
		if (strcmp(s, role_names[r]) == 0) {
			*rolep = (Sluice__V1__Role) r;
			return (SLUICE_OK);
		}
	}
	return (SLUICE_EINVAL);
}

const char *
sl_action_name(sl_action a)
{
	switch (a) {
	case SL_ACT_READ:
		return ("read");
	case SL_ACT_APPLY:
		return ("apply");
	case SL_ACT_PROMOTE:
		return ("promote");
	case SL_ACT_ROLLBACK:
		return ("rollback");
	case SL_ACT_PAUSE:
		return ("pause");
	case SL_ACT_RESUME:
		return ("resume");
	case SL_ACT_REVERT:
		return ("revert");
	case SL_ACT_KEY_ADD:
		return ("key_add");
	case SL_ACT_KEY_REMOVE:
		return ("key_remove");
	case SL_ACT_REPORT:
		return ("report");
	case SL_ACT_MEMBER_ADD:
		return ("member_add");
	case SL_ACT_MEMBER_REMOVE:
		return ("member_remove");
	}
	return ("unknown");
}

bool
sl_role_allows(Sluice__V1__Role role, sl_action a)
{
	switch ((int) role) {
	case SLUICE__V1__ROLE__ROLE_ADMIN:
		return (true);
	case SLUICE__V1__ROLE__ROLE_OPERATOR:
		switch (a) {
		case SL_ACT_READ:
		case SL_ACT_PROMOTE:
		case SL_ACT_ROLLBACK:
		case SL_ACT_PAUSE:
		case SL_ACT_RESUME:
		case SL_ACT_REVERT:
			return (true);
		case SL_ACT_APPLY:
		case SL_ACT_KEY_ADD:
		case SL_ACT_KEY_REMOVE:
		case SL_ACT_REPORT:
		case SL_ACT_MEMBER_ADD:
		case SL_ACT_MEMBER_REMOVE:
			return (false);
		}
		return (false);
	case SLUICE__V1__ROLE__ROLE_REPORTER:
		return (a == SL_ACT_READ || a == SL_ACT_REPORT);
	case SLUICE__V1__ROLE__ROLE_READER:
		return (a == SL_ACT_READ);
	default:
		// ROLE_NONE and any number from a newer peer: nothing.
		return (false);
	}
}

bool
sl_key_scope_covers(const Sluice__V1__Key *k, const char *rollout)
{
	if (k == NULL || rollout == NULL) {
		return (false);
	}
	if (k->scope == NULL || k->scope[0] == '\0') {
		return (true);
	}
	return (fnmatch(k->scope, rollout, 0) == 0);
}

static void
free_str(char *s)
{
	if (s != NULL && s != protobuf_c_empty_string) {
		free(s);
	}
}

void
sl_key_clear(Sluice__V1__Key *k)
{
	if (k == NULL) {
		return;
	}
	free_str(k->id);
	free_str(k->scope);
	free(k->public_key.data);
	// The generated init function, not the INIT macro: the macro casts
	// away const and trips -Wcast-qual under clang.
	sluice__v1__key__init(k);
}

int
sl_authkey_parse(
    const char *line, Sluice__V1__Key *k, char *err, size_t errlen)
{
	Sluice__V1__Key  nk;
	Sluice__V1__Role role;
	char            *copy;
	char            *tok[4];
	uint8_t          pk[crypto_sign_PUBLICKEYBYTES];
	size_t           n;
	size_t           binlen;
	int              rv;

	if (line == NULL || k == NULL) {
		return (SLUICE_EINVAL);
	}
	sluice__v1__key__init(&nk);
	if ((copy = strdup(line)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	n = tokenize(copy, tok, 4);
	if (n == 0 || tok[0][0] == '#') {
		free(copy);
		return (SLUICE_ENOENT);
	}
	if (n < 3 || n > 4) {
		sl_seterr(err, errlen,
		    "want \"ROLE ID BASE64-PUBLIC-KEY [ROLLOUT-GLOB]\"");
		rv = SLUICE_EINVAL;
		goto fail;
	}
	if (sl_role_parse(tok[0], &role) != SLUICE_OK) {
		sl_seterr(err, errlen,
		    "unknown role \"%.32s\" (want admin, operator, reporter "
		    "or reader)",
		    tok[0]);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	if (!sl_key_id_valid(tok[1])) {
		sl_seterr(err, errlen,
		    "key id \"%.64s\" is not valid (want "
		    "[A-Za-z0-9._@-]{1,63})",
		    tok[1]);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		goto fail;
	}
	if (sodium_base642bin(pk, sizeof(pk), tok[2], strlen(tok[2]), NULL,
	        &binlen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    binlen != sizeof(pk)) {
		sl_seterr(err, errlen,
		    "key \"%s\": public key is not base64 of "
		    "32 bytes",
		    tok[1]);
		rv = SLUICE_EINVAL;
		goto fail;
	}
	nk.role = role;
	if ((nk.id = strdup(tok[1])) == NULL ||
	    (nk.scope = strdup(n == 4 ? tok[3] : "")) == NULL ||
	    (nk.public_key.data = malloc(sizeof(pk))) == NULL) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	memcpy(nk.public_key.data, pk, sizeof(pk));
	nk.public_key.len = sizeof(pk);
	free(copy);
	*k = nk;
	return (SLUICE_OK);
fail:
	sl_key_clear(&nk);
	free(copy);
	return (rv);
}

int
sl_authkey_format(const Sluice__V1__Key *k, char *buf, size_t buflen)
{
	char
	    b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	const char *scope;
	int         n;

	if (k == NULL || buf == NULL || buflen == 0 || k->id == NULL ||
	    k->public_key.len != 32 || k->public_key.data == NULL) {
		return (SLUICE_EINVAL);
	}
	sl_pubkey_base64(k->public_key.data, b64, sizeof(b64));
	scope = k->scope != NULL ? k->scope : "";
	n = snprintf(buf, buflen, "%s %s %s%s%s", sl_role_name(k->role), k->id,
	    b64, scope[0] != '\0' ? " " : "", scope);
	if (n < 0 || (size_t) n >= buflen) {
		buf[0] = '\0';
		return (SLUICE_EINVAL);
	}
	return (SLUICE_OK);
}

void
sl_keys_free(Sluice__V1__Key *keys, size_t n)
{
	if (keys == NULL) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		sl_key_clear(&keys[i]);
	}
	free(keys);
}

int
sl_authkeys_load(const char *path, Sluice__V1__Key **keysp, size_t *np,
    char *err, size_t errlen)
{
	FILE            *f;
	char            *line   = NULL;
	size_t           cap    = 0;
	Sluice__V1__Key *keys   = NULL;
	size_t           n      = 0;
	size_t           kcap   = 0;
	unsigned         lineno = 0;
	char             why[256];
	int              rv;

	if (path == NULL || keysp == NULL || np == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((f = fopen(path, "re")) == NULL) {
		int e = errno; // sl_seterr() may change errno

		sl_seterr(err, errlen, "%s: %s", path, strerror(e));
		return (e == ENOENT ? SLUICE_ENOENT : SLUICE_EIO);
	}
	for (;;) {
		Sluice__V1__Key k;

		sluice__v1__key__init(&k);
		errno = 0;
		if (getline(&line, &cap, f) < 0) {
			if (ferror(f)) {
				sl_seterr(err, errlen, "%s: %s", path,
				    strerror(errno != 0 ? errno : EIO));
				rv = SLUICE_EIO;
				goto fail;
			}
			break;
		}
		lineno++;
		why[0] = '\0';
		rv     = sl_authkey_parse(line, &k, why, sizeof(why));
		if (rv == SLUICE_ENOENT) {
			continue;
		}
		if (rv != SLUICE_OK) {
			sl_seterr(err, errlen, "%s:%u: %s", path, lineno,
			    why[0] != '\0' ? why : sluice_strerror(rv));
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			if (strcmp(keys[i].id, k.id) == 0) {
				sl_seterr(err, errlen,
				    "%s:%u: duplicate key id \"%s\"", path,
				    lineno, k.id);
				sl_key_clear(&k);
				rv = SLUICE_EINVAL;
				goto fail;
			}
		}
		if (n == kcap) {
			size_t           ncap = kcap != 0 ? kcap * 2 : 8;
			Sluice__V1__Key *nk;

			if ((nk = realloc(keys, ncap * sizeof(*nk))) == NULL) {
				sl_key_clear(&k);
				rv = SLUICE_ENOMEM;
				goto fail;
			}
			keys = nk;
			kcap = ncap;
		}
		keys[n++] = k;
	}
	free(line);
	(void) fclose(f);
	*keysp = keys;
	*np    = n;
	return (SLUICE_OK);
fail:
	free(line);
	(void) fclose(f);
	sl_keys_free(keys, n);
	return (rv);
}
