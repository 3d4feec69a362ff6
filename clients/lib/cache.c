// SPDX-License-Identifier: MIT
//
// cache.c — the client's cache file (format in cache.h): written whole to
// a temporary file, fsync'd and renamed into place; read whole, verified
// (header, length, BLAKE2b checksum, decoding) before any of it is used.

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cache.h"
#include "codec.h"

static void
put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t) (v >> (8 * i));
	}
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t) (v >> (8 * i));
	}
}

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return (v);
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return (v);
}

int
sl_cache_write(
    const char *path, const Sluice__V1__Snapshot *snap, uint64_t contact_ms)
{
	uint8_t *payload = NULL;
	size_t   plen    = 0;
	uint8_t *file    = NULL;
	size_t   flen;
	int      rv;

	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = sl_pack(&snap->base, &payload, &plen)) != SLUICE_OK) {
		return (rv);
	}
	flen = SL_CACHE_HEADER_BYTES + plen + SL_CACHE_SUM_BYTES;
	if ((file = malloc(flen)) == NULL) {
		rv = SLUICE_ENOMEM;
		goto done;
	}
	memcpy(file, SL_CACHE_MAGIC, 8);
	put_u32(file + 8, SL_CACHE_VERSION);
	put_u32(file + 12, 0);
	put_u64(file + 16, snap->revision);
	put_u64(file + 24, contact_ms);
	put_u64(file + 32, (uint64_t) plen);
	memcpy(file + SL_CACHE_HEADER_BYTES, payload, plen);
	(void) crypto_generichash(file + SL_CACHE_HEADER_BYTES + plen,
	    SL_CACHE_SUM_BYTES, file, SL_CACHE_HEADER_BYTES + plen, NULL, 0);

	if ((rv = sl_file_replace(path, file, flen, 0644)) != SLUICE_OK) {
		sl_log_debug("cache-write", "%s: %s", path, strerror(errno));
	}
done:
	free(file);
	free(payload);
	return (rv);
}

// Reads the whole file, up to the largest snapshot a reply may carry.
static int
read_file(const char *path, uint8_t **bufp, size_t *lenp)
{
	struct stat st;
	uint8_t    *buf;
	size_t      len;
	size_t      got = 0;
	int         fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) {
			return (SLUICE_ENOENT);
		}
		sl_log_err("cache-read", "cache %s: cannot open: %s", path,
		    strerror(errno));
		return (SLUICE_EIO);
	}
	if (fstat(fd, &st) != 0) {
		sl_log_err(
		    "cache-read", "cache %s: %s", path, strerror(errno));
		(void) close(fd);
		return (SLUICE_EIO);
	}
	if (st.st_size < 0 ||
	    (uint64_t) st.st_size > (uint64_t) SL_MAX_REPLY_BYTES +
	            SL_CACHE_HEADER_BYTES + SL_CACHE_SUM_BYTES) {
		sl_log_err("cache-corrupt",
		    "cache %s rejected: size %lld out of range; ignoring it",
		    path, (long long) st.st_size);
		(void) close(fd);
		return (SLUICE_ECORRUPT);
	}
	len = (size_t) st.st_size;
	if ((buf = malloc(len + 1)) == NULL) {
		(void) close(fd);
		return (SLUICE_ENOMEM);
	}
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			break;
		}
		got += (size_t) r;
	}
	(void) close(fd);
	*bufp = buf;
	*lenp = got;
	return (SLUICE_OK);
}

static int
reject(const char *path, const char *why)
{
	sl_log_err(
	    "cache-corrupt", "cache %s rejected: %s; ignoring it", path, why);
	return (SLUICE_ECORRUPT);
}

int
sl_cache_load(
    const char *path, Sluice__V1__Snapshot **snapp, uint64_t *contactp)
{
	uint8_t               sum[SL_CACHE_SUM_BYTES];
	uint8_t              *buf = NULL;
	size_t                len = 0;
	uint64_t              plen;
	ProtobufCMessage     *m = NULL;
	Sluice__V1__Snapshot *snap;
	char                  why[96];
	int                   rv;

	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if ((rv = read_file(path, &buf, &len)) != SLUICE_OK) {
		return (rv);
	}
	if (len < SL_CACHE_HEADER_BYTES + SL_CACHE_SUM_BYTES) {
		snprintf(why, sizeof(why), "truncated (%zu bytes)", len);
		rv = reject(path, why);
		goto done;
	}
	if (memcmp(buf, SL_CACHE_MAGIC, 8) != 0) {
		rv = reject(path, "not a sluice cache file (bad magic)");
		goto done;
	}
	if (get_u32(buf + 8) != SL_CACHE_VERSION) {
		snprintf(why, sizeof(why), "unsupported format version %u",
		    (unsigned) get_u32(buf + 8));
		rv = reject(path, why);
		goto done;
	}
	plen = get_u64(buf + 32);
	if (plen != len - SL_CACHE_HEADER_BYTES - SL_CACHE_SUM_BYTES) {
		snprintf(why, sizeof(why),
		    "truncated or padded (payload %llu bytes, file %zu)",
		    (unsigned long long) plen, len);
		rv = reject(path, why);
		goto done;
	}
	(void) crypto_generichash(sum, sizeof(sum), buf,
	    SL_CACHE_HEADER_BYTES + (size_t) plen, NULL, 0);
	if (memcmp(sum, buf + SL_CACHE_HEADER_BYTES + plen, sizeof(sum)) !=
	    0) {
		rv = reject(path, "checksum mismatch");
		goto done;
	}
	if ((rv = sl_unpack(&sluice__v1__snapshot__descriptor,
	         buf + SL_CACHE_HEADER_BYTES, (size_t) plen,
	         SL_MAX_REPLY_BYTES, &m)) != SLUICE_OK) {
		rv = rv == SLUICE_ENOMEM
		    ? rv
		    : reject(path, "payload does not decode");
		goto done;
	}
	snap = (Sluice__V1__Snapshot *) m;
	if (snap->revision != get_u64(buf + 16)) {
		sluice__v1__snapshot__free_unpacked(snap, NULL);
		rv = reject(path, "revision differs from the header");
		goto done;
	}
	if (contactp != NULL) {
		*contactp = get_u64(buf + 24);
	}
	*snapp = snap;
	rv     = SLUICE_OK;
done:
	free(buf);
	return (rv);
}
