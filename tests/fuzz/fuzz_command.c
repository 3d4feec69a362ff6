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
	static const uint8_t pk[32] = { 0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43,
		0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
		0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd,
		0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c };
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
		if (sl_command_verify(req->write, pk, sizeof(pk)) ==
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
