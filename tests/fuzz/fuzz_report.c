// SPDX-License-Identifier: MIT
//
// fuzz_report.c — metric report decoding and verification: decode a
// SignedReport with its size limit, verify it against a fixed key, and
// decode the signed body.

#include "codec.h"
#include "envelope.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t pk[32] = { 0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43,
		0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
		0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd,
		0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c };
	ProtobufCMessage    *m;
	Sluice__V1__SignedReport *sr;
	Sluice__V1__MetricReport *r;

	if (sl_crypto_init() != SLUICE_OK) {
		return (0);
	}
	if (sl_unpack(&sluice__v1__signed_report__descriptor, data, size,
	        SL_MAX_REPORT_BYTES + 1024u, &m) != SLUICE_OK) {
		return (0);
	}
	sr = (Sluice__V1__SignedReport *) m;
	if (sl_report_verify(sr, pk, sizeof(pk)) == SLUICE_OK) {
		// Only a forgery would get here; keep decoding anyway.
	}
	if (sl_report_open(sr, &r) == SLUICE_OK) {
		sluice__v1__metric_report__free_unpacked(r, NULL);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return (0);
}
