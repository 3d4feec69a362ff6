// SPDX-License-Identifier: MIT
//
// Unit tests for clients/lib/cache.c: round trip, and rejection of every
// kind of damage (flipped byte, truncation at several points, padding,
// wrong magic or version, a header revision that disagrees with the
// payload even under a valid checksum) — never a partial load.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cache.h"
#include "lib_fixture.h"

typedef struct fx {
	char dir[64];
	char path[96];
} fx;

static int
setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-cache-XXXXXX");
	if (f == NULL || mkdtemp(f->dir) == NULL) {
		return (-1);
	}
	snprintf(f->path, sizeof(f->path), "%s/flags.cache", f->dir);
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	fx            *f = *state;
	DIR           *d = opendir(f->dir);
	struct dirent *e;
	char           p[512];

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
			unlink(p);
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	return (0);
}

static void
write_sample(const char *path, uint64_t rev)
{
	Sluice__V1__Snapshot snap;
	Sluice__V1__Rollout *rs[2];

	sluice__v1__snapshot__init(&snap);
	rs[0]           = fx_rollout("alpha", 1, 3, false, 0);
	rs[1]           = fx_rollout("beta", 2, 3, true, 30);
	snap.revision   = rev;
	snap.n_rollouts = 2;
	snap.rollouts   = rs;
	assert_int_equal(sl_cache_write(path, &snap, 1234567), SLUICE_OK);
	sluice__v1__rollout__free_unpacked(rs[0], NULL);
	sluice__v1__rollout__free_unpacked(rs[1], NULL);
}

static uint8_t *
slurp(const char *path, size_t *lenp)
{
	FILE    *fp = fopen(path, "rb");
	uint8_t *buf;
	long     n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t) n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t) n, fp), (size_t) n);
	fclose(fp);
	*lenp = (size_t) n;
	return (buf);
}

static void
spew(const char *path, const uint8_t *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	fclose(fp);
}

static void
test_cache_round_trip(void **state)
{
	fx                   *f       = *state;
	Sluice__V1__Snapshot *snap    = NULL;
	uint64_t              contact = 0;
	DIR                  *d;
	struct dirent        *e;
	int                   files = 0;

	write_sample(f->path, 42);
	assert_int_equal(sl_cache_load(f->path, &snap, &contact), SLUICE_OK);
	assert_int_equal(snap->revision, 42);
	assert_int_equal(contact, 1234567);
	assert_int_equal(snap->n_rollouts, 2);
	assert_string_equal(snap->rollouts[1]->spec->name, "beta");
	assert_int_equal(snap->rollouts[1]->stage, 2);
	assert_int_equal(snap->rollouts[1]->spec->max_stale_s, 30);
	sluice__v1__snapshot__free_unpacked(snap, NULL);

	// Overwriting replaces the file and leaves no temporary behind.
	write_sample(f->path, 43);
	assert_int_equal(sl_cache_load(f->path, &snap, NULL), SLUICE_OK);
	assert_int_equal(snap->revision, 43);
	sluice__v1__snapshot__free_unpacked(snap, NULL);
	d = opendir(f->dir);
	while ((e = readdir(d)) != NULL) {
		files += e->d_name[0] != '.';
	}
	closedir(d);
	assert_int_equal(files, 1);
}

static void
test_cache_missing_file_is_enoent(void **state)
{
	fx                   *f    = *state;
	Sluice__V1__Snapshot *snap = NULL;

	assert_int_equal(sl_cache_load(f->path, &snap, NULL), SLUICE_ENOENT);
	assert_null(snap);
}

