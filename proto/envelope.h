/* SPDX-License-Identifier: MIT */
/*
 * envelope.h — signed envelopes: SignedCommand for every write and
 * SignedReport for metric reports. The signature covers the body bytes
 * exactly as sent, behind a per-kind context string so a body signed for
 * one purpose never verifies for another.
 */
#ifndef SL_ENVELOPE_H
#define SL_ENVELOPE_H

#include "keys.h"

/*
 * Seals cmd: fills timestamp_ms (now) and a random nonce when they are
 * unset, packs it, signs it with k and fills *out (initialised by the
 * caller with SLUICE__V1__SIGNED_COMMAND__INIT). out->body.data,
 * out->signature.data and out->key_id are malloc'd; release them with
 * sl_signed_command_clear(). cmd's nonce, when set by this call, is
 * malloc'd too and freed by sl_command_clear_nonce(). Returns SLUICE_OK,
 * EINVAL (no action set), ETOOBIG (packed body above SL_MAX_COMMAND_BYTES)
 * or ENOMEM; on failure cmd is left as it was given.
 */
int  sl_command_seal(const sl_secret *k, Sluice__V1__Command *cmd,
     Sluice__V1__SignedCommand *out) SLUICE_NODISCARD;
void sl_signed_command_clear(Sluice__V1__SignedCommand *sc);
void sl_command_clear_nonce(Sluice__V1__Command *cmd);

/*
 * Signature check only. SLUICE_OK or SLUICE_EBADSIG; SLUICE_ETOOBIG for a
 * body above SL_MAX_COMMAND_BYTES (never signed by sl_command_seal).
 */
int sl_command_verify(const Sluice__V1__SignedCommand *sc, const uint8_t *pk,
    size_t pklen) SLUICE_NODISCARD;

/*
 * Decodes sc->body with SL_MAX_COMMAND_BYTES. Also checks the nonce is
 * SL_NONCE_BYTES long and an action is set (EPROTO otherwise).
 * *cmdp freed with sluice__v1__command__free_unpacked(*cmdp, NULL).
 */
int sl_command_open(const Sluice__V1__SignedCommand *sc,
    Sluice__V1__Command                            **cmdp) SLUICE_NODISCARD;

/* The sl_action a command asks for (SL_ACT_READ if none is set). */
sl_action sl_command_action(const Sluice__V1__Command *cmd);

/* The rollout a command is about ("" for key commands). */
const char *sl_command_rollout(const Sluice__V1__Command *cmd);

/* Whether |ts - now| <= skew_ms. */
bool sl_timestamp_fresh(uint64_t ts_ms, uint64_t now_ms, uint64_t skew_ms);

/* Reports: the same shape with SL_CTX_REPORT and SL_MAX_REPORT_BYTES. */
int  sl_report_seal(const sl_secret *k, const Sluice__V1__MetricReport *r,
     Sluice__V1__SignedReport *out) SLUICE_NODISCARD;
void sl_signed_report_clear(Sluice__V1__SignedReport *sr);
int  sl_report_verify(const Sluice__V1__SignedReport *sr, const uint8_t *pk,
     size_t pklen) SLUICE_NODISCARD;
int  sl_report_open(const Sluice__V1__SignedReport *sr,
     Sluice__V1__MetricReport                     **rp) SLUICE_NODISCARD;

/*
 * Client acknowledgements (SignedAck): the same shape with SL_CTX_ACK and
 * SL_MAX_ACK_BYTES, except that signing is optional. With k == NULL the
 * ack is packed unsigned (empty key_id and signature). out is
 * initialised by the caller; its malloc'd fields are released with
 * sl_signed_ack_clear(). EINVAL (no client_id), ETOOBIG, ENOMEM.
 */
int  sl_ack_seal(const sl_secret *k, const Sluice__V1__ClientAck *a,
     Sluice__V1__SignedAck *out) SLUICE_NODISCARD;
void sl_signed_ack_clear(Sluice__V1__SignedAck *sa);

/* Whether the ack carries a signature at all. */
bool sl_ack_signed(const Sluice__V1__SignedAck *sa);

/* SLUICE_OK, SLUICE_EBADSIG, or SLUICE_ETOOBIG (body above the limit). */
int sl_ack_verify(const Sluice__V1__SignedAck *sa, const uint8_t *pk,
    size_t pklen) SLUICE_NODISCARD;

/*
 * Decodes sa->body with SL_MAX_ACK_BYTES and checks its shape: a
 * client_id of 1..SL_CLIENT_ID_MAX-1 printable characters, a host below
 * 256 bytes (EPROTO otherwise). *ap freed with
 * sluice__v1__client_ack__free_unpacked(*ap, NULL).
 */
#define SL_CLIENT_ID_MAX 65u
int sl_ack_open(const Sluice__V1__SignedAck *sa,
    Sluice__V1__ClientAck                  **ap) SLUICE_NODISCARD;

#endif /* SL_ENVELOPE_H */
