// SPDX-License-Identifier: MIT
//
// envelope.c — signed envelopes. A SignedCommand carries the packed
// Command exactly as signed; a SignedReport the packed MetricReport. The
// signature covers a context string, a NUL and the body (keys.c), so a
// report body can never pass as a command. Opening an envelope decodes
// the body under its own size limit and checks what every consumer relies
// on (a nonce of the right size, an action).

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "codec.h"
#include "envelope.h"

// Packs msg, refuses it above limit, and signs it under ctx. On success
// *bodyp, *sigp and *idp are malloc'd and belong to the caller.
static int
seal(const sl_secret *k, const char *ctx, const ProtobufCMessage *msg,
    size_t limit, ProtobufCBinaryData *bodyp, ProtobufCBinaryData *sigp,
    char **idp)
{
	uint8_t *body = NULL;
	uint8_t *sig  = NULL;
	char    *id   = NULL;
	size_t   len;
	int      rv;

	if ((rv = sl_pack(msg, &body, &len)) != SLUICE_OK) {
		return (rv);
	}
	// Refuse to produce what no receiver would accept.
	if (len > limit) {
		rv = SLUICE_ETOOBIG;
		goto fail;
	}
	if ((sig = malloc(SLUICE_SIG_BYTES)) == NULL ||
	    (id = strdup(k->id)) == NULL) {
		rv = SLUICE_ENOMEM;
		goto fail;
	}
	if ((rv = sl_sign(k, ctx, body, len, sig)) != SLUICE_OK) {
		goto fail;
	}
	bodyp->data = body;
	bodyp->len  = len;
	sigp->data  = sig;
	sigp->len   = SLUICE_SIG_BYTES;
	*idp        = id;
	return (SLUICE_OK);
fail:
	free(body);
	free(sig);
	free(id);
	return (rv);
}

int
sl_command_seal(const sl_secret *k, Sluice__V1__Command *cmd,
    Sluice__V1__SignedCommand *out)
{
	uint8_t *nonce  = NULL;
	bool     set_ts = false;
	int      rv;

	if (k == NULL || cmd == NULL || out == NULL) {
		return (SLUICE_EINVAL);
	}
	if (cmd->action_case == SLUICE__V1__COMMAND__ACTION__NOT_SET) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	if (cmd->timestamp_ms == 0) {
		cmd->timestamp_ms = sl_now_ms();
		set_ts            = true;
	}
	if (cmd->nonce.len == 0) {
		if ((nonce = malloc(SL_NONCE_BYTES)) == NULL) {
			rv = SLUICE_ENOMEM;
			goto fail;
		}
		randombytes_buf(nonce, SL_NONCE_BYTES);
		cmd->nonce.data = nonce;
		cmd->nonce.len  = SL_NONCE_BYTES;
	}
	if ((rv = seal(k, SL_CTX_COMMAND, &cmd->base, SL_MAX_COMMAND_BYTES,
	         &out->body, &out->signature, &out->key_id)) != SLUICE_OK) {
		goto fail;
	}
	return (SLUICE_OK);
fail:
	// Leave cmd as the caller gave it.
	if (nonce != NULL) {
		free(nonce);
		cmd->nonce.data = NULL;
		cmd->nonce.len  = 0;
	}
	if (set_ts) {
		cmd->timestamp_ms = 0;
	}
	return (rv);
}

static void
free_str(char *s)
{
	if (s != NULL && s != protobuf_c_empty_string) {
		free(s);
	}
}

void
sl_signed_command_clear(Sluice__V1__SignedCommand *sc)
{
	if (sc == NULL) {
		return;
	}
	free(sc->body.data);
	free(sc->signature.data);
	free_str(sc->key_id);
	// The generated init function, not the INIT macro: the macro casts
	// away const and trips -Wcast-qual under clang.
	sluice__v1__signed_command__init(sc);
}

void
sl_command_clear_nonce(Sluice__V1__Command *cmd)
{
	if (cmd == NULL) {
		return;
	}
	free(cmd->nonce.data);
	cmd->nonce.data = NULL;
	cmd->nonce.len  = 0;
}

int
sl_command_verify(
    const Sluice__V1__SignedCommand *sc, const uint8_t *pk, size_t pklen)
{
	if (sc == NULL) {
		return (SLUICE_EBADSIG);
	}
	// No one signs a body above the limit (sl_command_seal refuses), so
	// do not spend a copy of an oversized one on checking it.
	if (sc->body.len > SL_MAX_COMMAND_BYTES) {
		return (SLUICE_ETOOBIG);
	}
	return (sl_verify(pk, pklen, SL_CTX_COMMAND, sc->body.data,
	    sc->body.len, sc->signature.data, sc->signature.len));
}

