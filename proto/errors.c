// SPDX-License-Identifier: MIT
//
// errors.c — the text of every SLUICE_E* code, generated from the one
// SLUICE_ERRORS X-macro list in sluice.h so that names, numbers and
// messages cannot drift apart, plus the size constants that bindings read
// through functions (STYLE §2).

#include "sluice.h"

SLUICE_API const char *
sluice_strerror(int code)
{
	switch (code) {
#define ERR_MSG_(name, num, msg) \
	case num:                \
		return (msg);
		SLUICE_ERRORS(ERR_MSG_)
#undef ERR_MSG_
	default:
		return ("unknown error");
	}
}

SLUICE_API const char *
sluice_errname(int code)
{
	switch (code) {
#define ERR_NAME_(name, num, msg) \
	case num:                 \
		return (#name);
		SLUICE_ERRORS(ERR_NAME_)
#undef ERR_NAME_
	default:
		return ("EUNKNOWN");
	}
}

SLUICE_API unsigned
sluice_buckets(void)
{
	return (SLUICE_BUCKETS);
}

SLUICE_API size_t
sluice_publickey_bytes(void)
{
	return (SLUICE_PUBLICKEY_BYTES);
}

SLUICE_API size_t
sluice_secretkey_bytes(void)
{
	return (SLUICE_SECRETKEY_BYTES);
}

SLUICE_API size_t
sluice_sig_bytes(void)
{
	return (SLUICE_SIG_BYTES);
}
