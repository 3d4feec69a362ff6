// SPDX-License-Identifier: MIT
//
// fuzz_command.c — the flag-update path as flagd runs it before a write
// reaches the state machine: decode a Request with its size limit, and
// for a write, check the signature against a fixed key and decode the
// signed body. Nothing here may crash, leak or read out of bounds.

#include <string.h>

#include "codec.h"
#include "envelope.h"
#include "fuzz.h"
#include "rollout.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Sluice__V1__Request *req;
	Sluice__V1__Command *cmd;
	char                 err[256];

	if (sl_crypto_init() != SLUICE_OK) {
		return (0);
	}
	if (sl_request_decode(data, size, &req) != SLUICE_OK) {
		return (0);
	}
	if (req->op_case == SLUICE__V1__REQUEST__OP_WRITE) {
		if (sl_command_verify(req->write, fuzz_pk, sizeof(fuzz_pk)) ==
		    SLUICE_OK) {
			// Only a forgery would get here; keep decoding anyway.
		}
		if (sl_command_open(req->write, &cmd) == SLUICE_OK) {
			(void) sl_command_action(cmd);
			(void) sl_command_rollout(cmd);
			if (cmd->action_case ==
			        SLUICE__V1__COMMAND__ACTION_APPLY &&
			    cmd->apply->spec != NULL) {
				if (sl_spec_validate(cmd->apply->spec, err,
				        sizeof(err)) != SLUICE_OK) {
					err[0] = '\0';
				}
			}
			sluice__v1__command__free_unpacked(cmd, NULL);
		}
	}
	sluice__v1__request__free_unpacked(req, NULL);
	return (0);
}