int
sl_command_open(
    const Sluice__V1__SignedCommand *sc, Sluice__V1__Command **cmdp)
{
	ProtobufCMessage    *m;
	Sluice__V1__Command *cmd;
	int                  rv;

	if (sc == NULL || cmdp == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_unpack(&sluice__v1__command__descriptor, sc->body.data,
	         sc->body.len, SL_MAX_COMMAND_BYTES, &m)) != SLUICE_OK) {
		return (rv);
	}
	cmd = (Sluice__V1__Command *) m;
	// The nonce is what makes replay detection work, and a command with
	// no action (or one from a newer peer we do not know) cannot be
	// applied: both are malformed from this node's point of view.
	if (cmd->nonce.len != SL_NONCE_BYTES ||
	    sl_command_action(cmd) == SL_ACT_READ) {
		sluice__v1__command__free_unpacked(cmd, NULL);
		return (SLUICE_EPROTO);
	}
	*cmdp = cmd;
	return (SLUICE_OK);
}

sl_action
sl_command_action(const Sluice__V1__Command *cmd)
{
	if (cmd == NULL) {
		return (SL_ACT_READ);
	}
	// Each case also checks its pointer: a set case with a NULL message
	// never comes out of protobuf-c, but may out of a hand-built one.
	switch ((int) cmd->action_case) {
	case SLUICE__V1__COMMAND__ACTION_APPLY:
		return (cmd->apply != NULL ? SL_ACT_APPLY : SL_ACT_READ);
	case SLUICE__V1__COMMAND__ACTION_PROMOTE:
		return (cmd->promote != NULL ? SL_ACT_PROMOTE : SL_ACT_READ);
	case SLUICE__V1__COMMAND__ACTION_ROLLBACK:
		return (cmd->rollback != NULL ? SL_ACT_ROLLBACK : SL_ACT_READ);
	case SLUICE__V1__COMMAND__ACTION_PAUSE:
		return (cmd->pause != NULL ? SL_ACT_PAUSE : SL_ACT_READ);
	case SLUICE__V1__COMMAND__ACTION_RESUME:
		return (cmd->resume != NULL ? SL_ACT_RESUME : SL_ACT_READ);
	case SLUICE__V1__COMMAND__ACTION_REVERT:
		return (cmd->revert != NULL ? SL_ACT_REVERT : SL_ACT_READ);
	case SLUICE__V1__COMMAND__ACTION_KEY_ADD:
		return (cmd->key_add != NULL ? SL_ACT_KEY_ADD : SL_ACT_READ);
	case SLUICE__V1__COMMAND__ACTION_KEY_REMOVE:
		return (
		    cmd->key_remove != NULL ? SL_ACT_KEY_REMOVE : SL_ACT_READ);
	case SLUICE__V1__COMMAND__ACTION_MEMBER_ADD:
		return (
		    cmd->member_add != NULL ? SL_ACT_MEMBER_ADD : SL_ACT_READ);
	case SLUICE__V1__COMMAND__ACTION_MEMBER_REMOVE:
		return (cmd->member_remove != NULL ? SL_ACT_MEMBER_REMOVE
		                                   : SL_ACT_READ);
	default:
		return (SL_ACT_READ);
	}
}

static const char *
str_or_empty(const char *s)
{
	return (s != NULL ? s : "");
}

const char *
sl_command_rollout(const Sluice__V1__Command *cmd)
{
	switch (sl_command_action(cmd)) {
	case SL_ACT_APPLY:
		return (cmd->apply->spec != NULL
		        ? str_or_empty(cmd->apply->spec->name)
		        : "");
	case SL_ACT_PROMOTE:
		return (str_or_empty(cmd->promote->rollout));
	case SL_ACT_ROLLBACK:
		return (str_or_empty(cmd->rollback->rollout));
	case SL_ACT_PAUSE:
		return (str_or_empty(cmd->pause->rollout));
	case SL_ACT_RESUME:
		return (str_or_empty(cmd->resume->rollout));
	case SL_ACT_REVERT:
		return (str_or_empty(cmd->revert->rollout));
	case SL_ACT_READ:
	case SL_ACT_KEY_ADD:
	case SL_ACT_KEY_REMOVE:
	case SL_ACT_REPORT:
	case SL_ACT_MEMBER_ADD:
	case SL_ACT_MEMBER_REMOVE:
		return ("");
	}
	return ("");
}

bool
sl_timestamp_fresh(uint64_t ts_ms, uint64_t now_ms, uint64_t skew_ms)
{
	uint64_t d = ts_ms > now_ms ? ts_ms - now_ms : now_ms - ts_ms;

	return (d <= skew_ms);
}

int
sl_report_seal(const sl_secret *k, const Sluice__V1__MetricReport *r,
    Sluice__V1__SignedReport *out)
{
	int rv;

	if (k == NULL || r == NULL || out == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_crypto_init()) != SLUICE_OK) {
		return (rv);
	}
	return (seal(k, SL_CTX_REPORT, &r->base, SL_MAX_REPORT_BYTES,
	    &out->body, &out->signature, &out->key_id));
}