static void
test_cache_flipped_byte_is_rejected(void **state)
{
	fx                   *f    = *state;
	Sluice__V1__Snapshot *snap = NULL;
	size_t                len;
	uint8_t              *buf;

	write_sample(f->path, 7);
	buf = slurp(f->path, &len);
	// Every byte matters: header, payload and checksum alike.
	for (size_t i = 0; i < len; i += 7) {
		buf[i] ^= 0x01;
		spew(f->path, buf, len);
		assert_int_equal(
		    sl_cache_load(f->path, &snap, NULL), SLUICE_ECORRUPT);
		assert_null(snap);
		buf[i] ^= 0x01;
	}
	free(buf);
}

static void
test_cache_truncated_or_padded_is_rejected(void **state)
{
	fx                   *f    = *state;
	Sluice__V1__Snapshot *snap = NULL;
	size_t                len;
	uint8_t              *buf;
	size_t                cuts[] = { 0, 5, SL_CACHE_HEADER_BYTES, 0, 0 };

	write_sample(f->path, 7);
	buf     = slurp(f->path, &len);
	cuts[3] = len / 2;
	cuts[4] = len - 1;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		spew(f->path, buf, cuts[i]);
		assert_int_equal(
		    sl_cache_load(f->path, &snap, NULL), SLUICE_ECORRUPT);
		assert_null(snap);
	}
	buf      = realloc(buf, len + 1);
	buf[len] = 0;
	spew(f->path, buf, len + 1);
	assert_int_equal(sl_cache_load(f->path, &snap, NULL), SLUICE_ECORRUPT);
	free(buf);
}

// Rewrites the checksum, so that only the semantic checks can object.
static void
reseal(uint8_t *buf, size_t len)
{
	size_t body = len - SL_CACHE_SUM_BYTES;

	assert_int_equal(crypto_generichash(buf + body, SL_CACHE_SUM_BYTES,
	                     buf, body, NULL, 0),
	    0);
}

static void
test_cache_bad_magic_version_revision_rejected(void **state)
{
	fx                   *f    = *state;
	Sluice__V1__Snapshot *snap = NULL;
	size_t                len;
	uint8_t              *buf;

	write_sample(f->path, 7);
	buf = slurp(f->path, &len);

	buf[0] = 'X';
	reseal(buf, len);
	spew(f->path, buf, len);
	assert_int_equal(sl_cache_load(f->path, &snap, NULL), SLUICE_ECORRUPT);
	buf[0] = 'S';

	buf[8] = 2; // version 2
	reseal(buf, len);
	spew(f->path, buf, len);
	assert_int_equal(sl_cache_load(f->path, &snap, NULL), SLUICE_ECORRUPT);
	buf[8] = 1;

	buf[16] = 8; // header revision 8, payload says 7
	reseal(buf, len);
	spew(f->path, buf, len);
	assert_int_equal(sl_cache_load(f->path, &snap, NULL), SLUICE_ECORRUPT);
	buf[16] = 7;

	// A payload that is not a Snapshot, correctly sealed.
	buf[SL_CACHE_HEADER_BYTES] = 0xff;
	reseal(buf, len);
	spew(f->path, buf, len);
	assert_int_equal(sl_cache_load(f->path, &snap, NULL), SLUICE_ECORRUPT);
	assert_null(snap);
	free(buf);
}

static void
test_cache_unwritable_dir_is_eio(void **state)
{
	fx                  *f = *state;
	Sluice__V1__Snapshot snap;
	char                 p[160];

	(void) f;
	sluice__v1__snapshot__init(&snap);
	snprintf(p, sizeof(p), "%s/no/such/dir/cache", f->dir);
	assert_int_equal(sl_cache_write(p, &snap, 0), SLUICE_EIO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_cache_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cache_missing_file_is_enoent, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cache_flipped_byte_is_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cache_truncated_or_padded_is_rejected, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_cache_bad_magic_version_revision_rejected, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_cache_unwritable_dir_is_eio, setup, teardown),
	};

	// The rejections log at err; keep them off the test output.
	sl_log_level = SL_LOG_ERR - 1;
	return (cmocka_run_group_tests_name("lib/cache", tests, NULL, NULL));
}
