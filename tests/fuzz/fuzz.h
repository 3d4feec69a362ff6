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

#endif /* SL_FUZZ_H */