void
sl_signed_report_clear(Sluice__V1__SignedReport *sr)
{
	if (sr == NULL) {
		return;
	}
	free(sr->body.data);
	free(sr->signature.data);
	free_str(sr->key_id);
	sluice__v1__signed_report__init(sr);
}

int
sl_report_verify(
    const Sluice__V1__SignedReport *sr, const uint8_t *pk, size_t pklen)
{
	if (sr == NULL) {
		return (SLUICE_EBADSIG);
	}
	if (sr->body.len > SL_MAX_REPORT_BYTES) {
		return (SLUICE_ETOOBIG);
	}
	return (sl_verify(pk, pklen, SL_CTX_REPORT, sr->body.data,
	    sr->body.len, sr->signature.data, sr->signature.len));
}

int
sl_report_open(
    const Sluice__V1__SignedReport *sr, Sluice__V1__MetricReport **rp)
{
	ProtobufCMessage *m;
	int               rv;

	if (sr == NULL || rp == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_unpack(&sluice__v1__metric_report__descriptor,
	         sr->body.data, sr->body.len, SL_MAX_REPORT_BYTES, &m)) !=
	    SLUICE_OK) {
		return (rv);
	}
	*rp = (Sluice__V1__MetricReport *) m;
	return (SLUICE_OK);
}

int
sl_ack_seal(const sl_secret *k, const Sluice__V1__ClientAck *a,
    Sluice__V1__SignedAck *out)
{
	uint8_t *body = NULL;
	size_t   len;
	int      rv;

	if (a == NULL || out == NULL || a->client_id == NULL ||
	    a->client_id[0] == '\0') {
		return (SLUICE_EINVAL);
	}
	if (k != NULL) {
		if ((rv = sl_crypto_init()) != SLUICE_OK) {
			return (rv);
		}
		return (seal(k, SL_CTX_ACK, &a->base, SL_MAX_ACK_BYTES,
		    &out->body, &out->signature, &out->key_id));
	}
	if ((rv = sl_pack(&a->base, &body, &len)) != SLUICE_OK) {
		return (rv);
	}
	if (len > SL_MAX_ACK_BYTES) {
		free(body);
		return (SLUICE_ETOOBIG);
	}
	out->body.data = body;
	out->body.len  = len;
	return (SLUICE_OK);
}

void
sl_signed_ack_clear(Sluice__V1__SignedAck *sa)
{
	if (sa == NULL) {
		return;
	}
	free(sa->body.data);
	free(sa->signature.data);
	free_str(sa->key_id);
	sluice__v1__signed_ack__init(sa);
}

bool
sl_ack_signed(const Sluice__V1__SignedAck *sa)
{
	return (sa != NULL &&
	    (sa->signature.len > 0 ||
	        (sa->key_id != NULL && sa->key_id[0] != '\0')));
}

int
sl_ack_verify(const Sluice__V1__SignedAck *sa, const uint8_t *pk, size_t pklen)
{
	if (sa == NULL) {
		return (SLUICE_EBADSIG);
	}
	if (sa->body.len > SL_MAX_ACK_BYTES) {
		return (SLUICE_ETOOBIG);
	}
	return (sl_verify(pk, pklen, SL_CTX_ACK, sa->body.data, sa->body.len,
	    sa->signature.data, sa->signature.len));
}

int
sl_ack_open(const Sluice__V1__SignedAck *sa, Sluice__V1__ClientAck **ap)
{
	ProtobufCMessage      *m;
	Sluice__V1__ClientAck *a;
	size_t                 n;
	int                    rv;

	if (sa == NULL || ap == NULL) {
		return (SLUICE_EINVAL);
	}
	if ((rv = sl_unpack(&sluice__v1__client_ack__descriptor, sa->body.data,
	         sa->body.len, SL_MAX_ACK_BYTES, &m)) != SLUICE_OK) {
		return (rv);
	}
	a  = (Sluice__V1__ClientAck *) m;
	n  = strlen(a->client_id);
	rv = n == 0 || n >= SL_CLIENT_ID_MAX || strlen(a->host) > 255
	    ? SLUICE_EPROTO
	    : SLUICE_OK;
	// The id is printed by flagctl and keyed on by flagd: printable
	// ASCII only, so no terminal escape or odd byte gets through.
	for (size_t i = 0; rv == SLUICE_OK && i < n; i++) {
		unsigned char ch = (unsigned char) a->client_id[i];
		if (ch <= 0x20 || ch >= 0x7f) {
			rv = SLUICE_EPROTO;
		}
	}
	if (rv != SLUICE_OK) {
		sluice__v1__client_ack__free_unpacked(a, NULL);
		return (rv);
	}
	*ap = a;
	return (SLUICE_OK);
}
