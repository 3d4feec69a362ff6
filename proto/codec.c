// SPDX-License-Identifier: MIT
//
// codec.c — the only place sluice turns bytes into protobuf messages and
// back. Every decode checks its size limit before protobuf-c sees a byte,
// so no peer can make a component allocate beyond the limit it chose.

#include <stdlib.h>
#include <string.h>

#include "codec.h"

int
sl_unpack(const ProtobufCMessageDescriptor *d, const void *buf, size_t len,
    size_t limit, ProtobufCMessage **outp)
{
	static const uint8_t empty[1] = { 0 };
	ProtobufCMessage    *m;

	if (d == NULL || outp == NULL || (buf == NULL && len != 0)) {
		return (SLUICE_EINVAL);
	}
	if (len > limit) {
		return (SLUICE_ETOOBIG);
	}
	// A zero-length buffer is a valid, empty message; hand protobuf-c
	// a real pointer all the same.
	if (buf == NULL) {
		buf = empty;
	}
	if ((m = protobuf_c_message_unpack(d, NULL, len, buf)) == NULL) {
		return (SLUICE_EPROTO);
	}
	*outp = m;
	return (SLUICE_OK);
}

int
sl_pack(const ProtobufCMessage *m, uint8_t **bufp, size_t *lenp)
{
	uint8_t *buf;
	size_t   len;

	if (m == NULL || bufp == NULL || lenp == NULL) {
		return (SLUICE_EINVAL);
	}
	len = protobuf_c_message_get_packed_size(m);
	// malloc(0) may return NULL; callers are promised a real pointer.
	if ((buf = malloc(len != 0 ? len : 1)) == NULL) {
		return (SLUICE_ENOMEM);
	}
	if (protobuf_c_message_pack(m, buf) != len) {
		free(buf);
		return (SLUICE_EINTERNAL);
	}
	*bufp = buf;
	*lenp = len;
	return (SLUICE_OK);
}

int
sl_request_decode(const void *buf, size_t len, Sluice__V1__Request **rp)
{
	ProtobufCMessage *m;
	int               rv;

	if (rp == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_unpack(&sluice__v1__request__descriptor, buf, len,
	         SL_MAX_REQUEST_BYTES, &m)) != SLUICE_OK) {
		return (rv);
	}
	*rp = (Sluice__V1__Request *) m;
	return (SLUICE_OK);
}

int
sl_reply_decode(const void *buf, size_t len, Sluice__V1__Reply **rp)
{
	ProtobufCMessage *m;
	int               rv;

	if (rp == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_unpack(&sluice__v1__reply__descriptor, buf, len,
	         SL_MAX_REPLY_BYTES, &m)) != SLUICE_OK) {
		return (rv);
	}
	*rp = (Sluice__V1__Reply *) m;
	return (SLUICE_OK);
}

int
sl_event_decode(const void *buf, size_t len, Sluice__V1__Event **ep)
{
	ProtobufCMessage *m;
	int               rv;

	if (ep == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_unpack(&sluice__v1__event__descriptor, buf, len,
	         SL_MAX_EVENT_BYTES, &m)) != SLUICE_OK) {
		return (rv);
	}
	*ep = (Sluice__V1__Event *) m;
	return (SLUICE_OK);
}

int
sl_message_copy(const ProtobufCMessage *m, ProtobufCMessage **outp)
{
	uint8_t *buf;
	size_t   len;
	int      rv;

	if (m == NULL || outp == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_pack(m, &buf, &len)) != SLUICE_OK) {
		return (rv);
	}
	rv = sl_unpack(m->descriptor, buf, len, SL_MAX_REPLY_BYTES, outp);
	free(buf);
	return (rv);
}

bool
sl_message_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	uint8_t *pa = NULL;
	uint8_t *pb = NULL;
	size_t   la;
	size_t   lb;
	bool     eq = false;

	if (a == NULL || b == NULL) {
		return (a == b);
	}
	if (a->descriptor != b->descriptor) {
		return (false);
	}
	la = protobuf_c_message_get_packed_size(a);
	lb = protobuf_c_message_get_packed_size(b);
	if (la != lb) {
		return (false);
	}
	// On OOM the answer is "not equal": callers use this to skip
	// no-op writes, and doing the write is the safe side.
	if (sl_pack(a, &pa, &la) != SLUICE_OK ||
	    sl_pack(b, &pb, &lb) != SLUICE_OK) {
		goto fail;
	}
	eq = la == lb && memcmp(pa, pb, la) == 0;
fail:
	free(pa);
	free(pb);
	return (eq);
}
