// SPDX-License-Identifier: MIT
//
// sl.c — the plumbing every sluice component shares: one-line logging to
// stderr (STYLE §6), wall and monotonic clocks, the abort-on-OOM
// allocators that daemon-only code may use, sl_panic() for programmer
// errors, and the once-only libsodium initialisation.

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "sl.h"

int sl_log_level = SL_LOG_NOTICE;

static const char *const log_names[] = {
	[SL_LOG_ERR]    = "err",
	[SL_LOG_WARN]   = "warn",
	[SL_LOG_NOTICE] = "notice",
	[SL_LOG_INFO]   = "info",
	[SL_LOG_DEBUG]  = "debug",
};

int
sl_log_parse_level(const char *s, int *levelp)
{
	int lvl;

	if (s == NULL || levelp == NULL) {
		return (SLUICE_EINVAL);
	}
	if (s[0] >= '3' && s[0] <= '7' && s[1] == '\0') {
		*levelp = s[0] - '0';
		return (SLUICE_OK);
	}
	for (lvl = SL_LOG_ERR; lvl <= SL_LOG_DEBUG; lvl++) {
		if (strcasecmp(s, log_names[lvl]) == 0) {
			*levelp = lvl;
			return (SLUICE_OK);
		}
	}
	return (SLUICE_EINVAL);
}

// The macros compare sl_log_level before calling into this file, so the
// environment must be applied before the first sl_log_* call could be
// filtered out; a constructor does that as soon as the program (or the
// shared library) is loaded. A daemon that sets sl_log_level from its
// configuration simply overwrites it afterwards.
static void log_env_init(void) __attribute__((constructor));
static void
log_env_init(void)
{
	const char *s;
	int         lvl;

	if ((s = getenv("SLUICE_LOG_LEVEL")) == NULL || s[0] == '\0') {
		return;
	}
	if (sl_log_parse_level(s, &lvl) == SLUICE_OK) {
		sl_log_level = lvl;
	}
}

void
sl_log_write(int level, const char *msgid, const char *fmt, ...)
{
	char            line[2048];
	struct timespec ts;
	struct tm       tm;
	const char     *lname;
	va_list         ap;
	size_t          n;
	int             rv;

	if (level < SL_LOG_ERR) {
		level = SL_LOG_ERR;
	} else if (level > SL_LOG_DEBUG) {
		level = SL_LOG_DEBUG;
	}
	lname = log_names[level];
	(void) clock_gettime(CLOCK_REALTIME, &ts);
	(void) gmtime_r(&ts.tv_sec, &tm);
	rv = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %ld %s %s: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long) (ts.tv_nsec / 1000000),
	    (long) getpid(), lname, msgid != NULL ? msgid : "-");
	if (rv < 0) {
		return;
	}
	n = (size_t) rv;
	if (n < sizeof(line)) {
		va_start(ap, fmt);
		rv = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		if (rv > 0) {
			n += (size_t) rv;
		}
	}
	// Keep room for the newline; a longer message is cut, not split,
	// so that one event stays one line.
	if (n > sizeof(line) - 2) {
		n = sizeof(line) - 2;
	}
	for (size_t i = 0; i < n; i++) {
		if (line[i] == '\n' || line[i] == '\r') {
			line[i] = ' ';
		}
	}
	line[n++] = '\n';
	// One write(2) per line, so that lines from several threads or
	// processes sharing stderr do not interleave.
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, line, n);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			break;
		}
		memmove(line, line + w, n - (size_t) w);
		n -= (size_t) w;
	}
}

uint64_t
sl_now_ms(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_REALTIME, &ts);
	return (
	    (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u);
}

uint64_t
sl_mono_ns(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec);
}

uint64_t
sl_mono_ms(void)
{
	return (sl_mono_ns() / 1000000u);
}

static void
oom(size_t n)
{
	sl_log_err("oom", "out of memory allocating %zu bytes", n);
	abort();
}

void *
sl_xmalloc(size_t n)
{
	void *p;

	// malloc(0) may return NULL, which must not look like OOM.
	if ((p = malloc(n != 0 ? n : 1)) == NULL) {
		oom(n);
	}
	return (p);
}

void *
sl_xcalloc(size_t n, size_t size)
{
	void *p;

	if (n == 0 || size == 0) {
		n    = 1;
		size = 1;
	}
	if ((p = calloc(n, size)) == NULL) {
		oom(n * size);
	}
	return (p);
}

char *
sl_xstrdup(const char *s)
{
	char *p;

	SL_ASSERT(s != NULL);
	if ((p = strdup(s)) == NULL) {
		oom(strlen(s) + 1);
	}
	return (p);
}

void
sl_panic(const char *file, int line, const char *what)
{
	sl_log_err("panic", "%s:%d: assertion failed: %s", file, line, what);
	abort();
}

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static int            crypto_rv   = SLUICE_EINTERNAL;

static void
crypto_init_once(void)
{
	// sodium_init() returns 1 when it was already initialised by
	// someone else in the process; that is success too.
	if (sodium_init() < 0) {
		sl_log_err("crypto", "sodium_init failed");
		crypto_rv = SLUICE_EINTERNAL;
		return;
	}
	crypto_rv = SLUICE_OK;
}

int
sl_crypto_init(void)
{
	if (pthread_once(&crypto_once, crypto_init_once) != 0) {
		return (SLUICE_EINTERNAL);
	}
	return (crypto_rv);
}

void
sl_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0) {
		return;
	}
	va_start(ap, fmt);
	(void) vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
sl_deadline_after(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t) (ms / 1000);
	ts->tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void
sl_signals_block(sigset_t *set)
{
	// Only sigwait() in the main thread sees the shutdown signals; a
	// dead peer must not kill us.
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int
sl_signals_wait(const sigset_t *set)
{
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0) {
			continue;
		}
		if (sig == SIGHUP) {
			sl_log_notice("main.hup",
			    "SIGHUP: nothing to reload in this version");
			continue;
		}
		break;
	}
	sl_log_notice("main.stop", "signal %d: shutting down", sig);

	// A second SIGINT/SIGTERM during the drain exits at once.
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	pthread_sigmask(SIG_UNBLOCK, set, NULL);
	return (sig);
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return (SLUICE_EIO);
		}
		p += w;
		n -= (size_t) w;
	}
	return (SLUICE_OK);
}

int
sl_file_replace(const char *path, const void *buf, size_t len, unsigned mode)
{
	size_t tlen = strlen(path) + 16;
	char  *tmp;
	char  *dir;
	int    fd;
	int    rv = SLUICE_EIO;
	int    err;

	if ((tmp = malloc(tlen)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	snprintf(tmp, tlen, "%s.tmp.XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0) {
		err = errno;
		free(tmp);
		errno = err;
		return (SLUICE_EIO);
	}
	(void) fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (fchmod(fd, (mode_t) mode) == 0 &&
	    write_all(fd, buf, len) == SLUICE_OK && fsync(fd) == 0) {
		rv = SLUICE_OK;
	}
	err = errno;
	if (close(fd) != 0 && rv == SLUICE_OK) {
		err = errno;
		rv  = SLUICE_EIO;
	}
	if (rv == SLUICE_OK && rename(tmp, path) != 0) {
		err = errno;
		rv  = SLUICE_EIO;
	}
	if (rv != SLUICE_OK) {
		(void) unlink(tmp);
		free(tmp);
		errno = err;
		return (rv);
	}
	// The rename is durable once the directory is.
	dir = dirname(tmp);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void) fsync(fd);
		(void) close(fd);
	}
	free(tmp);
	return (SLUICE_OK);
}
