/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h — the libFuzzer entry point every target defines. Under clang
 * with -fsanitize=fuzzer libFuzzer drives it; in `make test` replay_main.c
 * feeds it every file of the target's corpus.
 */
#ifndef SL_FUZZ_H
#define SL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The public key signatures are checked against: Ed25519 of the all-zero
 * seed, the key tests/fuzz's corpus seeds were signed with, so a seed's
 * signature verifies and the fuzzer starts past the signature check.
 */
static const uint8_t fuzz_pk[32] __attribute__((unused)) = { 0x3b, 0x6a, 0x27,
	0xbc, 0xce, 0xb6, 0xa4, 0x2d, 0x62, 0xa3, 0xa8, 0xd0, 0x2a, 0x6f, 0x0d,
	0x73, 0x65, 0x32, 0x15, 0x77, 0x1d, 0xe2, 0x43, 0xa6, 0x3a, 0xc0, 0x48,
	0xa1, 0x8b, 0x59, 0xda, 0x29 };

#endif /* SL_FUZZ_H */
