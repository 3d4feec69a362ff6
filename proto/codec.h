/* SPDX-License-Identifier: MIT */
/*
 * codec.h — size-limited protobuf decoding and packing, and the small
 * helpers for building request and reply messages. Every decoder in sluice
 * goes through sl_unpack(), so every decoder has a limit.
 */
#ifndef SL_CODEC_H
#define SL_CODEC_H

#include "sl.h"

/*
 * Decodes buf as message type d. Checks len against limit before parsing.
 * @param outp  OUT: the message, owned by the caller, freed with
 *              protobuf_c_message_free_unpacked(*outp, NULL). Written only
 *              on success.
 * @return SLUICE_OK, SLUICE_ETOOBIG (len > limit), SLUICE_EPROTO (not a
 *         well-formed message of type d, or required fields missing).
 */
int sl_unpack(const ProtobufCMessageDescriptor *d, const void *buf, size_t len,
    size_t limit, ProtobufCMessage **outp) SLUICE_NODISCARD;

/*
 * Packs m into a malloc'd buffer (*bufp, *lenp), freed by the caller with
 * free(). A zero-length message yields a non-NULL 1-byte allocation with
 * *lenp = 0. @return SLUICE_OK or SLUICE_ENOMEM.
 */
int sl_pack(
    const ProtobufCMessage *m, uint8_t **bufp, size_t *lenp) SLUICE_NODISCARD;

/* Typed wrappers of sl_unpack() with the project's default limits. */
int sl_request_decode(
    const void *buf, size_t len, Sluice__V1__Request **rp) SLUICE_NODISCARD;
int sl_reply_decode(
    const void *buf, size_t len, Sluice__V1__Reply **rp) SLUICE_NODISCARD;
int sl_event_decode(
    const void *buf, size_t len, Sluice__V1__Event **ep) SLUICE_NODISCARD;

/*
 * Deep copy of a message through pack + unpack (no size limit beyond
 * SL_MAX_REPLY_BYTES). *outp as for sl_unpack().
 */
int sl_message_copy(
    const ProtobufCMessage *m, ProtobufCMessage **outp) SLUICE_NODISCARD;

/*
 * True when a and b (same type) pack to the same bytes. protobuf-c packs
 * fields in field-number order, so equal content packs equally.
 */
bool sl_message_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

#endif /* SL_CODEC_H */
